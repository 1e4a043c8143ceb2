"""kill(force=True): the forced cancel (issue 4), on every CPython 3.9-3.14.

Each case runs in a fresh interpreter with a deadline; the child prints one
JSON document and must exit 0. `force(thread)` runs the forced rung alone (as
kill(force=True) reaches it once the gentle ladder gives up), so that states a
gentle rung would end (sleep, recv) exercise it too; kill(force=True) is used
where no gentle rung can reach the thread (a Lock held elsewhere, every signal
blocked).
"""
import json
import os
import sys

import pytest

from ipy_threadkill import _native
from tests import python_env, run_python
from tests.core import native_libs

PY313 = sys.version_info >= (3, 13)

PRELUDE = r'''
import ctypes, faulthandler, gc, io, json, os, signal, socket, sys, tempfile, threading, time
from ipy_threadkill import _force, _native, _proc, kill, ForceRefused, KillTimeout
from ipy_threadkill._identity import resolve
from ipy_threadkill.engine import Ladder
from ipy_threadkill.errors import ThreadKilled

NAMES = {nr: name for name, nr in _native.SYSCALLS.items()}
finally_ran = []


def blocked_in(thread, *names, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sc = _proc.syscall(thread.native_id)
        # An untimed futex: a Lock (not the GIL, whose wait is timed).
        if sc is not None and NAMES.get(sc.nr) in names \
                and (NAMES[sc.nr] != "futex" or sc.args[3] == 0):
            return
        time.sleep(0.001)
    raise AssertionError(f"{thread.name} never blocked in {names}")


def force(thread):
    """The forced rung alone, on a thread the gentle ladder has not touched."""
    return Ladder(resolve(thread), ThreadKilled).cancel(time.monotonic())


def block_all_signals():
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def start(target, daemon=True):
    def run():
        try:
            target()
        finally:
            finally_ran.append(threading.current_thread().name)
    thread = threading.Thread(target=run, daemon=daemon)
    thread.start()
    return thread


def gone(thread):
    joined = threading.Thread(target=thread.join)
    joined.start()
    joined.join(10)
    return {"alive": thread.is_alive(), "joined": not joined.is_alive(),
            "frames": thread.ident in sys._current_frames(),
            "listed": thread in threading.enumerate(),
            "count": threading.active_count(), "os_alive": _proc.alive(thread.native_id)}


def summary(report):
    return {"rung": str(report.rung), "died": report.died, "cleanup": report.cleanup_ran,
            "notes": list(report.notes), "held": list(report.held_locks), "text": str(report)}


def done(**result):
    result["finally_ran"] = finally_ran
    print(json.dumps(result))
'''

GONE = {"alive": False, "joined": True, "frames": False, "listed": False, "count": 1,
        "os_alive": False}


def run_case(body, timeout=60, **env_extra):
    """Run a case; glibc keeps no stacks of dead threads for reuse, so anything
    that still read a cancelled thread's stack would crash the child at once."""
    env = python_env(GLIBC_TUNABLES="glibc.pthread.stack_cache_size=0", **env_extra)
    proc = run_python(PRELUDE + body, timeout=timeout, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stderr == "", f"unexpected stderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_forced(result, how=None):
    assert result["report"]["rung"] == "forced cancel", result
    if how is not None:
        assert f"ended by {how}" in result["report"]["text"], result
    assert result["report"]["died"] and not result["report"]["cleanup"]
    assert "did NOT run" in result["report"]["text"]
    assert result["gone"] == GONE, result
    assert result["victim_cleanup"] is False


@pytest.fixture(autouse=True)
def forced_cancel_here(request):
    if not sys.platform.startswith("linux"):
        pytest.skip("these cases read /proc (Linux)")
    if not hasattr(_native, "force_cancel") and "platform_support" not in request.node.name:
        pytest.skip("no forced cancel here (glibc, x86_64/aarch64, CPython 3.9-3.14)")


@pytest.mark.parametrize("masked", [False, True], ids=["signals open", "all signals blocked"])
def test_lock_held_elsewhere(masked):
    result = run_case(f'''
masked = {masked}
held = threading.Lock(); held.acquire()
def waiter():
    if masked:
        block_all_signals()
    with held:
        pass
t = start(waiter)
blocked_in(t, "futex")
try:
    report = kill(t, force=True, timeout=1.0)
except ForceRefused as exc:
    refused = str(exc)
    alive = t.is_alive()
    held.release(); t.join(10)
    done(refused=refused, alive_when_refused=alive, joined=not t.is_alive())
else:
    # The lock stays consistent: still ours, and usable by the next waiter.
    state, still_ours, cleanup = gone(t), held.locked(), t.name in finally_ran
    other = start(waiter); blocked_in(other, "futex")
    held.release(); other.join(10)
    done(report=summary(report), gone=state, victim_cleanup=cleanup, still_ours=still_ours,
         next_waiter_got_it=not other.is_alive())
''')
    if PY313:
        assert "parking lot" in result["refused"]
        assert result["alive_when_refused"] and result["joined"]
        return
    assert_forced(result, "a checked cancellation signal" if masked else "a checked signal")
    assert result["still_ours"] and result["next_waiter_got_it"]
    assert "waiting for a Lock" in result["report"]["text"]


@pytest.mark.parametrize("how", ["kill, all signals blocked", "forced rung alone"])
def test_sleep(how):
    result = run_case(f'''
how = {how!r}
def sleeper():
    if how.startswith("kill"):
        block_all_signals()
    time.sleep(3600)
t = start(sleeper, daemon=False)
blocked_in(t, "clock_nanosleep", "nanosleep", "pselect6", "select")
joiner = threading.Thread(target=t.join)            # already waiting when it dies
joiner.start()
report = kill(t, force=True, timeout=1.0) if how.startswith("kill") else force(t)
joiner.join(10)
done(report=summary(report), gone=gone(t), victim_cleanup=t.name in finally_ran,
     joiner_returned=not joiner.is_alive())
''')
    assert_forced(result, "a checked cancellation signal" if how.startswith("kill") else "a checked signal")
    assert result["joiner_returned"]


@pytest.mark.parametrize("how", ["kill, all signals blocked", "forced rung alone"])
def test_recv(how):
    result = run_case(f'''
how = {how!r}
a, b = socket.socketpair()
def reader():
    if how.startswith("kill"):
        block_all_signals()
    a.recv(10)
t = start(reader)
blocked_in(t, "recvfrom", "recvmsg", "read")
report = kill(t, force=True, timeout=1.0) if how.startswith("kill") else force(t)
b.sendall(b"still works"); a.settimeout(5)
done(report=summary(report), gone=gone(t), victim_cleanup=t.name in finally_ran,
     after=a.recv(20).decode())
''')
    assert_forced(result, "a checked cancellation signal" if how.startswith("kill") else "a checked signal")
    assert result["after"] == "still works"


def test_event_wait():
    result = run_case('''
ev = threading.Event()
t = start(ev.wait)
blocked_in(t, "futex")
gentle = kill(t, force=True, timeout=1.0)     # a wake-up ends it: no force needed
t2 = start(ev.wait)
blocked_in(t2, "futex")
try:
    forced = summary(force(t2))
    state = gone(t2)
except ForceRefused as exc:
    forced, state = str(exc), None
t3 = start(lambda: ev.wait(10))
ev.set(); t3.join(10)
done(gentle=summary(gentle), forced=forced, gone=state, set_works=not t3.is_alive())
''')
    assert result["gentle"]["rung"] == "wake-up" and result["gentle"]["cleanup"]
    assert result["set_works"]
    if PY313:
        assert "parking lot" in result["forced"]
    else:
        assert result["forced"]["rung"] == "forced cancel"
        assert result["gone"]["alive"] is False and result["gone"]["frames"] is False


@pytest.mark.parametrize("call", ["read", "pause"])
def test_foreign_call_with_every_signal_blocked(call):
    result = run_case(f'''
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
def foreign():
    full = ctypes.create_string_buffer(b"\\xff" * 128)      # a full sigset_t
    libc.pthread_sigmask(0, full, None)                   # SIG_BLOCK, through libc
    if {call!r} == "read":
        libc.read(r, ctypes.create_string_buffer(1), 1)   # GIL released by ctypes
    else:
        libc.pause()
t = start(foreign)
blocked_in(t, {call!r}, "ppoll", "rt_sigsuspend")
report = kill(t, force=True, timeout=1.0)
done(report=summary(report), gone=gone(t), victim_cleanup=t.name in finally_ran)
''')
    assert_forced(result, "a checked cancellation signal")


def test_the_killer_keeps_its_own_thread_state():
    # 3.12+ bind a thread state to its thread's GIL-state slot, which is
    # thread-local: deleting the victim's state from the killer once cleared the
    # killer's slot, and the debug allocator (or -X dev) then aborted the process
    # at its next allocation "without holding the GIL".
    result = run_case('''
import ctypes
ctypes.pythonapi.PyGILState_Check.restype = ctypes.c_int
def masked_sleeper(): block_all_signals(); time.sleep(3600)
t = start(masked_sleeper)
blocked_in(t, "clock_nanosleep", "pselect6")
rung = str(force(t).rung)
held = ctypes.pythonapi.PyGILState_Check()
calls = []
compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(
    lambda a, b: calls.append(1) or 0)
numbers = (ctypes.c_int * 2)(2, 1)
ctypes.CDLL(None).qsort(numbers, 2, ctypes.sizeof(ctypes.c_int), compare)
done(rung=rung, held=held, callback=bool(calls))
''', PYTHONMALLOC="debug")
    assert result["rung"] == "forced cancel", result
    assert result["held"] == 1 and result["callback"], result


def test_hundred_forced_kills_then_a_healthy_interpreter():
    result = run_case('''
hold = threading.Lock(); hold.acquire()
a, b = socket.socketpair()
def sleeper(): time.sleep(3600)
def masked_sleeper(): block_all_signals(); time.sleep(3600)
def reader(): a.recv(1)
def waiter():
    with hold:
        pass
SLEEPS = ("clock_nanosleep", "pselect6")
kinds = [(sleeper, SLEEPS), (masked_sleeper, SLEEPS), (reader, ("recvfrom",))]
if sys.version_info < (3, 13):
    kinds.append((waiter, ("futex",)))
rungs = set()
start_time = time.monotonic()
for i in range(100):
    target, names = kinds[i % len(kinds)]
    t = start(target, daemon=bool(i % 2))
    blocked_in(t, *names)
    rungs.add(str(force(t).rung))
    assert not t.is_alive() and t.name not in finally_ran
elapsed = time.monotonic() - start_time
frames = sys._current_frames()
with tempfile.TemporaryFile("w+") as dump:
    faulthandler.dump_traceback(dump, all_threads=True)
    dump.seek(0)
    dumped = dump.read().count("Thread 0x")
gc.collect()
results = []
workers = [threading.Thread(target=results.append, args=(i,)) for i in range(50)]
for w in workers: w.start()
for w in workers: w.join(10)
done(rungs=sorted(rungs), frames=len(frames), dumped=dumped, workers=len(results),
     count=threading.active_count(), seconds=elapsed)
''', timeout=120)
    assert result["rungs"] == ["forced cancel"]
    assert result["frames"] == 1 and result["dumped"] == 0      # only the main thread
    assert result["workers"] == 50 and result["count"] == 1


def test_non_daemon_victim_does_not_hang_exit():
    result = run_case('''
def masked(): block_all_signals(); time.sleep(3600)
victims = [start(masked, daemon=False), start(lambda: time.sleep(3600), daemon=False)]
for v in victims:
    blocked_in(v, "clock_nanosleep", "pselect6")
reports = [summary(kill(victims[0], force=True, timeout=1.0)), summary(force(victims[1]))]
done(rungs=[r["rung"] for r in reports])
# the interpreter now exits normally: threading._shutdown must not wait for them
''', timeout=30)
    assert result["rungs"] == ["forced cancel", "forced cancel"]


def test_fork_after_forced_kills():
    result = run_case('''
for i in range(5):
    t = start(lambda: time.sleep(3600))
    blocked_in(t, "clock_nanosleep", "pselect6")
    force(t)
pid = os.fork()
if pid == 0:
    try:
        out = []
        w = threading.Thread(target=out.append, args=(1,)); w.start(); w.join(5)
        gc.collect()
        ok = out == [1] and len(sys._current_frames()) == 1 and threading.active_count() == 1
        faulthandler.dump_traceback(open(os.devnull, "w"), all_threads=True)
    except BaseException:
        ok = False
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
done(child_status=status)
''')
    assert result["child_status"] == 0


def test_refused_while_running_python():
    result = run_case('''
stop = []
def spin():
    while not stop:
        pass
t = start(spin)
time.sleep(0.05)
refusals = []
for _ in range(20):                          # running, or waiting for the GIL
    try:
        force(t)
    except ForceRefused as exc:
        refusals.append(str(exc))
stop.append(1); t.join(10)
done(refusals=len(refusals), sample=refusals[0], alive=t.is_alive())
''')
    assert result["refusals"] == 20 and not result["alive"]
    assert "refusing a forced kill" in result["sample"]


def test_refused_reading_a_buffered_file():
    result = run_case('''
r, w = os.pipe()
stream = os.fdopen(r, "rb")
t = start(lambda: stream.read(1))
blocked_in(t, "read")
try:
    force(t)
    refused = ""
except ForceRefused as exc:
    refused = str(exc)
os.write(w, b"x"); t.join(10)
done(refused=refused, alive=t.is_alive())
''')
    assert "buffered file" in result["refused"] and not result["alive"]


def test_refused_without_platform_support():
    result = run_case('''
if hasattr(_native, "force_cancel"):
    del _native.force_cancel
t = start(lambda: time.sleep(3600))
blocked_in(t, "clock_nanosleep", "pselect6")
try:
    kill(t, force=True)
    refused = ""
except ForceRefused as exc:
    refused = str(exc)
done(refused=refused, available=_force.available(), alive=t.is_alive())
''')
    assert "not available" in result["refused"]
    assert result["available"] is False and result["alive"] is True


def test_thread_that_keeps_waking_up_is_never_left_half_cancelled():
    # A cancel must land inside the blocked call or not at all: one that stayed
    # pending would fire at the thread's next wait, e.g. for the GIL, and hang
    # the process. Threads that wake every millisecond are killed or refused.
    result = run_case('''
def napper(masked):
    if masked:
        block_all_signals()
    while True:
        time.sleep(0.001)
outcomes = {}
for masked in (False, True):
    t = start(lambda: napper(masked))
    for attempt in range(10):
        try:
            force(t)
            outcomes[str(masked)] = "killed"
            break
        except ForceRefused as exc:
            outcomes[str(masked)] = "refused: " + str(exc)
    assert not (outcomes[str(masked)] == "killed" and t.is_alive())
workers = [threading.Thread(target=time.sleep, args=(0.01,)) for _ in range(10)]
for w in workers: w.start()
for w in workers: w.join(10)
done(outcomes=outcomes, healthy=not any(w.is_alive() for w in workers))
''')
    assert result["healthy"]
    for outcome in result["outcomes"].values():
        assert outcome == "killed" or outcome.startswith("refused: refusing a forced kill")


def test_frames_kept_from_before_the_kill_stay_readable():
    # Frame objects of the victim taken before the kill (a traceback, a debugger,
    # gc.get_objects()) must not lead into its freed C stack: on 3.12/3.13 a
    # frame called from C links to an entry frame that lived there.
    result = run_case('''
def inner():
    time.sleep(3600)
def via_c():
    list(map(lambda _: inner(), [1]))        # Python -> C (map) -> Python
t = start(via_c)
blocked_in(t, "clock_nanosleep", "pselect6")
kept = []
f = sys._current_frames()[t.ident]
while f is not None:
    kept.append(f)
    f = f.f_back
force(t)
workers = [threading.Thread(target=lambda: None) for _ in range(5)]   # reuse its stack
for w in workers: w.start()
for w in workers: w.join(10)
names = []
for f in kept:
    back = f.f_back
    names.append((f.f_code.co_name, f.f_lineno, back.f_code.co_name if back else None))
    f.f_locals
gc.collect()
done(names=names)
''')
    names = [name for name, _, _ in result["names"]]
    assert names[:3] == ["inner", "<lambda>", "via_c"], names


def test_report_names_the_locks_it_held():
    result = run_case('''
mine, reentrant = threading.Lock(), threading.RLock()
def holder():
    with reentrant:
        with mine:
            time.sleep(3600)
t = start(holder)
blocked_in(t, "clock_nanosleep", "pselect6")
report = summary(force(t))
done(report=report, still_held=mine.locked(), reentrant_free=reentrant.acquire(timeout=0.01))
''')
    held = " ".join(result["report"]["held"])
    assert "Lock 'mine' in holder()" in held and "RLock 'reentrant' in holder()" in held
    assert "locks that stay held" in result["report"]["text"]
    assert result["still_held"] and not result["reentrant_free"]


def test_refusal_is_known_before_trying():
    result = run_case('''
held = threading.Lock(); held.acquire()
def waiter():
    with held:
        pass
stop = []
def spin():
    while not stop:
        pass
locked, spinning, sleeping = start(waiter), start(spin), start(lambda: time.sleep(3600))
blocked_in(locked, "futex")
blocked_in(sleeping, "clock_nanosleep", "pselect6")
why = {name: _force.refusal(resolve(t)) for name, t in
       (("locked", locked), ("sleeping", sleeping), ("spinning", spinning))}
stop.append(1); held.release()
done(why=why)
''')
    why = result["why"]
    assert why["sleeping"] is None
    assert why["spinning"].startswith("it is not blocked in a system call") or \
        "futex" in why["spinning"] or "parking lot" in why["spinning"]
    if PY313:
        assert "parking lot" in why["locked"]
    else:
        assert why["locked"] is None


@pytest.fixture(scope="module")
def native_victims(tmp_path_factory):
    """A C++ library whose frames a forced unwind would abort in, and a plain C one."""
    where = tmp_path_factory.mktemp("native")
    return {kind: native_libs.build(kind, where)
            for kind in ("cxx", "c", "c_locking", "race_shim")}


@pytest.mark.parametrize("function,masked", [
    ("tk_noexcept_read", True),       # noexcept + RAII, every signal blocked
    ("tk_catch_all_read", True),      # catch (...) around the read
    ("tk_retry_read", False),         # retries on EOF: the interrupt rung cannot end it
])
def test_cxx_frames_are_refused_up_front(native_victims, function, masked):
    # Unwinding through these frames aborts the process (exit 134: "terminate
    # called without an active exception", "FATAL: exception not rethrown").
    # The refusal must be known before trying, so the timeout never advises force.
    lib = native_victims["cxx"]
    result = run_case(f"""
lib = ctypes.CDLL({lib!r})
r, w = os.pipe()
t = start(lambda: getattr(lib, {function!r})(r, {int(masked)}))
blocked_in(t, "read")
try:
    kill(t, timeout=0.5)
    timeout = None
except KillTimeout as exc:
    timeout = {{"text": str(exc), "force_refused": getattr(exc, "force_refused", "missing")}}
try:
    kill(t, force=True, timeout=0.5)
    refused = None
except ForceRefused as exc:
    refused = str(exc)
alive = t.is_alive()
os.write(w, b"x"); t.join(10)
done(timeout=timeout, refused=refused, alive=alive, ended=not t.is_alive())
""")
    name = os.path.basename(lib)
    text = result["timeout"]["text"]
    assert "force=True" not in text and "--force" not in text, text
    assert name in text and "could abort the process" in text, text
    assert name in result["timeout"]["force_refused"]
    assert result["refused"] and name in result["refused"], result
    assert "could abort the process" in result["refused"]
    assert result["alive"] and result["ended"]


@pytest.mark.parametrize("how", ["kill, all signals blocked", "forced rung alone"])
def test_plain_c_library_is_still_force_killable(native_victims, how):
    lib = native_victims["c"]
    result = run_case(f"""
how = {how!r}
lib = ctypes.CDLL({lib!r})
r, w = os.pipe()
t = start(lambda: lib.tk_c_read(r, int(how.startswith("kill"))))
blocked_in(t, "read")
if how.startswith("kill"):
    try:
        kill(t, timeout=0.5)
        advice = None
    except KillTimeout as exc:
        advice = {{"text": str(exc), "force_refused": exc.force_refused}}
    report = kill(t, force=True, timeout=1.0)
else:
    advice, report = None, force(t)
done(report=summary(report), gone=gone(t), victim_cleanup=t.name in finally_ran,
     advice=advice)
""")
    assert_forced(result, "a checked cancellation signal" if how.startswith("kill") else "a checked signal")
    if how.startswith("kill"):
        assert "force=True" in result["advice"]["text"]
        assert result["advice"]["force_refused"] is None


def test_a_c_library_holding_its_own_lock_is_refused(native_victims):
    # A forced unwind would leave the library's mutex held: its next call would
    # wait for ever. Refused up front, naming the library; the thread lives on.
    lib = native_victims["c_locking"]
    result = run_case(f"""
lib = ctypes.CDLL({lib!r})
r, w = os.pipe()
t = start(lambda: lib.tk_locked_read(r, 1))
blocked_in(t, "read")
try:
    kill(t, timeout=0.5)
    timeout = None
except KillTimeout as exc:
    timeout = {{"text": str(exc), "force_refused": exc.force_refused}}
try:
    kill(t, force=True, timeout=0.5)
    refused = None
except ForceRefused as exc:
    refused = str(exc)
alive = t.is_alive()
os.write(w, b"x"); t.join(10)
done(timeout=timeout, refused=refused, alive=alive, ended=not t.is_alive(),
     lock_free=bool(lib.tk_try_lock()))
""")
    name = os.path.basename(lib)
    text = result["timeout"]["text"]
    assert "force=True" not in text and "--force" not in text, text
    assert name in result["timeout"]["force_refused"], result
    assert result["refused"] and name in result["refused"], result
    assert "takes locks of its own" in result["refused"], result
    assert "the thread ends when that call returns" in result["refused"], result
    assert result["alive"] and result["ended"] and result["lock_free"], result


def test_sqlite_busy_wait_is_not_force_cancelled(tmp_path):
    # SQLite's busy handler sleeps inside libsqlite3 while it holds the
    # connection's mutex; cancelling it there deadlocks the next use of that
    # connection. The forced kill is refused; the wait ends with its timeout.
    database = str(tmp_path / "busy.db")
    result = run_case(f"""
import sqlite3
holder = sqlite3.connect({database!r}, check_same_thread=False)
holder.execute("create table t (x)")
holder.commit()
holder.execute("begin exclusive")
errors = []
def writer():
    connection = sqlite3.connect({database!r}, timeout=3)
    try:
        connection.execute("insert into t values (1)")
    except sqlite3.OperationalError as exc:
        errors.append(str(exc))
t = start(writer)
blocked_in(t, "clock_nanosleep", "nanosleep")
try:
    kill(t, force=True, timeout=0.3)
    refused = None
except (ForceRefused, KillTimeout) as exc:
    refused = str(exc)
t.join(30)
holder.rollback()
done(refused=refused, ended=not t.is_alive(), errors=errors)
""")
    if result["refused"] is None:
        pytest.fail(f"the busy wait was force-cancelled: {result}")
    assert "libsqlite3" in result["refused"] and "locks of its own" in result["refused"], result
    assert result["ended"] and result["errors"] == ["database is locked"], result


@pytest.mark.parametrize("masked", [True, False], ids=["all signals blocked", "signals open"])
def test_call_completing_at_the_kill_leaves_nothing_pending(native_victims, masked):
    # The race of issue 12 (F5): the blocked call completes right when the kill
    # strikes. A preloaded shim completes the victim's read() just before the
    # kill's signal (or a pthread_cancel) is sent, every time. pthread_cancel
    # then stayed pending and fired in the GIL's wait: 2 of 3 children hung
    # (3.11). Now the handler sees the call gone and declines: the kill is
    # refused, and the thread keeps running through cancellation points.
    shim, lib = native_victims["race_shim"], native_victims["c"]
    for run in range(5):
        result = run_case(f"""
shim, lib = ctypes.CDLL({shim!r}), ctypes.CDLL({lib!r})
r, w = os.pipe()
stop, loops = [], [0]
def victim():
    while not stop:
        lib.tk_c_read(r, {int(masked)})
        loops[0] += 1
t = start(victim)
blocked_in(t, "read")
shim.race_shim_arm(t.native_id, w)
try:
    outcome = "killed: " + str(force(t))
except ForceRefused as exc:
    outcome = "refused: " + str(exc)
shim.race_shim_arm(0, -1)
before = loops[0]
for _ in range(5):                         # five more reads, cancellation points all
    os.write(w, b"x")
deadline = time.monotonic() + 10
while t.is_alive() and loops[0] < before + 5 and time.monotonic() < deadline:
    time.sleep(0.001)
more = loops[0] - before
stop.append(1); os.write(w, b"x"); t.join(10)
done(outcome=outcome, completed=shim.race_shim_completed(), more=more,
     ended_normally=not t.is_alive() and t.name in finally_ran)
""", timeout=30, LD_PRELOAD=" ".join(filter(None, [os.environ.get("LD_PRELOAD"), shim])))
        assert result["completed"] >= 1, result            # the race was staged
        assert result["outcome"].startswith("refused: "), result
        assert result["more"] >= 5 and result["ended_normally"], result


def test_timeouts_out_of_range_are_rejected_before_conversion():
    # F9: timeout * 1e6 converted to long was undefined for NaN and huge values.
    request = (0, 1, 0, (0,) * 6, 0, 0, False)     # ident 0: no thread state
    for timeout in (float("nan"), float("inf"), -1.0, 0.0, 1e300, 1e6 + 1):
        with pytest.raises(ValueError, match="timeout"):
            _native.force_cancel(*request, timeout)
    with pytest.raises(ValueError, match="no other thread state"):
        _native.force_cancel(*request, 1e6)                # the largest accepted


