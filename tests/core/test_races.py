"""Races: a kill that meets a thread at the worst moment (issue 8).

The target ends by itself as the kill arrives; its ident goes to a new thread
between the snapshot and the kill, or while the kill runs; it is already in
its cleanup; two kills hit it at once; the interpreter is shutting down; the
process forks right after kills. Expected: a report or a clear error, never a
crash, a hang, or a touched bystander. Each case runs in a fresh interpreter
with a deadline and prints one JSON document.
"""
import os
import sys

import pytest

from tests import run_json

RECYCLES_IDENTS = sys.version_info < (3, 13)     # 3.13 joins before an ident is reused

PRELUDE = """
import json, os, random, signal, subprocess, sys, threading, time, warnings
import ipy_threadkill
from ipy_threadkill import NoSuchThread, ThreadKillError
from ipy_threadkill.errors import ThreadKilled
from tests.victims import Victim, children, wait_until
"""


def test_target_finishes_as_the_kill_arrives():
    outcome = run_json(PRELUDE + """
counts = {"report": 0, "NoSuchThread": 0}
other = []
rng = random.Random(1)
for i in range(300):
    t = threading.Thread(target=time.sleep, args=(rng.uniform(0, 0.003),), daemon=True)
    t.start()
    time.sleep(rng.uniform(0, 0.003))
    try:
        report = ipy_threadkill.kill(t, timeout=5)
        counts["report"] += 1
        assert report.died, str(report)
    except NoSuchThread as exc:
        counts["NoSuchThread"] += 1
        assert "not running" in str(exc), str(exc)
    except BaseException as exc:
        other.append(repr(exc))
    t.join(5)
    assert not t.is_alive()
print(json.dumps({"counts": counts, "other": other, "threads": threading.active_count()}))
""", timeout=120)
    assert outcome["other"] == [] and outcome["threads"] == 1, outcome
    assert sum(outcome["counts"].values()) == 300


def test_ident_recycled_between_snapshot_and_kill():
    outcome = run_json(PRELUDE + """
touched = []
first = threading.Thread(target=time.sleep, args=(0.05,), name="first", daemon=True)
first.start()
info = next(i for i in ipy_threadkill.threads() if i.name == "first")
first.join()
release = threading.Event()
def newcomer():
    try:
        release.wait(30)
    except ThreadKilled:
        touched.append(True)
# Start threads until one gets the old ident (at once on 3.9-3.12; 3.13 joins
# the old thread first, so its ident may not come back).
spares = []
second = None
for _ in range(20):
    t = threading.Thread(target=newcomer, name="second", daemon=True)
    t.start()
    if t.ident == info.ident:
        second = t
        break
    spares.append(t)
try:
    ipy_threadkill.kill(info, timeout=2)
    result = {"error": None}
except NoSuchThread as exc:
    result = {"error": "NoSuchThread", "message": str(exc)}
release.set()
for t in spares + [second]:
    if t is not None:
        t.join(5)
result.update(recycled=second is not None, touched=touched,
              second_ok=second is None or not second.is_alive())
print(json.dumps(result))
""")
    assert outcome["error"] == "NoSuchThread", outcome
    assert outcome["touched"] == [] and outcome["second_ok"]
    if outcome["recycled"]:
        assert "now belongs to 'second'" in outcome["message"], outcome["message"]
        assert "refresh the list" in outcome["message"]
    if RECYCLES_IDENTS:
        assert outcome["recycled"], "the ident was not reused: the case tested nothing"


def test_ident_recycled_while_the_kill_runs():
    # The victim dies; a thread started the moment its OS thread is gone takes
    # its ident; the killer must not take that thread for its victim.
    outcome = run_json(PRELUDE + """
hits, tries, deadline = 0, 0, time.monotonic() + 6
while not hits and tries < 60 and time.monotonic() < deadline:
    tries += 1
    dying, touched = threading.Event(), []
    def victim():
        try:
            time.sleep(3600)
        finally:
            dying.set()
    def newcomer():
        try:
            time.sleep(0.02)
        except ThreadKilled:
            touched.append(True)
    v = threading.Thread(target=victim, name="victim", daemon=True)
    v.start()
    wait_until(lambda: v.native_id is not None)
    def spawner():
        dying.wait(10)
        while os.path.exists(f"/proc/self/task/{v.native_id}"):
            pass
        n = threading.Thread(target=newcomer, name="newcomer", daemon=True)
        n.start()
        n.join(10)
    s = threading.Thread(target=spawner, daemon=True)
    s.start()
    time.sleep(0.001)
    try:
        ipy_threadkill.kill(v, timeout=2)
    except ThreadKillError:
        pass
    s.join(10)
    hits += len(touched)
print(json.dumps({"tries": tries, "newcomers_killed": hits}))
""", timeout=60)
    assert outcome["newcomers_killed"] == 0, outcome


FINALLY = """
done, running = [], threading.Event()
def work():
{body}
t = threading.Thread(target=work, name="cleaner", daemon=True)
t.start()
running.wait(10)
try:
    report = ipy_threadkill.kill(t, timeout=5)
    result = {{"line": str(report), "cleanup_ran": report.cleanup_ran}}
except NoSuchThread as exc:
    result = {{"line": str(exc)}}
t.join(5)
result.update(done=done, alive=t.is_alive())
print(json.dumps(result))
"""

CLEANUPS = {
    # A finally the thread entered on its own (normal exit), sleeping in it.
    "finally after return": """
    try:
        return
    finally:
        running.set()
        time.sleep(0.2)
        done.append("cleanup finished")
""",
    # A finally handling the thread's own error.
    "finally after an error": """
    try:
        raise ValueError("boom")
    finally:
        running.set()
        time.sleep(0.2)
        done.append("cleanup finished")
""",
    # A context manager's __exit__.
    "__exit__": """
    class Resource:
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            running.set()
            time.sleep(0.2)
            done.append("cleanup finished")
    with Resource():
        pass
""",
}


@pytest.mark.parametrize("where", list(CLEANUPS))
def test_cleanup_already_running_is_let_finish(where):
    # After its finally, the thread dies of its own error, which is printed.
    outcome = run_json(PRELUDE + FINALLY.format(body=CLEANUPS[where]),
                       allow_stderr=where == "finally after an error")
    assert not outcome["alive"]
    assert outcome["done"] == ["cleanup finished"], outcome


def test_cleanup_running_because_of_the_kill_is_let_finish():
    # The kill's own cleanup: nested sleeps and a lock in `finally` all complete.
    outcome = run_json(PRELUDE + """
done, lock = [], threading.Lock()
def work():
    try:
        time.sleep(3600)
    finally:
        with lock:
            time.sleep(0.1)
            done.append("cleanup finished")
v = threading.Thread(target=work, daemon=True)
v.start()
from ipy_threadkill import _blocking
wait_until(lambda: _blocking.analyze(v.ident, v.native_id).kind == "sleep")
report = ipy_threadkill.kill(v, timeout=5)
v.join(5)
print(json.dumps({"died": report.died, "done": done, "lock_free": not lock.locked(),
                  "elapsed": report.elapsed}))
""")
    assert outcome["died"] and outcome["done"] == ["cleanup finished"] and outcome["lock_free"]
    assert outcome["elapsed"] >= 0.1


def test_two_kills_of_the_same_target_at_once():
    outcome = run_json(PRELUDE + """
bodies = [lambda p: time.sleep(3600), lambda p: threading.Event().wait(),
          lambda p: [p.__setitem__(0, p[0] + 1) for _ in iter(int, 1)]]
rounds = []
for i in range(30):
    v = Victim(bodies[i % 3], name=f"victim-{i}").start()
    go, outcomes = threading.Barrier(2), []
    def killer():
        go.wait()
        try:
            r = ipy_threadkill.kill(v.thread, timeout=5)
            outcomes.append("killed" if r.died else "survived")
        except NoSuchThread:
            outcomes.append("NoSuchThread")
        except BaseException as exc:
            outcomes.append(repr(exc))
    ks = [threading.Thread(target=killer) for _ in range(2)]
    for k in ks:
        k.start()
    for k in ks:
        k.join(15)
    v.thread.join(5)
    rounds.append({"outcomes": sorted(outcomes), "alive": v.thread.is_alive(),
                   "cleanup_ran": v.cleanup_ran, "killers_hung": any(k.is_alive() for k in ks),
                   "lock_free": not v.lock.locked()})
print(json.dumps({"rounds": rounds, "threads": threading.active_count()}))
""", timeout=120)
    assert outcome["threads"] == 1
    for r in outcome["rounds"]:
        assert not r["alive"] and r["cleanup_ran"] and r["lock_free"] and not r["killers_hung"], r
        assert "killed" in r["outcomes"], r
        assert set(r["outcomes"]) <= {"killed", "NoSuchThread"}, r


def test_kill_during_interpreter_shutdown():
    # From atexit (after threading's shutdown joined the non-daemon threads), and
    # from a daemon thread while the main thread waits for a non-daemon victim.
    code = PRELUDE + """
import atexit
daemons = [Victim(b, name=f"daemon-{i}").start() for i, b in enumerate(
    [lambda p: time.sleep(3600), lambda p: threading.Event().wait(),
     lambda p: [p.__setitem__(0, p[0] + 1) for _ in iter(int, 1)]])]
stubborn = Victim(lambda p: time.sleep(3600), name="non-daemon", daemon=False).start()

def say(line):                              # one write: the two threads may interleave
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()

def at_exit():
    for v in daemons:
        r = ipy_threadkill.kill(v.thread, timeout=5)
        say(f"atexit {v.thread.name} {r.died} {v.cleanup_ran}")
    try:
        ipy_threadkill.kill(stubborn.thread, timeout=5)
    except NoSuchThread:
        say("atexit non-daemon already gone")

def at_shutdown():
    threading.main_thread().join()          # returns once the main thread's code ended
    r = ipy_threadkill.kill(stubborn.thread, timeout=5)
    say(f"shutdown {r.died} {stubborn.cleanup_ran}")

atexit.register(at_exit)
threading.Thread(target=at_shutdown, daemon=True).start()
print("main done", flush=True)
"""
    from tests import run_python
    proc = run_python(code, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "main done"
    assert "shutdown True True" in lines
    for i in range(3):
        assert f"atexit daemon-{i} True True" in lines, proc.stdout
    assert "atexit non-daemon already gone" in lines


FORK = PRELUDE + """
warnings.simplefilter("ignore", DeprecationWarning)     # 3.12+: fork with threads
{before}

def child():
    signal.alarm(5)         # a hang in the child must not hang the test
    ok = []
    ts = [threading.Thread(target=lambda: ok.append(1)) for _ in range(5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    v = Victim(lambda p: time.sleep(3600)).start()
    r = ipy_threadkill.kill(v.thread, timeout=5)
    code = 0 if (len(ok) == 5 and r.died and v.cleanup_ran
                 and threading.active_count() == 1 + {extra_threads}) else 3
    sys.stdout.flush()
    os._exit(code)

statuses = []
for i in range({forks}):
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(4)
    statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    if statuses[-1] != 0:
        break
{after}
print(json.dumps({{"statuses": statuses}}))
"""


def test_fork_right_after_kills():
    outcome = run_json(FORK.format(before="""
for i in range(20):
    v = Victim([lambda p: time.sleep(3600), lambda p: threading.Event().wait()][i % 2]).start()
    ipy_threadkill.kill(v.thread)
""", forks=3, extra_threads=0, after=""), timeout=120)
    assert outcome["statuses"] == [0, 0, 0], outcome


def test_fork_while_another_thread_kills():
    if os.environ.get("IPY_THREADKILL_SANITIZED"):
        # Under ASan a child of these 30 forks hung once in two full runs (its
        # alarm ended it); where it waited is not known yet. The engine's own
        # locks held across a fork are tested deterministically below, also
        # under the sanitizer, and this test runs on every interpreter without it.
        pytest.skip("a rare hang of a forked child under the sanitizer, not yet explained")
    outcome = run_json(FORK.format(before="""
stop = threading.Event()
def killer():
    while not stop.is_set():
        v = Victim(lambda p: time.sleep(3600)).start()
        ipy_threadkill.kill(v.thread)
k = threading.Thread(target=killer, daemon=True)
k.start()
time.sleep(0.1)
""", forks=30, extra_threads=0, after="""
stop.set()
k.join(10)
"""), timeout=300)
    assert set(outcome["statuses"]) == {0}, outcome


def test_fork_while_another_thread_holds_the_engines_locks():
    # The window of the test above, made certain: a thread holds every lock the
    # engine takes while the main thread forks. The child's first kill must not
    # wait for a thread it does not have.
    outcome = run_json(FORK.format(before="""
from ipy_threadkill import _proc, _raising
held, release = threading.Event(), threading.Event()
def holder():
    with _raising._targets_lock, _raising._hook_lock, _raising._LineMonitor._lock, \\
            _proc._open_lock:
        held.set()
        release.wait()
h = threading.Thread(target=holder, daemon=True)
h.start()
held.wait(10)
""", forks=2, extra_threads=0, after="""
release.set()
h.join(10)
"""), timeout=120)
    assert outcome["statuses"] == [0, 0], outcome


def test_kill_while_starting_a_subprocess_leaves_no_child():
    # The window made wide: fork_exec forks, then runs Python before it returns.
    outcome = run_json(PRELUDE + """
import _posixsubprocess
real, forked = _posixsubprocess.fork_exec, threading.Event()
def fork_exec(*args):
    pid = real(*args)
    forked.set()
    n = 0
    while True:             # the kill lands here: the child runs, nobody holds its pid
        n += 1
if hasattr(subprocess, "_fork_exec"):               # 3.13
    subprocess._fork_exec = fork_exec
else:
    _posixsubprocess.fork_exec = fork_exec
v = Victim(lambda p: subprocess.run(["sleep", "3600"])).start(settled=forked.is_set)
try:
    report = ipy_threadkill.kill(v.thread, timeout=5)
    result = {"died": report.died, "line": str(report)}
except BaseException as exc:
    result = {"error": repr(exc)}
v.thread.join(5)
left = children()
for pid in left:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
result.update(children_left=len(left), alive=v.thread.is_alive())
print(json.dumps(result))
""")
    assert outcome.get("died") and not outcome["alive"], outcome
    assert outcome["children_left"] == 0, outcome
