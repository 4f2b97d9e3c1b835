"""Benchmark: importing a flat file with ``dataplat dataset import``, against its peers.

For each size (default 2 and 10 million rows) and each dialect (US: ``,`` separated, ``.``
decimals, ISO dates; EU: ``;`` separated, ``,`` decimals, ``.`` thousands, day-first
dates) of an 8-column CSV (see ``benchdata.py``), this times, best of ``--repeat``:

  (a) ``dataplat dataset import FILE --name N``: the real CLI, end to end (detection, the
      copy of the raw file, parsing into Parquet, profile, plots, HTML report, catalog and
      Dagster run records), in a fresh temporary workspace;
  (b) the same with ``--no-profile``;
  (c) pyarrow alone: ``pyarrow.csv.read_csv`` + ``pyarrow.parquet.write_table`` with the
      dialect and the column types given by hand (``workers/arrow_csv.py``);
  (d) pandas alone: ``read_csv`` with ``sep``, ``decimal``, ``thousands`` and the date
      format given by hand, + ``to_parquet`` (``workers/pandas_csv.py``);
  (e) the CLI import of a 10-row file: the fixed cost of (a).

With ``--baseline CHECKOUT`` (another checkout of this repository, for example
``git worktree add /tmp/base HEAD``, run with this venv's Python), (a) and (b) are also
measured for that checkout, in a workspace of its own, taking turns with the others: the
before and after of a change, in one run.

Every contender runs as a subprocess of this script, so all of them pay interpreter
start-up and imports; (c) and (d) know the dialect, (a) and (b) detect it. Peak RSS is the
``ru_maxrss`` that ``os.wait4`` reports for the child (its whole process tree); the CLI
executes the import in its own process, so its RSS is the import's.

The machine may be shared and noisy: the figures that matter are the ratios between
contenders measured in the same run, printed with their targets (PASS/MISS). No
timing is asserted anywhere else.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import benchdata

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DATAPLAT = BIN / "dataplat"
PROJECT = "bench"
DEFAULT_SIZES = (2_000_000, 10_000_000)
QUICK_SIZES = (200_000, 1_000_000)
TARGET_ROWS = 10_000_000
FIXED_COST_ROWS = 10
FIXED_COST_TRIES = 3


# --- Measuring one child process --------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    wall_s: float
    cpu_s: float
    rss_mib: float


def run_measured(command: list[str], env: dict | None = None, log: Path | None = None) -> Measure:
    """Run ``command`` to completion; its wall time, CPU time and peak RSS (process tree)."""
    log = log or Path(tempfile.gettempdir()) / f"bench-{os.getpid()}.log"
    with open(log, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tempfile.gettempdir())
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(map(str, command))} exited {child.returncode}:\n{tail}")
    return Measure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def best(measures: list[Measure]) -> Measure:
    """The fastest run's times; the highest peak RSS seen (RSS is not noise)."""
    fastest = min(measures, key=lambda m: m.wall_s)
    return Measure(fastest.wall_s, fastest.cpu_s, max(m.rss_mib for m in measures))


# --- The CLI in a temporary workspace ---------------------------------------------------


class Workspace:
    """``dataplat init`` + ``dataplat project create bench`` in a temporary folder; the CLI
    of ``checkout`` (another checkout's package first on the path) or of this one."""

    def __init__(self, checkout: Path | None = None) -> None:
        benchdata.DATA_DIR.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="workspace-", dir=benchdata.DATA_DIR))
        # Runs are recorded in this workspace, whatever DAGSTER_HOME the caller has (make sets one).
        self.env = dict(os.environ, DAGSTER_HOME=str(self.dir))
        if checkout is not None:
            self.env["PYTHONPATH"] = str(checkout)
        self._count = 0
        self._cli("init", str(self.dir))
        self._cli("--workspace", str(self.dir), "project", "create", PROJECT)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def import_file(self, path: Path, profile: bool = True) -> Measure:
        """Time one import end to end, then delete the dataset (untimed) to free the disk."""
        self._count += 1
        name = f"bench_{self._count}"
        command = [str(DATAPLAT), *self._scope(), "dataset", "import", str(path), "--name", name]
        measure = run_measured(command + ([] if profile else ["--no-profile"]), env=self.env)
        self._cli(*self._scope(), "dataset", "delete", name, "--yes")
        return measure

    def _scope(self) -> list[str]:
        return ["--workspace", str(self.dir), "--project", PROJECT]

    def _cli(self, *args: str) -> None:
        subprocess.run([str(DATAPLAT), *args], env=self.env, check=True, capture_output=True)


# --- The contenders ---------------------------------------------------------------------


def baseline(worker: str, dialect: str, path: Path) -> Measure:
    with tempfile.TemporaryDirectory(dir=benchdata.DATA_DIR) as tmp:
        script = HERE / "workers" / f"{worker}.py"
        return run_measured([sys.executable, str(script), dialect, str(path), str(Path(tmp) / "out.parquet")])


def measure_file(workspace: Workspace, path: Path, dialect: str, repeat: int,
                 before: Workspace | None = None) -> dict[str, Measure]:
    """(a) to (d) on one file, and (a) and (b) of the baseline checkout as "a0" and "b0";
    the contenders take turns, so that noise hits them alike."""
    benchdata.warm_page_cache(path)
    runs: dict[str, list[Measure]] = {"a": [], "b": [], "c": [], "d": []}
    if before:
        runs |= {"a0": [], "b0": []}
    for _ in range(repeat):
        runs["a"].append(workspace.import_file(path, profile=True))
        runs["b"].append(workspace.import_file(path, profile=False))
        if before:
            runs["a0"].append(before.import_file(path, profile=True))
            runs["b0"].append(before.import_file(path, profile=False))
        runs["c"].append(baseline("arrow_csv", dialect, path))
        runs["d"].append(baseline("pandas_csv", dialect, path))
    return {key: best(measures) for key, measures in runs.items()}


def measure_fixed_cost(workspace: Workspace, path: Path, repeat: int) -> tuple[Measure, Measure]:
    """(e): the first import in a fresh workspace, then the best of the following ones."""
    first = workspace.import_file(path)
    return first, best([workspace.import_file(path) for _ in range(max(repeat, FIXED_COST_TRIES))])


# --- Report -----------------------------------------------------------------------------


def verdict(value: float, target: float, at_most: bool) -> str:
    ok = value <= target if at_most else value >= target
    return "PASS" if ok else "MISS"


def print_header(sizes: list[int], repeat: int) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"bench/ingest.py  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores, {_memory_gib():.0f} GiB RAM; load average {load}")
    print(f"  python {platform.python_version()}; sizes {', '.join(f'{n:,}' for n in sizes)} rows; best of {repeat}")
    print("  every contender runs as a subprocess (interpreter start-up included)")


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


MEASURES_HEADER = (
    f"{'rows':>11} {'dialect':7} {'(a) import':>17} {'(b) --no-profile':>17} {'(c) pyarrow':>17} "
    f"{'(d) pandas':>17} {'RSS(a)':>8} {'RSS(b)':>8} {'RSS(c)':>8} {'RSS(d)':>8}"
)


def print_measure_row(rows: int, dialect: str, m: dict[str, Measure]) -> None:
    for label, keys in (("", "abcd"), (" before", ("a0", "b0", "c", "d"))):
        if keys[0] not in m:
            continue
        times = " ".join(f"{m[k].wall_s:8.2f} ({m[k].cpu_s:6.1f})" for k in keys)
        rss = " ".join(f"{m[k].rss_mib:8.0f}" for k in keys)
        print(f"{rows:>11,} {dialect + label:7} {times} {rss}", flush=True)


def print_ratios(results: dict[tuple[int, str], dict[str, Measure]], fixed: Measure) -> None:
    print("\nratios of wall times (targets apply at 10,000,000 rows)")
    for (rows, dialect), m in results.items():
        for label, a_key, b_key in (("", "a", "b"), (" before", "a0", "b0")):
            if a_key not in m:
                continue
            a, b, c, d = m[a_key].wall_s, m[b_key].wall_s, m["c"].wall_s, m["d"].wall_s
            at_target = rows == TARGET_ROWS
            line = (f"  {rows:>11,} {dialect + label}: "
                    f"(a)/(c) = {a / c:5.2f} {_mark(a / c, 2.0, True, at_target)}  "
                    f"(b)/(c) = {b / c:5.2f} {_mark(b / c, 1.3, True, at_target)}  "
                    f"(d)/(a) = {d / a:5.2f} {_mark(d / a, 2.0, False, at_target)}")
            print(line + (f"  ((a)-(e))/(c) = {(a - fixed.wall_s) / c:5.2f}" if not label else ""))


def _mark(value: float, target: float, at_most: bool, applies: bool) -> str:
    sign = "<=" if at_most else ">="
    return f"{verdict(value, target, at_most)} ({sign} {target:g})" if applies else f"{'':4} ({sign} {target:g})"


def print_fixed_cost(first: Measure, fixed: Measure) -> None:
    print(f"(e) import of a {FIXED_COST_ROWS}-row file: {fixed.wall_s:.2f} s wall, {fixed.cpu_s:.2f} s CPU, "
          f"{fixed.rss_mib:.0f} MiB  {verdict(fixed.wall_s, 2.5, True)} (< 2.5 s)"
          f"   [first import in a fresh workspace: {first.wall_s:.2f} s]", flush=True)


def print_memory(results: dict[tuple[int, str], dict[str, Measure]], sizes: list[int]) -> None:
    small, large = min(sizes), max(sizes)
    if small == large:
        return
    print(f"\npeak RSS of (a): {large:,} rows vs {small:,} rows (target <= 1.5)")
    for dialect in benchdata.DIALECTS:
        for label, key in (("", "a"), (" before", "a0")):
            if key not in results[small, dialect]:
                continue
            low, high = results[small, dialect][key].rss_mib, results[large, dialect][key].rss_mib
            applies = large == TARGET_ROWS
            print(f"  {dialect + label}: {low:.0f} MiB -> {high:.0f} MiB, ratio {high / low:.2f} "
                  f"{_mark(high / low, 1.5, True, applies)}")


# --- Main -------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="comma-separated row counts (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help=f"sizes {', '.join(f'{n:,}' for n in QUICK_SIZES)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender; the best counts (default 1)")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="another checkout whose (a) and (b) are measured too, taking turns (before/after)")
    args = parser.parse_args()
    args.sizes = list(QUICK_SIZES) if args.quick else sorted(int(n.replace("_", "")) for n in args.sizes.split(","))
    return args


def main() -> None:
    args = parse_args()
    print_header(args.sizes, args.repeat)
    files = {(rows, d): benchdata.ensure_csv(rows, d) for rows in args.sizes for d in benchdata.DIALECTS}
    tiny = benchdata.ensure_csv(FIXED_COST_ROWS, "us")
    with Workspace() as workspace, (Workspace(args.baseline.resolve()) if args.baseline else nullcontext()) as before:
        first, fixed = measure_fixed_cost(workspace, tiny, args.repeat)
        print_fixed_cost(first, fixed)
        print("\nwall seconds (CPU seconds of the process tree) and peak RSS in MiB\n" + MEASURES_HEADER)
        results = {}
        for (rows, dialect), path in files.items():
            results[rows, dialect] = measure_file(workspace, path, dialect, args.repeat, before)
            print_measure_row(rows, dialect, results[rows, dialect])
    print_ratios(results, fixed)
    print_memory(results, args.sizes)
    print(f"\n  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
