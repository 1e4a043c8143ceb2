"""The live thread table: every thread in the kernel, with a Kill button per row.

Built from standard ipywidgets (no custom JavaScript), so it renders wherever
ipywidgets 8 does. The kernel side owns all state; the frontend only shows it.

What it costs: one background thread per open table (marked as ipy_threadkill's
own), refreshing about once a second and spending at most 1/20 of its time on
it. Each refresh compares the new snapshot with what the frontend
already has and sends only the values that changed: an idle kernel sends
nothing. Closing the table (or unloading the extension) stops the thread.

Clicks while a cell runs: a comm message normally waits for the running cell.
JupyterLab 4 and Notebook 7 send widget messages over a kernel subshell when the
kernel has them (ipykernel 7; the "Kernel Comms over subshells" setting); the
table asks ipykernel to honour that routing for its own widgets, so Kill works
while the main thread is busy. See docs/widget.md for what was measured.
"""
import html
import sys
import threading
import time

import ipywidgets as widgets
from ipywidgets.widgets.widget_bool import ToggleButtonStyle
from ipywidgets.widgets.widget_string import HTMLStyle, LabelStyle
from traitlets import Bool, Enum, Float, Unicode, observe, validate

from . import _arguments, _compat, _kernel, _views
from ._text import clip, one_line
from .errors import ThreadKillError
from .snapshot import Snapshotter, stack

__all__ = ["ThreadTable", "close_all"]

SORTS = {key: {"cpu": "CPU %"}.get(key, key) for key in _views.SORTS}    # key: label
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


def _running_cell():
    """The id of the notebook cell being run (JupyterLab and Notebook 7 send it
    with each execute request), or None outside a kernel or without one."""
    kernelbase = sys.modules.get("ipykernel.kernelbase")
    if kernelbase is None or not kernelbase.Kernel.initialized():
        return None
    metadata = kernelbase.Kernel.instance().get_parent().get("metadata") or {}
    return metadata.get("cellId")


# Column widths, shared by the header and every row so that they line up.
_WIDTHS = dict(zip(_views.COLUMNS, ("140px", "125px", "240px", "105px", "180px", "75px",
                                    "55px")))


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


def _cpu_html(percent):
    """A bar and a number in one widget: one message when the value changes."""
    if percent is None:
        return "<span style='color:#888'>–</span>"
    color = "#d9534f" if percent >= 50 else "#5bc0de"
    width = max(0, min(100, percent))
    return (f"<div style='display:flex;align-items:center;gap:6px;white-space:nowrap'>"
            f"<div style='flex:none;width:56px;height:10px;background:#e6e6e6;"
            f"border-radius:2px'><div style='width:{width}%;height:100%;"
            f"background:{color};border-radius:2px'></div></div>"
            f"<span>{percent} %</span></div>")


# What a cell sends at most: more than a column shows (the browser cuts the rest
# with an ellipsis) and than a tooltip usefully holds, so that a thread naming
# itself with a megabyte costs a refresh kilobytes, not megabytes.
CELL_CHARS = 300
TOOLTIP_CHARS = 2000


def _cell_html(text, tooltip=None):
    """A table cell showing `text` (one line already) literally: escaped, never
    typeset as math (ipywidgets' Label typesets its value; HTML sets it as
    markup, unprocessed), with `tooltip` (default: the whole text) as its title;
    both clipped before they are sent. (A Label's or HTML's own tooltip goes to
    its description, hidden when empty.)"""
    tooltip = clip(text if tooltip is None else tooltip, TOOLTIP_CHARS)
    return (f"<div title=\"{html.escape(tooltip)}\" "
            "style='white-space:pre;overflow:hidden;text-overflow:ellipsis'>"
            f"{html.escape(clip(text, CELL_CHARS))}</div>")


def _stack_html(text):
    """A stack as a literal block (stack() has escaped each of its lines)."""
    return ("<pre style='margin:0 0 4px 1em;font-size:85%;line-height:1.3'>"
            f"{html.escape(text)}</pre>")


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
    _compat.route_by_frontend(getattr(widget, "comm", None), _frontend_routing)
    return widget


class _Looks:
    """Layouts and styles every row of one table shares (each is a widget model:
    sharing them keeps a row at a dozen models instead of three dozen)."""

    def __init__(self):
        # Fixed widths that never shrink: the header and the rows must line up.
        self.columns = {name: widgets.Layout(width=width, flex="0 0 auto", overflow="hidden")
                        for name, width in _WIDTHS.items()}
        self.button = widgets.Layout(width="55px", flex="0 0 auto")
        self.wide_button = widgets.Layout(width="auto")
        self.box = widgets.Layout()
        self.heading = LabelStyle(font_weight="bold")
        self.html = HTMLStyle()
        self.buttons = widgets.ButtonStyle()
        self.toggle = ToggleButtonStyle()

    def cell(self, column):
        return widgets.HTML(layout=self.columns[column], style=self.html)

    def make_button(self, description, wide=False, **kwargs):
        return _concurrent(widgets.Button(
            description=description, style=self.buttons,
            layout=self.wide_button if wide else self.button, **kwargs))

    def close(self):
        for w in (*self.columns.values(), self.button, self.wide_button, self.box,
                  self.heading, self.html, self.buttons, self.toggle):
            w.close()


class _Row:
    """One thread's widgets; `info` is the ThreadInfo the row currently shows.

    The parts a row rarely needs (a message, the Force kill confirmation, the
    stack) are created on first use and shown by adding them to the row."""

    def __init__(self, table, info):
        looks = table._looks
        self.table = table
        self.info = info
        self.key = info.identity
        self.killing = False
        self.message_text = ""
        self.force_offered = False
        self.confirming = False
        self.stack_text = None
        self.shown = None
        self.name = looks.cell("name")
        self.name.add_class("ipy-threadkill-name")
        self.ident = looks.cell("ident")
        self.state = looks.cell("state")
        self.cpu = widgets.HTML(layout=looks.columns["CPU %"], style=looks.html)
        self.where = looks.cell("where")
        self.started_by = looks.cell("started by")
        self.age = looks.cell("age")
        self.kill_button = looks.make_button("Kill", button_style="danger")
        self.kill_button.add_class("ipy-threadkill-kill")
        self.stack_toggle = _concurrent(widgets.ToggleButton(
            description="stack", value=False, tooltip="show this thread's stack",
            layout=looks.button, style=looks.toggle))
        self.line = widgets.HBox([self.name, self.ident, self.state, self.cpu,
                                  self.where, self.started_by, self.age,
                                  self.kill_button, self.stack_toggle], layout=looks.box)
        self.box = widgets.VBox([self.line], layout=looks.box)
        self.box.add_class("ipy-threadkill-row")
        self.extras = {}
        self.kill_button.on_click(lambda _: table._request_kill(self, force=False))
        self.stack_toggle.observe(lambda _: table._wake.set(), names="value")
        self.update(info)

    def _extra(self, name):
        """The widget `name` of the row's rarely used parts, created on first use."""
        if name not in self.extras:
            looks, table = self.table._looks, self.table
            if name == "message":
                w = widgets.HTML(layout=looks.box, style=looks.html)
                w.add_class("ipy-threadkill-row-message")
            elif name == "force":
                w = looks.make_button("Force kill", wide=True, button_style="warning")
                w.add_class("ipy-threadkill-force")
                w.on_click(lambda _: self._ask_force())
            elif name == "confirm":
                text = widgets.HTML(layout=looks.box, style=looks.html)
                yes = looks.make_button("Yes, force kill", wide=True, button_style="danger")
                yes.add_class("ipy-threadkill-confirm")
                yes.on_click(lambda _: table._request_kill(self, force=True))
                no = looks.make_button("Cancel", wide=True)
                no.on_click(lambda _: self._cancel_force())
                w = widgets.HBox([text, yes, no], layout=looks.box)
            elif name == "details":
                w = widgets.HBox([self._extra("message")], layout=looks.box)
            else:
                w = widgets.HTML(layout=looks.box, style=looks.html)
                w.add_class("ipy-threadkill-stack")
            self.extras[name] = w
        return self.extras[name]

    def update(self, info):
        """Show `info`; only values that differ from what is shown are sent."""
        self.info = info
        cells = _views.cells(info)
        cpu = _views.cpu_bucket(info.cpu_percent)
        refused = _views.unkillable(info)
        # Most rows of a refresh show what they showed: skip comparing each trait.
        shown = (cells, cpu, info.native_id, info.kernel_reason, refused, info.kill_plan,
                 self.killing, self.stack_toggle.value)
        if shown == self.shown and not self.stack_toggle.value:
            return
        self.shown = shown
        _set(self.name, value=_cell_html(cells.name))
        _set(self.ident, value=_cell_html(cells.ident, f"native thread id {info.native_id}"))
        _set(self.state, value=_cell_html(
            cells.state, f"{info.state} (the kernel needs it: {info.kernel_reason})"
            if info.kernel_reason else None))
        _set(self.cpu, value=_cpu_html(cpu))
        _set(self.where, value=_cell_html(cells.where))
        _set(self.started_by, value=_cell_html(cells.started_by))
        _set(self.age, value=_cell_html(cells.age))
        _set(self.kill_button, disabled=self.killing or refused is not None,
             tooltip=clip(info.kill_plan if refused is None else
                          f"not killable: {refused}", TOOLTIP_CHARS))
        if self.stack_toggle.value:
            try:
                text = stack(info)
            except ThreadKillError as exc:
                text = str(exc)
            if text != self.stack_text:
                self.stack_text = text
                _set(self._extra("stack"), value=_stack_html(text))
        self._layout()

    def _layout(self):
        """The row's parts, in order: only those in use are shown."""
        parts = [self.line]
        if self.message_text:
            details = self._extra("details")
            wanted = (self._extra("message"),) + ((self._extra("force"),)
                                                  if self.force_offered else ())
            if details.children != wanted:
                details.children = wanted
            parts.append(details)
        if self.confirming:
            parts.append(self._extra("confirm"))
        if self.stack_toggle.value:
            parts.append(self._extra("stack"))
        if self.box.children != tuple(parts):
            self.box.children = parts

    def say(self, text, force_offered=False):
        """Show `text` under the row (why a kill failed); offer Force kill or not."""
        self.message_text, self.force_offered = text, force_offered
        if text:
            _set(self._extra("message"), value=html.escape(clip(text, TOOLTIP_CHARS)))
        self.confirming = self.confirming and force_offered
        self._layout()

    def _ask_force(self):
        with self.table._lock:
            _set(self._extra("confirm").children[0], value=(
                f"<b>Force kill '{html.escape(one_line(self.info.name))}'?</b> It is cancelled where "
                "it stands: its <code>finally</code> blocks and <code>with</code> exits "
                "will <b>not</b> run, and locks it holds stay held."))
            self.confirming = True
            self._layout()

    def _cancel_force(self):
        with self.table._lock:
            self.confirming = False
            self._layout()

    def close(self):
        extras = list(self.extras.values())
        if "confirm" in self.extras:
            extras += self.extras["confirm"].children
        for w in (self.name, self.ident, self.state, self.cpu, self.where,
                  self.started_by, self.age, self.kill_button, self.stack_toggle,
                  *extras, self.line, self.box):
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
        self._refresher = None
        self._rows = {}
        self._looks = _Looks()
        self._snapshotter = Snapshotter()
        self._status = widgets.HTML()
        self._status.add_class("ipy-threadkill-status")
        self._summary = widgets.Label()
        self._sort = _concurrent(widgets.Dropdown(
            options=[(label, key) for key, label in SORTS.items()], value=sort,
            description="sort by", layout=widgets.Layout(width="180px")))
        self._kernel_box = _concurrent(widgets.Checkbox(
            value=include_kernel, description="show kernel threads", indent=False))
        self._header = widgets.HBox(
            [widgets.Label(name, layout=self._looks.columns[name], style=self._looks.heading)
             for name in _views.COLUMNS])
        self._body = widgets.VBox()
        super().__init__(
            [widgets.HBox([self._sort, self._kernel_box, self._summary]),
             self._header, self._body, self._status],
            refresh_interval=refresh_interval, include_kernel=include_kernel, sort=sort,
            **kwargs)
        self.add_class("ipy-threadkill-table")
        self._sort.observe(self._on_sort_pick, names="value")
        self._kernel_box.observe(self._on_kernel_pick, names="value")
        # Running a cell again replaces its output: the table it showed before can
        # no longer be seen, so it stops rather than refresh for no one.
        self._cell = _running_cell()
        with _open_lock:
            replaced = [t for t in _open_tables if self._cell and t._cell == self._cell]
            _open_tables.add(self)
        for table in replaced:
            table.close()
        self.refresh()
        self._start()

    # -- options ---------------------------------------------------------------

    @validate("refresh_interval")
    def _valid_interval(self, proposal):
        value = proposal["value"]
        if value is not None:          # the same checks, and words, as every timeout
            value = _arguments.seconds(value, "refresh_interval", allow_zero=True)
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
            manual = self._refresher is None
        if manual:
            self.refresh()              # no refresher to wake: show the choice now
        else:
            self._wake.set()

    def _on_sort_pick(self, change):
        self.sort = change["new"]

    def _on_kernel_pick(self, change):
        self.include_kernel = change["new"]

    @observe("status")
    def _on_status(self, change):
        _set(self._status, value=f"<span style='font-family:monospace'>"
                                 f"{html.escape(clip(change['new'], TOOLTIP_CHARS))}</span>")

    # -- refreshing ------------------------------------------------------------

    def refresh(self):
        """Take a snapshot and update the rows; sends only what changed."""
        with self._lock:
            if self._stopping:
                return
            shown, _ = _views.listing(self._snapshotter.take(include_kernel=True),
                                      include_kernel=self.include_kernel, sort=self.sort,
                                      live=True)
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
            info = row.info
            if self._rows.get(row.key) is not row:
                self.status = f"{_views.describe(info)} is no longer listed: it has finished"
                return
            reason = _views.unkillable(info)
            if reason is not None:
                self.status = _views.refusal_text(info, reason)
                return
            if row.killing:
                return
            row.killing = True
            _set(row.kill_button, disabled=True)
            row.say("")
            self.status = f"{'force-' if force else ''}killing {_views.describe(info)} …"
        worker = _kernel.mark_own(threading.Thread(
            target=self._kill, args=(row, info, force), name="ipy_threadkill-kill",
            daemon=True))
        worker.start()

    def _kill(self, row, info, force):
        outcome = _views.kill(info, force=force)     # never raises: the row is not stuck
        with self._lock:
            if not self._stopping:
                self.status = outcome.text
                if self._rows.get(row.key) is row:
                    # Force is offered only where a forced kill would be tried.
                    row.say(outcome.text if outcome.timed_out or force else "",
                            force_offered=outcome.force_offered)
                    # Until the refresher drops the row, its dead thread stays unclickable.
                    _set(row.kill_button,
                         disabled=outcome.died or _views.unkillable(row.info) is not None)
            row.killing = False           # last: the row is settled when this reads False
        self._wake.set()

    # -- text and lifetime -----------------------------------------------------

    def text(self):
        """The table as plain text (what a terminal or nbconvert shows)."""
        with self._lock:
            by_box = {id(row.box): row for row in self._rows.values()}
            table = _views.text_table([by_box[id(box)].info for box in self._body.children])
            return (f"{table}\n{self._summary.value}"
                    + (f" · {one_line(self.status)}" if self.status else ""))

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
            self._looks.close()
        super().close()

