"""Which threading locks a thread waits for or holds, as far as its frames tell.

A Lock does not know its owner, and an RLock says its owner only in its repr():
what is found here is a heuristic, said as such where a user reads it.
"""
import dis
import threading

from . import _compat, _frames

LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


def locked(lock):
    if hasattr(lock, "locked"):
        return lock.locked()
    return _compat.rlock_owner(lock) != 0          # RLock has no locked() before 3.14


def locked_in(frame):
    """Locked Lock/RLock objects the frame refers to."""
    seen = []
    for value in _frames.values(frame):
        if isinstance(value, LOCK_TYPES) and locked(value) \
                and all(value is not s for s in seen):
            seen.append(value)
    return seen


def locks_in(stack):
    """Every Lock/RLock the frames refer to, also as a bound method (lock.acquire
    given as a callback or a Thread target)."""
    seen = []
    for frame in stack:
        for value in _frames.values(frame, all_of_self=True):
            value = getattr(value, "__self__", value)
            if isinstance(value, LOCK_TYPES) and all(value is not s for s in seen):
                seen.append(value)
    return seen


def held_by(ident, stack, waiting_for):
    """Words for the locks thread `ident` (probably) holds: RLocks it owns, and
    locked Locks its frames refer to (a plain Lock does not know its owner).
    threading's own frames and Thread._tstate_lock are left out."""
    found, seen = [], [waiting_for]
    for frame in stack:
        if frame.f_code.co_filename == threading.__file__:
            continue
        for name, value in _frames.named_values(frame, all_of_self=True):
            if not isinstance(value, LOCK_TYPES) or any(value is s for s in seen):
                continue
            seen.append(value)
            if name.endswith("_tstate_lock"):
                continue
            text = _words(value, ident, name, frame.f_code.co_name)
            if text:
                found.append(text)
    return found


_WITH_OPS = {dis.opmap[name] for name in ("SETUP_WITH", "BEFORE_WITH", "LOAD_SPECIAL")
             if name in dis.opmap}


_releasing = {}          # code -> _releases(code), a bounded cache


def _releases(code):
    """Whether `code` releases what it locks: it calls `.release` or has a `with`."""
    known = _releasing.get(code)
    if known is None:
        known = "release" in code.co_names or any(
            ins.opcode in _WITH_OPS for ins in dis.get_instructions(code))
        if len(_releasing) > 512:
            _releasing.clear()
        _releasing[code] = known
    return known


def held(ident, stack):
    """[(lock, words)] of the locks thread `ident` holds as far as its frames
    `stack` tell, for checking after it died that its cleanup let them go:
    RLocks it owns, and locked Locks named by code that releases them itself
    (a Lock it holds as a signal for another thread to wait on is no cleanup's
    business). threading's own frames and Thread._tstate_lock are left out."""
    found = []
    for frame in stack:
        code = frame.f_code
        if code.co_filename == threading.__file__:
            continue
        for name, value in _frames.named_values(frame):
            if not isinstance(value, LOCK_TYPES) or any(value is lock for lock, _ in found) \
                    or name.endswith("_tstate_lock"):
                continue
            if "RLock" in type(value).__name__:
                if _compat.rlock_owner(value) == ident:
                    found.append((value, f"RLock '{name}' of {code.co_name}()"))
            elif locked(value) and _releases(code):
                found.append((value, f"Lock '{name}' of {code.co_name}()"))
    return found


def still_held(locks, ident):
    """Words for those of `locks` (from held()) that thread `ident`, now dead,
    left held: an RLock it still owns; a Lock still locked that no other
    thread's frames name (one that does may have taken it since)."""
    stayed, others = [], None
    for lock, words in locks:
        if "RLock" in type(lock).__name__:
            if _compat.rlock_owner(lock) == ident:
                stayed.append(words)
            continue
        if not locked(lock):
            continue
        if others is None:
            others = [value for frame in _frames.other_threads().values()
                      for f in _frames.frames_of(frame) for value in _frames.values(f)]
        if all(value is not lock for value in others):
            stayed.append(words)
    return stayed


def _words(lock, ident, name, function):
    label = f"'{name}'"
    if "RLock" in type(lock).__name__:
        return f"RLock {label} in {function}()" if _compat.rlock_owner(lock) == ident else None
    if not locked(lock):
        return None
    return f"Lock {label} in {function}() (locked, probably by it)"


def holder(lock, waiter_ident, all_frames, waiting):
    """Name of the thread holding `lock`, or None if it cannot be told.

    An RLock knows its owner. A plain Lock does not: the holder is taken to be
    the one other thread whose frames refer to it without waiting for it
    (`waiting(frame)` says whether a thread's innermost frame is waiting)."""
    owner = _compat.rlock_owner(lock)
    if owner is not None:
        return thread_name(owner) if owner else None
    me = threading.get_ident()
    candidates = []
    for ident, frame in all_frames.items():
        if ident in (waiter_ident, me):
            continue
        if not any(value is lock for f in _frames.frames_of(frame)
                   for value in _frames.values(f)):
            continue
        if waiting(frame):
            continue                         # another waiter
        candidates.append(ident)
    return thread_name(candidates[0]) if len(candidates) == 1 else None


def thread_name(ident):
    thread = _compat.running_thread(ident)
    return thread.name if thread is not None else f"<bare thread {ident}>"
