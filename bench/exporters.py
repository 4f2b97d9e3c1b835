"""Benchmark: a SQL exporter (the IO manager) writing a 1-million-row table to PostgreSQL.

A PostgreSQL 15 server on 127.0.0.1 (the tests' own starter, fsync off) and a project folder
whose ``dataplat.yaml`` holds one PostgreSQL connector (password in ``BENCH_PG_PASSWORD``,
``password_env``) and two exporters:

  over     mode overwrite,   table ``bench.exported``
  stamped  mode timestamped, table ``bench.stamped`` (``bench.stamped_<UTC timestamp>``), retention 2

``defs = project_definitions(project_dir)`` is built once, as a code location loads it. The
table is ``sample_table`` of ``bench/connectors.py`` (int64, int32, 2 float64, 2 text,
timestamp, bool), in memory. This times, best of ``--repeat`` rounds after one untimed
warm-up round, the contenders taking turns within each round:

  ours, materialize  ``dagster.materialize([asset], resources=defs.resources, instance=...)``
                     of an asset that returns the ``pyarrow.Table``, with ``io_manager_key``
                     ``over`` (resp. ``stamped``): the way a pipeline uses the exporter. The
                     ephemeral instance is made just before, untimed;
  ours, write alone  ``io.export(reader, log)`` on the IO manager initialised (untimed) with
                     ``defs.resources[key].process_config_and_initialize_cm()``: what
                     ``handle_output`` does, without Dagster's run around it;
  psql \\copy         ``psql -c "\\copy bench.peer_copy FROM 'file.csv' CSV HEADER"`` into a table
                     created beforehand with the same column types (untimed); the CSV is
                     written once, before anything is timed (pyarrow ``write_csv``);
  pandas to_sql      ``df.to_sql("peer_pandas", engine, schema="bench", if_exists="replace",
                     index=False, method="multi", chunksize=10000)`` (SQLAlchemy + psycopg2) on
                     the first ``--pandas-rows`` rows (default 100,000; 20,000 with
                     ``--quick``), scaled linearly to ``--rows`` when fewer (said so in the
                     output): ``method="multi"`` took 26-41 s per 100k rows here;
  plain ADBC         ``TRUNCATE bench.plain`` then ``cursor.adbc_ingest("plain", reader,
                     mode="append", db_schema_name="bench")`` and commit, on a fresh ADBC
                     connection from the same connector: the baseline without staging table or swap.

Targets (ours = the materialize figure; the write-alone one is judged too): psql time / ours
>= 0.7 and to_sql time / ours >= 10, for both modes; plain time / ours is printed without a
target (what the staging table and the swap, or a new table, cost).

Checked after every export, in PostgreSQL (a correctness check, not a timing): the row count
of each target (``--rows``; pandas' ``--pandas-rows``), no staging table left over, and for
the timestamped exporter a new table each time with at most 2 kept (retention).

The machine may be shared and noisy: the figures that matter are the ratios between
contenders measured in the same run, printed with their targets (PASS/MISS).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import resource
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from connectors import PASSWORD_VAR, sample_table  # noqa: E402  (bench/ is the script's folder)
from ingest import Measure, best  # noqa: E402

from dataplat_dagster_tests.servers.postgres import start_postgres  # noqa: E402

SCHEMA = "bench"
QUICK_ROWS = 200_000
PANDAS_ROWS = 100_000
QUICK_PANDAS_ROWS = 20_000
RETENTION = 2
STAMPED_NAME = re.compile(r"^stamped_\d{8}_\d{6}$")
# The column types ADBC creates from the Arrow schema of sample_table.
COLUMNS = ("(id bigint, quantity integer, price double precision, discount double precision, region text, code text,"
           " sold_at timestamp, paid boolean)")


class Clock:
    """Wall time and CPU time (this process, its threads and its children: psql) of a block,
    as an ``ingest.Measure``; RSS is not measured here (0)."""

    def __enter__(self) -> "Clock":
        self._cpu = self._cpu_now()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.measure = Measure(time.perf_counter() - self._wall, self._cpu_now() - self._cpu, 0.0)

    @staticmethod
    def _cpu_now() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


CONTENDERS = ("over_mat", "over_io", "stamped_mat", "stamped_io", "psql", "plain", "pandas")


def write_project(project_dir: Path, server) -> None:
    """The project's catalog, as the CLI would write it (connector + two exporters)."""
    project_dir.mkdir(parents=True)
    catalog = {
        "storage_root": "storage",
        "datasets": {},
        "connectors": {"pg": {"type": "sql", "dialect": "postgresql", "host": server.host, "port": server.port,
                              "username": server.username, "password_env": PASSWORD_VAR, "database": server.database}},
        "exporters": {
            "over": {"connector": "pg", "mode": "overwrite", "table": f"{SCHEMA}.exported"},
            "stamped": {"connector": "pg", "mode": "timestamped", "table": f"{SCHEMA}.stamped", "retention": RETENTION},
        },
    }
    (project_dir / "dataplat.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))


class Bench:
    def __init__(self, server, project_dir: Path, workdir: Path, rows: int, pandas_rows: int) -> None:
        import psycopg2
        from dagster import asset

        from dataplat_dagster.definitions import project_definitions

        self.rows, self.pandas_rows = rows, pandas_rows
        self.table = sample_table(rows)
        self.frame = self.table.slice(0, pandas_rows).to_pandas()
        self.csv = workdir / "peer.csv"
        self.dagster_log = workdir / "dagster.log"
        pacsv.write_csv(self.table, self.csv)  # not timed: psql starts from a file on disk
        self.psql = [server.psql, "-h", server.host, "-p", str(server.port), "-U", server.username, "-d", server.database,
                     "-v", "ON_ERROR_STOP=1", "-q"]
        self.psql_env = {**os.environ, "PGPASSWORD": server.password}
        # A separate client for the checks and the untimed set-up (autocommit).
        self.db = psycopg2.connect(host=server.host, port=server.port, user=server.username, password=server.password,
                                   dbname=server.database)
        self.db.autocommit = True
        self.sql(f"CREATE SCHEMA {SCHEMA}")
        self.sql(f"CREATE TABLE {SCHEMA}.plain {COLUMNS}")

        self.defs = project_definitions(project_dir)
        table = self.table

        @asset(name="bench_over", io_manager_key="over")
        def bench_over() -> pa.Table:
            return table

        @asset(name="bench_stamped", io_manager_key="stamped")
        def bench_stamped() -> pa.Table:
            return table

        self.assets = {"over": bench_over, "stamped": bench_stamped}
        self.log = logging.getLogger("bench.exporters")
        # The plain baseline: the same connector resource, initialised as a run would.
        self._connector_cm = self.defs.resources["pg"].process_config_and_initialize_cm()
        self.connector = self._connector_cm.__enter__()
        self.counts: dict[str, set[int]] = {}
        self.problems: list[str] = []
        self.stamped_seen: list[str] = []
        self.stamped_kept: list[int] = []
        self.engine = self.connector.engine()

    def close(self) -> None:
        self._connector_cm.__exit__(None, None, None)
        self.db.close()

    # -- helpers --------------------------------------------------------------------------

    def sql(self, statement: str):
        with self.db.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else None

    def row_count(self, table: str) -> int:
        return self.sql(f"SELECT count(*) FROM {SCHEMA}.{table}")[0][0]

    def tables(self) -> list[str]:
        return [name for (name,) in self.sql(f"SELECT tablename FROM pg_tables WHERE schemaname = '{SCHEMA}' ORDER BY 1")]

    def count(self, label: str, rows: int) -> None:
        self.counts.setdefault(label, set()).add(rows)

    def reader(self) -> pa.RecordBatchReader:
        # What the IO manager's Arrow handler makes of a returned table (64k-row batches).
        return pa.RecordBatchReader.from_batches(self.table.schema, self.table.to_batches(max_chunksize=64 * 1024))

    def _next_second(self) -> None:
        """A timestamped export names its table by the UTC second: never two in one second."""
        from dataplat_dagster.exporters.models import timestamp_suffix

        last = self.stamped_seen[-1].rsplit("_", 2) if self.stamped_seen else None
        while last and timestamp_suffix() <= "_".join(last[1:]):
            time.sleep(0.05)

    # -- the contenders -------------------------------------------------------------------

    def ours_materialize(self, key: str) -> Measure:
        from dagster import DagsterInstance, materialize

        before = set(self.tables())
        if key == "stamped":
            self._next_second()
        instance = DagsterInstance.ephemeral()
        # Dagster's console logger writes each event to stderr: to a file here, as a deployment would.
        with open(self.dagster_log, "a") as log, contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
            with Clock() as clock:
                result = materialize([self.assets[key]], resources=self.defs.resources, instance=instance)
        assert result.success
        event = result.asset_materializations_for_node(f"bench_{key}")[0]
        written = event.metadata["exported_to"].value
        assert event.metadata["dagster/row_count"].value == self.rows
        self.check_target(key, "materialize", written, before)
        return clock.measure

    def ours_write_alone(self, key: str) -> Measure:
        before = set(self.tables())
        if key == "stamped":
            self._next_second()
        with self.defs.resources[key].process_config_and_initialize_cm() as io:
            reader = self.reader()
            with Clock() as clock:
                metadata = io.export(reader, self.log)
        self.check_target(key, "write alone", metadata["exported_to"].value, before)
        return clock.measure

    def check_target(self, key: str, how: str, written: str, before: set[str]) -> None:
        after = set(self.tables())
        self.count(f"ours {key}, {how}: {SCHEMA}.{written if key == 'over' else 'stamped_<new>'}", self.row_count(written))
        leftovers = sorted(name for name in after if name.startswith("dataplat_staging_"))
        if leftovers:
            self.problems.append(f"staging tables left over after {key} ({how}): {leftovers}")
        if key == "stamped":
            stamped = sorted(name for name in after if STAMPED_NAME.match(name))
            if written in before or written in self.stamped_seen:
                self.problems.append(f"timestamped export reused the name {written}")
            if written not in stamped:
                self.problems.append(f"timestamped export's table {written} is not there")
            self.stamped_seen.append(written)
            self.stamped_kept.append(len(stamped))
            expected = min(RETENTION, len(self.stamped_seen))
            if stamped != sorted(self.stamped_seen[-expected:]):
                self.problems.append(f"after {len(self.stamped_seen)} timestamped exports the tables are {stamped}, "
                                     f"expected the newest {expected}: {sorted(self.stamped_seen[-expected:])}")

    def psql_copy(self) -> Measure:
        self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.peer_copy")
        self.sql(f"CREATE TABLE {SCHEMA}.peer_copy {COLUMNS}")
        command = [*self.psql, "-c", f"\\copy {SCHEMA}.peer_copy FROM '{self.csv}' CSV HEADER"]
        with Clock() as clock:
            subprocess.run(command, env=self.psql_env, check=True, capture_output=True)
        self.count(f"psql \\copy: {SCHEMA}.peer_copy", self.row_count("peer_copy"))
        return clock.measure

    def pandas_to_sql(self) -> Measure:
        with Clock() as clock:
            self.frame.to_sql("peer_pandas", self.engine, schema=SCHEMA, if_exists="replace", index=False, method="multi",
                              chunksize=10_000)
        self.count(f"pandas to_sql: {SCHEMA}.peer_pandas (of {self.pandas_rows:,} rows)", self.row_count("peer_pandas"))
        return clock.measure

    def plain_adbc(self) -> Measure:
        reader = self.reader()
        with Clock() as clock:
            with self.connector.adbc_connection() as connection, connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {SCHEMA}.plain")
                cursor.adbc_ingest("plain", reader, mode="append", db_schema_name=SCHEMA)
                connection.commit()
        self.count(f"plain ADBC: {SCHEMA}.plain", self.row_count("plain"))
        return clock.measure

    def round(self) -> dict[str, Measure]:
        """Every contender once, in turns: ours and the peers alternate."""
        return {
            "over_mat": self.ours_materialize("over"),
            "psql": self.psql_copy(),
            "stamped_mat": self.ours_materialize("stamped"),
            "plain": self.plain_adbc(),
            "over_io": self.ours_write_alone("over"),
            "pandas": self.pandas_to_sql(),
            "stamped_io": self.ours_write_alone("stamped"),
        }


# --- Report -----------------------------------------------------------------------------


def report(label: str, ratio: float, target: float | None, meaning: str) -> None:
    if target is None:
        print(f"  {label:<46} {ratio:6.2f}   {'(no target)':<20}   ({meaning})")
    else:
        verdict = "PASS" if ratio >= target else "MISS"
        print(f"  {label:<46} {ratio:6.2f}   target >= {target:<4g} {verdict}   ({meaning})")


def print_results(bench: Bench, rounds: list[dict[str, Measure]]) -> None:
    m = {key: best([r[key] for r in rounds]) for key in CONTENDERS}
    b = {key: measure.wall_s for key, measure in m.items()}
    scale = bench.rows / bench.pandas_rows
    to_sql = b["pandas"] * scale
    print("\nwall seconds (CPU seconds of this process and its children, not the server's), best of the rounds")
    lines = [("ours overwrite: materialize", "over_mat"), ("ours overwrite: write alone (io.export)", "over_io"),
             ("ours timestamped: materialize", "stamped_mat"), ("ours timestamped: write alone", "stamped_io"),
             ("psql \\copy (CSV already on disk)", "psql"), ("plain ADBC: TRUNCATE + append + commit", "plain"),
             ("pandas to_sql (method=multi, 10k chunks)", "pandas")]
    for label, key in lines:
        each = ", ".join(f"{r[key].wall_s:.2f}" for r in rounds)
        print(f"  {label:<46} {m[key].wall_s:7.2f} s ({m[key].cpu_s:5.2f})   rounds: {each}")
    if scale != 1:
        print(f"  {'pandas to_sql, SCALED to ' + f'{bench.rows:,}' + ' rows':<46} {to_sql:7.2f} s   "
              f"(measured on {bench.pandas_rows:,} rows, x {scale:g})")
    print(f"  {'Dagster run around the overwrite (mat - alone)':<46} {b['over_mat'] - b['over_io']:7.2f} s")
    print(f"  {'Dagster run around the timestamped':<46} {b['stamped_mat'] - b['stamped_io']:7.2f} s")

    print(f"\nchecks in PostgreSQL (each count must be {bench.rows:,}; pandas' {bench.pandas_rows:,})")
    ok = True
    for label, found in bench.counts.items():
        want = bench.pandas_rows if label.startswith("pandas") else bench.rows
        good = found == {want}
        ok &= good
        print(f"  {label:<58} {', '.join(f'{n:,}' for n in sorted(found)):>12}  {'ok' if good else 'WRONG'}")
    print(f"  timestamped: {len(bench.stamped_seen)} exports, {len(set(bench.stamped_seen))} distinct new tables; "
          f"tables kept after each: {bench.stamped_kept} (retention {RETENTION})  {'ok' if not bench.problems else 'WRONG'}")
    print(f"  left in schema {SCHEMA}: {', '.join(bench.tables())}")
    for problem in bench.problems:
        print(f"  PROBLEM: {problem}")

    scaled = " (scaled)" if scale != 1 else ""
    for mode, key in (("overwrite", "over"), ("timestamped", "stamped")):
        for how, suffix in (("materialize", "mat"), ("write alone", "io")):
            ours = b[f"{key}_{suffix}"]
            print(f"\nratios, {mode}, ours = {how} ({ours:.2f} s)")
            report("psql \\copy time / ours", b["psql"] / ours, 0.7, "ours vs psql throughput")
            report(f"pandas to_sql time{scaled} / ours", to_sql / ours, 10, "how many times faster than to_sql")
            report("plain ADBC time / ours", b["plain"] / ours, None, "the price of the atomic swap" if key == "over"
                   else "the price of a new table + retention")
    assert ok and not bench.problems, "a check failed (see above)"


# --- Main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the exported table (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the best counts (default %(default)s)")
    parser.add_argument("--pandas-rows", type=int, default=PANDAS_ROWS,
                        help="rows pandas to_sql writes, scaled linearly to --rows (default %(default)s; at most --rows)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows (pandas {QUICK_PANDAS_ROWS:,}), one round")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat, args.pandas_rows = QUICK_ROWS, 1, min(args.pandas_rows, QUICK_PANDAS_ROWS)
    args.pandas_rows = min(args.pandas_rows, args.rows)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"bench/exporters.py  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores; load average {load}; python {platform.python_version()}")
    print(f"  {args.rows:,} rows x 8 columns to PostgreSQL; pandas on {args.pandas_rows:,} rows; "
          f"best of {args.repeat} rounds after a warm-up round", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-pg-") as workdir, start_postgres(Path(workdir)) as server:
        os.environ[PASSWORD_VAR] = server.password
        project_dir = Path(workdir) / "bench"
        write_project(project_dir, server)
        bench = Bench(server, project_dir, Path(workdir), args.rows, args.pandas_rows)
        try:
            started = time.perf_counter()
            bench.round()  # warm-up: imports, the server's buffers, the page cache
            print(f"  warm-up round: {time.perf_counter() - started:.0f} s", flush=True)
            rounds = []
            for index in range(args.repeat):
                rounds.append(bench.round())
                r = rounds[-1]
                print(f"  round {index + 1}: " + ", ".join(f"{key} {r[key].wall_s:.2f}" for key in CONTENDERS), flush=True)
            print_results(bench, rounds)
        finally:
            bench.close()
    print(f"\n  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
