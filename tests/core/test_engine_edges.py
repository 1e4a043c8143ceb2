"""Engine edge cases: a killer that traces, a kill that times out after it has
already woken its victim, and the interpreter state a withdrawn kill leaves."""
from tests import run_json


def test_a_tracing_or_profiling_killer_does_not_hang():
    outcome = run_json("""
import json, sys, threading
import ipy_threadkill as tk
from tests.victims import Victim
v = Victim(lambda p: threading.Event().wait()).start()
sys.setprofile(lambda *a: None)
sys.settrace(lambda *a: None)
report = tk.kill(v.thread)
restored = sys.getprofile() is not None and sys.gettrace() is not None
sys.setprofile(None); sys.settrace(None)
print(json.dumps({'died': report.died, 'restored': restored}))
""", timeout=30)
    assert outcome == {"died": True, "restored": True}


def test_a_kill_that_woke_its_victim_is_seen_through():
    # Giving up after the wake-up would make Event.wait() return True: a lie.
    outcome = run_json("""
import json, threading
import ipy_threadkill as tk
from tests.victims import Victim
event = threading.Event()
returned = []
victims = [Victim(lambda p: returned.append(event.wait())).start() for _ in range(20)]
results = []
for v in victims:
    try:
        results.append(tk.kill(v.thread, timeout=1e-9).died)
    except tk.KillTimeout:
        results.append('gave up')
print(json.dumps({'results': results, 'returned': returned}))
""", timeout=60)
    assert outcome["returned"] == []
    assert all(r is True or r == "gave up" for r in outcome["results"])


def test_traced_threads_run_after_a_failed_kill():
    outcome = run_json("""
import json, sys, threading
import ipy_threadkill as tk
from tests.victims import wait_until
from ipy_threadkill import _blocking
held = threading.Lock(); held.acquire()
waiter = threading.Thread(target=held.acquire, daemon=True); waiter.start()
wait_until(lambda: _blocking.analyze(waiter.ident, waiter.native_id).kind == 'lock')
try:
    tk.kill(waiter, timeout=0.3)
    failed = False
except tk.KillTimeout:
    failed = True
done = []
def traced():
    sys.settrace(lambda *a: None)
    def f():
        return 1
    for _ in range(1000):
        f()
    done.append(True)
t = threading.Thread(target=traced); t.start(); t.join(10)
print(json.dumps({'failed': failed, 'traced_done': done, 'waiter_alive': waiter.is_alive()}))
""", timeout=30)
    assert outcome == {"failed": True, "traced_done": [True], "waiter_alive": True}
