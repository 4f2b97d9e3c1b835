"""`test datasource` against real servers: schema, row estimate, first rows, dialect, and
the database's or parser's own reason when it cannot be read."""

import gzip
import sqlite3

import pytest

from dataplat_dagster.catalog.models import ProjectCatalog
from dataplat_dagster.datasources.probe import probe_datasource
from dataplat_dagster.errors import ConnectorError, InputError
from dataplat_dagster_tests.datasources.sources import EU_CSV, parquet_bytes, s3_connector, zipped

def catalog(connector: dict, **datasources) -> ProjectCatalog:
    return ProjectCatalog.model_validate({"connectors": {"src": connector}, "datasources": {name: {"connector": "src", **spec} for name, spec in datasources.items()}})


def columns(probe) -> list[tuple[str, str]]:
    return [(column["name"], column["type"]) for column in probe.columns]


# -- SQL ----------------------------------------------------------------------------------


@pytest.fixture
def pg(postgres_server, monkeypatch):
    monkeypatch.setenv("PROBE_PG_PASSWORD", postgres_server.password)
    s = postgres_server
    return {"type": "sql", "dialect": "postgresql", "host": s.host, "port": s.port, "username": s.username, "password_env": "PROBE_PG_PASSWORD", "database": s.database}


def test_postgres_table_schema_qualified_table_and_query(pg, tmp_path, postgres_server):
    import psycopg2

    with psycopg2.connect(host=postgres_server.host, port=postgres_server.port, user=postgres_server.username,
                          password=postgres_server.password, dbname=postgres_server.database) as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS probe_orders")
        cursor.execute("CREATE TABLE probe_orders (id int PRIMARY KEY, total numeric(10,2), placed timestamp)")
        cursor.execute("INSERT INTO probe_orders SELECT i, i * 1.5, timestamp '2024-01-01' + i * interval '1 hour' FROM generate_series(1, 500) i")
        cursor.execute("ANALYZE probe_orders")
    cat = catalog(pg, orders={"table": "probe_orders"}, secrets={"table": "private.secrets"},
                  big={"query": "SELECT id, total FROM probe_orders WHERE id > 100"})

    orders = probe_datasource(tmp_path, cat, "orders")
    assert columns(orders) == [("id", "int32"), ("total", "decimal128(10, 2)"), ("placed", "timestamp[us]")]
    assert (orders.row_estimate, orders.row_estimate_exact) == (500, False)
    assert len(orders.sample) == 10 and orders.sample[0]["id"] == 1

    qualified = probe_datasource(tmp_path, cat, "secrets")
    assert qualified.target == "private.secrets" and qualified.columns

    query = probe_datasource(tmp_path, cat, "big")
    assert [name for name, _ in columns(query)] == ["id", "total"]
    assert 300 <= query.row_estimate <= 500  # the planner's estimate of 400
    assert query.seconds > 0


def test_postgres_missing_table_and_syntax_error_give_the_databases_reason(pg, tmp_path):
    cat = catalog(pg, gone={"table": "no_such_table"}, broken={"query": "SELECT id FROM probe_orders WHERE"})
    with pytest.raises(ConnectorError, match='relation "no_such_table" does not exist'):
        probe_datasource(tmp_path, cat, "gone")
    with pytest.raises(ConnectorError, match='syntax error at or near "\)"'):
        probe_datasource(tmp_path, cat, "broken")


def test_mariadb_table(mariadb_server, monkeypatch, tmp_path):
    import pymysql

    s = mariadb_server
    with pymysql.connect(host=s.host, port=s.port, user=s.username, password=s.password, database=s.database, autocommit=True) as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS probe_items")
        cursor.execute("CREATE TABLE probe_items (sku VARCHAR(10), qty INT)")
        cursor.executemany("INSERT INTO probe_items VALUES (%s, %s)", [(f"S{i}", i) for i in range(30)])
        cursor.execute("ANALYZE TABLE probe_items")
    monkeypatch.setenv("PROBE_MARIA_PASSWORD", s.password)
    cat = catalog({"type": "sql", "dialect": "mysql", "host": s.host, "port": s.port, "username": s.username,
                   "password_env": "PROBE_MARIA_PASSWORD", "database": s.database}, items={"table": "probe_items"})
    probe = probe_datasource(tmp_path, cat, "items")
    assert columns(probe) == [("sku", "string"), ("qty", "int64")]
    assert probe.sample[:2] == [{"sku": "S0", "qty": 0}, {"sku": "S1", "qty": 1}]
    assert probe.row_estimate == 30 and not probe.row_estimate_exact


def test_sqlite_count_is_exact(tmp_path):
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute('CREATE TABLE "order lines" (id INTEGER, sku TEXT)')
        db.executemany('INSERT INTO "order lines" VALUES (?, ?)', [(i, f"s{i}") for i in range(12)])
    cat = catalog({"type": "sql", "dialect": "sqlite", "database": "shop.db"}, lines={"table": "order lines"})
    probe = probe_datasource(tmp_path, cat, "lines")
    assert (probe.row_estimate, probe.row_estimate_exact, len(probe.sample)) == (12, True, 10)


# -- files --------------------------------------------------------------------------------


def test_files_on_s3_in_several_formats(s3, tmp_path):
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="in/eu.csv", Body=EU_CSV)
    client.put_object(Bucket=s3.bucket, Key="in/eu.csv.gz", Body=gzip.compress(EU_CSV))
    client.put_object(Bucket=s3.bucket, Key="in/eu.zip", Body=zipped("eu.csv", EU_CSV))
    client.put_object(Bucket=s3.bucket, Key="in/cities.parquet", Body=parquet_bytes())
    cat = catalog(s3_connector(s3), plain={"path": "in/eu.csv"}, gz={"path": "in/eu.csv.gz"}, zipped={"path": "in/eu.zip"},
                  parquet={"path": "in/cities.parquet"})

    for name in ("plain", "gz", "zipped"):
        probe = probe_datasource(tmp_path, cat, name)
        assert columns(probe) == [("id", "int64"), ("amount", "double"), ("day", "date32[day]"), ("city", "string")], name
        assert probe.dialect["sep"] == ";" and probe.dialect["decimal"] == "," and probe.dialect["encoding"] == "cp1252"
        assert probe.sample[0] == {"id": 1, "amount": 1234.5, "day": "2024-12-31", "city": "Köln"}
        assert (probe.row_estimate, probe.row_estimate_exact) == (3, True)
    assert probe_datasource(tmp_path, cat, "plain").file["size"] == len(EU_CSV)

    parquet = probe_datasource(tmp_path, cat, "parquet")
    assert columns(parquet) == [("id", "int64"), ("city", "string")]
    assert parquet.sample[1] == {"id": 2, "city": "Köln"} and parquet.dialect is None
    assert (parquet.row_estimate, parquet.row_estimate_exact) == (3, True)


def test_a_large_file_is_read_in_part_and_its_rows_estimated(s3, tmp_path):
    rows = 200_000
    body = ("id,label\n" + "".join(f"{i},item-{i:06d}\n" for i in range(rows))).encode()
    s3.client().put_object(Bucket=s3.bucket, Key="big.csv", Body=body)
    probe = probe_datasource(tmp_path, catalog(s3_connector(s3), big={"path": "big.csv"}), "big")
    assert not probe.row_estimate_exact
    assert 0.9 * rows <= probe.row_estimate <= 1.1 * rows
    assert probe.sample[9] == {"id": 9, "label": "item-000009"}


def test_missing_and_broken_files_say_why(s3, tmp_path):
    s3.client().put_object(Bucket=s3.bucket, Key="image.csv", Body=b"\x89PNG\r\n\x1a\n" + bytes(200))
    cat = catalog(s3_connector(s3), missing={"path": "nope/missing.csv"}, image={"path": "image.csv"})
    with pytest.raises(InputError, match="'nope/missing.csv' does not exist"):
        probe_datasource(tmp_path, cat, "missing")
    with pytest.raises(InputError, match="'image.csv' does not parse as a table: .*PNG image"):
        probe_datasource(tmp_path, cat, "image")


def test_a_file_on_ftp_with_overrides(ftp_server, monkeypatch, tmp_path):
    (ftp_server.root / "drop").mkdir(exist_ok=True)
    (ftp_server.root / "drop" / "codes.csv").write_text("code|name\n007|Bond\n042|Answer\n")
    monkeypatch.setenv("PROBE_FTP_PASSWORD", ftp_server.password)
    connector = {"type": "ftp", "host": ftp_server.host, "port": ftp_server.port, "username": ftp_server.username, "password_env": "PROBE_FTP_PASSWORD"}
    cat = catalog(connector, codes={"path": "drop/codes.csv", "options": {"sep": "|"}})
    probe = probe_datasource(tmp_path, cat, "codes")
    assert columns(probe) == [("code", "string"), ("name", "string")]  # leading zeros stay text
    assert probe.sample == [{"code": "007", "name": "Bond"}, {"code": "042", "name": "Answer"}]
    assert "sep" in probe.dialect["overridden"]
