"""What Linux says about this process's threads, read from /proc/self/task, and
about the processes they started.

Every reader tolerates the thread ending while it is being read: it returns
None rather than raising. Elsewhere than Linux, /proc does not exist and every
reader returns None, which the callers treat as "unknown".
"""
import ctypes
import os
import sys
import threading

TASKS = "/proc/self/task"
MAPS = "/proc/self/maps"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


_open_lock = threading.Lock()       # the task directory is opened once per process


def _reset_open_lock():
    global _open_lock
    _open_lock = threading.Lock()       # a forking thread may have held it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_open_lock)

_O_RDONLY_CLOEXEC = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_AT_FDCWD = -100


class _GilHoldingReader:
    """Reads /proc files through libc called with the GIL held (ctypes.PyDLL).

    Python's own file I/O releases the GIL around each system call; with a
    runaway thread spinning in Python, the reader then waits a whole switch
    interval (5 ms) to get it back, per call. /proc reads never block, so
    keeping the GIL costs nothing and keeps a kill's first steps fast.

    It also keeps a snapshot true: os.read would let other threads run mid-scan,
    and a Python thread that took the GIL meanwhile would show as running C
    code. With the GIL held, every other Python thread is blocked in a system
    call, waiting for the GIL, or runnable: running C code that released the
    GIL, or just handed the GIL and not yet on a CPU (_blocking.analyze() tells
    these two apart by the thread's frame).
    """

    CHUNK = 16384

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

    def file(self, path):
        """The whole of /proc file `path`, or None if it cannot be read."""
        if self.openat is None:
            return _read_releasing_gil(path)
        fd = self.openat(_AT_FDCWD, os.fsencode(path), _O_RDONLY_CLOEXEC)
        if fd < 0:
            return None
        return self._whole(fd, self.CHUNK, made_whole_on_open=False)

    def thread_file(self, tid, name, size):
        """File `name` of thread `tid`, whole; b"" if the thread is gone, None
        without /proc. `size` is the first read's: one read is enough when the
        file fits, and the rest is read if it does not (a status file grows with
        the host's CPUs and memory nodes, and its last fields matter too)."""
        if self.openat is None:
            if not os.path.isdir(TASKS):
                return None
            return _read_releasing_gil(f"{TASKS}/{tid}/{name.decode()}") or b""
        if self.pid != os.getpid():             # first use, or a forked child
            with _open_lock:
                if self.pid != os.getpid():
                    try:
                        self.dir_fd = os.open(TASKS, _O_RDONLY_CLOEXEC | os.O_DIRECTORY)
                    except OSError:
                        self.dir_fd = None
                    self.pid = os.getpid()
        if self.dir_fd is None:
            return None
        fd = self.openat(self.dir_fd, b"%d/%s" % (tid, name), _O_RDONLY_CLOEXEC)
        if fd < 0:
            return b""
        return self._whole(fd, size, made_whole_on_open=True)

    def _whole(self, fd, size, made_whole_on_open):
        # A buffer per call: the GIL may pass between two reads, and snapshots
        # may overlap.
        buffer, chunks = ctypes.create_string_buffer(size), []
        try:
            while True:
                got = self.read(fd, buffer, size)
                if got < 0:                     # a thread file: its thread ended
                    return b"" if made_whole_on_open else None
                chunks.append(buffer.raw[:got])
                # /proc/<tid> files are made whole on open: a read that does
                # not fill the buffer has reached the end.
                if got == 0 or (made_whole_on_open and got < size):
                    return b"".join(chunks)
        finally:
            self.close(fd)


def _read_releasing_gil(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


_reader = _GilHoldingReader()


def read(path):
    """The whole of /proc file `path` (read holding the GIL where possible), or
    None if it cannot be read."""
    return _reader.file(path)


def thread_file(tid, name, size=256):
    """File `name` (bytes) of thread `tid`, read holding the GIL; b"" once the
    thread is gone, None without /proc. See _GilHoldingReader.thread_file."""
    return _reader.thread_file(tid, name, size)


class Syscall:
    """The system call a thread is blocked in: `nr`, six `args`, `sp`, `pc`."""

    __slots__ = ("nr", "args", "sp", "pc")

    def __init__(self, nr, args, sp, pc):
        self.nr, self.args, self.sp, self.pc = nr, args, sp, pc

    def __repr__(self):
        return f"Syscall(nr={self.nr}, args={self.args!r})"


def _parse_syscall(text):
    """The Syscall in the text of a /proc/<tid>/syscall file; None if it shows no
    call ("running", or "-1 sp pc")."""
    fields = text.split()
    if len(fields) != 9:
        return None
    values = [int(x, 16) for x in fields[1:]]
    return Syscall(int(fields[0]), tuple(values[:6]), values[6], values[7])


RUNNING = "running"
GONE = "gone"


def read_syscall(tid):
    """The Syscall thread `tid` is blocked in, RUNNING if it is not in one, GONE if
    it has ended, None where /proc does not say."""
    text = thread_file(tid, b"syscall")
    if text is None:
        return None
    if not text:
        return GONE
    return _parse_syscall(text) or RUNNING


def gil_keeps_threads_still():
    """Whether the GIL, held by the caller, keeps every other Python thread from
    moving: false on a free-threaded build running without it."""
    return getattr(sys, "_is_gil_enabled", lambda: True)()


def _marks(tid):
    """What changes whenever thread `tid` runs: its system-call line and its
    context-switch counts (a thread that leaves a call and comes back into the
    same one is switched out again, so the line alone could not tell)."""
    line = thread_file(tid, b"syscall")
    status = thread_file(tid, b"status", 4096) or b""
    return line, tuple(row for row in status.splitlines() if b"ctxt_switches:" in row)


def steady(tid, look, tries=3):
    """(look(), what read_syscall(tid) says) as of one moment.

    For when gil_keeps_threads_still() is false: with the GIL held, a Python
    thread blocked in a system call cannot move while look() reads its Python
    state; without it, it can. So the thread's system call and context switches
    are read before and after look(), and the answer is accepted only if they
    agree (the thread did not run meanwhile). A thread that never holds still
    is running: RUNNING, with the last look().
    """
    for _ in range(tries):
        before = _marks(tid)
        seen = look()
        after = _marks(tid)
        if before == after:
            line = before[0]
            if line is None:
                return seen, None
            return seen, (_parse_syscall(line) or RUNNING) if line else GONE
    return seen, RUNNING


def syscall(tid):
    """The Syscall `tid` is blocked in; None if it runs, is not in one, or is gone."""
    found = read_syscall(tid)
    return found if isinstance(found, Syscall) else None


def signal_blocked(tid, signum):
    """Whether thread `tid` blocks `signum`; None if unknown. Read without parsing
    the whole status file, which costs more than the rest of a snapshot's row."""
    text = thread_file(tid, b"status", 4096)
    start = text.find(b"\nSigBlk:") if text else -1
    if start < 0:
        return None
    mask = text[start + 8:text.index(b"\n", start + 1)].strip()
    return bool(int(mask, 16) >> (signum - 1) & 1)


def _stat_fields(text):
    if not text:
        return None
    # The command name is in parentheses and may contain spaces and ')'.
    return text[text.rindex(b")") + 2:].split()


def thread_stat(tid):
    """(state letter, cpu seconds, start ticks since boot) of `tid`; None once gone."""
    fields = _stat_fields(thread_file(tid, b"stat", 1024))
    if fields is None:
        return None
    # Fields 3, 14, 15 and 22 of proc(5), counted from 1; we start at field 3.
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return fields[0].decode(), cpu, int(fields[19])


def start_ticks(tid):
    """When `tid` started, in clock ticks since boot: with the tid, its identity
    (read holding the GIL: the identity a snapshot gives a thread is the one
    kill() checks)."""
    stat = thread_stat(tid)
    return None if stat is None else stat[2]


def alive(tid):
    """Whether the OS thread `tid` still exists in this process (None if unknown)."""
    if not os.path.isdir(TASKS):
        return None
    stat = thread_stat(tid)
    # A zombie task is an exited thread that nobody has reaped yet.
    return stat is not None and stat[0] not in ("Z", "X")


def task_ids():
    """The tids of every thread in this process, or None elsewhere than Linux."""
    try:
        return [int(name) for name in os.listdir(TASKS)]
    except OSError:
        return None


def _process_stats():
    """(pid, stat fields from the state on) of every process Linux lists."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return
    for name in names:
        if name.isdigit():
            fields = _stat_fields(read(f"/proc/{name}/stat"))
            if fields is not None:
                yield int(name), fields


def children(pid=None):
    """{pid: parent pid} of every process whose parent is `pid` or its descendants."""
    root = os.getpid() if pid is None else pid
    parents = {pid: int(fields[1]) for pid, fields in _process_stats()}
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = ppid
                frontier.append(child)
    return found


def thread_children(tid):
    """Pids of the processes thread `tid` forked that are still its children
    (Linux lists them per thread); empty if unknown or gone."""
    text = read(f"{TASKS}/{tid}/children")
    return [int(pid) for pid in text.split()] if text else []


def process_children(pid):
    """Pids of process `pid`'s children, from each of its threads' lists (a child
    is listed under the thread that forked it); empty if unknown or gone. Reads
    only that process's files, where children() reads every process's; a list
    read while its thread forks or reaps may miss a child (proc(5)), so callers
    read it again at their next look."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found = []
    for tid in tids:
        text = read(f"/proc/{pid}/task/{tid}/children")
        if text:
            found += [int(child) for child in text.split()]
    return found


class ProcessStat:
    """What identifies a process and places it: its `state` letter, `ppid`,
    process group `pgrp`, `session`, and `start` (clock ticks since boot)."""

    __slots__ = ("state", "ppid", "pgrp", "session", "start")

    def __init__(self, fields):
        # Fields 3 to 6 and 22 of proc(5), counted from 1; ours start at field 3.
        self.state = fields[0].decode()
        self.ppid, self.pgrp, self.session = (int(x) for x in fields[1:4])
        self.start = int(fields[19])

    @property
    def live(self):
        """Not a zombie: a zombie has ended and waits only to be reaped."""
        return self.state not in ("Z", "X")


def process_stat(pid):
    """The ProcessStat of process `pid` (a zombie included); None once it is gone."""
    fields = _stat_fields(read(f"/proc/{pid}/stat"))
    return None if fields is None else ProcessStat(fields)


def processes():
    """{pid: ProcessStat} of every process Linux lists (one read of each stat file)."""
    return {pid: ProcessStat(fields) for pid, fields in _process_stats()}


def process_start(pid):
    """When process `pid` started (clock ticks since boot), with its pid its identity;
    None once it is gone or a zombie."""
    stat = process_stat(pid)
    return stat.start if stat is not None and stat.live else None


def command(pid):
    """The command line of process `pid` as one string ('' if unknown)."""
    text = read(f"/proc/{pid}/cmdline")
    return text.replace(b"\0", b" ").decode(errors="replace").strip() if text else ""


def file_lock_holders(fd, kinds):
    """The pids holding a lock of one of `kinds` (b"FLOCK", b"POSIX", b"OFDLCK")
    on the file open as this process's descriptor `fd`, from /proc/locks; an
    OFD lock names no process (-1). Empty where the kernel does not say which
    file a descriptor is (fdinfo's ino, Linux 5.14+): the file itself is not
    looked at, as a stat could block where the lock wait does."""
    info = read(f"/proc/self/fdinfo/{fd}") or b""
    inode = next((line.split()[1] for line in info.splitlines()
                  if line.startswith(b"ino:") and len(line.split()) == 2), None)
    if inode is None:
        return []
    holders = []
    # "1: FLOCK  ADVISORY  WRITE 4242 00:2f:1234 0 EOF"; a lock waited for is
    # followed by its waiters, whose lines say "->" after the number.
    for line in (read("/proc/locks") or b"").splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] in kinds \
                and fields[5].rsplit(b":", 1)[-1].lstrip(b"0") == inode.lstrip(b"0"):
            try:
                holders.append(int(fields[4]))
            except ValueError:
                continue
    return holders
