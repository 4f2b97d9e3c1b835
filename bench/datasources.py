"""Benchmark: snapshot a 1-million-row PostgreSQL table into a dataset, end to end.

A PostgreSQL 15 server on 127.0.0.1 (the tests' own starter) holds ``bench_table``, 1M rows
x 8 columns (the table ``bench/connectors.py`` uses). A temporary workspace is made with the
real CLI (``dataplat init``, ``project create``, ``connector create sql pg --dialect
postgresql ...``, ``datasource create big --connector pg --table bench_table``), then this
times, best of ``--repeat``, the contenders taking turns after one untimed warm-up round:

  ours           ``dataplat dataset import --datasource big --name snap --no-profile``: the
                 direct snapshot (ADBC's binary COPY streamed into Parquet in a Dagster run);
  ours, profiled the same without ``--no-profile`` (statistics, plots, HTML report);
  ours, refresh  ``dataplat dataset refresh snap --no-profile``: a re-run of the snapshot;
  two-step       ``psql -c "\\copy (SELECT * FROM bench_table) TO 'file.csv' WITH CSV HEADER"``
                 then ``dataplat dataset import file.csv --name viacsv --no-profile`` (and
                 without ``--no-profile`` for the profiled row); its time is the sum of the
                 two commands of one round;
  pandas         ``pandas.read_sql("SELECT * FROM bench_table", engine)`` (SQLAlchemy +
                 psycopg2) + ``df.to_parquet(path)``.

Targets: two-step time / ours > 1 (the direct snapshot is faster than exporting a CSV and
importing it), and pandas time / ours (no profile) >= 4.

Every contender runs as a subprocess with the workspace as its working directory (so all
pay interpreter start-up and imports); the CLI's environment has ``DATAPLAT_*`` and
``DAGSTER_HOME`` removed and the password in ``BENCH_PG_PASSWORD``, as the tests run it.
The rows each path produced are counted (the Parquet footers, the CSV's lines) and must all
equal ``--rows``: a correctness check, not a timing one.

To show where ours spends its time, the same run also measures, untimed against any target:
the snapshot of a 10-row table (the fixed cost of a snapshot: CLI start-up, Dagster, run
records), and in this process ADBC's read of the table alone and read + ``write_parquet``.

The machine may be shared and noisy: the figures that matter are the ratios between
contenders measured in the same run, printed with their targets (PASS/MISS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATAPLAT = Path(sys.executable).parent / "dataplat"
DATA_DIR = HERE / "data"  # git-ignored
PROJECT = "bench"
TABLE = "bench_table"
TINY_TABLE = "bench_tiny"
TINY_ROWS = 10
QUICK_ROWS = 200_000

sys.path.insert(0, str(REPO))

from ingest import Measure, best  # noqa: E402  (bench/ is the script's folder)

from dataplat_dagster_tests.servers.postgres import start_postgres  # noqa: E402

PASSWORD_VAR = "BENCH_PG_PASSWORD"  # as in connectors.py, whose table is loaded below

# The table is made in a child process, so that this one stays small: a child's peak RSS
# (ru_maxrss) starts from its parent's RSS at fork.
LOAD_WORKER = """
import sys
from pathlib import Path
from connectors import PASSWORD_VAR, sample_table
from dataplat_dagster.connectors.models import SqlConnectorSpec
from dataplat_dagster.connectors.registry import open_connector
host, port, username, database, workdir = sys.argv[1:6]
spec = SqlConnectorSpec(dialect="postgresql", host=host, port=int(port), username=username, password_env=PASSWORD_VAR,
                        database=database)
with open_connector("bench", spec, Path(workdir)) as connector:
    for table, rows in zip(sys.argv[6::2], sys.argv[7::2]):
        connector.write_arrow(table, sample_table(int(rows)), mode="replace")
"""

# pandas as a user would write it, in its own interpreter like every contender.
PANDAS_WORKER = """
import os, sys, time
started = time.perf_counter()
import pandas as pd
import sqlalchemy
imported = time.perf_counter()
engine = sqlalchemy.create_engine(os.environ["BENCH_PG_URL"])
frame = pd.read_sql("SELECT * FROM bench_table", engine)
read = time.perf_counter()
frame.to_parquet(sys.argv[1])
written = time.perf_counter()
print(len(frame), imported - started, read - imported, written - read)
"""


@contextmanager
def loaded_server(workdir: Path, rows: int) -> Iterator:
    """The tests' PostgreSQL server holding ``bench_table`` (``rows`` rows) and ``bench_tiny``
    (``TINY_ROWS``), vacuumed and analyzed; its password in ``PASSWORD_VAR`` of this process."""
    with start_postgres(workdir) as server:
        os.environ[PASSWORD_VAR] = server.password
        subprocess.run([sys.executable, "-c", LOAD_WORKER, server.host, str(server.port), server.username, server.database,
                        str(workdir), TABLE, str(rows), TINY_TABLE, str(TINY_ROWS)], cwd=HERE, check=True,
                       env={**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{REPO}"})
        # Set the hint bits and statistics before anything reads (VACUUM cannot run in a transaction).
        subprocess.run([server.psql, "-h", server.host, "-p", str(server.port), "-U", server.username, "-d", server.database,
                        "-q", "-c", f"VACUUM ANALYZE {TABLE}"], env={**os.environ, "PGPASSWORD": server.password}, check=True)
        yield server


def pandas_url(server) -> str:
    """The SQLAlchemy URL ``PANDAS_WORKER`` reads from ``BENCH_PG_URL``."""
    return f"postgresql+psycopg2://{server.username}:{server.password}@{server.host}:{server.port}/{server.database}"


# --- Measuring one child process --------------------------------------------------------


def run_measured(command: list[str], *, cwd: Path, env: dict, log: Path) -> tuple[Measure, str]:
    """Run ``command`` to completion: its wall time, CPU time (process tree), peak RSS, output."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    output = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {os.waitstatus_to_exitcode(status)}:\n{output[-3000:]}")
    return Measure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024), output


def parquet_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def csv_data_rows(path: Path) -> int:
    """Lines after the header (no value of the table holds a line break)."""
    with path.open("rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b"")) - 1


# --- The workspace, through the real CLI ------------------------------------------------


class Workspace:
    """``dataplat init`` + ``project create`` + the connector and datasources, in a temporary folder."""

    def __init__(self, server) -> None:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="workspace-ds-", dir=DATA_DIR))
        self.root = self.dir / "ws"
        self.log = self.dir / "command.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))}
        self.env[PASSWORD_VAR] = server.password
        subprocess.run([str(DATAPLAT), "init", str(self.root)], env=self.env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
        self.cli("project", "create", PROJECT)
        self.cli("connector", "create", "sql", "pg", "--dialect", "postgresql", "--host", server.host, "--port", str(server.port),
                 "--username", server.username, "--password-env", PASSWORD_VAR, "--database", server.database)
        self.cli("datasource", "create", "big", "--connector", "pg", "--table", TABLE)
        self.cli("datasource", "create", "tiny", "--connector", "pg", "--table", TINY_TABLE)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args: str) -> str:
        result = subprocess.run([str(DATAPLAT), *args], cwd=self.root, env=self.env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"dataplat {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def timed(self, *args: str) -> Measure:
        return run_measured([str(DATAPLAT), *args], cwd=self.root, env=self.env, log=self.log)[0]

    def delete(self, name: str) -> None:
        self.cli("dataset", "delete", name, "--yes")

    def data_file(self, name: str) -> Path:
        """The current version's Parquet file (``current.json`` names it); a path that does
        not exist when the dataset does not."""
        folder = self.root / "projects" / PROJECT / "storage" / "datasets" / name
        pointer = folder / "current.json"
        if not pointer.exists():
            return folder / "data.parquet"
        return folder / "versions" / json.loads(pointer.read_text())["current"] / "data.parquet"


# --- One round: every contender once ----------------------------------------------------

CONTENDERS = ("ours", "ours_p", "refresh", "psql", "csv", "psql_p", "csv_p", "pandas", "tiny")


class Bench:
    def __init__(self, server, workspace: Workspace, rows: int) -> None:
        self.ws, self.rows = workspace, rows
        self.csv = workspace.dir / "file.csv"
        self.pandas_out = workspace.dir / "pandas.parquet"
        self.psql = [server.psql, "-h", server.host, "-p", str(server.port), "-U", server.username, "-d", server.database,
                     "-v", "ON_ERROR_STOP=1", "-q", "-c", f"\\copy (SELECT * FROM {TABLE}) TO '{self.csv}' WITH CSV HEADER"]
        self.psql_env = {**workspace.env, "PGPASSWORD": server.password}
        self.pandas_env = {**workspace.env, "BENCH_PG_URL": pandas_url(server)}
        self.counts: dict[str, set[int]] = {}
        self.pandas_steps: list[tuple[float, float, float]] = []

    def count(self, label: str, rows: int) -> None:
        self.counts.setdefault(label, set()).add(rows)

    def round(self) -> dict[str, Measure]:
        """Each contender once; the deletions between them are not timed."""
        ws, m = self.ws, {}
        if ws.data_file("snap").exists():
            ws.delete("snap")
        m["ours"] = ws.timed("dataset", "import", "--datasource", "big", "--name", "snap", "--no-profile")
        self.count("ours: dataset import --datasource --no-profile", parquet_rows(ws.data_file("snap")))
        m["refresh"] = ws.timed("dataset", "refresh", "snap", "--no-profile")
        self.count("ours: dataset refresh --no-profile", parquet_rows(ws.data_file("snap")))
        ws.delete("snap")
        m["ours_p"] = ws.timed("dataset", "import", "--datasource", "big", "--name", "snap")
        self.count("ours: dataset import --datasource (profiled)", parquet_rows(ws.data_file("snap")))

        for suffix, flags in (("", ["--no-profile"]), ("_p", [])):
            self.csv.unlink(missing_ok=True)
            m["psql" + suffix] = run_measured(self.psql, cwd=ws.root, env=self.psql_env, log=ws.log)[0]
            self.count("two-step: psql \\copy (CSV data lines)", csv_data_rows(self.csv))
            m["csv" + suffix] = ws.timed("dataset", "import", str(self.csv), "--name", "viacsv", *flags)
            self.count(f"two-step: dataset import file.csv{' --no-profile' if flags else ' (profiled)'}",
                       parquet_rows(ws.data_file("viacsv")))
            ws.delete("viacsv")

        self.pandas_out.unlink(missing_ok=True)
        m["pandas"], output = run_measured([sys.executable, "-c", PANDAS_WORKER, str(self.pandas_out)], cwd=ws.root,
                                           env=self.pandas_env, log=ws.log)
        length, *steps = output.split()
        self.pandas_steps.append(tuple(float(s) for s in steps))
        self.count("pandas: len(read_sql DataFrame)", int(length))
        self.count("pandas: to_parquet file", parquet_rows(self.pandas_out))

        if ws.data_file("tiny").exists():
            ws.delete("tiny")
        m["tiny"] = ws.timed("dataset", "import", "--datasource", "tiny", "--name", "tiny", "--no-profile")
        return m


def in_process_steps(server, rows: int, repeat: int, workdir: Path) -> dict[str, float]:
    """ADBC's read of the table alone, and read + write_parquet (what the snapshot's asset does), here."""
    from dataplat_dagster.connectors.models import SqlConnectorSpec
    from dataplat_dagster.connectors.registry import open_connector
    from dataplat_dagster.datasets.materialize import write_parquet

    spec = SqlConnectorSpec(dialect="postgresql", host=server.host, port=server.port, username=server.username,
                            password_env=PASSWORD_VAR, database=server.database)
    out = workdir / "inproc.parquet"
    with open_connector("bench", spec, workdir) as connector:
        query = f"SELECT * FROM {TABLE}"

        def read_write() -> None:
            written = write_parquet(connector.read_arrow(query), out)
            assert written == rows, f"write_parquet wrote {written} rows, expected {rows}"

        times: dict[str, list[float]] = {"read": [], "read_write": []}
        for _ in range(repeat + 1):  # the first is a warm-up
            for key, action in (("read", lambda: connector.read_arrow(query).read_all()), ("read_write", read_write)):
                started = time.perf_counter()
                action()
                times[key].append(time.perf_counter() - started)
    out.unlink(missing_ok=True)
    return {key: min(values[1:]) for key, values in times.items()}


# --- Report -----------------------------------------------------------------------------


def verdict_line(label: str, ratio: float, passes: Callable[[float], bool], target: str, meaning: str) -> None:
    print(f"  {label:<44} {ratio:6.2f}   target {target:<6} {'PASS' if passes(ratio) else 'MISS'}   ({meaning})")


def print_results(bench: Bench, rounds: list[dict[str, Measure]], steps: dict[str, float], rows: int) -> None:
    b = {key: best([r[key] for r in rounds]) for key in CONTENDERS}
    two_step = min(r["psql"].wall_s + r["csv"].wall_s for r in rounds)
    two_step_p = min(r["psql_p"].wall_s + r["csv_p"].wall_s for r in rounds)

    print("\nwall seconds (CPU seconds of the process tree), peak RSS in MiB; best of the rounds")
    lines = [
        ("ours: import --datasource --no-profile", b["ours"]),
        ("ours: import --datasource (profiled)", b["ours_p"]),
        ("ours: refresh --no-profile", b["refresh"]),
        ("two-step: psql \\copy to CSV", b["psql"]),
        ("two-step: import file.csv --no-profile", b["csv"]),
        ("two-step: import file.csv (profiled)", b["csv_p"]),
        ("pandas: read_sql + to_parquet", b["pandas"]),
        (f"ours: import --datasource of {TINY_ROWS} rows", b["tiny"]),
    ]
    for label, m in lines:
        print(f"  {label:<44} {m.wall_s:7.2f} s ({m.cpu_s:6.1f})   {m.rss_mib:6.0f} MiB")
    print(f"  {'two-step total, --no-profile':<44} {two_step:7.2f} s   (best round's psql + import)")
    print(f"  {'two-step total, profiled':<44} {two_step_p:7.2f} s")
    start_up, read_sql, to_parquet = (min(s[i] for s in bench.pandas_steps) for i in range(3))
    print(f"  pandas inside its process: imports {start_up:.2f} s, read_sql {read_sql:.2f} s, to_parquet {to_parquet:.2f} s")

    print("\nwhere ours spends its time (for information)")
    fixed = b["tiny"].wall_s
    print(f"  fixed cost (snapshot of a {TINY_ROWS}-row table)             {fixed:7.2f} s")
    print(f"  in this process: ADBC read_arrow, read_all        {steps['read']:7.2f} s")
    print(f"  in this process: read_arrow -> write_parquet      {steps['read_write']:7.2f} s")
    print(f"  ours (no profile) - fixed cost                    {b['ours'].wall_s - fixed:7.2f} s")
    print(f"  ours profiled - ours no profile (the profile)     {b['ours_p'].wall_s - b['ours'].wall_s:7.2f} s")

    print(f"\nrow counts (each must be {rows:,})")
    ok = True
    for label, found in bench.counts.items():
        good = found == {rows}
        ok &= good
        print(f"  {label:<50} {', '.join(f'{n:,}' for n in sorted(found)):>12}  {'ok' if good else 'WRONG'}")

    print("\nratios of wall times")
    verdict_line("two-step / ours (--no-profile)", two_step / b["ours"].wall_s, lambda r: r > 1, "> 1", "ours faster than psql + CSV import")
    verdict_line("two-step / ours (profiled)", two_step_p / b["ours_p"].wall_s, lambda r: r > 1, "> 1", "the same, both profiling")
    verdict_line("two-step / ours refresh (--no-profile)", two_step / b["refresh"].wall_s, lambda r: r > 1, "> 1", "a re-run of the snapshot")
    verdict_line("pandas / ours (--no-profile)", b["pandas"].wall_s / b["ours"].wall_s, lambda r: r >= 4, ">= 4", "times faster than read_sql + to_parquet")
    print(f"  {'pandas / ours refresh (--no-profile)':<44} {b['pandas'].wall_s / b['refresh'].wall_s:6.2f}   (for information)")
    if b["ours"].wall_s > fixed:
        print(f"  {'pandas / (ours - fixed cost)':<44} {b['pandas'].wall_s / (b['ours'].wall_s - fixed):6.2f}   (for information)")
    assert ok, "a path produced the wrong number of rows (see above)"


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- Main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the PostgreSQL table (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the best counts (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows, one round")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = QUICK_ROWS, 1

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"bench/datasources.py  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores; load average {load}; python {platform.python_version()}")
    print(f"  PostgreSQL table of {args.rows:,} rows x 8 columns; best of {args.repeat} rounds after a warm-up round")

    with tempfile.TemporaryDirectory(prefix="bench-pg-") as workdir, loaded_server(Path(workdir), args.rows) as server:
        with Workspace(server) as workspace:
            bench = Bench(server, workspace, args.rows)
            print(f"  this script's own RSS: {_rss_mib():.0f} MiB (the floor of every child's peak RSS)")
            started = time.perf_counter()
            bench.round()  # warm-up: the instance's databases, the page cache, the server's buffers
            print(f"  warm-up round: {time.perf_counter() - started:.0f} s", flush=True)
            rounds = []
            for index in range(args.repeat):
                rounds.append(bench.round())
                r = rounds[-1]
                print(f"  round {index + 1}: ours {r['ours'].wall_s:.2f} s, profiled {r['ours_p'].wall_s:.2f} s, "
                      f"refresh {r['refresh'].wall_s:.2f} s, two-step {r['psql'].wall_s + r['csv'].wall_s:.2f} s, "
                      f"profiled {r['psql_p'].wall_s + r['csv_p'].wall_s:.2f} s, pandas {r['pandas'].wall_s:.2f} s", flush=True)
            steps = in_process_steps(server, args.rows, args.repeat, Path(workdir))
            print_results(bench, rounds, steps, args.rows)
    print(f"\n  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
