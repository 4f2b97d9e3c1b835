"""The SQL connector against real servers: PostgreSQL, MariaDB and SQLite files."""

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing, contextmanager
from decimal import Decimal

import pyarrow as pa
import pytest

from dataplat_dagster.connectors.models import SqlConnectorSpec
from dataplat_dagster.connectors.registry import open_connector
from dataplat_dagster.connectors.sql_types import lost_precision
from dataplat_dagster.errors import ConnectorError

SECRET = "s3cr3t-Pa55word!"


@contextmanager
def sql_connector(tmp_path, monkeypatch, password=None, **fields):
    if password is not None:
        monkeypatch.setenv("TEST_SQL_PASSWORD", password)
        fields["password_env"] = "TEST_SQL_PASSWORD"
    spec = SqlConnectorSpec.model_validate(fields)
    with open_connector("warehouse", spec, tmp_path) as connector:
        yield connector


def steps(report):
    return {step.step: step.outcome for step in report.steps}


def failure(report):
    failed = report.failed_step
    assert failed is not None, report.to_json()
    return failed.step, failed.message


SAMPLE = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": ["a'; DROP TABLE x; --", "Zoë", None],
        "price": [1.5, None, -2.25],
        "paid": [True, False, None],
        "day": pa.array([dt.date(2024, 1, 31), None, dt.date(1999, 12, 31)]),
        "at": pa.array([dt.datetime(2024, 5, 1, 12, 30), None, dt.datetime(2000, 1, 1)], pa.timestamp("us")),
    }
)


# -- PostgreSQL -------------------------------------------------------------------------


def pg_fields(server, **overrides):
    return {"dialect": "postgresql", "host": server.host, "port": server.port, "username": server.username, "database": server.database, **overrides}


def test_postgres_check_passes_with_write(postgres_server, tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, postgres_server.password, **pg_fields(postgres_server)) as connector:
        report = connector.check(write=True)
    assert report.ok, report.to_json()
    assert list(steps(report)) == ["resolve", "connect", "authenticate", "list", "read", "write", "delete"]
    assert all(step.seconds >= 0 for step in report.steps)
    assert "PostgreSQL" in report.steps[2].message


def test_postgres_wrong_port_is_refused_at_connect(postgres_server, tmp_path, monkeypatch):
    from dataplat_dagster_tests.servers.ports import free_port

    fields = pg_fields(postgres_server, port=free_port())
    with sql_connector(tmp_path, monkeypatch, postgres_server.password, **fields) as connector:
        step, message = failure(connector.check())
    assert step == "connect"
    assert "refused" in message and str(fields["port"]) in message


def test_postgres_wrong_password_fails_authenticate_without_echoing_it(postgres_server, tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, SECRET, **pg_fields(postgres_server)) as connector:
        report = connector.check()
        assert SECRET not in repr(connector)
    step, message = failure(report)
    assert step == "authenticate"
    assert "refused the login" in message and postgres_server.username in message
    assert "password authentication failed" in message
    assert SECRET not in str(report.to_json())


def test_postgres_missing_database_fails_at_database(postgres_server, tmp_path, monkeypatch):
    fields = pg_fields(postgres_server, database="no_such_db")
    with sql_connector(tmp_path, monkeypatch, postgres_server.password, **fields) as connector:
        report = connector.check()
    assert steps(report)["authenticate"] == "passed"
    step, message = failure(report)
    assert step == "database"
    assert "'no_such_db' does not exist" in message


def test_postgres_table_without_privilege_fails_read_with_permission_denied(postgres_server, tmp_path, monkeypatch):
    fields = pg_fields(postgres_server, username=postgres_server.noperm_username)
    with sql_connector(tmp_path, monkeypatch, postgres_server.noperm_password, **fields) as connector:
        tables = connector._check_list()
        assert "private.secrets" in tables
        with pytest.raises(Exception) as raised:
            connector._check_read(["private.secrets"])
    assert "permission denied" in str(raised.value)
    assert "private.secrets" in str(raised.value)


def test_postgres_arrow_round_trip_through_adbc(postgres_server, tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, postgres_server.password, **pg_fields(postgres_server)) as connector:
        written = connector.write_arrow("round trip", SAMPLE, mode="replace")
        assert written == 3
        back = connector.read_arrow('SELECT * FROM "round trip" ORDER BY id').read_all()
        with pytest.raises(ConnectorError, match="already exists"):
            connector.write_arrow("round trip", SAMPLE, mode="create")
        assert connector.write_arrow("round trip", SAMPLE.slice(0, 1), mode="append") == 1
        count = connector.read_arrow('SELECT count(*) AS n FROM "round trip"').read_all()
        empty = connector.read_arrow('SELECT id, name FROM "round trip" WHERE false').read_all()
    assert back.column_names == SAMPLE.column_names
    assert back.column("name").to_pylist() == ["a'; DROP TABLE x; --", "Zoë", None]
    assert back.column("price").to_pylist() == [1.5, None, -2.25]
    assert back.column("paid").to_pylist() == [True, False, None]
    assert back.column("day").to_pylist() == [dt.date(2024, 1, 31), None, dt.date(1999, 12, 31)]
    assert back.column("at").to_pylist()[0] == dt.datetime(2024, 5, 1, 12, 30)
    assert pa.types.is_int64(back.schema.field("id").type)
    assert count.column("n").to_pylist() == [4]
    assert (empty.num_rows, empty.column_names, str(empty.schema.field("id").type)) == (0, ["id", "name"], "int64")


def test_postgres_numeric_reads_as_decimal_exactly(postgres_server, tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, postgres_server.password, **pg_fields(postgres_server)) as connector:
        table = connector.read_arrow("SELECT 2.25::numeric(6,2) AS fixed, 1.5::numeric AS free, NULL::numeric(4,1) AS empty").read_all()
    assert [str(field.type) for field in table.schema] == ["decimal128(6, 2)", "decimal128(38, 1)", "decimal128(4, 1)"]
    assert table.to_pylist() == [{"fixed": Decimal("2.25"), "free": Decimal("1.5"), "empty": None}]


def test_postgres_unconstrained_numeric_is_as_wide_as_its_values(postgres_server, tmp_path, monkeypatch):
    # 20 digits before the point and 9 after: beyond float64's 15-16 significant digits.
    exact = "12345678901234567890.123456789"
    wide = "1" * 45 + ".25"  # 47 digits: decimal256
    query = (f"SELECT v AS amount, v AS amount FROM (VALUES ({exact}::numeric), (-0.5), (NULL)) AS t(v) UNION ALL "
             f"SELECT 7, 7")  # the same name twice, and an integer
    with sql_connector(tmp_path, monkeypatch, postgres_server.password, **pg_fields(postgres_server)) as connector:
        table = connector.read_arrow(query).read_all()
        wider = connector.read_arrow(f"SELECT {wide}::numeric AS big").read_all()
    assert [str(field.type) for field in table.schema] == ["decimal128(38, 9)", "decimal128(38, 9)"]
    assert table.column(0).to_pylist() == [Decimal(exact), Decimal("-0.5"), None, Decimal(7)]
    assert str(wider.schema.field("big").type) == "decimal256(76, 2)" and wider.column("big").to_pylist() == [Decimal(wide)]
    assert lost_precision(table.schema) == {} and lost_precision(wider.schema) == {}


def test_postgres_sizing_pass_and_read_share_one_repeatable_read_snapshot(postgres_server, tmp_path, monkeypatch):
    # The read's statements run in one REPEATABLE READ transaction: the numeric sizing pass
    # and the read see the same rows, whatever commits in between.
    query = "SELECT current_setting('transaction_isolation') AS level, 1.5::numeric AS free"
    with sql_connector(tmp_path, monkeypatch, postgres_server.password, **pg_fields(postgres_server)) as connector:
        table = connector.read_arrow(query).read_all()
    assert table.to_pylist() == [{"level": "repeatable read", "free": Decimal("1.5")}]


def test_postgres_numeric_no_decimal_holds_is_float_with_a_note(postgres_server, tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, postgres_server.password, **pg_fields(postgres_server)) as connector:
        table = connector.read_arrow("SELECT * FROM (VALUES (1.5::numeric, 2::numeric), ('NaN', 3)) AS t(ratio, n)").read_all()
    assert [str(field.type) for field in table.schema] == ["double", "decimal128(38, 0)"]
    assert table.column("ratio").to_pylist()[0] == 1.5 and table.column("n").to_pylist() == [Decimal(2), Decimal(3)]
    assert lost_precision(table.schema) == {
        "ratio": "PostgreSQL numeric read as float64 (about 15 significant digits): it holds NaN or Infinity, which no decimal can hold"}


def test_postgres_query_error_names_the_cause(postgres_server, tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, postgres_server.password, **pg_fields(postgres_server)) as connector:
        with pytest.raises(ConnectorError) as raised:
            connector.read_arrow("SELECT * FROM no_such_table").read_all()
    assert "no_such_table" in str(raised.value) and "does not exist" in str(raised.value)


# A child interpreter, so that nothing another test imported is counted: the PostgreSQL
# paths of the connector (a read with the numeric sizing pass, a write) and of an exporter
# (an overwrite and a timestamped export, which bind parameters), and what they imported.
# The child makes no Arrow data of its own: pyarrow's pa.array and pa.table import pandas.
PG_WITHOUT_PANDAS = """
import sys
from pathlib import Path

from dataplat_dagster.connectors.models import SqlConnectorSpec
from dataplat_dagster.connectors.registry import open_connector
from dataplat_dagster.exporters.models import ExporterSpec
from dataplat_dagster.exporters.sql_target import write_table

host, port, username, database, folder = sys.argv[1:6]
spec = SqlConnectorSpec(dialect="postgresql", host=host, port=int(port), username=username, password_env="TEST_SQL_PASSWORD",
                        database=database)
with open_connector("warehouse", spec, Path(folder)) as connector:
    table = connector.read_arrow('SELECT id, id * 1.5::numeric AS free, 2.25::numeric(6,2) AS fixed FROM "no pandas" ORDER BY id').read_all()
    written = [connector.write_arrow("no pandas copy", table, mode="replace")]
    for mode in ("overwrite", "timestamped"):
        export = ExporterSpec(connector="warehouse", mode=mode, table="no_pandas_export")
        written.append(write_table(connector, export, connector.read_arrow('SELECT * FROM "no pandas copy"').read_all()).rows)
print([str(field.type) for field in table.schema], table.column("free").to_pylist(), written)
print("imported:", sorted(name for name in ("pandas", "pyarrow.dataset", "adbc_driver_manager.dbapi") if name in sys.modules))
"""


def test_postgres_reads_and_writes_without_importing_pandas(postgres_server, tmp_path):
    from dataplat_dagster_tests.datasources.sources import pg_connection

    s = postgres_server
    with closing(pg_connection(s)) as db, db, db.cursor() as cursor:
        cursor.execute('DROP TABLE IF EXISTS "no pandas"; CREATE TABLE "no pandas" AS SELECT generate_series(1, 2)::bigint AS id')
    child = subprocess.run([sys.executable, "-c", PG_WITHOUT_PANDAS, s.host, str(s.port), s.username, s.database, str(tmp_path)],
                           capture_output=True, text=True, env={**os.environ, "TEST_SQL_PASSWORD": s.password}, timeout=120)
    assert child.returncode == 0, child.stderr
    types, imported = child.stdout.strip().splitlines()
    assert types == "['int64', 'decimal128(38, 1)', 'decimal128(6, 2)'] [Decimal('1.5'), Decimal('3.0')] [2, 2, 2]"
    assert imported == "imported: []"


# Ctrl-C (or Dagster terminating a run: SIGINT) cancels the query on the server, whether it
# comes before the first rows or while the rows stream in (COPY runs as they are read).
PG_SLOW_QUERY = """
import sys
import time
from pathlib import Path

from dataplat_dagster.connectors.models import SqlConnectorSpec
from dataplat_dagster.connectors.registry import open_connector
from dataplat_dagster.errors import ConnectorError

host, port, username, database, folder, query = sys.argv[1:7]
spec = SqlConnectorSpec(dialect="postgresql", host=host, port=int(port), username=username, password_env="TEST_SQL_PASSWORD",
                        database=database)
with open_connector("warehouse", spec, Path(folder)) as connector:
    last = time.perf_counter()
    try:
        for batch in connector.read_arrow(query):
            print("batch", flush=True)
            last = time.perf_counter()
    except ConnectorError as error:
        print(f"{time.perf_counter() - last:.1f}", error)
"""
SLEEP_FIRST = "SELECT 1 AS waited FROM pg_sleep(60)"
# 40 MB of rows, the last one 60 s late: the first batches (16 MB each) arrive before it.
SLEEP_LAST = "SELECT g, repeat('x', 1000) AS pad, pg_sleep(CASE WHEN g = 40000 THEN 60 ELSE 0 END) IS NULL AS slept FROM generate_series(1, 40000) g"


@pytest.mark.parametrize("query, batches_before", [(SLEEP_FIRST, 0), (SLEEP_LAST, 1)], ids=["before the rows", "mid-stream"])
def test_postgres_sigint_cancels_a_running_query(postgres_server, tmp_path, query, batches_before):
    from dataplat_dagster_tests.datasources.sources import pg_connection

    s = postgres_server
    child = subprocess.Popen([sys.executable, "-c", PG_SLOW_QUERY, s.host, str(s.port), s.username, s.database, str(tmp_path), query],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TEST_SQL_PASSWORD": s.password})
    try:
        streamed = [child.stdout.readline().strip() for _ in range(batches_before)]
        with closing(pg_connection(s)) as db:
            db.autocommit = True
            waited = _wait_for(lambda: _active(db, "pg_sleep("), timeout_s=60)
            time.sleep(1)  # the child is now blocked, waiting for rows
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=30)
            still_running = _active(db, "pg_sleep(")
    finally:
        child.kill()
    assert streamed == ["batch"] * batches_before and waited, err
    assert child.returncode == 0, err
    seconds, message = out.strip().splitlines()[-1].split(" ", 1)
    assert float(seconds) < 10, out
    assert message.startswith("Connector 'warehouse': the query failed:") and "canceling statement due to user request" in message
    assert not still_running


def _active(db, text: str) -> bool:
    with db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s AND pid <> pg_backend_pid()",
                       (f"%{text}%",))
        return cursor.fetchone()[0] > 0


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_postgres_from_a_url_in_the_environment(postgres_server, tmp_path, monkeypatch):
    url = f"postgresql://{postgres_server.username}:{postgres_server.password}@{postgres_server.host}:{postgres_server.port}/{postgres_server.database}"
    monkeypatch.setenv("TEST_SQL_URL", url)
    spec = SqlConnectorSpec(url_env="TEST_SQL_URL")
    assert spec.address() == "the URL in $TEST_SQL_URL"
    with open_connector("warehouse", spec, tmp_path) as connector:
        report = connector.check()
        assert connector.password is None
        assert postgres_server.password not in connector.describe()
    assert report.ok, report.to_json()
    assert postgres_server.password not in str(report.to_json())


# -- MariaDB ----------------------------------------------------------------------------


def maria_fields(server, **overrides):
    return {"dialect": "mysql", "host": server.host, "port": server.port, "username": server.username, "database": server.database, **overrides}


def test_mariadb_check_passes_with_write(mariadb_server, tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, mariadb_server.password, **maria_fields(mariadb_server)) as connector:
        report = connector.check(write=True)
    assert report.ok, report.to_json()
    assert steps(report)["write"] == "passed" and steps(report)["delete"] == "passed"
    assert "MariaDB" in report.steps[2].message


def test_mariadb_wrong_password_missing_database_and_no_access(mariadb_server, tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, SECRET, **maria_fields(mariadb_server)) as connector:
        step, message = failure(connector.check())
    assert step == "authenticate" and "Access denied" in message and SECRET not in message

    with sql_connector(tmp_path, monkeypatch, mariadb_server.password, **maria_fields(mariadb_server, database="nodb")) as connector:
        step, message = failure(connector.check())
    assert step == "database" and "'nodb', or it does not exist" in message

    fields = maria_fields(mariadb_server, username=mariadb_server.noperm_username)
    with sql_connector(tmp_path, monkeypatch, mariadb_server.noperm_password, **fields) as connector:
        step, message = failure(connector.check())
    assert step == "database" and "permission denied" in message


def test_mariadb_arrow_round_trip(mariadb_server, tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, mariadb_server.password, **maria_fields(mariadb_server)) as connector:
        assert connector.write_arrow("round trip", SAMPLE, mode="replace") == 3
        back = connector.read_arrow("SELECT * FROM `round trip` ORDER BY id").read_all()
    assert back.column("id").to_pylist() == [1, 2, 3]
    assert back.column("name").to_pylist() == ["a'; DROP TABLE x; --", "Zoë", None]
    assert back.column("price").to_pylist() == [1.5, None, -2.25]
    assert back.column("day").to_pylist() == [dt.date(2024, 1, 31), None, dt.date(1999, 12, 31)]


def test_mariadb_column_types_come_from_the_cursor_not_the_first_rows(mariadb_server, tmp_path, monkeypatch):
    import pymysql

    s = mariadb_server
    with pymysql.connect(host=s.host, port=s.port, user=s.username, password=s.password, database=s.database, autocommit=True) as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS late_values")
        cursor.execute("CREATE TABLE late_values (id INT, qty INT, big BIGINT, price DECIMAL(8,2), note VARCHAR(20), "
                       "seen DATETIME, day DATE, ratio DOUBLE, flag TINYINT(1), took TIME)")
        cursor.execute("INSERT INTO late_values (id) VALUES (1), (2)")
        cursor.execute("INSERT INTO late_values VALUES (3, 7, 9000000000, 123456.78, 'late', '2024-05-01 12:30:00', '2024-05-01', 0.25, 1, '01:02:03')")
    with sql_connector(tmp_path, monkeypatch, s.password, **maria_fields(s)) as connector:
        reader = connector.read_arrow("SELECT * FROM late_values ORDER BY id", batch_rows=2)
        batches = list(reader)
        empty = connector.read_arrow("SELECT id, price, seen FROM late_values WHERE id < 0").read_all()
    assert [(f.name, str(f.type)) for f in reader.schema] == [
        ("id", "int64"), ("qty", "int64"), ("big", "int64"), ("price", "decimal128(9, 2)"), ("note", "string"),
        ("seen", "timestamp[us]"), ("day", "date32[day]"), ("ratio", "double"), ("flag", "int64"), ("took", "duration[us]")]
    assert [batch.num_rows for batch in batches] == [2, 1]  # the first batch is all NULL but for id
    assert batches[1].to_pylist() == [{
        "id": 3, "qty": 7, "big": 9000000000, "price": Decimal("123456.78"), "note": "late", "seen": dt.datetime(2024, 5, 1, 12, 30),
        "day": dt.date(2024, 5, 1), "ratio": 0.25, "flag": 1, "took": dt.timedelta(hours=1, minutes=2, seconds=3)}]
    assert [(f.name, str(f.type)) for f in empty.schema] == [("id", "int64"), ("price", "decimal128(9, 2)"), ("seen", "timestamp[us]")]


# -- SQLite -----------------------------------------------------------------------------


def test_sqlite_check_and_round_trip(tmp_path, monkeypatch):
    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE orders (id INTEGER, amount NUMERIC)")
        db.execute("INSERT INTO orders VALUES (1, 9.5), (2, 10)")
    with sql_connector(tmp_path, monkeypatch, dialect="sqlite", database="shop.db") as connector:
        report = connector.check(write=True)
        back = connector.read_arrow("SELECT id, amount FROM orders ORDER BY id").read_all()
        assert connector.write_arrow("copy", SAMPLE) == 3
        copied = connector.read_arrow("SELECT name FROM copy ORDER BY id").read_all()
        nothing = connector.read_arrow("SELECT id, amount FROM orders WHERE id < 0").read_all()
        many = connector.read_arrow("SELECT name, id FROM copy ORDER BY id", batch_rows=2)
        batches = list(many)
    assert report.ok, report.to_json()
    assert list(steps(report)) == ["database", "list", "read", "write", "delete"]
    assert "orders" in report.steps[1].message
    assert back.column("id").to_pylist() == [1, 2]
    assert [float(v) if isinstance(v, Decimal) else v for v in back.column("amount").to_pylist()] == [9.5, 10]
    assert copied.column("name").to_pylist() == ["a'; DROP TABLE x; --", "Zoë", None]
    assert (nothing.num_rows, nothing.column_names) == (0, ["id", "amount"])
    assert [batch.num_rows for batch in batches] == [2, 1]  # streamed in batches, one schema
    assert batches[1].schema == batches[0].schema and batches[1].column("name").to_pylist() == [None]
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"orders", "copy"}  # the check's sentinel table is gone


def test_sqlite_column_types_come_from_the_declared_types_not_the_first_rows(tmp_path, monkeypatch):
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("CREATE TABLE late (id INTEGER, qty INT, price DECIMAL(10,2), note VARCHAR(20), seen DATETIME, paid BOOLEAN, "
                   "weight REAL, raw BLOB)")
        db.execute("INSERT INTO late (id) VALUES (1), (2)")
        db.execute("INSERT INTO late VALUES (3, 7, 9.95, 'late', '2024-05-01 12:30:00', 1, 2, x'0001')")
    with sql_connector(tmp_path, monkeypatch, dialect="sqlite", database="shop.db") as connector:
        reader = connector.read_arrow("SELECT *, qty * 2 AS doubled FROM late ORDER BY id", batch_rows=2)
        batches = list(reader)
    assert [(f.name, str(f.type)) for f in reader.schema] == [
        ("id", "int64"), ("qty", "int64"), ("price", "double"), ("note", "string"), ("seen", "string"), ("paid", "bool"),
        ("weight", "double"), ("raw", "binary"), ("doubled", "string")]  # an expression: typed by its values, text if NULL
    assert batches[1].to_pylist() == [{"id": 3, "qty": 7, "price": 9.95, "note": "late", "seen": "2024-05-01 12:30:00", "paid": True,
                                       "weight": 2.0, "raw": b"\x00\x01", "doubled": "14"}]


def test_sqlite_a_value_that_does_not_fit_its_declared_type_names_the_column(tmp_path, monkeypatch):
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("CREATE TABLE odd (id INTEGER, qty INTEGER)")
        db.execute("INSERT INTO odd VALUES (1, 5), (2, 'five')")  # SQLite keeps text that is not a number as text
    with sql_connector(tmp_path, monkeypatch, dialect="sqlite", database="shop.db") as connector:
        with pytest.raises(ConnectorError) as raised:
            connector.read_arrow("SELECT * FROM odd").read_all()
    message = str(raised.value)
    assert message.startswith("Connector 'warehouse': column 'qty' holds a value that is not int64, the column's type")
    assert "five" in message and "cast the column to one type in the datasource's query" in message


def test_sqlite_missing_or_foreign_file_fails_at_database(tmp_path, monkeypatch):
    with sql_connector(tmp_path, monkeypatch, dialect="sqlite", database="missing.db") as connector:
        step, message = failure(connector.check())
    assert step == "database" and "does not exist" in message
    assert not (tmp_path / "missing.db").exists()  # testing never creates an empty database

    (tmp_path / "notes.db").write_text("just some text, not a database at all")
    with sql_connector(tmp_path, monkeypatch, dialect="sqlite", database="notes.db") as connector:
        step, message = failure(connector.check())
    assert step == "database" and "is not a SQLite database" in message


def test_unresolvable_host_fails_at_resolve(tmp_path, monkeypatch):
    fields = {"dialect": "postgresql", "host": "no-such-host.invalid", "username": "u", "database": "d"}
    with sql_connector(tmp_path, monkeypatch, SECRET, **fields) as connector:
        step, message = failure(connector.check())
    assert step == "resolve" and "cannot resolve the host name 'no-such-host.invalid'" in message
