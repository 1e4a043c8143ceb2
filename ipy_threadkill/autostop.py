"""Re-run hygiene: a notebook cell run again first stops what its earlier runs left running.

Re-running a cell that starts a thread (a poller, a server, a training loop)
leaves the earlier run's thread running beside the new one. With autostop on
(``%threads_autostop on``), the threads that earlier runs of the same cell
started and that still run are killed before the cell runs again, with one line
each in the cell's output.

Which cell is which comes from the frontend: JupyterLab and Notebook 7 name each
cell in the execute request (metadata.cellId), and IPython hands that name to
its pre_run_cell event as info.cell_id. Which run started a thread is the In[N]
the snapshot tells (ThreadInfo.started_by_cell). A cell run without a name (a
terminal, an older frontend) is left alone.
"""
import weakref

from . import _views
from .snapshot import threads


class AutoStop:
    """The pre_run_cell and post_run_cell handlers of one shell, and the runs
    they have seen."""

    def __init__(self, shell):
        self.shell = shell
        self.runs = {}              # cell id -> [In[N] of each earlier run]

    def pre_run_cell(self, info):
        earlier = self.runs.get(getattr(info, "cell_id", None))
        if earlier:
            for line in stop_runs(earlier):
                print(f"%threads_autostop: {line}")

    def post_run_cell(self, result):
        """The run's In[N] is known once it ran (the result says it)."""
        cell_id = getattr(getattr(result, "info", None), "cell_id", None)
        count = getattr(result, "execution_count", None)
        if cell_id and isinstance(count, int):
            self.runs.setdefault(cell_id, []).append(count)


def stop_runs(counts):
    """Kill every live thread that the cells In[N] for N in `counts` started and
    that may be killed; the line each kill printed. The kernel's threads and
    this package's are never among them."""
    counts = set(counts)
    victims = [info for info in threads(include_kernel=True)
               if info.started_by_cell in counts and info.alive
               and _views.protection(info) is None]
    return [_views.kill(info).text for info in victims]


_handlers = weakref.WeakKeyDictionary()      # shell -> its AutoStop, while on


def enable(shell):
    """Turn autostop on for `shell` (idempotent)."""
    if shell not in _handlers:
        handler = _handlers[shell] = AutoStop(shell)
        shell.events.register("pre_run_cell", handler.pre_run_cell)
        shell.events.register("post_run_cell", handler.post_run_cell)


def disable(shell):
    """Turn autostop off for `shell`; the runs seen so far are forgotten."""
    handler = _handlers.pop(shell, None)
    if handler is not None:
        shell.events.unregister("pre_run_cell", handler.pre_run_cell)
        shell.events.unregister("post_run_cell", handler.post_run_cell)


def enabled(shell):
    return shell in _handlers
