"""What Linux says about this process's threads, read from /proc/self/task.

Every reader tolerates the thread ending while it is being read: it returns
None rather than raising. Elsewhere than Linux, /proc does not exist and every
reader returns None, which the callers treat as "unknown".
"""
import os

TASKS = "/proc/self/task"
MAPS = "/proc/self/maps"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class _GilHoldingReader:
    """Reads /proc files through libc called with the GIL held (ctypes.PyDLL).

    Python's own file I/O releases the GIL around each system call; with a
    runaway thread spinning in Python, the reader then waits a whole switch
    interval (5 ms) to get it back, per call. /proc reads never block, so
    keeping the GIL costs nothing and keeps a kill's first steps fast.
    """

    O_RDONLY_CLOEXEC = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)

    CHUNK = 16384

    def __init__(self):
        import ctypes
        self.new_buffer = ctypes.create_string_buffer
        libc = ctypes.PyDLL(None, use_errno=True)
        self.open, self.read, self.close = libc.open, libc.read, libc.close
        self.open.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        self.read.restype = ctypes.c_ssize_t
        self.close.argtypes = [ctypes.c_int]

    def __call__(self, path):
        fd = self.open(os.fsencode(path), self.O_RDONLY_CLOEXEC)
        if fd < 0:
            return None
        try:
            # A buffer per call: the GIL may pass between two reads of the loop.
            buffer, chunks = self.new_buffer(self.CHUNK), []
            while True:
                n = self.read(fd, buffer, self.CHUNK)
                if n < 0:
                    return None
                if n == 0:
                    return b"".join(chunks)
                chunks.append(buffer.raw[:n])
        finally:
            self.close(fd)


def _read_releasing_gil(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


try:
    _read_holding_gil = _GilHoldingReader()
except (ImportError, OSError, AttributeError):      # no ctypes or no libc symbols
    _read_holding_gil = None


def read(path):
    """The whole of /proc file `path` (read holding the GIL where possible), or
    None if it cannot be read."""
    if _read_holding_gil is not None:
        return _read_holding_gil(path)
    return _read_releasing_gil(path)


class Syscall:
    """The system call a thread is blocked in: `nr`, six `args`, `sp`, `pc`."""

    __slots__ = ("nr", "args", "sp", "pc")

    def __init__(self, nr, args, sp, pc):
        self.nr, self.args, self.sp, self.pc = nr, args, sp, pc

    def __repr__(self):
        return f"Syscall(nr={self.nr}, args={self.args!r})"


def parse_syscall(text):
    """The Syscall in the text of a /proc/<tid>/syscall file; None if it shows no
    call ("running", or "-1 sp pc")."""
    fields = text.split()
    if len(fields) != 9:
        return None
    values = [int(x, 16) for x in fields[1:]]
    return Syscall(int(fields[0]), tuple(values[:6]), values[6], values[7])


def syscall(tid):
    """The Syscall `tid` is blocked in; None if it runs, is not in one, or is gone."""
    text = read(f"{TASKS}/{tid}/syscall")
    return parse_syscall(text) if text else None


def status(tid):
    """A thread's /proc status as {field: text}; None once it is gone."""
    text = read(f"{TASKS}/{tid}/status")
    if text is None:
        return None
    fields = {}
    for line in text.decode("ascii", "replace").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def signal_blocked(tid, signum):
    """Whether `tid` blocks `signum`; None if unknown."""
    fields = status(tid)
    if fields is None or "SigBlk" not in fields:
        return None
    return bool(int(fields["SigBlk"], 16) >> (signum - 1) & 1)


def _stat_fields(path):
    text = read(path)
    if text is None:
        return None
    # The command name is in parentheses and may contain spaces and ')'.
    return text[text.rindex(b")") + 2:].split()


def thread_stat(tid):
    """(state letter, cpu seconds, start ticks since boot) of `tid`; None once gone."""
    fields = _stat_fields(f"{TASKS}/{tid}/stat")
    if fields is None:
        return None
    # Fields 3, 14, 15 and 22 of proc(5), counted from 1; we start at field 3.
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return fields[0].decode(), cpu, int(fields[19])


def start_ticks(tid):
    """When `tid` started, in clock ticks since boot: with the tid, its identity."""
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


def children(pid=None):
    """{pid: parent pid} of every process whose parent is `pid` or its descendants."""
    root = os.getpid() if pid is None else pid
    parents = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    for name in names:
        if name.isdigit():
            fields = _stat_fields(f"/proc/{name}/stat")
            if fields is not None:
                parents[int(name)] = int(fields[1])
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


def process_start(pid):
    """When process `pid` started (clock ticks since boot), with its pid its identity;
    None once it is gone or a zombie."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    if fields is None or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def command(pid):
    """The command line of process `pid` as one string ('' if unknown)."""
    text = read(f"/proc/{pid}/cmdline")
    return text.replace(b"\0", b" ").decode(errors="replace").strip() if text else ""
