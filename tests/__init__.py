"""Shared test helpers.

Every test that kills a thread runs its victim in a fresh interpreter with a
deadline (run_python), so a hang or a crash fails the test instead of CI.
"""
import json
import os
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_env(**extra):
    """The environment for child interpreters: this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_python(code, *, timeout=60, args=(), env=None):
    """Run `code` in a fresh interpreter (this one's executable) and return the
    CompletedProcess. A child that outlives `timeout` is killed and the test fails."""
    try:
        return subprocess.run(
            [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code), *args],
            capture_output=True, text=True, timeout=timeout, env=env or python_env(),
            cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"child interpreter still running after {timeout} s "
                             f"(deadlock?)\nstdout: {exc.stdout}\nstderr: {exc.stderr}")


def run_json(code, *, timeout=60, allow_stderr=False):
    """Run `code`, which prints one JSON document last; check it exited 0 with a
    clean stderr, and return the document."""
    proc = run_python(code, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    if not allow_stderr:
        assert proc.stderr == "", f"unexpected stderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wait_until(predicate, timeout=10.0, interval=0.001, what="condition"):
    """Wait for predicate() to be true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
