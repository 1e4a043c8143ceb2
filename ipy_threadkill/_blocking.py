"""What a thread is blocked in, and which rung of the kill ladder can end it.

Two sources, both read without stopping the thread: the OS (the system call it
sits in, from /proc) and Python (its frames, from sys._current_frames()). The
snapshot shows the result in words; the engine acts on the objects found here
(a Condition's waiter lock, child process ids, the system call to interrupt).
"""
import ctypes
import dis
import os
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from . import _native, _native_stack, _proc

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
          child | signal-wait | finished
    description: a few words for a user ("sleeping (3590 s left)").
    rung: what the engine expects to end it (a Rung value), None if nothing gentle can.
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
    rung: Optional[str] = "exception"
    until: Optional[float] = None       # time.time() a sleep ends at, when known
    details: dict = field(default_factory=dict)


def frames_of(frame):
    """The frames of a stack, innermost first."""
    while frame is not None:
        yield frame
        frame = frame.f_back


def _dir_prefix(path):
    return os.path.normcase(os.path.abspath(path)).rstrip(os.sep) + os.sep


_paths = sysconfig.get_paths()
# The standard library lives under stdlib; third-party packages may live under it
# too (site-packages of an interpreter used without a venv): those are user code.
_STDLIB_PREFIXES = tuple({_dir_prefix(_paths[k]) for k in ("stdlib", "platstdlib")}
                         | {_dir_prefix(os.path.dirname(threading.__file__))})
_SITE_PREFIXES = tuple({_dir_prefix(_paths[k]) for k in ("purelib", "platlib")})
_PACKAGE_PREFIX = _dir_prefix(os.path.dirname(__file__))


def is_stdlib(filename):
    """Whether code from `filename` is the standard library's (frozen modules too)."""
    known = _stdlib_files.get(filename)
    if known is None:
        known = filename.startswith("<frozen ") or (
            filename.startswith(_STDLIB_PREFIXES) and not filename.startswith(_SITE_PREFIXES))
        if len(_stdlib_files) > 4096:          # file names are few; bound it anyway
            _stdlib_files.clear()
        _stdlib_files[filename] = known
    return known


_stdlib_files = {}


def _is_stdlib(code):
    return is_stdlib(code.co_filename)


def is_ours(filename):
    """Whether code from `filename` is this package's."""
    return filename.startswith(_PACKAGE_PREFIX)


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
    """Socket objects the frames name: locals, globals, attributes of `self`."""
    for frame in frames:
        for scope in _scopes(frame):
            for value in list(scope.values()):
                if isinstance(value, socket.socket):
                    yield value


def describe_fd(fd, frames, cache=None):
    """A few words for file descriptor `fd`: a socket's addresses, a pipe, a file.

    `cache` (a dict) keeps the parsed /proc/net tables across calls of one scan."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = None
    if target is not None and not target.startswith("socket:["):
        if target.startswith("pipe:"):
            return f"pipe (fd {fd})"
        if target.startswith("/dev/pts") or target.startswith("/dev/tty"):
            return f"terminal {target}"
        return target
    for sock in _sockets(frames):
        try:
            if sock.fileno() != fd:
                continue
        except OSError:
            continue
        what = "unix socket" if sock.family == getattr(socket, "AF_UNIX", None) else "socket"
        for words, address in ((" connected to ", sock.getpeername), (" ", sock.getsockname)):
            try:
                name = address()
            except OSError:
                continue
            if name:                          # a socketpair's ends have no names
                return what + words + _address(name)
        return f"{what} (fd {fd})"
    if target is None:
        return f"fd {fd}"
    return _describe_socket_inode(int(target[8:-1]), fd, cache)


def _address(addr):
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else addr[0]
        return f"{host}:{addr[1]}"
    if isinstance(addr, bytes):                      # abstract unix socket
        addr = addr.decode(errors="replace").replace("\0", "@")
    return str(addr)


def _describe_socket_inode(inode, fd, cache):
    """A socket no frame holds (e.g. behind http.client): look it up in /proc/net."""
    table = cache.get("net") if cache is not None else None
    if table is None:
        table = _net_table()
        if cache is not None:
            cache["net"] = table
    words = table.get(inode, "socket")
    return words if words not in ("socket", "unix socket") else f"{words} (fd {fd})"


def _net_table():
    """{inode: 'socket connected to 10.0.0.5:443'} for this network namespace's
    TCP, UDP and unix sockets."""
    table = {}
    for name, family in (("tcp", 4), ("tcp6", 6), ("udp", 4), ("udp6", 6)):
        for fields in _net_rows(f"/proc/net/{name}"):
            try:
                local, remote, inode = fields[1], fields[2], int(fields[9])
            except (IndexError, ValueError):
                continue
            peer = _hex_address(remote, family)
            table[inode] = f"socket {_hex_address(local, family)}" if peer.endswith(":0") \
                else f"socket connected to {peer}"
    for fields in _net_rows("/proc/net/unix"):
        if len(fields) >= 7 and fields[6].isdigit():
            # An unnamed one (a socketpair, a client's end) is just "unix socket".
            table[int(fields[6])] = " ".join(["unix socket"] + fields[7:8])
    return table


def _net_rows(path):
    try:
        with open(path) as f:
            next(f, None)                            # the header
            return [line.split() for line in f]
    except OSError:
        return []


def _hex_address(text, family):
    """'0100007F:1F90' (as /proc/net prints it) -> '127.0.0.1:8080'."""
    host, _, port = text.partition(":")
    raw = bytes.fromhex(host)
    # The kernel prints each 32-bit word in host byte order.
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)) \
        if sys.byteorder == "little" else raw
    try:
        address = socket.inet_ntop(socket.AF_INET if family == 4 else socket.AF_INET6, raw)
    except (OSError, ValueError):
        return text
    address = f"[{address}]" if family == 6 else address
    return f"{address}:{int(port, 16)}"


_open_lock = threading.Lock()       # the files below are opened once per process


def _reset_open_lock():
    global _open_lock
    _open_lock = threading.Lock()       # a forking thread may have held it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_open_lock)


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


def refreshed(blocking):
    """`blocking` as it reads now, for a thread known not to have moved since."""
    if blocking.until is None:
        return blocking
    # A copy with one field changed, made without the frozen __init__ (which costs
    # more than the rest of an unchanged thread's snapshot).
    fresh = object.__new__(Blocking)
    fresh.__dict__.update(blocking.__dict__,
                          description=_sleep_left(blocking.until)
                          + blocking.details.get("suffix", ""))
    return fresh


def _seconds(value):
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


_instructions = {}


def _current_instruction(frame):
    """(the instruction `frame` is executing, the ones before it on its line)."""
    code = frame.f_code
    known = _instructions.get(code)
    if known is None:
        table = list(dis.get_instructions(code))
        known = table, {ins.offset: i for i, ins in enumerate(table)}
        if len(_instructions) > 512:        # a bounded cache of hot code objects
            _instructions.clear()
        _instructions[code] = known
    table, index = known
    i = index.get(frame.f_lasti)
    if i is None:
        return None, []
    start = i
    while start > 0 and not table[start].starts_line:
        start -= 1
    return table[i], table[start:i]


def _calling(frame):
    """Whether `frame` is inside a call of a C function (it is the innermost one)."""
    ins, _ = _current_instruction(frame)
    return ins is not None and (ins.opname.startswith("CALL") or ins.opname == "PRECALL")


def _acquiring(frame):
    """Whether `frame` is inside a `with lock:` entry or a `….acquire(…)` call."""
    ins, before = _current_instruction(frame)
    if ins is None:
        return False
    if ins.opname in ("SETUP_WITH", "BEFORE_WITH"):
        return True
    if ins.opname.startswith("CALL") or ins.opname == "PRECALL":
        return any(b.opname in ("LOAD_METHOD", "LOAD_ATTR") and b.argval == "acquire"
                   for b in before)
    return False


_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


def _scopes(frame):
    """The values `frame`'s code can name: locals, globals and attributes of self
    that its code mentions (a module's other globals say nothing about a thread)."""
    scope = _locals(frame)
    names = set(frame.f_code.co_names)
    yield scope
    yield {k: v for k, v in frame.f_globals.items() if k in names}
    me = scope.get("self")
    if me is not None:
        yield {k: v for k, v in getattr(me, "__dict__", {}).items() if k in names}


def _held_locks(frame):
    """Locked Lock/RLock objects the frame refers to."""
    seen = []
    for scope in _scopes(frame):
        for value in list(scope.values()):
            if isinstance(value, _LOCK_TYPES) and _locked(value) \
                    and all(value is not s for s in seen):
                seen.append(value)
    return seen


def _locked(lock):
    if hasattr(lock, "locked"):
        return lock.locked()
    return _rlock_owner(lock) != 0          # RLock has no locked() before 3.14


def _rlock_owner(lock):
    """The ident owning an RLock (0 if free), None for a plain Lock."""
    text = repr(lock)
    if "owner=" not in text:
        return None
    try:
        return int(text.split("owner=")[1].split()[0])
    except ValueError:
        return None


def _lock_holder(lock, waiter_ident, all_frames):
    """Name of the thread holding `lock`, or None if it cannot be told.

    An RLock knows its owner. A plain Lock does not: the holder is taken to be
    the one other thread whose frames refer to it without waiting for it."""
    owner = _rlock_owner(lock)
    if owner is not None:
        return _thread_name(owner) if owner else None
    me = threading.get_ident()
    candidates = []
    for ident, frame in all_frames.items():
        if ident in (waiter_ident, me):
            continue
        stack = list(frames_of(frame))
        if not any(value is lock for f in stack for scope in _scopes(f)
                   for value in list(scope.values())):
            continue
        inner = user_frame(frame)
        if inner is not None and _acquiring(inner):
            continue                         # another waiter
        candidates.append(ident)
    return _thread_name(candidates[0]) if len(candidates) == 1 else None


def _thread_name(ident):
    thread = threading._active.get(ident)
    return thread.name if thread is not None else f"<bare thread {ident}>"


def _join_target(frames):
    for frame in frames:
        if frame.f_code.co_name in ("join", "_wait_for_tstate_lock") and _is_stdlib(frame.f_code):
            joined = _locals(frame).get("self")
            if isinstance(joined, threading.Thread):
                return joined
    return None


def user_frame(frame):
    """The innermost frame outside the standard library and this package (else
    the innermost)."""
    for f in frames_of(frame):
        name = f.f_code.co_filename
        if not is_stdlib(name) and not is_ours(name):
            return f
    return frame


class _Task:
    """Reads /proc/self/task/<tid>/syscall without releasing the GIL.

    os.read would let other threads run mid-scan, and a Python thread that took
    the GIL meanwhile would show as running C code. With the GIL held, every
    other Python thread is blocked in a system call, waiting for the GIL, or
    runnable: running C code that released the GIL, or just handed the GIL and
    not yet on a CPU (analyze() tells these two apart by the thread's frame)."""

    def __init__(self):
        try:
            libc = ctypes.PyDLL(None, use_errno=True)     # PyDLL keeps the GIL
            self.openat, self.read, self.close = libc.openat, libc.read, libc.close
        except (OSError, AttributeError):
            self.openat = None
            return
        self.openat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        self.read.restype = ctypes.c_ssize_t
        self.close.argtypes = [ctypes.c_int]
        # Kept open: opening "<tid>/syscall" relative to it saves the kernel a
        # path walk per thread.
        self.dir_fd, self.pid = None, None

    def text(self, tid, name=b"syscall", size=256):
        """File `name` of thread `tid`, whole; b"" if the thread is gone, None
        without /proc. `size` is the first read's: one read is enough when the
        file fits, and the rest is read if it does not (a status file grows with
        the host's CPUs and memory nodes, and its last fields matter too)."""
        if self.openat is None:
            if not self.have_proc():
                return None
            return _proc.read(f"{_proc.TASKS}/{tid}/{name.decode()}") or b""
        if self.pid != os.getpid():             # first use, or a forked child
            with _open_lock:
                if self.pid != os.getpid():
                    try:
                        self.dir_fd = os.open(_proc.TASKS,
                                              os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    except OSError:
                        self.dir_fd = None
                    self.pid = os.getpid()
        if self.dir_fd is None:
            return None
        fd = self.openat(self.dir_fd, b"%d/%s" % (tid, name), os.O_RDONLY | os.O_CLOEXEC)
        if fd < 0:
            return b""
        buffer = ctypes.create_string_buffer(size)    # per call: snapshots may overlap
        chunks = []
        try:
            while True:
                got = self.read(fd, buffer, size)
                if got > 0:
                    chunks.append(buffer.raw[:got])
                # /proc/<tid> files are made whole on open: a read that does
                # not fill the buffer has reached the end.
                if got < size:
                    break
        finally:
            self.close(fd)
        return b"".join(chunks)

    @staticmethod
    def have_proc():
        return os.path.isdir(_proc.TASKS)


_task = _Task()
RUNNING = "running"
GONE = "gone"


def read_syscall(tid):
    """The Syscall thread `tid` is blocked in, RUNNING if it is not in one, GONE if
    it has ended, None where /proc does not say."""
    text = _task.text(tid)
    if text is None:
        return None
    if not text:
        return GONE
    return _proc.parse_syscall(text) or RUNNING


_UNREAD = object()


def analyze(ident, native_id, frame=None, all_frames=None, signum=None, *,
            syscall=_UNREAD, cache=None):
    """The Blocking of thread `ident` (OS thread `native_id`) right now.

    `ident` None means a thread no Python code knows (a C library's). `syscall`
    is what read_syscall() said, if the caller read it already; `cache` is a
    dict shared by the calls of one scan."""
    if all_frames is None:
        all_frames = sys._current_frames()
    if frame is None and ident is not None:
        frame = all_frames.get(ident)
    frames = list(frames_of(frame))

    # Frames alone can tell a Condition wait: no need to ask the OS.
    waiter, serves = condition_waiter(frames)
    if waiter is not None:
        return Blocking("condition", f"waiting on {serves}", waiter=waiter,
                        rung="wake-up", details={"serves": serves})

    if ident is not None and ident == threading.get_ident():
        return Blocking("running", "running Python (this code)")
    if syscall is _UNREAD:
        syscall = read_syscall(native_id) if native_id else None
    if syscall is None:                     # no /proc: only Python's view is known
        return Blocking("running", "running Python")
    if syscall is GONE:
        return Blocking("finished", "finished", rung=None)
    if syscall is RUNNING:
        # The GIL is ours, so a Python thread that is runnable either runs C code
        # that released the GIL, or was just handed the GIL back and has not been
        # given a CPU yet. Its innermost frame tells: only the first is in a call.
        if frames and not _calling(frames[0]):
            return Blocking("running", "running Python", details={"gil": True})
        return Blocking("c-code", "running C code", rung="exception",
                        details={"plan": "exception when the C call returns"})
    sc = syscall
    name = _NAMES.get(sc.nr)

    if name == "futex":
        return _futex(ident, sc, frames, all_frames)
    if name in _CHILD_WAITS:
        return _child_wait(name, sc, frames)
    if name not in RESULTS:
        return Blocking("syscall", f"blocked in system call {name or sc.nr}", name, sc,
                        gentle=False, rung=None,
                        reason=f"it is blocked in {name or sc.nr}, which cannot be "
                               "interrupted safely")

    if name in _SLEEPS or (name in ("select", "pselect6") and sc.args[0] == 0):
        text, until = _sleep_text(name, sc)
        blocking = Blocking("sleep", text, name, sc, rung="interrupted system call",
                            until=until)
    elif name in _POLLS:
        blocking = Blocking("io-wait", _poll_text(name, frames), name, sc,
                            rung="interrupted system call")
    elif name in _READS or name in _WRITES or name in ("accept", "accept4", "connect"):
        verb = ("reading from" if name in _READS else "writing to" if name in _WRITES
                else "waiting for a connection on" if name.startswith("accept")
                else "connecting")
        text = f"{verb} {describe_fd(sc.args[0], frames, cache)}"
        blocking = Blocking("io-wait", text, name, sc, rung="interrupted system call")
    else:
        blocking = Blocking("signal-wait", "waiting for a signal", name, sc,
                            rung="interrupted system call")
    if signum is not None and native_id and _signal_blocked(native_id, signum, cache):
        suffix = ", with signals blocked"
        return Blocking(blocking.kind, blocking.description + suffix, name, sc, gentle=False,
                        rung=None, until=blocking.until, details={"suffix": suffix},
                        reason="it blocks the signals needed to interrupt "
                               f"{name} (pthread_sigmask)")
    return blocking


def _signal_blocked(native_id, signum, cache):
    memo = cache.get("masks") if cache is not None else None
    if memo is None:
        return signal_blocked(native_id, signum)
    key = (native_id, signum)
    if key not in memo:
        memo[key] = signal_blocked(native_id, signum)
    return memo[key]


def signal_blocked(tid, signum):
    """Whether thread `tid` blocks `signum` (None if unknown): _proc's answer,
    read without parsing the whole status file, which costs more than the rest."""
    text = _task.text(tid, b"status", 4096)
    start = text.find(b"\nSigBlk:") if text else -1
    if start < 0:
        return None
    mask = text[start + 8:text.index(b"\n", start + 1)].strip()
    return bool(int(mask, 16) >> (signum - 1) & 1)


def start_ticks(tid):
    """_proc.start_ticks(tid), read without releasing the GIL: the identity a
    snapshot gives a thread is the one kill() checks."""
    text = _task.text(tid, b"stat", 1024)
    if not text:
        return None
    # Field 22 of proc(5); the command name, in parentheses, may hold spaces.
    return int(text[text.rindex(b")") + 2:].split()[19])


def _poll_text(name, frames):
    if any(f.f_code.co_name == "_run_once" and "asyncio" in f.f_code.co_filename
           for f in frames):
        return "idle asyncio event loop"
    popens = popen_children(frames)
    if popens:
        return f"waiting for output of child process {_child_words(popens[0].pid)}"
    return f"waiting for I/O ({name})"


def _child_words(pid):
    return f"{pid} ({_proc.command(pid) or '?'})"


def _child_wait(name, sc, frames):
    pid = sc.args[1] if name == "waitid" else sc.args[0]
    pids = [pid] if name == "wait4" and 0 < pid < 2**31 else []
    pids += [p.pid for p in popen_children(frames) if p.pid not in pids]
    what = f"child process {_child_words(pids[0])}" if pids else "a child process"
    return Blocking("child", f"waiting for {what}", name, sc, children=tuple(pids),
                    rung="child process stopped" if pids else "interrupted system call")


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
    for frame in dict.fromkeys(frames[:1] + [user_frame(frames[0])] if frames else []):
        if _acquiring(frame):
            locks = [lock for lock in _held_locks(frame) if _rlock_owner(lock) != ident]
            if locks:
                break
    if locks:
        lock = locks[0]
        holder = _lock_holder(lock, ident, all_frames)
        kind = "an RLock" if _rlock_owner(lock) is not None else "a Lock"
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
