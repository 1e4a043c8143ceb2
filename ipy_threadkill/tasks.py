"""Stop the task a pool thread is running, and keep the thread.

A pool thread runs one task after another; each task is one call made by the
pool inside a ``try`` that turns any exception into a failed task. Ending the
*task* means raising TaskStopped inside that call only: the ladder unwinds the
call (its ``finally`` blocks and ``with`` statements run), the pool records the
failure, and the thread takes the next task. The exception must never be seen
outside that call: a pool's own loop does not expect it, and a thread that
died there would silently shrink the pool.

So stop_task only acts where it knows the pool's runner: the function whose
``try`` wraps the task call and catches BaseException. The frame that runner
called is the *boundary* handed to the ladder; the task is over when that frame
has left the thread's stack.
"""
import sys
from dataclasses import dataclass, fields
from typing import Optional

from . import _arguments, _frames, _hooks, _kernel
from ._identity import resolve
from ._raising import withdraw
from .engine import Ladder
from .errors import KillTimeout, NoSuchTask, ProtectedThread, TaskStopped
from .report import KillReport, TaskReport

# (module, qualified name of the function whose try/except BaseException wraps a
# task call, what runs there, what else can end a task that will not stop).
# Matched by code object; a module is looked at only if the program imported it.
_KILL_THREAD = "kill() with force=True can end the whole thread"
_RESTART_WORKER = ("only restarting the worker can end it (kill() would take the "
                   "worker process down)")
RUNNERS = (
    # 3.14+: _WorkItem.run calls the task through WorkerContext.run, inside its try.
    ("concurrent.futures.thread", "WorkerContext.run", "ThreadPoolExecutor task",
     _KILL_THREAD),
    ("concurrent.futures.thread", "_WorkItem.run", "ThreadPoolExecutor task", _KILL_THREAD),
    ("distributed.worker", "_run_task_simple", "Dask task", _RESTART_WORKER),
    ("distributed._concurrent_futures_thread", "_WorkItem.run", "Dask executor task",
     _RESTART_WORKER),
    ("dask.local", "execute_task", "Dask task", _KILL_THREAD),
)


def _runner_codes():
    """{code object: (what runs there, fallback)} for the runners imported."""
    codes = {}
    for module_name, qualname, what, fallback in RUNNERS:
        obj = sys.modules.get(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        code = getattr(obj, "__code__", None)
        if code is not None:
            codes[code] = (what, fallback)
    return codes


@dataclass(frozen=True)
class Task:
    """The call a pool thread is running as a task.

    `frame` is the boundary: the frame the runner called, or the runner's own
    frame when the task is C code (``pool.submit(time.sleep, 60)``); the task is
    then over once the runner has moved past instruction `call_at`.
    """

    frame: object
    call_at: Optional[int]
    description: str
    fallback: str               # what can end it if a stop fails

    def running_in(self, ident):
        """Whether thread `ident` is still running this task."""
        top = sys._current_frames().get(ident)
        for f in _frames.frames_of(top):
            if f is self.frame:
                return self.call_at is None or f.f_lasti == self.call_at
        return False


def find_task(frame):
    """The Task of the innermost known runner on the stack ending at `frame`, or None."""
    runners = _runner_codes()
    called = None
    for f in _frames.frames_of(frame):
        runner = runners.get(f.f_code)
        if runner is None:
            called = f
            continue
        what, fallback = runner
        if called is not None:
            return Task(called, None, f"{what} {_name(called)}", fallback)
        return Task(f, f.f_lasti, f"{what} (a C function)", fallback)
    return None


def _name(frame):
    """A task's name: its Dask key (a Dask task is a callable object with a
    key), else the function's name."""
    try:
        owner = frame.f_locals.get("self")
    except Exception:           # a frame of a thread that is changing under us
        owner = None
    key = getattr(owner, "key", None)
    return repr(key) if isinstance(key, (str, bytes, tuple, int)) else f"{frame.f_code.co_name}()"


def _guard_returns(code):
    """Python 3.12+: make a queued TaskStopped fire as the task returns, not after.

    From 3.12 a call from Python to a Python function is made without a C call,
    and returning from it passes no check point: an exception queued while the
    task returns (a task that swallowed TaskStopped re-arms it, then returns)
    would fire at the caller's next check point, which in ThreadPoolExecutor is
    the start of Future.set_result, outside the pool's try: the pool thread
    dies and the future never ends (measured on 3.12 and 3.13). A PY_RETURN
    monitoring callback on the task's code gives the task a last check point,
    the callback's first instruction: a queued exception fires there and
    propagates from the task's return into the pool's try. Other threads
    returning from the same code only pay for an empty call, and only while a
    stop runs. (3.9-3.11 check for exceptions right after the pool's call
    returns: measured, no guard needed.)

    Returns False when that is not possible here (before 3.12, or no
    monitoring tool id free).
    """
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and _hooks.monitoring.watch(
        code, monitoring.events.PY_RETURN, _check_point)


def _unguard_returns(code):
    _hooks.monitoring.unwatch(code, sys.monitoring.events.PY_RETURN)


def _check_point(code, offset, retval):
    """The PY_RETURN callback: being called is the point (see _guard_returns)."""


def stop_task(target, *, timeout=2.0):
    """End the task a pool thread is running, keep the thread; return a TaskReport.

    `target` is what kill() takes (Thread, ThreadInfo, ident, native id, name).
    TaskStopped is raised inside the task's call only and escalated through the
    kill ladder until that call has unwound; the pool reports the task as failed
    with it and the thread runs the next task. Raises NoSuchTask (a
    NoSuchThread) if the thread runs no task of a known pool, NoSuchThread /
    AmbiguousTarget / InvalidTarget / ProtectedThread like kill(), and
    KillTimeout (with the report) if the task is still running after `timeout`
    seconds; a failed stop leaves nothing pending. Pools known: ThreadPoolExecutor,
    Dask's threaded scheduler and distributed workers.
    """
    return stop_with(TaskStopped, target, timeout)


def stop_with(exc_type, target, timeout):
    """stop_task() raising `exc_type`, a TaskStopped subclass (dask.py's pickles
    as an Exception, which distributed's client can re-raise)."""
    timeout = _arguments.seconds(timeout)
    victim = resolve(target)
    reason = _kernel.protected_reason(victim.ident, victim.thread)
    if reason is not None:
        raise ProtectedThread(f"refusing to stop a task in {victim.describe()}: {reason}")
    task = find_task(sys._current_frames().get(victim.ident))
    if task is None:
        raise NoSuchTask(f"{victim.describe()} is not running a pool task (no "
                         "ThreadPoolExecutor or Dask task on its stack); kill() ends "
                         "the whole thread")

    def finished():
        if task.running_in(victim.ident):
            return False
        # Over: an exception still queued would fire in the pool's own code.
        # The ladder asks this right after each raise, so a raise that missed
        # the task (it ended in between) is withdrawn before the thread runs.
        withdraw(victim.ident)
        return True

    ladder = Ladder(victim, exc_type, finished=finished, boundary=task.frame)
    # A C function cannot return past a check point: only Python tasks need it.
    guarded = task.call_at is None and _guard_returns(task.frame.f_code)
    if task.call_at is None and not guarded and hasattr(sys, "monitoring"):
        ladder.notes.append("no sys.monitoring tool id was free: if the task swallows "
                            "TaskStopped and returns, its pool thread may end")
    try:
        # The ladder raises first and looks after: make sure, as late as possible,
        # that the task has not just ended, or the exception would hit the pool.
        if finished():
            raise NoSuchTask(f"{task.description} in {victim.describe()} has just "
                             "finished; nothing was stopped")
        report = ladder.run(timeout)
    except KillTimeout as exc:
        report = _task_report(exc.report, task, victim)
        raise KillTimeout(f"could not stop {task.description} in {victim.describe()}: "
                          f"still {report.blocked_in} after {timeout:g} s; "
                          f"{task.fallback}", report) from None
    finally:
        if guarded:
            _unguard_returns(task.frame.f_code)
    return _task_report(report, task, victim)


def _task_report(report, task, victim):
    values = {f.name: getattr(report, f.name) for f in fields(KillReport)}
    return TaskReport(**values, task=task.description, thread_alive=not victim.gone())
