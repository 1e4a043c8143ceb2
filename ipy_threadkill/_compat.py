"""Every private API of another project that ipy_threadkill uses, and only here.

Private names change without notice. Each accessor below checks the shape it
relies on, in the versions that have it, and falls back to the safe answer when
the shape is not there: the feature it serves degrades, nothing else breaks. A
fallback taken where the API was expected (that project's version should have it)
is remembered with its consequence; `fallback_notes()` gives those lines, and a
kill report carries them, so a user learns why a view or a kill did less.

    ipykernel   comm._reply_subshell_for (7.x), OutStream.watch_fd_thread (6.x+),
                sys.stdout._thread_to_parent_header (6.x, gone in 7.0)
    IPython     shell.compile._filename_map (8.x, 9.x)
    CPython     threading._active / _active_limbo_lock (all), _ThreadHandle._set_done
                (3.13+), the owner in repr(RLock) (3.9+), an asyncio loop's
                _default_executor._threads (3.9+)
"""
import re
import sys
import threading

_notes = {}             # API -> what its fallback costs (first time only)


def _fell_back(api, consequence):
    _notes.setdefault(api, f"{api} is not as expected here: {consequence}")


def fallback_notes():
    """One line per private API that was expected but not found, in order seen."""
    return list(_notes.values())


def _major(module_name):
    module = sys.modules.get(module_name)
    version = getattr(module, "__version__", "")
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


# -- ipykernel ------------------------------------------------------------------------

def route_by_frontend(comm, route):
    """Make ipykernel 7 ask `route(data, default)` which subshell handles `comm`'s
    messages (see widget._concurrent). Returns whether it could."""
    if comm is None:
        return False
    if callable(getattr(comm, "_reply_subshell_for", None)):
        comm._reply_subshell_for = route
        return True
    if (_major("ipykernel") or 0) >= 7 and type(comm).__module__.startswith("ipykernel"):
        _fell_back("ipykernel's Comm._reply_subshell_for",
                   "a click on the live table waits until the running cell ends")
    return False


def output_capture_threads():
    """The threads ipykernel runs to capture the process's stdout/stderr file
    descriptors (OutStream.watch_fd_thread), for protection."""
    found = []
    for stream in (sys.stdout, sys.stderr):
        thread = getattr(stream, "watch_fd_thread", None)
        if isinstance(thread, threading.Thread):
            found.append(thread)
    return found


def kernel6_parent_headers():
    """ipykernel 6's {thread ident: header of the request that started it}, or {}."""
    headers = getattr(sys.stdout, "_thread_to_parent_header", None)
    if isinstance(headers, dict):
        return headers
    if _major("ipykernel") == 6 and type(sys.stdout).__module__.startswith("ipykernel"):
        _fell_back("ipykernel 6's OutStream._thread_to_parent_header",
                   "'started by' cannot name the cell of a thread started before loading")
    return {}


# -- IPython --------------------------------------------------------------------------

def cell_numbers(shell):
    """IPython's {compiled cell file name: execution count}, or {}."""
    if shell is None:
        return {}
    names = getattr(getattr(shell, "compile", None), "_filename_map", None)
    if isinstance(names, dict):
        return names
    _fell_back("IPython's CachingCompiler._filename_map",
               "'started by' and 'where' show cell file names instead of In[n]")
    return {}


# -- CPython's threading --------------------------------------------------------------

def forget_thread(ident):
    """Take `ident` off threading's table of running threads (enumerate(), the
    exit-time join). Returns whether it could."""
    active = getattr(threading, "_active", None)
    lock = getattr(threading, "_active_limbo_lock", None)
    if not isinstance(active, dict) or lock is None:
        _fell_back("threading._active", "threading.enumerate() still lists a "
                   "force-killed thread")
        return False
    with lock:
        active.pop(ident, None)
    return True


def running_thread(ident):
    """The Thread object threading keeps for `ident`, or None."""
    active = getattr(threading, "_active", None)
    return active.get(ident) if isinstance(active, dict) else None


# Where a Thread keeps its _ThreadHandle: 3.14 renamed _handle.
_HANDLE_ATTRIBUTE = "_os_thread_handle" if sys.version_info >= (3, 14) else "_handle"


def thread_handle(thread):
    """A 3.13+ Thread's _ThreadHandle (which interpreter exit joins), or None
    before 3.13, where the thread state's lock plays that part."""
    handle = getattr(thread, _HANDLE_ATTRIBUTE, None)
    if handle is None:
        return None
    if not (hasattr(handle, "_set_done") and hasattr(handle, "is_done")):
        if sys.version_info >= (3, 13):
            _fell_back("threading's _ThreadHandle._set_done",
                       "join() and interpreter exit may wait for a force-killed thread")
        return None
    return handle


_OWNER = re.compile(r"\bowner=(\d+)\b")


def rlock_owner(lock):
    """The ident owning an RLock (0 when free), or None when it cannot be told
    (a plain Lock, or a repr() without its owner)."""
    match = _OWNER.search(repr(lock))
    return int(match.group(1)) if match else None


def _check_rlock_repr():
    """repr(RLock) is the only way to learn its owner; check once, at import,
    that it still says so."""
    lock = threading.RLock()
    with lock:
        if rlock_owner(lock) != threading.get_ident():
            _fell_back("the owner in repr(threading.RLock())",
                       "a lock a killed thread held cannot be named")


_check_rlock_repr()


# -- CPython's asyncio and concurrent.futures -----------------------------------------

def default_executor_threads(loop):
    """The threads of an asyncio loop's default executor (a ThreadPoolExecutor
    in loop._default_executor, its threads in _threads: 3.9+), or () when that
    cannot be told; a loop that never used run_in_executor has none."""
    executor = getattr(loop, "_default_executor", _MISSING)
    if executor is None:
        return ()
    threads = getattr(executor, "_threads", _MISSING)
    if executor is _MISSING or not isinstance(threads, (set, frozenset, list)):
        _fell_back("asyncio's loop._default_executor._threads",
                   "an event loop's description cannot name the executor job it waits for")
        return ()
    return tuple(t for t in list(threads) if isinstance(t, threading.Thread))


_MISSING = object()
