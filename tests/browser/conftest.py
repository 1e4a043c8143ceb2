"""A real Jupyter server and a real browser for the widget's end-to-end tests.

One server (JupyterLab 4 and Notebook 7 are both served by it) on a free
localhost port, every piece of its state in the test's temporary directory, and
Debian's Chromium driven by Playwright (its own browser download is never used).
"""
import json
import os
import socket
import subprocess
import sys
import urllib.request

import pytest

from .. import ROOT, wait_until

CHROMIUM = "/usr/bin/chromium"


def _skip_reason():
    """Why the browser tests cannot run here: only a missing browser that this
    user cannot install. As root a missing browser fails the run instead."""
    if os.path.exists(CHROMIUM) or os.geteuid() == 0:
        return None
    return f"{CHROMIUM} is missing (tools/install-chromium.sh installs it as root)"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running Jupyter server: its URL, token, root folder and runtime folder."""

    def __init__(self, base, port, token, root, runtime, process):
        self.base, self.port, self.token = base, port, token
        self.root, self.runtime, self.process = root, runtime, process

    def api(self, path, method="GET", body=None):
        request = urllib.request.Request(
            f"{self.base}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text else None

    def url(self, path):
        return f"{self.base}{path}?token={self.token}"

    def kernel_client(self, notebook):
        """A jupyter_client connected to the kernel of the session of `notebook`."""
        from jupyter_client import BlockingKernelClient
        session = next(s for s in self.api("/api/sessions") if s["path"] == notebook)
        kernel_id = session["kernel"]["id"]
        client = BlockingKernelClient()
        client.load_connection_file(os.path.join(self.runtime, f"kernel-{kernel_id}.json"))
        client.start_channels()
        client.wait_for_ready(timeout=30)
        return client, kernel_id


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    assert os.path.exists(CHROMIUM), \
        f"{CHROMIUM} is missing: run tools/install-chromium.sh (make test does)"
    home = tmp_path_factory.mktemp("jupyter")
    dirs = {name: home / name for name in
            ("home", "ipython", "config", "data", "runtime", "workspaces", "settings", "root")}
    for path in dirs.values():
        path.mkdir()
    # No news or update checks: there is no internet, and the pop-up covers buttons.
    settings = dirs["settings"] / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ)
    env.update(HOME=str(dirs["home"]), IPYTHONDIR=str(dirs["ipython"]),
               JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
               JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
               JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
               JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    port, token = _free_port(), os.urandom(16).hex()
    log = open(home / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={dirs['root']}", "--ServerApp.allow_root=True",
         "--ServerApp.port_retries=0"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(dirs["root"]))
    server = Server(f"http://127.0.0.1:{port}", port, token, dirs["root"],
                    str(dirs["runtime"]), process)

    def up():
        assert process.poll() is None, (home / "server.log").read_text()
        try:
            server.api("/api/status")
            return True
        except OSError:
            return False

    try:
        wait_until(up, timeout=90, interval=0.2, what="the Jupyter server to start")
        yield server
    finally:
        try:
            server.api("/api/shutdown", method="POST")
            process.wait(20)
        except Exception:
            process.kill()
            process.wait(10)
        log.close()


@pytest.fixture(scope="session")
def browser(jupyter_server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def write_notebook(path, cells):
    """Write a notebook of code `cells` (source strings) to `path`."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    nb = new_notebook(cells=[new_code_cell(c) for c in cells], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                       "language": "python"}})
    nbformat.write(nb, str(path))

