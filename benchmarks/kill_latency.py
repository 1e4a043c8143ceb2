"""Kill latency per thread state: ipy_threadkill.kill() against the plain
asynchronous-exception recipe (ctypes PyThreadState_SetAsyncExc), in one run.

Time is measured from the kill request to the OS thread being gone
(/proc/self/task/<tid> vanished). Each state runs in a fresh interpreter.
The recipe gets the same deadline; where it never ends the thread, it is
reported as such (the ratio is then a lower bound).

    python benchmarks/kill_latency.py [--runs 30] [--markdown]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE_DEADLINE = 1.0

STATES = {
    "CPU loop": ("", "while True:\n    progress[0] += 1"),
    "time.sleep": ("import time", "time.sleep(3600)"),
    "socket recv": ("import socket\na, b = socket.socketpair()", "a.recv(10)"),
    "pipe read": ("import os\nr, w = os.pipe()", "os.read(r, 10)"),
    "Event.wait": ("import threading\nev = threading.Event()", "ev.wait()"),
    "Queue.get": ("import queue\nq = queue.Queue()", "q.get()"),
    # The child must not hold our stdout pipe: a recipe that never ends the
    # thread leaves it to the clean-up kill.
    "subprocess.run (child included)": ("import subprocess",
                                        "subprocess.run(['sleep', '60'], stdout=subprocess.DEVNULL)"),
    "shell running a program (tree included)": (
        "import subprocess",
        "subprocess.run('sleep 60; true', shell=True, stdout=subprocess.DEVNULL)"),
    "swallowing loop": ("", "while True:\n    try:\n        progress[0] += len(progress)\n"
                            "    except BaseException:\n        pass"),
}

CHILD = """
import ctypes, json, os, sys, threading, time
import ipy_threadkill
from tests.victims import Victim
{setup}
def body(progress):
{body}

def gone(tid):
    return not os.path.exists(f'/proc/self/task/{{tid}}')

def recipe(thread):
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                               ctypes.py_object(SystemExit))
    deadline = time.perf_counter() + {deadline}
    while not gone(thread.native_id):
        if time.perf_counter() > deadline:
            return False
        time.sleep(20e-6)
    return True

def ours(thread):
    ipy_threadkill.kill(thread)
    while not gone(thread.native_id):
        time.sleep(20e-6)
    return True

results = {{'ours': [], 'recipe': [], 'recipe_failed': 0}}
for method in ('ours', 'recipe'):
    for _ in range({runs}):
        victim = Victim(body).start()
        start = time.perf_counter()
        ended = (ours if method == 'ours' else recipe)(victim.thread)
        elapsed = time.perf_counter() - start
        if ended:
            results[method].append(elapsed)
        else:
            results['recipe_failed'] += 1
            ipy_threadkill.kill(victim.thread)     # clean up what the recipe left
print(json.dumps(results))
"""


def measure(setup, body, runs):
    code = CHILD.format(setup=setup, body=textwrap.indent(body, "    "), runs=runs,
                        deadline=RECIPE_DEADLINE)
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def p95(values):
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def ms(seconds):
    return f"{seconds * 1000:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print(f"CPython {sys.version.split()[0]}, {args.runs} kills per state and method\n")
    print("| state | ours median ms | ours p95 ms | recipe median ms | recipe ended | "
          "recipe/ours (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (setup, body) in STATES.items():
        r = measure(setup, body, args.runs)
        ours_median = statistics.median(r["ours"])
        ended = len(r["recipe"])
        if ended:
            recipe_median = statistics.median(r["recipe"])
            ratio = f"{recipe_median / ours_median:.1f}x"
            recipe_text = ms(recipe_median)
        else:
            recipe_text = f"never (> {RECIPE_DEADLINE * 1000:.0f})"
            ratio = f"> {RECIPE_DEADLINE / ours_median:.0f}x"
        print(f"| {name} | {ms(ours_median)} | {ms(p95(r['ours']))} | {recipe_text} | "
              f"{ended}/{args.runs} | {ratio} |")


if __name__ == "__main__":
    main()
