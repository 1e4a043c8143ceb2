"""What a snapshot costs: threads() at 10, 100 and 1,000 threads, and the origin hook.

    python benchmarks/snapshot.py            # prints a Markdown table

The floor is what any thread list must pay: threading.enumerate() plus
sys._current_frames(), measured in the same run; each figure is also given as
its ratio to that floor. Threads are idle in a mix a notebook shows (a third
each: Event.wait, time.sleep, reading a pipe); "all sleeping" is the costliest
mix, since every thread needs its system call read from /proc (a Condition
wait is told from the frames alone). "threads()" is the public function called
again (it keeps one module-level Snapshotter); "refresh" is a live view's own
Snapshotter taking its next snapshot; "first" is a new Snapshotter, which also
reads every thread's start time. Each case runs in a process of its own: the
sleeping threads of one would otherwise stay on in the next. "its CPU" is the refresh's own CPU time
(thread_time): on a shared machine the wall time also counts waiting for a CPU.
Targets (the issue): threads() <= 1 ms at 100 threads and <= 10 ms at 1,000;
at 1,000 threads a refresh <= 5 ms and a first snapshot <= 30 ms.
"""
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ipy_threadkill  # noqa: E402
from ipy_threadkill import _origin  # noqa: E402
from ipy_threadkill.snapshot import Snapshotter  # noqa: E402


def start_threads(count, mix):
    """`count` idle daemon threads; returns a function that ends them."""
    stop = threading.Event()
    r, w = os.pipe()
    kinds = {"mixed": ("event", "sleep", "pipe"), "sleeping": ("sleep",)}[mix]

    def sleeper():
        while not stop.is_set():
            time.sleep(3600)

    def reader():
        os.read(r, 1)

    targets = {"event": stop.wait, "sleep": sleeper, "pipe": reader}
    threads = [threading.Thread(target=targets[kinds[i % len(kinds)]], daemon=True)
               for i in range(count)]
    for t in threads:
        t.start()
    readers = sum(1 for i in range(count) if kinds[i % len(kinds)] == "pipe")

    def settled():
        take = Snapshotter().take
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            busy = [i for i in take() if i.name != "MainThread"
                    and i.state_kind not in ("condition", "sleep", "io-wait")]
            if not busy:
                return
            time.sleep(0.01)
        raise RuntimeError("threads did not settle")

    def end():
        stop.set()
        os.write(w, b"x" * readers)
        os.close(w)
        # Sleeping threads are daemons: the process exit ends them.
    settled()
    return end


def timed(fn, repeats):
    """(median, best) wall time of fn() and its median CPU time, in seconds."""
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.thread_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def floor():
    threading.enumerate()
    sys._current_frames()


def snapshot_costs(count, mix, repeats):
    """{figure: seconds} at `count` threads of `mix`."""
    end = start_threads(count, mix)
    try:
        costs = {"floor": timed(floor, repeats * 5)[0]}
        ipy_threadkill.threads()
        costs["threads"], costs["threads best"], _ = timed(ipy_threadkill.threads, repeats)
        steady = Snapshotter()
        steady.take()
        costs["refresh"], costs["refresh best"], costs["refresh cpu"] = timed(steady.take,
                                                                              repeats)
        costs["first"] = timed(lambda: Snapshotter().take(), max(3, repeats // 3))[0]
    finally:
        end()
    return costs


def origin_costs(repeats=200_000):
    """(µs the hook adds to one Thread.start, µs of a start + join with it, without it)."""
    # The wrapper install() builds, around a start() that does nothing: its own cost.
    _origin.uninstall()
    plain = threading.Thread.start
    noop = lambda self: None  # noqa: E731
    threading.Thread.start = noop
    _origin.install()
    hooked = threading.Thread.start
    _origin.uninstall()
    threading.Thread.start = plain
    _origin.install()

    thread = threading.Thread()
    t0 = time.perf_counter()
    for _ in range(repeats):
        hooked(thread)
    with_hook = (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        noop(thread)
    without = (time.perf_counter() - t0) / repeats

    def cycle():
        t = threading.Thread(target=int)
        t.start()
        t.join()
    hooked_med = timed(cycle, 2000)[0]
    _origin.uninstall()
    try:
        plain_med = timed(cycle, 2000)[0]
    finally:
        _origin.install()
    return (with_hook - without) * 1e6, hooked_med * 1e6, plain_med * 1e6


def case_row(count, mix, repeats):
    """The table row of one case, measured in this process."""
    c = snapshot_costs(count, mix, repeats)
    fl = c["floor"]
    return (f"| {count} | {mix} | {fl * 1e3:.3f} | "
            f"{c['threads'] * 1e3:.2f} / {c['threads best'] * 1e3:.2f} | "
            f"{c['threads'] / fl:.0f}x | "
            f"{c['refresh'] * 1e3:.2f} / {c['refresh best'] * 1e3:.2f} | "
            f"{c['refresh cpu'] * 1e3:.2f} | {c['refresh'] / fl:.0f}x | "
            f"{c['first'] * 1e3:.1f} | {c['first'] / fl:.0f}x |")


def main():
    if sys.argv[1:2] == ["--case"]:
        count, mix, repeats = sys.argv[2:5]
        print(case_row(int(count), mix, int(repeats)))
        return
    print(f"CPython {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| threads | mix | floor (ms) | threads() (ms, median / best) | ratio | "
          "refresh (ms, median / best) | its CPU (ms) | ratio | first (ms) | ratio |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count, mix, repeats in ((10, "mixed", 60), (100, "mixed", 40), (1000, "mixed", 15),
                                (1000, "sleeping", 15)):
        print(subprocess.run([sys.executable, os.path.abspath(__file__), "--case", str(count),
                              mix, str(repeats)], check=True, capture_output=True, text=True,
                             timeout=600).stdout.strip(), flush=True)
    hook, hooked, plain = origin_costs()
    print(f"\nOrigin hook: {hook:.2f} µs added to each Thread.start() "
          f"(a start + join costs {plain:.0f} µs without the hook, {hooked:.0f} µs with it).")


if __name__ == "__main__":
    main()
