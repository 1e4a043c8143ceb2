"""See every thread in a Python process and kill a runaway one, keeping the rest.

    >>> import ipy_threadkill
    >>> ipy_threadkill.kill("poller")        # a Thread, ident, native id or name
    >>> ipy_threadkill.threads()             # what every thread is doing

In IPython or Jupyter: ``%load_ext ipy_threadkill``, then ``%threads`` and
``%killthread``. ``ipy_threadkill.uninstall()`` (and ``%unload_ext``) gives back
everything the package installed in the interpreter.
"""
from ._hooks import uninstall
from .engine import cancel_kill, kill
from .report import KillReport, Rung
from .snapshot import ThreadInfo, stack, threads
from .tasks import stop_task
from .timelimit import TimeLimitWarning, time_limit
from .errors import (AmbiguousTarget, ForceRefused, InvalidArgument, InvalidTarget, KillPending,
                     KillTimeout, NoSuchTask, NoSuchThread, ProtectedThread, TaskStopped,
                     ThreadKillError, ThreadKilled, TimeLimitExceeded)

__version__ = "0.1.0"

__all__ = [
    "kill", "KillReport", "Rung", "threads", "stack", "ThreadInfo", "stop_task",
    "time_limit", "TimeLimitExceeded", "TimeLimitWarning",
    "ThreadKilled", "TaskStopped", "ThreadKillError",
    "NoSuchThread", "NoSuchTask", "AmbiguousTarget", "InvalidTarget", "InvalidArgument", "ProtectedThread",
    "KillTimeout", "KillPending", "cancel_kill", "ForceRefused", "uninstall",
]


def load_ipython_extension(ipython):
    from .magics import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython):
    from .magics import unload_ipython_extension as unload
    unload(ipython)
