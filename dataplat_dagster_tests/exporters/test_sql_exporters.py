"""SQL exporters against PostgreSQL, MariaDB and SQLite: both modes, the types they create,
atomic overwrites (a failing stream, a killed connection, a reader during the swap),
retention, and hostile names. Every result is read back with a separate client."""

import datetime
import sqlite3
import threading
import time
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
import yaml
from dagster import DagsterInstance, asset, materialize

from dataplat_dagster.definitions import project_definitions
from dataplat_dagster.exporters.models import ExporterSpec
from dataplat_dagster_tests.datasources.sources import pg_connection

TABLE = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "score": pa.array([0.5, 1.25, None], pa.float64()),
    "price": pa.array([Decimal("1.10"), Decimal("22.00"), Decimal("3.33")], pa.decimal128(8, 2)),
    "label": pa.array(["a", "b'; DROP TABLE x; --", "ç"], pa.string()),
    "day": pa.array([datetime.date(2024, 1, 1), datetime.date(2024, 2, 29), None], pa.date32()),
    "at": pa.array([datetime.datetime(2024, 1, 1, 12, 30), None, datetime.datetime(2025, 6, 1)], pa.timestamp("us")),
    "ok": pa.array([True, False, None], pa.bool_()),
})


class Project:
    """A project folder with one connector; exporters are added per test."""

    def __init__(self, root, connector: dict):
        self.dir = root / "shop"
        self.dir.mkdir()
        self.catalog = {"connectors": {"db": connector}, "exporters": {}}
        self.instance = DagsterInstance.ephemeral()

    def exporter(self, name: str, **spec) -> None:
        self.catalog["exporters"][name] = {"connector": "db", **spec}
        (self.dir / "dataplat.yaml").write_text(yaml.safe_dump(self.catalog))

    def export(self, exporter: str, value, raise_on_error: bool = True):
        @asset(name=f"out_{exporter}", io_manager_key=exporter)
        def output():
            return value() if callable(value) else value

        defs = project_definitions(self.dir)
        result = materialize([output], resources=defs.resources, instance=self.instance, raise_on_error=raise_on_error)
        return result

    @staticmethod
    def metadata(result, exporter: str) -> dict:
        event = result.asset_materializations_for_node(f"out_{exporter}")[0]
        return {key: value.value for key, value in event.metadata.items()}


def failing_stream(schema: pa.Schema, good_batches: int, rows_per_batch: int = 1000):
    """A stream that yields some batches, then fails, as a producer can mid-export."""

    def batches():
        for index in range(good_batches):
            yield pa.RecordBatch.from_pydict({"id": list(range(index * rows_per_batch, (index + 1) * rows_per_batch))}, schema=schema)
        raise RuntimeError("the producer broke at row %d" % (good_batches * rows_per_batch))

    return pa.RecordBatchReader.from_batches(schema, batches())


def ids(n: int, start: int = 0) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64())})


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def pg_project(postgres_server, monkeypatch, tmp_path):
    s = postgres_server
    monkeypatch.setenv("EXPORT_PG_PASSWORD", s.password)
    with pg_connection(s) as db, db.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS exports CASCADE")
        cursor.execute("CREATE SCHEMA exports")
    return Project(tmp_path, {"type": "sql", "dialect": "postgresql", "host": s.host, "port": s.port, "username": s.username,
                              "password_env": "EXPORT_PG_PASSWORD", "database": s.database})


def pg_rows(server, query: str):
    with pg_connection(server) as db, db.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def pg_tables(server, schema: str = "exports") -> list[str]:
    return [name for (name,) in pg_rows(server, f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' ORDER BY 1")]


def test_postgres_overwrite_twice_keeps_exactly_the_second_content(pg_project, postgres_server):
    pg_project.exporter("out", mode="overwrite", table="exports.scores")
    first = pg_project.export("out", TABLE)
    assert pg_project.metadata(first, "out")["dagster/row_count"] == 3
    second = pg_project.export("out", pd.DataFrame({"id": [7, 8], "label": ["x", "y"]}))
    meta = pg_project.metadata(second, "out")
    assert meta == {
        "dagster/row_count": 2, "export_mode": "overwrite", "exporter": "out", "exported_to": "scores",
        "dagster/relation_identifier": f"{postgres_server.database}.exports.scores",
        "dagster/table_name": f"{postgres_server.database}.exports.scores",
    }
    assert pg_rows(postgres_server, "SELECT id, label FROM exports.scores ORDER BY id") == [(7, "x"), (8, "y")]
    assert pg_tables(postgres_server) == ["scores"]  # no staging table left behind


def test_postgres_types_and_values(pg_project, postgres_server):
    pg_project.exporter("out", mode="overwrite", table="exports.typed")
    pg_project.export("out", TABLE)
    types = pg_rows(postgres_server, "SELECT column_name, data_type FROM information_schema.columns "
                                     "WHERE table_schema = 'exports' AND table_name = 'typed' ORDER BY ordinal_position")
    assert types == [("id", "bigint"), ("score", "double precision"), ("price", "numeric"), ("label", "text"),
                     ("day", "date"), ("at", "timestamp without time zone"), ("ok", "boolean")]
    rows = pg_rows(postgres_server, "SELECT * FROM exports.typed ORDER BY id")
    assert rows[1] == (2, 1.25, Decimal("22.00"), "b'; DROP TABLE x; --", datetime.date(2024, 2, 29), None, False)


def test_postgres_timestamped_twice_creates_two_tables_and_retention_drops_only_its_own(pg_project, postgres_server):
    with pg_connection(postgres_server) as db, db.cursor() as cursor:
        cursor.execute("CREATE TABLE exports.preds_backup (id int)")
        cursor.execute("CREATE TABLE exports.preds_2020 (id int)")
    pg_project.exporter("out", mode="timestamped", table="exports.preds", retention=2)
    names = []
    for n in (3, 4, 5):
        result = pg_project.export("out", ids(n))
        meta = pg_project.metadata(result, "out")
        assert meta["dagster/row_count"] == n and meta["export_mode"] == "timestamped"
        names.append(meta["exported_to"])
        time.sleep(1.1)  # the suffix has a resolution of one second
    assert all(len(name) == len("preds_20261201_063000") and name.startswith("preds_20") for name in names)
    assert names == sorted(names)
    assert pg_tables(postgres_server) == sorted(["preds_2020", "preds_backup", *names[1:]])
    assert pg_rows(postgres_server, f'SELECT count(*) FROM exports."{names[2]}"') == [(5,)]
    assert pg_rows(postgres_server, f'SELECT count(*) FROM exports."{names[1]}"') == [(4,)]
    assert pg_project.metadata(result, "out")["dropped_by_retention"] == [names[0]]


def test_postgres_a_timestamped_name_that_exists_is_an_error_not_a_replace(pg_project, postgres_server, monkeypatch):
    import dataplat_dagster.exporters.sql_target as sql_target

    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    monkeypatch.setattr(sql_target, "timestamp_suffix", lambda now=None: moment.strftime("%Y%m%d_%H%M%S"))
    pg_project.exporter("out", mode="timestamped", table="exports.preds")
    pg_project.export("out", ids(3))
    clash = pg_project.export("out", ids(9), raise_on_error=False)
    assert not clash.success
    message = clash.failure_data_for_node("out_out").user_failure_data.description
    assert 'table "exports"."preds_20260102_030405" already exists: a timestamped export never overwrites' in message
    assert pg_rows(postgres_server, 'SELECT count(*) FROM exports."preds_20260102_030405"') == [(3,)]


def test_postgres_a_stream_failing_at_row_900000_leaves_the_old_table(pg_project, postgres_server):
    pg_project.exporter("out", mode="overwrite", table="exports.big")
    pg_project.export("out", ids(10))
    schema = pa.schema([("id", pa.int64())])
    failed = pg_project.export("out", lambda: failing_stream(schema, 900, 1000), raise_on_error=False)
    assert not failed.success
    assert pg_rows(postgres_server, "SELECT count(*), min(id), max(id) FROM exports.big") == [(10, 0, 9)]
    assert pg_tables(postgres_server) == ["big"]


def test_postgres_a_killed_connection_leaves_the_old_table(pg_project, postgres_server):
    pg_project.exporter("out", mode="overwrite", table="exports.victim")
    pg_project.export("out", ids(10))
    schema = pa.schema([("id", pa.int64())])
    started = threading.Event()

    def slow():
        for index in range(10_000):
            if index == 5:
                started.set()
            time.sleep(0.01)
            yield pa.RecordBatch.from_pydict({"id": list(range(index * 100, (index + 1) * 100))}, schema=schema)

    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", pg_project.export(
        "out", lambda: pa.RecordBatchReader.from_batches(schema, slow()), raise_on_error=False)))
    worker.start()
    assert started.wait(60)
    time.sleep(0.3)
    killed = pg_rows(postgres_server, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE pid <> pg_backend_pid() AND query ILIKE 'COPY%'")
    worker.join(120)
    assert killed and killed[0][0] is True
    assert not outcome["result"].success
    assert pg_rows(postgres_server, "SELECT count(*) FROM exports.victim") == [(10,)]
    assert pg_tables(postgres_server) == ["victim"]


def test_postgres_a_reader_during_overwrites_sees_the_old_or_the_new_table_whole(pg_project, postgres_server):
    pg_project.exporter("out", mode="overwrite", table="exports.live")
    pg_project.export("out", ids(50_000))
    seen, errors, stop = set(), [], threading.Event()

    def reader():
        import psycopg2

        # Not `with connection:`, which opens one transaction for the whole block (psycopg2
        # 2.9): each count must be its own statement, as a dashboard's queries are.
        db = pg_connection(postgres_server)
        db.autocommit = True
        try:
            with db.cursor() as cursor:
                while not stop.is_set():
                    try:
                        cursor.execute("SELECT count(*) FROM exports.live")
                        seen.add(cursor.fetchone()[0])
                    except psycopg2.Error as error:
                        errors.append(str(error))
        finally:
            db.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in (80_000, 50_000, 80_000):
            pg_project.export("out", ids(n))
    finally:
        stop.set()
        thread.join(30)
    assert errors == [] and seen <= {50_000, 80_000} and len(seen) == 2


def test_hostile_names_are_refused_and_odd_ones_work_exactly_as_written(pg_project, postgres_server):
    with pg_connection(postgres_server) as db, db.cursor() as cursor:
        cursor.execute("CREATE TABLE exports.victims (id int)")
    for name, words in [
        ('exports.x"; DROP TABLE exports.victims; --', "contains '\"' ';'"),
        ("exports.x'); DROP TABLE exports.victims; --", "contains \"'\" ')' '(' ';'"),
        ("exports.a.b", "more than one dot"),
        ("exports.`tick`", "contains '`'"),
        ("exports.back\\slash", "contains '\\\\'"),
        ("exports. padded", "starts or ends with a space"),
        ("exports." + "x" * 64, "longer than 63 bytes"),
    ]:
        with pytest.raises(ValueError) as refused:
            ExporterSpec(connector="db", mode="overwrite", table=name)
        assert "so that a name is never read as SQL" in str(refused.value) or words in str(refused.value), (name, str(refused.value))
    with pytest.raises(ValueError, match="longer than 47 bytes \\(the timestamp suffix takes 16\\)"):
        ExporterSpec(connector="db", mode="timestamped", table="x" * 50)

    for name in ("select", "my table", "Prédictions-2024", "drop$"):
        pg_project.exporter("odd", mode="overwrite", table=f"exports.{name}")
        pg_project.export("odd", ids(2))
    assert pg_tables(postgres_server) == sorted(["Prédictions-2024", "drop$", "my table", "select", "victims"])
    assert pg_rows(postgres_server, 'SELECT count(*) FROM exports."select"') == [(2,)]


# -- MariaDB ------------------------------------------------------------------------------


def test_mariadb_overwrite_swaps_atomically_and_a_failure_leaves_the_old_table(mariadb_server, monkeypatch, tmp_path):
    import pymysql

    s = mariadb_server
    monkeypatch.setenv("EXPORT_MARIA_PASSWORD", s.password)
    project = Project(tmp_path, {"type": "sql", "dialect": "mysql", "host": s.host, "port": s.port, "username": s.username,
                                 "password_env": "EXPORT_MARIA_PASSWORD", "database": s.database})

    def query(sql: str):
        with pymysql.connect(host=s.host, port=s.port, user=s.username, password=s.password, database=s.database, autocommit=True) as db, db.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    query("DROP TABLE IF EXISTS `maria scores`")
    project.exporter("out", mode="overwrite", table="maria scores")
    project.export("out", TABLE)
    second = project.export("out", pd.DataFrame({"id": [7, 8], "label": ["x", "y"]}))
    assert project.metadata(second, "out")["dagster/relation_identifier"] == f"{s.database}.maria scores"
    assert query("SELECT id, label FROM `maria scores` ORDER BY id") == ((7, "x"), (8, "y"))

    schema = pa.schema([("id", pa.int64())])
    failed = project.export("out", lambda: failing_stream(schema, 5), raise_on_error=False)
    assert not failed.success
    assert query("SELECT id, label FROM `maria scores` ORDER BY id") == ((7, "x"), (8, "y"))
    assert [name for (name,) in query("SHOW TABLES") if name.startswith("dataplat_staging_")] == []

    project.exporter("stamped", mode="timestamped", table="maria_preds")
    meta = project.metadata(project.export("stamped", TABLE), "stamped")
    assert query(f"SELECT count(*) FROM `{meta['exported_to']}`") == ((3,),)


# -- SQLite -------------------------------------------------------------------------------


def test_sqlite_both_modes_and_a_failed_overwrite(tmp_path):
    database = tmp_path / "out.db"
    project = Project(tmp_path, {"type": "sql", "dialect": "sqlite", "database": str(database)})
    project.exporter("out", mode="overwrite", table="scores")
    project.export("out", TABLE)
    project.export("out", ids(4))
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT id FROM scores ORDER BY id").fetchall() == [(0,), (1,), (2,), (3,)]
    failed = project.export("out", lambda: failing_stream(pa.schema([("id", pa.int64())]), 3), raise_on_error=False)
    assert not failed.success
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM scores").fetchone() == (4,)
        assert [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["scores"]

    project.exporter("stamped", mode="timestamped", table="preds")
    first = project.metadata(project.export("stamped", TABLE), "stamped")["exported_to"]
    time.sleep(1.1)
    second = project.metadata(project.export("stamped", ids(5)), "stamped")["exported_to"]
    with sqlite3.connect(database) as db:
        assert db.execute(f'SELECT label FROM "{first}" ORDER BY id').fetchall() == [("a",), ("b'; DROP TABLE x; --",), ("ç",)]
        assert db.execute(f'SELECT count(*) FROM "{second}"').fetchone() == (5,)


def test_a_downstream_asset_reads_the_exported_table_back(tmp_path):
    project = Project(tmp_path, {"type": "sql", "dialect": "sqlite", "database": str(tmp_path / "out.db")})
    project.exporter("stamped", mode="timestamped", table="preds")
    seen = {}

    @asset(io_manager_key="stamped")
    def preds():
        return ids(4)

    @asset
    def as_frame(preds: pd.DataFrame) -> None:
        seen["frame"] = preds

    @asset
    def as_arrow(preds: pa.Table) -> None:
        seen["arrow"] = preds

    defs = project_definitions(project.dir)
    assert materialize([preds, as_frame, as_arrow], resources=defs.resources, instance=project.instance).success
    assert isinstance(seen["frame"], pd.DataFrame) and seen["frame"]["id"].tolist() == [0, 1, 2, 3]
    assert isinstance(seen["arrow"], pa.Table) and seen["arrow"].column("id").to_pylist() == [0, 1, 2, 3]
