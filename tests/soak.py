"""Soak: kill threads by the thousand, many at once, and under churn.

    python -m tests.soak            # full size (minutes): what `make soak` runs
    python -m tests.soak --quick    # seconds; tests/core/test_soak.py runs this size
    python -m tests.soak --case crowd --markdown

Each case runs in a fresh interpreter with a deadline (a hang fails the case,
it never hangs the run) and prints one JSON document of numbers. The checks
every case makes are in `check()`; the table printed at the end is the one
kept in docs/reliability.md.

Cases:
  cycles   start+kill cycles across a mix of states, one at a time: every kill
           clean; RSS, thread states, open fds and child processes do not grow
  crowd    8 killer threads kill 100 victims at once: every victim accounted for
  killers  killers kill victims while other killers kill them: no crash, no
           deadlock; whatever is left over can still be killed
  churn    kills while new threads keep starting (idents are recycled): no
           thread that was not asked for is ever touched
"""
import argparse
import json
import platform
import signal
import subprocess
import sys
import textwrap
import threading
import time

from tests import ROOT, python_env

# Runs first in every case's interpreter: the victims and the measurements.
PRELUDE = r'''
import asyncio, gc, json, os, queue, random, select, signal, socket, subprocess, sys
import threading, time
import ipy_threadkill
from ipy_threadkill import ThreadKillError, _blocking
from ipy_threadkill.errors import ThreadKilled
from tests.victims import Victim, children, wait_until


def progress(text):
    """A progress line the runner shows as it comes (stdout is the result)."""
    sys.stderr.write("progress: " + text + "\n")
    sys.stderr.flush()


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def reap_children():
    """Kill and reap whatever children are left (after they have been counted)."""
    for pid in children():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass


def resources():
    gc.collect()
    return {"rss_kb": rss_kb(), "fds": len(os.listdir("/proc/self/fd")),
            "tasks": len(os.listdir("/proc/self/task")),
            "thread_states": len(sys._current_frames()),
            "threads": threading.active_count(), "children": len(children())}


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else None


class State:
    """One kind of runaway: its setup (resources), body, and teardown."""

    def __init__(self, name, body, setup=None, teardown=None, busy=False, kind=None):
        self.name, self.body, self.setup, self.teardown = name, body, setup, teardown
        self.busy = busy            # runs Python: settled once it makes progress
        self.kind = kind            # settled once _blocking says this kind

    def victim(self, name="victim"):
        res = self.setup() if self.setup else None
        victim = Victim(lambda progress: self.body(progress, res), name=name)
        victim.resources, victim.state = res, self
        return victim

    def close(self, victim):
        if self.teardown:
            self.teardown(victim.resources)


def _close_all(objs):
    for obj in objs:
        try:
            obj.close() if hasattr(obj, "close") else os.close(obj)
        except OSError:
            pass


def _swallow(progress, res):
    # With a call in it: on 3.10 `while True: try: x += 1 / except: pass` never
    # lets another thread have the GIL (the loop's only check point is skipped
    # before a `try`), so the whole process freezes, with or without a kill.
    while True:
        try:
            progress[0] += len(progress)
        except BaseException:
            pass


def _spin(progress, res):
    while True:
        progress[0] += 1


def _c_calls(progress, res):
    while True:
        sorted(range(5000), reverse=True)
        progress[0] += 1


def _asyncio(progress, res):
    loop = asyncio.new_event_loop()
    try:
        loop.run_forever()
    finally:
        loop.close()


def _cond(progress, res):
    with res:
        res.wait()


STATES = [
    State("sleep", lambda p, r: time.sleep(3600)),
    State("sleep loop", lambda p, r: [time.sleep(0.05) for _ in iter(int, 1)]),
    State("Event.wait", lambda p, r: threading.Event().wait()),
    State("Queue.get", lambda p, r: queue.Queue().get()),
    State("Condition.wait", _cond, setup=threading.Condition),
    State("Semaphore", lambda p, r: threading.Semaphore(0).acquire()),
    State("socket recv", lambda p, r: r[0].recv(1), setup=socket.socketpair,
          teardown=_close_all),
    State("pipe read", lambda p, r: os.read(r[0], 1), setup=os.pipe, teardown=_close_all),
    State("select", lambda p, r: select.select([r[0]], [], []), setup=socket.socketpair,
          teardown=_close_all),
    State("asyncio loop", _asyncio),
    State("Python loop", _spin, busy=True),
    State("swallowing loop", _swallow, busy=True),
    State("GIL-holding C calls", _c_calls, busy=True),
    # Settled once the child runs and the thread waits for it (a kill while
    # subprocess.run is still starting the child is a race: test_races.py).
    State("subprocess", lambda p, r: subprocess.run(["sleep", "3600"]), kind="child"),
]
BY_NAME = {s.name: s for s in STATES}


def start(state, name="victim"):
    victim = state.victim(name)
    settled = (lambda: victim.progress[0] > 10) if state.busy else None
    if state.kind:
        settled = lambda: _blocking.analyze(victim.thread.ident,
                                            victim.thread.native_id).kind == state.kind
    return victim.start(settled)


def clean(victim, report=None):
    """Whether a killed victim ended in every sense (it has been joined)."""
    died = report is None or report.died
    lock_free = victim.lock.acquire(timeout=0)
    if lock_free:
        victim.lock.release()
    # (Not "its ident is gone from sys._current_frames()": a newer thread may have it.)
    return died and not victim.thread.is_alive() and victim.cleanup_ran and lock_free
'''

CYCLES = r'''
N = int(sys.argv[1])
warmup = max(50, min(500, N // 10))
failures, latency, counts = [], {}, {}
started = time.monotonic()
for i in range(N):
    if i == warmup:
        base = resources()
        base_time = time.monotonic()
    state = STATES[i % len(STATES)]
    victim = start(state)
    try:
        report = ipy_threadkill.kill(victim.thread, timeout=5)
    except ThreadKillError as exc:
        report = None
        failures.append(f"{state.name}: {exc}")
    victim.thread.join(5)
    if report is not None and not clean(victim, report):
        failures.append(f"{state.name}: not clean: {report}")
    state.close(victim)
    if report is not None:
        latency.setdefault(state.name, []).append(report.elapsed)
    counts[state.name] = counts.get(state.name, 0) + 1
    if (i + 1) % max(1, N // 10) == 0:
        progress(f"{i + 1}/{N} cycles, {len(failures)} failures, "
                 f"RSS {rss_kb()} kB, {time.monotonic() - started:.0f} s")
end = resources()
reap_children()
every = [x for v in latency.values() for x in v]
print(json.dumps({
    "cycles": N, "failures": len(failures), "failed": failures[:5],
    "states": len(counts), "seconds": round(time.monotonic() - started, 1),
    "p50_ms": round(percentile(every, 50) * 1000, 2),
    "p99_ms": round(percentile(every, 99) * 1000, 2),
    "max_ms": round(max(every) * 1000, 1),
    "slowest_state": max(latency, key=lambda k: max(latency[k])),
    "measured_cycles": N - warmup,
    "rss_growth_kb": end["rss_kb"] - base["rss_kb"],
    "before": base, "after": end,
}))
'''

CROWD = r'''
VICTIMS, KILLERS = int(sys.argv[1]), int(sys.argv[2])
base = resources()
victims = [start(STATES[i % len(STATES)], name=f"victim-{i}") for i in range(VICTIMS)]
progress(f"{VICTIMS} victims running; {KILLERS} killers start together")
work = queue.Queue()
for v in victims:
    work.put(v)
results, killer_deaths, lock = {}, [], threading.Lock()
go = threading.Barrier(KILLERS + 1)


def killer():
    try:
        go.wait()
        while True:
            try:
                v = work.get_nowait()
            except queue.Empty:
                return
            try:
                # 21 of the 100 run Python: with 8 killers on few cores, one kill can
                # wait seconds for the GIL (the slowest is reported).
                outcome = ipy_threadkill.kill(v.thread, timeout=30)
            except ThreadKillError as exc:
                outcome = exc
            with lock:
                results[v.thread.name] = outcome
    except BaseException as exc:
        killer_deaths.append(repr(exc))
        raise


killers = [threading.Thread(target=killer, name=f"killer-{k}", daemon=True)
           for k in range(KILLERS)]
for k in killers:
    k.start()
t0 = time.monotonic()
go.wait()
for k in killers:
    k.join(60)
seconds = time.monotonic() - t0
for v in victims:
    v.thread.join(5)
unclean = [name for name, r in results.items()
           if isinstance(r, Exception) or not clean(next(v for v in victims if v.thread.name == name), r)]
for v in victims:
    v.state.close(v)
end = resources()
reap_children()
print(json.dumps({
    "victims": VICTIMS, "killers": KILLERS, "accounted": len(results),
    "unclean": len(unclean), "unclean_names": unclean[:5],
    "killer_deaths": killer_deaths[:3], "killers_hung": sum(k.is_alive() for k in killers),
    "seconds": round(seconds, 2),
    "max_ms": round(max(r.elapsed for r in results.values() if not isinstance(r, Exception)) * 1000, 1),
    "threads_left": end["threads"] - base["threads"],
    "children_left": end["children"] - base["children"],
}))
'''

KILLERS = r'''
ROUNDS = int(sys.argv[1])
base = resources()
errors, leftovers, meta_kills, victims_total = [], 0, {"killed": 0, "refused": 0}, 0
kinds = [BY_NAME[n] for n in ("sleep", "Event.wait", "Queue.get", "Python loop",
                              "swallowing loop", "socket recv")]
rng = random.Random(8)
t0 = time.monotonic()
for rnd in range(ROUNDS):
    victims = [start(kinds[i % len(kinds)], name=f"r{rnd}-victim-{i}") for i in range(12)]
    victims_total += len(victims)
    go = threading.Event()

    def kill_all(targets):
        go.wait()
        for t in targets:
            try:
                ipy_threadkill.kill(t, timeout=5)
            except ThreadKillError:
                pass
            except BaseException as exc:
                if not isinstance(exc, ThreadKilled):
                    errors.append(repr(exc))
                raise

    def kill_killer(target, delay):
        go.wait()
        time.sleep(delay)
        try:
            ipy_threadkill.kill(target, timeout=5)
            meta_kills["killed"] += 1
        except ThreadKillError:
            meta_kills["refused"] += 1      # it had finished, or was mid-kill
        except BaseException as exc:
            errors.append(repr(exc))

    killers = [threading.Thread(target=kill_all, args=([v.thread for v in victims[k::4]],),
                                name=f"r{rnd}-killer-{k}", daemon=True) for k in range(4)]
    # Two killers of killers; one of them may itself be killed by the other.
    metas = [threading.Thread(target=kill_killer, args=(killers[(rnd + i) % 4], rng.uniform(0, 0.005)),
                              name=f"r{rnd}-meta-{i}", daemon=True) for i in range(2)]
    everyone = killers + metas
    for t in everyone:
        t.start()
    go.set()
    for t in everyone:
        t.join(60)
    if any(t.is_alive() for t in everyone):
        errors.append(f"round {rnd}: a killer is still running after 60 s")
        break
    for v in victims:
        if v.thread.is_alive():
            leftovers += 1
            try:
                ipy_threadkill.kill(v.thread, timeout=5)
            except ThreadKillError as exc:
                errors.append(f"leftover {v.thread.name}: {exc}")
        v.thread.join(5)
        if not clean(v):
            errors.append(f"{v.thread.name} not clean")
        v.state.close(v)
    if (rnd + 1) % max(1, ROUNDS // 5) == 0:
        progress(f"round {rnd + 1}/{ROUNDS}, {len(errors)} errors")
end = resources()
reap_children()
print(json.dumps({
    "rounds": ROUNDS, "victims": victims_total, "errors": len(errors), "first_errors": errors[:3],
    "killers_killed": meta_kills["killed"], "meta_refused": meta_kills["refused"],
    "leftovers_killed_after": leftovers, "seconds": round(time.monotonic() - t0, 1),
    "threads_left": end["threads"] - base["threads"],
}))
'''

CHURN = r'''
KILLS = int(sys.argv[1])
touched, spawned = [], [0]
stop = threading.Event()


def bystander():
    try:
        time.sleep(0.002)
    except ThreadKilled:
        touched.append(threading.current_thread().name)


def spawner():
    while not stop.is_set():
        t = threading.Thread(target=bystander, name=f"bystander-{spawned[0]}", daemon=True)
        t.start()
        spawned[0] += 1
        t.join()


kinds = [BY_NAME[n] for n in ("sleep", "Event.wait", "Python loop", "socket recv")]
spawners = [threading.Thread(target=spawner, name=f"spawner-{i}", daemon=True) for i in range(2)]
for s in spawners:
    s.start()
failures, t0 = [], time.monotonic()
for i in range(KILLS):
    v = start(kinds[i % len(kinds)], name=f"victim-{i}")
    try:
        ipy_threadkill.kill(v.thread, timeout=5)
    except ThreadKillError as exc:
        failures.append(str(exc))
    v.thread.join(5)
    if not clean(v):
        failures.append(f"{v.thread.name} not clean")
    v.state.close(v)
    if (i + 1) % max(1, KILLS // 5) == 0:
        progress(f"{i + 1}/{KILLS} kills, {len(touched)} bystanders touched")
stop.set()
for s in spawners:
    s.join(10)
reap_children()
print(json.dumps({
    "kills": KILLS, "bystanders_started": spawned[0], "bystanders_touched": len(touched),
    "spawners_alive": sum(s.is_alive() for s in spawners) == 0 or "a spawner was killed",
    "failures": len(failures), "first_failures": failures[:3],
    "seconds": round(time.monotonic() - t0, 1),
}))
'''

# name -> (script, arguments at full size, at --quick size, deadline in s (full, quick))
CASES = {
    "cycles": (CYCLES, ["10000"], ["600"], (1500, 180)),
    "crowd": (CROWD, ["100", "8"], ["40", "8"], (300, 120)),
    "killers": (KILLERS, ["40"], ["4"], (600, 120)),
    "churn": (CHURN, ["1000"], ["150"], (600, 120)),
}


class CaseFailed(AssertionError):
    """A case's interpreter crashed, hung, or printed something unexpected."""


def run_case(name, quick=False, echo=None):
    """Run one case in a fresh interpreter; return its numbers (a dict).

    `echo(line)` receives progress lines as they come. Raises CaseFailed if the
    interpreter outlives its deadline, exits non-zero, or writes to stderr."""
    script, full, short, (deadline_full, deadline_quick) = CASES[name]
    args = short if quick else full
    deadline = deadline_quick if quick else deadline_full
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(script)
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-c", code, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=python_env(), cwd=ROOT)
    stdout, stderr = [], []

    def read_stdout():
        stdout.extend(proc.stdout)

    def read_stderr():
        for line in proc.stderr:
            if line.startswith("progress: "):
                if echo:
                    echo(line[len("progress: "):].rstrip("\n"))
            else:
                stderr.append(line)

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        # faulthandler prints every thread's stack on SIGABRT: say where it hung.
        proc.send_signal(signal.SIGABRT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for reader in readers:
            reader.join(5)
        raise CaseFailed(f"{name}: still running after {deadline} s (deadlock?)\n"
                         + "".join(stderr)[-4000:])
    for reader in readers:
        reader.join(2)       # a child process it leaked may hold the pipes open
    stdout = "".join(stdout)
    if proc.returncode != 0 or stderr:
        raise CaseFailed(f"{name}: exit {proc.returncode}\n{stdout[-2000:]}\n"
                         + "".join(stderr)[-4000:])
    return json.loads(stdout.strip().splitlines()[-1])


def check(name, numbers):
    """The problems in one case's numbers (an empty list when all is well)."""
    problems = []

    def expect(ok, text):
        if not ok:
            problems.append(text)

    if name == "cycles":
        before, after = numbers["before"], numbers["after"]
        expect(numbers["failures"] == 0, f"{numbers['failures']} failed kills: {numbers['failed']}")
        expect(numbers["rss_growth_kb"] < 2048, f"RSS grew {numbers['rss_growth_kb']} kB")
        for key in ("fds", "tasks", "thread_states", "threads", "children"):
            expect(after[key] <= before[key], f"{key}: {before[key]} -> {after[key]}")
    elif name == "crowd":
        expect(numbers["accounted"] == numbers["victims"],
               f"{numbers['victims'] - numbers['accounted']} victims unaccounted for")
        expect(numbers["unclean"] == 0, f"unclean: {numbers['unclean_names']}")
        expect(not numbers["killer_deaths"], f"killers died: {numbers['killer_deaths']}")
        expect(numbers["killers_hung"] == 0, "a killer hung")
        expect(numbers["threads_left"] == 0, f"{numbers['threads_left']} threads left")
        expect(numbers["children_left"] == 0, f"{numbers['children_left']} children left")
    elif name == "killers":
        expect(numbers["errors"] == 0, f"errors: {numbers['first_errors']}")
        expect(numbers["threads_left"] == 0, f"{numbers['threads_left']} threads left")
    elif name == "churn":
        expect(numbers["bystanders_touched"] == 0,
               f"{numbers['bystanders_touched']} threads that were not asked for got "
               "ThreadKilled (a recycled ident)")
        expect(numbers["failures"] == 0, f"failures: {numbers['first_failures']}")
    return problems


def summary(name, numbers):
    """One line of the results table for a case."""
    if name == "cycles":
        return (f"{numbers['cycles']} cycles, {numbers['states']} states, "
                f"{numbers['failures']} failed; kill p50 {numbers['p50_ms']} ms, "
                f"p99 {numbers['p99_ms']} ms, max {numbers['max_ms']} ms "
                f"({numbers['slowest_state']}); RSS {numbers['rss_growth_kb']:+d} kB over "
                f"{numbers['measured_cycles']}; fds {numbers['before']['fds']}->"
                f"{numbers['after']['fds']}, threads {numbers['before']['thread_states']}->"
                f"{numbers['after']['thread_states']}, children "
                f"{numbers['before']['children']}->{numbers['after']['children']}")
    if name == "crowd":
        return (f"{numbers['victims']} victims by {numbers['killers']} killers in "
                f"{numbers['seconds']} s; {numbers['accounted']} accounted for, "
                f"{numbers['unclean']} unclean, {len(numbers['killer_deaths'])} killers died; "
                f"slowest kill {numbers['max_ms']} ms")
    if name == "killers":
        return (f"{numbers['rounds']} rounds, {numbers['victims']} victims, "
                f"{numbers['killers_killed']} killers killed mid-kill; "
                f"{numbers['leftovers_killed_after']} leftovers killed after; "
                f"{numbers['errors']} errors; {numbers['seconds']} s")
    if name == "churn":
        return (f"{numbers['kills']} kills among {numbers['bystanders_started']} short-lived "
                f"threads: {numbers['bystanders_touched']} touched by mistake; "
                f"{numbers['failures']} failed; {numbers['seconds']} s")
    return json.dumps(numbers)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the short size run by the tests")
    parser.add_argument("--case", action="append", choices=list(CASES),
                        help="run only this case (repeatable)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as Markdown rows (for docs/reliability.md)")
    args = parser.parse_args(argv)
    names = args.case or list(CASES)
    version = platform.python_version()
    print(f"soak on CPython {version} ({'quick' if args.quick else 'full'} size)", flush=True)
    rows, failed = [], 0
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}", flush=True)
        start = time.monotonic()
        try:
            numbers = run_case(name, args.quick, echo=lambda line: print(f"    {line}", flush=True))
            problems = check(name, numbers)
            line = summary(name, numbers)
        except CaseFailed as exc:
            problems, line = [str(exc).splitlines()[0]], "crashed or hung"
            print(textwrap.indent(str(exc), "    "), flush=True)
        status = "ok" if not problems else "FAIL"
        failed += bool(problems)
        rows.append((name, status, line, problems, time.monotonic() - start))
        print(f"    {status} in {time.monotonic() - start:.0f} s: {line}", flush=True)
        for problem in problems:
            print(f"    ! {problem}", flush=True)
    print()
    if args.markdown:
        for name, status, line, problems, _ in rows:
            note = f" ({'; '.join(problems)})" if problems else ""
            print(f"| {version} | {name} | {status}{note} | {line} |")
    else:
        width = max(len(n) for n in names)
        print(f"{'case'.ljust(width)}  status  seconds  result")
        for name, status, line, problems, seconds in rows:
            print(f"{name.ljust(width)}  {status.ljust(6)}  {seconds:7.0f}  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
