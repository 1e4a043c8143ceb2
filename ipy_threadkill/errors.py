"""The exceptions ipy_threadkill raises, and the ones it raises *in* threads.

Every error the API raises is a ThreadKillError, and also the builtin a caller
would naturally catch (LookupError for a target that does not exist, ValueError
for one that must not be killed, RuntimeError for one that would not die).
Messages are one line, name the thread, and say what to do next.
"""


class ThreadKillError(Exception):
    """Base class of every error raised by ipy_threadkill."""


class NoSuchThread(ThreadKillError, LookupError):
    """The target names no live thread (unknown, finished, or its ident recycled)."""


class NoSuchTask(NoSuchThread):
    """The thread runs no task a pool would report as failed (see tasks.RUNNERS)."""


class AmbiguousTarget(ThreadKillError, LookupError):
    """A name matches several threads; `candidates` lists them, nothing was killed."""

    def __init__(self, message, candidates=()):
        super().__init__(message)
        self.candidates = tuple(candidates)


class InvalidTarget(ThreadKillError, TypeError):
    """The target is not a Thread, ThreadInfo, ident, native id or name."""


class InvalidArgument(ThreadKillError, ValueError):
    """An option has a value that makes no sense (e.g. a negative timeout)."""


class ProtectedThread(ThreadKillError, ValueError):
    """The target is the main thread, the caller, or a thread the kernel needs."""


class KillTimeout(ThreadKillError, RuntimeError):
    """The thread was still alive when the timeout passed; `report` tells why.

    `force_refused`: None if a forced kill (force=True) would be tried, else why
    it would be refused, so that no view offers what cannot be done."""

    def __init__(self, message, report=None, force_refused=None):
        super().__init__(message)
        self.report = report
        self.force_refused = force_refused


class KillPending(ThreadKillError, RuntimeError):
    """The thread is inside a C call that releases the GIL: nothing reaches it
    there, so the kill stays queued and the thread ends when the call returns.
    `report` tells what it runs; `situation` is the message without its advice
    (cancel_kill() withdraws the kill; a later kill() joins it). Not a
    KillTimeout: that one leaves nothing pending."""

    ADVICE = "cancel_kill() withdraws it"

    def __init__(self, situation, report=None, force_refused=None):
        super().__init__(f"{situation}; {self.ADVICE}")
        self.situation = situation
        self.report = report
        self.force_refused = force_refused


class ForceRefused(ThreadKillError, RuntimeError):
    """A forced kill was asked for but is not safe (or not possible) here."""


class TimeLimitExceeded(ThreadKillError, TimeoutError):
    """A block run under time_limit() was stopped because its time was up.

    Raised at the block's `with` (or from the decorated call) once the block has
    unwound: its `finally` blocks and `with` statements ran. `seconds` is the
    limit, `blocked_in` what the block was doing when its time was up, `report`
    the stop's KillReport (None when the block could only be stopped later, as
    it came back from a call nothing could end)."""

    def __init__(self, message, seconds=None, blocked_in=None, report=None):
        super().__init__(message)
        self.seconds = seconds
        self.blocked_in = blocked_in
        self.report = report


class _Persistent:
    """Mixin for the exceptions raised into threads: they come back if swallowed.

    When a handler discards one (``except BaseException: pass``), its last
    reference goes and its finalizer runs *in the victim*, right there. The
    engine installs a finalizer that queues the exception again while the thread
    is still a target, so it fires at the next check point, which is past the
    swallowing ``try``; a raise from the killer would land back inside it.
    """


class ThreadKilled(_Persistent, SystemExit):
    """Raised inside a thread to end it.

    A SystemExit so that ``except Exception`` lets it through; ipy_threadkill
    keeps it from printing "Exception in thread ..." when it ends a thread.
    """


class TaskStopped(_Persistent, BaseException):
    """Raised inside a pool thread to end its current task but not the thread.

    Not a SystemExit: thread pools and Dask report it as a failed task and the
    worker carries on, where a SystemExit would shut a Dask worker down.
    """
