"""What an unexpired time_limit costs: `with time_limit(60): pass`, next to an
empty `with` of a trivial context manager measured in the same run.

    python benchmarks/time_limit.py [--runs 15] [--loops 20000]

Each run times `loops` blocks of each kind, interleaved so that both see the
same machine; the table gives the median and best run per block, and the ratio
of medians. The limit is measured alone, nested in another limit (its deadline
not the earliest, so its exit leaves it in the heap for later), and from four
threads at once (sharing the one timer's lock; the wall time over all their
blocks). Target (the issue): an
unexpired limit costs <= 20 us a block.
"""
import argparse
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ipy_threadkill import time_limit  # noqa: E402
from ipy_threadkill.timelimit import stop_timer  # noqa: E402

TARGET_US = 20.0


class Trivial:
    """The baseline: a context manager that does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def trivial(loops):
    start = time.perf_counter()
    for _ in range(loops):
        with Trivial():
            pass
    return time.perf_counter() - start


def limited(loops):
    start = time.perf_counter()
    for _ in range(loops):
        with time_limit(60):
            pass
    return time.perf_counter() - start


def nested(loops):
    with time_limit(30):
        start = time.perf_counter()
        for _ in range(loops):
            with time_limit(60):
                pass
        return time.perf_counter() - start


def four_threads(loops):
    """Four threads running `limited` at once, `loops` blocks in all: the wall
    time over all blocks (the GIL runs one thread at a time)."""
    barrier = threading.Barrier(5)
    threads = [threading.Thread(target=lambda: (barrier.wait(), limited(loops // 4)))
               for _ in range(4)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start


KINDS = (("empty with of a trivial context manager", trivial),
         ("with time_limit(60)", limited),
         ("with time_limit(60), nested in another", nested),
         ("with time_limit(60), 4 threads at once", four_threads))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--loops", type=int, default=20000)
    args = parser.parse_args()
    limited(100)                                # starts the timer thread
    per_block = {name: [] for name, _ in KINDS}
    for _ in range(args.runs):
        for name, run in KINDS:
            per_block[name].append(run(args.loops) / args.loops * 1e6)
    baseline = statistics.median(per_block[KINDS[0][0]])
    print(f"CPython {sys.version.split()[0]}, {args.runs} runs of {args.loops} blocks\n")
    print("| block | median us | best us | / trivial (median) |")
    print("|---|---:|---:|---:|")
    worst = 0.0
    for name, _ in KINDS:
        median = statistics.median(per_block[name])
        print(f"| {name} | {median:.2f} | {min(per_block[name]):.2f} | "
              f"{median / baseline:.1f}x |")
        if name != KINDS[0][0]:
            worst = max(worst, median)
    verdict = "met" if worst <= TARGET_US else "NOT met"
    print(f"\ntarget <= {TARGET_US:g} us a block: {verdict} (worst median {worst:.2f} us)")
    stop_timer()


if __name__ == "__main__":
    main()
