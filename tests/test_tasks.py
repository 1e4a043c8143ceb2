"""stop_task() beyond one task in one pool: Dask's threaded scheduler, C-function
tasks, several runaway tasks at once, many stops in a row, a stop that fails.

The per-version suite (tests/core/test_tasks_core.py) covers each runaway state
in a ThreadPoolExecutor. Every case here runs in a fresh interpreter with a
deadline and reports as JSON; the child must leave nothing on stderr.
"""
import pytest

from tests import run_json

# Shared by every child: a deadline on every wait, and an exit that does not hang
# on a runaway non-daemon pool thread when something fails.
PRELUDE = """
import json, os, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import ipy_threadkill
from ipy_threadkill.tasks import stop_task
from ipy_threadkill import _blocking, _frames
from tests.victims import DEADLINE, exit_on_failure, started_pool, wait_or_raise
exit_on_failure()

def running(code):
    '''Idents of the threads whose stack runs `code`.'''
    return [ident for ident, frame in sys._current_frames().items()
            if any(f.f_code is code for f in _frames.frames_of(frame))]

def blocked(ident):
    native = {t.ident: t.native_id for t in threading.enumerate()}[ident]
    return _blocking.analyze(ident, native).kind not in ("running", "c-code")
"""


def child(code, timeout=60, allow_stderr=False):
    return run_json(PRELUDE + code, timeout=timeout, allow_stderr=allow_stderr)


def test_dask_threaded_scheduler():
    outcome = child("""
import dask
from dask import delayed

def runaway(x):
    while True:
        time.sleep(0.5)

results = {}
def compute():
    try:
        results["value"] = dask.compute(delayed(runaway)(1), scheduler="threads")
    except BaseException as exc:
        results["error"] = type(exc).__name__
caller = threading.Thread(target=compute)
caller.start()
wait_or_raise(lambda: running(runaway.__code__), "the Dask task to start")
(ident,) = running(runaway.__code__)
wait_or_raise(lambda: blocked(ident), "the task to sleep")
report = stop_task(ident)
caller.join(DEADLINE)
pool_thread = threading._active[ident]
nxt = dask.compute(delayed(lambda: threading.get_ident())(), scheduler="threads")
print(json.dumps(dict(text=str(report), error=results.get("error"),
                      alive=pool_thread.is_alive(), caller_done=not caller.is_alive(),
                      next_ok=isinstance(nxt[0], int))))
""")
    assert outcome["error"] == "TaskStopped"
    assert outcome["caller_done"] and outcome["alive"] and outcome["next_ok"]
    assert outcome["text"].startswith("stopped Dask task ")
    assert "runaway" in outcome["text"] and "the thread lives on" in outcome["text"]


def test_a_task_that_is_a_c_function():
    # pool.submit(time.sleep, ...) runs no Python frame of its own.
    outcome = child("""
pool = ThreadPoolExecutor(1)
pool.submit(lambda: None).result(DEADLINE)
(thread,) = pool._threads
future = pool.submit(time.sleep, 3600)
wait_or_raise(lambda: blocked(thread.ident), "the sleep")
report = stop_task(thread)
error = future.exception(timeout=1.0)
print(json.dumps(dict(text=str(report), error=type(error).__name__,
                      next=pool.submit(lambda: threading.get_ident()).result(DEADLINE)
                      == thread.ident)))
pool.shutdown()
""")
    assert outcome["error"] == "TaskStopped" and outcome["next"]
    assert "(a C function)" in outcome["text"] and "interrupted system call" in outcome["text"]


def test_several_runaway_tasks_at_once():
    # Four threads, four runaway tasks in four states, stopped from four threads
    # at the same time; the same four threads then run four tasks side by side.
    outcome = child("""
import socket
a, b = socket.socketpair()
def cpu():
    while True:
        pass
def sleeper():
    while True:
        time.sleep(0.5)
def reader():
    return a.recv(10)
def swallower():
    while True:
        try:
            time.sleep(0.2)
        except BaseException:
            pass
tasks = [cpu, sleeper, reader, swallower]
pool, before = started_pool(4)
futures = [pool.submit(task) for task in tasks]
wait_or_raise(lambda: all(running(t.__code__) for t in tasks), "every task to start")
idents = [running(t.__code__)[0] for t in tasks]
wait_or_raise(lambda: all(blocked(i) for i in idents[1:]), "the blocking tasks to block")

reports = {}
def stop(ident):
    reports[ident] = stop_task(ident)
stoppers = [threading.Thread(target=stop, args=(i,)) for i in idents]
for s in stoppers:
    s.start()
for s in stoppers:
    s.join(DEADLINE)
errors = [type(f.exception(timeout=1.0)).__name__ for f in futures]

side_by_side = threading.Barrier(4)
def next_task():
    side_by_side.wait(DEADLINE)
    return threading.get_ident()
after = sorted(f.result(DEADLINE) for f in [pool.submit(next_task) for _ in range(4)])
print(json.dumps(dict(errors=errors, stopped=[reports[i].died for i in idents],
                      before=before, after=after)))
pool.shutdown()
""")
    assert outcome["errors"] == ["TaskStopped"] * 4
    assert outcome["stopped"] == [True] * 4
    assert outcome["after"] == outcome["before"]


def test_many_stops_in_a_row():
    # 60 runaway tasks, one after another, on a two-thread pool: no thread is
    # lost or replaced, every future holds TaskStopped, nothing is printed.
    outcome = child("""
def sleeper():
    while True:
        time.sleep(0.5)
def spinner():
    while True:
        pass
pool, before = started_pool(2)
errors, elapsed = set(), []
for i in range(60):
    task = (sleeper, spinner)[i % 2]
    future = pool.submit(task)
    wait_or_raise(lambda: running(task.__code__), "the task to start")
    report = stop_task(running(task.__code__)[0])
    elapsed.append(report.elapsed)
    errors.add(type(future.exception(timeout=1.0)).__name__)
after = sorted(t.ident for t in pool._threads if t.is_alive())
elapsed.sort()
print(json.dumps(dict(errors=sorted(errors), before=before, after=after,
                      median_ms=elapsed[30] * 1000, worst_ms=elapsed[-1] * 1000)))
pool.shutdown()
""", timeout=120)
    assert outcome["errors"] == ["TaskStopped"]
    assert outcome["after"] == outcome["before"]


def test_a_failed_stop_changes_nothing():
    # A task waiting for a Lock held elsewhere cannot be stopped gently: the stop
    # must say so quickly, leave nothing pending, and the task must then finish
    # normally, with its result, once the lock is free.
    outcome = child("""
from ipy_threadkill import KillTimeout
lock = threading.Lock()
lock.acquire()
def waits_for_the_lock():
    with lock:
        return "finished normally"
pool = ThreadPoolExecutor(1)
future = pool.submit(waits_for_the_lock)
wait_or_raise(lambda: running(waits_for_the_lock.__code__), "the task to start")
(ident,) = running(waits_for_the_lock.__code__)
wait_or_raise(lambda: blocked(ident), "the task to wait for the lock")
started = time.monotonic()
try:
    stop_task(ident, timeout=5)
    message = None
except KillTimeout as exc:
    message, report = str(exc), exc.report
gave_up_after = time.monotonic() - started
lock.release()
print(json.dumps(dict(message=message, died=report.died, gave_up_after=gave_up_after,
                      result=future.result(DEADLINE), text=str(report))))
pool.shutdown()
""")
    assert outcome["message"].startswith("could not stop ThreadPoolExecutor task "
                                         "waits_for_the_lock()")
    assert "kill() with force=True" in outcome["message"]
    assert outcome["died"] is False and outcome["text"].startswith("could not stop")
    assert outcome["gave_up_after"] < 5, "it waited out the timeout instead of saying so"
    assert outcome["result"] == "finished normally"


def test_a_thread_named_by_name():
    outcome = child("""
pool = ThreadPoolExecutor(1, thread_name_prefix="crunch")
def spin():
    while True:
        pass
future = pool.submit(spin)
wait_or_raise(lambda: running(spin.__code__), "the task to start")
report = stop_task("crunch_0")
print(json.dumps(dict(text=str(report), error=type(future.exception(1.0)).__name__)))
pool.shutdown()
""")
    assert outcome["error"] == "TaskStopped"
    assert outcome["text"].startswith("stopped ThreadPoolExecutor task spin() in 'crunch_0'")


@pytest.mark.parametrize("pool_code", [
    # multiprocessing's ThreadPool reports only Exception as a task failure: a
    # BaseException would end its worker thread, so it is not a known runner.
    "from multiprocessing.pool import ThreadPool\npool = ThreadPool(1)\n"
    "result = pool.apply_async(spin)",
    "thread = threading.Thread(target=spin, daemon=True)\nthread.start()",
])
def test_refuses_where_no_known_pool_runs_the_task(pool_code):
    outcome = child(f"""
from ipy_threadkill.tasks import NoSuchTask
def spin():
    while True:
        time.sleep(0.5)
{pool_code}
wait_or_raise(lambda: running(spin.__code__), "the thread to start")
(ident,) = running(spin.__code__)
try:
    stop_task(ident)
    message = None
except NoSuchTask as exc:
    message = str(exc)
print(json.dumps(dict(message=message, still_running=bool(running(spin.__code__)))), flush=True)
os._exit(0)
""")
    assert "is not running a pool task" in outcome["message"]
    assert outcome["still_running"]


@pytest.mark.xfail(strict=False, reason="race: the raise is queued atomically inside the "
                   "task, but one queued as the task returns can still fire in the pool's "
                   "code before the next check point (rare; seen on 3.11)")
def test_stops_racing_tasks_that_end_on_their_own():
    # Adversarial: 1000 tasks of 0.1-2 ms on two busy threads, and a stopper
    # hitting both threads all the time, so that many stops land as a task ends.
    # Every future must end and the pool must keep its two threads.
    outcome = child("""
import random
from ipy_threadkill.tasks import NoSuchTask
def short(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return "done"
pool, before = started_pool(2)
futures = [pool.submit(short, random.uniform(0.0001, 0.002)) for _ in range(1000)]
stops = [0]
def stopper():
    while not all(f.done() for f in futures[-20:]):
        for ident in before:
            try:
                stop_task(ident, timeout=1)
                stops[0] += 1
            except ipy_threadkill.ThreadKillError:
                pass
thread = threading.Thread(target=stopper, daemon=True)
thread.start()
thread.join(30)
print(json.dumps(dict(stops=stops[0], undone=sum(not f.done() for f in futures),
                      same=sorted(t.ident for t in pool._threads if t.is_alive()) == before)),
      flush=True)
os._exit(0)
""", allow_stderr=True)
    assert outcome["stops"] > 0
    assert outcome["undone"] == 0, "a future never ended"
    assert outcome["same"], "the pool lost a thread"


def test_in_a_real_kernel():
    # The notebook story: a cell hands a pool a task that never ends; the next
    # cell stops it, and the pool goes on. The kernel is a real ipykernel.
    from tests.kernel import Kernel
    with Kernel() as kernel:
        started = kernel.execute("""
import time
from concurrent.futures import ThreadPoolExecutor
import ipy_threadkill
pool = ThreadPoolExecutor(2, thread_name_prefix="work")
kept = pool.submit(lambda: 42).result()
def fetch():
    while True:
        time.sleep(0.5)
future = pool.submit(fetch)
deadline = time.monotonic() + 10
while not any("fetch" in ipy_threadkill.stack(t) for t in pool._threads):
    assert time.monotonic() < deadline, "the task did not start"
    time.sleep(0.01)
""")
        assert started.ok, started
        stopped = kernel.execute("""
victim = next(t for t in pool._threads if "fetch" in ipy_threadkill.stack(t))
print(ipy_threadkill.stop_task(victim))
print(type(future.exception(timeout=1)).__name__, victim.is_alive(),
      pool.submit(lambda: kept + 1).result(timeout=10))
""")
        assert stopped.ok, stopped
        first, second = stopped.stdout.splitlines()
        assert first.startswith("stopped ThreadPoolExecutor task fetch() in 'work_")
        assert second == "TaskStopped True 43"
