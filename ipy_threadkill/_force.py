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
import os
import sys
import sysconfig
import time

from . import _compat, _fds, _frames, _locks, _native, _native_stack, _proc, _syscalls
from .errors import ForceRefused

EXIT_TIMEOUT = 1.0          # seconds for a cancelled thread to leave the OS
_SIGCANCEL = 32             # glibc's cancellation signal (__SIGRTMIN, kept from users)
_RETRY_PAUSE = 0.01         # seconds between attempts on a thread that left its call

def available():
    """Whether this platform and interpreter have a forced cancel at all."""
    return hasattr(_native, "force_cancel")


def unavailable_reason():
    """Why there is no forced cancel here (only meaningful if not available())."""
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        # The C side disposes of the cancelled thread's state relying on the
        # GIL to keep every other thread out meanwhile; doing the same under
        # the free-threaded build's stop-the-world has not been shown safe.
        return ("the free-threaded build has no GIL to keep every other thread out "
                "while a cancelled thread's state is disposed of")
    return "no safe forced cancel on this platform"


def cancel(victim, finished):
    """End `victim` (an _identity.Victim) by a forced cancel; return the Plan it
    was done by, or None if `finished()` became true first (nothing was done).

    Raises ForceRefused when it is not safe; the thread is then untouched
    (unless the message says it was cancelled but did not exit).
    """
    if not available():
        raise ForceRefused(f"refusing a forced kill of {victim.describe()}: "
                           f"{unavailable_reason()}")
    if finished():
        return None
    for _ in range(3):
        plan = _plan(victim)
        if _cancel(victim, plan):
            break
        if finished():                  # it ended on its own meanwhile
            return None
        time.sleep(_RETRY_PAUSE)        # let a thread that woke block again
    else:
        raise ForceRefused(f"refusing a forced kill of {victim.describe()}: it keeps "
                           "waking up from the system call it was blocked in, so it "
                           "cannot be cancelled safely there; try again")
    _forget_in_threading(victim)
    return plan


def refusal(victim):
    """Why a forced kill of `victim` (an _identity.Victim) would be refused now,
    or None if it would be tried. Changes nothing; for messages and buttons."""
    if not available():
        return unavailable_reason()
    try:
        _plan(victim)
    except ForceRefused as exc:
        return str(exc).split(": ", 1)[-1]
    return None


class Plan:
    """What was checked before a cancel: the call, how to end it, the locks;
    after it, what the kill's report must say."""

    def __init__(self, syscall, name, use_cancel, waiting_for, held):
        self.syscall, self.name, self.use_cancel = syscall, name, use_cancel
        self.waiting_for, self.held = waiting_for, tuple(held)

    @property
    def notes(self):
        how = ("a checked cancellation signal (glibc's SIGCANCEL, checked in the "
               "thread itself: no cancel can be left pending)") if self.use_cancel \
            else "a checked signal"
        notes = [f"{self.name} ended by {how}: its finally blocks and __exit__ did NOT run"]
        if self.held:
            notes.append("locks that stay held: " + ", ".join(self.held))
            if any(text.startswith("RLock") for text in self.held):
                notes.append("a later thread given the same ident would seem to own "
                             "its RLocks")
        else:
            notes.append("no lock it holds was found in its frames (C-level locks "
                         "cannot be seen)")
        return notes


def _refuse(victim, why):
    return ForceRefused(f"refusing a forced kill of {victim.describe()}: {why}")


def _plan(victim):
    """Check that `victim` may be cancelled now; return a Plan or raise ForceRefused."""
    tid = victim.native_id
    if tid is None:
        raise _refuse(victim, "its OS thread id is unknown")
    frames = _frames.other_threads()
    frame = frames.get(victim.ident)
    if frame is None:
        raise _refuse(victim, "it has no Python thread state any more")
    stack = list(_frames.frames_of(frame))
    del frame, frames
    sc = _proc.syscall(tid)
    if sc is None:
        raise _refuse(victim, "it is not blocked in a system call (it runs Python, "
                      "waits for the GIL or runs C code): a cancel could land "
                      "anywhere, even holding the GIL; kill it without force (an "
                      "exception reaches code that runs), or wait for its C call")
    name = _syscalls.name_of(sc.nr) or str(sc.nr)
    _check_unwindable(victim, sc)
    waiting_for = _check_call(victim, name, sc, stack)
    held = _locks.held_by(victim.ident, stack, waiting_for)
    _check_handle(victim)
    try:
        signum = _native.force_signal()
    except OSError as exc:
        raise _refuse(victim, f"no signal to end it with ({exc})") from exc
    use_cancel = _signal_blocked(victim, tid, signum)
    if use_cancel:
        _check_cancel_signal_open(victim, tid)
    return Plan(sc, name, use_cancel, waiting_for, held)


def _check_unwindable(victim, sc):
    """Refuse unless every native frame the cancel would unwind is shown safe:
    pthread_exit and pthread_cancel run each frame's unwinder, and C++ or Rust
    frames may abort the whole process there (std::terminate in a noexcept
    function, a catch (...) that does not rethrow, PyO3's abort on a foreign
    unwind); a C library that takes locks of its own may hold one."""
    hazards = _native_stack.unwind_hazards(sc.sp)
    if hazards is None:
        raise _refuse(victim, "its native stack cannot be read, so the code a cancel "
                      "would unwind cannot be shown safe")
    if hazards:
        path, why, aborts = next((h for h in hazards if h[2]), hazards[0])
        if aborts:
            raise _refuse(victim, f"inside {os.path.basename(path)} ({why}): a forced "
                          "cancel could abort the process; make the call return, or "
                          "restart the kernel")
        raise _refuse(victim, f"inside {os.path.basename(path)} ({why}): a forced "
                      "cancel could leave one held, and the next call into that "
                      "library would wait for ever; the thread ends when that call "
                      "returns (a database's busy timeout, a network timeout), or "
                      "restart the kernel")


def _check_call(victim, name, sc, stack):
    """Refuse a call a cancel must not end; return the Lock waited on, if any."""
    if name == "futex":
        return _lock_waited_on(victim, sc, stack)
    call = _syscalls.CALLS.get(name)
    if call is None or not call.cancellable:
        raise _refuse(victim, f"it is blocked in {name}, not a call a cancel is known "
                      "to be safe in; make the call return, or restart the kernel")
    if call.file_read:
        owner = _fds.buffered_file(sc.args[0], stack)
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
    for lock in _locks.locks_in(stack):
        if semaphore_of(lock) == sc.args[0]:
            return lock
    raise _refuse(victim, "it waits on a futex that is not a Lock found in its "
                  "frames (the GIL, CPython's own locks or a C library's): "
                  "cancelling it there is not safe; release what it waits for, "
                  "or restart the kernel")


def _check_handle(victim):
    """3.13: interpreter exit would join a killed non-daemon thread forever unless
    its handle can be taken off the exit list: check that before killing."""
    thread = victim.thread
    handle = _compat.thread_handle(thread)
    if handle is None:
        if sys.version_info >= (3, 13) and thread is not None and not thread.daemon:
            raise _refuse(victim, "interpreter exit would wait for it forever (it is "
                          "not a daemon thread and this Python's thread handle is not "
                          "one this package knows); restart the kernel")
        return
    forget = getattr(_native, "forget_thread_handle", None)
    try:
        if forget is not None:
            forget(handle, victim.ident, False)
            return
    except (TypeError, ValueError):
        pass
    if not thread.daemon:
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
    _compat.forget_thread(victim.ident)
    if thread is None:
        return
    handle = _compat.thread_handle(thread)
    if handle is not None:                                          # 3.13+
        forget = getattr(_native, "forget_thread_handle", None)
        if forget is not None:
            forget(handle, victim.ident, True)
        if not handle.is_done():
            handle._set_done()
    else:
        # 3.9-3.12: deleting the thread state released _tstate_lock; this
        # notices it and marks the Thread stopped.
        thread.is_alive()
