"""What an open thread table costs the kernel.

    python benchmarks/widget.py [--threads 100] [--seconds 10] [--rounds 3]

With N idle threads (waiting on Events, as pollers and workers mostly are):
- the refresher thread's own CPU time, per refresh and as a share of one core;
- how much main-thread work (a pure-Python loop, as in a user's cell) gets done
  with the table open against the same process without it, in the same run,
  alternating the order, next to a control (two runs without the table) that
  shows how far identical runs differ on the machine at the time;
- how many messages the table would send a frontend per second while nothing
  changes (every state update and every newly opened widget, counted at
  ipywidgets' own exits).
"""
import argparse
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ipywidgets  # noqa: E402

from ipy_threadkill import widget as W  # noqa: E402

sent = {"messages": 0}
_send, _open = ipywidgets.Widget._send, ipywidgets.Widget.open


def _counting_send(self, msg, buffers=None):
    sent["messages"] += 1
    return _send(self, msg, buffers)


def _counting_open(self):
    sent["messages"] += 1
    return _open(self)


def _work(seconds):
    """(iterations of a pure-Python loop in `seconds` of wall time, and the main
    thread's CPU seconds meanwhile): work per CPU second is immune to other
    processes taking the CPUs, work per wall second is what the user feels."""
    count, end, cpu = 0, time.perf_counter() + seconds, time.thread_time()
    while time.perf_counter() < end:
        for _ in range(1000):
            count += 1
    return count, time.thread_time() - cpu


def _thread_cpu(thread):
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _with_table(args, stop, totals):
    """Main-thread work done with a table open; adds the table's costs to `totals`."""
    table = W.ThreadTable(refresh_interval=args.interval)
    refresher = table._refresher
    refresh, marks = table.refresh, []

    def timed_refresh():
        began = time.perf_counter()
        refresh()
        marks.append((began, time.perf_counter() - began, sent["messages"]))

    table.refresh = timed_refresh
    while len(marks) < 2:               # the rows exist and every CPU % is known
        stop.wait(0.05)
    cpu0, began, first = _thread_cpu(refresher), time.perf_counter(), len(marks)
    work = _work(args.seconds)
    totals["cpu"] += _thread_cpu(refresher) - cpu0
    totals["wall"] += time.perf_counter() - began
    totals["refreshes"] += len(marks) - first
    totals["longest"] = max([totals["longest"]] + [m[1] for m in marks[first:]])
    # The busy main thread was a genuine change (its CPU %, its line, then the
    # order of the rows), so idle messages are counted apart: the main thread waits
    # on one line, and the window opens once its last CPU % has been sent.
    quiet = time.perf_counter()
    stop.wait(args.seconds + 4 * args.interval)
    window = [m for m in marks if m[0] > quiet][3:]
    totals["messages"] += window[-1][2] - window[0][2]
    totals["idle"] += window[-1][0] - window[0][0]
    table.close()
    return work


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="per measurement (at most 20: a round must stay under a minute)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0, help="refresh interval")
    args = parser.parse_args(argv)

    stop = threading.Event()
    ipywidgets.Widget._send, ipywidgets.Widget.open = _counting_send, _counting_open

    without, with_table, control = [], [], []
    totals = {"cpu": 0.0, "refreshes": 0, "wall": 0.0, "messages": 0, "idle": 0.0,
              "longest": 0.0}
    for round_ in range(args.rounds):
        # Fresh threads each round: a round stays under a minute, so no row's age
        # steps up (from "< 1 min" to "> 1 min", a real change) while it runs.
        done = threading.Event()
        for i in range(args.threads):
            threading.Thread(target=done.wait, name=f"idle-{i}", daemon=True).start()
        # Alternate the order (ABBA...) so that a drift in the machine's load
        # does not always land on the same side.
        # A second run without the table is the control: how far two identical
        # runs differ on this machine right now.
        for step in (("without", "with", "control") if round_ % 2 == 0
                     else ("control", "with", "without")):
            if step == "with":
                with_table.append(_with_table(args, stop, totals))
            else:
                (without if step == "without" else control).append(_work(args.seconds))
        done.set()

    stop.set()
    ratios = sorted(w[0] / o[0] for w, o in zip(with_table, without))
    per_cpu = sorted((w[0] / w[1]) / (o[0] / o[1]) for w, o in zip(with_table, without))
    noise = sorted(c[0] / o[0] for c, o in zip(control, without))
    print(f"threads: {args.threads} idle + main; refresh every {args.interval:g} s; "
          f"{args.rounds} rounds of {args.seconds:g} s")
    print(f"refresher CPU: {totals['cpu'] / max(totals['refreshes'], 1) * 1000:.1f} ms per "
          f"refresh, {totals['cpu'] / totals['wall'] * 100:.2f} % of one core; longest "
          f"refresh {totals['longest'] * 1000:.0f} ms of wall time while the main thread worked")
    print(f"main-thread work with the table open / without (1 = no effect), per wall "
          f"second: median {statistics.median(ratios):.3f} (rounds: "
          f"{', '.join(f'{r:.3f}' for r in ratios)}); per CPU second: median "
          f"{statistics.median(per_cpu):.3f} (rounds: "
          f"{', '.join(f'{r:.3f}' for r in per_cpu)})")
    print(f"control, both without the table, per wall second: median "
          f"{statistics.median(noise):.3f} (rounds: {', '.join(f'{r:.3f}' for r in noise)}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"messages per second while idle: {totals['messages'] / totals['idle']:.2f} "
          f"({totals['messages']} in {totals['idle']:.0f} s)")


if __name__ == "__main__":
    main()
