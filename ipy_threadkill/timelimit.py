"""time_limit(seconds): stop a block of code, in any thread, when its time is up.

    with time_limit(5):             # raises TimeLimitExceeded after 5 s
        crunch()

    @time_limit(5)                  # each call gets its own 5 s
    def crunch(): ...

An unexpired limit costs an entry in a heap of deadlines and nothing else. One
timer thread, the package's own, started on first use, sleeps on a Condition
until the earliest deadline. When one is reached it hands the stop to a
short-lived thread of its own, so a slow stop never delays another expiry, and
that thread runs the kill ladder on the block's thread as stop_task() does: a
private TaskStopped subclass raised only while the frame running the `with` is
on the thread's stack, and escalated (woken, interrupted, children stopped)
until the block has left, which the limit's __exit__ says. The block unwinds
through its own `finally` blocks; __exit__ turns the exception into
TimeLimitExceeded with what the block was doing.

The exception raised into the block is a BaseException, as TaskStopped is, so
`except Exception` in the block does not stop it; one that swallows it gets it
again (the ladder re-arms it). Each expiry raises its own subclass, made then,
so that of nested limits only the one whose time is up takes it: an inner
`with` lets an outer's stop through to the outer's `with`.

What no rung can end (a Lock.acquire, a long C call that releases the GIL)
gets a TimeLimitWarning when its time is up. The exception stays queued, to
fire as that call returns (not in a lock wait: it would fire once the lock is
taken, before the `try` that releases it), and the block is looked at every
WATCH_INTERVAL until the ladder can reach it (a `with lock:` that got its lock
goes straight into its body: no check point between). A block that ends first
has it withdrawn. Nothing stays queued past __exit__.

An exception raised from another thread fires at the thread's next check
point; as a block ends, that can be the first instruction of __exit__, which no
`try` covers: __exit__ is therefore called through C (_native.call_shielded),
which hands such a stop back to it. One case is left on 3.9 and 3.10: a stop
still queued when another exception reaches the `with` (a write the ladder cut
short with an error) fires as the `with`'s handler starts, before __exit__ is
called, and leaves the `with` as the private exception.
"""
import contextlib
import dis
import functools
import heapq
import inspect
import itertools
import math
import os
import sys
import threading
import time
import warnings

from . import _arguments, _blocking, _children, _frames, _kernel, _native, _proc, _raising
from ._identity import Victim, identity_of
from .engine import Ladder, judge
from .errors import KillTimeout, TaskStopped, TimeLimitExceeded

__all__ = ["time_limit", "TimeLimitExceeded", "TimeLimitWarning"]

# How long one stop may take, as kill()'s default timeout.
STOP_TIMEOUT = 2.0
# How often a block that could not be stopped is looked at again, only while
# its stop waits: a look reads /proc, about 0.1 ms.
WATCH_INTERVAL = 0.02


# Entered through ExitStack.enter_context, or from a @contextmanager generator
# (suspended at its `yield` while the block runs), a limit's block runs in the
# first frame out of contextlib and generators. A generator running a block of
# its own is inside that frame too.
_CONTEXTLIB = contextlib.__file__
_GENERATOR = inspect.CO_GENERATOR


class TimeLimitWarning(RuntimeWarning):
    """A block's time is up but it is in a call nothing can end now; it is
    stopped (TimeLimitExceeded) as soon as it can be."""


class _TimeUp(TaskStopped):
    """Raised into a block whose time limit is up; its `with` turns it into
    TimeLimitExceeded. Each expiry raises its own subclass (see _stop)."""


class time_limit:
    """Stop the block (or each call of the decorated function) after `seconds`.

    When the time is up the block is stopped where it is, through the kill
    ladder: Python code, sleeps, socket and pipe reads, select/poll, Event and
    Queue waits, loops that swallow exceptions, and subprocess waits (the child
    is stopped too). Its `finally` blocks run, then the `with` raises
    TimeLimitExceeded (a TimeoutError) naming what the block was doing. Works in
    any thread. A block in a call nothing can end gets a TimeLimitWarning and is
    stopped as soon as the call returns. Raises InvalidArgument (a ValueError) for a
    `seconds` that is not a positive number. One time_limit is one `with` at a
    time (reusable after it); a decorated function makes one per call.
    """

    __slots__ = ("seconds", "_active", "_ident", "_frame", "_deadline", "_done",
                 "_expired", "_exc_type", "_entered_at", "_settled", "_lingering", "_blocked_in",
                 "_reason", "_report", "_target", "__weakref__")

    def __init__(self, seconds):
        self.seconds = _arguments.seconds(seconds, "time limit")
        self._active = False

    def __repr__(self):
        return f"time_limit({self.seconds:g})"

    def __enter__(self):
        if self._active:
            raise RuntimeError(f"{self!r} is already in use by a with statement; "
                               "make one time_limit per with")
        self._active = True
        self._done = self._expired = False
        self._exc_type = self._settled = self._lingering = None
        self._blocked_in = self._reason = self._report = None
        self._target = None         # the stopper's ladder target, once it runs
        self._ident = threading.get_ident()
        frame = sys._getframe(1)                # the boundary: the frame of the `with`
        while frame.f_code.co_flags & _GENERATOR or frame.f_code.co_filename == _CONTEXTLIB:
            frame = frame.f_back                # see _CONTEXTLIB
        self._frame, self._entered_at = frame, frame.f_lasti
        self._deadline = time.monotonic() + self.seconds
        _timer.add(self)
        return self

    class _ShieldedExit:
        """__exit__, called through C (_native.call_shielded): a stop that lands
        at its first instruction, where no `try` of ours could catch it, comes
        back to _exit as `landed` instead of escaping the `with`."""

        def __get__(self, limit, owner=None):
            if limit is None:
                return _exit_unbound
            return functools.partial(_native.call_shielded, limit._exit, _TimeUp)

    __exit__ = _ShieldedExit()

    def _exit(self, exc_type, exc, tb, landed=()):
        self._done = True           # first: no stop starts now, a running one ends
        landed_here = self._settle()
        self._active = False
        self._frame = None
        if isinstance(exc, _TimeUp) and type(exc) is not self._exc_type:
            return None             # an outer limit's stop: on to its own `with`
        ours = self._exc_type
        # A call the ladder made fail ends the block with that error, nothing
        # queued, so that it unwinds the block's cleanup undisturbed: a stop too.
        # So is a stop the block swallowed and that was not raised again before
        # it ended (3.12+ leaves that to the next line, and there was none).
        target, self._target = self._target, None      # it holds the block's frame
        made_up = target is not None and (
            target.swallowed > 0 or isinstance(exc, OSError) and exc.errno in target.injected)
        if type(exc) is ours or (ours is not None and (
                made_up or landed_here or any(type(x) is ours for x in landed))):
            # Stopped in the block, or as it ended (its code then saw the stop
            # too, or a rung's made-up result, so its own ending is no result).
            raise self._exceeded() from (None if exc is None or type(exc) is ours else exc)
        return None

    def __call__(self, func):
        """The decorator: each call of `func` runs under a time_limit of its own.
        TypeError for a generator or coroutine function, whose body runs after
        the call has returned."""
        if not callable(func):
            raise TypeError(f"time_limit decorates a function, not {func!r}")
        if inspect.isgeneratorfunction(func) or inspect.iscoroutinefunction(func) \
                or inspect.isasyncgenfunction(func):
            raise TypeError(f"time_limit cannot limit {func.__qualname__}(): a call only "
                            "makes a generator or coroutine, whose body runs later; "
                            "use `with time_limit(...)` inside it")
        seconds = self.seconds

        @functools.wraps(func)
        def limited(*args, **kwargs):
            with time_limit(seconds):
                return func(*args, **kwargs)
        return limited

    def _settle(self):
        """End this limit's part in the timer and its stopper, and leave nothing
        queued. The stopper may raise once more before it sees _done (it looks
        between raises), and an exception queued before _done lands where this
        block's thread next checks: here. Such a stop is caught and the work
        resumed: after two, nothing more can come. Returns whether one of ours
        landed."""
        landed = False
        try:
            try:
                self._wind_down()
            except _TimeUp as exc:
                landed = type(exc) is self._exc_type
                self._wind_down()
        except _TimeUp as exc:
            landed = landed or type(exc) is self._exc_type
            self._wind_down()
        return landed

    def _wind_down(self):
        """Idempotent; each step safe to be cut short by a stop landing in it."""
        if not _timer.remove(self):
            return                      # it never expired: nothing was raised
        with self._settled:             # held by the stopper until it has finished
            pass
        target, self._lingering = self._lingering, None
        if target is not None:
            target.__exit__(None, None, None)
        _raising.withdraw(self._ident)

    def _exceeded(self):
        doing = self._blocked_in or "running Python"
        if self._reason:
            message = (f"time limit of {self.seconds:g} s exceeded: the block could not "
                       f"be stopped at once ({self._reason}); it was stopped as soon "
                       "as it could be")
        else:
            message = (f"time limit of {self.seconds:g} s exceeded: the block was "
                       f"stopped while {doing}")
        return TimeLimitExceeded(message, self.seconds, doing, self._report)


def _exit_unbound(limit, exc_type, exc, tb):
    """time_limit.__exit__ looked up on the class (contextlib.ExitStack does)."""
    return _native.call_shielded(limit._exit, _TimeUp, exc_type, exc, tb)


class _BlockTarget(_raising.Target):
    """The ladder's Target for a block: never raised at the line of its `with`
    in the frame running it. That line's instructions after the block (the
    call of __exit__) are covered by no `try`: an exception raised at them
    (a line-level raise, a re-armed one) would leave the `with` without
    calling __exit__ at all."""

    def __init__(self, ident, exc_type, boundary, with_line):
        super().__init__(ident, exc_type, boundary)
        self.with_line = with_line

    def raise_here(self, frame):
        if frame is self.boundary and frame.f_lineno == self.with_line:
            return False
        return super().raise_here(frame)


class _BlockChildren(_children.Children):
    """The child processes a block drives: those started since it began. Its
    thread lives on after the stop; a child it started before the block (a
    server, a multiprocessing worker) is none of the block's, and is left
    alone. A child the block waits on is stopped whenever it started (the
    ladder finds it in the wait itself). Start times are in clock ticks (10 ms):
    a child started in the tick the block began in counts as started before."""

    def __init__(self, since):
        super().__init__()
        self.since = since              # the block's start, in clock ticks since boot

    def remember(self, native_id, frame):
        super().remember(native_id, frame)
        self.forked = {pid: started for pid, started in self.forked.items()
                       if started is None or started > self.since}
        self.popens = [p for p in self.popens if p.pid is None or self._since_block(p.pid)]

    def _since_block(self, pid):
        started = _proc.process_start(pid)
        return started is None or started > self.since


class _BlockLadder(Ladder):
    """The kill ladder on a block, as stop_task() runs it on a task (its
    exception raised only inside the frame of the `with`, the job done when
    the block has ended), with the block's own target and children."""

    def __init__(self, victim, limit, with_line, since):
        super().__init__(victim, limit._exc_type, finished=lambda: limit._done,
                         boundary=limit._frame)
        self.target = self.line_raising.target = _BlockTarget(
            victim.ident, limit._exc_type, limit._frame, with_line)
        limit._target = self.target
        if since is not None:
            self.children = _BlockChildren(since)


def _block_start_ticks(limit):
    """When `limit`'s block began, in the clock ticks since boot that /proc
    gives a process's start in (None where there is no such clock)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return None
    ago = time.monotonic() - (limit._deadline - limit.seconds)
    return math.floor((time.clock_gettime(boottime) - ago) * _proc.CLOCK_TICKS)


class _Timer:
    """The one thread that watches every deadline: a heap of (deadline, order,
    limit), and a Condition wait until the earliest.

    Limits are added and removed by the threads running them, possibly while a
    stop lands there: the lock is a C lock (its `with` cannot be cut between
    acquire and protection) and every change of the heap is one C call."""

    # A limit that ends while not the earliest stays in the heap, marked done,
    # until it comes to the top; past this many the heap is rebuilt without them.
    REBUILD_AFTER = 64

    def __init__(self):
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.heap = []
        self.order = itertools.count()
        self.thread = None
        self.wakes_at = None            # the deadline the thread sleeps until
        self.buried = 0                 # done limits left in the heap
        self.under_stop = set()         # expired limits whose stop has not finished

    def add(self, limit):
        with self.lock:
            heapq.heappush(self.heap, (limit._deadline, next(self.order), limit))
            if self.thread is None:
                self._start()
            elif self.wakes_at is None or limit._deadline < self.wakes_at:
                self.wakes_at = limit._deadline
                self.wake.notify()

    def remove(self, limit):
        """Take `limit` (already marked done) out; return whether it had expired."""
        with self.lock:
            if limit._expired:
                return True
            heap = self.heap
            if heap and heap[0][2] is limit:
                heapq.heappop(heap)
                while heap and heap[0][2]._done:
                    heapq.heappop(heap)
                    self.buried = max(self.buried - 1, 0)
            else:
                self.buried += 1
                if self.buried > self.REBUILD_AFTER and self.buried * 2 > len(heap):
                    kept = [item for item in heap if not item[2]._done]
                    heapq.heapify(kept)
                    self.heap, self.buried = kept, 0
            return False

    def live(self):
        """How many limits the timer watches (for tests)."""
        with self.lock:
            return sum(not item[2]._done for item in self.heap)

    def _start(self):
        self.wakes_at = None
        self.thread = _kernel.mark_own(threading.Thread(
            target=self._run, name="ipy_threadkill time limits", daemon=True))
        self.thread.start()

    def _run(self):
        me = threading.current_thread()
        with self.lock:
            while self.thread is me:        # until stop_if_idle() lets it go
                heap = self.heap
                now = time.monotonic()
                due = []
                while heap and (heap[0][2]._done or heap[0][0] <= now):
                    limit = heapq.heappop(heap)[2]
                    if limit._done:
                        self.buried = max(self.buried - 1, 0)
                        continue
                    limit._expired = True
                    limit._exc_type = type("TimeUp", (_TimeUp,), {"__module__": __name__})
                    limit._settled = threading.Lock()
                    limit._settled.acquire()
                    self.under_stop.add(limit)
                    due.append(limit)
                if due:
                    self.lock.release()
                    try:
                        for limit in due:
                            _hand_over(limit)
                    finally:
                        self.lock.acquire()
                    continue
                self.wakes_at = heap[0][0] if heap else None
                self.wake.wait(heap[0][0] - now if heap else None)

    def stop_if_idle(self):
        """End the timer thread if no limit is running; return whether it ended."""
        with self.lock:
            thread = self.thread
            if thread is None:
                return True
            if any(not item[2]._done for item in self.heap):
                return False
            self.heap, self.buried = [], 0
            self.thread = None
            self.wake.notify()
        thread.join()
        return True

    def forget_after_fork(self):
        """In a child forked while limits ran, the timer thread and the
        stoppers do not exist, and the locks they held stay held for ever.
        Start afresh, keeping the limits of the thread that forked (the child's
        only thread): a stop it was under is over (a copy of a stop queued for
        it fires or is withdrawn, as in the parent)."""
        me = threading.get_ident()
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.heap = [item for item in self.heap if item[2]._ident == me and not item[2]._done]
        heapq.heapify(self.heap)
        self.buried, self.thread, self.wakes_at = 0, None, None
        for limit in self.under_stop:
            limit._settled = threading.Lock()
            limit._lingering = None         # _raising forgets its targets too
        self.under_stop = set()
        if self.heap:
            self._start()


_timer = _Timer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_timer.forget_after_fork)


def _hand_over(limit):
    """Stop `limit`'s block from a thread of its own, so the timer goes on."""
    stopper = _kernel.mark_own(threading.Thread(
        target=_stop, args=(limit,), name="ipy_threadkill time limit stop", daemon=True))
    try:
        stopper.start()
    except RuntimeError:                # no thread can be started: stop it from here
        _stop(limit)


def _stop(limit):
    try:
        _stop_block(limit)
    finally:
        _timer.under_stop.discard(limit)
        limit._settled.release()


def _stop_block(limit):
    if limit._done:
        return
    victim = _victim(limit._ident)
    if victim is None:                  # it has ended meanwhile: nothing to stop
        return
    with_line = _line_at(limit._frame, limit._entered_at)
    since = _block_start_ticks(limit)
    while not limit._done and not victim.gone():
        ladder = _BlockLadder(victim, limit, with_line, since)
        try:
            report = ladder.run(STOP_TIMEOUT)
        except KillTimeout as exc:
            _stop_later(limit, victim, exc.report, with_line)
            continue
        limit._report = report
        limit._blocked_in = limit._blocked_in or report.blocked_in
        return


def _victim(ident):
    """The Victim of the block's thread, or None if it has ended. Its native id
    is asked of the OS: in a child forked on 3.11, the main Thread's
    native_id is still the parent's."""
    if ident not in sys._current_frames():
        return None
    thread = next((t for t in threading.enumerate() if t.ident == ident), None)
    name = thread.name if thread is not None else f"<bare thread {ident}>"
    return Victim(identity_of(ident), name, thread)


def _stop_later(limit, victim, report, with_line):
    """The block is in something no rung can end: say so (once), leave the
    stop queued, to fire as that call returns (withdrawn if the block ends
    first; never queued in a lock wait), and watch for the block to move on
    into something the ladder can end (a `with lock:` that got its lock, then
    sleeps: no check point between). Returns when it has, or when the block
    (or its thread) is over."""
    blocking = judge(_blocking.analyze(victim.ident, victim.native_id))
    if limit._lingering is None:
        limit._blocked_in = report.blocked_in if report is not None else blocking.description
        limit._reason = blocking.reason or f"still {limit._blocked_in} after {STOP_TIMEOUT:g} s"
        # While it is queued, a handler that swallows it gets it again.
        target = _BlockTarget(victim.ident, limit._exc_type, limit._frame, with_line)
        target.__enter__()
        limit._lingering = target
        warnings.warn(TimeLimitWarning(
            f"time limit of {limit.seconds:g} s is up, but the block in "
            f"{victim.describe()} cannot be stopped now: {limit._reason}; "
            "TimeLimitExceeded follows as soon as it can be stopped"))
    if limit._done:
        return
    frame = sys._current_frames().get(victim.ident)
    if frame is not None and not _frames.acquiring(frame):
        # Not while it waits for a lock: the stop would fire as soon as it has
        # the lock, before the `try` that releases it (3.14: even in `with lock:`).
        raise_within = getattr(_native, "raise_in_thread_within", None)
        if raise_within is not None:
            raise_within(victim.ident, limit._exc_type, limit._frame)
        else:
            _native.raise_in_thread(victim.ident, limit._exc_type, victim.native_id or 0)
    while not limit._done and not victim.gone():
        time.sleep(WATCH_INTERVAL)
        if judge(_blocking.analyze(victim.ident, victim.native_id)).gentle:
            return


def _line_at(frame, offset):
    """The line of instruction `offset` in `frame`'s code."""
    line = None
    for start, number in dis.findlinestarts(frame.f_code):
        if start > offset:
            break
        if number is not None:
            line = number
    return line


def stop_timer():
    """End the timer thread if it is idle (uninstall() calls it); a later
    time_limit starts it again. Returns whether no timer thread is left."""
    return _timer.stop_if_idle()
