"""Waits the interrupt rung ends with an error their CPython caller raises.

A file lock another process holds (flock, lockf), an open() of a FIFO that has
no other end, a connect() whose SYNs go unanswered, a sendall() to a peer that
never reads. The victim holds a library's lock around the call in a
try/finally; the error unwinds through it, then the kill's exception ends the
thread. Each victim runs in a child interpreter with a deadline; the child
must exit 0 with nothing on stderr.
"""
import ctypes
import errno
import socket
import sys

import pytest

from ipy_threadkill import _blocking, _proc, _syscalls
from tests import run_json
from tests.core import FINALLY_START_RACE

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs /proc")
fcntl = pytest.importorskip("fcntl")

PRELUDE = """
import errno, fcntl, json, os, socket, subprocess, sys, tempfile, threading
import ipy_threadkill
from ipy_threadkill import _blocking
from tests.victims import wait_until

directory = tempfile.mkdtemp()
lock = threading.Lock()
seen = {}

def library(blocking_call):
    '''A library call holding the library's lock while it blocks.'''
    lock.acquire()
    try:
        blocking_call()
    finally:
        seen["error"] = getattr(sys.exc_info()[1], "errno", None)
        seen["finally"] = True
        lock.release()

def holding(how, path):
    '''Another process holding a lock on `path` until its stdin closes.'''
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys\\n"
         f"f = open(sys.argv[1], 'r+')\\nfcntl.{how}(f, fcntl.LOCK_EX)\\n"
         "print('held', flush=True)\\nsys.stdin.read()", path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\\n"
    return holder

def blocked(thread):
    return _blocking.analyze(thread.ident, thread.native_id).kind not in ("running", "c-code")

def wchan_known(thread):
    '''Whether this kernel names a blocked thread's wait (it may hide it: "0").'''
    try:
        with open(f"/proc/self/task/{thread.native_id}/wchan") as f:
            return f.read() not in ("", "0")
    except OSError:
        return False
"""

FILE_LOCK_SETUP = """
path = os.path.join(directory, "locked")
open(path, "w").close()
holder = holding({how!r}, path)
def call():
    with open(path, "r+") as f:
        fcntl.{how}(f, fcntl.LOCK_EX)
"""

FIFO_SETUP = """
path = os.path.join(directory, "fifo")
os.mkfifo(path)
def call():
    with open(path, "rb") as f:
        f.read()
"""

# A listening socket whose accept queue is full drops SYNs (Linux: unless
# tcp_abort_on_overflow), so the next connect() retries them for minutes.
CONNECT_SETUP = """
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(0)
path = "%s:%d" % server.getsockname()
fillers = []
for _ in range(64):
    filler = socket.socket()
    filler.settimeout(0.5)
    fillers.append(filler)
    try:
        filler.connect(server.getsockname())
    except socket.timeout:
        break
else:
    print(json.dumps({"skip": "the accept queue never filled: connect does not block"}))
    sys.exit(0)
def call():
    with socket.socket() as s:
        s.connect(server.getsockname())
"""

# A unix socket's connect() waits while the listener's backlog is full.
UNIX_CONNECT_SETUP = """
path = os.path.join(directory, "listener")
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(0)
fillers = []
for _ in range(64):
    filler = socket.socket(socket.AF_UNIX)
    filler.setblocking(False)
    fillers.append(filler)
    try:
        filler.connect(path)
    except BlockingIOError:
        break
else:
    print(json.dumps({"skip": "the backlog never filled: connect does not block"}))
    sys.exit(0)
def call():
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
"""

SENDALL_SETUP = """
a, b = socket.socketpair()
path = "unix socket"
def call():
    a.sendall(b"x" * (64 << 20))
"""

# name -> (set-up, the system calls it may block in, what the state names,
#          the errno the caller's cleanup sees)
WAITS = {
    "flock": (FILE_LOCK_SETUP.format(how="flock"), ("flock",),
              "waiting for a lock on {path} (flock) held by process {holder} (", errno.ENOLCK),
    "lockf": (FILE_LOCK_SETUP.format(how="lockf"), ("fcntl",),
              "waiting for a lock on {path} (fcntl) held by process {holder} (", errno.ENOLCK),
    "FIFO open": (FIFO_SETUP, ("openat", "open"), "opening FIFO {path} (no writer yet)",
                  errno.ENXIO),
    "TCP connect": (CONNECT_SETUP, ("connect",), "connecting to {path}", errno.ETIMEDOUT),
    "unix connect": (UNIX_CONNECT_SETUP, ("connect",), "connecting to unix socket {path}",
                     errno.ETIMEDOUT),
    "sendall": (SENDALL_SETUP, ("sendto",), "writing to {path}", errno.EPIPE),
}


@FINALLY_START_RACE
@pytest.mark.parametrize("wait", list(WAITS))
def test_the_wait_is_interrupted_and_the_cleanup_runs(wait):
    setup, calls, state, error = WAITS[wait]
    out = run_json(PRELUDE + setup + """
victim = threading.Thread(target=library, args=(call,), name="waiter", daemon=True)
victim.start()
wait_until(lambda: blocked(victim), what="the victim to block")
info = next(i for i in ipy_threadkill.threads() if i.ident == victim.ident)
wchan = wchan_known(victim)
report = ipy_threadkill.kill(victim, timeout=5)
victim.join(5)
free = lock.acquire(timeout=2)
holder_pid = None
if "holder" in globals():
    holder_pid = holder.pid
    holder.stdin.close()
    holder.wait(10)
with open("/proc/self/fdinfo/0", "rb") as f:
    inode_known = b"ino:" in f.read()
print(json.dumps({"holder": holder_pid, "inode_known": inode_known, "died": report.died,
                  "line": str(report), "cleanup_ran": report.cleanup_ran,
                  "rung": report.rung.name, "alive": victim.is_alive(), "lock_free": free,
                  "seen": seen, "state": info.state, "plan": info.kill_plan,
                  "killable": info.killable, "path": path, "wchan": wchan}))
""")
    if "skip" in out:
        pytest.skip(out["skip"])
    assert out["died"] and not out["alive"], out
    assert out["rung"] == "SYSCALL", out
    assert out["seen"] == {"error": error, "finally": True}, out
    assert out["lock_free"] and out["cleanup_ran"] and "cleanup ran" in out["line"], out
    assert out["killable"] and out["plan"] in [f"interrupt {name}" for name in calls], out
    expected = state.format(path=out["path"], holder=out["holder"])
    if wait == "FIFO open" and not out["wchan"]:
        expected = f"opening {out['path']}"         # the kernel hides which wait it is
    if out["holder"] and not out["inode_known"]:
        expected = expected.split(" held by ")[0]   # fdinfo without ino: Linux < 5.14
    if wait in ("flock", "lockf", "sendall"):      # then a command line, a descriptor
        assert out["state"].startswith(expected), out
    else:
        assert out["state"] == expected, out


@FINALLY_START_RACE
def test_an_open_relative_to_a_directory_for_writing_is_named_and_ended():
    """os.open(name, O_WRONLY, dir_fd=...) of a FIFO without a reader: the state
    names the directory's path and the missing end, and the kill ends it."""
    out = run_json(PRELUDE + """
os.mkfifo(os.path.join(directory, "fifo"))
where = os.open(directory, os.O_RDONLY)
def call():
    os.close(os.open("fifo", os.O_WRONLY, dir_fd=where))
victim = threading.Thread(target=library, args=(call,), name="writer", daemon=True)
victim.start()
wait_until(lambda: blocked(victim), what="the victim to block")
info = next(i for i in ipy_threadkill.threads() if i.ident == victim.ident)
wchan = wchan_known(victim)
report = ipy_threadkill.kill(victim, timeout=5)
victim.join(5)
print(json.dumps({"died": report.died, "alive": victim.is_alive(), "seen": seen,
                  "lock_free": lock.acquire(timeout=2), "state": info.state,
                  "path": os.path.join(directory, "fifo"), "wchan": wchan}))
""")
    assert out["died"] and not out["alive"] and out["lock_free"], out
    assert out["seen"] == {"error": errno.ENXIO, "finally": True}, out
    words = " (no reader yet)" if out["wchan"] else ""
    assert out["state"] == f"opening {'FIFO ' * bool(words)}{out['path']}{words}", out


@FINALLY_START_RACE
def test_a_retried_lock_wait_still_ends_the_thread():
    """A caller that catches the lock's error and waits again (a lock library's
    loop) is still ended, and the library's lock is free (3.11 excepted: there
    the exception stays queued for the retried call, and the report says so)."""
    out = run_json(PRELUDE + FILE_LOCK_SETUP.format(how="flock") + """
tries = [0]
def retrying():
    while True:
        try:
            library(call)
        except OSError:
            tries[0] += 1
victim = threading.Thread(target=retrying, name="retrier", daemon=True)
victim.start()
wait_until(lambda: blocked(victim), what="the victim to block")
report = ipy_threadkill.kill(victim, timeout=5)
victim.join(5)
free = lock.acquire(timeout=2)
holder.stdin.close()
holder.wait(10)
print(json.dumps({"died": report.died, "line": str(report), "alive": victim.is_alive(),
                  "lock_free": free}))
""")
    assert out["died"] and not out["alive"], out
    if out["lock_free"]:
        assert "cleanup ran" in out["line"], out
    else:
        assert "cleanup did NOT finish" in out["line"], out
    assert out["lock_free"] or sys.version_info[:2] == (3, 11), out


def test_a_lock_wait_a_foreign_caller_made_is_refused_and_left_alone():
    """flock() called through ctypes: its caller is not CPython's, which may take
    ENOLCK for something else, so the kill refuses and changes nothing; the call
    takes the lock once the other process lets it go."""
    out = run_json(PRELUDE + FILE_LOCK_SETUP.format(how="flock") + """
import ctypes
flock = ctypes.CDLL(None, use_errno=True).flock
result = []
def call():
    with open(path, "r+") as f:
        result.append(flock(f.fileno(), fcntl.LOCK_EX))
victim = threading.Thread(target=library, args=(call,), name="foreign", daemon=True)
victim.start()
wait_until(lambda: blocked(victim), what="the victim to block")
try:
    ipy_threadkill.kill(victim, timeout=1)
    refusal = None
except ipy_threadkill.KillTimeout as exc:
    refusal = str(exc)
info = next(i for i in ipy_threadkill.threads() if i.ident == victim.ident)
holder.stdin.close()
holder.wait(10)
victim.join(10)
print(json.dumps({"refusal": refusal, "plan": info.kill_plan, "alive": victim.is_alive(),
                  "result": result, "seen": seen}))
""")
    assert out["refusal"] and "not CPython's own code" in out["refusal"], out
    assert out["plan"].startswith("gentle kill impossible"), out
    assert not out["alive"] and out["result"] == [0], out
    assert out["seen"] == {"error": None, "finally": True}, out


@FINALLY_START_RACE
def test_an_error_unwinding_through_a_file_close_is_not_cut_short():
    """The error leaves through a `with open(...)` whose C __exit__ flushes and
    closes the file, releasing the GIL for as long as the flush takes: no
    Python frame says it is cleanup, yet the exception must not be queued
    there, or it fires in the library's finally and leaves its lock held."""
    out = run_json(PRELUDE + FILE_LOCK_SETUP.format(how="flock") + """
def call():
    with open(os.path.join(directory, "scratch"), "wb", buffering=256 << 20) as out:
        out.write(b"x" * (128 << 20))        # flushed by the file's C __exit__
        with open(path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
victim = threading.Thread(target=library, args=(call,), name="flusher", daemon=True)
victim.start()
wait_until(lambda: blocked(victim), what="the victim to block")
report = ipy_threadkill.kill(victim, timeout=5)
victim.join(5)
free = lock.acquire(timeout=2)
holder.stdin.close()
holder.wait(10)
print(json.dumps({"died": report.died, "line": str(report), "alive": victim.is_alive(),
                  "lock_free": free, "seen": seen,
                  "flushed": os.path.getsize(os.path.join(directory, "scratch"))}))
""")
    assert out["died"] and not out["alive"], out
    assert out["seen"] == {"error": errno.ENOLCK, "finally": True}, out
    assert out["lock_free"] and "cleanup ran" in out["line"], out
    assert out["flushed"] == 128 << 20, out


# --- The words, from calls described to analyze() ---------------------------

def _analyze(name, *args):
    """What analyze() makes of a thread no Python code knows, blocked in `name`."""
    if name not in _syscalls.NUMBERS:
        pytest.skip(f"no {name} on this machine")
    sc = _proc.Syscall(_syscalls.NUMBERS[name], tuple(args) + (0,) * (6 - len(args)), 0, 0)
    return _blocking.analyze(None, None, syscall=sc)


def test_only_fcntl_lock_waits_are_interrupted(tmp_path):
    with open(tmp_path / "file", "w") as f:
        waiting = _analyze("fcntl", f.fileno(), fcntl.F_SETLKW)
        other = _analyze("fcntl", f.fileno(), fcntl.F_GETFL)
    assert waiting.gentle and waiting.syscall_name == "fcntl", waiting
    assert waiting.description == f"waiting for a lock on {tmp_path / 'file'} (fcntl)"
    assert not other.gentle and other.rung is None, other
    assert "cannot be interrupted" in other.reason


@pytest.mark.parametrize("family, address, words", [
    ("AF_INET6", ("::1", 8080), "[::1]:8080"),
    ("AF_INET", ("192.0.2.7", 443), "192.0.2.7:443"),
    ("AF_UNIX", "/run/some.sock", "unix socket /run/some.sock"),
    ("AF_UNIX", b"\0abstract", "@abstract"),
])
def test_a_connect_names_the_address_it_was_given(family, address, words):
    family = getattr(socket, family)
    if family == socket.AF_UNIX:
        raw = address.encode() if isinstance(address, str) else address
        sockaddr = family.to_bytes(2, sys.byteorder) + raw
    else:
        port = address[1].to_bytes(2, "big")
        packed = socket.inet_pton(family, address[0])
        sockaddr = family.to_bytes(2, sys.byteorder) + port + (
            packed if family == socket.AF_INET else bytes(4) + packed + bytes(4))
    buffer = ctypes.create_string_buffer(sockaddr, len(sockaddr))
    blocking = _analyze("connect", 99, ctypes.addressof(buffer), len(sockaddr))
    assert blocking.description == f"connecting to {words}", blocking


def test_an_unreadable_path_or_address_still_reads_as_a_wait():
    assert _analyze("openat", 2**32 - 100, 8, 0).description == "opening a file"
    assert _analyze("connect", 99, 8, 16).description.startswith("connecting fd 99")
