"""Bad targets get a clear one-line error from the right family and kill nothing."""
import pytest

from tests import run_json

CHECK = """
import json, threading, time
import ipy_threadkill as tk
from tests.victims import Victim, wait_until
bystander = Victim(lambda p: time.sleep(3600), name='bystander').start()
twin_a = Victim(lambda p: time.sleep(3600), name='twin').start()
twin_b = Victim(lambda p: time.sleep(3600), name='twin').start()
# Last, so that no live thread has taken over its ident.
finished = threading.Thread(target=lambda: None, name='finished'); finished.start(); finished.join()
results = {}
def attempt(label, target, **kw):
    try:
        tk.kill(target, **kw)
        results[label] = ['no error']
    except tk.ThreadKillError as exc:
        kinds = [k.__name__ for k in (LookupError, ValueError, TypeError, RuntimeError) if isinstance(exc, k)]
        results[label] = [type(exc).__name__, kinds, str(exc)]
TARGETS
alive = [t.thread.is_alive() for t in (bystander, twin_a, twin_b)]
print(json.dumps({'results': results, 'alive': alive}))
"""


def _run(targets):
    return run_json(CHECK.replace("TARGETS", targets))


def test_bad_targets():
    outcome = _run("""
attempt('unknown ident', 123456789)
attempt('unknown name', 'no-such-thread')
attempt('finished thread', finished)
attempt('finished ident', finished.ident)
attempt('main thread', threading.main_thread())
attempt('main ident', threading.main_thread().ident)
attempt('own thread', threading.current_thread())
attempt('ambiguous name', 'twin')
attempt('float', 1.5)
attempt('none', None)
attempt('bool', True)
attempt('list', [bystander.thread])
attempt('garbage string', '  ')
""")
    r = outcome["results"]
    assert r["unknown ident"][:2] == ["NoSuchThread", ["LookupError"]]
    assert r["unknown name"][:2] == ["NoSuchThread", ["LookupError"]]
    assert r["finished thread"][0] == "NoSuchThread" and "finished" in r["finished thread"][2]
    assert r["finished ident"][0] == "NoSuchThread"
    for key in ("main thread", "main ident", "own thread"):
        assert r[key][:2] == ["ProtectedThread", ["ValueError"]], r[key]
    assert "main thread" in r["main thread"][2]
    assert r["ambiguous name"][:2] == ["AmbiguousTarget", ["LookupError"]]
    for key in ("float", "none", "bool", "list"):
        assert r[key][:2] == ["InvalidTarget", ["TypeError"]], r[key]
    assert r["garbage string"][0] in ("NoSuchThread", "InvalidTarget")
    for value in r.values():
        if len(value) == 3:
            assert "\n" not in value[2] and value[2]
    assert outcome["alive"] == [True, True, True]


def test_bad_timeout_is_a_value_error_and_kills_nothing():
    outcome = run_json("""
import json, time
import ipy_threadkill as tk
from tests.victims import Victim
v = Victim(lambda p: time.sleep(3600)).start()
errors = []
for timeout in (-1, 0, 'soon', None, float('nan')):
    try:
        tk.kill(v.thread, timeout=timeout)
    except tk.InvalidArgument as exc:
        errors.append(isinstance(exc, ValueError))
print(json.dumps({'errors': sum(errors), 'alive': v.thread.is_alive()}))
""")
    assert outcome == {"errors": 5, "alive": True}


def test_recycled_ident_is_refused():
    outcome = run_json("""
import json, threading, time
import ipy_threadkill as tk
from ipy_threadkill._identity import identity_of
done = threading.Event()
t = threading.Thread(target=done.wait); t.start()
pinned = identity_of(t.ident, t)
done.set(); t.join()
# A new thread may reuse the ident at once; it must never be touched.
stop = threading.Event()
fresh = threading.Thread(target=stop.wait, name='fresh'); fresh.start()
try:
    tk.kill(pinned)
    result = 'killed'
except tk.NoSuchThread as exc:
    result = str(exc)
alive = fresh.is_alive()
stop.set(); fresh.join()
print(json.dumps({'result': result, 'fresh_alive': alive, 'same_ident': fresh.ident == pinned.ident}))
""")
    assert outcome["result"] != "killed" and outcome["fresh_alive"]
    if outcome["same_ident"]:
        assert "refresh" in outcome["result"]


def test_eight_killers_at_once_and_killing_each_other():
    outcome = run_json("""
import json, threading, time
import ipy_threadkill as tk
from tests.victims import Victim
bodies = [lambda p: time.sleep(3600), lambda p: threading.Event().wait(),
          lambda p: [p.__setitem__(0, p[0] + 1) for _ in iter(int, 1)]]
victims = [Victim(bodies[i % 3], name=f'v{i}').start() for i in range(40)]
outcomes = []
def killer(share):
    for v in share:
        try:
            outcomes.append(tk.kill(v.thread).died)
        except tk.ThreadKillError as exc:
            outcomes.append(type(exc).__name__)
killers = [threading.Thread(target=killer, args=(victims[i::8],), name=f'k{i}') for i in range(8)]
for k in killers: k.start()
# Killers also kill each other; each either dies or finishes its share.
for i in range(0, 8, 2):
    try:
        tk.kill(killers[i], timeout=5)
    except tk.ThreadKillError:
        pass
for k in killers: k.join(30)
for v in victims:
    if v.thread.is_alive():
        tk.kill(v.thread)
    v.thread.join(5)
print(json.dumps({'victims_alive': sum(v.thread.is_alive() for v in victims),
                  'killers_alive': sum(k.is_alive() for k in killers),
                  'cleanups': sum(v.cleanup_ran for v in victims),
                  'threads': threading.active_count()}))
""", timeout=120)
    assert outcome == {"victims_alive": 0, "killers_alive": 0, "cleanups": 40, "threads": 1}


@pytest.mark.parametrize("kind", ["bare", "daemon-less"])
def test_other_thread_kinds(kind):
    start = ("import _thread\nstarted = threading.Event()\n"
             "def run():\n    started.set()\n    try:\n        time.sleep(3600)\n"
             "    finally:\n        cleaned.append(1)\n"
             "ident = _thread.start_new_thread(run, ())\nstarted.wait()\ntarget = ident")
    if kind == "daemon-less":
        start = ("t = threading.Thread(target=lambda: time.sleep(3600), daemon=False)\n"
                 "t.start()\ntarget = t\nident = t.ident\ncleaned.append(1)")
    outcome = run_json(f"""
import json, threading, time, sys
import ipy_threadkill as tk
from tests.victims import wait_until
cleaned = []
{start}
report = tk.kill(target)
wait_until(lambda: ident not in sys._current_frames())
print(json.dumps({{'died': report.died, 'cleaned': cleaned}}))
""")
    assert outcome == {"died": True, "cleaned": [1]}


def test_a_number_that_is_one_threads_name_and_anothers_id_is_ambiguous():
    outcome = run_json("""
import json, time
import ipy_threadkill as tk
from tests.victims import Victim
numbered = Victim(lambda p: time.sleep(3600), name='numbered').start()
by_native = Victim(lambda p: time.sleep(3600), name=str(numbered.thread.native_id)).start()
by_ident = Victim(lambda p: time.sleep(3600), name=str(numbered.thread.ident)).start()
results = []
for victim in (by_native, by_ident):
    try:
        tk.kill(victim.thread.name)
        results.append(['no error'])
    except tk.ThreadKillError as exc:
        results.append([type(exc).__name__, len(exc.candidates), str(exc)])
print(json.dumps({'results': results, 'idents': [numbered.thread.ident, by_native.thread.ident, by_ident.thread.ident],
                  'alive': [v.thread.is_alive() for v in (numbered, by_native, by_ident)]}))
""")
    for (kind, count, message), named in zip(outcome["results"], outcome["idents"][1:]):
        assert kind == "AmbiguousTarget" and count == 2, message
        assert str(outcome["idents"][0]) in message and str(named) in message, message
        assert "native id" in message, message        # an id that names the first alone
    assert outcome["alive"] == [True, True, True]


def test_a_numeric_name_alone_or_of_the_numbered_thread_is_no_ambiguity():
    outcome = run_json("""
import json, threading, time
import ipy_threadkill as tk
from tests.victims import Victim
bystander = Victim(lambda p: time.sleep(3600), name='bystander').start()
digits = Victim(lambda p: time.sleep(3600), name='424242424242').start()
own = Victim(lambda p: time.sleep(3600), name='own-id').start()
own.thread.name = str(own.thread.native_id)      # its name is its own native id
reports = [tk.kill(v.thread.name) for v in (digits, own)]
print(json.dumps({'died': [r.died for r in reports],
                  'alive': [v.thread.is_alive() for v in (bystander, digits, own)]}))
""")
    assert outcome == {"died": [True, True], "alive": [True, False, False]}
