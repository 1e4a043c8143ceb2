"""What a thread is blocked in, and which rung of the kill ladder can end it.

Two sources, both read without stopping the thread: the OS (the system call it
sits in, from /proc) and Python (its frames, from sys._current_frames()). The
snapshot shows the result in words; the engine acts on the objects found here
(a Condition's waiter lock, child process ids, the system call to interrupt).
"""
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from . import _children, _compat, _fds, _frames, _locks, _native_stack, _proc, _syscalls
from .report import Rung

TIMER_ABSTIME = 1
# Linux's fcntl commands that wait for a lock (F_SETLKW, F_OFD_SETLKW; on 64-bit
# machines F_SETLKW64 is F_SETLKW): fcntl's other commands do not block.
_FCNTL_LOCK_WAITS = (7, 38)
_AT_FDCWD = -100
_O_ACCMODE, _O_RDONLY = 3, 0
_PATH_MAX = 4096
# How a call on a file descriptor reads, by its category (see _syscalls).
_FD_VERBS = {"read": "reading from", "write": "writing to",
             "accept": "waiting for a connection on"}

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
          child | signal-wait | finished
    description: a few words for a user ("sleeping (3590 s left)").
    rung: the Rung the engine expects to end it, None if nothing gentle can.
    reason: why no gentle rung can end it (when `gentle` is False).
    """

    kind: str
    description: str
    syscall_name: Optional[str] = None
    syscall: Optional[_proc.Syscall] = None
    waiter: object = None
    children: tuple = ()
    gentle: bool = True
    reason: str = ""
    rung: Optional[Rung] = Rung.EXCEPTION
    until: Optional[float] = None       # time.time() a sleep ends at, when known
    details: dict = field(default_factory=dict)


def condition_waiter(frames):
    """(waiter lock, what it serves) if the thread is parked in Condition.wait."""
    wait_code = threading.Condition.wait.__code__
    for i, frame in enumerate(frames):
        if frame.f_code is wait_code:
            waiter = _frames.locals_of(frame).get("waiter")
            user = next((f for f in frames[i + 1:] if f.f_code is not wait_code), None)
            what = "a Condition"
            if user is not None:
                name = user.f_code.co_name
                if _frames.is_stdlib(user.f_code.co_filename):
                    what = _CONDITION_USERS.get(name, what)
                owner = _frames.locals_of(user).get("self")
                if name == "wait" and "Barrier" in type(owner).__name__:
                    what = "a Barrier"
                if name == "wait_for":
                    what = "a Condition"
            return waiter, what
    return None, None


# One reader of this process's memory for every analysis (see _native_stack).
_memory = _native_stack.memory


def _timespec(address):
    data = _memory.read(address, 16) if address else None
    if data is None:
        return None
    sec = int.from_bytes(data[:8], sys.byteorder, signed=True)
    nsec = int.from_bytes(data[8:], sys.byteorder, signed=True)
    return sec + nsec / 1e9


def _sleep_text(name, sc):
    """(words, time.time() it ends at or None) for a sleeping system call."""
    if name == "clock_nanosleep":
        clock, flags, request = sc.args[0], sc.args[1], sc.args[2]
    elif name == "nanosleep":
        clock, flags, request = time.CLOCK_MONOTONIC, 0, sc.args[0]
    else:
        # select(0, ...), time.sleep() on 3.9 and 3.10: the timeout it was given
        # (glibc issues it as pselect6, with a timespec; select takes a timeval).
        data = _memory.read(sc.args[4], 16) if sc.args[4] else None
        if data is None:
            return "sleeping", None
        fraction = 1e9 if name == "pselect6" else 1e6
        seconds = int.from_bytes(data[:8], sys.byteorder, signed=True) \
            + int.from_bytes(data[8:], sys.byteorder, signed=True) / fraction
        return f"sleeping (for {_seconds(seconds)})", None
    value = _timespec(request)
    if value is None:
        return "sleeping", None
    if flags & TIMER_ABSTIME:
        try:
            until = time.time() + value - time.clock_gettime(clock)
        except OSError:
            return "sleeping", None
        return _sleep_left(until), until
    return f"sleeping (for {_seconds(value)})", None


def _sleep_left(until):
    return f"sleeping ({_seconds(max(0.0, until - time.time()))} left)"


def description_now(blocking):
    """`blocking.description` as it reads now, for a thread known not to have
    moved since it was analysed: a sleep's time left goes down."""
    if blocking.until is None:
        return blocking.description
    return _sleep_left(blocking.until) + blocking.details.get("suffix", "")


def _seconds(value):
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def _join_target(frames):
    for frame in frames:
        if frame.f_code.co_name in ("join", "_wait_for_tstate_lock") \
                and _frames.is_stdlib(frame.f_code.co_filename):
            joined = _frames.locals_of(frame).get("self")
            if isinstance(joined, threading.Thread):
                return joined
    return None


_UNREAD = object()


def analyze(ident, native_id, frame=None, all_frames=None, signum=None, *,
            syscall=_UNREAD, cache=None):
    """The Blocking of thread `ident` (OS thread `native_id`) right now.

    `ident` None means a thread no Python code knows (a C library's). `syscall`
    is what _proc.read_syscall() said, if the caller read it already; `cache` is a
    dict shared by the calls of one scan."""
    if all_frames is None:
        all_frames = _frames.other_threads()
    if frame is None and ident is not None:
        frame = all_frames.get(ident)
    if syscall is _UNREAD and native_id and ident is not None \
            and ident != threading.get_ident() and not _proc.gil_keeps_threads_still():
        # The thread runs while we look: its frames and its system call must be
        # seen at one moment, or a wait would be named by frames it has left.
        # (Never the caller itself: its frame here is this one, and would keep
        # the whole scan, and every frame it saw, alive in a cycle.)
        frame, syscall = _proc.steady(native_id,
                                      lambda: _frames.other_threads().get(ident))
    frames = list(_frames.frames_of(frame))

    # Frames alone can tell a Condition wait: no need to ask the OS.
    waiter, serves = condition_waiter(frames)
    if waiter is not None:
        return Blocking("condition", f"waiting on {serves}", waiter=waiter,
                        rung=Rung.WAKEUP, details={"serves": serves})

    if ident is not None and ident == threading.get_ident():
        return Blocking("running", "running Python (this code)")
    if syscall is _UNREAD:
        syscall = _proc.read_syscall(native_id) if native_id else None
    if syscall is None:                     # no /proc: only Python's view is known
        return Blocking("running", "running Python")
    if syscall is _proc.GONE:
        return Blocking("finished", "finished", rung=None)
    if syscall is _proc.RUNNING:
        # The GIL is ours, so a Python thread that is runnable either runs C code
        # that released the GIL, or was just handed the GIL back and has not been
        # given a CPU yet. Its innermost frame tells: only the first is in a call.
        if frames and not _frames.calling(frames[0]):
            return Blocking("running", "running Python", details={"gil": True})
        return Blocking("c-code", "running C code", rung=Rung.EXCEPTION,
                        details={"plan": "exception when the C call returns"})
    sc = syscall
    name = _syscalls.name_of(sc.nr)
    call = _syscalls.CALLS.get(name)

    if name == "futex":
        return _futex(ident, sc, frames, all_frames)
    if name == "fcntl" and sc.args[1] not in _FCNTL_LOCK_WAITS:
        call = None                     # no lock wait: nothing known to interrupt
    if call is None:
        return Blocking("syscall", f"blocked in system call {name or sc.nr}", name, sc,
                        gentle=False, rung=None,
                        reason=f"it is blocked in {name or sc.nr}, which cannot be "
                               "interrupted safely")
    if call.category == "child-wait":
        return _child_wait(name, sc, frames)

    if call.category == "sleep" or (name in ("select", "pselect6") and sc.args[0] == 0):
        text, until = _sleep_text(name, sc)
        blocking = Blocking("sleep", text, name, sc, rung=Rung.SYSCALL,
                            until=until)
    elif call.category == "poll":
        blocking = Blocking("io-wait", _poll_text(name, frames, all_frames), name, sc,
                            rung=Rung.SYSCALL)
    elif call.category == "file-lock":
        blocking = Blocking("io-wait", _file_lock_text(name, sc, frames, cache), name, sc,
                            rung=Rung.SYSCALL)
    elif call.category == "open":
        blocking = Blocking("io-wait", _open_text(name, sc, native_id, frames, cache), name,
                            sc, rung=Rung.SYSCALL)
    elif call.category == "connect":
        peer = _sockaddr_text(sc.args[1], sc.args[2])
        text = f"connecting to {peer}" if peer else \
            f"connecting {_fds.describe_fd(sc.args[0], frames, cache)}"
        blocking = Blocking("io-wait", text, name, sc, rung=Rung.SYSCALL)
    elif call.category in _FD_VERBS:
        text = f"{_FD_VERBS[call.category]} {_fds.describe_fd(sc.args[0], frames, cache)}"
        blocking = Blocking("io-wait", text, name, sc, rung=Rung.SYSCALL)
    else:
        blocking = Blocking("signal-wait", "waiting for a signal", name, sc,
                            rung=Rung.SYSCALL)
    if signum is not None and native_id and _signal_blocked(native_id, signum, cache):
        suffix = ", with signals blocked"
        return Blocking(blocking.kind, blocking.description + suffix, name, sc, gentle=False,
                        rung=None, until=blocking.until, details={"suffix": suffix},
                        reason="it blocks the signals needed to interrupt "
                               f"{name} (pthread_sigmask)")
    return blocking


def _file_lock_text(name, sc, frames, cache):
    """Words for a file lock wait: the file, and who holds the lock, if known."""
    fd = sc.args[0] & 0xffffffff
    text = f"waiting for a lock on {_fds.describe_fd(fd, frames, cache)} ({name})"
    kinds = (b"FLOCK",) if name == "flock" else (b"POSIX", b"OFDLCK")
    holders = [pid for pid in _proc.file_lock_holders(fd, kinds) if pid > 0]
    if os.getpid() in holders:
        return text + " held by this process"           # through another open file
    if holders:
        return text + " held by process " + ", ".join(map(_children.describe, holders[:3]))
    return text


def _c_string(address, limit=_PATH_MAX):
    """The NUL-terminated bytes at `address` in this process, read a page at a
    time (the string may end just before an unmapped page); None if unreadable
    or longer than `limit`."""
    page = 4096
    data = b""
    while address and len(data) < limit:
        chunk = _memory.read(address, page - address % page)
        if chunk is None:
            return None
        end = chunk.find(b"\0")
        if end >= 0:
            return data + chunk[:end]
        data += chunk
        address += len(chunk)
    return None


def _sockaddr_text(address, size):
    """The address a connect() is given (a sockaddr in the caller's memory), as
    "host:port" or a unix socket's path; None if it cannot be read."""
    data = _memory.read(address, size) if 2 < size <= 128 else None
    if data is None:
        return None
    family = int.from_bytes(data[:2], sys.byteorder)
    try:
        if family == socket.AF_INET and size >= 8:
            return _fds.address_text((socket.inet_ntop(family, data[4:8]),
                                      int.from_bytes(data[2:4], "big")))
        if family == socket.AF_INET6 and size >= 24:
            return _fds.address_text((socket.inet_ntop(family, data[8:24]),
                                      int.from_bytes(data[2:4], "big")))
    except (OSError, ValueError):
        return None
    if family == getattr(socket, "AF_UNIX", None):
        path = data[2:]
        if path[:1] == b"\0":
            return _fds.address_text(path)           # abstract: shown with its @
        return "unix socket " + os.fsdecode(path.split(b"\0", 1)[0])
    return None


def _open_text(name, sc, native_id, frames, cache):
    """Words for a blocked open: the file, and for a FIFO which end it waits for.
    The path is read from the caller's memory; the file itself is not touched
    (a stat could block where the open does)."""
    dirfd, address, flags = (sc.args[0], sc.args[1], sc.args[2]) if name == "openat" \
        else (_AT_FDCWD, sc.args[0], sc.args[1])
    raw = _c_string(address)
    if not raw:
        return "opening a file"
    path = os.fsdecode(raw)
    dirfd &= 0xffffffff                 # an int: the register's upper half is not its
    dirfd = dirfd - (1 << 32) if dirfd >= 1 << 31 else dirfd
    if not path.startswith("/") and dirfd != _AT_FDCWD:
        path = f"{_fds.describe_fd(dirfd, frames, cache)}/{path}"
    # The kernel's name for the wait of a FIFO's open for its other end.
    wchan = _proc.read(f"{_proc.TASKS}/{native_id}/wchan") if native_id else None
    if wchan == b"wait_for_partner":
        other = "writer" if flags & _O_ACCMODE == _O_RDONLY else "reader"
        return f"opening FIFO {path} (no {other} yet)"
    return f"opening {path}"


def _signal_blocked(native_id, signum, cache):
    memo = cache.get("masks") if cache is not None else None
    if memo is None:
        return _proc.signal_blocked(native_id, signum)
    key = (native_id, signum)
    if key not in memo:
        memo[key] = _proc.signal_blocked(native_id, signum)
    return memo[key]


def _poll_text(name, frames, all_frames):
    loop_frame = next((f for f in frames if f.f_code.co_name == "_run_once"
                       and "asyncio" in f.f_code.co_filename), None)
    if loop_frame is not None:
        try:
            return _event_loop_text(_frames.locals_of(loop_frame).get("self"), all_frames)
        except Exception:               # a loop or tasks changing under us
            return "asyncio event loop"
    popens = _children.popens_in(frames)
    if popens:
        return f"waiting for output of child process {_children.describe(popens[0].pid)}"
    return f"waiting for I/O ({name})"


def _event_loop_text(loop, all_frames):
    """What an asyncio event loop blocked in its selector waits for: its own
    shutdown waiting for an executor job, tasks waiting while its executor runs
    jobs, or nothing at all ("idle"). Read from frames and the loop's tasks."""
    for frame in all_frames.values():
        stack = list(_frames.frames_of(frame))
        if any(f.f_code.co_name == "_do_shutdown" and "asyncio" in f.f_code.co_filename
               and _frames.locals_of(f).get("self") is loop for f in stack):
            # That thread joins the executor's threads one by one.
            joining = next((_frames.locals_of(f).get("self") for f in stack
                            if f.f_code is threading.Thread.join.__code__), None)
            job = _job_of(joining, all_frames)
            if job is None:
                return "asyncio event loop shutting down: waiting for its executor"
            return (f"asyncio event loop shutting down: waiting for executor job {job} "
                    f"in thread '{joining.name}' (it ends when the job returns; killing "
                    "that thread ends it now)")
    asyncio = sys.modules.get("asyncio")           # imported: a loop runs
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()] if loop is not None else []
    if not tasks:
        return "idle asyncio event loop"
    stack = tasks[0].get_stack()
    where = (f" ({stack[-1].f_code.co_name}() at "
             f"{os.path.basename(stack[-1].f_code.co_filename)}:{stack[-1].f_lineno})"
             if stack else "")
    waiting = f"{len(tasks)} task{'s' if len(tasks) > 1 else ''} waiting{where}"
    jobs = [(t, job) for t in _compat.default_executor_threads(loop)
            if (job := _job_of(t, all_frames)) is not None]
    if not jobs:
        return f"asyncio event loop, {waiting}"
    thread, job = jobs[0]
    return (f"asyncio event loop, {waiting} while executor job {job} runs in thread "
            f"'{thread.name}'")


def _job_of(thread, all_frames):
    """The executor job `thread` runs ('fetch()'), or None."""
    frame = all_frames.get(getattr(thread, "ident", None))
    return None if frame is None else _executor_job(frame)


def _executor_job(frame):
    """'fetch()' if the thread at `frame` runs a ThreadPoolExecutor job ("(unknown)"
    if what it calls cannot be told), else None."""
    run = getattr(getattr(sys.modules.get("concurrent.futures.thread"), "_WorkItem", None),
                  "run", None)
    code = getattr(run, "__code__", None)
    for f in _frames.frames_of(frame):
        if f.f_code is code:
            item = _frames.locals_of(f).get("self")
            fn = getattr(item, "fn", None)                # 3.14+: task = (fn, args, kwargs)
            task = getattr(item, "task", None)
            if fn is None and isinstance(task, tuple) and task:
                fn = task[0]
            if fn is None:
                return "(unknown)"
            fn = getattr(fn, "func", fn)                  # functools.partial
            name = getattr(fn, "__qualname__", None) or type(fn).__name__
            return f"{name}()"
    return None


def _child_wait(name, sc, frames):
    pid = sc.args[1] if name == "waitid" else sc.args[0]
    pids = [pid] if name == "wait4" and 0 < pid < 2**31 else []
    pids += [p.pid for p in _children.popens_in(frames) if p.pid not in pids]
    what = f"child process {_children.describe(pids[0])}" if pids else "a child process"
    return Blocking("child", f"waiting for {what}", name, sc, children=tuple(pids),
                    rung=Rung.CHILD if pids else Rung.SYSCALL)


def _futex(ident, sc, frames, all_frames):
    """A futex wait: the GIL, a join, a Lock (held by whom), or a C library's."""
    FUTEX_CMD_MASK = 0x7f
    op = sc.args[1] & FUTEX_CMD_MASK
    # CPython waits for the GIL in slices of the switch interval (a timed wait);
    # Lock.acquire() and join() without a timeout wait untimed.
    timed = sc.args[3] != 0
    if ident is None:
        return Blocking("lock", "waiting on a lock (futex)", "futex", sc, gentle=False,
                        rung=None, reason="it is a C library's thread waiting on a futex")
    joined = _join_target(frames)
    if joined is not None:
        return Blocking("join", f"waiting for thread '{joined.name}' to finish (join)",
                        "futex", sc, gentle=False, rung=None,
                        reason=f"it waits for thread '{joined.name}' to finish, and a "
                               "join cannot be interrupted (kill that thread first)")
    locks = []
    # The lock being acquired is named where the acquire happens: the innermost
    # frame (stdlib code such as logging) or the innermost user frame.
    for frame in dict.fromkeys(frames[:1] + [_frames.user_frame(frames[0])] if frames else []):
        if _frames.acquiring(frame):
            locks = [lock for lock in _locks.locked_in(frame) if _compat.rlock_owner(lock) != ident]
            if locks:
                break
    if locks:
        lock = locks[0]
        holder = _locks.holder(lock, ident, all_frames, _waiting)
        kind = "an RLock" if _compat.rlock_owner(lock) is not None else "a Lock"
        held = f" held by '{holder}'" if holder else ""
        return Blocking("lock", f"waiting for {kind}{held}", "futex", sc, gentle=False,
                        rung=None, reason=f"it is waiting for {kind}{held}, and a lock "
                        "wait cannot be interrupted (kill the holder first)",
                        details={"holder": holder})
    if timed or op not in (0, 9):       # FUTEX_WAIT, FUTEX_WAIT_BITSET
        # Waiting for the GIL, which the caller holds: a Python thread between
        # two slices of its time (the snapshot tells starved ones by their CPU).
        return Blocking("running", "running Python", "futex", sc, details={"gil": True})
    return Blocking("lock", "waiting on a lock", "futex", sc, gentle=False, rung=None,
                    reason="it is waiting on a lock or a C library's futex, which "
                           "cannot be interrupted")


def _waiting(frame):
    """Whether a thread whose stack is `frame` is itself entering a lock wait."""
    inner = _frames.user_frame(frame)
    return inner is not None and _frames.acquiring(inner)
