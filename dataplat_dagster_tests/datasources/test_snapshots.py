"""Snapshots of datasources into datasets, against the real servers: PostgreSQL (table,
schema-qualified table, query), MariaDB, SQLite, and files on FTP, SFTP, S3 and GCS in
several dialects; the lineage to the datasource's external asset; the source untouched."""

import datetime
import gzip
import hashlib
import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import AssetKey

from dataplat_dagster.connectors.models import GcsConnectorSpec
from dataplat_dagster.connectors.registry import open_connector
from dataplat_dagster_tests.datasources.snapshots import SnapshotProject, failure_message
from dataplat_dagster_tests.conftest import stored
from dataplat_dagster_tests.datasources.sources import (
    EU_CSV, S3_KEY_ENV, S3_SECRET_ENV, parquet_bytes, pg_connection, s3_connector, zipped,
)


@pytest.fixture
def pg(postgres_server, monkeypatch) -> dict:
    monkeypatch.setenv("SNAP_PG_PASSWORD", postgres_server.password)
    s = postgres_server
    with pg_connection(s) as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS snap_orders")
        cursor.execute("CREATE TABLE snap_orders (id int PRIMARY KEY, total numeric(10,2), placed timestamp, note text)")
        cursor.execute("INSERT INTO snap_orders SELECT i, i * 1.25, timestamp '2024-01-01' + i * interval '1 hour', 'n' || i FROM generate_series(1, 2500) i")
        cursor.execute("CREATE SCHEMA IF NOT EXISTS sales")
        cursor.execute("DROP TABLE IF EXISTS sales.regions")
        cursor.execute("CREATE TABLE sales.regions (code char(2), name text)")
        cursor.execute("INSERT INTO sales.regions VALUES ('NO', 'North'), ('SO', 'South')")
    return {"type": "sql", "dialect": "postgresql", "host": s.host, "port": s.port, "username": s.username,
            "password_env": "SNAP_PG_PASSWORD", "database": s.database}


def test_postgres_table_schema_qualified_table_and_query(pg, tmp_path, postgres_server):
    project = SnapshotProject(
        tmp_path, {"pg": pg},
        {"orders": {"connector": "pg", "table": "snap_orders"}, "regions": {"connector": "pg", "table": "sales.regions"},
         "big": {"connector": "pg", "query": "SELECT id, total * 2 AS doubled FROM snap_orders WHERE id > 2000"}},
        {"orders_snap": "orders", "regions_snap": "regions", "big_snap": "big"},
    )
    for dataset in ("orders_snap", "regions_snap", "big_snap"):
        assert project.snapshot(dataset).success, dataset

    orders = project.table("orders_snap")
    assert [(f.name, str(f.type)) for f in orders.schema] == [
        ("id", "int32"), ("total", "decimal128(10, 2)"), ("placed", "timestamp[us]"), ("note", "string")]
    assert orders.num_rows == 2500
    assert orders.slice(0, 1).to_pylist() == [{"id": 1, "total": Decimal("1.25"), "placed": datetime.datetime(2024, 1, 1, 1), "note": "n1"}]
    assert project.table("regions_snap").to_pylist() == [{"code": "NO", "name": "North"}, {"code": "SO", "name": "South"}]
    big = project.table("big_snap")
    assert big.num_rows == 500 and big.column_names == ["id", "doubled"] and big.column("doubled")[0].as_py() == Decimal("5002.50")

    meta = project.metadata("orders_snap")
    assert meta["dagster/row_count"] == 2500 and meta["dataplat/datasource"] == "orders" and meta["refresh"] == "full"
    assert [c.name for c in meta["dagster/column_schema"].columns] == ["id", "total", "placed", "note"]
    assert project.drift("orders_snap")["passed"] and "First snapshot" in project.drift("orders_snap")["description"]


# A snapshot of a PostgreSQL table without the profile (the path `dataset import --datasource
# --no-profile` times), in a child interpreter so that nothing another test imported is
# counted: ADBC's low-level API keeps pandas (0.4 s or more to import) out of the run.
SNAPSHOT_WITHOUT_PANDAS = """
import json
import sys
from pathlib import Path

from dataplat_dagster_tests.datasources.snapshots import SnapshotProject

project = SnapshotProject(Path(sys.argv[1]), {"pg": json.loads(sys.argv[2])}, {"orders": {"connector": "pg", "table": "snap_orders"}},
                          {"orders_snap": "orders"})
success = project.snapshot("orders_snap", profile=False).success
print(success, project.metadata("orders_snap")["dagster/row_count"])
print("imported:", sorted(name for name in ("pandas", "pyarrow.dataset", "adbc_driver_manager.dbapi") if name in sys.modules))
"""


def test_a_postgres_snapshot_does_not_import_pandas(pg, tmp_path):
    child = subprocess.run([sys.executable, "-c", SNAPSHOT_WITHOUT_PANDAS, str(tmp_path), json.dumps(pg)], capture_output=True, text=True,
                           cwd=Path(__file__).parents[2], timeout=300)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines()[-2:] == ["True 2500", "imported: []"], child.stderr


def test_lineage_shows_the_datasource_as_an_external_upstream_asset(pg, tmp_path):
    project = SnapshotProject(tmp_path, {"pg": pg}, {"orders": {"connector": "pg", "table": "snap_orders"}}, {"orders_snap": "orders"})
    defs = project.definitions()
    graph = defs.resolve_asset_graph()
    source, dataset = AssetKey(["shop", "datasources", "orders"]), project.key("orders_snap")
    assert graph.get(dataset).parent_keys == {source}
    node = graph.get(source)
    assert not node.is_materializable and node.kinds == {"postgresql"}
    assert node.metadata["dagster/table_name"].value == "snap_orders"
    assert graph.get(dataset).tags["dataplat/origin"] == "datasource"
    assert [check.name for check in graph.get_check_keys_for_assets({dataset})] == ["schema_drift"]


def test_mariadb_and_sqlite_tables(mariadb_server, monkeypatch, tmp_path):
    import pymysql

    s = mariadb_server
    with pymysql.connect(host=s.host, port=s.port, user=s.username, password=s.password, database=s.database, autocommit=True) as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS snap_items")
        cursor.execute("CREATE TABLE snap_items (sku VARCHAR(10), qty INT, price DECIMAL(8,2))")
        cursor.executemany("INSERT INTO snap_items VALUES (%s, %s, %s)", [(f"S{i}", i, i + 0.5) for i in range(300)])
    monkeypatch.setenv("SNAP_MARIA_PASSWORD", s.password)
    with sqlite3.connect(tmp_path / "local.db") as db:
        db.execute('CREATE TABLE "order lines" (id INTEGER, sku TEXT, weight REAL)')
        db.executemany('INSERT INTO "order lines" VALUES (?, ?, ?)', [(i, f"s{i}", i / 4) for i in range(1, 41)])
    project = SnapshotProject(
        tmp_path,
        {"maria": {"type": "sql", "dialect": "mysql", "host": s.host, "port": s.port, "username": s.username,
                   "password_env": "SNAP_MARIA_PASSWORD", "database": s.database},
         "lite": {"type": "sql", "dialect": "sqlite", "database": str(tmp_path / "local.db")}},
        {"items": {"connector": "maria", "table": "snap_items"}, "lines": {"connector": "lite", "table": "order lines"}},
        {"items_snap": "items", "lines_snap": "lines"},
    )
    assert project.snapshot("items_snap").success and project.snapshot("lines_snap").success
    items = project.table("items_snap")
    assert items.num_rows == 300 and items.slice(1, 1).to_pylist() == [{"sku": "S1", "qty": 1, "price": Decimal("1.50")}]
    lines = project.table("lines_snap")
    assert lines.num_rows == 40 and lines.slice(3, 1).to_pylist() == [{"id": 4, "sku": "s4", "weight": 1.0}]


# -- files --------------------------------------------------------------------------------


EU_ROWS = [{"id": 1, "amount": 1234.5, "day": datetime.date(2024, 12, 31), "city": "Köln"},
           {"id": 2, "amount": 7.25, "day": datetime.date(2025, 1, 1), "city": "Sevilla"},
           {"id": 3, "amount": None, "day": datetime.date(2025, 1, 2), "city": "Besançon"}]


def test_files_on_s3_csv_gzip_zip_and_parquet(s3, tmp_path):
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="in/eu.csv.gz", Body=gzip.compress(EU_CSV))
    client.put_object(Bucket=s3.bucket, Key="in/eu.zip", Body=zipped("eu.csv", EU_CSV))
    client.put_object(Bucket=s3.bucket, Key="in/cities.parquet", Body=parquet_bytes())
    project = SnapshotProject(
        tmp_path, {"lake": s3_connector(s3)},
        {"gz": {"connector": "lake", "path": "in/eu.csv.gz"}, "zipped": {"connector": "lake", "path": "in/eu.zip"},
         "cities": {"connector": "lake", "path": "in/cities.parquet"}},
        {"gz_snap": "gz", "zip_snap": "zipped", "cities_snap": "cities"},
    )
    for dataset in ("gz_snap", "zip_snap", "cities_snap"):
        assert project.snapshot(dataset).success, dataset
    assert project.table("gz_snap").to_pylist() == EU_ROWS
    assert project.table("zip_snap").to_pylist() == EU_ROWS
    assert project.table("cities_snap").to_pylist() == [{"id": 1, "city": "Lyon"}, {"id": 2, "city": "Köln"}, {"id": 3, "city": None}]
    meta = project.metadata("gz_snap")
    assert meta["dialect"]["sep"] == ";" and meta["source_file"] == "in/eu.csv.gz"
    head = client.head_object(Bucket=s3.bucket, Key="in/eu.csv.gz")
    assert meta["source_size_bytes"] == head["ContentLength"] and head["ETag"].strip('"') in meta["dataplat/source_version"]


def test_files_on_ftp_sftp_and_gcs_in_their_dialects(ftp_server, sftp_server, gcs_server, monkeypatch, tmp_path):
    (ftp_server.root / "drop").mkdir(exist_ok=True)
    (ftp_server.root / "drop" / "codes.csv").write_text("code|name\n007|Bond\n042|Answer\n")
    (sftp_server.home / "weights.tsv").write_text("sku\tweight\nA\t1.5\nB\t2.25\n")
    monkeypatch.setenv("SNAP_FTP_PASSWORD", ftp_server.password)
    monkeypatch.setenv("SNAP_SFTP_PASSWORD", sftp_server.password)
    gcs = {"type": "gcs", "bucket": gcs_server.bucket, "gcp_project": gcs_server.project, "endpoint_url": gcs_server.endpoint_url}
    with open_connector("gcs", GcsConnectorSpec(**{k: v for k, v in gcs.items() if k != "type"}), tmp_path) as connector, \
            connector.open_store() as store, store.write("eu/eu.csv") as file:
        file.write(EU_CSV)
    project = SnapshotProject(
        tmp_path,
        {"ftp": {"type": "ftp", "host": ftp_server.host, "port": ftp_server.port, "username": ftp_server.username, "password_env": "SNAP_FTP_PASSWORD"},
         "sftp": {"type": "sftp", "host": sftp_server.host, "port": sftp_server.port, "username": sftp_server.username,
                  "password_env": "SNAP_SFTP_PASSWORD", "known_hosts": str(sftp_server.known_hosts)},
         "gcs": gcs},
        {"codes": {"connector": "ftp", "path": "drop/codes.csv", "options": {"sep": "|"}},
         "weights": {"connector": "sftp", "path": "weights.tsv"}, "eu": {"connector": "gcs", "path": "eu/eu.csv"}},
        {"codes_snap": "codes", "weights_snap": "weights", "eu_snap": "eu"},
    )
    for dataset in ("codes_snap", "weights_snap", "eu_snap"):
        assert project.snapshot(dataset).success, dataset
    assert project.table("codes_snap").to_pylist() == [{"code": "007", "name": "Bond"}, {"code": "042", "name": "Answer"}]
    assert project.table("weights_snap").to_pylist() == [{"sku": "A", "weight": 1.5}, {"sku": "B", "weight": 2.25}]
    assert project.table("eu_snap").to_pylist() == EU_ROWS


def test_a_missing_file_or_table_fails_with_the_reason_and_keeps_the_previous_snapshot(s3, tmp_path):
    s3.client().put_object(Bucket=s3.bucket, Key="eu.csv", Body=EU_CSV)
    project = SnapshotProject(tmp_path, {"lake": s3_connector(s3)}, {"eu": {"connector": "lake", "path": "eu.csv"}}, {"eu_snap": "eu"})
    assert project.snapshot("eu_snap").success
    s3.client().put_object(Bucket=s3.bucket, Key="eu.csv", Body=b"\x89PNG\r\n\x1a\n" + bytes(100))
    broken = project.snapshot("eu_snap")
    assert not broken.success
    message = failure_message(broken)
    assert message.startswith("Datasource 'eu': ") and "eu.csv does not look like a text table: it is a PNG image" in message
    assert "dataplat-snapshot-" not in message  # the store's path, not the download's
    s3.client().delete_object(Bucket=s3.bucket, Key="eu.csv")
    missing = project.snapshot("eu_snap")
    assert "'eu.csv' does not exist" in failure_message(missing)
    assert project.table("eu_snap").to_pylist() == EU_ROWS and project.materializations("eu_snap") == 1


def test_deleting_a_snapshot_dataset_leaves_the_source_byte_for_byte_unchanged(pg, s3, postgres_server, cli_workspace):
    """Through the CLI, as a user deletes it: the table's and the file's content are compared
    before and after."""
    ws = cli_workspace
    s3.client().put_object(Bucket=s3.bucket, Key="eu.csv", Body=EU_CSV)
    env = {"SNAP_PG_PASSWORD": postgres_server.password, S3_KEY_ENV: s3.access_key, S3_SECRET_ENV: s3.secret_key}
    ws.run("connector", "create", "sql", "pg", "--dialect", "postgresql", "--host", postgres_server.host, "--port", str(postgres_server.port),
           "--username", postgres_server.username, "--password-env", "SNAP_PG_PASSWORD", "--database", postgres_server.database, env=env)
    ws.run("connector", "create", "s3", "lake", "--bucket", s3.bucket, "--endpoint-url", s3.endpoint_url, "--region", s3.region,
           "--access-key-env", S3_KEY_ENV, "--secret-key-env", S3_SECRET_ENV, env=env)
    ws.run("datasource", "create", "orders", "--connector", "pg", "--table", "snap_orders", env=env)
    ws.run("datasource", "create", "eu", "--connector", "lake", "--path", "eu.csv", env=env)

    def table_digest() -> str:
        with pg_connection(postgres_server) as db, db.cursor() as cursor:
            cursor.execute("SELECT md5(string_agg(t::text, '|' ORDER BY id)), count(*) FROM snap_orders t")
            return repr(cursor.fetchone())

    def file_digest() -> str:
        return hashlib.sha256(s3.client().get_object(Bucket=s3.bucket, Key="eu.csv")["Body"].read()).hexdigest()

    before = table_digest(), file_digest()
    for dataset, source in (("orders_snap", "orders"), ("eu_snap", "eu")):
        ws.run("dataset", "import", "--datasource", source, "--name", dataset, "--no-profile", env=env)
        folder = ws.project_dir / "storage" / "datasets" / dataset
        assert stored(folder, "data.parquet").exists()
        ws.run("dataset", "delete", dataset, "--yes", env=env)
        assert not folder.exists()
    assert (table_digest(), file_digest()) == before
    assert [d["name"] for d in ws.run("datasource", "list", "--json", env=env).json()] == ["eu", "orders"]
