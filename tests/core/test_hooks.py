"""ipy_threadkill.uninstall() leaves the interpreter as it found it.

A child interpreter pictures everything process-wide a kill can change
(tests/interpreter_state.py) before importing the package, kills threads in the
states that make it install each of them, uninstalls, and compares.
"""
import sys

import pytest

from tests import run_json

STATE = """
from tests.interpreter_state import picture as state
"""

KILLS = """
import json, os, time
from concurrent.futures import ThreadPoolExecutor
before = state()
import ipy_threadkill
from tests.victims import Victim

def loop(progress):
    while True:
        progress[0] += 1

def sleep(progress):
    time.sleep(3600)

def swallowing(progress):
    while True:
        try:
            progress[0] += len(progress)
        except BaseException:
            pass

reports = [str(ipy_threadkill.kill(Victim(body, name=body.__name__).start().thread))
           for body in (loop, sleep, swallowing)]

def task():
    while True:
        try:
            time.sleep(0.01)
        except BaseException:
            pass

with ThreadPoolExecutor(1) as pool:
    future = pool.submit(task)
    while not pool._threads or not any(t.is_alive() for t in pool._threads):
        time.sleep(0.001)
    worker = next(iter(pool._threads))
    deadline = time.monotonic() + 10
    while True:
        try:
            reports.append(str(ipy_threadkill.stop_task(worker)))
            break
        except ipy_threadkill.NoSuchThread:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)
try:
    with ipy_threadkill.time_limit(0.2):          # starts the timer thread
        time.sleep(30)
except ipy_threadkill.TimeLimitExceeded as exc:
    reports.append("stopped: " + str(exc))
used = state()
ipy_threadkill.uninstall()
after = state()
ipy_threadkill.uninstall()          # twice is harmless
again = state()
print(json.dumps(dict(before=before, used=used, after=after, again=again, reports=reports)))
"""


def test_uninstall_restores_everything_process_wide():
    result = run_json(STATE + KILLS, timeout=90)
    assert all(r.startswith(("killed", "stopped")) for r in result["reports"]), result["reports"]
    before, used, after = result["before"], result["used"], result["after"]
    assert used["Thread.start"] != before["Thread.start"]        # it did install
    assert used["excepthook"] != before["excepthook"]
    assert "ipy_threadkill time limits" in used["threads"]
    for key in before:
        assert after[key] == before[key], key
    assert result["again"] == before


def test_a_hook_wrapped_after_ours_keeps_working_and_ours_passes_through():
    result = run_json(STATE + """
import json, threading
import ipy_threadkill
from tests.victims import Victim

def loop(progress):
    while True:
        progress[0] += 1

ipy_threadkill.kill(Victim(loop).start().thread)
seen = []
ours = threading.excepthook
threading.excepthook = lambda args: (seen.append(args.exc_type.__name__), ours(args))
ipy_threadkill.uninstall()

def fail():
    raise ipy_threadkill.ThreadKilled()        # silent only while installed

import io, contextlib
err = io.StringIO()
with contextlib.redirect_stderr(err):
    t = threading.Thread(target=fail)
    t.start()
    t.join()
print(json.dumps(dict(seen=seen, reported='ThreadKilled' in err.getvalue())))
""", timeout=60)
    assert result["seen"] == ["ThreadKilled"]
    assert result["reported"], "after uninstall our excepthook must no longer swallow"


@pytest.mark.skipif(sys.version_info[:2] != (3, 12),
                    reason="3.12 is where a swallowing loop needs the line-level raise")
def test_a_kill_without_a_free_monitoring_tool_says_so():
    result = run_json("""
import json, sys, time
import ipy_threadkill
from tests.victims import Victim

for tool in (3, 4, 5):                      # other tools hold every free id
    sys.monitoring.use_tool_id(tool, f"someone else {tool}")

def swallowing(progress):
    while True:
        try:
            progress[0] += 1
            time.sleep(0.001)
        except BaseException:
            pass

victim = Victim(swallowing).start()
try:
    report = ipy_threadkill.kill(victim.thread, timeout=1)
except ipy_threadkill.KillTimeout as exc:
    report = exc.report
print(json.dumps(dict(notes=list(report.notes), line=str(report),
                      tools=[sys.monitoring.get_tool(i) for i in (3, 4, 5)])))
""", timeout=60)
    assert any("no sys.monitoring tool id was free" in note for note in result["notes"]), result
    assert result["tools"] == [f"someone else {tool}" for tool in (3, 4, 5)]
