"""The live table in a real browser: JupyterLab 4 and Notebook 7, clicked by Playwright.

The notebook starts a runaway thread and shows the table; a second cell then
keeps the main thread busy until the runaway is gone (at most 30 s). The test
clicks Kill on the runaway's row while that cell runs, waits for the status line
to report the kill, and asks the kernel itself (over its own connection file)
whether the OS thread still exists and whether it answers promptly. Then a
thread stuck on a Lock: Kill fails with a reason, Force kill asks, and ends it.
"""
import json
import os
import re
import time

import pytest

from .. import ROOT, wait_until
from .conftest import write_notebook

# The README's screenshot: written there only when asked (UPDATE_SCREENSHOT=1),
# so that a test run leaves the checkout clean; always kept with the test's files.
SCREENSHOT = os.path.join(ROOT, "docs", "widget.png")
BUSY_LIMIT = 30            # seconds the busy cell waits for the runaway to die

# A thread name that ipywidgets' Label typeset as math, and markup that would run.
LITERAL = r"$\color{red}{x}$ <b>bold</b> <img src=x onerror=alert(1)>"

SETUP = f"LITERAL = {LITERAL!r}\n" + """\
import os, socket, subprocess, threading, time
from ipy_threadkill.widget import ThreadTable

def runaway():                       # a convergence loop that never converges
    error = 1.0
    while error > 1e-9:
        error = abs(error * 1.0)

def poll_feed(conn):                 # a poller whose server went silent
    conn.recv(4096)

def export():                        # waits on a tool that hangs
    subprocess.run(["sleep", "600"])

feed, silent = socket.socketpair()
ready = threading.Event()
held = threading.Lock()
held.acquire()                       # never released: only a forced kill ends "stuck"
workers = {name: threading.Thread(target=target, args=args, name=name, daemon=True)
           for name, target, args in [("runaway", runaway, ()),
                                       ("feed-poller", poll_feed, (feed,)),
                                       ("exporter", export, ()),
                                       ("idle-worker", ready.wait, ()),
                                       ("stuck", held.acquire, ())]}
for w in workers.values():
    w.start()
# Text from a thread is shown as it is: not typeset as math, not read as markup.
literal = threading.Thread(target=threading.Event().wait, name=LITERAL, daemon=True)
literal.start()
victim = workers["runaway"]
victim_native_id = victim.native_id
table = ThreadTable(refresh_interval=0.5)
table"""

BUSY = f"""\
print("busy cell started", flush=True)
began = time.monotonic()
while victim.is_alive() and time.monotonic() - began < {BUSY_LIMIT}:
    pass
print(f"busy cell done: runaway {{'alive' if victim.is_alive() else 'gone'}} after "
      f"{{time.monotonic() - began:.1f}} s")"""

CHECK = """\
import json, os
print(json.dumps({"os_thread": str(victim_native_id) in os.listdir("/proc/self/task"),
                  "is_alive": victim.is_alive(),
                  "others": sorted(n for n, w in workers.items() if w.is_alive())}))"""

FRONTENDS = {
    "lab": "/lab/tree/{name}",
    "notebook7": "/notebooks/{name}",
}


def _row(page, name):
    """The table row of the thread called exactly `name` (other rows may mention it)."""
    return page.locator(".ipy-threadkill-row").filter(
        has=page.locator(".ipy-threadkill-name", has_text=re.compile(f"^{re.escape(name)}$")))


def _run_all(page):
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def _wait_for_kernel(page, server, name):
    """The frontend has a live kernel: the server says idle and the toolbar names it."""
    def idle():
        sessions = [s for s in server.api("/api/sessions") if s["path"] == name]
        return bool(sessions) and sessions[0]["kernel"]["execution_state"] == "idle"
    wait_until(idle, timeout=60, interval=0.2, what="the kernel to start")
    page.locator(".jp-Toolbar-kernelName", has_text="Python").first.wait_for()
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()


def _ask_kernel(server, name, code, timeout=10):
    """Run `code` in the notebook's kernel over a separate client; its stdout and
    how long the reply took."""
    client, _ = server.kernel_client(name)
    try:
        began = time.monotonic()
        msg_id = client.execute(code)
        reply = client.get_shell_msg(timeout=timeout)
        took = time.monotonic() - began
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "ok", reply["content"]
        out = []
        while True:
            msg = client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out), took
    finally:
        client.stop_channels()


@pytest.mark.parametrize("frontend", list(FRONTENDS))
def test_kill_button_in_a_real_browser(frontend, jupyter_server, page):
    server = jupyter_server
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    name = f"threads-{frontend}.ipynb"
    write_notebook(server.root / name, [SETUP, BUSY])
    page.goto(server.url(FRONTENDS[frontend].format(name=name)))
    _wait_for_kernel(page, server, name)
    _run_all(page)

    row = _row(page, "runaway")
    row.wait_for()
    # The name shows as typed: no math, no markup, no element made from it; the
    # status line that quotes it after a kill likewise. (Killed: out of the screenshot.)
    literal = _row(page, LITERAL)
    literal.wait_for()
    made = "b, img, mjx-container, .MathJax, math, svg"
    assert literal.locator(".ipy-threadkill-name").evaluate("e => e.textContent") == LITERAL
    assert literal.locator(made).count() == 0
    literal.locator("button", has_text="Kill").click()
    page.locator(".ipy-threadkill-status", has_text=f"killed '{LITERAL}'").wait_for()
    assert page.locator(".ipy-threadkill-status").locator(made).count() == 0
    literal.wait_for(state="detached")
    assert dialogs == []                    # onerror=alert(1) never ran
    page.locator(".jp-OutputArea-output", has_text="busy cell started").wait_for()
    table = page.locator(".ipy-threadkill-table")
    # The moment the screenshot shows: a cell running (the main thread's row is in
    # it), a runaway with its CPU % (known from the second snapshot on).
    row.locator("text=/\\d+ %/").wait_for()
    _row(page, "MainThread").locator("text=In[2]").wait_for()
    if frontend == "lab":
        shot = table.screenshot(path=str(server.root / "widget.png"))
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            with open(SCREENSHOT, "wb") as f:
                f.write(shot)
    clicked = time.monotonic()
    row.locator("button", has_text="Kill").click()
    status = page.locator(".ipy-threadkill-status", has_text="killed 'runaway'")
    status.wait_for(timeout=(BUSY_LIMIT + 30) * 1000)
    click_to_report = time.monotonic() - clicked
    text = status.inner_text()
    assert "cleanup ran" in text, text
    row.wait_for(state="detached")          # the refresher dropped the dead thread's row

    done = page.locator(".jp-OutputArea-output", has_text="busy cell done")
    done.wait_for(timeout=(BUSY_LIMIT + 30) * 1000)
    assert "runaway gone" in done.inner_text()

    # The kernel, asked directly: the OS thread is gone, the others live, and it answers.
    out, took = _ask_kernel(server, name, CHECK)
    state = json.loads(out.strip().splitlines()[-1])
    assert state == {"os_thread": False, "is_alive": False,
                     "others": ["exporter", "feed-poller", "idle-worker", "stuck"]}, state

    # A thread no gentle rung reaches: the row says why and offers Force kill,
    # which asks first and says that cleanup will not run.
    stuck = _row(page, "stuck")
    stuck.locator("button", has_text="Kill").click()
    stuck.locator(".ipy-threadkill-row-message", has_text="could not kill 'stuck'").wait_for()
    stuck.locator(".ipy-threadkill-force").click()
    confirm = stuck.locator(".ipy-threadkill-confirm")
    confirm.wait_for()
    assert "will not run" in stuck.inner_text()
    confirm.click()
    page.locator(".ipy-threadkill-status", has_text="killed 'stuck'").wait_for()
    assert "cleanup did NOT run" in page.locator(".ipy-threadkill-status").inner_text()
    stuck.wait_for(state="detached")
    kernel_id = next(s["kernel"]["id"] for s in server.api("/api/sessions")
                     if s["path"] == name)
    wait_until(lambda: server.api(f"/api/kernels/{kernel_id}")["execution_state"] == "idle",
               timeout=30, interval=0.2, what="the kernel to be idle")
    print(f"{frontend}: click to 'killed' {click_to_report:.2f} s while a cell kept the "
          f"main thread busy; a check cell answered in {took * 1000:.0f} ms")
    server.api(f"/api/kernels/{kernel_id}", method="DELETE")
