"""What native code is on a blocked thread's stack, read from another thread.

Two rungs need to know whose C code a thread is in, without stopping it:
- the interrupted call rewrites a system call's result, which only means what
  the rung intends to a caller known to treat it so (CPython's own built-ins:
  a 0 from read() is end of file there, and the pending exception fires as the
  built-in returns). A foreign C loop may take a false end of file for data, or
  retry for ever;
- the forced cancel unwinds every frame on the stack (pthread_exit and
  pthread_cancel run _Unwind_ForcedUnwind), and C++ or Rust frames may abort
  the whole process there (a `noexcept` function calls std::terminate, a
  `catch (...)` that does not rethrow aborts, PyO3 aborts on a foreign unwind).

The thread sits in a system call, so its stack above the stack pointer that
/proc/self/task/<tid>/syscall shows does not change while it stays there. It
is read through /proc/self/mem (an unmapped address is an error, never a
crash). There is no unwinder here: a word counts as a return address when it
points into executable, file-backed code right after a call instruction, which
is how debuggers scan stacks without unwind tables. A stale word that passes
makes a library look present that is not: the callers treat what they cannot
show safe as unsafe, so an error only ever refuses.
"""
import bisect
import ctypes
import os
import sys
import sysconfig
import threading

from . import _proc

# Bytes of stack read above sp. A Python thread's native stack is a few KB to a
# few hundred KB deep (3.11+ keep Python frames off it); a deeper one is not
# read past this, and what lies beyond counts as unknown.
STACK_LIMIT = 1 << 20
WORD = 8
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# The C library, and the sanitizer runtimes that interpose on its functions
# (they call the real one and hand its result back unchanged).
_LIBC_PREFIXES = ("libc.so", "libc-", "libpthread", "ld-linux", "ld64.so", "ld-musl",
                  "libc.musl", "libdl.so", "librt.so", "libasan.so", "libubsan.so",
                  "libtsan.so", "liblsan.so", "libhwasan.so")
# Names whose presence in an object's dynamic strings means C++ or Rust
# unwinding machinery: a personality routine that may terminate, or catch-all
# handlers (the C++ ABI's and Rust's). C code built with -fexceptions only
# refers to _Unwind_Resume and runs its cleanups correctly.
_UNWIND_HAZARDS = (b"__gxx_personality_", b"__cxa_begin_catch", b"rust_eh_personality",
                   b"libstdc++", b"libc++")
# Names whose presence means a library takes locks of its own (POSIX and C11
# mutexes, read-write and spin locks, semaphores): a thread cancelled inside its
# code may hold one, and the next call into the library then waits for ever
# (a database engine's busy loop holds its connection mutex while it sleeps).
_LOCKING = (b"pthread_mutex_lock", b"pthread_mutex_timedlock", b"pthread_rwlock_rdlock",
            b"pthread_rwlock_wrlock", b"pthread_spin_lock", b"mtx_lock", b"sem_wait",
            b"sem_timedwait")
# Libraries that take locks, but never hold one across a call they make: libffi
# (ctypes' calls) locks only while it allocates a closure.
_LOCKS_NOT_HELD_ACROSS_CALLS = ("libffi.so",)
UNKNOWN_CODE = "[anonymous code]"


def _machine_ok():
    return sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "aarch64")


class _Maps:
    """/proc/self/maps, sorted, looked up by address."""

    def __init__(self):
        self.starts, self.rows = [], []
        text = _proc.read(_proc.MAPS)
        for line in (text or b"").decode(errors="surrogateescape").splitlines():
            fields = line.split(None, 5)
            if len(fields) < 5:
                continue
            low, high = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5].strip() if len(fields) > 5 else ""
            self.starts.append(low)
            self.rows.append((low, high, fields[1], path))

    def find(self, address):
        i = bisect.bisect_right(self.starts, address) - 1
        if i >= 0:
            row = self.rows[i]
            if row[0] <= address < row[1]:
                return row
        return None


class _Memory:
    """pread on /proc/self/mem (an unmapped address is an error, never a crash),
    reopened in a forked child, called through libc with the GIL held: a
    Python-level read would hand the GIL to the victim, which then runs (its
    pending exception firing wherever it happens to be) while the killer is
    still looking at it."""

    def __init__(self):
        self.fd, self.pid, self.lock = None, None, threading.Lock()
        if hasattr(os, "register_at_fork"):     # a forking reader's lock stays held
            os.register_at_fork(after_in_child=self._reset_lock)
        try:
            libc = ctypes.PyDLL(None, use_errno=True)
            self.pread = libc.pread
        except (OSError, AttributeError):
            self.pread = None
            return
        self.pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
        self.pread.restype = ctypes.c_ssize_t

    def _reset_lock(self):
        self.lock = threading.Lock()

    def read(self, address, size):
        if self.pid != os.getpid():
            with self.lock:
                if self.pid != os.getpid():
                    try:
                        self.fd = os.open("/proc/self/mem", os.O_RDONLY | os.O_CLOEXEC)
                    except OSError:
                        self.fd = None
                    self.pid = os.getpid()
        if self.fd is None or self.pread is None or not 0 < address < 1 << 63:
            return None
        buffer = ctypes.create_string_buffer(size)
        got = self.pread(self.fd, buffer, size, address)
        return buffer.raw[:size] if got == size else None


memory = _Memory()


def _after_call(address):
    """Whether the instruction before `address` is a call (x86_64: `e8 rel32`, or
    `ff /2`, an indirect call of 2 to 7 bytes; aarch64: `bl` or `blr`)."""
    if os.uname().machine == "aarch64":
        data = memory.read(address - 4, 4)
        if data is None:
            return False
        word = int.from_bytes(data, "little")
        return word >> 26 == 0b100101 or word & 0xFFFFFC1F == 0xD63F0000
    data = memory.read(address - 7, 7)
    if data is None:
        return False
    if data[2] == 0xE8:                       # call rel32, five bytes
        return True
    for length in range(2, 8):
        opcode, modrm = data[7 - length], data[8 - length]
        if opcode == 0xFF and (modrm >> 3) & 7 == 2:
            return True
    return False


def _objects_above(sp, maps=None):
    """Yield (return address, its object) for each return address above `sp`,
    innermost first (see return_objects). Reads the stack in growing pieces:
    callers that need only the innermost few stop after the first read."""
    maps = maps or _Maps()
    stack = maps.find(sp)
    if stack is None:
        raise LookupError("no mapping holds the stack pointer")
    end = sp + min(stack[1] - sp, STACK_LIMIT)
    address, piece = sp, 4096
    while address < end:
        size = min(piece, end - address)
        size -= size % WORD
        data = memory.read(address, size) if size else None
        if data is None:
            data = _readable_prefix(address, size)
            if address == sp and not data:
                raise LookupError("the stack cannot be read")
        for offset in range(0, len(data), WORD):
            value = int.from_bytes(data[offset:offset + WORD], sys.byteorder)
            row = maps.find(value)
            if row is not None and "x" in row[2] and _after_call(value):
                yield value, row[3] if row[3].startswith("/") else UNKNOWN_CODE
        if len(data) < size or not size:
            break
        address += size
        piece *= 4


def _readable_prefix(address, size):
    """The bytes from `address` up to the first page of the next `size` that
    cannot be read. Newer glibc (measured: 2.43 on Linux 6.18) guards thread
    stacks without a PROT_NONE mapping of their own: neighbouring stacks share
    one mapping, and the guard just above a stack's top (the low end of the
    next stack) fails to read with EIO. Every page between sp and the top is
    in use, hence readable, so the first one that fails ends this stack."""
    pieces, end = [], address + size
    while address < end:
        step = min(PAGE - address % PAGE, end - address)
        data = memory.read(address, step)
        if data is None:
            break
        pieces.append(data)
        address += step
    return b"".join(pieces)


def return_objects(sp):
    """The objects (paths) whose code the return addresses on the stack above
    `sp` point into, innermost first, one per return address; UNKNOWN_CODE for
    executable memory that no file backs. None if the stack cannot be read."""
    if not _machine_ok():
        return None
    try:
        return [path for _, path in _objects_above(sp)]
    except LookupError:
        return None


def is_libc(path):
    return os.path.basename(path).startswith(_LIBC_PREFIXES)


class SharedMaps:
    """One read of /proc/self/maps for the callers of many blocked calls, made
    when the first is looked up. A map read after a call was seen blocked holds
    every object on its stack (they were mapped before it made the call); one
    read earlier may lack a library loaded since. At 1,000 threads the map has
    thousands of rows (two per thread stack): reading it once per call site made
    a first snapshot cost over a second."""

    def __init__(self):
        self._maps = None

    def get(self):
        if self._maps is None:
            self._maps = _Maps()
        return self._maps


def syscall_caller(sp, maps=None):
    """The object that called the C library function the thread is blocked in:
    the first return address on its stack outside the C library. None if it
    cannot be told. `maps`: a SharedMaps created after the call was seen
    blocked; without it, the map is read afresh."""
    if not _machine_ok():
        return None
    maps = maps.get() if maps is not None else _Maps()
    try:
        return next((path for address, path in _objects_above(sp, maps)
                     if not is_libc(path) and _may_call_out(address, path, maps)), None)
    except LookupError:
        return None


# The first bytes of a PLT entry (x86_64): jmp *GOT(%rip), after endbr64 and a
# bnd prefix where the object was built with them.
_PLT_STARTS = (b"\xff\x25", b"\xf3\x0f\x1e\xfa\xff\x25", b"\xf3\x0f\x1e\xfa\xf2\xff\x25")


def _may_call_out(address, path, maps):
    """Whether the call that return address `address` (in `path`) follows can
    have called into another object. A direct call of a function of the same
    object cannot have called the C library: such a word is a stale one in a
    C library frame. glibc 2.41+ gives read() and the other cancellable calls
    frames of their own (they go through one shared syscall site), whose
    unwritten slots keep return addresses of earlier, deeper calls (measured
    on 2.43: one into CPython's executable, between read() and a foreign
    library's call of it). Indirect calls, and aarch64, cannot be told."""
    if os.uname().machine != "x86_64":
        return True
    data = memory.read(address - 5, 5)
    if data is None or data[0] != 0xE8:
        return True
    target = address + int.from_bytes(data[1:], "little", signed=True)
    row = maps.find(target)
    if row is None or row[3] != path:
        return True
    start = memory.read(target, 7)
    return start is not None and start.startswith(_PLT_STARTS)


def _interpreter_objects():
    paths = {os.path.realpath(sys.executable)}
    dynload = sysconfig.get_config_var("DESTSHARED")
    directories = {os.path.realpath(dynload)} if dynload else set()
    for name in ("select", "_socket", "_posixsubprocess", "time"):
        module = sys.modules.get(name) or __import__(name)
        where = getattr(module, "__file__", None)
        if where:
            directories.add(os.path.dirname(os.path.realpath(where)))
    from . import _native
    paths.add(os.path.realpath(_native.__file__))
    return frozenset(paths), frozenset(directories)


_interpreter = None
# path -> is_interpreter_code(path). A path is resolved through its symbolic
# links once: a first snapshot asks it for every blocked call site (hundreds,
# nearly all of one path), and realpath costs a system call per component.
_interpreter_paths = {}


def is_interpreter_code(path):
    """Whether `path` is CPython's own code: the python executable, libpython,
    an extension module of its standard library, or this package's C core."""
    global _interpreter
    if not path or not path.startswith("/"):
        return False
    known = _interpreter_paths.get(path)
    if known is not None:
        return known
    if _interpreter is None:
        _interpreter = _interpreter_objects()
    paths, directories = _interpreter
    real = os.path.realpath(path)
    known = (real in paths or os.path.basename(real).startswith("libpython")
             or os.path.dirname(real) in directories)
    if len(_interpreter_paths) > 256:
        _interpreter_paths.clear()
    _interpreter_paths[path] = known
    return known


_verdicts = {}


def _unwinding_machinery(path):
    """Why a forced unwind through `path`'s frames is not safe: "C++" or "Rust"
    (its unwinding machinery may abort the process), "locking" (it takes locks
    of its own, which a cancel could leave held), "unreadable" (its ELF cannot
    be read); None if it shows none of these. Cached by file identity."""
    try:
        info = os.stat(path)
    except OSError:
        return "unreadable"
    key = (path, info.st_dev, info.st_ino, info.st_mtime_ns)
    if key not in _verdicts:
        strings = _dynamic_strings(path)
        if strings is None:
            verdict = "unreadable"
        else:
            hit = next((h for h in _UNWIND_HAZARDS if h in strings), None)
            verdict = None if hit is None else (
                "Rust" if hit.startswith(b"rust") else "C++")
            if verdict is None and any(name in strings for name in _LOCKING):
                verdict = "locking"
        if len(_verdicts) > 256:
            _verdicts.clear()
        _verdicts[key] = verdict
    return _verdicts[key]


def _dynamic_strings(path):
    """The bytes of an ELF64 object's .dynstr section (the names of its dynamic
    symbols and of the libraries it needs), or None."""
    try:
        with open(path, "rb") as f:
            header = f.read(64)
            if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:
                return None
            order = "little" if header[5] == 1 else "big"
            shoff = int.from_bytes(header[0x28:0x30], order)
            shentsize = int.from_bytes(header[0x3A:0x3C], order)
            shnum = int.from_bytes(header[0x3C:0x3E], order)
            if not shoff or shentsize < 64 or not 0 < shnum < 65536:
                return None
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            sections = [table[i * shentsize:(i + 1) * shentsize] for i in range(shnum)]
            for section in sections:
                if int.from_bytes(section[4:8], order) != 11:         # SHT_DYNSYM
                    continue
                link = int.from_bytes(section[0x28:0x2C], order)
                if link >= shnum:
                    return None
                strtab = sections[link]
                offset = int.from_bytes(strtab[0x18:0x20], order)
                size = int.from_bytes(strtab[0x20:0x28], order)
                f.seek(offset)
                return f.read(min(size, 64 << 20))
            return b""                          # no dynamic symbols at all
    except OSError:
        return None


def unwind_hazards(sp):
    """[(path, why, aborts)] for the code on the stack above `sp` that a forced
    unwind is not safe through (`aborts`: it could abort the process, rather
    than leave the library's locks held); None if the stack cannot be read
    (nothing is shown safe). The C library and CPython's own code are safe; any
    other object is safe only if its ELF shows no C++ or Rust unwinding
    machinery and no locking of its own."""
    objects = return_objects(sp)
    if objects is None:
        return None
    hazards = []
    for path in dict.fromkeys(objects):
        if is_libc(path) or is_interpreter_code(path):
            continue
        why = "code that no file backs" if path == UNKNOWN_CODE else _unwinding_machinery(path)
        if why == "locking" and os.path.basename(path).startswith(_LOCKS_NOT_HELD_ACROSS_CALLS):
            continue
        if why == "locking":
            hazards.append((path, "a library that takes locks of its own", False))
            continue
        if why == "unreadable":
            why = "a library whose code cannot be read"
        elif why is not None:
            why = f"{why} code"
        if why is not None:
            hazards.append((path, why, True))
    return hazards
