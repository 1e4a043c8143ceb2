"""A kill never cuts the victim's cleanup short, and "cleanup ran" is checked.

The victims hold a library's lock taken with a plain acquire() and given back
in a `finally` (as logging's handlers and many C-binding wrappers do) while
blocked in a call the kill makes fail (a write to a pipe nobody reads, a
socket send, an accept): the error unwinds through that `finally`, and the
kill's exception must not fire inside it. Each victim runs in a child
interpreter with a deadline.
"""
import sys

import pytest

from tests import run_json
from tests.core import FINALLY_START_RACE

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs /proc")

PRELUDE = """
import json, os, socket, threading, time
import ipy_threadkill
from ipy_threadkill import _blocking
from tests.victims import wait_until

class Library:
    '''A library call holding the library's lock while it blocks.'''
    def __init__(self, lock):
        self.lock = lock
    def call(self, blocking_call):
        self.lock.acquire()
        try:
            blocking_call()
        finally:
            self.release()
    def release(self):          # a Python call: the first check point of the finally
        self.lock.release()

def blocked(thread):
    return _blocking.analyze(thread.ident, thread.native_id).kind not in ("running", "c-code")
"""

# name -> (set-up, the blocking call)
BLOCKING = {
    "pipe write": ("r, w = os.pipe()\nos.set_blocking(w, True)",
                   "lambda: [os.write(w, b'x' * 65536) for _ in iter(int, 1)]"),
    "socket sendall": ("a, b = socket.socketpair()",
                       "lambda: a.sendall(b'x' * (64 << 20))"),
    "accept": ("server = socket.socket()\nserver.bind(('127.0.0.1', 0))\nserver.listen()",
               "server.accept"),
}


@FINALLY_START_RACE
@pytest.mark.parametrize("lock_type", ["Lock", "RLock"])
@pytest.mark.parametrize("state", list(BLOCKING))
def test_the_library_lock_is_released_and_the_thread_ends(state, lock_type):
    setup, call = BLOCKING[state]
    out = run_json(PRELUDE + setup + f"""
lock = threading.{lock_type}()
library = Library(lock)
victim = threading.Thread(target=library.call, args=({call},), name="writer", daemon=True)
victim.start()
wait_until(lambda: blocked(victim), what="the victim to block")
report = ipy_threadkill.kill(victim, timeout=5)
victim.join(5)
free = lock.acquire(timeout=2)
print(json.dumps({{"died": report.died, "line": str(report), "cleanup_ran": report.cleanup_ran,
                  "alive": victim.is_alive(), "lock_free": free}}))
""")
    assert out["died"] and not out["alive"], out
    assert out["lock_free"], out
    assert out["cleanup_ran"] and "cleanup ran" in out["line"], out


@FINALLY_START_RACE
@pytest.mark.parametrize("state", list(BLOCKING))
def test_a_caught_error_and_a_retry_still_end_the_thread(state):
    """The thread catches the call's error and calls again: the kill still ends it,
    and the library's lock is free."""
    setup, call = BLOCKING[state]
    out = run_json(PRELUDE + setup + f"""
lock = threading.Lock()
library = Library(lock)
retries = [0]
def retrying():
    while True:
        try:
            library.call({call})
        except OSError:
            retries[0] += 1
victim = threading.Thread(target=retrying, name="retrier", daemon=True)
victim.start()
wait_until(lambda: blocked(victim), what="the victim to block")
report = ipy_threadkill.kill(victim, timeout=5)
victim.join(5)
free = lock.acquire(timeout=2)
print(json.dumps({{"died": report.died, "line": str(report), "alive": victim.is_alive(),
                  "lock_free": free}}))
""")
    assert out["died"] and not out["alive"], out
    if out["lock_free"]:
        assert "cleanup ran" in out["line"], out
    else:
        # 3.11 has no way to raise at the thread's next line: the exception stays
        # queued for the retried call, and the report says what it cost.
        assert "cleanup did NOT finish" in out["line"] and "Lock 'lock'" in out["line"], out
    assert out["lock_free"] or sys.version_info[:2] == (3, 11), out


def test_a_lock_left_held_is_reported_not_claimed_released():
    """A cleanup that forgets the lock (the library's bug, not the kill's): the
    report says which lock stayed held instead of "cleanup ran"."""
    out = run_json(PRELUDE + """
lock = threading.RLock()
def leaky():
    lock.acquire()
    time.sleep(3600)        # no finally: the lock is never given back
victim = threading.Thread(target=leaky, name="leaky", daemon=True)
victim.start()
wait_until(lambda: blocked(victim), what="the victim to block")
report = ipy_threadkill.kill(victim, timeout=5)
print(json.dumps({"died": report.died, "line": str(report), "cleanup_ran": report.cleanup_ran,
                  "held": list(report.held_locks)}))
""")
    assert out["died"] and out["cleanup_ran"] is False, out
    assert "cleanup did NOT finish" in out["line"] and "RLock 'lock'" in out["line"], out
    assert out["held"] == ["RLock 'lock' of leaky()"], out


def test_a_lock_held_as_a_signal_is_no_cleanup_failure():
    """A plain Lock acquired to be waited on by another thread (never released by
    the code that took it) is not cleanup the kill cut short."""
    out = run_json(PRELUDE + """
finished_flag = threading.Lock()
def signaller():
    finished_flag.acquire()
    time.sleep(3600)
victim = threading.Thread(target=signaller, name="signaller", daemon=True)
victim.start()
wait_until(lambda: blocked(victim), what="the victim to block")
report = ipy_threadkill.kill(victim, timeout=5)
print(json.dumps({"died": report.died, "cleanup_ran": report.cleanup_ran}))
""")
    assert out["died"] and out["cleanup_ran"], out
