"""The contract of the C core, ipy_threadkill._native, on this interpreter.

Which functions exist here (the policy modules ask hasattr(_native, ...), so a
guard in the C header that drifts shows up here first), what each one takes and
returns, and that a wrong argument is a TypeError, never a crash. Results come
back from the children as JSON, which keeps bool, int, str and None apart; the
assertions compare them with strict(), since 1 == True in Python.

Every call that raises into a thread, installs a signal handler or changes the
module's state runs in a fresh interpreter with a deadline; so do the wrong
arguments, so that a crash fails one test instead of the run.
"""
import json
import platform
import sys
import sysconfig
import threading

import pytest

from ipy_threadkill import _native
from tests import python_env, run_json, run_python

VERSION = sys.version_info[:2]
GIL_BUILD = not sysconfig.get_config_var("Py_GIL_DISABLED")
LINUX = sys.platform.startswith("linux")
# A signal frame the C core can check and rewrite: Linux on these two.
SIGNAL_FRAME = LINUX and platform.machine() in ("x86_64", "aarch64")
GLIBC = LINUX and platform.libc_ver()[0] == "glibc"
# Another thread's PyThreadState read directly: the GIL build of 3.9 to 3.15.
THREAD_STATE = GIL_BUILD and (3, 9) <= VERSION < (3, 16)
FORCE = SIGNAL_FRAME and GLIBC and THREAD_STATE and VERSION < (3, 15)
# The same two reads on 3.13t, made with every other thread stopped.
THREAD_QUERIES = THREAD_STATE or (not GIL_BUILD and VERSION == (3, 13))

# name: (whether it exists here, the first line of its docstring)
FUNCTIONS = {
    "raise_in_thread": (True, "raise_in_thread(ident, exc_type) -> int"),
    "set_rearm_policy": (True, "set_rearm_policy(policy)"),
    "rearm": (True, "rearm(exc_type)"),
    "line_raise": (THREAD_STATE and VERSION < (3, 11), "line_raise(ident, exc_type) -> None"),
    "call_shielded": (True, "call_shielded(func, shield, *args) -> func(*args)"),
    "raise_in_thread_within": (THREAD_QUERIES,
                               "raise_in_thread_within(ident, exc_type, frame) -> bool"),
    "raise_in_frame": (THREAD_QUERIES and not GIL_BUILD,
                       "raise_in_frame(ident, exc_type, frame) -> bool"),
    "exception_state": (THREAD_QUERIES, "exception_state(ident) -> (pending, handling)"),
    "interrupt_syscall": (SIGNAL_FRAME,
                          "interrupt_syscall(tid, nr, args, sp, pc, result, timeout) -> bool"),
    "claim_signal": (SIGNAL_FRAME, "claim_signal() -> int"),
    "interrupt_signal": (SIGNAL_FRAME, "interrupt_signal() -> int or None"),
    "release_signal": (SIGNAL_FRAME, "release_signal() -> bool"),
    "force_cancel": (FORCE, "force_cancel(ident, tid, nr, args, sp, pc, cancel_signal, "
                            "timeout) -> bool"),
    "force_signal": (FORCE, "force_signal() -> int"),
    "lock_semaphore": (FORCE and VERSION < (3, 13), "lock_semaphore(lock) -> int"),
    "forget_thread_handle": (FORCE and VERSION >= (3, 13),
                             "forget_thread_handle(handle, ident, unlink) -> bool"),
}
HERE = sorted(name for name, (here, _) in FUNCTIONS.items() if here)

# Calls each function must refuse with TypeError before it does anything (the
# text between the parentheses; evaluated in the child, where `threading` and
# `sys` are imported). Wrong counts are added from the docstring's signature.
WRONG_TYPES = {
    "raise_in_thread": ["'1', ValueError", "1.5, ValueError", "1, ValueError()", "1, 42",
                        "1, ValueError, 'native id'"],
    "set_rearm_policy": ["42", "'policy'"],
    "rearm": [],                    # a finalizer: takes anything, ignores what is no class
    "line_raise": ["'1', None", "1, ValueError()", "1, 42"],
    "call_shielded": ["len, 42", "len, ValueError()", "len, 'ValueError'", "len"],
    "raise_in_thread_within": ["'1', ValueError, sys._getframe()",
                               "1, ValueError(), sys._getframe()", "1, ValueError, 'frame'",
                               "1, ValueError, None"],
    "raise_in_frame": ["'1', ValueError, sys._getframe()",
                       "1, ValueError(), sys._getframe()", "1, ValueError, 'frame'",
                       "1, ValueError, None"],
    "exception_state": ["'1'", "1.5", "None"],
    "interrupt_syscall": ["'1', 0, (0,) * 6, 0, 0, 0, 1.0", "1, None, (0,) * 6, 0, 0, 0, 1.0",
                          "1, 0, (0,) * 5, 0, 0, 0, 1.0", "1, 0, 0, 0, 0, 0, 1.0",
                          "1, 0, ('0',) * 6, 0, 0, 0, 1.0", "1, 0, (0,) * 6, 0, 0, 0, '1'",
                          "1, 0, (0,) * 6, 0, 0, 0, None"],
    "claim_signal": [],
    "interrupt_signal": [],
    "release_signal": [],
    "force_cancel": ["'1', 1, 0, (0,) * 6, 0, 0, False, 1.0",
                     "1, '1', 0, (0,) * 6, 0, 0, False, 1.0",
                     "1, 1, 0, (0,) * 5, 0, 0, False, 1.0",
                     "1, 1, 0, (0,) * 6, None, 0, False, 1.0",
                     "1, 1, 0, (0,) * 6, 0, 0, False, '1'"],
    "force_signal": [],
    "lock_semaphore": ["'lock'", "None", "threading.Condition()", "threading.Event()"],
    "forget_thread_handle": ["'handle', 1, False", "None, 1, False", "threading.Lock(), 1, False",
                             "_compat.thread_handle(threading.main_thread()), '1', False"],
}

# What every child below starts with: the module, and the system call a thread
# is blocked in, as the policy layer reads it from /proc.
PRELUDE = '''
import json, os, signal, sys, threading, time
from ipy_threadkill import _compat, _native, _proc

def wait_for(predicate, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for " + what)
        time.sleep(0.001)

def blocked_in(tid, name):
    """(nr, args, sp, pc) if thread `tid` is blocked in system call `name`."""
    sc = _proc.syscall(tid)
    if sc is None or sc.nr != _native.SYSCALLS[name]:
        return None
    return sc.nr, sc.args, sc.sp, sc.pc

class Raised(Exception):
    pass

progress, caught = [0], []
def spin(first=None):
    """A victim: count until Raised arrives, after calling `first` if given."""
    try:
        if first is not None:
            first()
        while True:
            progress[0] += 1
    except Raised:
        caught.append(True)

out = {}
'''

END = '''
print(json.dumps(out), flush=True)
'''


def child(body, **env):
    return run_json(PRELUDE + body + END, timeout=30) if not env else _child_env(body, env)


def _child_env(body, env):
    proc = run_python(PRELUDE + body + END, timeout=30, env=python_env(**env))
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stderr == "", f"unexpected stderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def strict(value):
    """`value` with the type of each scalar in it made part of it."""
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, list):
        return [strict(item) for item in value]
    return type(value).__name__, value


def needs(name):
    return pytest.mark.skipif(not FUNCTIONS[name][0], reason=f"no {name} on this interpreter")


# --- Which functions exist, and how they are called ---------------------------

def test_exactly_the_functions_this_interpreter_and_platform_have():
    public = {name for name in dir(_native) if not name.startswith("_")}
    constants = {"SYSCALLS"} if SIGNAL_FRAME else set()
    assert public == set(HERE) | constants


def test_module_docstring():
    assert _native.__doc__ == "Kill primitives: asynchronous exceptions, system-call interruption."


@pytest.mark.parametrize("name", HERE)
def test_docstring_states_the_signature(name):
    function = getattr(_native, name)
    assert callable(function) and function.__module__ == "ipy_threadkill._native"
    first, *rest = function.__doc__.splitlines()
    assert first == FUNCTIONS[name][1]
    assert rest and all(rest), "a summary follows the signature"


def _arity(name):
    inside = FUNCTIONS[name][1].split("(", 1)[1].split(")", 1)[0]
    return len([p for p in inside.split(",") if p.strip()])


@pytest.mark.parametrize("name", HERE)
def test_wrong_arguments_are_type_errors(name):
    arity = _arity(name)
    calls = list(WRONG_TYPES[name])
    calls.append(", ".join(["0"] * (arity + 2)))            # too many (one optional at most)
    if arity:
        calls.append(", ".join(["0"] * (arity - 1)))        # too few
    calls.append("x=1")                                     # positional only
    result = child(f'''
import threading
function = _native.{name}
for call in {calls!r}:
    try:
        eval("function(" + call + ")")
        out[call] = "returned"
    except Exception as exc:
        out[call] = type(exc).__name__
''')
    assert result == {call: "TypeError" for call in calls}


# --- Asynchronous exceptions -------------------------------------------------

def test_call_shielded_calls_again_with_every_exception_that_landed():
    class Landed(BaseException):
        pass

    calls = []

    def func(a, b, landed=()):
        calls.append(landed)
        if len(calls) < 3:
            raise Landed(len(calls))
        return a + b

    assert _native.call_shielded(func, Landed, 1, 2) == 3
    assert [[exc.args for exc in landed] for landed in calls] == [[], [(1,)], [(1,), (2,)]]
    assert all(exc.__traceback__ is not None for exc in calls[2])

    def always(landed=()):
        raise Landed()

    with pytest.raises(Landed):                 # it gives up: the exception goes on
        _native.call_shielded(always, Landed)

    def other(landed=()):
        raise KeyError("passes")

    with pytest.raises(KeyError):
        _native.call_shielded(other, Landed)


def test_raise_in_thread_returns_the_number_of_thread_states_changed():
    result = child('''
sys.setswitchinterval(1000)         # the victim runs only when this thread waits
inside, release, caught = threading.Event(), threading.Event(), []
def run():
    try:
        inside.set()
        release.wait(10)
    except Raised:
        caught.append(True)
t = threading.Thread(target=run, daemon=True)
t.start()
inside.wait(10)
out["cleared"] = _native.raise_in_thread(t.ident, None)
out["other_os_thread"] = _native.raise_in_thread(t.ident, Raised, t.native_id + 1)
out["queued"] = _native.raise_in_thread(t.ident, Raised, t.native_id)
release.set()
t.join(10)
out["caught"], out["alive"] = caught, t.is_alive()
out["gone"] = _native.raise_in_thread(t.ident, Raised)
''')
    # Where the C core cannot read the thread's OS id, the check is left to Python.
    assert strict(result) == strict({"cleared": 1, "other_os_thread": 0 if THREAD_STATE else 1,
                                     "queued": 1, "caught": [True], "alive": False, "gone": 0})


def test_set_rearm_policy_and_rearm_return_none():
    result = child('''
seen = []
sys.unraisablehook = lambda unraisable: seen.append(type(unraisable.exc_value).__name__)
out["no_policy"] = repr(_native.rearm(Raised))
out["set"] = repr(_native.set_rearm_policy(lambda exc_type: False))
out["declined"] = repr(_native.rearm(Raised))
out["not_a_class"] = repr(_native.rearm("not an exception class"))
for _ in range(1000):               # a re-queued exception would fire here
    pass
def failing(exc_type):
    raise RuntimeError("policy failed")
_native.set_rearm_policy(failing)
out["policy_failed"] = repr(_native.rearm(Raised))
out["unraisable"] = seen
out["cleared"] = repr(_native.set_rearm_policy(None))

_native.set_rearm_policy(lambda exc_type: True)
# As the finalizer of a swallowed one would: in the victim, which it re-arms.
t = threading.Thread(target=spin, args=(lambda: _native.rearm(Raised),), daemon=True)
t.start()
t.join(10)
out["requeued"], out["alive"] = caught, t.is_alive()
''')
    assert strict(result) == strict({"no_policy": "None", "set": "None", "declined": "None",
                                     "not_a_class": "None", "policy_failed": "None",
                                     "unraisable": ["RuntimeError"], "cleared": "None",
                                     "requeued": [True], "alive": False})


@needs("exception_state")
def test_exception_state_returns_pending_and_the_handled_exception():
    result = child('''
sys.setswitchinterval(1000)
inside, release = threading.Event(), threading.Event()
def run():
    try:
        raise KeyError("being handled")
    except KeyError:
        inside.set()
        release.wait(10)
t = threading.Thread(target=run, daemon=True)
t.start()
inside.wait(10)
def state(ident):
    result = _native.exception_state(ident)
    pending, handling = result
    return [type(result).__name__, len(result), pending, repr(handling)]
out["handling"] = state(t.ident)
_native.raise_in_thread(t.ident, Raised)
out["queued"] = state(t.ident)
_native.raise_in_thread(t.ident, None)
out["withdrawn"] = state(t.ident)
release.set()
t.join(10)
out["own"] = state(threading.get_ident())
try:
    _native.exception_state(t.ident)
except ValueError as exc:
    out["gone"] = str(exc)
''')
    handled = "KeyError('being handled')"
    assert strict(result) == strict({"handling": ["tuple", 2, False, handled],
                                     "queued": ["tuple", 2, True, handled],
                                     "withdrawn": ["tuple", 2, False, handled],
                                     "own": ["tuple", 2, False, "None"],
                                     "gone": result["gone"]})
    assert result["gone"].startswith("no thread state with ident")


# A thread inside task(), called from run(), which catches Raised: its frames are
# in `frames`, it waits for `release`.
IN_A_TASK = '''
inside, release, frames, caught = threading.Event(), threading.Event(), {}, []
def task():
    frames["task"] = sys._getframe()
    inside.set()
    release.wait(10)
def run():
    frames["run"] = sys._getframe()
    try:
        task()
    except Raised:
        caught.append(True)
t = threading.Thread(target=run, daemon=True)
t.start()
inside.wait(10)
'''


@needs("raise_in_thread_within")
def test_raise_in_thread_within_returns_whether_it_queued():
    result = child(IN_A_TASK + '''
out["frame_elsewhere"] = _native.raise_in_thread_within(t.ident, Raised, sys._getframe())
out["frame_on_its_stack"] = _native.raise_in_thread_within(t.ident, Raised, frames["task"])
release.set()
t.join(10)
out["caught"], out["alive"] = caught, t.is_alive()
out["gone"] = _native.raise_in_thread_within(t.ident, Raised, frames["task"])
''')
    assert strict(result) == strict({"frame_elsewhere": False, "frame_on_its_stack": True,
                                     "caught": [True], "alive": False, "gone": False})


@needs("raise_in_frame")
def test_raise_in_frame_only_while_it_is_the_innermost():
    result = child(IN_A_TASK + '''
wait_for(lambda: _proc.syscall(t.native_id), "the thread to block in its wait")
out["caller"] = _native.raise_in_frame(t.ident, Raised, frames["run"])
out["wait"] = _native.raise_in_frame(t.ident, Raised, sys._current_frames()[t.ident])
release.set()
t.join(10)
out["caught"], out["alive"] = caught, t.is_alive()
out["gone"] = _native.raise_in_frame(t.ident, Raised, frames["task"])
''')
    assert strict(result) == strict({"caller": False, "wait": True, "caught": [True],
                                     "alive": False, "gone": False})


@needs("line_raise")
def test_line_raise_returns_none_and_raises_at_the_next_line():
    result = child('''
try:
    _native.line_raise(threading.get_ident(), Raised)
except ValueError as exc:
    out["no_policy"] = str(exc)
_native.set_rearm_policy(lambda exc_type: not caught)
t = threading.Thread(target=spin, daemon=True)
t.start()
wait_for(lambda: progress[0] > 100, "the victim to spin")
out["started"] = repr(_native.line_raise(t.ident, Raised))
t.join(10)
out["caught"], out["alive"] = caught, t.is_alive()
out["not_ours"] = repr(_native.line_raise(threading.get_ident(), None))
try:
    _native.line_raise(t.ident, None)
except ValueError as exc:
    out["gone"] = str(exc)
''')
    assert result["no_policy"] == "set_rearm_policy() first"
    assert result["started"] == "None" and result["not_ours"] == "None"
    assert result["caught"] == [True] and not result["alive"]
    assert result["gone"].startswith("no thread state with ident")


# --- The system-call interrupt and its signal --------------------------------

@needs("interrupt_syscall")
def test_interrupt_signal_claim_interrupt_release():
    result = child('''
out["before"] = _native.interrupt_signal()
signum = _native.claim_signal()
out["in_range"] = type(signum) is int and signal.SIGRTMIN <= signum <= signal.SIGRTMAX
out["claimed_again"] = _native.claim_signal() == signum
in_use = _native.interrupt_signal()
out["in_use"] = type(in_use) is int and in_use == signum
r, w = os.pipe()
got = []
t = threading.Thread(target=lambda: got.append(os.read(r, 1)), daemon=True)
t.start()
nr, args, sp, pc = wait_for(lambda: blocked_in(t.native_id, "read"), "the read")
out["other_call"] = _native.interrupt_syscall(t.native_id, nr, args[:5] + (args[5] ^ 1,),
                                              sp, pc, 0, 0.05)
out["still_reading"] = t.is_alive() and not got
call = wait_for(lambda: blocked_in(t.native_id, "read"), "the read again")
out["interrupted"] = _native.interrupt_syscall(t.native_id, *call, 0, 5.0)
t.join(10)
out["read"] = repr(got)
out["thread_gone"] = _native.interrupt_syscall(t.native_id, *call, 0, 0.05)
out["released"] = _native.release_signal()
out["after"] = _native.interrupt_signal()
out["released_again"] = _native.release_signal()
''')
    assert strict(result) == strict({"before": None, "in_range": True, "claimed_again": True,
                                     "in_use": True, "other_call": False, "still_reading": True,
                                     "interrupted": True, "read": "[b'']", "thread_gone": False,
                                     "released": True, "after": None, "released_again": False})


@needs("interrupt_syscall")
def test_interrupt_never_touches_a_lock_wait_at_the_same_site():
    # glibc 2.41+ issues every cancellable call, futex included, from one shared
    # instruction: pc cannot tell a read from a Lock wait there, the argument
    # registers and sp must. A futex given an error makes glibc abort.
    result = child('''
r, w = os.pipe()
held = threading.Lock(); held.acquire()
got = []
def run():
    got.append(os.read(r, 1))
    got.append(held.acquire())
t = threading.Thread(target=run, daemon=True)
t.start()
read = wait_for(lambda: blocked_in(t.native_id, "read"), "the read")
os.write(w, b"x")
def lock_wait():                    # untimed: the Lock, not the GIL
    call = blocked_in(t.native_id, "futex")
    return call if call is not None and call[1][3] == 0 else None
lock = wait_for(lock_wait, "the Lock wait")
out["same_pc"] = lock[3] == read[3]
out["stale_read"] = _native.interrupt_syscall(t.native_id, *read, 0, 0.2)
out["still_waiting"] = lock_wait() == lock
held.release()
t.join(10)
out["got"], out["alive"] = repr(got), t.is_alive()
''')
    shared = GLIBC and tuple(int(p) for p in platform.libc_ver()[1].split(".")[:2]) >= (2, 41)
    assert strict(result) == strict({"same_pc": shared, "stale_read": False,
                                     "still_waiting": True, "got": "[b'x', True]",
                                     "alive": False})


@pytest.mark.skipif(not SIGNAL_FRAME, reason="no system-call table on this platform")
def test_syscall_table():
    table = _native.SYSCALLS
    required = {"read", "readv", "pread64", "write", "writev", "pwrite64", "recvfrom",
                "recvmsg", "sendto", "sendmsg", "accept", "accept4", "connect",
                "clock_nanosleep", "pselect6", "ppoll", "epoll_pwait", "wait4", "waitid",
                "futex", "rt_sigtimedwait", "rt_sigsuspend", "openat", "flock", "fcntl",
                "ioctl", "msgrcv", "semtimedop", "mq_timedreceive"}
    optional = {"open", "nanosleep", "select", "poll", "epoll_wait", "epoll_pwait2", "pause",
                "futex_waitv"}                        # where the architecture has them
    assert type(table) is dict
    assert required <= set(table) <= required | optional
    assert all(type(name) is str for name in table)
    assert all(type(nr) is int and nr >= 0 for nr in table.values())
    assert len(set(table.values())) == len(table)
    if platform.machine() == "x86_64":
        x86_64 = {"read": 0, "readv": 19, "pread64": 17, "write": 1, "writev": 20,
                  "pwrite64": 18, "recvfrom": 45, "recvmsg": 47, "sendto": 44, "sendmsg": 46,
                  "accept": 43, "accept4": 288, "connect": 42, "clock_nanosleep": 230,
                  "pselect6": 270, "ppoll": 271, "epoll_pwait": 281, "wait4": 61,
                  "waitid": 247, "futex": 202, "rt_sigtimedwait": 128, "rt_sigsuspend": 130,
                  "openat": 257, "flock": 73, "fcntl": 72, "ioctl": 16, "msgrcv": 70,
                  "semtimedop": 220, "mq_timedreceive": 243, "nanosleep": 35, "select": 23,
                  "poll": 7, "epoll_wait": 232, "epoll_pwait2": 441, "pause": 34,
                  "futex_waitv": 449, "open": 2}
        assert table == {name: x86_64[name] for name in table}
        assert {"open", "nanosleep", "select", "poll", "epoll_wait", "pause"} <= set(table)
    else:
        assert not {"open", "select", "poll", "epoll_wait", "pause"} & set(table)


# --- The forced cancel -------------------------------------------------------

@needs("force_cancel")
def test_force_signal_and_force_cancel():
    # No stacks of dead threads kept for reuse: a read of the cancelled thread's
    # stack would crash at once.
    result = child('''
signum = _native.force_signal()
out["in_range"] = type(signum) is int and signal.SIGRTMIN <= signum <= signal.SIGRTMAX
out["same_again"] = _native.force_signal() == signum
out["not_the_interrupt_signal"] = _native.claim_signal() != signum
r, w = os.pipe()
t = threading.Thread(target=os.read, args=(r, 1), daemon=True)
t.start()
nr, args, sp, pc = wait_for(lambda: blocked_in(t.native_id, "read"), "the read")
refused = {}
for what, ident, tid, timeout in (("own thread", threading.get_ident(), t.native_id, 1.0),
                                  ("tid", t.ident, 0, 1.0), ("timeout", t.ident, t.native_id, 0)):
    try:
        _native.force_cancel(ident, tid, nr, args, sp, pc, False, timeout)
    except ValueError as exc:
        refused[what] = True
out["refused"] = refused
out["other_call"] = _native.force_cancel(t.ident, t.native_id, nr, args[:5] + (args[5] ^ 1,),
                                         sp, pc, False, 5.0)
out["still_reading"] = os.path.exists(f"/proc/self/task/{t.native_id}")
call = wait_for(lambda: blocked_in(t.native_id, "read"), "the read again")
out["ended"] = _native.force_cancel(t.ident, t.native_id, *call, False, 5.0)
out["os_thread_gone"] = not os.path.exists(f"/proc/self/task/{t.native_id}")
try:
    _native.force_cancel(t.ident, t.native_id, *call, False, 1.0)
except ValueError as exc:
    out["no_thread_state"] = str(exc)
print(json.dumps(out), flush=True)
os._exit(0)         # its Thread object still believes it runs: no shutdown join
''', GLIBC_TUNABLES="glibc.pthread.stack_cache_size=0")
    assert strict(result) == strict({"in_range": True, "same_again": True,
                                     "not_the_interrupt_signal": True,
                                     "refused": {"own thread": True, "tid": True, "timeout": True},
                                     "other_call": False, "still_reading": True, "ended": True,
                                     "os_thread_gone": True,
                                     "no_thread_state": result["no_thread_state"]})
    assert result["no_thread_state"].startswith("no other thread state with ident")


@needs("lock_semaphore")
def test_lock_semaphore_returns_an_address():
    lock, rlock = threading.Lock(), threading.RLock()
    addresses = [_native.lock_semaphore(lock), _native.lock_semaphore(rlock)]
    assert all(type(a) is int and a > 0 for a in addresses)
    assert addresses[0] != addresses[1]
    assert _native.lock_semaphore(lock) == addresses[0]


@needs("forget_thread_handle")
def test_forget_thread_handle_says_whether_exit_would_join():
    result = child('''
release, handle = threading.Event(), _compat.thread_handle
joined = threading.Thread(target=release.wait, args=(10,))
daemon = threading.Thread(target=release.wait, args=(10,), daemon=True)
joined.start(); daemon.start()
out["non_daemon"] = _native.forget_thread_handle(handle(joined), joined.ident, False)
out["daemon"] = _native.forget_thread_handle(handle(daemon), daemon.ident, False)
try:
    _native.forget_thread_handle(handle(joined), joined.ident + 1, False)
except ValueError as exc:
    out["other_ident"] = str(exc)
release.set()
joined.join(10); daemon.join(10)
out["after_join"] = _native.forget_thread_handle(handle(joined), joined.ident, False)
''')
    assert strict(result) == strict({"non_daemon": True, "daemon": False,
                                     "other_ident": "unexpected _ThreadHandle layout",
                                     "after_join": False})
