"""The user's story in a real kernel: runaway threads are killed with the magics and
everything else survives — variables, the kernel's own threads, Interrupt, the pid.

The tests share one kernel and run in file order, each the user's next step (one
kernel start is most of this file's cost)."""
import importlib.util

import psutil
import pytest

from tests import wait_until
from tests.kernel import Kernel

WIDGET = "application/vnd.jupyter.widget-view+json"

RUNAWAYS = """
import os, socket, subprocess, sys, threading, time

data = {"answer": 42, "rows": list(range(1000))}
pair = socket.socketpair()

def spin():
    while True:
        pass

def read():
    pair[0].recv(1)

def wait_for_child():
    subprocess.run(["sleep", "600"])

runaways = [threading.Thread(target=f, name=n, daemon=True)
            for f, n in ((spin, "spinner"), (read, "reader"), (wait_for_child, "child-waiter"))]
for t in runaways:
    t.start()
print(os.getpid())
"""


def _no_traceback(result):
    assert "Traceback" not in result.stdout + result.stderr, str(result)


@pytest.fixture(scope="module")
def kernel():
    with Kernel() as kernel:
        yield kernel


@pytest.fixture(scope="module")
def story(kernel):
    """Start the runaways (before the extension is loaded, as a user would);
    return the kernel pid and the child process."""
    result = kernel.execute(RUNAWAYS)
    assert result.ok, str(result)
    pid = int(result.stdout)
    process = psutil.Process(pid)

    def sleep_child():
        return [c for c in process.children() if c.name() == "sleep"]

    wait_until(lambda: sleep_child(), timeout=30, what="the child process to start")
    result = kernel.execute("%load_ext ipy_threadkill")
    assert result.ok, str(result)
    return pid, sleep_child()[0]


def test_threads_text_lists_the_runaways(kernel, story):
    result = kernel.execute("%threads --text")
    assert result.ok, str(result)
    _no_traceback(result)
    for name in ("spinner", "reader", "child-waiter"):
        assert name in result.stdout
    assert "MainThread" not in result.stdout      # the kernel's own: hidden


def test_threads_shows_the_live_table_or_text(kernel, story):
    result = kernel.execute("%threads")
    assert result.ok, str(result)
    _no_traceback(result)
    if importlib.util.find_spec("ipy_threadkill.widget") is not None:
        assert any(WIDGET in out["data"]
                   for out in result.outputs), str(result)
    else:
        assert "spinner" in result.stdout


def test_threads_falls_back_to_text(kernel, story):
    # A broken live table, then none at all: the user still gets the list.
    pytest.importorskip("ipywidgets")
    result = kernel.execute(
        "import sys, ipy_threadkill.widget as w\n"
        "real = w.ThreadTable\n"
        "def broken(**options):\n"
        "    raise RuntimeError('no comm')\n"
        "w.ThreadTable = broken\n"
        "%threads\n"
        "w.ThreadTable = real\n"
        "sys.modules['ipy_threadkill.widget'] = None\n"
        "%threads\n"
        "sys.modules['ipy_threadkill.widget'] = w")
    assert result.ok and not result.outputs, str(result)
    _no_traceback(result)
    lines = result.stdout.splitlines()
    assert lines[0] == "(live table unavailable: no comm; showing text)", lines
    assert sum(line.startswith("name ") for line in lines) == 2, lines


def test_completion_offers_live_threads(kernel, story):
    assert "spinner" in kernel.complete("%killthread spi")


def test_refusals_change_nothing(kernel, story):
    for line in ("%killthread MainThread", "%killthread Heartbeat", "%killthread Control",
                 "%killthread IOPub spinner", "%killthread nosuch",
                 "%killthread spinner nosuch", "%killthread --all spinner"):
        result = kernel.execute(line)
        # IPython shows a UsageError as one line on stderr, with no traceback.
        assert result.status == "error" and result.stdout == "", str(result)
        assert result.stderr.startswith("UsageError: "), str(result)
        assert result.stderr.count("\n") == 1, str(result)
    result = kernel.execute("print(all(t.is_alive() for t in runaways))")
    assert result.stdout == "True\n", str(result)


def test_kill_keeps_the_kernel_and_its_state(kernel, story):
    pid, child = story
    result = kernel.execute("%killthread spinner reader 'child-*'")
    assert result.ok, str(result)
    _no_traceback(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("killed ") for line in lines), lines
    for name in ("spinner", "reader", "child-waiter"):
        assert sum(f"killed '{name}'" in line for line in lines) == 1, lines

    result = kernel.execute("print([t.is_alive() for t in runaways], data['answer'], "
                            "len(data['rows']), os.getpid())")
    assert result.stdout.split() == ["[False,", "False,", "False]", "42", "1000", str(pid)]
    wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE,
               timeout=10, what="the child process to be stopped")

    # Nothing left to kill but the kernel's own threads, which --all must spare.
    result = kernel.execute("%killthread --all")
    assert result.ok and result.stdout.startswith("no threads to kill"), str(result)
    assert kernel.execute("print(6 * 7)").stdout == "42\n"


def test_kill_what_a_cell_started(kernel, story):
    started = kernel.execute(
        "pollers = [threading.Thread(target=time.sleep, args=(600,), daemon=True)\n"
        "           for _ in range(2)]\n"
        "for t in pollers:\n"
        "    t.start()")
    assert started.ok, str(started)
    result = kernel.execute(f"%killthread --cell {started.execution_count}")
    lines = result.stdout.splitlines()
    assert result.ok and len(lines) == 2, str(result)
    assert all(line.startswith("killed 'Thread-") for line in lines), lines
    assert kernel.execute("print(any(t.is_alive() for t in pollers))").stdout == "False\n"


def test_interrupt_still_works_and_no_restart(kernel, story):
    pid, _ = story
    msg_id = kernel.start_execute("import time\nprint('sleeping', flush=True)\ntime.sleep(60)",
                                  stop_on_error=False)
    kernel.wait_for_stdout(msg_id, "sleeping")
    kernel.interrupt()
    reply = kernel.wait_reply(msg_id, timeout=20)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    result = kernel.execute("print(os.getpid(), data['answer'])")
    assert result.stdout.split() == [str(pid), "42"], str(result)
    assert kernel.is_alive()


def test_timelimit_stops_a_cell_and_the_kernel_carries_on(kernel, story):
    pid, _ = story
    result = kernel.execute("%%timelimit 0.5\n"
                            "import time\n"
                            "try:\n"
                            "    time.sleep(60)\n"
                            "finally:\n"
                            "    limited = 'cleanup ran'\n")
    assert result.ok, str(result)
    assert result.stdout.startswith("cell stopped: time limit of 0.5 s exceeded: the block "
                                    "was stopped while sleeping"), str(result)
    assert result.stdout.count("\n") == 1
    _no_traceback(result)
    result = kernel.execute("print(os.getpid(), data['answer'], limited)")
    assert result.stdout.split(maxsplit=2) == [str(pid), "42", "cleanup ran\n"], str(result)


def test_unload_stops_what_the_package_runs(kernel, story):
    shown = kernel.execute("%threads")                # opens a live table where possible
    if any(WIDGET in out["data"] for out in shown.outputs):
        names = kernel.execute("print([t.name for t in threading.enumerate()])").stdout
        assert "ipy_threadkill-refresher" in names, names
    result = kernel.execute(
        "%unload_ext ipy_threadkill\n"
        "deadline = time.monotonic() + 10\n"
        "def ours():\n"
        "    return sorted(t.name for t in threading.enumerate()\n"
        "                  if t.name.startswith('ipy_threadkill'))\n"
        "while ours() and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print(ours())")
    assert result.ok and result.stdout == "[]\n", str(result)
    result = kernel.execute("%killthread --all")
    assert result.status == "error" and "not found" in result.stderr, str(result)
    assert kernel.execute("%load_ext ipy_threadkill").ok
    assert kernel.execute("%killthread --all").stdout.startswith("no threads to kill")
