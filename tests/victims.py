"""Runs inside a child interpreter: start a victim in a given state, kill it,
and print what happened as JSON for the test to check; the pool and process
helpers those children share.

The victim's body runs inside `with lock:` and `try/finally`, so each check
that matters can be observed: cleanup ran, the lock was released, the thread
ended in every sense, it made no progress after the kill, and a bystander
thread kept running.
"""
import json
import os
import sys
import threading
import time

import ipy_threadkill
from ipy_threadkill import _blocking

DEADLINE = 10.0


def wait_until(predicate, timeout=DEADLINE, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.001)


class Victim:
    """A thread that runs `body(progress)` under a lock, recording its cleanup."""

    def __init__(self, body, name="victim", daemon=True):
        self.body = body
        self.lock = threading.Lock()
        self.progress = [0]
        self.entered = threading.Event()
        self.cleanup_ran = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=daemon)

    def _run(self):
        try:
            with self.lock:
                self.entered.set()
                self.body(self.progress)
        finally:
            self.cleanup_ran = True

    def start(self, settled=None):
        """Start, then wait until it is in its state: `settled()` true, or else
        its state is no longer plain 'running' (blocked) or it makes progress."""
        self.thread.start()
        wait_until(self.entered.is_set, what="victim to start")
        wait_until(settled or self._settled, what="victim to reach its state")
        return self

    def _settled(self):
        if self.progress[0] > 10:
            return True
        info = _blocking.analyze(self.thread.ident, self.thread.native_id)
        return info.kind not in ("running", "c-code")


def bystander():
    """A thread that keeps counting; returns (thread, counter, stop event)."""
    counter, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1
            time.sleep(0.0005)

    thread = threading.Thread(target=count, name="bystander", daemon=True)
    thread.start()
    return thread, counter, stop


def kill_and_check(victim, **kill_args):
    """Kill `victim`, check the interpreter afterwards, print the result as JSON."""
    other, counter, stop = bystander()
    tid = victim.thread.native_id
    try:
        report = ipy_threadkill.kill(victim.thread, **kill_args)
        outcome = {"died": report.died, "rung": str(report.rung), "line": str(report),
                   "elapsed": report.elapsed, "blocked_in": report.blocked_in,
                   "children": list(report.children_stopped)}
    except ipy_threadkill.ThreadKillError as exc:
        outcome = {"error": type(exc).__name__, "message": str(exc)}
    progress = victim.progress[0]
    victim.thread.join(5)
    before = counter[0]
    wait_until(lambda: counter[0] > before + 3, what="bystander to keep running")
    stop.set()
    other.join(5)
    outcome.update(
        alive=victim.thread.is_alive(),
        os_thread=os.path.exists(f"/proc/self/task/{tid}"),
        cleanup_ran=victim.cleanup_ran,
        lock_free=victim.lock.acquire(timeout=0) and (victim.lock.release() or True),
        progress_after=victim.progress[0] - progress,
        enumerated=victim.thread in threading.enumerate(),
        frames=victim.thread.ident in sys._current_frames(),
    )
    print(json.dumps(outcome))
    sys.stdout.flush()
    return outcome


def children():
    """Pids of this process's live (not zombie) child processes."""
    found = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                found += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return sorted(found)


# A pool's threads are not daemons: the interpreter waits for them at exit, so
# a child that fails while one of its tasks runs away would hang until the
# test's deadline instead of saying what failed.

def exit_on_failure():
    """Make an uncaught exception end the interpreter at once, after its traceback."""
    def exit_now(*exc_info, _print=sys.excepthook):
        _print(*exc_info)
        sys.stderr.flush()
        os._exit(1)
    sys.excepthook = exit_now


def wait_or_raise(predicate, what):
    """wait_until, failing with an exception that exit_on_failure sees:
    SystemExit does not go through sys.excepthook."""
    try:
        wait_until(predicate, what=what)
    except SystemExit as exc:
        raise AssertionError(*exc.args) from None


def started_pool(workers):
    """A ThreadPoolExecutor whose `workers` threads have all started, and their
    idents: so that "the pool keeps its threads" means these threads."""
    # Imported here: it installs an exit hook in threading, which children that
    # make no pool should not get.
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(workers)
    started = threading.Barrier(workers + 1)
    for _ in range(workers):
        pool.submit(started.wait, DEADLINE)
    started.wait(DEADLINE)
    return pool, sorted(t.ident for t in pool._threads)


# Process trees, read straight from /proc (not through the package under test).

def process_stat(pid):
    """(state letter, parent pid, start ticks) of process `pid`; None once gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1]), int(fields[19])


def command(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(pid):
    """{pid: start ticks} of the live processes descending from `pid`."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = process_stat(name)
            if stat is not None and stat[0] not in "ZX":
                stats[int(name)] = stat
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (_, ppid, start) in stats.items():
            if ppid == parent and child not in found:
                found[child] = start
                frontier.append(child)
    return found


def ended(pid, start):
    """Whether process `pid`, the one that started at `start`, has ended (a
    zombie has: only its parent's reaping is left)."""
    stat = process_stat(pid)
    return stat is None or stat[2] != start or stat[0] in "ZX"


def zombie_children():
    """Pids of this process's children that ended and were never reaped."""
    return [pid for pid in children() if (process_stat(pid) or ("gone",))[0] == "Z"]
