"""Benchmark: profiling a Parquet file with ``profile_parquet``, against DuckDB and ydata.

On an 8-column Parquet file (``benchdata.py``: 4 numeric columns, 2 text, a date and a
boolean; default 10 million rows, snappy) this times, best of ``--repeat``:

  ours    ``dataplat_dagster.profile.stats.profile_parquet(path)``, in this process:
          per-column statistics, quantiles, histograms, top values, distinct counts,
          duplicate rows, Pearson and Cramér's V correlations, a sample;
  one pass  the same profile as an import computes it (``ProfileAccumulator``, which
          sees the batches on their way to the file and reads back only what needs the
          final statistics), fed here the file's batches on one thread, their reading
          included: printed for information beside ours;
  DuckDB  ``SUMMARIZE SELECT * FROM read_parquet(path)`` then one query with ``corr(a, b)``
          for every pair of numeric columns, on a fresh in-memory connection in this
          process (DuckDB's default settings): the floor for "statistics and
          correlations" done by the same engine;
  ydata   ``ProfileReport(df, minimal=True).get_description()`` of ydata-profiling, in its
          own virtual environment (``bench/.venv-ydata``, created if missing), as a
          subprocess. Minimal mode skips correlations, interactions and most plots, so it
          does less than ours. Its time counts only the profiling, not the interpreter
          start-up nor loading the Parquet file into pandas (printed separately).

ydata-profiling holds the whole table in pandas, so it runs on the first ``--ydata-rows``
rows (default 10 million, the size the target is set at); ours runs on that same file too, and the ratio ydata / ours
compares the two on the same rows. Nothing is extrapolated.

``--wide`` profiles wide tables instead: 100,000 rows of 250, 500, 1,000 and 2,000 columns
(``--wide-columns``; integer, float, text and boolean in turn), each contender in a child
process whose peak RSS ``os.wait4`` reports: ours, and DuckDB's ``SUMMARIZE`` of the same
file (per-column statistics only: no histograms, top values, duplicates nor correlations).
The time per column at each width, against the narrowest, shows whether the time grows
faster than the columns; peak RSS must stay under 2 GB.

The machine may be shared and noisy: the figures that matter are the ratios, printed with
their targets (PASS/MISS).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's ``profile`` module: keep its folder out
# of the front of sys.path so that ``import profile`` anywhere still finds the real one.
HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)
sys.path.append(str(HERE))

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402

import duckdb  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import benchdata  # noqa: E402
from dataplat_dagster.profile.accumulate import ProfileAccumulator  # noqa: E402
from dataplat_dagster.profile.stats import profile_parquet  # noqa: E402

YDATA_VENV = HERE / ".venv-ydata"
YDATA_PYTHON = YDATA_VENV / "bin" / "python"
YDATA_PACKAGES = ("ydata-profiling", "pandas", "pyarrow")
YDATA_WORKER = HERE / "workers" / "ydata_profile.py"
WIDE_WORKER = HERE / "workers" / "wide_profile.py"
WIDE_ROWS = 100_000
WIDE_COLUMNS = (250, 500, 1000, 2000)
WIDE_RSS_LIMIT_MIB = 1907  # 2 GB
WIDE_GROWTH_LIMIT = 1.25  # time per column at the widest / at the narrowest
DEFAULT_ROWS = 10_000_000
DEFAULT_YDATA_ROWS = 10_000_000  # the target applies at 10M rows; ydata needs about 6 GiB there
QUICK_ROWS, QUICK_YDATA_ROWS = 1_000_000, 100_000
NUMERIC_TYPES = ("int", "uint", "double", "float", "decimal")
ONE_PASS_BATCH_ROWS = 1 << 18  # about the batches of the CSV reader's 16 MiB chunks


# --- The contenders ---------------------------------------------------------------------


def timed(function, repeat: int) -> float:
    """The best wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def ours(path: Path) -> dict:
    return profile_parquet(path)


def one_pass(path: Path) -> dict:
    parquet = pq.ParquetFile(path)
    accumulator = ProfileAccumulator.for_schema(parquet.schema_arrow)
    for index, batch in enumerate(parquet.iter_batches(batch_size=ONE_PASS_BATCH_ROWS)):
        accumulator.add(accumulator.summarize(batch, (index,)))
    return accumulator.finish(path)


def duckdb_summary(path: Path) -> tuple[list, tuple]:
    """SUMMARIZE, then every numeric pair's Pearson correlation in one query."""
    source = "read_parquet('" + str(path).replace("'", "''") + "')"
    with duckdb.connect(":memory:") as con:
        summary = con.execute(f"SUMMARIZE SELECT * FROM {source}").fetchall()
        pairs = itertools.combinations(numeric_columns(path), 2)
        corr = ", ".join(f'corr("{a}", "{b}")' for a, b in pairs)
        correlations = con.execute(f"SELECT {corr} FROM {source}").fetchone() if corr else ()
    return summary, correlations


def numeric_columns(path: Path) -> list[str]:
    schema = pq.read_schema(path)
    return [f.name for f in schema if str(f.type).startswith(NUMERIC_TYPES)]


@dataclass(frozen=True)
class YdataResult:
    profile_s: float | None = None
    load_s: float | None = None
    total_s: float | None = None  # the subprocess, start-up and imports included
    version: str = ""
    problem: str = ""


def ydata(path: Path, repeat: int, timeout_s: float) -> YdataResult:
    problem = ensure_ydata_venv()
    if problem:
        return YdataResult(problem=problem)
    results = []
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            done = subprocess.run([str(YDATA_PYTHON), str(YDATA_WORKER), str(path)], capture_output=True,
                                  text=True, timeout=timeout_s, cwd=tempfile.gettempdir())
        except subprocess.TimeoutExpired:
            return YdataResult(problem=f"did not finish within {timeout_s:.0f} s (--ydata-timeout)")
        if done.returncode != 0:
            return YdataResult(problem=f"failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        line = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(YdataResult(line["profile_s"], line["load_s"], time.perf_counter() - started, line["version"]))
    return min(results, key=lambda r: r.profile_s)


def ensure_ydata_venv() -> str:
    """Create bench/.venv-ydata if missing; an empty string, or why ydata cannot run."""
    if YDATA_PYTHON.exists():
        return ""
    print(f"  creating {YDATA_VENV.relative_to(HERE.parent)} (pip install {' '.join(YDATA_PACKAGES)}) ...", flush=True)
    steps = [["python3", "-m", "venv", str(YDATA_VENV)],
             [str(YDATA_PYTHON), "-m", "pip", "install", "--quiet", *YDATA_PACKAGES]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return f"cannot be installed ({' '.join(step[:3])}: {done.stderr.strip()[-300:]})"
    return ""


# --- Wide tables ------------------------------------------------------------------------


def ensure_wide_parquet(columns: int, rows: int) -> Path:
    """``columns`` columns cycling integer, float, text (50 values) and boolean, written
    20,000 rows at a time (memory stays at one slice); reused when already there."""
    import numpy as np
    import pyarrow as pa

    path = benchdata.DATA_DIR / f"wide_{columns}x{rows}.parquet"
    if path.exists():
        return path
    benchdata.DATA_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(columns)
    words = pa.array([f"value {k}" for k in range(50)])

    def column(k: int, n: int) -> pa.Array:
        kind = k % 4
        if kind == 0:
            return pa.array(rng.integers(0, 1000, n))
        if kind == 1:
            return pa.array(rng.normal(size=n))
        if kind == 2:
            return pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 50, n), pa.int32()), words).cast(pa.string())
        return pa.array(rng.integers(0, 2, n) == 1)

    names = [f"{('int', 'float', 'text', 'flag')[k % 4]}_{k}" for k in range(columns)]
    partial = path.with_suffix(".partial")
    writer = None
    for start in range(0, rows, 20_000):
        n = min(20_000, rows - start)
        table = pa.Table.from_arrays([column(k, n) for k in range(columns)], names)
        writer = writer or pq.ParquetWriter(partial, table.schema, compression="snappy")
        writer.write_table(table)
    writer.close()
    partial.rename(path)
    return path


@dataclass(frozen=True)
class ChildResult:
    seconds: float | None  # inside the child, imports excluded
    rss_mib: float
    problem: str = ""


def run_wide_child(contender: str, path: Path, timeout_s: float) -> ChildResult:
    command = [sys.executable, str(WIDE_WORKER), contender, str(path)]
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        # wait4 reaps the child itself (Popen.wait would, and lose its rusage): a timer kills it past the limit.
        timer = threading.Timer(timeout_s, child.kill)
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)
        timer.cancel()
        out.seek(0)
        output = out.read().strip()
    rss = usage.ru_maxrss / 1024
    if status != 0:
        return ChildResult(None, rss, f"failed (status {status}): {output[-300:]}")
    return ChildResult(json.loads(output.splitlines()[-1])["seconds"], rss)


def best(results: list[ChildResult]) -> ChildResult:
    """The fastest round, with the highest peak RSS of all rounds."""
    fastest = min(results, key=lambda r: (bool(r.problem), r.seconds or 0))
    return replace(fastest, rss_mib=max(r.rss_mib for r in results))


def wide(args: argparse.Namespace) -> None:
    print(f"bench/profile.py --wide  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"duckdb {duckdb.__version__}; {args.wide_rows:,} rows; each contender a child process")
    results = {}
    for columns in args.wide_columns:
        path = ensure_wide_parquet(columns, args.wide_rows)
        benchdata.warm_page_cache(path)
        # Best of --repeat, the contenders taking turns, so that a burst of load hits both.
        rounds = [(run_wide_child("ours", path, args.wide_timeout), run_wide_child("duckdb", path, args.wide_timeout))
                  for _ in range(args.repeat)]
        ours_result, duck = (best([r[k] for r in rounds]) for k in (0, 1))
        results[columns] = ours_result
        print(f"\n{columns:,} columns x {args.wide_rows:,} rows ({path.stat().st_size / 2**20:.0f} MiB Parquet)")
        for name, result in (("ours", ours_result), ("DuckDB SUMMARIZE", duck)):
            shown = result.problem or f"{result.seconds:.2f} s ({1000 * result.seconds / columns:.1f} ms per column)"
            print(f"  {name:<17} {shown}; peak RSS {result.rss_mib:.0f} MiB")
        if not ours_result.problem:
            print(f"  ours peak RSS {ours_result.rss_mib:.0f} MiB  "
                  f"{verdict(ours_result.rss_mib, WIDE_RSS_LIMIT_MIB, True)} (< {WIDE_RSS_LIMIT_MIB} MiB)")
            if not duck.problem:
                print(f"  ours / DuckDB = {ours_result.seconds / duck.seconds:.2f}  (for information: DuckDB does less)")
    done = {c: r for c, r in results.items() if not r.problem}
    if len(done) >= 2:
        narrow, widest = min(done), max(done)
        growth = (done[widest].seconds / widest) / (done[narrow].seconds / narrow)
        print(f"\ntime per column at {widest:,} / at {narrow:,} columns = {growth:.2f}  "
              f"{verdict(growth, WIDE_GROWTH_LIMIT, True)} (<= {WIDE_GROWTH_LIMIT}: linear in the columns)")
    print(f"\n  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


# --- Report -----------------------------------------------------------------------------


def verdict(value: float, target: float, at_most: bool) -> str:
    ok = value <= target if at_most else value >= target
    return "PASS" if ok else "MISS"


def print_header(args: argparse.Namespace) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"bench/profile.py  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores; load average {load}; python {platform.python_version()}, "
          f"duckdb {duckdb.__version__}")
    print(f"  {args.rows:,} rows x 8 columns (ydata on the first {args.ydata_rows:,}); best of {args.repeat}")
    print("  ours and DuckDB run in this process; ydata in a subprocess (its start-up and load not counted)")


def print_engine_ratio(rows: int, ours_s: float, duck_s: float, one_pass_s: float, size_mib: float) -> None:
    ratio = ours_s / duck_s
    print(f"\n{rows:,} rows ({size_mib:.0f} MiB Parquet): ours {ours_s:.2f} s, "
          f"DuckDB SUMMARIZE + corr {duck_s:.2f} s, one pass {one_pass_s:.2f} s")
    print(f"  ours / DuckDB = {ratio:.2f}  {verdict(ratio, 1.5, True)} (<= 1.5)")
    print(f"  one pass / ours = {one_pass_s / ours_s:.2f}, one pass / DuckDB = {one_pass_s / duck_s:.2f}"
          "  (for information)")


def print_ydata_ratio(rows: int, ours_s: float, result: YdataResult) -> None:
    print(f"\n{rows:,} rows, same file for both: ours {ours_s:.2f} s", end="")
    if result.problem:
        print(f"; ydata-profiling {result.problem}: no ratio")
        return
    ratio = result.profile_s / ours_s
    print(f", ydata-profiling {result.version} minimal {result.profile_s:.2f} s "
          f"(+ {result.load_s:.2f} s loading into pandas; {result.total_s:.2f} s for the whole subprocess)")
    print(f"  ydata / ours = {ratio:.2f}  {verdict(ratio, 4, False)} (>= 4)"
          f"   [with loading: {(result.profile_s + result.load_s) / ours_s:.2f}]")


# --- Main -------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, help=f"rows of the file (default {DEFAULT_ROWS:,})")
    parser.add_argument("--ydata-rows", type=int, help=f"rows given to ydata-profiling (default {DEFAULT_YDATA_ROWS:,})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_ROWS:,} rows, ydata on {QUICK_YDATA_ROWS:,} (unless given)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender; the best counts (default 1)")
    parser.add_argument("--ydata-timeout", type=float, default=900, help="seconds (default %(default)s)")
    parser.add_argument("--wide", action="store_true", help="the wide-table case instead (see above)")
    parser.add_argument("--wide-columns", type=lambda text: [int(n) for n in text.split(",")], default=list(WIDE_COLUMNS),
                        help="widths, comma-separated (default %(default)s)")
    parser.add_argument("--wide-rows", type=int, default=WIDE_ROWS, help="rows of the wide files (default %(default)s)")
    parser.add_argument("--wide-timeout", type=float, default=1800, help="seconds per contender (default %(default)s)")
    args = parser.parse_args()
    args.rows = args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    args.ydata_rows = min(args.ydata_rows or (QUICK_YDATA_ROWS if args.quick else DEFAULT_YDATA_ROWS), args.rows)
    return args


def main() -> None:
    args = parse_args()
    if args.wide:
        wide(args)
        return
    print_header(args)
    path = benchdata.ensure_parquet(args.rows)
    small = benchdata.ensure_parquet(args.ydata_rows)
    for file in {path, small}:
        benchdata.warm_page_cache(file)
    ours_s = timed(lambda: ours(path), args.repeat)
    duck_s = timed(lambda: duckdb_summary(path), args.repeat)
    one_pass_s = timed(lambda: one_pass(path), args.repeat)
    print_engine_ratio(args.rows, ours_s, duck_s, one_pass_s, path.stat().st_size / 2**20)
    ours_small_s = timed(lambda: ours(small), args.repeat) if small != path else ours_s
    print_ydata_ratio(args.ydata_rows, ours_small_s, ydata(small, args.repeat, args.ydata_timeout))
    print(f"\n  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
