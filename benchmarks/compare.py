"""Before and after, in one run: this checkout against an earlier revision.

    python benchmarks/compare.py REV [--rounds 3] [--runs 30] [--suite]

REV is checked out into a temporary git worktree and its C core built in place
with this interpreter. The kill-latency and snapshot benchmarks of each tree then
run in turns (before, after, before, after, …), so that a machine that gets busier
during the run weighs on both sides alike; each figure is the median over the
rounds. `--suite` also times `pytest tests/core` in each tree, once each. A
refactor should leave every ratio within noise (a shared 2-core machine moves
single figures by ±20 %).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW = re.compile(r"^\|(.+)\|\s*$")


def build(tree):
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace",
                    "-t", os.path.join(tree, "build", "compare")],
                   cwd=tree, check=True, capture_output=True)


def run(tree, script, *args):
    proc = subprocess.run([sys.executable, os.path.join(tree, "benchmarks", script), *args],
                          cwd=tree, capture_output=True, text=True, timeout=1800,
                          env=dict(os.environ, PYTHONPATH=tree))
    if proc.returncode:
        raise SystemExit(f"{script} failed in {tree}:\n{proc.stderr}")
    return proc.stdout


def table(text, key_columns, value_column):
    """{row key: float} from a benchmark's Markdown table ("0.35" or "0.35 / 0.30")."""
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if not match:
            continue
        cells = [c.strip() for c in match.group(1).split("|")]
        try:
            value = float(cells[value_column].split("/")[0])
        except (ValueError, IndexError):
            continue                    # the header and its rule
        rows[" · ".join(cells[i] for i in key_columns)] = value
    return rows


BENCHMARKS = (
    # (title, script, extra args, key columns, value column)
    ("kill latency, median ms", "kill_latency.py", ("--runs",), (0,), 1),
    ("snapshot, median ms", "snapshot.py", (), (0, 1), 3),
)


def suite_seconds(tree):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/core"], cwd=tree, capture_output=True, timeout=3600,
                   env=dict(os.environ, PYTHONPATH=tree))
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=30, help="kills per state and round")
    parser.add_argument("--suite", action="store_true", help="also time tests/core")
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="ipy_threadkill-before-")
    subprocess.run(["git", "worktree", "add", "-q", "--detach", base, args.rev],
                   cwd=ROOT, check=True)
    try:
        trees = {"before": base, "after": ROOT}
        for tree in trees.values():
            build(tree)
        samples = {}
        for _ in range(args.rounds):
            for side, tree in trees.items():
                for title, script, extra, keys, column in BENCHMARKS:
                    extra_args = [a for flag in extra for a in (flag, str(args.runs))]
                    for key, value in table(run(tree, script, *extra_args), keys,
                                            column).items():
                        samples.setdefault((title, key), {}).setdefault(side, []).append(value)
        rev = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
        print(f"CPython {sys.version.split()[0]}, before = {rev}, after = this checkout, "
              f"{args.rounds} rounds in turns\n")
        print("| benchmark | case | before | after | after/before |")
        print("|---|---|---:|---:|---:|")
        for (title, key), sides in samples.items():
            if len(sides) < 2:
                continue                # a case only one side measures
            before, after = (statistics.median(sides[s]) for s in ("before", "after"))
            print(f"| {title} | {key} | {before:.2f} | {after:.2f} | "
                  f"{after / before if before else float('nan'):.2f} |")
        if args.suite:
            times = {side: suite_seconds(tree) for side, tree in trees.items()}
            print(f"\ntests/core: before {times['before']:.0f} s, after {times['after']:.0f} s")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", base], cwd=ROOT)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
