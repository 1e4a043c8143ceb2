"""The forced cancel: the last rung, opt-in (kill(..., force=True)).

For what no gentle rung can end: a thread waiting forever for a Lock another
thread holds, or sitting in a foreign C call with every signal blocked. The
thread is ended where it sits, in a system call, without the GIL; its Python
cleanup (finally blocks, __exit__) does NOT run and locks it held stay held.

A forced cancel is refused, with the reason, unless all of these hold:
- the thread is blocked in a system call (Linux /proc), so it does not hold the
  GIL and is not running CPython's code;
- the call is one a cancel may end: sleeps, polls, reads, accept/connect, child
  and signal waits; a futex only when it is the semaphore of a Lock found in
  the thread's frames (3.9 to 3.12), never the GIL or CPython's own locks, and
  never on 3.13, where a Lock waiter's queue entry lives on its own stack;
- it does not read through a buffered file (whose internal lock it holds).

How it ends the thread (_force.c): a signal whose handler calls pthread_exit()
only if it interrupted exactly the call /proc showed; a call that ended
meanwhile is left alone and nothing stays pending. The signal is a private one,
or, for a thread that blocks every signal, glibc's cancellation signal, which
pthread_sigmask never blocks (the checked handler takes it over for the one
kill). pthread_cancel() itself is never used: a call completing just before it
left a cancel pending, which fired later in the GIL's wait and hung the
process. The GIL is held from the last check to the disposal of the dead
thread's state; here threading's view is brought in line afterwards.
Leaked on purpose: the dead thread's frames and what they refer to.
"""
import errno
import io
import os
import sys
import threading
import time
from dataclasses import replace

from . import _blocking, _native, _native_stack, _proc
from .errors import ForceRefused

EXIT_TIMEOUT = 1.0          # seconds for a cancelled thread to leave the OS
_SIGCANCEL = 32             # glibc's cancellation signal (__SIGRTMIN, kept from users)
_RETRY_PAUSE = 0.01         # seconds between attempts on a thread that left its call

_NAMES = {nr: name for name, nr in getattr(_native, "SYSCALLS", {}).items()}
_CANCELLABLE = frozenset((
    "clock_nanosleep", "nanosleep", "select", "pselect6", "poll", "ppoll",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "read", "readv", "pread64",
    "recvfrom", "recvmsg", "accept", "accept4", "connect", "wait4", "waitid",
    "pause", "rt_sigsuspend", "rt_sigtimedwait"))
_READS = frozenset(("read", "readv", "pread64"))
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


def available():
    """Whether this platform and interpreter have a forced cancel at all."""
    return hasattr(_native, "force_cancel")


def force_kill(ladder, blocking, start):
    """End the ladder's victim by a forced cancel and return its KillReport.

    Raises ForceRefused when it is not safe; the thread is then untouched
    (unless the message says it was cancelled but did not exit).
    """
    victim = ladder.victim
    if not available():
        raise ForceRefused(f"refusing a forced kill of {victim.describe()}: "
                           "no safe forced cancel on this platform")
    if ladder.finished():
        return ladder._report(True, time.monotonic() - start)
    for _ in range(3):
        plan = _plan(victim)
        ended = _cancel(victim, plan)
        if ended:
            break
        if ladder.finished():           # it ended on its own meanwhile
            return ladder._report(True, time.monotonic() - start)
        time.sleep(_RETRY_PAUSE)        # let a thread that woke block again
    else:
        raise ForceRefused(f"refusing a forced kill of {victim.describe()}: it keeps "
                           "waking up from the system call it was blocked in, so it "
                           "cannot be cancelled safely there; try again")
    _forget_in_threading(victim)
    ladder._stop_orphaned_children()
    ladder.notes.extend(_notes(plan))
    ladder.blocked_in = ladder.blocked_in or f"blocked in {plan.name}"
    report = ladder._report(True, time.monotonic() - start, rung=_rung(),
                            cleanup_ran=False)
    return replace(report, held_locks=tuple(plan.held))


def refusal(victim):
    """Why a forced kill of `victim` (an _identity.Victim) would be refused now,
    or None if it would be tried. Changes nothing; for messages and buttons."""
    if not available():
        return "no safe forced cancel on this platform"
    try:
        _plan(victim)
    except ForceRefused as exc:
        return str(exc).split(": ", 1)[-1]
    return None


def _rung():
    from .engine import Rung             # engine imports this module lazily
    return Rung.FORCED


class _Plan:
    """What was checked before a cancel: the call, how to end it, the locks."""

    def __init__(self, syscall, name, use_cancel, waiting_for, held):
        self.syscall, self.name, self.use_cancel = syscall, name, use_cancel
        self.waiting_for, self.held = waiting_for, held


def _refuse(victim, why):
    return ForceRefused(f"refusing a forced kill of {victim.describe()}: {why}")


def _plan(victim):
    """Check that `victim` may be cancelled now; return a _Plan or raise ForceRefused."""
    tid = victim.native_id
    if tid is None:
        raise _refuse(victim, "its OS thread id is unknown")
    frames = sys._current_frames()
    frame = frames.get(victim.ident)
    if frame is None:
        raise _refuse(victim, "it has no Python thread state any more")
    stack = list(_blocking.frames_of(frame))
    del frame, frames
    sc = _proc.syscall(tid)
    if sc is None:
        raise _refuse(victim, "it is not blocked in a system call (it runs Python, "
                      "waits for the GIL or runs C code): a cancel could land "
                      "anywhere, even holding the GIL; kill it without force (an "
                      "exception reaches code that runs), or wait for its C call")
    name = _NAMES.get(sc.nr, str(sc.nr))
    _check_unwindable(victim, sc)
    waiting_for = _check_call(victim, name, sc, stack)
    held = _held_locks(victim.ident, stack, waiting_for)
    _check_handle(victim)
    try:
        signum = _native.force_signal()
    except OSError as exc:
        raise _refuse(victim, f"no signal to end it with ({exc})") from exc
    use_cancel = _signal_blocked(victim, tid, signum)
    if use_cancel:
        _check_cancel_signal_open(victim, tid)
    return _Plan(sc, name, use_cancel, waiting_for, held)


def _check_unwindable(victim, sc):
    """Refuse unless every native frame the cancel would unwind is shown safe:
    pthread_exit and pthread_cancel run each frame's unwinder, and C++ or Rust
    frames may abort the whole process there (std::terminate in a noexcept
    function, a catch (...) that does not rethrow, PyO3's abort on a foreign
    unwind)."""
    hazards = _native_stack.unwind_hazards(sc.sp)
    if hazards is None:
        raise _refuse(victim, "its native stack cannot be read, so the code a cancel "
                      "would unwind cannot be shown safe")
    if hazards:
        path, why = hazards[0]
        raise _refuse(victim, f"inside {os.path.basename(path)} ({why}): a forced "
                      "cancel could abort the process; make the call return, or "
                      "restart the kernel")


def _check_call(victim, name, sc, stack):
    """Refuse a call a cancel must not end; return the Lock waited on, if any."""
    if name == "futex":
        return _lock_waited_on(victim, sc, stack)
    if name not in _CANCELLABLE:
        raise _refuse(victim, f"it is blocked in {name}, not a call a cancel is known "
                      "to be safe in; make the call return, or restart the kernel")
    if name in _READS:
        owner = _buffered_file(sc.args[0], stack)
        if owner is not None:
            raise _refuse(victim, f"it reads through {owner}, whose internal lock it "
                          "holds: killing it would leave that file unusable; make the "
                          "read return (write to or close the other end)")
    return None


def _lock_waited_on(victim, sc, stack):
    semaphore_of = getattr(_native, "lock_semaphore", None)
    if semaphore_of is None:
        raise _refuse(victim, "it waits in CPython's parking lot (a Lock, Event or "
                      "the GIL): the wait entry lives on its own stack and stays "
                      "linked after a cancel, so other threads would later use "
                      "freed memory; release what it waits for, or restart the "
                      "kernel")
    for lock in _locks_in(stack):
        if semaphore_of(lock) == sc.args[0]:
            return lock
    raise _refuse(victim, "it waits on a futex that is not a Lock found in its "
                  "frames (the GIL, CPython's own locks or a C library's): "
                  "cancelling it there is not safe; release what it waits for, "
                  "or restart the kernel")


def _check_handle(victim):
    """3.13: interpreter exit would join a killed non-daemon thread forever unless
    its handle can be taken off the exit list: check that before killing."""
    handle = getattr(victim.thread, "_handle", None)
    if handle is None or not hasattr(handle, "_set_done"):
        return
    forget = getattr(_native, "forget_thread_handle", None)
    try:
        if forget is not None:
            forget(handle, victim.ident, False)
            return
    except (TypeError, ValueError):
        pass
    if not victim.thread.daemon:
        raise _refuse(victim, "interpreter exit would wait for it forever (it is "
                      "not a daemon thread and its handle cannot be released on this "
                      "Python); restart the kernel")


def _signal_blocked(victim, tid, signum):
    blocked = _proc.signal_blocked(tid, signum)
    if blocked is None:
        raise _refuse(victim, "its signal mask cannot be read")
    return blocked


def _check_cancel_signal_open(victim, tid):
    """A thread that blocks our signal gets glibc's cancellation signal instead,
    which pthread_sigmask cannot block; only a raw rt_sigprocmask can."""
    if _proc.signal_blocked(tid, _SIGCANCEL):
        raise _refuse(victim, "it blocks every signal, even glibc's cancellation "
                      "signal: nothing can end it but a kernel restart")


def _frame_values(frame):
    return [value for _, value in _named_values(frame)]


def _locks_in(stack):
    """Every Lock/RLock the frames refer to, also as a bound method (lock.acquire
    given as a callback or a Thread target)."""
    seen = []
    for frame in stack:
        for value in _frame_values(frame):
            value = getattr(value, "__self__", value)
            if isinstance(value, _LOCK_TYPES) and all(value is not s for s in seen):
                seen.append(value)
    return seen


def _held_locks(ident, stack, waiting_for):
    """Words for the locks the thread (probably) holds: RLocks it owns, and locked
    Locks its frames refer to (a plain Lock does not know its owner). threading's
    own frames and Thread._tstate_lock are left out."""
    found, seen = [], [waiting_for]
    for frame in stack:
        if frame.f_code.co_filename == threading.__file__:
            continue
        for name, value in _named_values(frame):
            if not isinstance(value, _LOCK_TYPES) or any(value is s for s in seen):
                continue
            seen.append(value)
            if name.endswith("_tstate_lock"):
                continue
            text = _lock_words(value, ident, name, frame.f_code.co_name)
            if text:
                found.append(text)
    return found


def _named_values(frame):
    """(name, value) of a frame's locals, its self's attributes and the globals
    its code names: where the objects it works with are found."""
    try:
        local = dict(frame.f_locals)
    except Exception:                    # a frame changing under us
        return []
    pairs = list(local.items())
    me = local.get("self")
    if me is not None:
        try:
            pairs += [(f"self.{k}", v) for k, v in vars(me).items()]
        except TypeError:
            pass
    names = frame.f_code.co_names
    pairs += [(k, v) for k, v in list(frame.f_globals.items()) if k in names]
    return pairs


def _lock_words(lock, ident, name, function):
    text = repr(lock)
    label = f"'{name}'"
    if "RLock" in type(lock).__name__:
        if f"owner={ident} " in text:
            return f"RLock {label} in {function}()"
        return None
    if "unlocked" in text or "locked" not in text:
        return None
    return f"Lock {label} in {function}() (locked, probably by it)"


def _buffered_file(fd, stack):
    """A buffered/text file object on fd `fd` among stdio and the frames, or None."""
    candidates = [sys.stdin, sys.stdout, sys.stderr, sys.__stdin__]
    for frame in stack:
        candidates += _frame_values(frame)
    for obj in candidates:
        if isinstance(obj, (io.BufferedIOBase, io.TextIOBase)):
            try:
                if obj.fileno() == fd:
                    return f"a buffered file on fd {fd} ({getattr(obj, 'name', '?')})"
            except (OSError, ValueError, AttributeError):
                continue
    return None


def _cancel(victim, plan):
    sc = plan.syscall
    try:
        return _native.force_cancel(victim.ident, victim.native_id, sc.nr, sc.args,
                                    sc.sp, sc.pc, plan.use_cancel, EXIT_TIMEOUT)
    except ValueError:
        return False                       # its thread state is gone: it ended
    except OSError as exc:
        if exc.errno != errno.ETIMEDOUT:          # failed before touching the thread
            raise _refuse(victim, f"the cancel could not be tried ({exc})") from exc
        raise ForceRefused(f"forced kill of {victim.describe()} failed: it was "
                           f"cancelled but has not exited ({exc}); its state was left "
                           "alone and it may still end at its next wait, which can "
                           "hang the process: save your work and restart the "
                           "kernel") from exc


def _forget_in_threading(victim):
    """Make threading agree the thread is over: is_alive(), join(), enumerate()."""
    thread = victim.thread
    with threading._active_limbo_lock:
        threading._active.pop(victim.ident, None)
    if thread is None:
        return
    handle = getattr(thread, "_handle", None)
    if handle is not None and hasattr(handle, "_set_done"):         # 3.13+
        forget = getattr(_native, "forget_thread_handle", None)
        if forget is not None:
            forget(handle, victim.ident, True)
        if not handle.is_done():
            handle._set_done()
    else:
        # 3.9-3.12: deleting the thread state released _tstate_lock; this
        # notices it and marks the Thread stopped.
        thread.is_alive()


def _notes(plan):
    how = ("a checked cancellation signal (glibc's SIGCANCEL, checked in the thread "
           "itself: no cancel can be left pending)") if plan.use_cancel else "a checked signal"
    notes = [f"{plan.name} ended by {how}: its finally blocks and __exit__ did NOT run"]
    if plan.held:
        notes.append("locks that stay held: " + ", ".join(plan.held))
        if any(text.startswith("RLock") for text in plan.held):
            notes.append("a later thread given the same ident would seem to own "
                         "its RLocks")
    else:
        notes.append("no lock it holds was found in its frames (C-level locks "
                     "cannot be seen)")
    return notes
