"""What every thread in this process is doing, in words a user understands.

threads() lists them (ThreadInfo records); stack() shows one thread's frames.
Three sources, read once per snapshot: Python's frames (sys._current_frames),
threading's Thread objects, and Linux's view of each OS thread (/proc: its
system call, its start time; its CPU clock). Threads end while a snapshot is
being taken: a thread that vanishes mid-scan is reported finished, never an error.
"""
import linecache
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

from . import _blocking, _call_sites, _frames, _hooks, _kernel, _native_stack, _origin, _proc, \
    engine
from ._identity import ThreadIdentity, native_id_of, resolve
from ._text import one_line
from .errors import NoSuchThread
from .report import Rung

# Record who starts threads from the moment the package is imported (see _origin).
_hooks.install()

_LINUX = sys.platform.startswith("linux")
_KIND_ORDER = {"threading": 0, "bare": 1, "foreign": 2}
# An OS thread outlives its Python part: after its thread state is gone (join()
# has returned) glibc still runs its key destructors and frees its stack. A tid
# seen running Python less than this long ago is such a thread finishing, not a
# C library's thread; one still there after it is shown as foreign.
_EXIT_GRACE = 1.0


@dataclass(frozen=True)
class ThreadInfo:
    """One thread, as a snapshot saw it. `kill(info)` acts on this very thread:
    it is refused if the thread ended and its ident went to another one."""

    identity: ThreadIdentity        # (ident, native id, start time): pinned
    ident: Optional[int]            # None for a thread no Python code knows
    native_id: Optional[int]
    name: str
    daemon: Optional[bool]          # None unless a threading.Thread
    alive: bool
    age: Optional[float]            # seconds since the OS thread started
    kind: str                       # 'threading' | 'bare' | 'foreign'
    state: str                      # 'sleeping (3590 s left)', 'waiting on an Event', ...
    state_kind: str                 # _blocking.Blocking.kind, or 'gil' for a starved thread
    cpu_seconds: Optional[float]
    cpu_percent: Optional[float]    # of one core since the previous snapshot
    where: str                      # 'feeds.py:88 in poll', innermost user frame
    started_by: Optional[str]       # 'In[12]' or 'feeds.py:10'
    started_by_cell: Optional[int]
    kernel_reason: Optional[str]    # why the kernel needs it (main thread included)
    killable: bool
    kill_plan: str                  # what kill() would do, or why it cannot
    expected_rung: Optional[str]    # the Rung value kill() expects to end it with


# A thread waiting for the GIL that got less than this share of a core since the
# previous snapshot is starved, not merely taking turns with other Python threads.
_STARVED_PERCENT = 1.0


class Snapshotter:
    """Takes snapshots; keeps each thread's previous CPU sample for CPU %.

    The module's threads() uses one; a live view that refreshes on its own
    should own another, so that two viewers do not halve each other's window."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen = {}            # (ident, native id) -> _Seen, from the previous snapshot
        self._identities = {}      # (ident, native id) -> ThreadIdentity (read once)
        self._masks = {}           # (native id, signal) -> blocked? (read once)
        self._python_tids = set()  # native ids that ran Python at the previous snapshot
        self._python_when = None   # when that snapshot was taken
        self._leaving = {}         # native id -> when last seen running Python, for tids
                                   # that left Python less than _EXIT_GRACE ago
        self._sites = _call_sites.CallSites()   # who made each blocked call (read once)

    def take(self, *, include_kernel=False):
        """A list of ThreadInfo, main thread first. The kernel's own threads are
        left out unless `include_kernel`; the main thread is always listed."""
        if not isinstance(include_kernel, bool):
            raise TypeError(f"include_kernel must be True or False, not {include_kernel!r}")
        with self._lock:
            return _Scan(self).run(include_kernel)


class _Seen:
    """What the previous snapshot learnt about one thread: its CPU sample, the
    Blocking found when it was last analysed, and the ThreadInfo made of them."""

    __slots__ = ("cpu", "when", "frame_id", "lasti", "blocking", "where", "static",
                 "info", "pending")

    def __init__(self, cpu, when, frame_id, lasti, blocking, where, static):
        self.cpu, self.when, self.frame_id, self.lasti = cpu, when, frame_id, lasti
        self.blocking, self.where, self.static = blocking, where, static
        self.info, self.pending = None, False

    def unchanged(self, cpu, frame):
        """Whether the thread cannot have moved since: it used no CPU at all (its
        clock counts nanoseconds, and leaving a system call costs some) and sits
        at the same instruction of the same frame. Then /proc need not be read."""
        return cpu is not None and cpu == self.cpu and self.blocking.kind != "finished" \
            and (frame is None or (id(frame) == self.frame_id and frame.f_lasti == self.lasti))


class _Scan:
    """One snapshot: everything read once, then one ThreadInfo per thread."""

    def __init__(self, owner):
        self.owner = owner
        # Shared by _blocking across the scan; signal masks across scans, as a
        # thread sets its mask once (C libraries at start) and /proc's status
        # costs more than all the rest of a thread's snapshot.
        self.cache = {"masks": owner._masks}
        self.cells = _origin.CellNames()
        self.signum = _interrupt_signal()
        self.seen = {}                       # this snapshot's _Seen, for the next one
        self.pending = engine.pending_kills()   # idents with a kill pending

    def run(self, include_kernel):
        frames = _frames.every_thread()
        by_ident = {t.ident: t for t in threading.enumerate() if t.ident is not None}
        boot = _seconds_since_boot()

        rows = []                            # (ident, thread, identity, frame)
        for ident, frame in frames.items():
            thread = by_ident.get(ident)
            rows.append((ident, thread, self._identity(ident, native_id_of(ident, thread)),
                         frame))
        known = {row[2].native_id for row in rows}
        looks = [self._look(identity, frame, frames, self.signum)
                 for _, _, identity, frame in rows]
        # Judged once every system call has been read: then one read of the
        # memory map serves every caller looked up (see SharedMaps).
        maps = _native_stack.SharedMaps()
        for seen, _, fresh in looks:
            if fresh:
                seen.blocking = _call_sites.judge(seen.blocking, self.owner._sites, maps=maps)
        infos = [self._python_info(*row, seen, percent, boot)
                 for row, (seen, percent, _) in zip(rows, looks)]
        tasks = _proc.task_ids() or ()
        finishing = self._finishing(known, tasks)
        infos += [self._foreign_info(tid, boot)
                  for tid in tasks if tid not in known and tid not in finishing]
        infos = [i for i in infos if i is not None]
        self._forget_the_gone(infos)
        main = threading.main_thread().ident
        infos.sort(key=lambda i: (i.ident != main, _KIND_ORDER[i.kind], -(i.age or 0.0)))
        if include_kernel:
            return infos
        return [i for i in infos if i.kernel_reason is None or i.ident == main]

    def _finishing(self, known, tasks):
        """Tids that ran Python within _EXIT_GRACE and no longer do: threads
        past their Python part, on their way out. Remembers `known` for the next scan."""
        owner, now = self.owner, time.monotonic()
        # A tid the previous scan knew was last seen running Python at that scan.
        leaving = dict.fromkeys(owner._python_tids - known, owner._python_when)
        leaving.update(owner._leaving)
        alive = set(tasks)
        owner._leaving = {tid: when for tid, when in leaving.items()
                          if tid in alive and tid not in known and now - when < _EXIT_GRACE}
        owner._python_tids, owner._python_when = known, now
        return owner._leaving

    def _forget_the_gone(self, infos):
        """Keeps this scan's _Seen for the next one, and drops what was read once
        for threads that are gone (set differences: most scans lose none)."""
        owner = self.owner
        owner._seen = self.seen
        for key in owner._identities.keys() - self.seen.keys():
            del owner._identities[key]
        tids = {i.native_id for i in infos}
        for key in [key for key in owner._masks if key[0] not in tids]:
            del owner._masks[key]

    def _identity(self, ident, native):
        """The ThreadIdentity resolve() computes, its start time read only once:
        /proc's stat is the costliest read of a snapshot."""
        key = (ident, native)
        identity = self.owner._identities.get(key)
        if identity is None:
            identity = ThreadIdentity(ident, native,
                                      _proc.start_ticks(native) if native else None)
            if identity.started is not None:
                self.owner._identities[key] = identity
        return identity

    def _look(self, identity, frame, frames, signum):
        """(_Seen, cpu %, whether analysed afresh) of a thread; what did not
        change since the previous snapshot is not looked at again."""
        cpu = _cpu_seconds(identity)
        # CPU % over this thread's own window: a scan can take long (a thread
        # seen for the first time is analysed while a busy one holds the GIL),
        # and the scan's start time would count that wait in every window.
        now = time.monotonic()
        key = (identity.ident, identity.native_id)
        before = self.owner._seen.get(key)
        percent = None
        if cpu is not None and before is not None and before.cpu is not None \
                and now > before.when:
            percent = max(0.0, 100.0 * (cpu - before.cpu) / (now - before.when))
        if before is not None and before.unchanged(cpu, frame):
            before.when = now
            self.seen[key] = before
            return before, percent, False
        blocking = _blocking.analyze(identity.ident, identity.native_id, frame, frames,
                                     signum, cache=self.cache)
        seen = self.seen[key] = _Seen(cpu, now, id(frame), getattr(frame, "f_lasti", None),
                                      blocking, self._where(frame),
                                      before.static if before is not None else None)
        return seen, percent, True

    def _python_info(self, ident, thread, identity, frame, seen, percent, boot):
        native = identity.native_id
        blocking, where, cpu, static = seen.blocking, seen.where, seen.cpu, seen.static
        if static is None:
            # What a thread is never changes: read once per thread.
            kind = "threading" if thread is not None and not _is_dummy(thread) else "bare"
            static = seen.static = (
                kind, _kernel.kernel_reason(ident, thread), self.cells.origin(ident, thread))
        kind, reason, origin = static
        pending = ident in self.pending
        alive = blocking.kind != "finished" and (thread is None or thread.is_alive())
        previous, named = seen.info, kind == "threading"
        if previous is not None and previous.alive == alive and seen.pending == pending \
                and not blocking.details.get("gil") \
                and (blocking.until is None or blocking.gentle):
            # Not moved since the previous snapshot, which made `previous` of the
            # same Blocking: only the clocks, and a name or daemon flag (which any
            # thread may set), can read differently.
            info = object.__new__(ThreadInfo)
            fields = info.__dict__
            fields.update(previous.__dict__)
            fields.update(identity=identity, age=_age(identity.started, boot), cpu_seconds=cpu,
                          cpu_percent=percent,
                          name=thread.name if named else previous.name,
                          daemon=thread.daemon if named else None)
            if blocking.until is not None:
                fields["state"] = _state(_blocking.description_now(blocking), pending)
            seen.info = info
            return info
        description = _blocking.description_now(blocking)
        state, state_kind = description, blocking.kind
        if blocking.details.get("gil") and percent is not None and percent < _STARVED_PERCENT:
            state, state_kind = "waiting for the GIL", "gil"
        plan, rung, killable = _plan(blocking, description, reason, alive)
        if pending:
            plan = ("a kill is pending: it ends when its C call returns (a new kill joins "
                    "it; cancel_kill() withdraws it)")
        seen.info, seen.pending = _info(
            identity=identity, ident=ident, native_id=native,
            name=thread.name if named else f"<bare thread {ident}>",
            daemon=thread.daemon if named else None,
            alive=alive, age=_age(identity.started, boot), kind=kind,
            state=_state(state, pending), state_kind=state_kind, cpu_seconds=cpu,
            cpu_percent=percent, where=where, started_by=origin.text if origin else None,
            started_by_cell=origin.cell if origin else None, kernel_reason=reason,
            killable=killable, kill_plan=plan, expected_rung=rung), pending
        return seen.info

    def _foreign_info(self, tid, boot):
        comm = _proc.read(f"{_proc.TASKS}/{tid}/comm")
        if comm is None:
            return None                       # ended since the task list was read
        identity = self._identity(None, tid)
        seen, percent, _ = self._look(identity, None, {}, None)
        blocking, cpu = seen.blocking, seen.cpu
        name = comm.decode(errors="replace").strip()
        reason = _kernel.foreign_reason(name)
        return _info(
            identity=identity, ident=None, native_id=tid, name=name, daemon=None,
            alive=blocking.kind != "finished", age=_age(identity.started, boot),
            kind="foreign", state=_blocking.description_now(blocking),
            state_kind=blocking.kind,
            cpu_seconds=cpu, cpu_percent=percent, where="", started_by=None,
            started_by_cell=None, kernel_reason=reason, killable=False,
            kill_plan="cannot kill: no Python code runs in it (a C library's thread)",
            expected_rung=None)

    def _where(self, frame):
        if frame is None:
            return ""
        user = _frames.user_frame(frame)
        return self.cells.location(user.f_code.co_filename, user.f_lineno,
                                   user.f_code.co_name)


def _info(**fields):
    """A ThreadInfo, equal to ThreadInfo(**fields). A frozen dataclass's __init__
    sets each field through object.__setattr__, which for these 19 fields costs
    as much as the rest of a thread's snapshot; this fills them in one call."""
    info = object.__new__(ThreadInfo)
    info.__dict__.update(fields)
    return info


def _state(state, pending):
    return f"kill pending · {state}" if pending else state


def _plan(blocking, description, reason, alive):
    """(kill plan, expected rung, killable) for a Python thread; `description`
    is blocking's as it reads now."""
    if not alive:
        return "nothing to do: it has finished", None, False
    if reason is not None:
        return f"refused: {reason}", None, False
    if not blocking.gentle:
        return f"gentle kill impossible: {description}", None, True
    rung = blocking.rung
    if blocking.kind == "condition":
        what = blocking.details.get("serves", "a Condition").split(" ", 1)[-1]
        plan = f"wake the {what} wait"
    elif blocking.kind == "child" and blocking.children:
        plan = "stop child " + ", ".join(str(pid) for pid in blocking.children)
    elif rung is Rung.SYSCALL:
        plan = f"interrupt {blocking.syscall_name}"
    else:
        plan = blocking.details.get("plan", "exception")
    return plan, rung, True


def _is_dummy(thread):
    # threading makes a _DummyThread for a bare thread that asks current_thread().
    return isinstance(thread, threading._DummyThread)


def _cpu_seconds(identity):
    """CPU time of a thread, from its CPU clock: cheaper than /proc's stat."""
    try:
        if _LINUX and identity.native_id:
            # Linux's clock id of thread `tid` (CPUCLOCK_SCHED | per-thread).
            return time.clock_gettime((~identity.native_id << 3) | 6)
        if identity.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(identity.ident))
    except (AttributeError, OSError, OverflowError):
        pass
    return None


def _seconds_since_boot():
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return None


def _age(started_ticks, boot):
    if started_ticks is None or boot is None:
        return None
    return max(0.0, boot - started_ticks / _proc.CLOCK_TICKS)


def _interrupt_signal():
    """The signal kill() interrupts system calls with; before the first kill, the
    one it will most likely choose (the first it tries)."""
    chosen = engine.interrupt_signal()
    if chosen is None and hasattr(signal, "SIGRTMIN"):
        return signal.SIGRTMIN + 2
    return chosen


_default = Snapshotter()


def threads(*, include_kernel=False):
    """What every thread in this process is doing: a list of ThreadInfo.

    The kernel's own threads (and this package's) are left out unless
    `include_kernel`; the main thread is always listed, flagged not killable.
    CPU % is measured since the previous call (None on the first). Raises
    TypeError for a non-bool `include_kernel`. States come from /proc on Linux;
    elsewhere a thread shows as running Python or waiting on a Condition."""
    return _default.take(include_kernel=include_kernel)


def stack(target):
    """One thread's full stack, outermost call first, as text.

    `target` is anything kill() accepts. Raises NoSuchThread (LookupError) if it
    names no live Python thread (a foreign thread has no Python stack)."""
    if isinstance(target, ThreadInfo) and target.ident is None:
        raise NoSuchThread(f"native thread {target.native_id} ('{target.name}') runs no "
                           "Python code: it has no Python stack")
    victim = resolve(target)
    frames = _frames.every_thread()
    frame = frames.get(victim.ident)
    if frame is None:
        raise NoSuchThread(f"thread {victim.describe()} has finished")
    cells = _origin.CellNames()
    blocking = _blocking.analyze(victim.ident, victim.native_id, frame, frames)
    lines = [f"Thread {victim.describe()}, native id {victim.native_id}: "
             f"{blocking.description}"]
    for f in reversed(list(_frames.frames_of(frame))):
        filename = f.f_code.co_filename
        number = cells.cell(filename)
        shown = f"In[{number}]" if number is not None else filename
        lines.append(f'  File "{shown}", line {f.f_lineno}, in {f.f_code.co_name}')
        source = linecache.getline(filename, f.f_lineno, f.f_globals).strip()
        if source:
            lines.append(f"    {source}")
    return "\n".join(map(one_line, lines)) + "\n"     # a name must not add a line
