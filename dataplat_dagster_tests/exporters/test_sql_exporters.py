"""SQL exporters against PostgreSQL, MariaDB and SQLite: both modes, the types they create,
atomic overwrites (a failing stream, a killed connection, a reader during the swap),
retention, and hostile names. Every result is read back with a separate client."""

import datetime
import logging
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


def export_at_once(project: "Project", exporter: str, tables: list[pa.Table]) -> list[str]:
    """Export each table through ``exporter`` at the same time, one thread each, their rows
    streamed in step so that they publish together; returns the name each one got."""
    from dagster import build_resources

    resource = project_definitions(project.dir).resources[exporter]
    in_step = threading.Barrier(len(tables))
    names, errors = [None] * len(tables), []

    def export(index: int) -> None:
        def batches():
            in_step.wait(60)
            yield from tables[index].to_batches()

        reader = pa.RecordBatchReader.from_batches(tables[index].schema, batches())
        try:
            with build_resources({exporter: resource}) as started:
                names[index] = getattr(started, exporter).export(reader, logging.getLogger(__name__))["exported_to"].value
        except Exception as error:  # reported by the test, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=export, args=(index,)) for index in range(len(tables))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    return names


def same_second_clock(monkeypatch, *stamps: str) -> list[str]:
    """Timestamped names take these stamps in turn (the list that is returned empties as they
    are taken), as a clock would give two exports that publish in the same second."""
    import dataplat_dagster.exporters.models as models

    left = list(stamps)
    monkeypatch.setattr(models, "timestamp_suffix", lambda moment=None: left.pop(0))
    return left


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


def test_postgres_two_timestamped_exports_in_the_same_second_both_succeed_and_sort_by_time(pg_project, postgres_server, monkeypatch):
    stamps = same_second_clock(monkeypatch, "20260102_030405", "20260102_030405", "20260102_030406")
    pg_project.exporter("out", mode="timestamped", table="exports.preds")
    first = pg_project.metadata(pg_project.export("out", ids(3)), "out")["exported_to"]
    second = pg_project.metadata(pg_project.export("out", ids(9)), "out")["exported_to"]
    assert stamps == []  # the second export found its second's name taken and took the next one
    assert (first, second) == ("preds_20260102_030405", "preds_20260102_030406")
    assert pg_tables(postgres_server) == [first, second]
    assert pg_rows(postgres_server, f'SELECT count(*) FROM exports."{first}"') == [(3,)]  # never replaced
    assert pg_rows(postgres_server, f'SELECT count(*) FROM exports."{second}"') == [(9,)]


def test_postgres_two_timestamped_exports_publishing_at_once_in_the_same_second_both_succeed(pg_project, postgres_server, monkeypatch):
    stamps = same_second_clock(monkeypatch, "20260102_030405", "20260102_030405", "20260102_030406")
    pg_project.exporter("out", mode="timestamped", table="exports.preds")
    names = export_at_once(pg_project, "out", [ids(3), ids(9)])
    assert stamps == []
    assert sorted(names) == ["preds_20260102_030405", "preds_20260102_030406"]
    assert pg_tables(postgres_server) == sorted(names)
    assert [pg_rows(postgres_server, f'SELECT count(*) FROM exports."{name}"') for name in names] == [[(3,)], [(9,)]]


def test_postgres_a_timestamped_name_taken_every_second_is_an_error_not_a_replace(pg_project, postgres_server, monkeypatch):
    import dataplat_dagster.exporters.models as models

    monkeypatch.setattr(models, "CLAIM_ATTEMPTS", 2)
    monkeypatch.setattr(models, "timestamp_suffix", lambda moment=None: "20260102_030405")  # a clock that stands still
    pg_project.exporter("out", mode="timestamped", table="exports.preds")
    pg_project.export("out", ids(3))
    clash = pg_project.export("out", ids(9), raise_on_error=False)
    assert not clash.success
    message = clash.failure_data_for_node("out_out").user_failure_data.description
    assert message == (
        "Exporter 'out': 2 timestamped names in a row were taken (preds_20260102_030405 to preds_20260102_030405): "
        "a timestamped export never overwrites. Check that this machine's clock advances and that nothing else writes "
        "names of this pattern"
    )
    assert pg_tables(postgres_server) == ["preds_20260102_030405"]  # no staging table left
    assert pg_rows(postgres_server, 'SELECT count(*) FROM exports."preds_20260102_030405"') == [(3,)]


def test_postgres_overwrite_refuses_a_table_with_views_before_writing_and_drop_drops_them(pg_project, postgres_server):
    pg_project.exporter("out", mode="overwrite", table="exports.scores")
    pg_project.export("out", ids(4))
    with pg_connection(postgres_server) as db, db.cursor() as cursor:
        cursor.execute("CREATE VIEW exports.top_scores AS SELECT id FROM exports.scores WHERE id > 1")
        cursor.execute('CREATE VIEW exports."top of top" AS SELECT id FROM exports.top_scores')
        cursor.execute("CREATE TABLE exports.unrelated (id int)")
        cursor.execute("CREATE VIEW exports.elsewhere AS SELECT id FROM exports.unrelated")
    pulled = []

    def watched():
        def batches():
            pulled.append("a batch")
            yield pa.RecordBatch.from_pydict({"id": [100, 101]}, schema=pa.schema([("id", pa.int64())]))

        return pa.RecordBatchReader.from_batches(pa.schema([("id", pa.int64())]), batches())

    refused = pg_project.export("out", watched, raise_on_error=False)
    assert not refused.success
    assert refused.failure_data_for_node("out_out").user_failure_data.description == (
        "Exporter 'out': Connector 'db': table \"exports\".\"scores\" has views that depend on it: "
        'exports."top of top", exports.top_scores. An overwrite replaces the table, which would drop them, so nothing '
        "was written. Drop or change those views, or set `on_dependents: drop` on the exporter to drop them with the old table"
    )
    assert pulled == []  # refused before a row was read
    assert pg_rows(postgres_server, "SELECT id FROM exports.scores ORDER BY id") == [(0,), (1,), (2,), (3,)]
    assert pg_tables(postgres_server) == ["scores", "unrelated"]
    views = "SELECT viewname FROM pg_views WHERE schemaname = 'exports' ORDER BY 1"
    assert pg_rows(postgres_server, views) == [("elsewhere",), ("top of top",), ("top_scores",)]

    pg_project.exporter("out", mode="overwrite", table="exports.scores", on_dependents="drop")
    dropped = pg_project.export("out", watched)
    assert pg_project.metadata(dropped, "out")["dropped_views"] == ['exports."top of top"', "exports.top_scores"]
    logged = [entry.user_message for entry in pg_project.instance.all_logs(dropped.run_id) if "dropped the views" in entry.user_message]
    assert logged == ["Exporter 'out' (on_dependents: drop) dropped the views that depended on the old table: "
                      'exports."top of top", exports.top_scores.']
    assert pg_rows(postgres_server, "SELECT id FROM exports.scores ORDER BY id") == [(100,), (101,)]
    assert pg_rows(postgres_server, views) == [("elsewhere",)]  # a view on another table stays
    assert pg_tables(postgres_server) == ["scores", "unrelated"]


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
        ("exports.x'); DROP TABLE exports.victims; --", "contains \"'\" ')' ';'"),
        ("exports.a.b", "more than one dot"),
        ("exports.`tick`", "contains '`'"),
        ("exports.back\\slash", "contains '\\\\'"),
        ("exports. padded", "starts or ends with a space"),
        ("exports." + "x" * 64, "longer than 63 bytes"),
    ]:
        with pytest.raises(ValueError) as refused:
            ExporterSpec(connector="db", mode="overwrite", table=name)
        message = str(refused.value)
        assert words in message, (name, message)
        if "contains" in words:  # a refused character says why characters are refused
            assert "so that a name is never read as SQL" in message, (name, message)
    with pytest.raises(ValueError, match="longer than 47 bytes \\(the timestamp suffix takes 16\\)"):
        ExporterSpec(connector="db", mode="timestamped", table="x" * 50)

    for name in ("select", "my table", "Prédictions-2024", "drop$"):
        pg_project.exporter("odd", mode="overwrite", table=f"exports.{name}")
        pg_project.export("odd", ids(2))
    assert pg_tables(postgres_server) == sorted(["Prédictions-2024", "drop$", "my table", "select", "victims"])
    assert pg_rows(postgres_server, 'SELECT count(*) FROM exports."select"') == [(2,)]


# -- MariaDB ------------------------------------------------------------------------------


class Maria:
    """A project with a MariaDB connector, and a separate client on the same database."""

    def __init__(self, server, tmp_path):
        self.server = server
        self.project = Project(tmp_path, {"type": "sql", "dialect": "mysql", "host": server.host, "port": server.port,
                                          "username": server.username, "password_env": "EXPORT_MARIA_PASSWORD",
                                          "database": server.database})

    def query(self, sql: str):
        import pymysql

        s = self.server
        with pymysql.connect(host=s.host, port=s.port, user=s.username, password=s.password, database=s.database, autocommit=True) as db, db.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    def tables(self, prefix: str) -> list[str]:
        return sorted(name for (name,) in self.query("SHOW TABLES") if name.startswith((prefix, "dataplat_staging_")))


@pytest.fixture
def maria(mariadb_server, monkeypatch, tmp_path) -> Maria:
    monkeypatch.setenv("EXPORT_MARIA_PASSWORD", mariadb_server.password)
    found = Maria(mariadb_server, tmp_path)
    for name, kind in found.query("SHOW FULL TABLES"):
        if name.startswith(("maria", "dataplat_staging_")):
            found.query(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} `{name}`")
    return found


def test_mariadb_overwrite_swaps_atomically_and_a_failure_leaves_the_old_table(maria, mariadb_server):
    project, query = maria.project, maria.query
    project.exporter("out", mode="overwrite", table="maria scores")
    project.export("out", TABLE)
    query("CREATE OR REPLACE VIEW `maria_labels` AS SELECT label FROM `maria scores`")
    second = project.export("out", pd.DataFrame({"id": [7, 8], "label": ["x", "y"]}))
    assert project.metadata(second, "out")["dagster/relation_identifier"] == f"{mariadb_server.database}.maria scores"
    assert query("SELECT id, label FROM `maria scores` ORDER BY id") == ((7, "x"), (8, "y"))
    assert query("SELECT label FROM `maria_labels` ORDER BY label") == (("x",), ("y",))  # a view names the table: it follows

    schema = pa.schema([("id", pa.int64())])
    failed = project.export("out", lambda: failing_stream(schema, 5), raise_on_error=False)
    assert not failed.success
    assert query("SELECT id, label FROM `maria scores` ORDER BY id") == ((7, "x"), (8, "y"))
    assert maria.tables("maria") == ["maria scores", "maria_labels"]  # no staging table left


def test_mariadb_a_failed_timestamped_export_leaves_nothing_new_for_retention_to_count(maria):
    project = maria.project
    project.exporter("stamped", mode="timestamped", table="maria_preds", retention=1)
    meta = project.metadata(project.export("stamped", TABLE), "stamped")
    assert maria.query(f"SELECT count(*) FROM `{meta['exported_to']}`") == ((3,),)

    time.sleep(1.1)  # so that a table left behind would have a name of its own
    schema = pa.schema([("id", pa.int64())])
    failed = project.export("stamped", lambda: failing_stream(schema, 5), raise_on_error=False)
    assert not failed.success
    message = failed.failure_data_for_node("out_stamped").user_failure_data.description
    assert message.startswith("Exporter 'stamped': Connector 'db': the timestamped export of table `maria_preds` failed; "
                              "no new table was created: ")
    assert "the producer broke at row 5000" in message
    # Neither an empty maria_preds_<timestamp> nor a staging table; retention kept the good one.
    assert maria.tables("maria") == [meta["exported_to"]]
    assert maria.query(f"SELECT count(*) FROM `{meta['exported_to']}`") == ((3,),)


def test_mariadb_two_timestamped_exports_publishing_at_once_in_the_same_second_both_succeed(maria, monkeypatch):
    stamps = same_second_clock(monkeypatch, "20260102_030405", "20260102_030405", "20260102_030406")
    maria.project.exporter("stamped", mode="timestamped", table="maria_preds")
    names = export_at_once(maria.project, "stamped", [ids(3), ids(9)])
    assert stamps == []
    assert sorted(names) == ["maria_preds_20260102_030405", "maria_preds_20260102_030406"]
    assert maria.tables("maria") == sorted(names)  # and no staging table left
    assert [maria.query(f"SELECT count(*) FROM `{name}`") for name in names] == [((3,),), ((9,),)]


def test_mariadb_two_timestamped_exports_in_the_same_second_both_succeed(maria, monkeypatch):
    stamps = same_second_clock(monkeypatch, "20260102_030405", "20260102_030405", "20260102_030406")
    maria.project.exporter("stamped", mode="timestamped", table="maria_preds")
    names = [maria.project.metadata(maria.project.export("stamped", ids(n)), "stamped")["exported_to"] for n in (3, 9)]
    assert stamps == []
    assert names == ["maria_preds_20260102_030405", "maria_preds_20260102_030406"]
    assert maria.tables("maria") == names
    assert [maria.query(f"SELECT count(*) FROM `{name}`") for name in names] == [((3,),), ((9,),)]


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

    failed = project.export("stamped", lambda: failing_stream(pa.schema([("id", pa.int64())]), 3), raise_on_error=False)
    assert not failed.success
    with sqlite3.connect(database) as db:
        assert sorted(n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")) == [first, second, "scores"]


def test_sqlite_two_timestamped_exports_in_the_same_second_both_succeed(tmp_path, monkeypatch):
    stamps = same_second_clock(monkeypatch, "20260102_030405", "20260102_030405", "20260102_030406")
    database = tmp_path / "out.db"
    project = Project(tmp_path, {"type": "sql", "dialect": "sqlite", "database": str(database)})
    project.exporter("stamped", mode="timestamped", table="preds")
    names = [project.metadata(project.export("stamped", ids(n)), "stamped")["exported_to"] for n in (3, 9)]
    assert stamps == [] and names == ["preds_20260102_030405", "preds_20260102_030406"]
    with sqlite3.connect(database) as db:
        assert [db.execute(f'SELECT count(*) FROM "{name}"').fetchone() for name in names] == [(3,), (9,)]


def test_sqlite_overwrite_keeps_the_views_on_the_table_reading_the_new_rows(tmp_path):
    database = tmp_path / "out.db"
    project = Project(tmp_path, {"type": "sql", "dialect": "sqlite", "database": str(database)})
    project.exporter("out", mode="overwrite", table="scores")
    project.export("out", ids(4))
    with sqlite3.connect(database) as db:
        db.execute("CREATE VIEW big_scores AS SELECT id FROM scores WHERE id >= 2")
    db.close()
    result = project.export("out", ids(3, start=10), raise_on_error=False)
    assert result.success
    assert "dropped_views" not in project.metadata(result, "out")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT id FROM big_scores ORDER BY id").fetchall() == [(10,), (11,), (12,)]
    db.close()


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


# -- `dataplat dataset export` --------------------------------------------------------------


def test_dataset_export_needs_only_the_chosen_exporter_and_its_connector(cli_workspace, postgres_server, tmp_path):
    ws = cli_workspace
    source = tmp_path / "sales.csv"
    source.write_text("order_id,city\n1,Paris\n2,Lyon\n")
    ws.run("dataset", "import", str(source), "--name", "sales", "--no-profile")
    ws.run("connector", "create", "sql", "local", "--dialect", "sqlite", "--database", "out.db")
    ws.run("exporter", "create", "to_local", "--connector", "local", "--mode", "overwrite", "--table", "sales")
    # An exporter whose connector's secret variable is set nowhere.
    s = postgres_server
    ws.run("connector", "create", "sql", "warehouse", "--dialect", "postgresql", "--host", s.host, "--port", str(s.port),
           "--username", s.username, "--password-env", "UNSET_WAREHOUSE_PASSWORD", "--database", s.database)
    ws.run("exporter", "create", "to_warehouse", "--connector", "warehouse", "--mode", "overwrite", "--table", "sales")

    exported = ws.run("dataset", "export", "sales", "--exporter", "to_local", "--json").json()
    assert (exported["rows"], exported["exported_to"]) == (2, "sales")
    with sqlite3.connect(ws.project_dir / "out.db") as db:
        assert db.execute("SELECT order_id, city FROM sales ORDER BY order_id").fetchall() == [(1, "Paris"), (2, "Lyon")]
    db.close()

    broken = ws.run("dataset", "export", "sales", "--exporter", "to_warehouse", check=False)
    assert broken.code == 1 and broken.stdout == ""
    assert broken.stderr.startswith("error: Export of dataset 'sales' through 'to_warehouse' failed (run ")
    assert broken.stderr.rstrip().endswith(
        "Exporter 'to_warehouse' cannot start: its connector 'warehouse' reads a secret from $UNSET_WAREHOUSE_PASSWORD, "
        "which is not set where this run executes. Set it in the environment of the runs (the shell running `dataplat`, "
        "`dagster dev` or the code server) and run the export again.")
    assert "Traceback" not in broken.stderr and "Stack Trace" not in broken.stderr


def test_on_dependents_from_the_cli_and_where_it_is_refused(cli_workspace):
    ws = cli_workspace
    ws.run("connector", "create", "sql", "local", "--dialect", "sqlite", "--database", "out.db")
    ws.run("exporter", "create", "scores_out", "--connector", "local", "--mode", "overwrite", "--table", "scores",
           "--on-dependents", "drop")
    assert ws.run("exporter", "show", "scores_out", "--json").json()["settings"] == {
        "connector": "local", "mode": "overwrite", "table": "scores", "on_dependents": "drop"}

    refused = ws.run("exporter", "create", "stamped", "--connector", "local", "--mode", "timestamped", "--table", "preds",
                     "--on-dependents", "drop", check=False)
    assert refused.code != 0 and "Traceback" not in refused.stderr
    assert "on_dependents applies to mode overwrite of a table: it says what becomes of the views on the table it replaces" in refused.stderr
    assert [e["name"] for e in ws.run("exporter", "list", "--json").json()] == ["scores_out"]  # nothing saved
