"""Which thread a kill request means, pinned so that it cannot mean another.

Idents are recycled (3.9 to 3.12 hand a dead thread's ident to the next one at
once), so a thread is identified by (ident, native id, start time). A request
made earlier (a widget row, a magic in the history) is checked against the live
thread before anything is done to it.
"""
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

from . import _proc
from .errors import AmbiguousTarget, InvalidTarget, NoSuchThread


@dataclass(frozen=True)
class ThreadIdentity:
    """A thread, unambiguously: recycled idents get a new native id or start time."""

    ident: int
    native_id: Optional[int]
    started: Optional[int]      # clock ticks since boot (Linux), else None


def native_id_of(ident, thread=None):
    """The OS thread id of live thread `ident`, or None where it cannot be known."""
    native = getattr(thread, "native_id", None)
    if native is not None:
        return native
    try:
        # glibc encodes the tid in a thread's CPU clock id (Linux CPUCLOCK ABI):
        # clockid = (~tid << 3) | 6. Works for bare _thread threads too.
        clock = time.pthread_getcpuclockid(ident)
    except (AttributeError, OSError, OverflowError):
        return None
    return ~(clock >> 3)


def identity_of(ident, thread=None):
    """The ThreadIdentity of the live thread `ident`."""
    native = native_id_of(ident, thread)
    return ThreadIdentity(ident, native, _proc.start_ticks(native) if native else None)


@dataclass
class Victim:
    """A live thread a request resolved to: its identity, name and Thread object."""

    identity: ThreadIdentity
    name: str
    thread: Optional[threading.Thread]

    @property
    def ident(self):
        return self.identity.ident

    @property
    def native_id(self):
        return self.identity.native_id

    def describe(self):
        return describe(self)

    def has_thread_state(self):
        """Whether the victim still has its Python thread state. Its ident alone
        is not enough: a new thread may have taken it over."""
        if self.ident not in sys._current_frames():
            return False
        return self.native_id is None or native_id_of(self.ident) == self.native_id

    def os_thread_alive(self):
        """Whether the OS thread still runs (falls back on Python's view off Linux)."""
        if self.native_id is not None:
            alive = _proc.alive(self.native_id)
            if alive is not None:
                return alive
        return self.has_thread_state()

    def gone(self):
        """Done in every sense: the OS thread, its thread state and threading's view."""
        if self.thread is not None and self.thread.is_alive():
            return False
        if self.has_thread_state():
            return False
        return not self.os_thread_alive()


def describe(thread):
    """`thread` (anything with .name, .ident, .native_id) as messages name it."""
    ident = thread.ident if thread.ident is not None else f"native {thread.native_id}"
    return f"'{thread.name}' (ident {ident})"


def _threads_by_ident():
    return {t.ident: t for t in threading.enumerate() if t.ident is not None}


def _victim(ident, by_ident):
    thread = by_ident.get(ident)
    name = thread.name if thread is not None else f"<bare thread {ident}>"
    return Victim(identity_of(ident, thread), name, thread)


@dataclass(frozen=True)
class _Bare:
    """A live thread that has no Thread object, as a request may name it."""

    ident: int
    native_id: Optional[int]

    @property
    def name(self):
        return f"<bare thread {self.ident}>"


def live_idents():
    """Idents of every thread that runs Python code now."""
    return set(sys._current_frames())


def resolve(target):
    """The Victim `target` names: a Thread, ThreadInfo/ThreadIdentity, ident,
    native id, or unique name. Raises NoSuchThread, AmbiguousTarget, InvalidTarget."""
    idents = live_idents()
    by_ident = _threads_by_ident()

    if isinstance(target, threading.Thread):
        if target.ident is None or target.ident not in idents or not target.is_alive():
            raise NoSuchThread(f"thread '{target.name}' is not running "
                               "(never started or already finished)")
        return _victim(target.ident, by_ident)

    pinned = getattr(target, "identity", target)
    if isinstance(pinned, ThreadIdentity):
        if pinned.ident is None:
            raise NoSuchThread(f"native thread {pinned.native_id} runs no Python code (a C "
                               "library's thread); it cannot be killed safely")
        if pinned.ident not in idents:
            raise NoSuchThread(f"thread {pinned.ident} has finished; refresh the list")
        victim = _victim(pinned.ident, by_ident)
        if victim.identity != pinned:
            raise NoSuchThread(f"thread {pinned.ident} has finished and its ident now "
                               f"belongs to {victim.describe()}; refresh the list")
        return victim

    if isinstance(target, bool) or not isinstance(target, (int, str)):
        raise InvalidTarget("target must be a Thread, an ident, a native id or a "
                            f"thread name, not {type(target).__name__}")

    live = [t for t in by_ident.values() if t.is_alive() or t.ident in idents]
    live += [_Bare(i, native_id_of(i)) for i in idents if i not in by_ident]
    if isinstance(target, str):
        return _victim(choose(target.strip(), live).ident, by_ident)
    found = _by_number(target, live)
    if found is None:
        raise _unknown_number(target)
    return _victim(found.ident, by_ident)


def choose(text, candidates):
    """The one of `candidates` (anything with .ident, .native_id and .name) that
    the typed `text` names: a number is an ident, else a native id; else it is a
    name, matched exactly, which must be unique. A number that is one thread's id
    and another's name is ambiguous. kill() and %killthread both choose here.

    Raises NoSuchThread or AmbiguousTarget (its `candidates` are those it matched)."""
    number = _parse_number(text)
    named = [c for c in candidates if c.name == text]
    found = None if number is None else _by_number(number, candidates)
    if found is None:
        if number is None or named:          # a name made of digits, nothing else
            return _by_name(text, named)
        raise _unknown_number(number)
    others = [c for c in named if (c.ident, c.native_id) != (found.ident, found.native_id)]
    if others:
        # Another id of each names it unambiguously (the number may be an ident).
        kind, other = (("ident", f"native id {found.native_id}")
                       if found.ident == number else
                       ("native id", f"ident {found.ident}"))
        listed = " and ".join(describe(c) for c in others)
        raise AmbiguousTarget(
            f"'{text}' is ambiguous: it is the {kind} of {describe(found)} "
            f"and the name of {listed}; give {other} for the first, or the ident "
            "of the other", candidates=[found, *others])
    return found


def _by_number(number, candidates):
    """The candidate whose ident, else native id, is `number`, or None."""
    for field in ("ident", "native_id"):
        for candidate in candidates:
            if getattr(candidate, field) == number:
                return candidate
    return None


def _unknown_number(number):
    if number in (_proc.task_ids() or ()):
        return NoSuchThread(f"native thread {number} runs no Python code (a C library's "
                            "thread); it cannot be killed safely")
    return NoSuchThread(f"no running thread has ident or native id {number}; "
                        "see %threads / ipy_threadkill.threads()")


def _parse_number(text):
    try:
        return int(text, 0)
    except ValueError:
        return None


def _by_name(name, matches):
    if not matches:
        raise NoSuchThread(f"no running thread is named '{name}'")
    if len(matches) > 1:
        listed = ", ".join(str(t.ident) for t in matches)
        raise AmbiguousTarget(f"{len(matches)} threads are named '{name}' (idents "
                              f"{listed}); name one by ident", candidates=matches)
    return matches[0]
