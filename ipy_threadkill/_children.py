"""The child processes a thread drives, and all they started: found, stopped,
and reaped when nobody can.

A thread waiting on a child is ended by stopping the child; a thread that dies
leaves its children unsupervised, so they are stopped too. Children are known
from the thread's frames (Popen objects) and from Linux (what it forked).

What a child started is stopped with it: a shell's command, a build tool's
compiler, a Python child's own Popen. Each look at the victim walks Linux's
lists of each process's children down from the victim's children, and what it
finds is remembered by pid and start time: a grandchild outlives its parent
(the victim's own cleanup may kill and reap a shell first) and is reparented
to init, where no later walk from the victim finds it. A process that leads its
own group or session (start_new_session, process_group) brings every process
in it too, so even one that left the tree before the first look (a daemon's
double fork) is found. A signal goes only to a process whose start time is
still the one remembered: a recycled pid is never signalled.
"""
import gc
import os
import signal
import subprocess
import time

from . import _frames, _proc, _text

GRACE = 0.5             # seconds between SIGTERM and SIGKILL
COMMAND_WIDTH = 80      # a compiler's command line can run to pages


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
    """'4242 (sleep 60)': a process as a user reads it."""
    return f"{pid} ({_text.clip(_proc.command(pid), COMMAND_WIDTH) or '?'})"


class Children:
    """The processes one kill has seen its victim drive, all they started, and
    those it stopped."""

    def __init__(self):
        self.popens = []            # Popen objects seen in the victim's frames
        self.forked = {}            # pid -> start ticks of children the victim forked
        self.waited = set()         # children stopped while the victim waited on them
        self.tree = {}              # pid -> (start ticks, the child it descends from)
        self.leaders = set()        # pids in the tree that lead a group or session
        self.stopped = {}           # pid -> (words, when first signalled)

    def remember(self, native_id, frame):
        """Note the child processes the victim drives (Popen objects in its frames,
        and what it forked: a Popen may not know its pid yet) and what each of
        them has started so far."""
        if native_id is not None:
            for pid in _proc.thread_children(native_id):
                if pid not in self.forked:
                    self.forked[pid] = start = _proc.process_start(pid)
                    if start is not None:
                        self._take_child(pid, start)
        if frame is not None:
            for popen in popens_in(list(_frames.frames_of(frame))):
                if all(popen is not p for p in self.popens):
                    self.popens.append(popen)
        self._take_popens()
        self._walk()

    def stop(self, pids, now):
        """SIGTERM the children `pids` (the victim waits on them) and all they
        started; SIGKILL after a grace period. Returns whether any was signalled
        for the first time."""
        fresh = [pid for pid in pids if pid not in self.waited]
        for pid in fresh:
            self.waited.add(pid)
            if pid not in self.tree:
                self._take_child(pid)
        if fresh:
            self._sweep()               # before the first signal: miss nothing
        else:
            self._walk()
        return self._signal(set(pids), now)

    def words(self):
        return tuple(text for text, _ in self.stopped.values())

    def stop_orphans(self):
        """The dead victim's children, and all they started, would run on
        unsupervised: stop them, and reap the children nobody else can."""
        self._take_popens()             # a Popen that learnt its pid since the last look
        roots, unowned = self._orphaned()
        self._sweep()
        last = time.monotonic()
        self._signal(roots, last)
        # Until every one has ended, or as long after the last new one was first
        # signalled as it takes to SIGKILL it and see it go.
        while not self._gone(roots, unowned):
            now = time.monotonic()
            if now - last > 2 * GRACE:
                break
            self._walk()                # what a dying process started meanwhile
            if self._signal(roots, now):
                last = now
            time.sleep(0.001)

    def _orphaned(self):
        """(the dead victim's children whose processes are to be stopped, those of
        them nobody else can reap)."""
        roots = self.waited | {p.pid for p in self.popens if p.pid is not None}
        running = {pid for pid, start in self.forked.items()
                   if pid not in roots and start is not None
                   and _proc.process_start(pid) == start}
        # A forked child that has ended left what it started to nobody.
        roots |= set(self.forked) - running
        if not running:
            return roots, set()
        # A running child some Popen knows is its owner's to supervise. One that
        # none knows (the victim died between fork and `Popen.pid = ...`) nobody
        # could ever stop or reap.
        owned = {obj.pid for obj in gc.get_objects() if isinstance(obj, subprocess.Popen)}
        unowned = running - owned
        return roots | unowned, unowned

    def _take_popens(self):
        for popen in self.popens:
            # Not reaped yet (returncode None): the pid is still this child's.
            if popen.pid is not None and popen.returncode is None \
                    and popen.pid not in self.tree:
                self._take_child(popen.pid)

    def _take_child(self, pid, start=None):
        """Put this process's child `pid` in the tree as a child of the victim's,
        if it is alive (and started at `start`, when that is known)."""
        stat = _proc.process_stat(pid)
        if stat is not None and stat.live and stat.ppid == os.getpid() \
                and start in (None, stat.start):
            self._take(pid, stat, pid)

    def _take(self, pid, stat, root):
        """Remember `pid` (seen as `stat`) under `root`; whether it is new."""
        known = self.tree.get(pid)
        if known is not None and known[0] == stat.start:
            return False
        self.tree[pid] = (stat.start, root)
        if pid in (stat.pgrp, stat.session):
            self.leaders.add(pid)
        else:
            self.leaders.discard(pid)
        return True

    def _walk(self):
        """Add to the tree what its processes started since the last look: their
        children lists, read down from each (cheap: only their own files)."""
        frontier = list(self.tree)
        while frontier:
            parent = frontier.pop()
            start, root = self.tree[parent]
            found = _proc.process_children(parent)
            if _proc.process_start(parent) != start:
                continue            # ended: its pid, and so that list, may be another's
            for pid in found:
                stat = _proc.process_stat(pid)
                # Its parent checked again: a child that ended meanwhile may
                # have left its pid to an unrelated process.
                if stat is not None and stat.live and stat.ppid == parent \
                        and self._take(pid, stat, root):
                    frontier.append(pid)

    def _sweep(self):
        """Add to the tree, from one read of every process, what descends from its
        processes by parent links, and every member of a group or session one of
        them leads. Slower than _walk(), but complete: a children list read while
        a child exits can leave out its siblings (proc_tid_children(5))."""
        if not self.tree:
            return                  # the usual kill: no child, nothing to read
        seen = _proc.processes()
        below = {}
        for pid, stat in seen.items():
            if stat.live:
                below.setdefault(stat.ppid, []).append(pid)
        grew = True
        while grew:                 # a group's member may have children, and they groups
            frontier = [pid for pid, (start, _) in self.tree.items()
                        if pid in seen and seen[pid].live and seen[pid].start == start]
            while frontier:
                parent = frontier.pop()
                root = self.tree[parent][1]
                for pid in below.get(parent, ()):
                    if self._take(pid, seen[pid], root):
                        frontier.append(pid)
            grew = self._take_groups(seen)

    def _take_groups(self, seen):
        """Take every process of `seen` in a group or session a tree process leads;
        whether any was new."""
        grew = False
        for pid, stat in seen.items():
            leader = stat.session if stat.session in self.leaders else stat.pgrp
            if not stat.live or leader not in self.leaders:
                continue
            leader_start, root = self.tree[leader]
            # A group outlives its leader; a leader with another start time (a
            # zombie's is still there) is another process whose group this is.
            current = seen.get(leader)
            if (current is None or current.start == leader_start) \
                    and stat.start >= leader_start:
                grew = self._take(pid, stat, root) or grew
        return grew

    def _signal(self, roots, now):
        """SIGTERM each process under `roots` not signalled yet; SIGKILL those first
        signalled more than GRACE ago. Returns whether any was signalled for the
        first time."""
        first = False
        for pid, (start, root) in list(self.tree.items()):
            if root not in roots:
                continue
            if pid not in self.stopped:
                words = describe(pid)   # read while it runs: a dead one has no command
                if _send(pid, start, signal.SIGTERM):
                    self.stopped[pid] = (words, now)
                    first = True
            elif now - self.stopped[pid][1] > GRACE:
                _send(pid, start, signal.SIGKILL)
        return first

    def _gone(self, roots, unowned):
        """Whether every process under `roots` has ended; reaps this process's own
        children meanwhile (a Popen's through it, so that it knows)."""
        for popen in self.popens:
            if popen.pid is not None:
                popen.poll()
        reaped = [_reap(pid, self.forked[pid]) for pid in unowned]
        return all(reaped) and all(_proc.process_start(pid) != start
                                   for pid, (start, root) in self.tree.items()
                                   if root in roots)


def _send(pid, start, signum):
    """Send `signum` to process `pid` if it is still the one that started at
    `start`; whether it was sent. Through a pidfd where Linux has them (5.3 on),
    so that the check and the signal reach the same process even if `pid` is
    recycled in between."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):   # no pidfd_open in this Python, or this kernel
        pidfd = None
    try:
        if _proc.process_start(pid) != start:
            return False
        if pidfd is None:
            os.kill(pid, signum)
        else:
            signal.pidfd_send_signal(pidfd, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _reap(pid, start):
    """Reap this process's child `pid`, the one that started at `start`, if it has
    ended; whether it is gone."""
    stat = _proc.process_stat(pid)
    if stat is None or stat.start != start or stat.ppid != os.getpid():
        return True                 # reaped already: the pid may be another's now
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:       # reaped by someone else meanwhile
        return True
