"""Every public function that takes a timeout refuses the same bad values the
same way (InvalidArgument, a ValueError), and the C layer refuses them too, so
no value reaches a conversion whose result is undefined (NaN or 1e300 seconds
as microseconds in a C long)."""
import math

import pytest

from ipy_threadkill import InvalidArgument, _arguments, _native
from tests import run_json

BAD = [-1, 0, -0.0, math.nan, math.inf, -math.inf, 1e300, 10**400, True, "2", None]


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_seconds_refuses(value):
    with pytest.raises(InvalidArgument) as caught:
        _arguments.seconds(value)
    assert isinstance(caught.value, ValueError)
    assert "timeout" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("value", [1e-6, 0.5, 2, 1e6])
def test_seconds_takes(value):
    assert _arguments.seconds(value) == float(value)


def test_zero_where_allowed():
    assert _arguments.seconds(0, "interval", allow_zero=True) == 0.0
    with pytest.raises(InvalidArgument, match="interval"):
        _arguments.seconds(-1, "interval", allow_zero=True)


@pytest.mark.skipif(not hasattr(_native, "interrupt_syscall"), reason="Linux only")
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 1e300, -1e300])
def test_native_interrupt_refuses_out_of_range_timeouts(value):
    # Refused before anything is armed or sent: tid 1 is never ours anyway.
    with pytest.raises(ValueError, match="timeout"):
        _native.interrupt_syscall(1, 0, (0, 0, 0, 0, 0, 0), 0, 0, 0, value)


def test_every_public_timeout_refuses_the_same_values_and_kills_nothing():
    outcome = run_json("""
import json, math, time
import ipy_threadkill as tk
from concurrent.futures import ThreadPoolExecutor
from tests.victims import Victim
v = Victim(lambda p: time.sleep(3600)).start()
pool = ThreadPoolExecutor(1)
pool.submit(time.sleep, 3600)
worker = next(t for t in __import__("threading").enumerate() if t.name.startswith("ThreadPool"))
calls = {"kill": lambda t: tk.kill(v.thread, timeout=t),
         "stop_task": lambda t: tk.stop_task(worker, timeout=t)}
try:
    from ipy_threadkill import dask as tk_dask
    calls["dask.stop"] = lambda t: tk_dask.stop("no-such-key", client=object(), timeout=t)
except ImportError:
    pass
refused = {}
for name, call in calls.items():
    for value in (-1, 0, math.nan, math.inf, 1e300, True, "2"):
        try:
            call(value)
            refused.setdefault(name, []).append(f"accepted {value!r}")
        except tk.InvalidArgument as exc:
            refused.setdefault(name, []).append(isinstance(exc, ValueError))
print(json.dumps({"refused": refused, "victim": v.thread.is_alive(),
                  "worker": worker.is_alive()}), flush=True)
import os
os._exit(0)                # the pool's worker sleeps on; exit would join it
""")
    assert outcome["victim"] and outcome["worker"]
    for name, results in outcome["refused"].items():
        assert results == [True] * 7, (name, results)
