"""A real ipykernel for tests: started with jupyter_client on this interpreter.

    with Kernel() as kernel:
        result = kernel.execute("x = 1; print(x)")
        assert result.ok and result.stdout == "1\\n"
        kernel.interrupt()                 # SIGINT, as Jupyter's Interrupt button

Every wait has a deadline, so a hung kernel fails the test instead of CI. The
kernel runs this checkout (PYTHONPATH) and keeps IPython's and Jupyter's state
in a temporary directory, never in the user's home.
"""
import json
import os
import queue
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from tests import python_env

_SPEC = "ipy-threadkill-test"


@dataclass
class Result:
    """What one execute request produced."""

    status: str = ""                 # the execute_reply's: "ok", "error", "aborted"
    execution_count: int = None      # N of In[N]
    stdout: str = ""
    stderr: str = ""
    error: dict = None               # {"ename", "evalue", "traceback"} if it raised
    outputs: list = field(default_factory=list)   # display_data / execute_result content

    @property
    def ok(self):
        return self.status == "ok" and self.error is None

    def __str__(self):
        error = f"\nerror: {self.error['ename']}: {self.error['evalue']}" if self.error else ""
        return f"status {self.status}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}{error}"


class Kernel:
    """One ipykernel process and a client connected to it; a context manager."""

    def __init__(self, *, startup_timeout=60, env=None):
        self.startup_timeout = startup_timeout
        self.extra_env = env or {}
        self.dir = None
        self.km = None
        self.kc = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:        # a kernel that never answered must not outlive the test
            self.shutdown()
            raise
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def start(self):
        """Start the kernel and wait until it answers."""
        self.dir = tempfile.mkdtemp(prefix="ipy-threadkill-kernel-")
        spec_dir = os.path.join(self.dir, "kernels", _SPEC)
        os.makedirs(spec_dir)
        # A spec of our own, so the kernel runs this interpreter whatever is installed.
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher",
                                "-f", "{connection_file}"],
                       "display_name": "ipy_threadkill tests", "language": "python"}, f)
        env = python_env(IPYTHONDIR=os.path.join(self.dir, "ipython"),
                         JUPYTER_RUNTIME_DIR=os.path.join(self.dir, "runtime"),
                         JUPYTER_CONFIG_DIR=os.path.join(self.dir, "config"),
                         JUPYTER_DATA_DIR=os.path.join(self.dir, "data"),
                         **self.extra_env)
        self.km = KernelManager(
            kernel_name=_SPEC,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[os.path.dirname(spec_dir)]),
            connection_file=os.path.join(self.dir, "connection.json"))
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=self.startup_timeout)

    def execute(self, code, *, timeout=30, cell_id=None):
        """Run `code` as a cell; collect its output until the kernel is idle again.
        Raises AssertionError if that takes longer than `timeout` seconds.
        `cell_id`: the id a notebook frontend names the cell by (metadata.cellId,
        as JupyterLab and Notebook 7 send it)."""
        deadline = time.monotonic() + timeout
        if cell_id is None:
            msg_id = self.kc.execute(code, store_history=True)
        else:
            content = dict(code=code, silent=False, store_history=True,
                           user_expressions={}, allow_stdin=False, stop_on_error=True)
            msg = self.kc.session.msg("execute_request", content,
                                      metadata={"cellId": cell_id})
            self.kc.shell_channel.send(msg)
            msg_id = msg["header"]["msg_id"]
        result = Result()
        while True:
            msg = self._next(self.kc.get_iopub_msg, deadline, code)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("display_data", "execute_result"):
                result.outputs.append(content)
            elif kind == "error":
                result.error = dict(content)
            elif kind == "status" and content["execution_state"] == "idle":
                break
        while True:
            reply = self._next(self.kc.get_shell_msg, deadline, code)
            if reply["parent_header"].get("msg_id") == msg_id:
                result.status = reply["content"]["status"]
                result.execution_count = reply["content"].get("execution_count")
                return result

    def start_execute(self, code, *, stop_on_error=True):
        """Send `code` without waiting (e.g. a cell to interrupt); returns its msg_id.
        With stop_on_error=False an error in it does not abort the requests after it
        (ipykernel aborts those that arrive just after a failed cell)."""
        return self.kc.execute(code, stop_on_error=stop_on_error)

    def wait_reply(self, msg_id, *, timeout=30):
        """The execute_reply content for `msg_id`, waiting at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(self.kc.get_shell_msg, deadline, msg_id)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]

    def wait_for_stdout(self, msg_id, text, *, timeout=30):
        """Wait until the cell `msg_id` has printed `text` (e.g. "it has started")."""
        deadline = time.monotonic() + timeout
        printed = ""
        while text not in printed:
            msg = self._next(self.kc.get_iopub_msg, deadline, text)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                printed += msg["content"]["text"]

    def complete(self, code, *, timeout=30):
        """The kernel's tab completions at the end of `code`."""
        deadline = time.monotonic() + timeout
        msg_id = self.kc.complete(code, len(code))
        while True:
            reply = self._next(self.kc.get_shell_msg, deadline, code)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]["matches"]

    def interrupt(self):
        """What Jupyter's Interrupt button does."""
        self.km.interrupt_kernel()

    def is_alive(self):
        return self.km.is_alive()

    def shutdown(self):
        """Stop the client and the kernel (at once: tests leave nothing worth saving)."""
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None and self.km.has_kernel:
            self.km.shutdown_kernel(now=True)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.kc = self.km = self.dir = None

    @staticmethod
    def _next(get, deadline, what):
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise queue.Empty
            return get(timeout=remaining)
        except queue.Empty:
            raise AssertionError(f"kernel did not answer in time: {what!r}") from None
