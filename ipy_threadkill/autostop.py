"""Which run of which notebook cell started a thread, and re-run hygiene.

Re-running a cell that starts a thread (a poller, a server, a training loop)
leaves the earlier run's thread running beside the new one. With autostop on
(``%threads_autostop on``), the threads that earlier runs of the same cell
started and that still run are killed before the cell runs again, with one line
each in the cell's output; ``%killthread --cell previous`` does the same on
demand, from inside the cell.

Which cell is which comes from the frontend: JupyterLab and Notebook 7 name each
cell in the execute request (metadata.cellId), and IPython hands that name to
its pre_run_cell and post_run_cell events (info.cell_id). Which run started a
thread is the In[N] the snapshot tells (ThreadInfo.started_by_cell). A cell run
without a name (a terminal, an older frontend) is left alone. The two event
handlers are all this costs: one call per cell run, nothing in between.
"""
import weakref

from . import _views
from .snapshot import threads


class CellRuns:
    """The runs of each named cell one shell has made, and the one running now."""

    def __init__(self, shell):
        self.shell = shell
        self.current = None         # the id of the cell running now, if it has one
        self.runs = {}              # cell id -> [In[N] of each earlier run]
        self.autostop = False

    def pre_run_cell(self, info):
        self.current = getattr(info, "cell_id", None)
        earlier = self.runs.get(self.current)
        if self.autostop and earlier:
            for line in stop_runs(earlier):
                print(f"%threads_autostop: {line}")

    def post_run_cell(self, result):
        """The run's In[N] is known once it ran (the result says it)."""
        cell_id = getattr(getattr(result, "info", None), "cell_id", None)
        count = getattr(result, "execution_count", None)
        if cell_id and isinstance(count, int):
            self.runs.setdefault(cell_id, []).append(count)
        self.current = None


def stop_runs(counts):
    """Kill every live thread that the cells In[N] for N in `counts` started and
    that may be killed; the line each kill printed. The kernel's threads and
    this package's are never among them."""
    counts = set(counts)
    victims = [info for info in threads(include_kernel=True)
               if info.started_by_cell in counts and info.alive
               and _views.protection(info) is None]
    return [_views.kill(info).text for info in victims]


_trackers = weakref.WeakKeyDictionary()      # shell -> its CellRuns


def track(shell):
    """Follow `shell`'s cell runs (idempotent; %load_ext does it)."""
    if shell not in _trackers:
        tracker = _trackers[shell] = CellRuns(shell)
        shell.events.register("pre_run_cell", tracker.pre_run_cell)
        shell.events.register("post_run_cell", tracker.post_run_cell)


def untrack(shell):
    """Stop following `shell` (autostop ends with it); the runs are forgotten."""
    tracker = _trackers.pop(shell, None)
    if tracker is not None:
        shell.events.unregister("pre_run_cell", tracker.pre_run_cell)
        shell.events.unregister("post_run_cell", tracker.post_run_cell)


def set_autostop(shell, on):
    track(shell)
    _trackers[shell].autostop = on


def autostop_enabled(shell):
    tracker = _trackers.get(shell)
    return tracker is not None and tracker.autostop


def earlier_runs(shell):
    """The In[N] of the earlier runs of the cell running now (a tuple, maybe
    empty), or None when that cell has no id or runs are not followed."""
    tracker = _trackers.get(shell)
    if tracker is None or not tracker.current:
        return None
    return tuple(tracker.runs.get(tracker.current, ()))
