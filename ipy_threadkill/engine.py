"""The kill policy: escalate, one rung at a time, only as far as a thread needs.

1. exception          ThreadKilled is raised in the thread (and again if swallowed)
2. wake-up            a Condition wait (Event, Queue, Semaphore, ...) is woken
3. interrupted call   a blocking system call is ended with a harmless result
4. child stopped      the child processes the thread waits on are terminated
5. forced cancel      opt-in, for what none of the above can reach

Each rung leaves the interpreter consistent: the thread unwinds through its own
`finally` blocks and `with` statements, so locks are released and `threading`
sees it end. The mechanisms are in _native; this module decides when to use them.

kill() is the package's; Ladder (one attempt on one victim, with
the exception and the end of the job given) is what tasks.py builds a task stop
from; judge() says what the ladder would do with a thread, for the snapshot.
"""
import dataclasses
import os
import sys
import time

from . import (_arguments, _blocking, _children, _compat, _force, _frames, _kernel, _locks,
               _native, _native_stack, _proc, _raising, _syscalls)
from ._identity import resolve
from .errors import ForceRefused, KillPending, KillTimeout, ProtectedThread, ThreadKilled
from .report import KillReport, Rung, format_seconds

__all__ = ["kill", "cancel_kill", "pending_kill", "pending_kills", "interrupt_signal", "judge", "CallSites", "Ladder"]

# Free-threaded: raises withheld because the victim had moved on by the time
# of the raise, before it is raised anywhere in its own code instead.
_MOVING_ON_LIMIT = 50


def kill(target, *, timeout=2.0, force=False):
    """End a thread and return a KillReport.

    `target`: a threading.Thread, a ThreadInfo, an ident, a native thread id, or
    a unique thread name. Blocks until the thread is gone or `timeout` seconds
    pass. Raises NoSuchThread / AmbiguousTarget (LookupError), ProtectedThread
    (ValueError), InvalidTarget (TypeError), and KillTimeout (RuntimeError, with
    the report) if the thread survives; a failed kill leaves nothing pending.
    The one exception: a thread inside a C call that releases the GIL (hashing,
    compression, a numerical kernel) cannot be reached until the call returns;
    the kill then stays queued and KillPending (RuntimeError, with the report)
    says so. The thread ends as the call returns; cancel_kill() withdraws it,
    and a later kill() of the thread joins it.
    """
    timeout = _arguments.seconds(timeout)
    victim = resolve(target)
    reason = _kernel.protected_reason(victim.ident, victim.thread)
    if reason is not None:
        raise ProtectedThread(f"refusing to kill {victim.describe()}: {reason}")
    if force and not _force.available():
        raise ForceRefused(f"forced kill is not available here: "
                           f"{_force.unavailable_reason()}")
    return Ladder(victim, ThreadKilled).run(timeout, force=force)


def cancel_kill(target):
    """Withdraw the kill left pending in thread `target` (see KillPending); returns
    whether one was pending. `target` is what kill() takes."""
    victim = resolve(target)
    return _raising.cancel_pending(victim.ident)


def pending_kill(ident):
    """Since when (time.monotonic()) a kill is pending in thread `ident`, or None."""
    kept = _raising.pending(ident)
    return None if kept is None else kept.since


def pending_kills():
    """{ident: since when} of every thread with a kill pending."""
    return {ident: kept.since for ident, kept in _raising.every_pending().items()}


def interrupt_signal():
    """The signal system calls are interrupted with, once a kill has chosen it."""
    getter = getattr(_native, "interrupt_signal", None)
    return getter() if getter else None


def interrupts(blocking):
    """Whether the interrupt rung is the one for `blocking` (a child wait with
    known children is ended by stopping them instead)."""
    return blocking.syscall is not None and blocking.syscall_name in _syscalls.CALLS \
        and not (blocking.kind == "child" and blocking.children)


def judge(blocking, sites=None, cannot_interrupt=None, maps=None):
    """`blocking` as the ladder acts on it: a call the interrupt rung is for but
    must not (or cannot) touch is no gentle case, and says why. The ladder judges
    each look at its victim with it, the snapshot each thread's plan.

    `sites`: the CallSites of the calls seen so far; `cannot_interrupt`: why no
    call can be interrupted here, if so; `maps`: a _native_stack.SharedMaps
    created after `blocking` was seen, to read its caller with."""
    if blocking.gentle and interrupts(blocking):
        why = cannot_interrupt or (sites if sites is not None else CallSites()).refusal(
            blocking, maps)
        if why:
            return dataclasses.replace(blocking, gentle=False, rung=None, reason=why)
    return blocking


class CallSites:
    """The blocked system calls seen: who made each, and which were cut short."""

    def __init__(self):
        self.callers = {}             # blocked call site -> the object that made the call
        self.rewritten = set()        # call sites whose result was rewritten

    def refusal(self, blocking, maps=None):
        """Why the blocked call's result must not be rewritten, or None.

        A rewritten result means what the rung intends only to a caller known
        to treat it so: CPython's own built-ins, where the pending exception
        fires as the built-in returns. A foreign C loop would take a false end
        of file for data, or retry and be rewritten again and again. A sleep
        that ends early misleads no caller, once; the second time at the same
        place it is a loop that will not end."""
        sc, name = blocking.syscall, blocking.syscall_name
        site = (sc.nr, sc.args, sc.sp, sc.pc)
        call = _syscalls.CALLS[name]
        if call.any_caller and site not in self.rewritten:
            return None                 # whoever called it: no stack read needed
        if site not in self.callers:
            if len(self.callers) > 4096:            # a long-lived snapshotter's: bound it
                self.callers.clear()
            self.callers[site] = _native_stack.syscall_caller(sc.sp, maps)
        caller = self.callers[site]
        if _native_stack.is_interpreter_code(caller):
            return None
        where = os.path.basename(caller) if caller else "code that cannot be identified"
        if site in self.rewritten:
            return (f"it called {name} again from {where} after its last one was cut "
                    "short: that C code does not end when its calls do")
        return (f"it is in {name} called from {where}, not CPython's own code: a "
                f"rewritten result ({call.false_result}) could be misread there")


class Ladder:
    """One kill attempt on one victim: raise, watch, escalate, report.

    `exc_type` is raised in the victim; `finished()` says when the job is done
    (by default: the thread is gone). tasks.py reuses it to end a task only.
    """

    UNREACHABLE_AFTER = 0.25     # a state no gentle rung can end, seen this long: give up
    # Once a wake-up, an interrupted call or a stopped child has changed what the
    # victim's code will see (an Event.wait that returns, a read that ends; a
    # sleep cut short is no lie), giving up would let it carry on with a lie:
    # the kill is then seen through, for up to this long past the timeout.
    COMMITTED_GRACE = 2.0

    def __init__(self, victim, exc_type, finished=None, boundary=None):
        self.victim = victim
        self.exc_type = exc_type
        self.finished = finished or victim.gone
        self.target = _raising.Target(victim.ident, exc_type, boundary)
        self.line_raising = _raising.LineRaising(self.target)
        self.children = _children.Children()
        self.sites = CallSites()
        self.rung = Rung.EXCEPTION
        self.committed = False       # the victim was told something false: see it through
        self.blocked_in = None
        self.woken = set()           # ids of waiter locks already released
        self.queued = False          # an exception was queued (it may have fired)
        self.moving_on = 0           # raises withheld: the victim moved on meanwhile
        self.notes = []
        if not hasattr(_native, "interrupt_syscall"):
            self.notes.append("blocking system calls cannot be interrupted on this "
                              "platform; only the portable rungs were tried")
        self.unreachable_since = None
        self.cannot_interrupt = None  # why the system-call rung failed, if it did
        self.in_cleanup = False       # last seen running a finally / __exit__
        self.held_before = ()         # (lock, words): what it held when first seen
        self.signum = None            # the interrupt signal, claimed by run()

    def run(self, timeout, force=False):
        # A killer that traces or profiles (a debugger, coverage) would spin on
        # 3.11 while the victim's exception is pending (see _raising.withdraw).
        tracer, profiler = sys.gettrace(), sys.getprofile()
        sys.settrace(None)
        sys.setprofile(None)
        try:
            return self._run(timeout, force)
        finally:
            sys.settrace(tracer)
            sys.setprofile(profiler)

    def _run(self, timeout, force):
        victim = self.victim
        _raising.install()
        self._claim_signal()
        start = time.monotonic()
        deadline = start + timeout
        with self.target:
            try:
                # Before the first raise: a victim that dies at once, inside
                # Popen() after the fork, would otherwise orphan its child.
                first_look = _frames.other_threads().get(victim.ident)
                self.children.remember(victim.native_id, first_look)
                self.held_before = _locks.held(victim.ident, _frames.frames_of(first_look))
                if not _frames.in_cleanup(_frames.frames_of(first_look)):
                    self.queued = self._raise()
                del first_look
                delay = 20e-6
                while not self.finished():
                    now = time.monotonic()
                    blocking = self._step(now)
                    if self._should_give_up(now, deadline, blocking):
                        return self._give_up(blocking, start, force, timeout)
                    time.sleep(delay)             # lets the victim take the GIL and unwind
                    delay = min(delay * 2, 2e-3)
            finally:
                self.line_raising.stop()
        # The thread has ended: the rung that ended it stays the report's, and
        # what is stopped now is named among the children stopped.
        self.children.stop_orphans()
        stayed = _locks.still_held(self.held_before, victim.ident)
        if stayed:
            self.notes.append("its cleanup did not finish: " + ", ".join(stayed)
                              + " stayed held by the dead thread")
        return self._report(True, time.monotonic() - start, cleanup_ran=not stayed,
                            held_locks=stayed)

    def _raise(self):
        """Queue the exception; with a boundary, only while the victim is inside it
        (checked in C in one step, so a task that just ended is never hit)."""
        boundary = self.target.boundary
        if boundary is None and hasattr(_native, "raise_in_frame") \
                and not _proc.gil_keeps_threads_still():
            return self._raise_where_it_lands()
        if boundary is not None and hasattr(_native, "raise_in_thread_within"):
            return _native.raise_in_thread_within(self.victim.ident, self.exc_type, boundary)
        return _native.raise_in_thread(self.victim.ident, self.exc_type,
                                       self.victim.native_id or 0) > 0

    def _raise_where_it_lands(self):
        """Without a GIL the victim runs on between any look at it and the raise,
        and the exception fires at whatever check point it reaches first. In
        threading's own code that can be the wrong one: between Condition.wait's
        _release_save() and its `try`, it leaves the Condition's lock released;
        in the shutdown path, the thread stays on threading's list. So the
        victim is looked at afresh (frames and system call of one moment) and
        the exception is queued only while the frame seen is still the one it
        runs: its own code, or threading's while blocked in a call (the lock
        wait of Condition.wait sits inside its `try`). A victim that never holds
        still that long gets it anywhere in its own code, as with a GIL."""
        ident, tid = self.victim.ident, self.victim.native_id

        def look():
            return sys._current_frames().get(ident)

        frame, syscall = _proc.steady(tid, look) if tid else (look(), None)
        if frame is None:
            return False
        if self.moving_on >= _MOVING_ON_LIMIT:
            outermost = self.target.outermost_resisting(frame)
            if outermost is None:
                return _native.raise_in_thread(ident, self.exc_type, tid or 0) > 0
            return _native.raise_in_thread_within(ident, self.exc_type, outermost)
        if isinstance(syscall, _proc.Syscall) or self.target.raise_here(frame):
            if _native.raise_in_frame(ident, self.exc_type, frame):
                return True
        self.moving_on += 1
        return False

    def _step(self, now):
        """Look at the victim once and push it along; return what it is blocked in."""
        ident = self.victim.ident
        frames = _frames.other_threads()
        frame = frames.get(ident)
        if frame is None or not self.victim.has_thread_state():
            return None                       # gone, or its ident taken by another
        try:
            pending, handling = _native.exception_state(ident)
        except ValueError:
            return None
        if isinstance(handling, self.exc_type):
            return None                       # cleanup is running: let it finish
        if _frames.in_cleanup(_frames.frames_of(frame)):
            # A cleanup it runs (a finally, an __exit__) must finish: an exception
            # queued now would fire in it. Raised again once the thread is past it.
            if pending:
                _raising.withdraw(ident, self.victim.native_id)
                self.queued = False
            self.in_cleanup = True
            return None
        self.in_cleanup = False
        if not pending:
            if not self.target.resisting(frame):
                return None                   # past what we came to end: leave it
            if self._raise():
                if self.queued:               # it swallowed the last one
                    self.target.swallowed += 1
                self.queued = True
        if self.target.swallowed:
            self.line_raising.start()
        blocking = _blocking.analyze(ident, self.victim.native_id, frame, frames,
                                     self.signum)
        if self.blocked_in is None or blocking.kind != "running":
            self.blocked_in = self.blocked_in or blocking.description
        self.children.remember(self.victim.native_id, frame)
        blocking = judge(blocking, self.sites, self.cannot_interrupt)
        self._escalate(blocking, now)
        return blocking

    def _claim_signal(self):
        """Choose the interrupt signal before the victim is first looked at: a
        victim that blocks it must be recognised before it is ever sent (a
        blocked signal stays pending, and would be delivered whenever the thread
        unblocks it, long after this kill)."""
        claim = getattr(_native, "claim_signal", None)         # Linux only
        if claim is None:
            return
        try:
            self.signum = claim()
        except OSError as exc:            # e.g. every real-time signal is taken
            self.cannot_interrupt = f"no system call can be interrupted ({exc})"

    def _escalate(self, blocking, now):
        if blocking.kind == "condition" and blocking.waiter is not None:
            if id(blocking.waiter) not in self.woken:
                self.woken.add(id(blocking.waiter))
                try:
                    blocking.waiter.release()
                    self.rung = Rung.WAKEUP
                    self.committed = True
                except RuntimeError:          # woken meanwhile: nothing to do
                    pass
        elif blocking.kind == "child" and blocking.children:
            if self.children.stop(blocking.children, now):
                self.rung = Rung.CHILD
                self.committed = True
        if blocking.gentle and interrupts(blocking):
            self._interrupt(blocking)

    def _interrupt(self, blocking):
        sc, name = blocking.syscall, blocking.syscall_name
        interrupt = getattr(_native, "interrupt_syscall", None)
        if interrupt is None:
            return
        call = _syscalls.CALLS[name]
        site = (sc.nr, sc.args, sc.sp, sc.pc)
        if call.result < 0:
            self._unqueue_for_the_error(site, -call.result)
        try:
            fired = interrupt(self.victim.native_id, sc.nr, sc.args, sc.sp, sc.pc,
                              call.result, 0.02)
        except OSError as exc:            # e.g. every real-time signal is taken
            self.cannot_interrupt = f"its {name} cannot be interrupted ({exc})"
            return
        if fired:
            self.rung = Rung.SYSCALL
            self.committed = self.committed or not call.any_caller
            self.sites.rewritten.add(site)

    def _unqueue_for_the_error(self, site, errno):
        """Before a blocked call is made to fail: the error unwinds through the
        victim's cleanup (a library's `finally: lock.release()`), and a queued
        exception would fire at that cleanup's first check point. So it is
        taken back, and raised again once the error is past the cleanup (_step
        sees to that). The same call again means the error was caught and the
        call retried, without a moment in between to raise in: the exception
        is then raised at the victim's first line outside cleanup (LineRaising),
        or where no such raise exists here (3.11) it stays queued, or the kill
        would never end."""
        if site in self.sites.rewritten:
            self.line_raising.start()
            if not self.line_raising.on:
                return
        _raising.withdraw(self.victim.ident, self.victim.native_id)
        self.queued = False
        self.target.injected.add(errno)

    def _should_give_up(self, now, deadline, blocking):
        if self.committed:
            return now >= deadline + self.COMMITTED_GRACE
        return now >= deadline or (blocking is not None and self._unreachable(blocking, now))

    def _unreachable(self, blocking, now):
        if blocking.gentle:
            self.unreachable_since = None
            return False
        if self.unreachable_since is None:
            self.unreachable_since = now
        return now - self.unreachable_since >= self.UNREACHABLE_AFTER

    def _give_up(self, blocking, start, force, timeout):
        victim = self.victim
        if not force and self.target.boundary is None and blocking is not None \
                and blocking.kind == "c-code":
            self._leave_pending(start)
        _raising.withdraw(victim.ident, victim.native_id)   # a failed kill changes nothing
        if blocking is not None:
            self.blocked_in = blocking.description
        if force:
            return self.cancel(start)
        report = self._report(False, time.monotonic() - start)
        if self.in_cleanup:
            why = (f"it was still running its own cleanup (a finally block or __exit__) "
                   f"after {timeout:g} s, and a kill lets cleanup finish")
        elif blocking is not None and blocking.reason:
            why = blocking.reason
        else:
            why = f"still {self.blocked_in or 'running'} after {timeout:g} s"
        refused = _force.refusal(victim)
        advice = ("only a forced kill can end it (force=True, %killthread --force)"
                  if refused is None else f"a forced kill is not possible either ({refused})")
        raise KillTimeout(f"could not kill {victim.describe()}: {why}; {advice}", report,
                          force_refused=refused)

    def _leave_pending(self, start):
        """The victim is inside a C call that released the GIL: nothing reaches it
        there, and it will very likely return (hashing, compression, a numerical
        kernel). Withdrawing would let it run on for ever, so the exception stays
        queued and fires as the call returns; raises KillPending."""
        victim = self.victim
        call = _frames.callee(_frames.other_threads().get(victim.ident))
        try:
            if not _native.exception_state(victim.ident)[0]:
                self._raise()
        except ValueError:                  # its thread state is gone: it has ended
            return
        kept = _raising.keep_pending(victim, self.target, start)
        self.blocked_in = "inside a C call that releases the GIL" + (f" ({call})" if call else "")
        report = self._report(False, time.monotonic() - start)
        so_far = f"{format_seconds(time.monotonic() - kept.since)} so far"
        raise KillPending(f"{victim.describe()} is inside a C call that releases the GIL "
                          f"({call + ', ' if call else ''}{so_far}); it will end when the "
                          "call returns", report,
                          force_refused=_force.refusal(victim))

    def cancel(self, start):
        """The last rung, on its own: a forced cancel (raises ForceRefused when it
        is not safe). `start` is the time.monotonic() the kill began at."""
        cancelled = _force.cancel(self.victim, self.finished)
        if cancelled is None:                         # it ended on its own meanwhile
            return self._report(True, time.monotonic() - start)
        self.children.stop_orphans()
        self.notes.extend(cancelled.notes)
        self.blocked_in = self.blocked_in or f"blocked in {cancelled.name}"
        return self._report(True, time.monotonic() - start, rung=Rung.FORCED,
                            cleanup_ran=False, held_locks=cancelled.held)

    def _report(self, died, elapsed, rung=None, cleanup_ran=True, held_locks=()):
        notes = self.notes + [self.line_raising.refused] * bool(self.line_raising.refused)
        notes += _compat.fallback_notes()
        return KillReport(self.victim.name, self.victim.ident, self.victim.native_id,
                          died, elapsed, (rung or self.rung) if died else None,
                          cleanup_ran, self.blocked_in or "running Python",
                          self.children.words(), tuple(notes), tuple(held_locks))
