"""Snapshots take their column types from the database: a column that is NULL in the whole
first batch (50,000 rows) keeps its declared type when values come later, on MariaDB and
SQLite; PostgreSQL's unconstrained ``numeric`` stays exact."""

import sqlite3
from decimal import Decimal

import pymysql

from dataplat_dagster_tests.datasources.snapshots import SnapshotProject
from dataplat_dagster_tests.datasources.sources import pg_connection

ROWS = 50_010  # the first read batch is 50,000 rows, all NULL in the late columns


def test_mariadb_columns_null_in_the_first_batch_keep_their_declared_types(mariadb_server, monkeypatch, tmp_path):
    s = mariadb_server
    with pymysql.connect(host=s.host, port=s.port, user=s.username, password=s.password, database=s.database, autocommit=True) as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS late_orders")
        cursor.execute("CREATE TABLE late_orders (id INT PRIMARY KEY, discount INT, price DECIMAL(8,2), shipped DATETIME)")
        cursor.execute(f"INSERT INTO late_orders (id, discount, price, shipped) SELECT seq, IF(seq > 50000, seq % 7, NULL), "
                       f"IF(seq > 50000, seq / 100, NULL), IF(seq > 50000, '2024-06-01 08:00:00', NULL) FROM seq_1_to_{ROWS}")
    monkeypatch.setenv("TYPES_MARIA_PASSWORD", s.password)
    project = SnapshotProject(
        tmp_path,
        {"maria": {"type": "sql", "dialect": "mysql", "host": s.host, "port": s.port, "username": s.username,
                   "password_env": "TYPES_MARIA_PASSWORD", "database": s.database}},
        {"orders": {"connector": "maria", "query": "SELECT * FROM late_orders ORDER BY id"}},
        {"orders_snap": "orders"},
    )
    assert project.snapshot("orders_snap").success
    table = project.table("orders_snap")
    assert [(f.name, str(f.type)) for f in table.schema] == [
        ("id", "int64"), ("discount", "int64"), ("price", "decimal128(9, 2)"), ("shipped", "timestamp[us]")]
    assert table.num_rows == ROWS and table.column("discount").null_count == 50_000
    last = table.slice(ROWS - 1).to_pylist()[0]
    assert (last["discount"], last["price"], str(last["shipped"])) == (ROWS % 7, Decimal("500.10"), "2024-06-01 08:00:00")


def test_sqlite_columns_null_in_the_first_batch_keep_their_declared_types(tmp_path):
    with sqlite3.connect(tmp_path / "local.db") as db:
        db.execute("CREATE TABLE late_lines (id INTEGER, qty INTEGER, weight REAL, note TEXT)")
        db.executemany("INSERT INTO late_lines VALUES (?, ?, ?, ?)",
                       [(i, i if i > 50_000 else None, i / 4 if i > 50_000 else None, "n" if i > 50_000 else None) for i in range(1, ROWS + 1)])
    project = SnapshotProject(
        tmp_path, {"lite": {"type": "sql", "dialect": "sqlite", "database": str(tmp_path / "local.db")}},
        {"lines": {"connector": "lite", "table": "late_lines"}}, {"lines_snap": "lines"},
    )
    assert project.snapshot("lines_snap").success
    table = project.table("lines_snap")
    assert [(f.name, str(f.type)) for f in table.schema] == [("id", "int64"), ("qty", "int64"), ("weight", "double"), ("note", "string")]
    assert table.num_rows == ROWS
    assert table.slice(ROWS - 1).to_pylist() == [{"id": ROWS, "qty": ROWS, "weight": ROWS / 4, "note": "n"}]


def test_postgres_unconstrained_numeric_is_stored_exactly(postgres_server, monkeypatch, tmp_path):
    s = postgres_server
    with pg_connection(s) as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS ledger")
        cursor.execute("CREATE TABLE ledger (id int, amount numeric)")
        cursor.execute("INSERT INTO ledger VALUES (1, 12345678901234567.891), (2, 0.000001), (3, NULL)")
    monkeypatch.setenv("TYPES_PG_PASSWORD", s.password)
    project = SnapshotProject(
        tmp_path,
        {"pg": {"type": "sql", "dialect": "postgresql", "host": s.host, "port": s.port, "username": s.username,
                "password_env": "TYPES_PG_PASSWORD", "database": s.database}},
        {"ledger": {"connector": "pg", "query": "SELECT * FROM ledger ORDER BY id"}}, {"ledger_snap": "ledger"},
    )
    assert project.snapshot("ledger_snap").success
    table = project.table("ledger_snap")
    assert str(table.schema.field("amount").type) == "decimal128(38, 6)"
    assert table.column("amount").to_pylist() == [Decimal("12345678901234567.891000"), Decimal("0.000001"), None]
