"""Which threading locks a thread waits for or holds, as far as its frames tell.

A Lock does not know its owner, and an RLock says its owner only in its repr():
what is found here is a heuristic, said as such where a user reads it.
"""
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
