"""`dataplat datasource ...` end to end on a SQLite connector and an S3 one."""

import sqlite3

import yaml

from dataplat_dagster.catalog import load_catalog


def make_shop(ws):
    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        db.execute("CREATE TABLE orders (id INTEGER, total REAL, placed TEXT)")
        db.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, i * 2.5, f"2024-03-{i % 28 + 1:02d}") for i in range(40)])
    ws.run("connector", "create", "sql", "shop_db", "--dialect", "sqlite", "--database", "shop.db")


def test_dry_run_saves_nothing_then_create_list_show_test_delete(cli_workspace):
    ws = cli_workspace
    make_shop(ws)
    dry = ws.run("datasource", "create", "orders", "--connector", "shop_db", "--table", "orders", "--dry-run", "--json").json()
    assert dry["columns"] == [{"name": "id", "type": "int64"}, {"name": "total", "type": "double"}, {"name": "placed", "type": "string"}]
    assert (dry["row_estimate"], dry["row_estimate_exact"], len(dry["sample"])) == (40, True, 10)
    assert load_catalog(ws.project_dir / "dataplat.yaml").datasources == {}

    ws.run("datasource", "create", "orders", "--connector", "shop_db", "--table", "orders", "--schedule", "0 6 * * *", "--drift-policy", "fail")
    ws.run("datasource", "create", "big_orders", "--connector", "shop_db", "--query", "SELECT id, total FROM orders WHERE total > 50")
    saved = yaml.safe_load((ws.project_dir / "dataplat.yaml").read_text())["datasources"]
    assert saved["orders"] == {"connector": "shop_db", "table": "orders", "options": {}, "schedule": "0 6 * * *", "drift_policy": "fail",
                               "quality_policy": "warn", "watch": False, "watch_interval_s": 60}

    listed = ws.run("datasource", "list", "--json").json()
    assert [(d["name"], d["kind"], d["target"], d["schedule"]) for d in listed] == [
        ("big_orders", "query", "SELECT id, total FROM orders WHERE total > 50", None), ("orders", "table", "orders", "0 6 * * *")]
    shown = ws.run("datasource", "show", "orders").stdout
    assert "table orders through connector 'shop_db'" in shown and "drift_policy" in shown

    tested = ws.run("datasource", "test", "big_orders")
    assert "rows: 19" in tested.stdout and "columns (2): id int64, total double" in tested.stdout
    assert "ID  TOTAL" in tested.stdout

    ws.run("datasource", "delete", "big_orders", "--yes")
    assert [d["name"] for d in ws.run("datasource", "list", "--json").json()] == ["orders"]


def test_bad_datasources_are_refused_with_the_reason(cli_workspace):
    ws = cli_workspace
    make_shop(ws)
    cases = {
        ("--connector", "nope", "--table", "orders"): "names the connector 'nope', which does not exist",
        ("--connector", "shop_db", "--path", "x.csv"): "reads a path, but 'shop_db' is a SQL connector",
        ("--connector", "shop_db", "--table", "orders", "--query", "SELECT 1"): "exactly one of table",
        ("--connector", "shop_db", "--table", "orders", "--schedule", "every day"): "is not a cron schedule",
    }
    for flags, words in cases.items():
        result = ws.run("datasource", "create", "bad", *flags, check=False)
        assert result.code == 2 and words in result.stderr, (flags, result.stderr)

    missing = ws.run("datasource", "create", "gone", "--connector", "shop_db", "--table", "no_such", "--dry-run", check=False)
    assert missing.code == 1 and "no such table: no_such" in missing.stderr and "Traceback" not in missing.stderr
    syntax = ws.run("datasource", "create", "typo", "--connector", "shop_db", "--query", "SELECT id FRM orders", "--dry-run", check=False)
    assert syntax.code == 1 and 'syntax error' in syntax.stderr
    assert load_catalog(ws.project_dir / "dataplat.yaml").datasources == {}


def test_a_file_datasource_on_s3(cli_workspace, s3_server):
    ws = cli_workspace
    s3_server.reset()
    s3_server.client().put_object(Bucket=s3_server.bucket, Key="exports/sales.csv", Body=b"region,amount\nnorth,10.5\nsouth,7\n")
    env = {"SHOP_S3_KEY": s3_server.access_key, "SHOP_S3_SECRET": s3_server.secret_key}
    ws.run("connector", "create", "s3", "lake", "--bucket", s3_server.bucket, "--endpoint-url", s3_server.endpoint_url,
           "--region", s3_server.region, "--access-key-env", "SHOP_S3_KEY", "--secret-key-env", "SHOP_S3_SECRET")
    ws.run("datasource", "create", "sales", "--connector", "lake", "--path", "exports/sales.csv", env=env)
    tested = ws.run("datasource", "test", "sales", env=env)
    assert "dialect: encoding utf-8, separator ',', decimal '.'" in tested.stdout
    assert "rows: 2" in tested.stdout and "region string, amount double" in tested.stdout
    gone = ws.run("datasource", "create", "nothing", "--connector", "lake", "--path", "exports/none.csv", "--dry-run", env=env, check=False)
    assert gone.code == 1 and gone.stderr.startswith("error: 'exports/none.csv' does not exist in s3://")
    assert s3_server.secret_key not in tested.stdout + tested.stderr + gone.stderr
