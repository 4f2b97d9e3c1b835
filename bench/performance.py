"""The performance targets of the plugin in one table: each a ratio measured in the same run.

    python bench/performance.py [--before CHECKOUT] [--quick] [--repeat N] [--figures 1,2,...]

Prints, for this checkout ("after") and, with ``--before``, for another checkout of the
repository ("before", e.g. ``git worktree add /tmp/perf-before <commit>``), each figure as a
ratio to its peer, with its target and PASS/MISS:

  1. ``dataset list``, ``dataset show NAME`` and ``connector list`` / a bare Dagster
     materialize, target <= 0.3 each (``check list``, ``dataset versions NAME``,
     ``datasource list`` and ``exporter list`` for information). The bare materialize is
     ``dagster.materialize([a])`` of one trivial asset on an ephemeral instance, in its own
     interpreter: Dagster's own smallest run.
  2. the import of a 10-row CSV through the CLI, end to end / the same bare materialize,
     target <= 1.0.
  3. ``dataset import`` of the 10M-row CSV (with its profile) / pyarrow reading and writing
     the same file alone (``workers/arrow_csv.py``), US and EU dialects, target <= 2.0.
  4. the same import with ``--no-profile`` / pyarrow, target <= 1.3.
  5. pandas ``read_csv`` + ``to_parquet`` (``workers/pandas_csv.py``) / our import of 3.,
     target >= 2.
  6. pandas ``read_sql`` + ``to_parquet`` of a 1M-row PostgreSQL table / our snapshot of it
     (``dataset import --datasource ... --no-profile``), target >= 4.

The files, the workers and the PostgreSQL server (the tests' starter, loaded as
``bench/datasources.py`` loads it) are those of ``bench/ingest.py`` and
``bench/datasources.py``. Every contender is a child process of this script (interpreter
start-up and imports included). A checkout's CLI runs as ``python -c "from
dataplat_dagster.cli.main import main; main()"`` with this venv's Python and the checkout
first on ``PYTHONPATH``, in a workspace of its own under ``bench/data/`` (git-ignored) made by
that checkout: two small CSV datasets, a SQLite connector, a datasource and its snapshot,
an exporter and a check. The CLI executes an import's run in a child forked from itself, so
that run uses the same checkout.

Round by round, the two checkouts take turns (the order alternates) and the peers run in the
same round, so that a burst of load on this shared machine hits all of them alike. Each time
in the table is the best of its rounds; a ratio divides two such bests. Figures 1 and 2 are
short and the noisiest, so they get at least 5 rounds. The targets are set at 10M CSV rows
and 1M PostgreSQL rows: at other sizes (``--quick``) the verdict is printed in parentheses,
as an indication only. No test asserts any of these timings.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import benchdata
import datasources
from datasources import PANDAS_WORKER, PASSWORD_VAR, TABLE, loaded_server, pandas_url, parquet_rows, run_measured
from ingest import Measure, baseline
from report import table, verdict

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLI = "from dataplat_dagster.cli.main import main; main()"
BARE_MATERIALIZE = """
import dagster

@dagster.asset
def a():
    return 1

assert dagster.materialize([a]).success
"""

CSV_ROWS, QUICK_CSV_ROWS = 10_000_000, 200_000
PG_ROWS, QUICK_PG_ROWS = 1_000_000, 100_000
SMALL_ROWS = 1_000  # the workspace's two CSV datasets
TINY_ROWS = 10  # figure 2
FIXED_ROUNDS, QUICK_FIXED_ROUNDS = 5, 3

# Figure 1: (label, arguments, whether the issue sets a target for it).
READ_COMMANDS = [
    ("dataset list", ["dataset", "list"], True),
    ("dataset show NAME", ["dataset", "show", "sales_us"], True),
    ("connector list", ["connector", "list"], True),
    ("check list", ["check", "list"], False),
    ("dataset versions NAME", ["dataset", "versions", "sales_us"], False),
    ("datasource list", ["datasource", "list"], False),
    ("exporter list", ["exporter", "list"], False),
]


def clean_env() -> dict[str, str]:
    """This process's environment without what would point a child at another workspace or code."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME", "PYTHONPATH"))}


# --- The checkouts and their workspaces ---------------------------------------------------


@dataclass(frozen=True)
class Checkout:
    label: str  # "before" or "after"
    path: Path

    def describe(self) -> str:
        git = ["git", "-C", str(self.path)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        changed = subprocess.run([*git, "status", "--porcelain", "--", "dataplat_dagster"], check=True, capture_output=True,
                                 text=True).stdout.splitlines()
        package = subprocess.run([sys.executable, "-c", "import dataplat_dagster; print(dataplat_dagster.__file__)"], check=False,
                                 env={**clean_env(), "PYTHONPATH": str(self.path)}, capture_output=True, text=True,
                                 cwd=tempfile.gettempdir()).stdout.strip()
        # The venv holds an editable install of one checkout: make sure PYTHONPATH wins over it.
        if not package.startswith(str(self.path) + os.sep):
            raise SystemExit(f"{self.label}: dataplat_dagster imports from {package or '?'}, not from {self.path}")
        dirty = f" + uncommitted changes to {len(changed)} files of dataplat_dagster/" if changed else ""
        return f"{self.path} at {commit}{dirty}"


class CheckoutWorkspace(datasources.Workspace):
    """A workspace made and used by one checkout's CLI (``bench/datasources.py``'s, otherwise)."""

    def __init__(self, checkout: Checkout, parent: Path) -> None:
        self.checkout = checkout
        self.dir = Path(tempfile.mkdtemp(prefix=f"{checkout.label}-", dir=parent))
        self.root = self.dir / "ws"
        self.log = self.dir / "command.log"
        self.env = {**clean_env(), "PYTHONPATH": str(checkout.path), "DAGSTER_HOME": str(self.root)}
        self._count = 0
        self.cli("init", str(self.root), cwd=self.dir)
        self.cli("project", "create", datasources.PROJECT)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", CLI, "--workspace", str(self.root), *args]

    def cli(self, *args: str, cwd: Path | None = None) -> str:
        result = subprocess.run(self.command(*args), check=False, cwd=cwd or self.root, env=self.env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"{self.checkout.label}: dataplat {' '.join(args)} exited {result.returncode}:\n"
                               f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        return result.stdout

    def timed(self, *args: str) -> Measure:
        return run_measured(self.command(*args), cwd=self.root, env=self.env, log=self.log)[0]

    def populate(self) -> None:
        """What figure 1's commands read: datasets (two profiled CSVs and a snapshot), a
        connector, a datasource, an exporter and a check."""
        self.cli("dataset", "import", str(benchdata.ensure_csv(SMALL_ROWS, "us")), "--name", "sales_us")
        self.cli("dataset", "import", str(benchdata.ensure_csv(SMALL_ROWS, "eu")), "--name", "sales_eu")
        database = self.dir / "shop.db"
        with open(benchdata.ensure_csv(SMALL_ROWS, "us"), newline="") as file, sqlite3.connect(database) as db:
            rows = csv.reader(file)
            header = next(rows)
            db.execute(f"CREATE TABLE orders ({', '.join(header)})")
            db.executemany(f"INSERT INTO orders VALUES ({', '.join('?' * len(header))})", rows)
        self.cli("connector", "create", "sql", "shop", "--dialect", "sqlite", "--database", str(database))
        self.cli("datasource", "create", "orders", "--connector", "shop", "--table", "orders")
        self.cli("dataset", "import", "--datasource", "orders", "--name", "orders_snap")
        self.cli("exporter", "create", "out", "--connector", "shop", "--mode", "overwrite", "--table", "orders_out")
        self.cli("check", "add", "sales_us", "expect_column_values_to_not_be_null", "--column", "order_id")

    def import_and_delete(self, *args: str, rows: int, problems: list[str]) -> Measure:
        """Time one ``dataset import``, check its row count, then delete it (untimed)."""
        self._count += 1
        name = f"timed_{self._count}"
        try:
            measure = self.timed("dataset", "import", *args, "--name", name)
            path = self.data_file(name)
            found = parquet_rows(path) if path.exists() else None
            if found != rows:
                problems.append(f"{self.checkout.label}: dataset import {' '.join(args)} gave "
                                f"{'no Parquet file at ' + str(path) if found is None else f'{found:,} rows'}, expected {rows:,}")
            return measure
        finally:
            subprocess.run(self.command("dataset", "delete", name, "--yes"), check=False, cwd=self.root, env=self.env,
                           capture_output=True, stdin=subprocess.DEVNULL)


# --- Collecting times ---------------------------------------------------------------------


class Samples:
    """Wall times by key over the rounds. A failed measurement is printed and skipped, so
    that a long run survives one (the code under test may be being edited meanwhile)."""

    def __init__(self) -> None:
        self.walls: dict[tuple, list[float]] = defaultdict(list)
        self.errors: dict[tuple, str] = {}
        self.problems: list[str] = []  # wrong row counts

    def take(self, key: tuple, action: Callable[..., Measure], *args: object, **kwargs: object) -> str:
        """Run ``action(*args, **kwargs)``; its wall time, formatted for the round's progress line."""
        try:
            wall = action(*args, **kwargs).wall_s
        except RuntimeError as error:
            if key not in self.errors:
                print(f"    !!! {' / '.join(key)} failed:\n{str(error)[-1500:]}", flush=True)
            self.errors[key] = str(error)
            return "error"
        self.walls[key].append(wall)
        return f"{wall:.2f}"

    def best(self, key: tuple) -> float | None:
        return min(self.walls[key]) if self.walls.get(key) else None


def in_turns(checkouts: list[Checkout], round_index: int) -> list[Checkout]:
    """The checkouts in this round's order: alternating, so that neither always goes first."""
    return checkouts if round_index % 2 == 0 else checkouts[::-1]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def bare_materialize(workdir: Path, log: Path) -> Measure:
    return run_measured([sys.executable, "-c", BARE_MATERIALIZE], cwd=workdir, env=clean_env(), log=log)[0]


# --- The parts: figures 1-2, 3-5 and 6 ----------------------------------------------------


def measure_fixed_cost(samples: Samples, workspaces: dict[Checkout, CheckoutWorkspace], rounds: int, workdir: Path) -> None:
    """Figures 1 and 2: the read-only commands and the 10-row import, against the bare materialize."""
    tiny = benchdata.ensure_csv(TINY_ROWS, "us")
    log = workdir / "bare.log"
    checkouts = list(workspaces)
    print(f"\nfigures 1-2: {plural(rounds, 'round')} after an untimed one (wall seconds)")
    print(f"  (each checkout: {', '.join(label for label, _, _ in READ_COMMANDS)} | the {TINY_ROWS}-row import)", flush=True)
    for index in range(-1, rounds):  # round -1 warms up: page cache, bytecode, the instance's databases
        scratch = Samples() if index < 0 else samples
        parts = [f"bare {scratch.take(('bare',), bare_materialize, workdir, log)}"]
        for checkout in in_turns(checkouts, max(index, 0)):
            ws = workspaces[checkout]
            times = [scratch.take((label, checkout.label), ws.timed, *args) for label, args, _ in READ_COMMANDS]
            imported = scratch.take(("import10", checkout.label), ws.import_and_delete, str(tiny), rows=TINY_ROWS,
                                    problems=scratch.problems)
            parts.append(f"{checkout.label}: {' '.join(times)} | import {imported}")
        print(f"  {'warm-up' if index < 0 else f'round {index + 1}'}: {'  '.join(parts)}", flush=True)


def measure_ingest(samples: Samples, workspaces: dict[Checkout, CheckoutWorkspace], rows: int, rounds: int) -> None:
    """Figures 3-5: the CSV import with and without profile, pyarrow and pandas, per dialect."""
    checkouts = list(workspaces)
    print(f"\nfigures 3-5: {rows:,}-row CSV, {plural(rounds, 'round')} per dialect (wall seconds)", flush=True)
    for dialect in benchdata.DIALECTS:
        path = benchdata.ensure_csv(rows, dialect)
        benchdata.warm_page_cache(path)  # every contender reads it from memory
        for index in range(rounds):
            parts = []
            for checkout in in_turns(checkouts, index):
                ws = workspaces[checkout]
                full = samples.take(("import", dialect, checkout.label), ws.import_and_delete, str(path), rows=rows,
                                    problems=samples.problems)
                bare = samples.take(("no-profile", dialect, checkout.label), ws.import_and_delete, str(path), "--no-profile",
                                    rows=rows, problems=samples.problems)
                parts.append(f"{checkout.label}: import {full}, --no-profile {bare}")
            parts.append(f"pyarrow {samples.take(('pyarrow', dialect), baseline, 'arrow_csv', dialect, path)}")
            parts.append(f"pandas {samples.take(('pandas', dialect), baseline, 'pandas_csv', dialect, path)}")
            print(f"  {dialect.upper()} round {index + 1}: {'  '.join(parts)}", flush=True)


def measure_snapshot(samples: Samples, workspaces: dict[Checkout, CheckoutWorkspace], rows: int, rounds: int) -> None:
    """Figure 6: a snapshot of a PostgreSQL table through each checkout, against pandas."""
    checkouts = list(workspaces)
    print(f"\nfigure 6: {rows:,}-row PostgreSQL table, {plural(rounds, 'round')} after an untimed one (wall seconds)",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp, loaded_server(Path(tmp), rows) as server:
        workdir = Path(tmp)
        for ws in workspaces.values():
            ws.env[PASSWORD_VAR] = server.password
            ws.cli("connector", "create", "sql", "pg", "--dialect", "postgresql", "--host", server.host, "--port",
                   str(server.port), "--username", server.username, "--password-env", PASSWORD_VAR, "--database",
                   server.database)
            ws.cli("datasource", "create", "big", "--connector", "pg", "--table", TABLE)
        pandas_env = {**clean_env(), "BENCH_PG_URL": pandas_url(server)}
        out, log = workdir / "pandas.parquet", workdir / "pandas.log"

        def pandas(problems: list[str]) -> Measure:
            out.unlink(missing_ok=True)
            measure, output = run_measured([sys.executable, "-c", PANDAS_WORKER, str(out)], cwd=workdir, env=pandas_env, log=log)
            if int(output.split()[0]) != rows or parquet_rows(out) != rows:
                problems.append(f"pandas read {output.split()[0]} rows and wrote {parquet_rows(out):,}, expected {rows:,}")
            return measure

        for index in range(-1, rounds):  # round -1 warms up the server's buffers and the page cache
            scratch = Samples() if index < 0 else samples
            parts = []
            for checkout in in_turns(checkouts, max(index, 0)):
                ws = workspaces[checkout]
                took = scratch.take(("snapshot", checkout.label), ws.import_and_delete, "--datasource", "big", "--no-profile",
                                    rows=rows, problems=scratch.problems)
                parts.append(f"{checkout.label} {took}")
            parts.append(f"pandas {scratch.take(('pg pandas',), pandas, scratch.problems)}")
            print(f"  {'warm-up' if index < 0 else f'round {index + 1}'}: {'  '.join(parts)}", flush=True)


# --- The table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    number: str  # the row; empty for a figure printed for information
    label: str
    ours: tuple  # the key of our contender, less the checkout's label
    peer: tuple
    target: float | None = None
    at_most: bool = True  # the ratio is ours / peer, at most the target; else peer / ours, at least
    full_size: bool = True  # measured at the size the target is set for

    def ratio(self, samples: Samples, checkout: str) -> tuple[float | None, float | None, float | None]:
        ours, peer = samples.best((*self.ours, checkout)), samples.best(self.peer)
        if ours is None or peer is None:
            return None, ours, peer
        return (ours / peer if self.at_most else peer / ours), ours, peer

    def target_text(self) -> str:
        return "info" if self.target is None else f"{'<=' if self.at_most else '>='} {self.target:.1f}"

    def cell(self, ratio: float | None) -> str:
        if ratio is None:
            return "error"
        if self.target is None:
            return f"{ratio:.2f}"
        ok = verdict(ratio <= self.target if self.at_most else ratio >= self.target)
        return f"{ratio:.2f} {ok if self.full_size else f'({ok})'}"


def figures(parts: set[int], csv_rows: int, pg_rows: int) -> list[Figure]:
    bare = ("bare",)
    listed: list[Figure] = []
    if 1 in parts:
        for label, _, targeted in READ_COMMANDS:
            listed.append(Figure("1" if targeted else "", f"{label} / bare materialize", (label,), bare, 0.3 if targeted else None))
    if 2 in parts:
        listed.append(Figure("2", f"{TINY_ROWS}-row CSV import / bare materialize", ("import10",), bare, 1.0))
    full = csv_rows == CSV_ROWS
    for number, label, ours, target in (("3", "import", "import", 2.0), ("4", "import --no-profile", "no-profile", 1.3)):
        if int(number) in parts:
            for dialect in benchdata.DIALECTS:
                listed.append(Figure(number, f"{label} / pyarrow, {dialect.upper()}", (ours, dialect), ("pyarrow", dialect),
                                     target, full_size=full))
    if 5 in parts:
        for dialect in benchdata.DIALECTS:
            listed.append(Figure("5", f"pandas / import, {dialect.upper()}", ("import", dialect), ("pandas", dialect), 2.0,
                                 at_most=False, full_size=full))
    if 6 in parts:
        listed.append(Figure("6", "pandas read_sql / snapshot --no-profile", ("snapshot",), ("pg pandas",), 4.0,
                             at_most=False, full_size=pg_rows == PG_ROWS))
    return listed


def print_table(samples: Samples, listed: list[Figure], checkouts: list[Checkout]) -> None:
    labels = [c.label for c in checkouts]
    headers = ["# figure", "target", *labels, *(f"{label} s" for label in labels), "peer s"]
    rows = []
    for figure in listed:
        measured = [figure.ratio(samples, label) for label in labels]
        peer = samples.best(figure.peer)
        rows.append([f"{figure.number:1} {figure.label}", figure.target_text(), *(figure.cell(r) for r, _, _ in measured),
                     *("-" if ours is None else f"{ours:.2f}" for _, ours, _ in measured), "-" if peer is None else f"{peer:.2f}"])
    table(headers, rows)


def print_header(args: argparse.Namespace, checkouts: list[Checkout]) -> None:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("dagster", "pyarrow", "pandas", "duckdb"))
    print(f"bench/performance.py  {time.strftime('%Y-%m-%d %H:%M %Z')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores ({model}), {memory:.0f} GiB RAM; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  python {platform.python_version()}, {versions}")
    for checkout in checkouts:
        print(f"  {checkout.label}: {args.described.setdefault(checkout, checkout.describe())}")
    print(f"  figures {', '.join(map(str, sorted(args.parts)))}; CSV {args.rows:,} rows, PostgreSQL {args.pg_rows:,} rows; "
          f"best of {plural(args.fixed_rounds, 'round')} (figures 1-2) and of {args.repeat} (3-6)", flush=True)


# --- Main ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="another checkout of this repository, measured in turns with this one")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_CSV_ROWS:,} CSV rows, {QUICK_PG_ROWS:,} PostgreSQL rows, one round "
                             f"({QUICK_FIXED_ROUNDS} for figures 1-2): a smoke run")
    parser.add_argument("--repeat", type=int, help="rounds of figures 3-6, the best counts (default 3; --quick 1)")
    parser.add_argument("--fixed-rounds", type=int, help="rounds of figures 1-2 (default max(5, --repeat); --quick 3)")
    parser.add_argument("--rows", type=int, help=f"CSV rows for figures 3-5 (default {CSV_ROWS:,})")
    parser.add_argument("--pg-rows", type=int, help=f"PostgreSQL rows for figure 6 (default {PG_ROWS:,})")
    parser.add_argument("--figures", default="1,2,3,4,5,6", help="which figures to measure (default %(default)s)")
    args = parser.parse_args()
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.fixed_rounds = args.fixed_rounds or (QUICK_FIXED_ROUNDS if args.quick else max(FIXED_ROUNDS, args.repeat))
    args.rows = args.rows or (QUICK_CSV_ROWS if args.quick else CSV_ROWS)
    args.pg_rows = args.pg_rows or (QUICK_PG_ROWS if args.quick else PG_ROWS)
    args.parts = {int(n) for n in args.figures.split(",")}
    args.described = {}  # each checkout's commit and uncommitted changes when the run began
    if args.before and not (args.before / "dataplat_dagster" / "cli" / "main.py").is_file():
        parser.error(f"--before {args.before}: not a checkout of this repository")
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    checkouts = ([Checkout("before", args.before.resolve())] if args.before else []) + [Checkout("after", REPO)]
    print_header(args, checkouts)
    samples = Samples()
    benchdata.DATA_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="performance-", dir=benchdata.DATA_DIR))
    try:
        workspaces = {}
        for checkout in checkouts:
            setup = time.perf_counter()
            workspaces[checkout] = CheckoutWorkspace(checkout, workdir)
            workspaces[checkout].populate()
            print(f"  {checkout.label}'s workspace made in {time.perf_counter() - setup:.0f} s", flush=True)
        parts = [({1, 2}, lambda: measure_fixed_cost(samples, workspaces, args.fixed_rounds, workdir)),
                 ({3, 4, 5}, lambda: measure_ingest(samples, workspaces, args.rows, args.repeat)),
                 ({6}, lambda: measure_snapshot(samples, workspaces, args.pg_rows, args.repeat))]
        for numbers, measure in parts:
            if numbers & args.parts:
                try:
                    measure()
                except Exception as error:  # noqa: BLE001  one part's failure (e.g. the server's start) leaves the others' figures
                    print(f"  !!! figures {', '.join(map(str, sorted(numbers)))} stopped: {type(error).__name__}: {error}",
                          flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print("\nratios of wall times, each time the best of its rounds; 'peer s' is the bare materialize, pyarrow or pandas")
    listed = figures(args.parts, args.rows, args.pg_rows)
    print_table(samples, listed, checkouts)
    if not all(figure.full_size for figure in listed):
        print(f"  (PASS) / (MISS): measured at another size than the target's ({CSV_ROWS:,} CSV rows, "
              f"{PG_ROWS:,} PostgreSQL rows): an indication only")
    for problem in samples.problems:
        print(f"  !!! wrong row count: {problem}")
    if samples.errors:
        print(f"  !!! failed measurements (left out of the bests): {', '.join(' / '.join(k) for k in samples.errors)}")
    for checkout in checkouts:  # a work tree being edited meanwhile: say so
        if (now := checkout.describe()) != args.described[checkout]:
            print(f"  !!! {checkout.label} changed during the run: now {now}")
    print(f"\n  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{(time.perf_counter() - started) / 60:.1f} minutes in all")


if __name__ == "__main__":
    main()
