"""The kill policy: escalate, one rung at a time, only as far as a thread needs.

1. exception          ThreadKilled is raised in the thread (and again if swallowed)
2. wake-up            a Condition wait (Event, Queue, Semaphore, ...) is woken
3. interrupted call   a blocking system call is ended with a harmless result
4. child stopped      the child processes the thread waits on are terminated
5. forced cancel      opt-in, for what none of the above can reach

Each rung leaves the interpreter consistent: the thread unwinds through its own
`finally` blocks and `with` statements, so locks are released and `threading`
sees it end. The mechanisms are in _native; this module decides when to use them.
"""
import dataclasses
import dis
import enum
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Tuple

from . import _arguments, _blocking, _kernel, _native, _native_stack, _proc
from ._identity import resolve
from .errors import (ForceRefused, KillTimeout, ProtectedThread, TaskStopped,
                     ThreadKilled, _Persistent)


class Rung(str, enum.Enum):
    """What ended a thread."""

    EXCEPTION = "exception"
    WAKEUP = "wake-up"
    SYSCALL = "interrupted system call"
    CHILD = "child process stopped"
    FORCED = "forced cancel"

    def __str__(self):
        return self.value


@dataclass(frozen=True)
class KillReport:
    """What a kill did. `str(report)` is the one line a user sees."""

    name: str
    ident: int
    native_id: Optional[int]
    died: bool
    elapsed: float                      # seconds from the request to the thread gone
    rung: Optional[Rung]                # what ended it (None if it did not die)
    cleanup_ran: bool                   # its finally blocks / __exit__ ran
    blocked_in: str                     # what it was doing when asked to die
    children_stopped: Tuple[str, ...] = ()
    notes: Tuple[str, ...] = ()
    held_locks: Tuple[str, ...] = field(default=())

    def __str__(self):
        who = f"'{self.name}' (ident {self.ident})"
        if not self.died:
            return f"could not kill {who}: {self.blocked_in}"
        how = f"{self.rung}" if self.rung is Rung.EXCEPTION else f"{self.rung}: {self.blocked_in}"
        line = f"killed {who} in {_format_seconds(self.elapsed)} ({how}), "
        line += "cleanup ran" if self.cleanup_ran else "cleanup did NOT run"
        if self.children_stopped:
            line += "; stopped child " + ", ".join(self.children_stopped)
        if self.notes:
            line += "; " + "; ".join(self.notes)
        return line


def _format_seconds(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# Threads under a kill: ident -> list of _Target (several killers may share one).
# The exception's finalizer (run in the victim when a handler swallows it) asks
# _should_rearm whether it must come back.
_targets = {}
_targets_lock = threading.Lock()
# Code in which the exception must never be raised again: threading's shutdown
# path (the thread is finishing, not resisting) and this package's own code,
# which runs in the victim while it decides (see _should_rearm).
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _final(code):
    return code.co_filename == threading.__file__ or code.co_filename.startswith(_PACKAGE_DIR)


def _frame_within(frame, boundary):
    """Whether `frame` is `boundary` or called (directly or not) from it."""
    return any(f is boundary for f in _blocking.frames_of(frame))


class _Target:
    """A thread under a kill, for as long as the kill runs.

    `boundary`: None to end the whole thread; else the frame of the one call to
    end (a pool task), outside of which the exception must not come back.
    """

    def __init__(self, ident, exc_type, boundary=None):
        self.ident, self.exc_type, self.boundary = ident, exc_type, boundary
        self.swallowed = 0          # times the victim's handlers discarded it

    def resisting(self, frame):
        """Whether a thread at `frame` still runs what the kill is meant to end."""
        if self.boundary is not None:
            return _frame_within(frame, self.boundary)
        return any(not _final(f.f_code) for f in _blocking.frames_of(frame))

    def raise_here(self, frame):
        """Whether the exception may be raised in `frame` itself: never in threading's
        shutdown path or in this package's own code running in the victim."""
        return not _final(frame.f_code) and self.resisting(frame)

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


def _should_rearm(exc_type):
    """Whether a swallowed `exc_type` must come back (runs in the victim, see errors.py)."""
    entries = [t for t in _targets.get(threading.get_ident(), ()) if t.exc_type is exc_type]
    if not entries:
        return False
    try:
        discarded_in = sys._getframe(1)         # the frame that swallowed it (or the
                                                # line about to run, see line_raise)
    except ValueError:                          # discarded by C code: the thread is ending
        return False
    resisting = [t for t in entries if t.raise_here(discarded_in)]
    for target in resisting:
        target.swallowed += 1
    return bool(resisting)


_PUSH_EXC_INFO = dis.opmap.get("PUSH_EXC_INFO")


class _LineMonitor:
    """sys.monitoring LINE events (3.12+) on the victims' own code objects only.

    Measured on 3.12: the exception re-queued by a swallowing handler is not
    raised at the loop's backward jump, so it fires inside the `try` again. A
    LINE callback that raises lands on the loop's first line, outside it.
    """

    TOOL_NAME = "ipy_threadkill"
    _lock = threading.Lock()
    _tool = None
    _targets = {}               # ident -> _Target
    _codes = Counter()          # code object -> number of victims running it

    @staticmethod
    def available():
        return hasattr(sys, "monitoring")

    @classmethod
    def _acquire_tool(cls):
        monitoring = sys.monitoring
        if cls._tool is None:
            for tool in (4, 3):             # ids left free for tools like us
                if monitoring.get_tool(tool) is None:
                    monitoring.use_tool_id(tool, cls.TOOL_NAME)
                    monitoring.register_callback(tool, monitoring.events.LINE, cls._on_line)
                    cls._tool = tool
                    break
        return cls._tool

    @classmethod
    def start(cls, target, frame):
        with cls._lock:
            tool = cls._acquire_tool()
            if tool is None or frame is None:
                return
            cls._targets[target.ident] = target
            for code in {f.f_code for f in _blocking.frames_of(frame) if not _final(f.f_code)}:
                if not cls._codes[code]:
                    sys.monitoring.set_local_events(tool, code, sys.monitoring.events.LINE)
                cls._codes[code] += 1
            target.monitored = [f.f_code for f in _blocking.frames_of(frame) if not _final(f.f_code)]

    @classmethod
    def stop(cls, target):
        with cls._lock:
            cls._targets.pop(target.ident, None)
            for code in set(getattr(target, "monitored", ())):
                cls._codes[code] -= 1
                if not cls._codes[code]:
                    del cls._codes[code]
                    sys.monitoring.set_local_events(cls._tool, code, 0)
            if not cls._targets and cls._tool is not None:
                sys.monitoring.free_tool_id(cls._tool)
                cls._tool = None

    @classmethod
    def _on_line(cls, code, line):
        target = cls._targets.get(threading.get_ident())
        if target is None:
            return None
        _, handling = _native.exception_state(target.ident)
        frame = sys._getframe(1)
        if isinstance(handling, target.exc_type) or not target.raise_here(frame):
            return None
        if code.co_code[frame.f_lasti] == _PUSH_EXC_INFO:
            return None         # a handler starts: the exception is in flight already
        _native.raise_in_thread(target.ident, None)     # raised here instead of queued
        raise target.exc_type


_hook_lock = threading.Lock()

# Calls whose rewritten result misleads no caller: a sleep that ends early.
_ANY_CALLER = frozenset(("clock_nanosleep", "nanosleep"))
# What a rewritten result would tell a caller that is not CPython's.
_FALSE_RESULTS = dict.fromkeys(("read", "readv", "pread64", "recvfrom", "recvmsg"),
                               "a false end of file")
_FALSE_RESULTS.update(dict.fromkeys(("select", "pselect6", "poll", "ppoll", "epoll_wait",
                                     "epoll_pwait", "epoll_pwait2", "rt_sigtimedwait"),
                                    "a false timeout"))
_FALSE_RESULTS.update(dict.fromkeys(("wait4", "waitid"), "a false 'no child has exited'"))
_FALSE_RESULTS.update(dict.fromkeys(("accept", "accept4", "connect", "write", "writev",
                                     "pwrite64", "sendto", "sendmsg"), "a false error"))


def _forget_kills_after_fork():
    """In a child forked while another thread was killing, that thread's locks
    stay held for ever (it does not exist there) and its targets are threads
    the child does not have: start afresh, or the child's first kill hangs."""
    global _targets_lock, _hook_lock
    _targets_lock, _hook_lock = threading.Lock(), threading.Lock()
    _targets.clear()
    _LineMonitor._lock = threading.Lock()
    _LineMonitor._targets = {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_kills_after_fork)


def _install_hooks():
    """Make the exceptions we raise end threads silently; done on first kill."""
    with _hook_lock:
        if not isinstance(_Persistent.__dict__.get("__del__"), classmethod):
            _native.set_rearm_policy(_should_rearm)
            _Persistent.__del__ = classmethod(_native.rearm)
        current = threading.excepthook
        if getattr(current, "_ipy_threadkill", False):
            return

        def excepthook(args, _previous=current):
            if isinstance(args.exc_value, ThreadKilled) or args.exc_type is ThreadKilled:
                return
            _previous(args)

        excepthook._ipy_threadkill = True
        threading.excepthook = excepthook

        # The exception can fire in whatever Python code the victim runs, a
        # weakref callback or a __del__ included; that code cannot propagate it
        # and reports it as "Exception ignored". Its finalizer queues it again
        # (see _should_rearm), so the kill goes on: nothing to report.
        unraisable = sys.unraisablehook

        def unraisablehook(args, _previous=unraisable):
            if isinstance(args.exc_value, (ThreadKilled, TaskStopped)) \
                    and _targets.get(threading.get_ident()):
                return
            _previous(args)

        unraisablehook._ipy_threadkill = True
        sys.unraisablehook = unraisablehook


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


def _interrupt_signal():
    getter = getattr(_native, "interrupt_signal", None)
    return getter() if getter else None


def kill(target, *, timeout=2.0, force=False):
    """End a thread and return a KillReport.

    `target`: a threading.Thread, a ThreadInfo, an ident, a native thread id, or
    a unique thread name. Blocks until the thread is gone or `timeout` seconds
    pass. Raises NoSuchThread / AmbiguousTarget (LookupError), ProtectedThread
    (ValueError), InvalidTarget (TypeError), and KillTimeout (RuntimeError, with
    the report) if the thread survives; a failed kill leaves nothing pending.
    """
    timeout = _arguments.seconds(timeout)
    victim = resolve(target)
    reason = _kernel.protected_reason(victim.ident, victim.thread)
    if reason is not None:
        raise ProtectedThread(f"refusing to kill {victim.describe()}: {reason}")
    if force and not _force_available():
        raise ForceRefused("forced kill is not available on this platform")
    return Ladder(victim, ThreadKilled).run(timeout, force=force)


def release():
    """Give back what kills installed process-wide: the interrupt signal's handler.

    Returns whether a handler was restored. Called when the IPython extension is
    unloaded; the next kill that needs the signal installs it again.
    """
    releaser = getattr(_native, "release_signal", None)     # Linux only
    return bool(releaser and releaser())


def _force_available():
    return hasattr(_native, "force_cancel")


class Ladder:
    """One kill attempt on one victim: raise, watch, escalate, report.

    `exc_type` is raised in the victim; `finished()` says when the job is done
    (by default: the thread is gone). tasks.py reuses it to end a task only.
    """

    GRACE_FOR_CHILDREN = 0.5     # seconds between SIGTERM and SIGKILL
    UNREACHABLE_AFTER = 0.25     # a state no gentle rung can end, seen this long: give up

    def __init__(self, victim, exc_type, finished=None, boundary=None):
        self.victim = victim
        self.exc_type = exc_type
        self.finished = finished or victim.gone
        self.target = _Target(victim.ident, exc_type, boundary)
        self.rung = Rung.EXCEPTION
        self.committed = False       # the victim was told something false: see it through
        self.blocked_in = None
        self.children = {}           # pid -> "pid command" for every child we signalled
        self.popens = []             # Popen objects seen in the victim's frames
        self.forked = {}             # pid -> start ticks of children the victim forked
        self.woken = set()           # ids of waiter locks already released
        self.notes = []
        if not hasattr(_native, "interrupt_syscall"):
            self.notes.append("blocking system calls cannot be interrupted on this "
                              "platform; only the portable rungs were tried")
        self.unreachable_since = None
        self.line_raising = False    # see _native.line_raise (3.9 and 3.10 only)
        self.cannot_interrupt = None  # why the system-call rung failed, if it did
        self.signum = None            # the interrupt signal, claimed by run()
        self.callers = {}             # blocked call site -> the object that made the call
        self.rewritten = set()        # call sites whose result was rewritten

    def run(self, timeout, force=False):
        # A killer that traces or profiles (a debugger, coverage) would spin on
        # 3.11 while the victim's exception is pending (see withdraw()).
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
        _install_hooks()
        self._claim_signal()
        start = time.monotonic()
        deadline = start + timeout
        with self.target:
            try:
                # Before the first raise: a victim that dies at once, inside
                # Popen() after the fork, would otherwise orphan its child.
                self._remember_popens(sys._current_frames().get(victim.ident))
                self._raise()
                delay = 20e-6
                while not self.finished():
                    now = time.monotonic()
                    blocking = self._step(now)
                    if self._should_give_up(now, deadline, blocking):
                        return self._give_up(blocking, start, force, timeout)
                    time.sleep(delay)             # lets the victim take the GIL and unwind
                    delay = min(delay * 2, 2e-3)
            finally:
                self._stop_line_raising()
        self._stop_orphaned_children()
        return self._report(True, time.monotonic() - start)

    def _raise(self):
        """Queue the exception; with a boundary, only while the victim is inside it
        (checked in C in one step, so a task that just ended is never hit)."""
        boundary = self.target.boundary
        if boundary is not None and hasattr(_native, "raise_in_thread_within"):
            return _native.raise_in_thread_within(self.victim.ident, self.exc_type, boundary)
        return _native.raise_in_thread(self.victim.ident, self.exc_type,
                                       self.victim.native_id or 0) > 0

    def _step(self, now):
        """Look at the victim once and push it along; return what it is blocked in."""
        ident = self.victim.ident
        frames = sys._current_frames()
        frame = frames.get(ident)
        if frame is None or not self.victim.has_thread_state():
            return None                       # gone, or its ident taken by another
        try:
            pending, handling = _native.exception_state(ident)
        except ValueError:
            return None
        if isinstance(handling, self.exc_type):
            return None                       # cleanup is running: let it finish
        if not pending:
            if not self.target.resisting(frame):
                return None                   # past what we came to end: leave it
            if self._raise():                 # it swallowed the last one
                self.target.swallowed += 1
        if self.target.swallowed:
            self._start_line_raising()
        blocking = _blocking.analyze(ident, self.victim.native_id, frame, frames,
                                     self.signum)
        if self.blocked_in is None or blocking.kind != "running":
            self.blocked_in = self.blocked_in or blocking.description
        self._remember_popens(frame)
        if blocking.gentle and self._would_interrupt(blocking):
            why = self.cannot_interrupt or self._rewrite_refusal(blocking)
            if why:
                blocking = dataclasses.replace(blocking, gentle=False, rung=None, reason=why)
        self._escalate(blocking, now)
        return blocking

    def _rewrite_refusal(self, blocking):
        """Why the blocked call's result must not be rewritten, or None.

        A rewritten result means what the rung intends only to a caller known
        to treat it so: CPython's own built-ins, where the pending exception
        fires as the built-in returns. A foreign C loop would take a false end
        of file for data, or retry and be rewritten again and again. A sleep
        that ends early misleads no caller, once; the second time at the same
        place it is a loop that will not end."""
        sc, name = blocking.syscall, blocking.syscall_name
        site = (sc.nr, sc.args, sc.sp, sc.pc)
        if site not in self.callers:
            self.callers[site] = _native_stack.syscall_caller(sc.sp)
        caller = self.callers[site]
        if _native_stack.is_interpreter_code(caller):
            return None
        if name in _ANY_CALLER and site not in self.rewritten:
            return None
        where = os.path.basename(caller) if caller else "code that cannot be identified"
        if site in self.rewritten:
            return (f"it called {name} again from {where} after its last one was cut "
                    "short: that C code does not end when its calls do")
        return (f"it is in {name} called from {where}, not CPython's own code: a "
                f"rewritten result ({_FALSE_RESULTS.get(name, 'a false return')}) "
                "could be misread there")

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

    def _start_line_raising(self):
        """Raise at the victim's next line: the way out of a swallowing loop on
        interpreters whose queued exception keeps firing inside the `try`."""
        if self.line_raising:
            return
        if hasattr(_native, "line_raise"):                  # 3.9, 3.10
            _native.line_raise(self.victim.ident, self.exc_type)
        elif _LineMonitor.available():                       # 3.12+
            frame = sys._current_frames().get(self.victim.ident)
            _LineMonitor.start(self.target, frame)
        else:
            return
        self.line_raising = True

    def _stop_line_raising(self):
        if not self.line_raising:
            return
        if hasattr(_native, "line_raise"):
            try:
                _native.line_raise(self.victim.ident, None)
            except ValueError:                # its thread state is gone: nothing to undo
                pass
        else:
            _LineMonitor.stop(self.target)
        self.line_raising = False

    def _remember_popens(self, frame):
        """Note the child processes the victim drives: Popen objects in its frames,
        and what it forked (a Popen may not know its pid yet)."""
        if self.victim.native_id is not None:
            for pid in _proc.thread_children(self.victim.native_id):
                if pid not in self.forked:
                    self.forked[pid] = _proc.process_start(pid)
        if frame is None:
            return
        for popen in _blocking.popen_children(list(_blocking.frames_of(frame))):
            if all(popen is not p for p in self.popens):
                self.popens.append(popen)

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
            self._stop_children(blocking.children, now)
        if blocking.gentle and self._would_interrupt(blocking):
            self._interrupt(blocking)

    @staticmethod
    def _would_interrupt(blocking):
        """Whether the interrupt rung is the one for `blocking` (a child wait with
        known children is ended by stopping them instead)."""
        return blocking.syscall is not None and blocking.syscall_name in _blocking.RESULTS \
            and not (blocking.kind == "child" and blocking.children)

    def _interrupt(self, blocking):
        sc = blocking.syscall
        interrupt = getattr(_native, "interrupt_syscall", None)
        if interrupt is None:
            return
        try:
            fired = interrupt(self.victim.native_id, sc.nr, sc.args, sc.sp, sc.pc,
                              _blocking.RESULTS[blocking.syscall_name], 0.02)
        except OSError as exc:            # e.g. every real-time signal is taken
            self.cannot_interrupt = f"its {blocking.syscall_name} cannot be interrupted ({exc})"
            return
        if fired:
            self.rung = Rung.SYSCALL
            self.committed = self.committed or blocking.syscall_name not in _ANY_CALLER
            self.rewritten.add((sc.nr, sc.args, sc.sp, sc.pc))

    def _stop_children(self, pids, now):
        """SIGTERM the children (and their descendants); SIGKILL after a grace period."""
        for pid in pids:
            if pid not in self.children:
                family = [pid] + list(_proc.children(pid))
                self.children[pid] = (f"{pid} ({_proc.command(pid) or '?'})", now, family)
                self._signal(family, signal.SIGTERM)
                self.rung = Rung.CHILD
                self.committed = True
            else:
                _, since, family = self.children[pid]
                if now - since > self.GRACE_FOR_CHILDREN:
                    self._signal(family, signal.SIGKILL)

    @staticmethod
    def _signal(pids, signum):
        for pid in pids:
            try:
                os.kill(pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def _stop_orphaned_children(self):
        """Children the dead thread was driving would run on unsupervised: stop them."""
        for popen in self.popens:
            # pid is None while Popen() has not forked yet: there is no child.
            if popen.pid is not None and popen.poll() is None:
                self._stop_children([popen.pid], time.monotonic())
                try:
                    popen.wait(self.GRACE_FOR_CHILDREN)
                except Exception:
                    popen.kill()
                    popen.wait()
        self._stop_unreachable_children()

    def _stop_unreachable_children(self):
        """A victim killed between fork and `Popen.pid = ...` leaves a child that no
        Popen knows: nobody could ever stop or reap it. Stop and reap those."""
        alive = {pid: started for pid, started in self.forked.items()
                 if _proc.process_start(pid) == started}
        if not alive:
            return
        owned = {obj.pid for obj in gc.get_objects() if isinstance(obj, subprocess.Popen)}
        for pid in set(alive) - owned:
            self._stop_children([pid], time.monotonic())
            deadline = time.monotonic() + self.GRACE_FOR_CHILDREN
            while not self._reaped(pid):
                if time.monotonic() > deadline:
                    self._signal([pid], signal.SIGKILL)
                    deadline = float("inf")
                time.sleep(0.001)

    @staticmethod
    def _reaped(pid):
        try:
            return os.waitpid(pid, os.WNOHANG)[0] == pid
        except ChildProcessError:         # reaped by someone else meanwhile
            return True

    # Once a wake-up, an interrupted call or a stopped child has changed what the
    # victim's code will see (an Event.wait that returns, a read that ends; a
    # sleep cut short is no lie), giving up would let it carry on with a lie:
    # the kill is then seen through, for up to this long past the timeout.
    COMMITTED_GRACE = 2.0

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
        withdraw(victim.ident, victim.native_id)        # a failed kill changes nothing
        if blocking is not None:
            self.blocked_in = blocking.description
        if force:
            from . import _force
            return _force.force_kill(self, blocking, start)
        report = self._report(False, time.monotonic() - start)
        why = blocking.reason if blocking is not None and blocking.reason else \
            f"still {self.blocked_in or 'running'} after {timeout:g} s"
        from . import _force
        refused = _force.refusal(victim)
        advice = ("only a forced kill can end it (force=True, %killthread --force)"
                  if refused is None else f"a forced kill is not possible either ({refused})")
        raise KillTimeout(f"could not kill {victim.describe()}: {why}; {advice}", report,
                          force_refused=refused)

    def _report(self, died, elapsed, rung=None, cleanup_ran=True):
        children = tuple(text for text, _, _ in self.children.values())
        return KillReport(self.victim.name, self.victim.ident, self.victim.native_id,
                          died, elapsed, (rung or self.rung) if died else None,
                          cleanup_ran, self.blocked_in or "running Python", children,
                          tuple(self.notes))
