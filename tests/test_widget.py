"""The live table's kernel side: model, refresher and kills, without a browser.

The widget is driven in a fresh interpreter (run_json, with a deadline): its
refresh() is called or its refresher left to run, its traits inspected, and the
messages it would send to a frontend counted at ipywidgets' one exit
(Widget._send) plus every comm it opens. Then through real kernels: a click
sent while a cell keeps the main thread busy, and the demo notebook run by nbclient.
"""
import os
import sys
import textwrap
import time

import pytest

from . import ROOT, run_json

pytest.importorskip("ipywidgets")

# Counts what the table would send: state updates and newly opened widget comms.
COUNTING = """
import json, threading, time
import ipywidgets
from ipy_threadkill import widget as W
from tests import wait_until
sent = {"updates": 0, "opened": 0}
_send, _open = ipywidgets.Widget._send, ipywidgets.Widget.open
def counting_send(self, msg, buffers=None):
    sent["updates"] += 1
    return _send(self, msg, buffers)
def counting_open(self):
    sent["opened"] += 1
    return _open(self)
ipywidgets.Widget._send = counting_send
ipywidgets.Widget.open = counting_open
def row_named(table, name):
    return next(r for r in table._rows.values() if r.info.name == name)
# Run `job` in a thread the table hides, as its refresher is: the main thread
# just waits meanwhile, so a refresh of an idle process finds nothing changed.
def hidden(job):
    from ipy_threadkill import _kernel
    result = []
    worker = _kernel.mark_own(threading.Thread(target=lambda: result.append(job())))
    worker.start(); worker.join()
    return result[0]
def shown_names(table):
    by_box = {id(r.box): r for r in table._rows.values()}
    return [by_box[id(b)].info.name for b in table._body.children]
"""


def _run(code, **kwargs):
    """Run `code` after the counting preamble in a fresh interpreter; its JSON."""
    return run_json(COUNTING + textwrap.dedent(code), **kwargs)


def test_rows_follow_threads_and_nothing_is_sent_when_nothing_changed():
    out = _run("""
    stop = threading.Event()
    a = threading.Thread(target=stop.wait, name="idle-a", daemon=True); a.start()
    table = W.ThreadTable(refresh_interval=None)
    first = shown_names(table)
    pace = threading.Event()              # never set: spaces refreshes as the refresher
                                          # does (CPU % over a 1 ms window is noise)
    def settle_then_idle():
        for _ in range(3):                # CPU % appears: the first real change
            pace.wait(0.1); table.refresh()
        sent.update(updates=0, opened=0)
        for _ in range(5):
            pace.wait(0.1); table.refresh()
        return dict(sent)
    idle = hidden(settle_then_idle)
    b = threading.Thread(target=stop.wait, name="idle-b", daemon=True); b.start()
    sent.update(updates=0, opened=0)
    hidden(table.refresh)
    added = dict(sent)
    rows_before = len(table._rows)
    stop.set(); a.join(5); b.join(5)
    hidden(table.refresh)
    after = shown_names(table)
    table.close()
    print(json.dumps(dict(first=first, idle=idle, added=added, rows_before=rows_before,
                          after=after, status=table.status)))
    """, timeout=60)
    assert "idle-a" in out["first"] and "MainThread" in out["first"]
    assert out["idle"] == {"updates": 0, "opened": 0}, out
    assert out["added"]["opened"] > 0         # a new row: new widgets, nothing else rebuilt
    assert out["rows_before"] == len(out["first"]) + 1
    assert "idle-a" not in out["after"] and "idle-b" not in out["after"]


def test_refresher_sends_nothing_while_idle_and_stops_on_close():
    out = _run("""
    from ipy_threadkill import _kernel
    stop = threading.Event()
    threading.Thread(target=stop.wait, name="idle", daemon=True).start()
    table = W.ThreadTable(refresh_interval=0.2)
    refresher = table._refresher
    own = _kernel.protected_reason(refresher.ident, refresher)
    count = {"takes": 0}
    settled, done = threading.Event(), threading.Event()
    take = table._snapshotter.take
    def counted_take(**kw):
        result = take(**kw)
        count["takes"] += 1
        if count["takes"] == 3:           # CPU % of every thread is known
            sent.update(updates=0, opened=0); settled.set()
        elif count["takes"] == 3 + 8:
            done.set()
        return result
    table._snapshotter.take = counted_take
    assert done.wait(30)                  # the main thread waits: nothing changes
    idle = dict(sent)
    names = [t.name for t in threading.enumerate()]
    second = W.ThreadTable(refresh_interval=0.2)
    closed = W.close_all()
    wait_until(lambda: not refresher.is_alive() and not second._refresher.is_alive(), 10,
               what="refreshers to stop")
    left = [t.name for t in threading.enumerate() if "refresher" in t.name]
    print(json.dumps(dict(own=own, idle=idle, names=names, closed=closed, left=left,
                          open=len(W._open_tables))))
    """, timeout=60)
    assert out["own"] == "it is ipy_threadkill's own thread"
    assert out["idle"] == {"updates": 0, "opened": 0}, out
    assert "ipy_threadkill-refresher" in out["names"]
    assert out["closed"] == 2 and out["left"] == [] and out["open"] == 0


def test_sort_and_kernel_toggle():
    out = _run("""
    stop = threading.Event()
    def spin():
        while not stop.is_set():
            pass
    threading.Thread(target=stop.wait, name="aaa-idle", daemon=True).start()
    threading.Thread(target=spin, name="zzz-spin", daemon=True).start()
    from ipy_threadkill import _kernel     # stands in for a kernel thread
    _kernel.mark_own(threading.Thread(target=stop.wait, name="own", daemon=True)).start()
    table = W.ThreadTable(refresh_interval=None)
    wait_until(lambda: (table.refresh(), shown_names(table)[0] == "zzz-spin")[1], 20,
               interval=0.05, what="the spinning thread to sort first by CPU")
    table._sort.value = "name"            # as the frontend would set it
    by_name = shown_names(table)
    plain = len(table._rows)
    table._kernel_box.value = True
    with_kernel = [r.info for r in table._rows.values()]
    kernel_rows = [(i.name, i.killable, table._rows[i.identity].kill_button.disabled)
                   for i in with_kernel if i.kernel_reason]
    stop.set()
    table.close()
    print(json.dumps(dict(by_name=by_name, sort=table.sort, plain=plain,
                          with_kernel=len(with_kernel), kernel_rows=kernel_rows)))
    """, timeout=60)
    assert out["sort"] == "name"
    names = [n for n in out["by_name"] if n in ("aaa-idle", "zzz-spin", "MainThread")]
    assert names == sorted(names, key=str.lower)
    assert out["with_kernel"] > out["plain"]
    assert "own" in [name for name, _, _ in out["kernel_rows"]]
    assert out["kernel_rows"] and all(not k and disabled for _, k, disabled in out["kernel_rows"])


def test_kill_button_kills_what_the_row_shows():
    out = _run("""
    state = {"cleanup": False}
    def runaway():
        try:
            while True:
                pass
        finally:
            state["cleanup"] = True
    t = threading.Thread(target=runaway, name="runaway", daemon=True); t.start()
    table = W.ThreadTable(refresh_interval=None)
    row = row_named(table, "runaway")
    row.kill_button.click()
    wait_until(lambda: table.status.startswith("killed"), 10, what="the kill to report")
    table.refresh()
    print(json.dumps(dict(status=table.status, alive=t.is_alive(), cleanup=state["cleanup"],
                          listed="runaway" in shown_names(table))))
    table.close()
    """, timeout=60)
    assert out["status"].startswith("killed 'runaway'"), out
    assert "cleanup ran" in out["status"]
    assert out["alive"] is False and out["cleanup"] is True
    assert out["listed"] is False


def test_clicks_on_stale_or_kernel_rows_are_refused():
    out = _run("""
    done = threading.Event()
    t = threading.Thread(target=done.wait, name="short-lived"); t.start()
    table = W.ThreadTable(refresh_interval=None, include_kernel=True)
    row = row_named(table, "short-lived")
    done.set(); t.join(5)
    # Possibly recycled ident: a new thread may now own it; the pinned identity tells.
    again = threading.Event()
    t2 = threading.Thread(target=again.wait, name="newcomer", daemon=True); t2.start()
    row.kill_button.click()
    wait_until(lambda: not row.killing and "killing" not in table.status, 10)
    stale = table.status
    main = row_named(table, "MainThread")
    main.kill_button.click()              # disabled in the frontend; refused here too
    kernel = table.status
    table.refresh()
    gone_row = row
    table._request_kill(gone_row, force=False)
    unlisted = table.status
    print(json.dumps(dict(stale=stale, kernel=kernel, unlisted=unlisted,
                          newcomer=t2.is_alive(), disabled=main.kill_button.disabled)))
    again.set(); table.close()
    """, timeout=60)
    assert "has finished" in out["stale"], out
    assert out["newcomer"] is True             # the recycled ident's new owner survived
    assert out["kernel"].startswith("refusing to kill 'MainThread'") and out["disabled"]
    assert "no longer listed" in out["unlisted"]


def test_failed_kill_offers_force_behind_a_confirmation():
    out = _run("""
    import signal
    def stuck():
        # No gentle rung reaches a sleep that blocks every signal; the forced
        # cancel can end it on every version (a Lock waiter only before 3.13).
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        time.sleep(3600)
    t = threading.Thread(target=stuck, name="stuck", daemon=True); t.start()
    wait_until(lambda: "signals blocked" in (row_named(W.ThreadTable(refresh_interval=None),
                                                       "stuck").info.kill_plan),
               10, interval=0.05)
    W.close_all()
    table = W.ThreadTable(refresh_interval=None)
    row = row_named(table, "stuck")
    row.kill_button.click()
    wait_until(lambda: not row.killing, 20, what="the gentle kill to give up")
    gentle = table.status
    offered = row.extras["force"] in row.extras["details"].children
    message = row.extras["message"].value
    row.extras["force"].click()
    confirm = row.extras["confirm"]
    confirm_shown = confirm in row.box.children
    warning = confirm.children[0].value
    confirm.children[1].click()
    wait_until(lambda: not row.killing and "killing" not in table.status, 20)
    forced = table.status
    print(json.dumps(dict(gentle=gentle, offered=offered, message=message,
                          confirm_shown=confirm_shown, warning=warning, forced=forced,
                          alive=t.is_alive())))
    table.close()
    """, timeout=90, allow_stderr=True)
    assert out["gentle"].startswith("could not kill 'stuck'"), out
    assert out["offered"] and "could not kill" in out["message"]
    assert out["confirm_shown"] and "will <b>not</b> run" in out["warning"]
    # Either the forced cancel ran (and said cleanup did not run) or it was refused
    # with a reason; never the gentle message again.
    assert out["forced"] != out["gentle"]
    if out["forced"].startswith("killed"):
        assert "cleanup did NOT run" in out["forced"] and out["alive"] is False


def test_a_huge_name_is_clipped_before_it_is_sent():
    """A thread that names itself with a megabyte costs the table kilobytes: its
    cells and tooltips are clipped before they go out."""
    out = _run("""
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="n" * 1_000_000, daemon=True); t.start()
    table = W.ThreadTable(refresh_interval=None)
    row = next(r for r in table._rows.values() if r.info.name.startswith("nnn"))
    sizes = {part: len(getattr(row, part).value) for part in ("name", "state", "where")}
    sizes["tooltip"] = len(row.kill_button.tooltip or "")
    t.name = "m" * 1_000_000
    table.refresh()
    sizes["renamed"] = len(row.name.value)
    stop.set(); table.close()
    print(json.dumps(sizes))
    """, timeout=60)
    assert all(size < 5000 for size in out.values()), out


def test_a_pending_kill_shows_on_its_row():
    """Kill clicked on a thread inside a long C call: the row says the kill is
    pending (and how to withdraw it); the thread ends as its call returns."""
    out = _run("""
    import hashlib
    from ipy_threadkill import _blocking
    began = time.monotonic()
    hashlib.pbkdf2_hmac("sha256", b"k", b"s", 100000)
    rounds = int(100000 * 3.0 / max(time.monotonic() - began, 1e-4))   # ~3 s a call
    def hasher():
        while True:
            hashlib.pbkdf2_hmac("sha256", b"k", b"s", rounds)
    t = threading.Thread(target=hasher, name="hasher", daemon=True); t.start()
    wait_until(lambda: _blocking.analyze(t.ident, t.native_id).kind == "c-code", 10)
    table = W.ThreadTable(refresh_interval=None)
    row = row_named(table, "hasher")
    row.kill_button.click()
    wait_until(lambda: not row.killing, 30, what="the kill to answer")
    status = table.status
    table.refresh()
    state = row_named(table, "hasher").info.state
    text = table.text()
    t.join(60)
    print(json.dumps(dict(status=status, state=state, text=text, alive=t.is_alive())))
    table.close()
    """, timeout=120)
    assert "is inside a C call that releases the GIL" in out["status"], out
    assert "%killthread --cancel" in out["status"], out
    assert out["state"].startswith("kill pending"), out
    assert "kill pending" in out["text"], out
    assert out["alive"] is False, out


# -- through a real kernel ------------------------------------------------------------

def test_demo_notebook_runs_headless():
    """nbclient runs the demo in a real kernel: every cell passes, every thread dies."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import run_demo
    finally:
        sys.path.pop(0)
    nb = run_demo.run(timeout=120)
    outputs = {cell.source.strip(): "".join(run_demo._text(o) for o in cell.outputs)
               for cell in nb.cells if cell.cell_type == "code"}
    kills = next(text for source, text in outputs.items() if source.startswith("%killthread"))
    for name in ("feed-poller", "fit-loop", "exporter", "sync-retry"):
        assert f"killed '{name}'" in kills, kills
    assert "stopped child" in kills
    table = next(text for source, text in outputs.items() if source == "%threads")
    assert "fit-loop" in table and "feed-poller" in table
    survived = next(text for source, text in outputs.items() if "still running" in source)
    assert "threads still running: []" in survived
    assert "child processes left: []" in survived


BUSY_LIMIT = 30            # seconds the busy cell waits for the runaway to die
CLICK_WHILE_BUSY = """
import threading, time
from ipy_threadkill.widget import ThreadTable
def runaway():
    while True:
        pass
victim = threading.Thread(target=runaway, name="runaway", daemon=True)
victim.start()
table = ThreadTable(refresh_interval=0.5)
button = next(r.kill_button for r in table._rows.values() if r.info.name == "runaway")
print(button.model_id)
"""


def test_click_goes_through_while_a_cell_runs():
    """What JupyterLab 4.4+ and Notebook 7.4+ do by default (comms over a kernel
    subshell), played by jupyter_client: the click kills while the main thread is busy."""
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3", env=dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))))
    try:
        info = kc.kernel_info(reply=True)["content"]
        if "kernel subshells" not in info.get("supported_features", []):
            pytest.skip("this ipykernel has no subshells: a click waits for the running cell")
        button = _execute(kc, CLICK_WHILE_BUSY).strip()
        msg = kc.session.msg("create_subshell_request", {})
        kc.control_channel.send(msg)
        subshell = kc.control_channel.get_msg(timeout=10)["content"]["subshell_id"]
        busy = kc.execute("print('busy', flush=True)\nbegan = time.monotonic()\n"
                          f"while victim.is_alive() and time.monotonic() - began < {BUSY_LIMIT}:\n"
                          "    pass\nprint('busy for', round(time.monotonic() - began, 2), "
                          "'victim alive:', victim.is_alive())")
        _wait_output(kc, busy, "busy")
        click = kc.session.msg("comm_msg", {"comm_id": button, "data": {
            "method": "custom", "content": {"event": "click"}}})
        click["header"]["subshell_id"] = subshell
        kc.shell_channel.send(click)
        done = _wait_output(kc, busy, "busy for", timeout=BUSY_LIMIT + 30)
        assert "victim alive: False" in done, done
        assert float(done.split("busy for")[1].split()[0]) < BUSY_LIMIT
        # The worker writes the status just after the thread is gone.
        status = _execute(kc, "deadline = time.monotonic() + 10\n"
                              "while not table.status.startswith('killed') "
                              "and time.monotonic() < deadline:\n    time.sleep(0.01)\n"
                              "print(table.status); table.close()")
        assert status.startswith("killed 'runaway'"), status
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _wait_output(kc, msg_id, text, timeout=30):
    """The stdout of request `msg_id` from the line holding `text` to its end
    (a line may come in several stream messages)."""
    deadline, out = time.monotonic() + timeout, ""
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        if msg["msg_type"] == "stream":
            out += msg["content"]["text"]
            line = out[out.find(text):] if text in out else ""
            if line.endswith("\n"):
                return line


def _execute(kc, code, timeout=30):
    """Run `code` in the kernel; its stdout (fails on an error)."""
    out = []

    def collect(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, timeout=timeout, output_hook=collect)
    assert reply["content"]["status"] == "ok", "".join(out)
    return "".join(out)


def test_rerun_cell_and_unload_stop_refreshers():
    """Running a table's cell again closes the table it showed; %unload_ext closes
    the rest: no refresher is left polling for a table no one can see."""
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3", env=dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))))
    count = ("import threading; print(sum(t.name == 'ipy_threadkill-refresher' "
             "for t in threading.enumerate()))")
    try:
        _execute(kc, "%load_ext ipy_threadkill")
        for _ in range(2):               # the same cell, run twice (as JupyterLab sends it)
            msg = kc.session.msg("execute_request", {
                "code": "from ipy_threadkill.widget import ThreadTable\nt = ThreadTable()\nt",
                "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True}, metadata={"cellId": "cell-1"})
            kc.shell_channel.send(msg)
            reply = kc.get_shell_msg(timeout=30)
            assert reply["content"]["status"] == "ok", reply["content"]
        _execute(kc, "u = ThreadTable()")  # another cell's table stays
        assert _execute(kc, count).strip() == "2"
        _execute(kc, "%unload_ext ipy_threadkill")
        left = _execute(kc, "from tests import wait_until\nwait_until(lambda: not any("
                            "t.name == 'ipy_threadkill-refresher' for t in "
                            "threading.enumerate()), 10)\n" + count)
        assert left.strip() == "0"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_stack_expander_follows_the_thread():
    out = _run("""
    stop = threading.Event()
    def deep_wait():
        stop.wait()
    threading.Thread(target=deep_wait, name="waiter", daemon=True).start()
    table = W.ThreadTable(refresh_interval=None)
    row = row_named(table, "waiter")
    closed = len(row.box.children)
    row.stack_toggle.value = True         # as the frontend would set it
    table.refresh()
    opened = row.extras["stack"] in row.box.children
    text = row.extras["stack"].value
    sent.update(updates=0, opened=0)
    table.refresh()                       # the same stack: nothing is sent
    unchanged = dict(sent)
    row.stack_toggle.value = False
    table.refresh()
    print(json.dumps(dict(closed=closed, opened=opened, text=text, unchanged=unchanged,
                          after=len(row.box.children))))
    stop.set(); table.close()
    """)
    assert out["closed"] == 1 and out["opened"] and out["after"] == 1
    assert "in deep_wait" in out["text"] and "in wait" in out["text"]
    assert out["unchanged"]["opened"] == 0


HOSTILE = ["clear\x1b[2J", "over\rwrite", "two\nlines", "tab\there", "nul\x00", "\u202eeman",
           "$\\color{red}{x}$ <b>bold</b> <img src=x onerror=alert(1)>"]


def test_text_from_threads_is_shown_literally():
    out = _run(f"""
    import html, ipywidgets
    from ipy_threadkill import _kernel
    NAMES = {HOSTILE!r}
    stop = threading.Event()
    for name in NAMES:
        threading.Thread(target=stop.wait, name=name, daemon=True).start()
    # A thread the kernel needs, so that a click is refused with its name in the status.
    own = _kernel.mark_own(threading.Thread(target=stop.wait, name=NAMES[0], daemon=True))
    own.start()
    table = W.ThreadTable(refresh_interval=None, include_kernel=True)
    rows = [r for r in table._rows.values() if r.info.name in NAMES]
    cells = {{}}
    for r in rows:
        for part in ("name", "state", "where", "started_by"):
            w = getattr(r, part)
            cells.setdefault(part, []).append([type(w).__name__, w.value])
    refused = next(r for r in rows if r.info.ident == own.ident)
    refused.kill_button.click()
    status = table._status.value
    two = next(r for r in rows if r.info.name == NAMES[2])     # "two\\nlines"
    two.stack_toggle.value = True
    table.refresh()
    shown_stack = two.extras["stack"].value
    text = table.text()
    stop.set(); table.close()
    print(json.dumps(dict(cells=cells, names=[r.info.name for r in rows], status=status,
                          text=text, plain=table.status, stack=shown_stack)))
    """)
    names = out["names"]
    assert sorted(names) == sorted(HOSTILE + [HOSTILE[0]])
    for part, shown in out["cells"].items():
        for kind, value in shown:
            # HTML, never Label/HTMLMath: ipywidgets typesets those as math.
            assert kind == "HTML" and value.isprintable(), (part, kind, value)
            assert "<b>" not in value and "<img" not in value, value
    import html
    from ipy_threadkill._text import one_line
    values = [value for _, value in out["cells"]["name"]]
    for name in HOSTILE:              # the text, escaped once: a browser shows it as is
        assert any(f">{html.escape(one_line(name))}</div>" in v for v in values), name
    assert "refusing to kill" in out["plain"] and out["status"].isprintable()
    assert repr(HOSTILE[0])[1:-1] in out["status"]
    stack = out["stack"].split("\n")      # the name in its header adds no line
    assert stack[0].startswith("<pre") and "Thread &#x27;two\\nlines&#x27;" in stack[0], stack
    assert stack[-1] == "</pre>" and all(line.startswith("  ") for line in stack[1:-1]), stack
    lines = out["text"].split("\n")
    assert all(line.isprintable() for line in lines), out["text"]
    for name in HOSTILE:
        shown = one_line(name)[:23]
        assert sum(line.startswith(shown) for line in lines) == 1 + (name == HOSTILE[0]), name


def test_force_is_offered_only_where_a_forced_kill_would_be_tried():
    out = _run("""
    from ipy_threadkill import engine
    from ipy_threadkill.errors import KillTimeout
    stop = threading.Event()
    victim = threading.Thread(target=stop.wait, name="victim", daemon=True)
    victim.start()
    table = W.ThreadTable(refresh_interval=None)
    row = next(r for r in table._rows.values() if r.info.name == "victim")
    offered = {}
    for refused in (None, "it holds the GIL in C code"):
        def fake_kill(info, force=False, refused=refused, **options):
            exc = KillTimeout("still alive after 2 s")
            exc.force_refused = refused
            raise exc
        engine.kill = fake_kill
        table._kill(row, row.info, False)
        offered[str(refused)] = [row.force_offered, row.message_text]
    stop.set(); table.close()
    print(json.dumps(offered))
    """)
    assert out["None"] == [True, "still alive after 2 s"], out
    assert out["it holds the GIL in C code"] == [
        False, "still alive after 2 s; a forced kill would be refused: it holds the GIL "
        "in C code"], out


def test_refresh_interval_is_checked_like_every_timeout():
    out = _run("""
    from ipy_threadkill.errors import InvalidArgument
    table = W.ThreadTable(refresh_interval=None)
    refused = []
    for value in (float("nan"), float("inf"), 1e7, -1, True):
        try:
            table.refresh_interval = value
        except Exception as exc:
            refused.append(isinstance(exc, (InvalidArgument, ValueError)) or type(exc).__name__)
    table.refresh_interval = 0.01
    clamped = table.refresh_interval
    table.refresh_interval = 0
    table.close()
    print(json.dumps({"refused": refused, "clamped": clamped}))
    """)
    assert out["refused"][:4] == [True] * 4, out
    assert out["clamped"] >= 0.2, out
