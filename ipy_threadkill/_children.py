"""The child processes a thread drives: found, stopped, and reaped when nobody can.

A thread waiting on a child is ended by stopping the child; a thread that dies
leaves its children unsupervised, so they are stopped too. Children are known
from the thread's frames (Popen objects) and from Linux (what it forked).
"""
import gc
import os
import signal
import subprocess
import time

from . import _frames, _proc

GRACE = 0.5         # seconds between SIGTERM and SIGKILL


def popens_in(frames):
    """Child processes (Popen objects) the thread is waiting on, found in its frames."""
    found = []
    for frame in frames:
        for value in _frames.locals_of(frame).values():
            if isinstance(value, subprocess.Popen) and value.returncode is None \
                    and all(value is not p for p in found):
                found.append(value)
    return found


def describe(pid):
    """'4242 (sleep 60)': a child as a user reads it."""
    return f"{pid} ({_proc.command(pid) or '?'})"


class Children:
    """The children one kill has seen its victim drive, and those it stopped."""

    def __init__(self):
        self.stopped = {}            # pid -> (words, when signalled, pid and descendants)
        self.popens = []             # Popen objects seen in the victim's frames
        self.forked = {}             # pid -> start ticks of children the victim forked

    def remember(self, native_id, frame):
        """Note the child processes the victim drives: Popen objects in its frames,
        and what it forked (a Popen may not know its pid yet)."""
        if native_id is not None:
            for pid in _proc.thread_children(native_id):
                if pid not in self.forked:
                    self.forked[pid] = _proc.process_start(pid)
        if frame is None:
            return
        for popen in popens_in(list(_frames.frames_of(frame))):
            if all(popen is not p for p in self.popens):
                self.popens.append(popen)

    def stop(self, pids, now):
        """SIGTERM the children (and their descendants); SIGKILL after a grace
        period. Returns whether any was signalled for the first time."""
        first = False
        for pid in pids:
            if pid not in self.stopped:
                family = [pid] + list(_proc.children(pid))
                self.stopped[pid] = (describe(pid), now, family)
                _signal(family, signal.SIGTERM)
                first = True
            else:
                _, since, family = self.stopped[pid]
                if now - since > GRACE:
                    _signal(family, signal.SIGKILL)
        return first

    def words(self):
        return tuple(text for text, _, _ in self.stopped.values())

    def stop_orphans(self):
        """Children the dead thread was driving would run on unsupervised: stop
        them. Returns whether any was signalled for the first time."""
        first = False
        for popen in self.popens:
            # pid is None while Popen() has not forked yet: there is no child.
            if popen.pid is not None and popen.poll() is None:
                first = self.stop([popen.pid], time.monotonic()) or first
                try:
                    popen.wait(GRACE)
                except Exception:
                    popen.kill()
                    popen.wait()
        return self._stop_unreachable() or first

    def _stop_unreachable(self):
        """A victim killed between fork and `Popen.pid = ...` leaves a child that no
        Popen knows: nobody could ever stop or reap it. Stop and reap those."""
        alive = {pid: started for pid, started in self.forked.items()
                 if _proc.process_start(pid) == started}
        if not alive:
            return False
        owned = {obj.pid for obj in gc.get_objects() if isinstance(obj, subprocess.Popen)}
        first = False
        for pid in set(alive) - owned:
            first = self.stop([pid], time.monotonic()) or first
            deadline = time.monotonic() + GRACE
            while not _reaped(pid):
                if time.monotonic() > deadline:
                    _signal([pid], signal.SIGKILL)
                    deadline = float("inf")
                time.sleep(0.001)
        return first


def _signal(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _reaped(pid):
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:         # reaped by someone else meanwhile
        return True
