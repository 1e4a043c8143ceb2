"""The kill's exception in its victim: raised, raised again when swallowed, taken back.

A thread under a kill is a Target. The exception's finalizer runs in the victim
when a handler swallows it and asks should_rearm() whether it must come back;
where a re-queued exception would fire inside the swallowing `try` again, the
exception is raised at the victim's next line instead (LineRaising). withdraw()
takes back an exception that must not fire any more; a kill of a thread inside
a C call may instead be left pending (keep_pending) until it fires or is
cancelled. install() makes these exceptions end threads silently
(threading.excepthook, sys.unraisablehook).
"""
import dis
import os
import sys
import threading

from . import _frames, _hooks, _native
from .errors import TaskStopped, ThreadKilled, _Persistent


# Threads under a kill: ident -> list of Target (several killers may share one).
# The exception's finalizer (run in the victim when a handler swallows it) asks
# should_rearm whether it must come back.
_targets = {}
_targets_lock = threading.Lock()


def _is_threading_or_ours(code):
    """Code in which the exception must never be raised again: threading's
    shutdown path (the thread is finishing, not resisting) and this package's
    own code, which runs in the victim while it decides (see should_rearm)."""
    return code.co_filename == threading.__file__ or _frames.is_ours(code.co_filename)


def _frame_within(frame, boundary):
    """Whether `frame` is `boundary` or called (directly or not) from it."""
    return any(f is boundary for f in _frames.frames_of(frame))


class Target:
    """A thread under a kill, for as long as the kill runs.

    `boundary`: None to end the whole thread; else the frame of the one call to
    end (a pool task), outside of which the exception must not come back.
    """

    def __init__(self, ident, exc_type, boundary=None):
        self.ident, self.exc_type, self.boundary = ident, exc_type, boundary
        self.swallowed = 0          # times the victim's handlers discarded it
        self.injected = set()       # errnos of system calls made to fail for the kill
        self.monitored = []         # code objects the line monitor watches for it

    def resisting(self, frame):
        """Whether a thread at `frame` still runs what the kill is meant to end."""
        if self.boundary is not None:
            return _frame_within(frame, self.boundary)
        return any(not _is_threading_or_ours(f.f_code) for f in _frames.frames_of(frame))

    def outermost_resisting(self, frame):
        """The outermost frame of what the kill is meant to end, in a thread at
        `frame` (None if it runs none): while that frame is on its stack, the
        exception still lands in that code."""
        if self.boundary is not None:
            return self.boundary
        found = None
        for f in _frames.frames_of(frame):
            if not _is_threading_or_ours(f.f_code):
                found = f
        return found

    def raise_here(self, frame):
        """Whether the exception may be raised in `frame` itself: never in threading's
        shutdown path or in this package's own code running in the victim."""
        return not _is_threading_or_ours(frame.f_code) and self.resisting(frame)

    def __enter__(self):
        with _targets_lock:
            _targets.setdefault(self.ident, []).append(self)
        return self

    def __exit__(self, *exc):
        with _targets_lock:
            entries = _targets.get(self.ident, [])
            entries.remove(self)
            if not entries:
                _targets.pop(self.ident, None)


def should_rearm(exc_type):
    """Whether a swallowed `exc_type` must come back (runs in the victim, see errors.py)."""
    entries = [t for t in _targets.get(threading.get_ident(), ()) if t.exc_type is exc_type]
    if not entries:
        return False
    try:
        discarded_in = sys._getframe(1)         # the frame that swallowed it (or the
                                                # line about to run, see line_raise)
    except ValueError:                          # discarded by C code: the thread is ending
        return False
    if _frames.in_cleanup(_frames.frames_of(discarded_in)):
        return False        # not into cleanup: the killer raises it again after
    resisting = [t for t in entries if t.raise_here(discarded_in)]
    for target in resisting:
        target.swallowed += 1
    # Where the line monitor watches the victim (3.12+), it raises at the next
    # line; a queued copy would fire first, at the loop's jump, inside the `try`.
    return any(not target.monitored for target in resisting)


_PUSH_EXC_INFO = dis.opmap.get("PUSH_EXC_INFO")


class _LineMonitor:
    """sys.monitoring LINE events (3.12+) on the victims' own code objects only,
    through the package's one monitoring tool (_hooks.monitoring).

    Measured on 3.12: the exception re-queued by a swallowing handler is not
    raised at the loop's backward jump, so it fires inside the `try` again. A
    LINE callback that raises lands on the loop's first line, outside it.
    """

    _lock = threading.Lock()
    _targets = {}               # ident -> Target

    @staticmethod
    def available():
        return _hooks.monitoring.available()

    @classmethod
    def start(cls, target, frame):
        """Watch the victim's code; False if no monitoring tool id is free."""
        if frame is None:
            return True                     # it has ended: nothing to watch
        codes = {f.f_code for f in _frames.frames_of(frame)
                 if not _is_threading_or_ours(f.f_code)}
        line = sys.monitoring.events.LINE
        with cls._lock:
            watched = []
            for code in codes:
                if not _hooks.monitoring.watch(code, line, cls._on_line):
                    for done in watched:
                        _hooks.monitoring.unwatch(done, line)
                    return False
                watched.append(code)
            cls._targets[target.ident] = target
            target.monitored = watched
        return True

    @classmethod
    def stop(cls, target):
        with cls._lock:
            cls._targets.pop(target.ident, None)
            for code in getattr(target, "monitored", ()):
                _hooks.monitoring.unwatch(code, sys.monitoring.events.LINE)
            target.monitored = []

    @classmethod
    def _on_line(cls, code, line):
        target = cls._targets.get(threading.get_ident())
        if target is None:
            return None
        _, handling = _native.exception_state(target.ident)
        frame = sys._getframe(1)
        if isinstance(handling, target.exc_type) or not target.raise_here(frame) \
                or _frames.in_cleanup(_frames.frames_of(frame)):
            return None
        if code.co_code[frame.f_lasti] == _PUSH_EXC_INFO:
            return None         # a handler starts: the exception is in flight already
        _native.raise_in_thread(target.ident, None)     # raised here instead of queued
        raise target.exc_type


class LineRaising:
    """Raising at the victim's next line, for one Target: the way out of a
    swallowing loop on interpreters whose queued exception keeps firing inside
    the `try` (_native.line_raise on 3.9 and 3.10, _LineMonitor on 3.12+)."""

    def __init__(self, target):
        self.target = target
        self.on = False
        self.refused = None         # why it could not be started, for the report

    def start(self):
        if self.on or self.refused:
            return
        if hasattr(_native, "line_raise"):                  # 3.9, 3.10
            _native.line_raise(self.target.ident, self.target.exc_type)
        elif _LineMonitor.available():                       # 3.12+
            frame = sys._current_frames().get(self.target.ident)
            if not _LineMonitor.start(self.target, frame):
                self.refused = ("no sys.monitoring tool id was free (other tools hold "
                                "3, 4 and 5), so a loop that swallows the exception "
                                "could not be stopped at its next line")
                return
        else:
            return
        self.on = True

    def stop(self):
        if not self.on:
            return
        if hasattr(_native, "line_raise"):
            try:
                _native.line_raise(self.target.ident, None)
            except ValueError:                # its thread state is gone: nothing to undo
                pass
        else:
            _LineMonitor.stop(self.target)
        self.on = False


# -- kills left pending ---------------------------------------------------------------

class Pending:
    """A kill left queued in a thread that is inside a C call: the exception fires
    when the call returns. Its Target stays registered, so a handler that
    swallows the exception then still gets it again."""

    def __init__(self, victim, target, since):
        self.victim, self.target, self.since = victim, target, since


_pending = {}                   # ident -> Pending
_pending_lock = threading.Lock()


def keep_pending(victim, target, since):
    """Leave `target`'s exception queued in `victim` after its kill gave up;
    returns the Pending (the earlier one if a kill was pending already, so
    `since` is when the first request came)."""
    with _pending_lock:
        known = _live_pending(victim.ident)
        if known is None:
            target.__enter__()
            known = _pending[victim.ident] = Pending(victim, target, since)
        return known


def pending(ident):
    """The Pending kill of thread `ident`, or None (a thread that has ended has none)."""
    with _pending_lock:
        return _live_pending(ident)


def every_pending():
    """{ident: Pending} of every thread with a kill pending."""
    with _pending_lock:
        if not _pending:
            return {}
        return {ident: known for ident in list(_pending)
                if (known := _live_pending(ident)) is not None}


def _ended(victim):
    """Whether the exception can no longer fire in `victim`: threading says it
    ended, or its thread state is gone (the OS thread may still be exiting)."""
    thread = victim.thread
    return (thread is not None and not thread.is_alive()) or not victim.has_thread_state()


def _live_pending(ident):
    known = _pending.get(ident)
    if known is not None and _ended(known.victim):
        _pending.pop(ident)
        known.target.__exit__(None, None, None)
        known = None
    return known


def cancel_pending(ident):
    """Withdraw the pending kill of thread `ident`; returns whether there was one."""
    with _pending_lock:
        known = _live_pending(ident)
        if known is None:
            return False
        del _pending[ident]
        withdraw(ident, known.victim.native_id)
        known.target.__exit__(None, None, None)
        return True


def _cancel_every_pending():
    """Before uninstall: no exception of ours may fire once its hooks are gone."""
    for ident in list(_pending):
        cancel_pending(ident)


_hooks.before_uninstall(_cancel_every_pending)


_hook_lock = threading.Lock()


def _forget_kills_after_fork():
    """In a child forked while another thread was killing, that thread's locks
    stay held for ever (it does not exist there) and its targets are threads
    the child does not have: start afresh, or the child's first kill hangs."""
    global _targets_lock, _hook_lock, _pending_lock
    _targets_lock, _hook_lock, _pending_lock = threading.Lock(), threading.Lock(), threading.Lock()
    _targets.clear()
    _pending.clear()
    _LineMonitor._lock = threading.Lock()
    _LineMonitor._targets = {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_kills_after_fork)


def install():
    """Make the exceptions we raise end threads silently; done on first kill."""
    with _hook_lock:
        if not isinstance(_Persistent.__dict__.get("__del__"), classmethod):
            _native.set_rearm_policy(should_rearm)
            _Persistent.__del__ = classmethod(_native.rearm)
    _hooks.silence(_ends_a_thread_silently, _fires_in_a_victim)


def _ends_a_thread_silently(args):
    """threading.excepthook: a thread a kill ended is not an error to print,
    whether by its exception or by the error of a system call the kill made
    fail (a write ended with EPIPE, that nothing in the thread caught)."""
    if isinstance(args.exc_value, ThreadKilled) or args.exc_type is ThreadKilled:
        return True
    errno = getattr(args.exc_value, "errno", None)
    return isinstance(args.exc_value, OSError) and errno is not None and any(
        errno in target.injected for target in _targets.get(threading.get_ident(), ()))


def _fires_in_a_victim(args):
    """sys.unraisablehook: the exception can fire in whatever Python code the
    victim runs, a weakref callback or a __del__ included; that code cannot
    propagate it and reports it as "Exception ignored". Its finalizer queues it
    again (see should_rearm), so the kill goes on: nothing to report."""
    return isinstance(args.exc_value, (ThreadKilled, TaskStopped)) \
        and bool(_targets.get(threading.get_ident()))


class _Flush(BaseException):
    """Raised by a killer into itself, and caught at once: see withdraw()."""


def withdraw(ident, native_id=0):
    """Take back an exception queued for thread `ident` (if it has not fired).

    3.11 keeps an interpreter-wide "asynchronous exception pending" flag that
    only a thread consuming one clears; withdrawing leaves it set, and every
    thread that traces or profiles then loops on it for ever. Consuming a
    private exception here clears it; elsewhere it costs one raise.
    """
    _native.raise_in_thread(ident, None, native_id or 0)
    try:
        _native.raise_in_thread(threading.get_ident(), _Flush)
        _flush_point()
    except _Flush:
        pass


def _flush_point():
    """A call: the queued _Flush fires on entry (or at the call's return)."""
