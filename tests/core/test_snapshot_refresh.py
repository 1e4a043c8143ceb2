"""A refresh of a thread that did not move: its row is the previous one, brought
up to date. Whatever can change without the thread running (its name, set by
another thread; its age; a sleep's time left) must read as a new Snapshotter
would read it, which analyses the thread from scratch."""
import re

from tests import run_json

REFRESH = r"""
import dataclasses, json, threading, time
from ipy_threadkill.snapshot import Snapshotter

def sleeper():
    time.sleep(3600)

thread = threading.Thread(target=sleeper, name="before", daemon=True)
thread.start()
live = Snapshotter()

def row(snapshotter):
    return next(i for i in snapshotter.take() if i.ident == thread.ident)

deadline = time.monotonic() + 30
first = row(live)
while first.state_kind != "sleep":
    if time.monotonic() > deadline:
        raise SystemExit(f"never seen asleep: {first.state}")
    time.sleep(0.01)
    first = row(live)
row(live)                                  # from now on the thread has not moved
thread.name = "after"
again = row(live)
# Where the time left is known (3.11+), wait for its text to step down.
while first.state.endswith("left)") and again.state == first.state:
    if time.monotonic() > deadline:
        raise SystemExit(f"time left never went down: {again.state}")
    time.sleep(0.05)
    again = row(live)
fresh = row(Snapshotter())
print(json.dumps({"first": dataclasses.asdict(first), "again": dataclasses.asdict(again),
                  "fresh": dataclasses.asdict(fresh)}))
"""

CLOCKS = ("identity", "age", "cpu_seconds", "cpu_percent")


def _without_numbers(state):
    return re.sub(r"\d+(\.\d+)? s", "N s", state)


def test_an_unmoved_thread_reads_as_a_new_snapshotter_reads_it():
    out = run_json(REFRESH, timeout=90)
    first, again, fresh = out["first"], out["again"], out["fresh"]
    assert again["name"] == "after", again
    assert again["age"] >= first["age"], (first, again)
    assert again["cpu_percent"] is not None and again["cpu_percent"] <= 1, again
    if first["state"].endswith("left)"):
        assert again["state"] != first["state"], (first, again)
    # A second boundary may fall between the last two snapshots.
    assert _without_numbers(again["state"]) == _without_numbers(fresh["state"])
    for field in set(fresh) - set(CLOCKS) - {"state"}:
        assert again[field] == fresh[field], (field, again, fresh)
