"""A forced cancel never unwinds native frames it cannot show are safe.

pthread_exit/pthread_cancel unwind every frame on the victim's stack; through
a C++ `noexcept` function that is std::terminate ("terminate called without an
active exception", the whole process aborts), and a `catch (...)` that does not
rethrow aborts too. Each case builds a small library with Debian's compilers,
calls it through ctypes from a thread that blocks every signal and waits in
read(), and checks in a fresh interpreter (with a deadline) that nothing
advises or performs a forced kill there, and that the process survives. A C
library built the same way stays force-killable.
"""
import os
import shutil
import subprocess

import pytest

from ipy_threadkill import _native
from tests import run_json

pytestmark = pytest.mark.skipif(not hasattr(_native, "force_cancel"),
                                reason="no forced cancel on this platform")

CXX = r"""
#include <csignal>
#include <unistd.h>
#include <string>
struct Guard { std::string name{"guard"}; ~Guard() { name.clear(); } };
static void block_all() { sigset_t all; sigfillset(&all); pthread_sigmask(SIG_BLOCK, &all, nullptr); }
extern "C" long noexcept_read(int fd) noexcept {
    Guard guard; char c; block_all();
    return read(fd, &c, 1);
}
extern "C" long catch_all_read(int fd) {
    block_all();
    try { Guard guard; char c; return read(fd, &c, 1); } catch (...) { return -2; }
}
extern "C" long retry_on_eof(int fd) noexcept {
    Guard guard; char c; block_all();
    for (;;) { long n = read(fd, &c, 1); if (n != 0) return n; }
}
"""

C = r"""
#include <signal.h>
#include <pthread.h>
#include <unistd.h>
long plain_read(int fd) {
    sigset_t all; char c; sigfillset(&all); pthread_sigmask(SIG_BLOCK, &all, NULL);
    return read(fd, &c, 1);
}
"""


def _compiler(name):
    if shutil.which(name) is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", name], capture_output=True)
    if shutil.which(name) is None:
        pytest.skip(f"{name} is needed to build the test library and cannot be installed")
    return name


def _build(tmp_path, compiler, source, name):
    src = tmp_path / (name + (".cpp" if compiler == "g++" else ".c"))
    lib = tmp_path / f"lib{name}.so"
    src.write_text(source)
    subprocess.run([_compiler(compiler), "-shared", "-fPIC", "-O1", "-o", str(lib), str(src)],
                   check=True)
    return lib


CASE = """
import ctypes, json, os, threading, time
import ipy_threadkill
from ipy_threadkill import ForceRefused, KillTimeout, _proc
lib = ctypes.CDLL({lib!r})
r, w = os.pipe()
t = threading.Thread(target=lambda: lib.{function}(r), daemon=True)
t.start()
deadline = time.monotonic() + 10
while _proc.syscall(t.native_id) is None or _proc.syscall(t.native_id).nr != 0:
    assert time.monotonic() < deadline, "never blocked in read"
    time.sleep(0.001)
result = {{}}
try:
    ipy_threadkill.kill(t, timeout=1)
    result["gentle"] = "died"
except KillTimeout as exc:
    result["gentle"] = str(exc)
    result["force_refused"] = exc.force_refused
try:
    result["forced"] = str(ipy_threadkill.kill(t, timeout=1, force=True))
    result["forced_died"] = True
except ForceRefused as exc:
    result["forced"] = str(exc)
    result["forced_died"] = False
result["alive"] = t.is_alive()
print(json.dumps(result))
"""


@pytest.mark.parametrize("function", ["noexcept_read", "catch_all_read", "retry_on_eof"])
def test_cxx_frames_are_never_unwound(tmp_path, function):
    lib = _build(tmp_path, "g++", CXX, "cxxwait")
    result = run_json(CASE.format(lib=str(lib), function=function))
    assert "--force" not in result["gentle"] and "force=True" not in result["gentle"], result
    assert "libcxxwait.so" in result["gentle"] and "abort the process" in result["gentle"]
    assert result["force_refused"] and "libcxxwait.so" in result["force_refused"]
    assert not result["forced_died"] and "libcxxwait.so" in result["forced"], result
    assert result["alive"]                   # and the process exited 0 (run_json)


def test_plain_c_library_is_still_force_killable(tmp_path):
    lib = _build(tmp_path, "gcc", C, "cwait")
    result = run_json(CASE.format(lib=str(lib), function="plain_read"))
    assert result["force_refused"] is None and "force" in result["gentle"], result
    assert result["forced_died"] and "forced cancel" in result["forced"], result
    assert not result["alive"]
