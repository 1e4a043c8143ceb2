"""A kill of a thread inside a long C call that releases the GIL stays pending.

Nothing reaches such a thread until the call returns (hashing, compression, a
numerical kernel: what a runaway data job is). kill() raises KillPending instead
of withdrawing; the thread ends as the call returns, its cleanup run;
cancel_kill() withdraws it; a later kill() joins it; uninstall() withdraws it.
Each victim runs in a child interpreter with a deadline.
"""
import sys

import pytest

from tests import run_json

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs /proc")

# A victim in a loop of C calls of about CALL_SECONDS each (calibrated in the
# child): the kill is asked for while it is inside one.
PRELUDE = """
import hashlib, json, sys, threading, time
import ipy_threadkill
from ipy_threadkill import KillPending, _blocking, _native
from ipy_threadkill.engine import pending_kill
from tests.victims import Victim, wait_until

CALL_SECONDS = 3.0
began = time.monotonic()
hashlib.pbkdf2_hmac("sha256", b"k", b"s", 100000)
ITERATIONS = int(100000 * CALL_SECONDS / max(time.monotonic() - began, 1e-4))
calls = [0]

# Compiled from a "cell" whose source linecache holds, as IPython does.
import linecache
CELL = '''
def long_c_calls(progress):
    while True:
        hashlib.pbkdf2_hmac("sha256", b"k", b"s", ITERATIONS)
        calls[0] += 1
'''
linecache.cache["<cell-1>"] = (len(CELL), None, CELL.splitlines(True), "<cell-1>")
exec(compile(CELL, "<cell-1>", "exec"))

def pending_kill_of(victim, timeout=0.3):
    try:
        ipy_threadkill.kill(victim.thread, timeout=timeout)
    except KillPending as exc:
        return exc
    raise SystemExit("the kill did not stay pending")

def in_its_call():
    return _blocking.analyze(victim.thread.ident, victim.thread.native_id).kind == "c-code"

victim = Victim(long_c_calls, name="hasher")
victim.start(settled=in_its_call)
"""


def test_the_kill_stays_pending_and_the_thread_ends_when_the_call_returns():
    out = run_json(PRELUDE + """
exc = pending_kill_of(victim)
pending_since = pending_kill(victim.thread.ident)
victim.thread.join(CALL_SECONDS * 5 + 10)
print(json.dumps({
    "message": str(exc), "situation": exc.situation, "report": str(exc.report),
    "died_in_report": exc.report.died, "pending_since": pending_since,
    "alive": victim.thread.is_alive(), "cleanup_ran": victim.cleanup_ran,
    "lock_free": not victim.lock.locked(), "calls": calls[0],
    "pending_after": pending_kill(victim.thread.ident),
    "version": sys.version_info[:2]}))
""", timeout=120)
    assert "inside a C call that releases the GIL" in out["message"], out
    assert "so far" in out["message"] and "it will end when the call returns" in out["message"]
    assert out["message"].endswith("cancel_kill() withdraws it"), out
    if tuple(out["version"]) >= (3, 11):        # instruction positions name the call
        assert "hashlib.pbkdf2_hmac" in out["message"], out
    assert out["died_in_report"] is False and out["pending_since"] is not None
    assert not out["alive"] and out["cleanup_ran"] and out["lock_free"], out
    assert out["calls"] == 0, "the thread ran on past the call it was in"
    assert out["pending_after"] is None


def test_cancel_kill_withdraws_it_and_the_thread_runs_on():
    out = run_json(PRELUDE + """
pending_kill_of(victim)
cancelled = ipy_threadkill.cancel_kill(victim.thread)
again = ipy_threadkill.cancel_kill(victim.thread)
state_after = _native.exception_state(victim.thread.ident)
wait_until(lambda: calls[0] >= 2, timeout=CALL_SECONDS * 10 + 10, what="two more calls")
print(json.dumps({"cancelled": cancelled, "again": again, "pending": state_after[0],
                  "alive": victim.thread.is_alive(), "calls": calls[0],
                  "pending_after": pending_kill(victim.thread.ident)}))
""", timeout=120)
    assert out["cancelled"] is True and out["again"] is False, out
    assert not out["pending"] and out["alive"] and out["calls"] >= 2, out
    assert out["pending_after"] is None


def test_a_later_kill_joins_the_pending_one():
    out = run_json(PRELUDE + """
first = pending_kill_of(victim)
report = ipy_threadkill.kill(victim.thread, timeout=CALL_SECONDS * 5 + 10)
victim.thread.join(5)
print(json.dumps({"died": report.died, "line": str(report), "calls": calls[0],
                  "alive": victim.thread.is_alive(), "cleanup_ran": victim.cleanup_ran}))
""", timeout=120)
    assert out["died"] and not out["alive"] and out["cleanup_ran"], out
    assert out["calls"] == 0, out


def test_uninstall_withdraws_a_pending_kill():
    out = run_json(PRELUDE + """
pending_kill_of(victim)
ipy_threadkill.uninstall()
wait_until(lambda: calls[0] >= 2, timeout=CALL_SECONDS * 10 + 10, what="two more calls")
print(json.dumps({"alive": victim.thread.is_alive(), "calls": calls[0],
                  "pending": _native.exception_state(victim.thread.ident)[0]}))
""", timeout=120)
    assert out["alive"] and out["calls"] >= 2 and not out["pending"], out


def test_a_tracing_thread_runs_on_while_a_kill_is_pending():
    """3.11 keeps one interpreter-wide "exception pending" flag: a thread with a
    trace function must not be stuck on it while the victim's kill waits."""
    out = run_json(PRELUDE + """
pending_kill_of(victim)
steps = [0]
def traced_work():
    sys.settrace(lambda *a: None)
    for _ in range(200000):
        steps[0] += 1
    sys.settrace(None)
worker = threading.Thread(target=traced_work)
worker.start()
worker.join(CALL_SECONDS * 5 + 10)
finished = not worker.is_alive()
victim.thread.join(CALL_SECONDS * 5 + 10)
print(json.dumps({"finished": finished, "steps": steps[0],
                  "victim_alive": victim.thread.is_alive()}))
""", timeout=120)
    assert out["finished"] and out["steps"] == 200000, out
    assert not out["victim_alive"], out
