"""Does a time limit stop the work, or only give the caller back control?

    python benchmarks/time_limit_compare.py [--limit 0.5] [--markdown]

A worker thread runs a block under a 0.5 s limit in each blocked state, with
each approach: ipy_threadkill.time_limit, func-timeout, stopit, timeout-decorator,
wrapt-timeout-decorator (installed from the package index into a venv of their
own, cached) and signal.alarm. Measured per case, in a child interpreter with a
deadline: when the caller got control back, and whether the block's work really
stopped (its `finally` ran within 0.5 s after that; a subprocess's child is gone).
"""
import argparse
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("IPY_THREADKILL_CACHE", "/var/cache/ipy_threadkill")
PACKAGES = ("func-timeout", "stopit", "timeout-decorator", "wrapt-timeout-decorator")

STATES = {
    "time.sleep": "time.sleep(30)",
    "socket recv": "a, b = socket.socketpair()\nholder.append(b)\na.recv(1)",
    "pipe read": "r, w = os.pipe()\nholder.append(w)\nos.read(r, 1)",
    "select": "r, w = os.pipe()\nholder.append(w)\nselect.select([r], [], [], 30)",
    "Event.wait": "threading.Event().wait(30)",
    "Queue.get": "queue.Queue().get(timeout=30)",
    "subprocess wait": "p = subprocess.Popen(['sleep', '30'])\nchildren.append(p.pid)\np.wait()",
    "swallowing loop": "while True:\n    try:\n        time.sleep(0.05)\n"
                       "    except BaseException:\n        pass",
    "Python loop": "while True:\n    progress[0] += 1",
}

# approach -> code that runs work() under a limit of LIMIT seconds in this thread
APPROACHES = {
    "ipy_threadkill": "import ipy_threadkill\n"
                      "with ipy_threadkill.time_limit(LIMIT):\n    work()",
    "func-timeout": "import func_timeout\nfunc_timeout.func_timeout(LIMIT, work)",
    "stopit": "import stopit\nwith stopit.ThreadingTimeout(LIMIT):\n    work()",
    "timeout-decorator": "import timeout_decorator\ntimeout_decorator.timeout(LIMIT)(work)()",
    "wrapt-timeout-decorator": "import wrapt_timeout_decorator\n"
                               "wrapt_timeout_decorator.timeout(LIMIT)(work)()",
    "signal.alarm": "import signal\n"
                    "def expired(*_):\n    raise TimeoutError\n"
                    "signal.signal(signal.SIGALRM, expired)\nsignal.setitimer(signal.ITIMER_REAL, LIMIT)\n"
                    "work()",
}

CHILD = """
import json, os, queue, select, signal, socket, subprocess, sys, threading, time
LIMIT = {limit}
holder, children, progress = [], [], [0]
stopped = threading.Event()

def work():
    try:
{state}
    finally:
        stopped.set()

result = {{}}
def caller():
    began = time.monotonic()
    try:
{approach}
        result["outcome"] = "returned"
    except BaseException as exc:
        result["outcome"] = type(exc).__name__
    result["returned"] = time.monotonic() - began

worker = threading.Thread(target=caller, daemon=True)
worker.start()
worker.join(LIMIT + 5)
if "returned" not in result:
    result["outcome"] = "no return"
result["stopped"] = stopped.wait(0.5)
result["children_left"] = sum(os.path.exists(f"/proc/{{pid}}") and
                              open(f"/proc/{{pid}}/stat").read().split()[2] != "Z"
                              for pid in children)
for pid in children:
    try:
        os.kill(pid, 9)
    except OSError:
        pass
print(json.dumps(result), flush=True)
os._exit(0)
"""


def venv_python():
    """A venv of this interpreter's version with the compared packages (cached)."""
    where = os.path.join(CACHE, f"time-limit-compare-{sys.version_info[0]}.{sys.version_info[1]}")
    python = os.path.join(where, "bin", "python")
    stamp = os.path.join(where, ".installed")
    if not os.path.exists(stamp):
        subprocess.run([sys.executable, "-m", "venv", where], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *PACKAGES], check=True)
        open(stamp, "w").close()
    return python


def run(python, approach, state, limit):
    code = CHILD.format(limit=limit, state=textwrap.indent(STATES[state], " " * 8),
                        approach=textwrap.indent(APPROACHES[approach], " " * 8))
    env = dict(os.environ, PYTHONPATH=ROOT)
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True,
                              timeout=limit + 30, env=env, cwd=ROOT)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return {"outcome": "the test process hung"}


def cell(r):
    if r["outcome"] == "no return":
        return "no return"
    if "returned" not in r:
        return r["outcome"]
    when = f"{r['returned']:.2f} s"
    if r["outcome"] not in ("returned", "TimeLimitExceeded", "FunctionTimedOut",
                            "TimeoutError") and r["returned"] < 0.05:
        return f"refused ({r['outcome']})"
    if r["outcome"] == "returned" and r["returned"] >= 5:
        return "ran to the end"
    stopped = r["stopped"] and not r.get("children_left")
    return f"stopped, {when}" if stopped else (
        f"returns {when}, work runs on" + (", child left" if r.get("children_left") else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=0.5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    python = venv_python()
    results = {(a, s): run(python, a, s, args.limit) for s in STATES for a in APPROACHES}
    if not args.markdown:
        print(json.dumps({f"{a} / {s}": r for (a, s), r in results.items()}, indent=1))
        return
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
    print(f"CPython {version}, a worker thread, limit {args.limit:g} s\n")
    print("| state | " + " | ".join(APPROACHES) + " |")
    print("|---|" + "---|" * len(APPROACHES))
    for state in STATES:
        print(f"| {state} | " + " | ".join(cell(results[a, state]) for a in APPROACHES) + " |")
    stopped = {a: sum(cell(results[a, s]).startswith("stopped") for s in STATES)
               for a in APPROACHES}
    print("| **work stopped** | " + " | ".join(f"{stopped[a]}/{len(STATES)}" for a in APPROACHES)
          + " |")


if __name__ == "__main__":
    main()
