"""Benchmark: the connectors' data paths against the bare clients, measured in one run.

PostgreSQL (``--part sql``): bulk-write and bulk-read a 1-million-row x 8-column table
through ``SqlConnector.write_arrow`` / ``read_arrow`` (ADBC, Arrow through COPY) and
through its peers:

  - ``psql \\copy t FROM 'file.csv'`` / ``\\copy (SELECT ...) TO 'file.csv'`` (target: ours at
    least 0.7x its throughput, i.e. psql's time / ours >= 0.7);
  - pandas ``to_sql`` (SQLAlchemy + psycopg2, ``method=None``, 10k-row chunks; target: ours at
    least 10x faster) and ``read_sql`` (target: at least 5x faster).

psql reads and writes a CSV file already on disk (its time does not include making it);
ours starts from / ends at an Arrow table in memory, pandas from / at a DataFrame.

File stores (``--part stores``): upload and download a 100 MB file through our
``FileStore`` and through the bare client (boto3, google-cloud-storage, ftplib, paramiko)
against the same servers the tests use (target: ours at least 0.9x the bare client's
throughput). See ``bench_stores`` below.

Every server is started on 127.0.0.1 by the tests' own server fixtures. The machine may
be shared and noisy: the figures that matter are the ratios, printed with their targets.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dataplat_dagster.connectors.models import SqlConnectorSpec  # noqa: E402
from dataplat_dagster.connectors.registry import open_connector  # noqa: E402
from dataplat_dagster_tests.servers.postgres import start_postgres  # noqa: E402

PASSWORD_VAR = "BENCH_PG_PASSWORD"


def best_of(repeat: int, action: Callable[[], object], before: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def sample_table(rows: int) -> pa.Table:
    rng = np.random.default_rng(7)
    words = np.array(["north", "south", "east", "west", "centre", "élan", "o'brien", "a,b"])
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "quantity": pa.array(rng.integers(0, 1000, rows, dtype=np.int32)),
            "price": pa.array(rng.normal(100, 20, rows)),
            "discount": pa.array(rng.random(rows)),
            "region": pa.array(words[rng.integers(0, len(words), rows)]),
            "code": pa.array([f"C{value:07d}" for value in rng.integers(0, 10_000_000, rows)]),
            "sold_at": pa.array(np.datetime64("2024-01-01") + rng.integers(0, 3.15e13, rows).astype("timedelta64[us]")),
            "paid": pa.array(rng.random(rows) < 0.7),
        }
    )


def report(label: str, ratio: float, target: float, meaning: str) -> None:
    verdict = "PASS" if ratio >= target else "MISS"
    print(f"  {label:<44} {ratio:6.2f}   target >= {target:<4g} {verdict}   ({meaning})")


def bench_sql(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as workdir, start_postgres(Path(workdir)) as server:
        os.environ[PASSWORD_VAR] = server.password
        spec = SqlConnectorSpec(dialect="postgresql", host=server.host, port=server.port, username=server.username,
                                password_env=PASSWORD_VAR, database=server.database)
        table = sample_table(rows)
        frame = table.to_pandas()
        csv_in = Path(workdir) / "in.csv"
        csv_out = Path(workdir) / "out.csv"
        pacsv.write_csv(table, csv_in)
        psql_env = {**os.environ, "PGPASSWORD": server.password}
        psql = [server.psql, "-h", server.host, "-p", str(server.port), "-U", server.username, "-d", server.database, "-v", "ON_ERROR_STOP=1", "-q"]

        def run_psql(command: str) -> None:
            subprocess.run([*psql, "-c", command], env=psql_env, check=True, capture_output=True)

        with open_connector("bench", spec, Path(workdir)) as connector:
            engine = connector.engine()

            def fresh_psql_table() -> None:
                run_psql("DROP TABLE IF EXISTS bench_psql")
                # The same column types ADBC creates from the Arrow schema.
                run_psql("CREATE TABLE bench_psql (id bigint, quantity integer, price double precision, discount double precision,"
                         " region text, code text, sold_at timestamp, paid boolean)")

            print(f"PostgreSQL {rows:,} rows x 8 columns, best of {repeat}:")
            ours_write = best_of(repeat, lambda: connector.write_arrow("bench_ours", table, mode="replace"))
            psql_write = best_of(repeat, lambda: run_psql(f"\\copy bench_psql FROM '{csv_in}' CSV HEADER"), fresh_psql_table)
            to_sql = best_of(1, lambda: frame.to_sql("bench_pandas", engine, if_exists="replace", index=False, chunksize=10_000))
            ours_read = best_of(repeat, lambda: connector.read_arrow("SELECT * FROM bench_ours").read_all())
            psql_read = best_of(repeat, lambda: run_psql(f"\\copy (SELECT * FROM bench_ours) TO '{csv_out}' CSV HEADER"))
            import pandas as pd

            read_sql = best_of(1, lambda: pd.read_sql("SELECT * FROM bench_ours", engine))
            count = connector.read_arrow("SELECT count(*) AS n FROM bench_ours").read_all().column("n")[0].as_py()
            assert count == rows, f"wrote {count} rows, expected {rows}"

        print(f"  write: ours (ADBC COPY) {ours_write:6.2f} s   psql \\copy {psql_write:6.2f} s   pandas to_sql {to_sql:6.2f} s")
        print(f"  read:  ours (ADBC COPY) {ours_read:6.2f} s   psql \\copy {psql_read:6.2f} s   pandas read_sql {read_sql:6.2f} s")
        report("write: psql \\copy time / ours", psql_write / ours_write, 0.7, "ours vs psql throughput")
        report("write: pandas to_sql time / ours", to_sql / ours_write, 10, "how many times faster than to_sql")
        report("read:  psql \\copy time / ours", psql_read / ours_read, 0.7, "ours vs psql throughput")
        report("read:  pandas read_sql time / ours", read_sql / ours_read, 5, "how many times faster than read_sql")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["sql", "stores", "all"], default="all")
    parser.add_argument("--rows", type=int, default=1_000_000, help="Rows of the PostgreSQL table.")
    parser.add_argument("--megabytes", type=int, default=100, help="Size of the file-store transfer.")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.part in ("sql", "all"):
        bench_sql(args.rows, args.repeat)
    if args.part in ("stores", "all"):
        from bench_stores import bench_stores

        bench_stores(args.megabytes, args.repeat)


if __name__ == "__main__":
    main()
