"""A killed thread's children are stopped with everything they started (issue:
process trees): a shell's command, a background job, a Python child's own
children, a child leading its own session or process group whose grandchild
was already reparented to init, a grandchild whose shell the victim's own
cleanup reaped first.

Each victim runs in a fresh interpreter with a deadline. There, every process
of its tree must end (checked by pid and start time, polled with a deadline),
the report must name each process stopped, no zombie may be left among that
interpreter's children, and another thread's process tree must keep running.
"""
import signal
import subprocess
import sys
from typing import NamedTuple

import pytest

from ipy_threadkill import _children, _proc
from ipy_threadkill.report import KillReport, Rung
from tests import run_json

SCRIPT = r'''
import json, os, signal, subprocess, sys, tempfile, threading, time
from tests.victims import (Victim, command, descendants, ended, kill_and_check,
                           process_stat, wait_until, zombie_children)

handle, pidfile = tempfile.mkstemp()
os.close(handle)
cleanup = []                # the return codes the victim's own cleanup saw

# Another thread's child and grandchild: not the victim's, so they run on.
# Their own session: a group leader, like some of the victim's children.
others = []
def supervise():
    others.append(subprocess.Popen(["sh", "-c", "sleep 3599; true"], start_new_session=True))
    others[0].wait()
bystander = threading.Thread(target=supervise, name="bystander's supervisor", daemon=True)
bystander.start()
wait_until(lambda: others and descendants(others[0].pid), what="the bystander's tree")
spared = {others[0].pid: process_stat(others[0].pid)[2], **descendants(others[0].pid)}

SETUP

def body(progress):
BODY

def orphan():
    """The pid the victim's tree wrote to `pidfile`, once written whole."""
    with open(pidfile) as f:
        text = f.read()
    return int(text) if text.endswith("\n") else None

def victims_tree():
    tree = {pid: start for pid, start in descendants(os.getpid()).items()
            if pid not in spared}
    if orphan() is not None:
        tree[orphan()] = process_stat(orphan())[2]
    return tree

def in_place():
    ready = READY <= {command(pid) for pid in victims_tree()}
    return ready and (orphan() is not None or not WANTS_ORPHAN) and victim._settled()

victim = Victim(body)
victim.start(settled=in_place)
tree = victims_tree()
commands = {pid: command(pid) for pid in tree}
outcome = kill_and_check(victim)

deadline = time.monotonic() + 10
while not all(ended(pid, start) for pid, start in tree.items()) \
        and time.monotonic() < deadline:
    time.sleep(0.01)
outcome.update(tree=commands, cleanup=cleanup, zombies=zombie_children(),
               left=[commands[pid] for pid, start in tree.items() if not ended(pid, start)],
               spared=all(not ended(pid, start) for pid, start in spared.items()))
# Leave nothing behind: the bystander's tree, and whatever the kill missed.
for pid, start in list(spared.items()) + list(tree.items()):
    if not ended(pid, start):
        os.kill(pid, signal.SIGKILL)
bystander.join(10)
os.unlink(pidfile)
print(json.dumps(outcome))
'''

class Tree(NamedTuple):
    body: str                       # the victim's body
    ready: set                      # commands that show its tree is in place (each
                                    # exec'd: a forked child shows its parent's first)
    size: int                       # how many processes the tree has then
    setup: str = ""
    orphan: bool = False            # it writes a reparented grandchild's pid to `pidfile`
    ended_by_cleanup: frozenset = frozenset()   # the victim's own cleanup ended these


TREES = {
    "shell running a program": Tree(
        'subprocess.run("sleep 3601; true", shell=True)', {"sleep 3601"}, 2),
    "shell waiting on a background job": Tree(
        'subprocess.run(["sh", "-c", "sleep 3602 & wait"])', {"sleep 3602"}, 2),
    "shell and job that ignore SIGTERM": Tree(
        'subprocess.run(["sh", "-c", "trap \'\' TERM; sleep 3610 & wait"])', {"sleep 3610"}, 2),
    "python child with its own children": Tree(
        'subprocess.run([sys.executable, "-c", grand])', {"sleep 3603"}, 3,
        setup="great = 'import subprocess; subprocess.run([\"sleep\", \"3603\"])'\n"
              "grand = ('import subprocess, sys; '\n"
              "         f'subprocess.run([sys.executable, \"-c\", {great!r}])')"),
    "python child starting its own from another thread": Tree(
        # Linux lists a child under the thread that forked it: not the main one.
        'subprocess.run([sys.executable, "-c", threaded])', {"sleep 3612"}, 2,
        setup="threaded = ('import subprocess, threading; t = threading.Thread('\n"
              "            'target=subprocess.run, args=([\"sleep\", \"3612\"],)); '\n"
              "            't.start(); t.join()')"),
    "child in its own session, grandchild reparented already": Tree(
        'subprocess.run(["sh", "-c", \'(sleep 3604 & echo $! > "$1"); sleep 3605\', '
        '"sh", pidfile], start_new_session=True)', {"sleep 3604", "sleep 3605"}, 3, orphan=True),
    "child leading its own process group, grandchild reparented already": Tree(
        'subprocess.run(["sh", "-c", \'(sleep 3608 & echo $! > "$1"); sleep 3609\', '
        '"sh", pidfile], process_group=0)', {"sleep 3608", "sleep 3609"}, 3, orphan=True),
    "shell reaped by the victim's cleanup": Tree(
        'with subprocess.Popen("sleep 3606; true", shell=True, stdout=subprocess.PIPE) as p:\n'
        '    try:\n'
        '        p.stdout.read()\n'
        '    finally:\n'
        '        p.kill()\n'
        '        p.wait()\n'
        '        cleanup.append(p.returncode)',
        {"sleep 3606"}, 2, ended_by_cleanup=frozenset({"/bin/sh -c sleep 3606; true"})),
    "shell reaped by subprocess.run's cleanup": Tree(
        'subprocess.run("sleep 3607; true", shell=True, capture_output=True)',
        {"sleep 3607"}, 2, ended_by_cleanup=frozenset({"/bin/sh -c sleep 3607; true"})),
}


def _script(tree):
    indented = "\n".join("    " + line for line in tree.body.splitlines())
    return (SCRIPT.replace("SETUP", tree.setup).replace("BODY", indented)
            .replace("READY", repr(tree.ready)).replace("WANTS_ORPHAN", repr(tree.orphan)))


def _runs_here(case):
    if "process group" in case:     # Popen(process_group=) came in 3.11
        return pytest.param(case, marks=pytest.mark.skipif(
            sys.version_info < (3, 11), reason="Popen(process_group=) needs Python 3.11"))
    return case


@pytest.mark.parametrize("case", [_runs_here(case) for case in TREES])
def test_every_process_of_the_tree_is_stopped(case):
    tree = TREES[case]
    outcome = run_json(_script(tree))
    ended_cleanly = dict(died=True, cleanup_ran=True, lock_free=True, alive=False, os_thread=False)
    assert {k: outcome.get(k) for k in ended_cleanly} == ended_cleanly, outcome
    assert outcome["left"] == [], outcome
    assert outcome["zombies"] == [], outcome
    assert outcome["spared"], outcome
    # What ended the thread: stopping the child it waited on, or (when its own
    # cleanup reaped the shell) the interrupted read of the shell's output.
    ended_it = "interrupted system call" if tree.ended_by_cleanup else "child process stopped"
    assert outcome["rung"] == ended_it, outcome
    processes = {int(pid): text for pid, text in outcome["tree"].items()}
    assert len(processes) == tree.size, outcome
    named = {int(words.split()[0]): words for words in outcome["children"]}
    assert set(named) <= set(processes), outcome     # nothing outside the tree
    for pid, text in processes.items():
        if text not in tree.ended_by_cleanup:
            assert _shows(named.get(pid, ""), pid, text), outcome


def _shows(words, pid, command):
    """Whether `words` name process `pid` by `command` (a long one cut short)."""
    head = f"{pid} ("
    if not (words.startswith(head) and words.endswith(")")):
        return False
    shown = words[len(head):-1]
    return shown == command or (shown.endswith("…") and command.startswith(shown[:-1]))


def test_the_victims_cleanup_reaped_the_shell_first():
    # What makes the case: the shell was gone before the kill stopped anything,
    # and its child had been reparented away from the victim's tree.
    outcome = run_json(_script(TREES["shell reaped by the victim's cleanup"]))
    assert outcome["cleanup"] == [-9], outcome
    assert [words.split(" ", 1)[1] for words in outcome["children"]] == ["(sleep 3606)"], outcome


def test_the_report_line_names_the_first_processes_and_counts_the_rest():
    def line(processes):
        return str(KillReport("worker", 1, 2, True, 0.01, Rung.CHILD, True,
                              "waiting for child process 100 (make)", processes))

    assert line(("100 (make)",)).endswith("; stopped child 100 (make)")
    assert line(("100 (make)", "101 (cc a.c)")).endswith(
        "; stopped 2 processes: 100 (make), 101 (cc a.c)")
    many = tuple(f"{pid} (cc {pid}.c)" for pid in range(100, 120))
    assert line(many).endswith("; stopped 20 processes: 100 (cc 100.c), 101 (cc 101.c), "
                               "102 (cc 102.c), 103 (cc 103.c), 104 (cc 104.c), "
                               "105 (cc 105.c) and 14 more")


def test_a_process_is_signalled_only_if_its_start_time_is_the_one_remembered():
    # What keeps a recycled pid safe: another start time, and no signal is sent.
    sleeper = subprocess.Popen(["sleep", "3611"])
    try:
        started = _proc.process_start(sleeper.pid)
        assert not _children._send(sleeper.pid, started + 1, signal.SIGTERM)
        assert sleeper.poll() is None
        assert _children._send(sleeper.pid, started, signal.SIGTERM)
        assert sleeper.wait(10) == -signal.SIGTERM
        assert not _children._send(sleeper.pid, started, signal.SIGTERM)   # reaped: gone
    finally:
        sleeper.kill()
        sleeper.wait()
