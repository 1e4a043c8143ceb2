"""stop_task() on ThreadPoolExecutor tasks, on every CPython the engine supports.

Each case runs in a fresh interpreter with a deadline: a two-thread pool gets a
runaway task, the task is stopped, and the child reports what it saw. The task
must end with TaskStopped in its future and its cleanup run, the pool must keep
the very same threads, and both threads must run the next tasks.
"""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ipy_threadkill import ProtectedThread, TaskStopped
from ipy_threadkill.tasks import NoSuchTask, stop_task
from tests import run_json

# name -> (setup code, task body); the body runs in a pool thread with `progress`.
STATES = {
    "cpu loop": ("", "while True:\n    progress[0] += 1"),
    "sleep loop": ("", "while True:\n    time.sleep(0.5)"),
    "socket read": ("import socket\na, b = socket.socketpair()", "a.recv(10)"),
    "event wait": ("ev = threading.Event()", "ev.wait()"),
    # 60 s, not longer: a failed stop would leave the child behind.
    "subprocess": ("import subprocess", "subprocess.run(['sleep', '60'])"),
    "swallowing loop": ("", "while True:\n    try:\n        progress[0] += 1\n"
                            "    except BaseException:\n        pass"),
    "swallowing sleep loop": ("", "while True:\n    try:\n        time.sleep(0.2)\n"
                                  "    except BaseException:\n        pass"),
    # Swallows once, then returns: the re-armed exception must still end up in
    # the future, not in the pool's own code (which would kill the thread).
    "swallow then return": ("", "try:\n    while True:\n        time.sleep(0.2)\n"
                                "except BaseException:\n    pass\nreturn 'finished'"),
    "finally return": ("", "try:\n    while True:\n        progress[0] += 1\n"
                           "finally:\n    return 'finished'"),
    "swallowing loop around a C call": ("", "while True:\n    try:\n        sum(range(1000))\n"
                                            "        progress[0] += 1\n"
                                            "    except BaseException:\n        pass"),
}

# On 3.10 a `while True: try:` loop whose body makes no call never drops the
# GIL (the pending-exception and GIL-drop checks are skipped on a jump that
# lands on a try's SETUP_FINALLY): the whole process stalls, the stopper
# included, so that case cannot be run there. kill() has the same limit.
VERSION = sys.version_info[:2]
ENGINE_LIMITS = {"swallowing loop": VERSION == (3, 10)}


def engine_limit(state):
    return pytest.mark.xfail(ENGINE_LIMITS.get(state, False), run=False,
                             reason="3.10: a call-free swallowing loop never drops the GIL")


# The state to wait for before stopping, where "not running" is not enough:
# a task starting a child is briefly blocked inside Popen() itself.
SETTLED = {"subprocess": "child"}


def script(setup, body, stop_one_of_two=False, settled_kind=None):
    """The child's code: run `body` as a pool task, stop it, report as JSON."""
    indented = "\n".join("        " + line for line in body.splitlines())
    task = f"""
def task():
    running_in.append(threading.get_ident())
    try:
{indented}
    finally:
        cleanup.append(True)
"""
    return f"""
import json, threading, time
from ipy_threadkill import TaskStopped
from ipy_threadkill.tasks import stop_task
from ipy_threadkill import _blocking
from tests.victims import DEADLINE, exit_on_failure, started_pool, wait_or_raise
exit_on_failure()

{setup}
cleanup, running_in, progress = [], [], [0]
import warnings
with warnings.catch_warnings():
    # 3.14 warns of a `return` in `finally` (PEP 765), which one case is about.
    warnings.simplefilter("ignore", SyntaxWarning)
    exec({task!r})

release = threading.Event()
def bystander():
    release.wait(DEADLINE)
    return 'bystander done'

pool, before = started_pool(2)

other = pool.submit(bystander) if {stop_one_of_two!r} else None
future = pool.submit(task)
wait_or_raise(lambda: running_in, "the task to start")
ident = running_in[0]

def settled():
    if progress[0] > 10:
        return True
    native = next(t.native_id for t in pool._threads if t.ident == ident)
    kind = _blocking.analyze(ident, native).kind
    return kind == {settled_kind!r} if {settled_kind!r} else kind not in ("running", "c-code")
wait_or_raise(settled, "the task to reach its state")

report = stop_task(ident)
exc = future.exception(timeout=1.0)
outcome = dict(
    stopped=report.died, thread_alive=report.thread_alive, text=str(report),
    exception=type(exc).__name__ if exc is not None else None,
    result=None if exc is not None else future.result(),
    cleanup_ran=bool(cleanup), same_ident=ident in before,
    elapsed=report.elapsed, rung=str(report.rung),
)
if other is not None:
    outcome["other_done_before"] = other.done()
    release.set()
    outcome["other_result"] = other.result(timeout=DEADLINE)

# The next tasks: two at once, so that both threads must take one.
barrier = threading.Barrier(2)
def next_task():
    barrier.wait(DEADLINE)
    return threading.get_ident()
nexts = [pool.submit(next_task) for _ in range(2)]
outcome["next_ran_on"] = sorted(f.result(timeout=DEADLINE) for f in nexts)
outcome["before"] = before
outcome["after"] = sorted(t.ident for t in pool._threads if t.is_alive())
pool.shutdown(wait=True)
print(json.dumps(outcome))
"""


def check(outcome):
    assert outcome["stopped"], outcome["text"]
    assert outcome["thread_alive"], outcome["text"]
    assert outcome["exception"] == "TaskStopped", outcome
    assert outcome["cleanup_ran"], outcome
    assert outcome["same_ident"]
    assert outcome["after"] == outcome["before"], "the pool lost or replaced a thread"
    assert outcome["next_ran_on"] == outcome["before"], "a pool thread no longer runs tasks"
    assert outcome["text"].startswith("stopped ThreadPoolExecutor task task()")


@pytest.mark.parametrize("state", [pytest.param(s, marks=engine_limit(s)) for s in STATES])
def test_stop_task_keeps_the_pool(state):
    outcome = run_json(script(*STATES[state], settled_kind=SETTLED.get(state)), timeout=30)
    check(outcome)
    if state == "subprocess":
        assert outcome["rung"] == "child process stopped", outcome["text"]


def test_only_the_stopped_task_ends():
    outcome = run_json(script(*STATES["sleep loop"], stop_one_of_two=True), timeout=30)
    check(outcome)
    assert outcome["other_done_before"] is False, "the other task was stopped too"
    assert outcome["other_result"] == "bystander done"


# Refusals: nothing is raised in any thread, so these run in this process.

def test_refuses_a_thread_that_runs_no_task():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, args=(30,), name="plain")
    thread.start()
    try:
        with pytest.raises(NoSuchTask, match="'plain'.*not running a pool task.*kill()"):
            stop_task(thread)
    finally:
        stop.set()
        thread.join(10)


def test_refuses_an_idle_pool_thread():
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: None).result(10)
        (thread,) = pool._threads
        with pytest.raises(NoSuchTask):
            stop_task(thread)


def test_refuses_the_main_thread_and_itself():
    with pytest.raises(ProtectedThread, match="main thread"):
        stop_task(threading.main_thread())
    with ThreadPoolExecutor(1) as pool:
        error = pool.submit(lambda: stop_task(threading.get_ident())).exception(10)
    assert isinstance(error, ProtectedThread) and "asking" in str(error)


@pytest.mark.parametrize("timeout", [0, -1, "2", None, True])
def test_rejects_a_bad_timeout(timeout):
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        stop_task(threading.main_thread(), timeout=timeout)


def test_task_stopped_is_not_system_exit():
    # Dask shuts a worker down on SystemExit; a task failure must be something else.
    assert issubclass(TaskStopped, BaseException)
    assert not issubclass(TaskStopped, (SystemExit, KeyboardInterrupt, Exception))
