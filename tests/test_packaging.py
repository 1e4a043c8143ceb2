"""The sdist a user would get: it builds with what pyproject.toml declares,
carries every C source, installs into a fresh venv, and that install kills.

Each step runs in its own process with a deadline. The venv's pip uses the
package index this machine is configured with (build isolation installs the
declared build requirements from it); without an index the test is skipped.
About a minute: a venv, two isolated build environments and a C compile.
"""
import glob
import json
import os
import subprocess
import sys
import tarfile

import pytest

from tests import ROOT

pytestmark = pytest.mark.timeout(900)

STEP_TIMEOUT = 300

KILL = """
import json, threading
import ipy_threadkill

entered, cleanup = threading.Event(), []
def loop():
    try:
        entered.set()
        while True:
            pass
    finally:
        cleanup.append(True)

thread = threading.Thread(target=loop, daemon=True)
thread.start()
assert entered.wait(10), "the thread did not start"
report = ipy_threadkill.kill(thread)
thread.join(5)
print(json.dumps({"module": ipy_threadkill.__file__, "died": report.died,
                  "alive": thread.is_alive(), "finally_ran": bool(cleanup)}))
"""


def run(args, cwd, timeout=STEP_TIMEOUT):
    """Run a step outside the checkout (no PYTHONPATH into it); fail if it outlives `timeout`."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    try:
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{args[1:4]} still running after {timeout} s\n"
                             f"stdout: {exc.stdout}\nstderr: {exc.stderr}")
    return proc


def check(proc):
    """The step's result, after checking it succeeded."""
    assert proc.returncode == 0, (f"{proc.args} exited {proc.returncode}\n"
                                  f"{proc.stdout}\n{proc.stderr}")
    return proc


def test_the_sdist_installs_into_a_fresh_venv_and_kills(tmp_path):
    venv = tmp_path / "venv"
    check(run([sys.executable, "-m", "venv", str(venv)], tmp_path))
    python = str(venv / "bin" / "python")

    # Build isolation needs the index; say so rather than fail when there is none.
    probe = run([python, "-m", "pip", "download", "--no-deps", "-q",
                 "--dest", str(tmp_path / "probe"), "setuptools>=77"], tmp_path)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["(no output)"])[-1]
        pytest.skip(f"no package index reachable for the build requirements: {last}")

    dist = tmp_path / "dist"
    built = check(run([sys.executable, "-m", "build", "--sdist", "--outdir", str(dist), ROOT],
                      tmp_path))
    assert "deprecat" not in (built.stdout + built.stderr).lower(), built.stdout + built.stderr
    (sdist,) = dist.glob("*.tar.gz")

    with tarfile.open(sdist) as archive:
        shipped = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    sources = {os.path.relpath(path, ROOT)
               for pattern in ("*.c", "*.h")
               for path in glob.glob(os.path.join(ROOT, "ipy_threadkill", "**", pattern),
                                     recursive=True)}
    assert sources, "no C sources found in the checkout"
    sources.add("LICENSE")          # BSD-3-Clause: the notice travels with the code
    assert sources <= shipped, f"missing from the sdist: {sorted(sources - shipped)}"

    check(run([python, "-m", "pip", "install", "-q", str(sdist)], tmp_path))

    # -I: the installed package, not a copy on the path or in the working directory.
    outcome = json.loads(check(run([python, "-I", "-c", KILL], tmp_path, timeout=60)).stdout)
    assert outcome["module"].startswith(str(venv)), outcome
    assert outcome["died"] and not outcome["alive"], outcome
    assert outcome["finally_ran"], outcome
