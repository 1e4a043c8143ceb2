"""What a thread is blocked in, and which rung of the kill ladder can end it.

Two sources, both read without stopping the thread: the OS (the system call it
sits in, from /proc) and Python (its frames, from sys._current_frames()). The
snapshot shows the result in words; the engine acts on the objects found here
(a Condition's waiter lock, child process ids, the system call to interrupt).
"""
import ctypes
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from . import _native, _proc

SYSCALLS = getattr(_native, "SYSCALLS", {})
_NAMES = {nr: name for name, nr in SYSCALLS.items()}

# What the interrupted call returns. 0 means "timed out / end of file / no child
# changed": CPython then returns normally and the pending exception fires inside
# the caller's `with`, so locks are released. accept, connect and writes would
# retry or misread a 0, so they fail instead.
_EOF_OR_TIMEOUT = ("clock_nanosleep", "nanosleep", "select", "pselect6", "poll",
                   "ppoll", "epoll_wait", "epoll_pwait", "epoll_pwait2", "read",
                   "readv", "pread64", "recvfrom", "recvmsg", "wait4", "waitid",
                   "pause", "rt_sigsuspend", "rt_sigtimedwait")
RESULTS = {name: 0 for name in _EOF_OR_TIMEOUT}
RESULTS.update(accept=-103, accept4=-103,          # ECONNABORTED
               connect=-110,                       # ETIMEDOUT
               write=-32, writev=-32, pwrite64=-32,  # EPIPE
               sendto=-32, sendmsg=-32)

_SLEEPS = ("clock_nanosleep", "nanosleep")
_POLLS = ("select", "pselect6", "poll", "ppoll", "epoll_wait", "epoll_pwait", "epoll_pwait2")
_READS = ("read", "readv", "pread64", "recvfrom", "recvmsg")
_WRITES = ("write", "writev", "pwrite64", "sendto", "sendmsg")
_CHILD_WAITS = ("wait4", "waitid")
_SIGNAL_WAITS = ("pause", "rt_sigsuspend", "rt_sigtimedwait")
TIMER_ABSTIME = 1

# How to describe the object a Condition.wait() serves, by the caller's function.
_CONDITION_USERS = {
    "wait": "an Event",                 # Event.wait, Barrier.wait
    "get": "a Queue",
    "put": "a Queue (full)",
    "acquire": "a Semaphore",
    "result": "a Future",
    "exception": "a Future",
    "join": "a Queue to be emptied",
}


@dataclass(frozen=True)
class Blocking:
    """What a thread is doing, as far as can be seen from outside it.

    kind: running | c-code | sleep | syscall | io-wait | condition | lock | join |
          child | signal-wait | unknown
    """

    kind: str
    description: str
    syscall_name: Optional[str] = None
    syscall: Optional[_proc.Syscall] = None
    waiter: object = None
    children: tuple = ()
    gentle: bool = True
    reason: str = ""
    rung: Optional[str] = "exception"
    until: Optional[float] = None       # time.time() a sleep ends at, when known
    details: dict = field(default_factory=dict)


def frames_of(frame):
    """The frames of a stack, innermost first."""
    while frame is not None:
        yield frame
        frame = frame.f_back


def _is_stdlib(code):
    return code.co_filename.startswith(_STDLIB_PREFIXES)


_STDLIB_PREFIXES = tuple(
    p for p in {os.path.dirname(threading.__file__) + os.sep,
                os.path.dirname(os.__file__) + os.sep} if p)


def _locals(frame):
    try:
        return frame.f_locals
    except Exception:           # a frame of a thread that is changing under us
        return {}


def condition_waiter(frames):
    """(waiter lock, what it serves) if the thread is parked in Condition.wait."""
    wait_code = threading.Condition.wait.__code__
    for i, frame in enumerate(frames):
        if frame.f_code is wait_code:
            waiter = _locals(frame).get("waiter")
            user = next((f for f in frames[i + 1:] if f.f_code is not wait_code), None)
            what = "a Condition"
            if user is not None:
                name = user.f_code.co_name
                what = _CONDITION_USERS.get(name, what) if _is_stdlib(user.f_code) else what
                if name == "wait" and "Barrier" in type(_locals(user).get("self")).__name__:
                    what = "a Barrier"
                if name == "wait_for":
                    what = "a Condition"
            return waiter, what
    return None, None


def popen_children(frames):
    """Child processes (Popen objects) the thread is waiting on, found in its frames."""
    found = []
    for frame in frames:
        for value in list(_locals(frame).values()):
            if isinstance(value, subprocess.Popen) and value.returncode is None \
                    and all(value is not p for p in found):
                found.append(value)
    return found


def _sockets(frames):
    for frame in frames:
        for value in list(_locals(frame).values()):
            if isinstance(value, socket.socket):
                yield value


def describe_fd(fd, frames):
    """A few words for file descriptor `fd`: a socket's addresses, a pipe, a file."""
    for sock in _sockets(frames):
        try:
            if sock.fileno() != fd:
                continue
        except OSError:
            continue
        try:
            peer = sock.getpeername()
            return f"socket connected to {_address(peer)}"
        except OSError:
            pass
        try:
            return f"socket {_address(sock.getsockname())}"
        except OSError:
            break
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd {fd}"
    if target.startswith("socket:"):
        return f"socket (fd {fd})"
    if target.startswith("pipe:"):
        return f"pipe (fd {fd})"
    if target.startswith("/dev/pts") or target.startswith("/dev/tty"):
        return f"terminal {target}"
    return target


def _address(addr):
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr) or "unnamed"


def _sleep_deadline(name, sc):
    """When a clock_nanosleep with TIMER_ABSTIME on CLOCK_MONOTONIC ends (time.time())."""
    if name != "clock_nanosleep" or sc.args[1] != TIMER_ABSTIME or sc.args[0] != time.CLOCK_MONOTONIC:
        return None
    try:
        # The timespec lives on the sleeping thread's stack; it is mapped while the
        # thread sits in the call, which /proc just said it does.
        sec, nsec = ctypes.cast(sc.args[2], ctypes.POINTER(ctypes.c_long * 2)).contents
    except (ValueError, OSError):
        return None
    return time.time() + (sec + nsec / 1e9 - time.monotonic())


def _held_locks(frame):
    """Locked Lock/RLock objects the innermost user frame refers to."""
    lock_types = (type(threading.Lock()), type(threading.RLock()))
    seen = []
    scopes = [_locals(frame)]
    names = set(frame.f_code.co_names)
    scopes.append({k: v for k, v in frame.f_globals.items() if k in names})
    me = _locals(frame).get("self")
    if me is not None:
        scopes.append({k: v for k, v in getattr(me, "__dict__", {}).items() if k in names})
    for scope in scopes:
        for value in list(scope.values()):
            if isinstance(value, lock_types) and _locked(value) and all(value is not s for s in seen):
                seen.append(value)
    return seen


def _locked(lock):
    if hasattr(lock, "locked"):
        return lock.locked()
    return "locked" in repr(lock) and "unlocked" not in repr(lock)   # RLock before 3.14


def _lock_holder(lock, waiter_ident, all_frames):
    """Name of the thread that probably holds `lock`: RLocks know their owner;
    for a plain Lock, the other thread whose frames refer to it."""
    text = repr(lock)
    if "owner=" in text:
        owner = int(text.split("owner=")[1].split()[0])
        return _thread_name(owner) if owner else None
    for ident, frame in all_frames.items():
        if ident == waiter_ident:
            continue
        for f in frames_of(frame):
            scopes = [_locals(f), getattr(_locals(f).get("self"), "__dict__", {}),
                      f.f_globals]
            if any(value is lock for scope in scopes for value in list(scope.values())):
                return _thread_name(ident)
    return None


def _thread_name(ident):
    thread = threading._active.get(ident)
    return thread.name if thread is not None else f"thread {ident}"


def _join_target(frames):
    for frame in frames:
        if frame.f_code.co_name in ("join", "_wait_for_tstate_lock") and _is_stdlib(frame.f_code):
            joined = _locals(frame).get("self")
            if isinstance(joined, threading.Thread):
                return joined
    return None


def user_frame(frame):
    """The innermost frame outside the standard library (else the innermost)."""
    for f in frames_of(frame):
        if not _is_stdlib(f.f_code) and "ipy_threadkill" not in f.f_code.co_filename:
            return f
    return frame


def analyze(ident, native_id, frame=None, all_frames=None, signum=None):
    """The Blocking of thread `ident` (OS thread `native_id`) right now."""
    if all_frames is None:
        all_frames = sys._current_frames()
    if frame is None:
        frame = all_frames.get(ident)
    frames = list(frames_of(frame))
    sc = _proc.syscall(native_id) if native_id else None
    name = _NAMES.get(sc.nr) if sc is not None else None

    waiter, serves = condition_waiter(frames)
    if waiter is not None:
        return Blocking("condition", f"waiting on {serves}", name, sc, waiter=waiter,
                        rung="wake-up")

    if sc is None:
        # We hold the GIL, so a thread on a CPU is running C code without it.
        if native_id is not None and _proc.alive(native_id):
            return Blocking("c-code", "running C code (GIL released); it ends when "
                            "the call returns", rung="exception")
        return Blocking("running", "running Python", rung="exception")

    blocked_signal = signum is not None and _proc.signal_blocked(native_id, signum)

    if name == "futex":
        return _futex(ident, sc, frames, all_frames)
    if name in _CHILD_WAITS:
        pid = sc.args[1] if name == "waitid" else sc.args[0]
        pids = [pid] if name == "wait4" and 0 < pid < 2**31 else []
        pids += [p.pid for p in popen_children(frames) if p.pid not in pids]
        cmd = _proc.command(pids[0]) if pids else ""
        what = f"child process {pids[0]} ({cmd})" if pids else "a child process"
        return Blocking("child", f"waiting for {what}", name, sc, children=tuple(pids),
                        rung="child process stopped" if pids else "interrupted system call")
    if name not in RESULTS:
        return Blocking("syscall", f"blocked in system call {name or sc.nr}", name, sc,
                        gentle=False, rung=None,
                        reason=f"it is blocked in {name or sc.nr}, which cannot be "
                               "interrupted safely")

    if name in _SLEEPS or (name in ("select", "pselect6") and sc.args[0] == 0):
        until = _sleep_deadline(name, sc)
        text = "sleeping"
        if until is not None:
            text += f" ({max(0.0, until - time.time()):.0f} s left)"
        blocking = Blocking("sleep", text, name, sc, rung="interrupted system call",
                            until=until)
    elif name in _POLLS:
        loop = any(f.f_code.co_name == "_run_once" and "asyncio" in f.f_code.co_filename
                   for f in frames)
        text = "idle asyncio event loop" if loop else f"waiting for I/O ({name})"
        blocking = Blocking("io-wait", text, name, sc, rung="interrupted system call")
    elif name in _READS or name in _WRITES or name in ("accept", "accept4", "connect"):
        verb = ("reading from" if name in _READS else "writing to" if name in _WRITES
                else "waiting for a connection on" if name.startswith("accept")
                else "connecting")
        text = f"{verb} {describe_fd(sc.args[0], frames)}"
        blocking = Blocking("io-wait", text, name, sc, rung="interrupted system call")
    else:
        blocking = Blocking("signal-wait", "waiting for a signal", name, sc,
                            rung="interrupted system call")
    if blocked_signal:
        return Blocking(blocking.kind, blocking.description, name, sc, gentle=False,
                        rung=None, reason="it blocks the signals needed to interrupt "
                        f"{name} (pthread_sigmask)")
    return blocking


def _futex(ident, sc, frames, all_frames):
    """A futex wait: the GIL (timed, 5 ms), a join, or a Lock held elsewhere."""
    FUTEX_CMD_MASK = 0x7f
    op = sc.args[1] & FUTEX_CMD_MASK
    timed = sc.args[3] != 0
    joined = _join_target(frames)
    if joined is not None:
        return Blocking("join", f"waiting for thread '{joined.name}' to finish (join)",
                        "futex", sc, gentle=False, rung=None,
                        reason=f"it waits for thread '{joined.name}' to finish, and a "
                               "join cannot be interrupted (kill that thread first)")
    frame = user_frame(frames[0]) if frames else None
    locks = _held_locks(frame) if frame is not None else []
    if locks:
        holder = _lock_holder(locks[0], ident, all_frames)
        kind = type(locks[0]).__name__.lstrip("_").replace("thread.", "")
        kind = "RLock" if "RLock" in kind else "Lock"
        held = f" held by '{holder}'" if holder else ""
        return Blocking("lock", f"waiting for a {kind}{held}", "futex", sc, gentle=False,
                        rung=None, reason=f"it is waiting for a {kind}{held}; "
                        "a lock wait cannot be interrupted")
    if timed or op not in (0, 9):       # FUTEX_WAIT, FUTEX_WAIT_BITSET
        return Blocking("running", "running Python (waiting for the GIL)", "futex", sc)
    return Blocking("lock", "waiting on a lock", "futex", sc, gentle=False, rung=None,
                    reason="it is waiting on a lock or a C library's futex, which "
                           "cannot be interrupted")
