"""The free-threaded build: the package runs without the GIL and never turns it on.

Importing an extension that has not declared it needs no GIL turns the GIL on
for the whole process; so would any later import of one. Each kill the engine
does is run here, then the GIL is asked for.
"""
import sys

import pytest

from tests import run_json

pytestmark = pytest.mark.skipif(
    getattr(sys, "_is_gil_enabled", lambda: True)(),
    reason="a GIL build (or a free-threaded one run with the GIL on)")

# name -> (setup, body) of a victim thread, killed one after the other.
KILLS = {
    "python loop": ("", "while True:\n    progress[0] += 1"),
    "sleep": ("import time", "time.sleep(3600)"),
    "socket read": ("import socket\na, b = socket.socketpair()", "a.recv(10)"),
    "event wait": ("import threading\nev = threading.Event()", "ev.wait()"),
    "swallowing loop": ("", "while True:\n    try:\n        progress[0] += 1\n"
                            "    except BaseException:\n        pass"),
    "child wait": ("import subprocess\np = subprocess.Popen(['sleep', '3600'])",
                   "os.waitpid(p.pid, 0)"),
}


def _kills():
    parts = []
    for name, (setup, body) in KILLS.items():
        indented = "\n".join("    " + line for line in body.splitlines())
        parts.append(f"""
{setup}
def body(progress):
{indented}
victim = Victim(body).start()
report = ipy_threadkill.kill(victim.thread, timeout=5)
out[{name!r}] = dict(died=report.died, gil=sys._is_gil_enabled())
""")
    return "".join(parts)


def test_the_gil_stays_off():
    outcome = run_json(f"""
import json, os, sys, threading
import ipy_threadkill
from ipy_threadkill.tasks import stop_task
from tests.victims import Victim, started_pool, wait_or_raise
out = {{"import": dict(died=True, gil=sys._is_gil_enabled())}}
{_kills()}
pool, _ = started_pool(1)
running_in = []
def task():
    running_in.append(threading.get_ident())
    while True:
        pass
future = pool.submit(task)
wait_or_raise(lambda: running_in, "the task to start")
report = stop_task(running_in[0])
out["stop_task"] = dict(died=report.died, gil=sys._is_gil_enabled())
pool.shutdown()
print(json.dumps(out))
""", timeout=120)
    assert outcome == {name: dict(died=True, gil=False)
                       for name in ["import", *KILLS, "stop_task"]}
