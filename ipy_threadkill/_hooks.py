"""Everything ipy_threadkill installs process-wide, and the one way to give it back.

    Thread.start, _thread.start_new_thread   wrapped at import ("started by", _origin)
    threading.excepthook, sys.unraisablehook  wrapped at the first kill: a thread
                                              ended by a kill ends silently
    sys.monitoring, one tool id               while a line-level raise or a task's
                                              return guard runs (3.12+)
    the interrupt's real-time signal          its handler, from the first kill that
                                              interrupts a system call (Linux)
    the time limits' timer thread             from the first time_limit

(The forced cancel takes glibc's SIGCANCEL handler only for the instant of one
cancel and gives it back itself.) `uninstall()` gives every one of these back;
the next use installs what it needs again. A hook someone else wrapped after ours
cannot be unwrapped without breaking theirs: ours is then left in place, turned
into a plain pass-through.
"""
import os
import sys
import threading

from . import _native, _origin

_lock = threading.RLock()


# -- hooks that end threads silently --------------------------------------------------

class _PassThrough:
    """A wrapper around a hook `previous` that swallows what `swallows(args)` says
    is ours, until released."""

    def __init__(self, previous, swallows):
        self.previous = previous
        self.swallows = swallows
        self.active = True

    def __call__(self, args):
        if self.active and self.swallows(args):
            return None
        return self.previous(args)


_wrapped = {}               # (owner, attribute) -> our _PassThrough


def silence(excepthook_swallows, unraisable_swallows):
    """Wrap threading.excepthook and sys.unraisablehook (idempotent)."""
    with _lock:
        for owner, name, swallows in ((threading, "excepthook", excepthook_swallows),
                                      (sys, "unraisablehook", unraisable_swallows)):
            ours = _wrapped.get((owner, name))
            if ours is not None and ours.active:
                continue
            ours = _PassThrough(getattr(owner, name), swallows)
            _wrapped[(owner, name)] = ours
            setattr(owner, name, ours)


def _unsilence():
    for (owner, name), ours in list(_wrapped.items()):
        ours.active = False
        if getattr(owner, name) is ours:
            setattr(owner, name, ours.previous)
        del _wrapped[(owner, name)]


# -- sys.monitoring -------------------------------------------------------------------

class _Monitoring:
    """The one sys.monitoring tool id this package uses (3.12+), shared by every
    user under one name, held only while some code object is watched.

    Ids 0-2 are named for debuggers, coverage and profilers; 3 and 4 belong to no
    one; 5 (optimizers) is taken only if both are in use."""

    NAME = "ipy_threadkill"
    CANDIDATES = (3, 4, 5)

    def __init__(self):
        self.tool = None
        self.callbacks = {}         # event -> callback, registered while the tool is held
        self.watches = {}           # code -> {event: number of watchers}

    @staticmethod
    def available():
        return hasattr(sys, "monitoring")

    def watch(self, code, event, callback):
        """Call `callback` on `event` (a sys.monitoring.events value) in `code`.
        Returns False when no tool id is free (another tool holds all of them)."""
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is None:
            return False
        with _lock:
            if self.tool is None and not self._claim(monitoring):
                return False
            if self.callbacks.get(event) is not callback:
                monitoring.register_callback(self.tool, event, callback)
                self.callbacks[event] = callback
            counts = self.watches.setdefault(code, {})
            counts[event] = counts.get(event, 0) + 1
            monitoring.set_local_events(self.tool, code, self._mask(code))
        return True

    def unwatch(self, code, event):
        with _lock:
            counts = self.watches.get(code, {})
            if not counts.get(event):
                return
            counts[event] -= 1
            if not counts[event]:
                del counts[event]
            if not counts:
                del self.watches[code]
            sys.monitoring.set_local_events(self.tool, code, self._mask(code))
            if not self.watches:
                self.release()

    def _mask(self, code):
        mask = 0
        for event in self.watches.get(code, ()):
            mask |= event
        return mask

    def _claim(self, monitoring):
        for tool in self.CANDIDATES:
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, self.NAME)
                self.tool = tool
                return True
        return False

    def release(self):
        """Stop every watch and give the tool id back."""
        with _lock:
            if self.tool is None:
                return
            monitoring = sys.monitoring
            for code in self.watches:
                monitoring.set_local_events(self.tool, code, 0)
            for event in self.callbacks:
                monitoring.register_callback(self.tool, event, None)
            if monitoring.get_tool(self.tool) == self.NAME:
                monitoring.free_tool_id(self.tool)
            self.tool, self.callbacks, self.watches = None, {}, {}


monitoring = _Monitoring()


def _forget_after_fork():
    """A child forked while another thread held the lock would wait for ever."""
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


# -- install / uninstall --------------------------------------------------------------

def install():
    """What is installed before any kill: the "started by" record (idempotent)."""
    _origin.install()


_before_uninstall = []


def before_uninstall(give_back):
    """Have uninstall() call `give_back()` first (e.g. to withdraw what a module
    left queued in other threads, while the hooks that handle it still stand)."""
    if give_back not in _before_uninstall:
        _before_uninstall.append(give_back)


def uninstall():
    """Give back everything ipy_threadkill installed in this interpreter: the
    Thread.start wrappers, the hooks that end killed threads silently, the
    sys.monitoring tool id, the interrupt signal's handler, and the time
    limits' timer thread if no limit is running.

    The package stays usable: a later kill installs what it needs again, and
    threads started from now on are not recorded until install() (which
    %load_ext calls) runs again."""
    with _lock:
        for give_back in _before_uninstall:
            give_back()
        _origin.uninstall()
        _unsilence()
        monitoring.release()
        from . import timelimit         # it imports this module
        timelimit.stop_timer()
        release = getattr(_native, "release_signal", None)      # Linux only
        if release is not None:
            release()
