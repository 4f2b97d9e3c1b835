"""`dataplat dataset import --datasource` and `dataplat dataset refresh`, end to end on SQLite."""

import sqlite3

import pyarrow.parquet as pq

from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.workspace import Project
from dataplat_dagster_tests.conftest import stored


def make_source(ws, rows: int = 25) -> None:
    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER, total REAL)")
        db.execute("DELETE FROM orders")
        db.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 2.5) for i in range(rows)])
    ws.run("connector", "create", "sql", "shop_db", "--dialect", "sqlite", "--database", "shop.db")
    ws.run("datasource", "create", "orders", "--connector", "shop_db", "--table", "orders")


def test_import_a_datasource_list_it_and_refresh_it(cli_workspace):
    ws = cli_workspace
    make_source(ws)
    done = ws.run("dataset", "import", "--datasource", "orders", "--name", "orders_snap", "--json").json()
    assert (done["name"], done["origin"], done["datasource"], done["status"], done["rows"], done["columns"]) == (
        "orders_snap", "datasource", "orders", "ready", 25, 2)
    assert done["schema_drift"]["passed"] is True
    spec = project_catalog(Project("shop", ws.project_dir)).datasets["orders_snap"]
    assert (spec.origin, spec.datasource, spec.source) == ("datasource", "orders", None)

    listed = ws.run("dataset", "list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "ORIGIN", "STATUS", "ROWS", "COLUMNS", "SIZE", "CREATED", "DATASOURCE", "EMBEDDINGS"]
    assert listed[1].split()[:5] == ["orders_snap", "datasource", "ready", "25", "2"] and listed[1].split()[-2:] == ["orders", "none"]
    shown = ws.run("dataset", "show", "orders_snap", "--json").json()
    assert shown["summary"]["rows"] == 25

    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        db.executemany("INSERT INTO orders VALUES (?, ?)", [(i, 0.5) for i in range(25, 40)])
    refreshed = ws.run("dataset", "refresh", "orders_snap")
    assert "Dataset 'orders_snap' is ready: 40 rows × 2 columns" in refreshed.stdout
    assert pq.read_table(stored(ws.project_dir / "storage/datasets/orders_snap", "data.parquet")).num_rows == 40
    again = ws.run("dataset", "import", "--datasource", "orders", "--name", "orders_snap", "--replace", "--json").json()
    assert again["rows"] == 40

    shown = ws.run("datasource", "show", "orders", "--json").json()
    assert shown["used_by"] == ["dataset 'orders_snap'"]
    assert shown["automation"] == {"job": "snapshot_orders", "schedule": None, "sensor": None}

    refused = ws.run("datasource", "delete", "orders", "--yes", check=False)
    assert refused.code == 1 and "used by dataset 'orders_snap'" in refused.stderr


def test_a_drift_warning_is_printed(cli_workspace):
    ws = cli_workspace
    make_source(ws)
    ws.run("dataset", "import", "--datasource", "orders", "--name", "orders_snap")
    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        db.execute("ALTER TABLE orders ADD COLUMN channel TEXT DEFAULT 'web'")
    result = ws.run("dataset", "refresh", "orders_snap")
    assert "warning: Schema changed since the previous snapshot: added channel (string)." in result.stderr


def test_bad_snapshot_requests_are_refused_and_register_nothing(cli_workspace):
    ws = cli_workspace
    make_source(ws)
    (ws.root / "x.csv").write_text("a,b\n1,2\n")
    cases = [
        (("dataset", "import", "x.csv", "--datasource", "orders", "--name", "s"), 2, "Give either PATH or --datasource DS, not both."),
        (("dataset", "import", "--name", "s"), 2, "Give the file to import (PATH), or --datasource DS"),
        (("dataset", "import", "--datasource", "orders", "--name", "s", "--sep", ";"), 2, "CSV options belong to the datasource"),
        (("dataset", "import", "--datasource", "nope", "--name", "s"), 1, "Project 'shop' has no datasource 'nope' (its datasources: orders)."),
        (("dataset", "import", "--datasource", "orders", "--name", "bad name"), 1, "bad name"),
        (("dataset", "refresh", "nope"), 1, "No dataset 'nope'"),
    ]
    for args, code, words in cases:
        result = ws.run(*args, check=False)
        assert result.code == code and words in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)

    ws.run("dataset", "import", "x.csv", "--name", "uploaded")
    not_a_snapshot = ws.run("dataset", "refresh", "uploaded", check=False)
    assert not_a_snapshot.code == 1 and "is a file upload, not a snapshot of a datasource" in not_a_snapshot.stderr
    clash = ws.run("dataset", "import", "--datasource", "orders", "--name", "uploaded", "--replace", check=False)
    assert clash.code == 1 and "comes from a file upload, not from datasource 'orders'" in clash.stderr

    # A datasource whose table is gone: the database's reason, and nothing registered.
    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        db.execute("DROP TABLE orders")
    failed = ws.run("dataset", "import", "--datasource", "orders", "--name", "orders_snap", check=False)
    assert failed.code == 1 and "no such table: orders" in failed.stderr and "Nothing was registered." in failed.stderr
    assert set(project_catalog(Project("shop", ws.project_dir)).datasets) == {"uploaded"}
    assert not (ws.project_dir / "storage" / "datasets" / "orders_snap").exists()
