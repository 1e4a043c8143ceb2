"""The live thread table: every thread in the kernel, with a Kill button per row.

Built from standard ipywidgets (no custom JavaScript), so it renders wherever
ipywidgets 8 does. The kernel side owns all state; the frontend only shows it.

What it costs: one background thread per open table (marked as ipy_threadkill's
own), refreshing about once a second and never more than 1/20 of the time a
refresh takes. Each refresh compares the new snapshot with what the frontend
already has and sends only the values that changed: an idle kernel sends
nothing. Closing the table (or unloading the extension) stops the thread.

Clicks while a cell runs: a comm message normally waits for the running cell.
JupyterLab 4.4+ (and Notebook 7.4+) send widget messages over a kernel subshell
when the kernel has them (ipykernel 7); the table asks ipykernel to honour that
routing for its own widgets, so Kill works while the main thread is busy.
See docs/widget.md for what was measured.
"""
import html
import threading
import time

import ipywidgets as widgets
from traitlets import Bool, Enum, Float, Unicode, observe, validate

from . import _kernel
from .engine import kill
from .errors import ForceRefused, KillTimeout, ThreadKillError
from .snapshot import Snapshotter, stack

__all__ = ["ThreadTable", "close_all"]

SORTS = {"cpu": "CPU %", "name": "name", "age": "age"}
MIN_INTERVAL = 0.2          # seconds; faster than this only burns the user's CPU
# A refresh may take at most this share of the refresher's time (100 threads with
# deep stacks on a loaded machine): the pause after it grows to keep the share.
MAX_DUTY = 0.05

_open_tables = set()
_open_lock = threading.Lock()


def close_all():
    """Close every open ThreadTable (stops their refreshers); returns how many."""
    with _open_lock:
        tables = list(_open_tables)
    for table in tables:
        table.close()
    return len(tables)


# Column widths, shared by the header and every row so that they line up.
_COLUMNS = (("name", "160px"), ("ident", "130px"), ("state", "230px"),
            ("CPU %", "130px"), ("where", "220px"), ("started by", "110px"),
            ("age", "60px"))


def _cell(width, **kwargs):
    return widgets.Label(layout=widgets.Layout(width=width, overflow="hidden"), **kwargs)


def _set(widget, **values):
    """Assign only the traits whose value differs; one message for several."""
    changed = {k: v for k, v in values.items() if getattr(widget, k) != v}
    if not changed:
        return
    if len(changed) == 1:
        ((key, value),) = changed.items()
        setattr(widget, key, value)
        return
    with widget.hold_sync():
        for key, value in changed.items():
            setattr(widget, key, value)


def _show(widget, visible):
    _set(widget.layout, display=None if visible else "none")


def _format_age(seconds):
    """Coarse on purpose: a finer age would make every row change every second."""
    if seconds is None:
        return ""
    if seconds < 60:
        return "< 1 min"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def _cpu_bucket(percent):
    """CPU % as shown (and compared): whole percents, so jitter sends nothing."""
    return None if percent is None else int(round(percent))


def _frontend_routing(data, default):
    return default


def _concurrent(widget):
    """Let the frontend's choice of kernel subshell stand for `widget`'s messages.

    ipykernel 7 sends a comm's incoming messages to the subshell that last sent
    on that comm, which is the main shell for this table: a click would wait for
    the running cell. Our handlers are thread-safe and never wait for a reply,
    so honouring the frontend's subshell is safe. Without subshells (older
    kernels, frontends, or the setting off) nothing changes.
    """
    comm = getattr(widget, "comm", None)
    if comm is not None and hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = _frontend_routing
    return widget


class _Row:
    """One thread's widgets; `info` is the ThreadInfo the row currently shows."""

    def __init__(self, table, info):
        self.table = table
        self.info = info
        self.key = info.identity
        self.killing = False
        self.stack_text = None
        widths = dict(_COLUMNS)
        self.name = _cell(widths["name"])
        self.ident = _cell(widths["ident"])
        self.state = _cell(widths["state"])
        self.cpu_bar = widgets.FloatProgress(min=0, max=100, value=0,
                                             layout=widgets.Layout(width="80px"))
        self.cpu_text = _cell("45px")
        self.where = _cell(widths["where"])
        self.started_by = _cell(widths["started by"])
        self.age = _cell(widths["age"])
        self.kill_button = _concurrent(widgets.Button(
            description="Kill", button_style="danger", layout=widgets.Layout(width="60px")))
        self.kill_button.add_class("ipy-threadkill-kill")
        self.stack_toggle = _concurrent(widgets.ToggleButton(
            description="stack", value=False, tooltip="show this thread's stack",
            layout=widgets.Layout(width="60px")))
        self.message = widgets.HTML()
        self.message.add_class("ipy-threadkill-row-message")
        self.force_button = _concurrent(widgets.Button(
            description="Force kill", button_style="warning",
            layout=widgets.Layout(width="90px", display="none")))
        self.force_button.add_class("ipy-threadkill-force")
        self.confirm_text = widgets.HTML()
        self.confirm_yes = _concurrent(widgets.Button(description="Yes, force kill",
                                                      button_style="danger"))
        self.confirm_yes.add_class("ipy-threadkill-confirm")
        self.confirm_no = _concurrent(widgets.Button(description="Cancel"))
        self.confirm = widgets.HBox([self.confirm_text, self.confirm_yes, self.confirm_no],
                                    layout=widgets.Layout(display="none"))
        self.details = widgets.HBox([self.message, self.force_button],
                                    layout=widgets.Layout(display="none"))
        self.stack = widgets.HTML(layout=widgets.Layout(display="none"))
        self.stack.add_class("ipy-threadkill-stack")
        self.line = widgets.HBox([self.name, self.ident, self.state,
                                  widgets.HBox([self.cpu_bar, self.cpu_text],
                                               layout=widgets.Layout(width=widths["CPU %"])),
                                  self.where, self.started_by, self.age,
                                  self.kill_button, self.stack_toggle])
        self.box = widgets.VBox([self.line, self.details, self.confirm, self.stack])
        self.box.add_class("ipy-threadkill-row")
        self.kill_button.on_click(lambda _: table._request_kill(self, force=False))
        self.force_button.on_click(lambda _: self._ask_force())
        self.confirm_yes.on_click(lambda _: table._request_kill(self, force=True))
        self.confirm_no.on_click(lambda _: self._cancel_force())
        self.stack_toggle.observe(lambda _: table._wake.set(), names="value")
        self.update(info)

    def update(self, info):
        """Show `info`; only values that differ from what is shown are sent."""
        self.info = info
        cpu = _cpu_bucket(info.cpu_percent)
        _set(self.name, value=info.name, tooltip=info.name)
        _set(self.ident, value=f"{info.ident} / {info.native_id}",
             tooltip="ident / native thread id")
        _set(self.state, value=info.state,
             tooltip=f"{info.state} (kernel: {info.kernel_reason})" if info.kernel_reason
             else info.state)
        _set(self.cpu_bar, value=float(cpu or 0),
             bar_style="danger" if (cpu or 0) >= 50 else "info")
        _set(self.cpu_text, value="–" if cpu is None else f"{cpu} %")
        _set(self.where, value=info.where or "", tooltip=info.where or "")
        _set(self.started_by, value=info.started_by or "")
        _set(self.age, value=_format_age(info.age))
        _set(self.kill_button, disabled=self.killing or not info.killable,
             tooltip=(info.kill_plan if info.killable else
                      f"not killable: {info.kernel_reason or 'the kernel needs it'}"))
        self._update_stack()

    def _update_stack(self):
        expanded = self.stack_toggle.value
        if expanded:
            try:
                text = stack(self.info)
            except ThreadKillError as exc:
                text = str(exc)
            if text != self.stack_text:
                self.stack_text = text
                _set(self.stack, value=f"<pre style='margin:0 0 0 1em;font-size:85%'>"
                                       f"{html.escape(text)}</pre>")
        _show(self.stack, expanded)

    def say(self, text, force_offered=False):
        """Show `text` under the row (why a kill failed); offer Force kill or not."""
        _set(self.message, value=html.escape(text))
        _show(self.details, bool(text))
        _show(self.force_button, force_offered)
        if not force_offered:
            _show(self.confirm, False)

    def _ask_force(self):
        with self.table._lock:
            _set(self.confirm_text, value=(
                f"<b>Force kill '{html.escape(self.info.name)}'?</b> It is cancelled where "
                "it stands: its <code>finally</code> blocks and <code>with</code> exits "
                "will <b>not</b> run, and locks it holds stay held. "))
            _show(self.confirm, True)

    def _cancel_force(self):
        with self.table._lock:
            _show(self.confirm, False)

    def close(self):
        for w in (self.name, self.ident, self.state, self.cpu_bar, self.cpu_text,
                  self.where, self.started_by, self.age, self.kill_button,
                  self.stack_toggle, self.message, self.force_button, self.confirm_text,
                  self.confirm_yes, self.confirm_no, self.confirm, self.details,
                  self.stack, self.line.children[3], self.line, self.box):
            w.close()


class ThreadTable(widgets.VBox):
    """A live table of the kernel's threads with a Kill button per row.

    `refresh_interval`: seconds between refreshes (about; None or 0: only when
    refresh() is called). `include_kernel`: also list the kernel's own threads
    (never killable). `sort`: 'cpu', 'name' or 'age'. close() stops it.
    """

    refresh_interval = Float(1.0, allow_none=True)
    include_kernel = Bool(False)
    sort = Enum(tuple(SORTS), default_value="cpu")
    status = Unicode("")

    def __init__(self, refresh_interval=1.0, include_kernel=False, sort="cpu", **kwargs):
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = False
        self._rows = {}
        self._snapshotter = Snapshotter()
        self._refresher = None
        self._status = widgets.HTML()
        self._status.add_class("ipy-threadkill-status")
        self._summary = widgets.Label()
        self._sort = _concurrent(widgets.Dropdown(
            options=[(label, key) for key, label in SORTS.items()], value=sort,
            description="sort by", layout=widgets.Layout(width="180px")))
        self._kernel_box = _concurrent(widgets.Checkbox(
            value=include_kernel, description="show kernel threads", indent=False))
        self._header = widgets.HBox(
            [widgets.HTML(f"<b>{name}</b>", layout=widgets.Layout(width=width))
             for name, width in _COLUMNS])
        self._body = widgets.VBox()
        super().__init__(
            [widgets.HBox([self._sort, self._kernel_box, self._summary]),
             self._header, self._body, self._status],
            refresh_interval=refresh_interval, include_kernel=include_kernel, sort=sort,
            **kwargs)
        self.add_class("ipy-threadkill-table")
        self._sort.observe(self._on_sort_pick, names="value")
        self._kernel_box.observe(self._on_kernel_pick, names="value")
        with _open_lock:
            _open_tables.add(self)
        self.refresh()
        self._start()

    # -- options ---------------------------------------------------------------

    @validate("refresh_interval")
    def _valid_interval(self, proposal):
        value = proposal["value"]
        if value is not None and value < 0:
            raise ValueError(f"refresh_interval must be >= 0 seconds, not {value!r}")
        return value if not value else max(value, MIN_INTERVAL)

    @observe("refresh_interval")
    def _on_interval(self, change):
        if getattr(self, "_body", None) is not None:     # not during __init__
            self._start()
            self._wake.set()

    @observe("include_kernel", "sort")
    def _on_option(self, change):
        if getattr(self, "_body", None) is None:
            return
        with self._lock:
            _set(self._kernel_box, value=self.include_kernel)
            _set(self._sort, value=self.sort)
        self._wake.set()

    def _on_sort_pick(self, change):
        self.sort = change["new"]

    def _on_kernel_pick(self, change):
        self.include_kernel = change["new"]

    @observe("status")
    def _on_status(self, change):
        _set(self._status, value=html.escape(change["new"]))

    # -- refreshing ------------------------------------------------------------

    def refresh(self):
        """Take a snapshot and update the rows; sends only what changed."""
        with self._lock:
            if self._stopping:
                return
            shown = sorted(self._snapshotter.take(include_kernel=self.include_kernel),
                           key=self._sort_key)
            rows = []
            for info in shown:
                row = self._rows.get(info.identity)
                if row is None:
                    row = self._rows[info.identity] = _Row(self, info)
                else:
                    row.update(info)
                rows.append(row)
            gone = set(self._rows) - {info.identity for info in shown}
            for key in gone:
                self._rows.pop(key).close()
            children = tuple(row.box for row in rows)
            if children != self._body.children:
                self._body.children = children
            _set(self._summary, value=f"{len(shown)} thread{'s' if len(shown) != 1 else ''}")

    def _sort_key(self, info):
        if self.sort == "name":
            return (info.name.lower(), info.ident or 0)
        if self.sort == "age":
            return (-(info.age or 0), info.name.lower())
        return (-(_cpu_bucket(info.cpu_percent) or 0), info.name.lower(), info.ident or 0)

    def _start(self):
        with self._lock:
            if self._stopping or not self.refresh_interval:
                return
            if self._refresher is not None and self._refresher.is_alive():
                return
            self._refresher = _kernel.mark_own(threading.Thread(
                target=self._refresh_loop, name="ipy_threadkill-refresher", daemon=True))
            self._refresher.start()

    def _refresh_loop(self):
        pause = self.refresh_interval
        while True:
            self._wake.wait(pause)
            self._wake.clear()
            interval = self.refresh_interval
            if self._stopping or not interval:
                return
            began = time.monotonic()
            try:
                self.refresh()
            except Exception as exc:        # a bad snapshot must not end the refresher
                self.status = f"refresh failed: {type(exc).__name__}: {exc}"
            pause = max(interval, (time.monotonic() - began) / MAX_DUTY)

    # -- killing ---------------------------------------------------------------

    def _request_kill(self, row, force):
        """A click: kill what the row shows, in a worker so the UI stays responsive."""
        with self._lock:
            if self._rows.get(row.key) is not row:
                self.status = (f"'{row.info.name}' (ident {row.info.ident}) is no longer "
                               "listed: it has finished")
                return
            info = row.info
            if not info.killable:
                self.status = (f"refusing to kill '{info.name}' (ident {info.ident}): "
                               f"{info.kernel_reason or 'the kernel needs it'}")
                return
            if row.killing:
                return
            row.killing = True
            _set(row.kill_button, disabled=True)
            row.say("")
            self.status = f"{'force-' if force else ''}killing '{info.name}' (ident {info.ident}) …"
        worker = _kernel.mark_own(threading.Thread(
            target=self._kill, args=(row, info, force), name="ipy_threadkill-kill",
            daemon=True))
        worker.start()

    def _kill(self, row, info, force):
        offer_force = False
        try:
            text = str(kill(info, force=force))
        except KillTimeout as exc:
            text, offer_force = str(exc), not force
        except ForceRefused as exc:
            text = str(exc)
        except ThreadKillError as exc:
            text = str(exc)
        with self._lock:
            row.killing = False
            if not self._stopping:
                self.status = text
                if self._rows.get(row.key) is row:
                    row.say(text if offer_force or force else "", force_offered=offer_force)
                    _set(row.kill_button, disabled=not row.info.killable)
        self._wake.set()

    # -- text and lifetime -----------------------------------------------------

    def text(self):
        """The table as plain text (what a terminal or nbconvert shows)."""
        with self._lock:
            rows = [self._rows_by_box(box) for box in self._body.children]
            lines = [f"{'name':<24} {'ident':>16} {'CPU %':>6}  {'state':<40} where"]
            for row in rows:
                info = row.info
                cpu = _cpu_bucket(info.cpu_percent)
                state = info.state
                lines.append(f"{info.name[:24]:<24} {str(info.ident):>16} "
                             f"{'–' if cpu is None else cpu:>6}  {state[:40]:<40} "
                             f"{info.where or ''}")
            lines.append(self._summary.value + (f" · {self.status}" if self.status else ""))
            return "\n".join(lines)

    def _rows_by_box(self, box):
        return next(row for row in self._rows.values() if row.box is box)

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            data["text/plain"] = self.text()
        return data

    def close(self):
        """Stop the refresher and close every widget of the table."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            refresher = self._refresher
        self._wake.set()
        if refresher is not None and refresher is not threading.current_thread():
            refresher.join(5)
        with _open_lock:
            _open_tables.discard(self)
        with self._lock:
            for row in self._rows.values():
                row.close()
            self._rows.clear()
            for w in (self._status, self._summary, self._sort, self._kernel_box,
                      self._body, *self._header.children, self._header,
                      self.children[0]):
                w.close()
        super().close()

