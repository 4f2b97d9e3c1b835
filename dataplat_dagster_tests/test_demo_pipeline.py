"""The demo project end to end, as `make demo` runs it, in a copy of the workspace: the
shop's SQLite database is created, `dagster job execute -j main` runs the whole pipeline
(datasource → filter and derived column → join → prediction → timestamped export), and
what it wrote is read back with the standard library's sqlite3 and the `dataplat` CLI."""

import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCORED = re.compile(r"scored_orders_\d{8}_\d{6}")
COLUMNS = ["order_id", "customer_id", "order_date", "status", "amount", "city", "segment", "predicted_delivery_days"]


@pytest.fixture
def demo_workspace(tmp_path) -> Path:
    """The repository's workspace files and projects/demo, without what runs left in it."""
    ws = tmp_path / "ws"
    shutil.copytree(REPO / "projects" / "demo", ws / "projects" / "demo",
                    ignore=shutil.ignore_patterns("storage", "external", "__pycache__", ".dataplat.yaml.lock"))
    for name in ("workspace.yaml", "dagster.yaml"):
        shutil.copy(REPO / name, ws / name)
    return ws


def run(ws: Path, *command: str, timeout: float = 420) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))}
    env["DAGSTER_HOME"] = str(ws)
    return subprocess.run(command, cwd=ws, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_main(ws: Path) -> None:
    job = run(ws, str(BIN / "dagster"), "job", "execute", "-f", "projects/demo/definitions.py", "-d", "projects/demo", "-j", "main")
    assert job.returncode == 0, job.stdout[-5000:] + job.stderr[-5000:]


def scored_tables(db: sqlite3.Connection) -> list[str]:
    names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return sorted(name for name in names if SCORED.fullmatch(name))


def test_the_demo_main_job_runs_the_pipeline_and_exports_a_timestamped_table(demo_workspace):
    ws = demo_workspace
    for script in ("make_shop_db.py", "make_shapes.py"):
        made = run(ws, sys.executable, f"projects/demo/{script}")
        assert made.returncode == 0, made.stderr
    database = ws / "projects" / "demo" / "external" / "shop.db"
    assert database.is_file()

    started = time.monotonic()
    run_main(ws)
    first_run_s = time.monotonic() - started

    with sqlite3.connect(database) as db:
        (table,) = scored_tables(db)
        (orders,) = db.execute("SELECT count(*) FROM orders").fetchone()
        (valid,) = db.execute("SELECT count(*) FROM orders WHERE status != 'cancelled'").fetchone()
        assert orders == 5000 and 0 < valid < orders
        assert db.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (valid,)
        assert [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')] == COLUMNS
        # The same orders, none of them cancelled, each once.
        assert db.execute(f'SELECT count(DISTINCT order_id), sum(status = \'cancelled\') FROM "{table}"').fetchone() == (valid, 0)
        missing = db.execute(f'SELECT count(*) FROM orders o WHERE o.status != \'cancelled\' AND o.order_id NOT IN (SELECT order_id FROM "{table}")')
        assert missing.fetchone() == (0,)

        predictions = [row[0] for row in db.execute(f'SELECT predicted_delivery_days FROM "{table}"')]
        assert len(predictions) == valid
        assert all(isinstance(p, float) and math.isfinite(p) and 0 <= p <= 20 for p in predictions), (min(predictions), max(predictions))
        assert len(set(predictions)) > 10  # a model, not a constant

        # The derived column: quantity × unit_price, rounded to cents, for a few orders.
        checked = db.execute(
            f'SELECT s.order_id, s.amount, o.quantity, o.unit_price, s.customer_id = o.customer_id, s.order_date = o.order_date, '
            f's.status = o.status FROM "{table}" s JOIN orders o USING (order_id) ORDER BY s.order_id LIMIT 25'
        ).fetchall()
        assert len(checked) == 25
        for order_id, amount, quantity, unit_price, same_customer, same_date, same_status in checked:
            assert amount == pytest.approx(round(quantity * unit_price, 2), abs=1e-9), order_id
            assert same_customer and same_date and same_status, order_id
        # The join: every order has its customer's city and segment.
        assert db.execute(f'SELECT count(*) FROM "{table}" WHERE city IS NULL OR segment IS NULL').fetchone() == (0,)

    time.sleep(1.1)  # the table names have a resolution of one second
    run_main(ws)
    with sqlite3.connect(database) as db:
        tables = scored_tables(db)
        assert len(tables) == 2 and tables[0] == table, tables
        assert db.execute(f'SELECT count(*) FROM "{tables[1]}"').fetchone() == (valid,)

    listed = run(ws, str(BIN / "dataplat"), "--workspace", str(ws), "--project", "demo", "dataset", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    datasets = {item["name"]: item for item in json.loads(listed.stdout)}
    expected = {"orders_raw": ("pipeline_intermediate", orders), "orders_valid": ("pipeline_intermediate", valid),
                "orders_enriched": ("pipeline_intermediate", valid), "orders_scored": ("pipeline_output", valid)}
    for name, (origin, rows) in expected.items():
        assert (datasets[name]["origin"], datasets[name]["status"], datasets[name]["rows"]) == (origin, "ready", rows), datasets[name]
    assert datasets["customers"]["status"] == "ready" and datasets["sales"]["status"] == "ready"
    # The demo's declared checks ran after the materializations, in the same run, and passed.
    assert datasets["customers"]["checks"] == {"count": 3, "passed": 3, "failed": 0, "not_run": 0, "failed_checks": []}
    assert datasets["orders_valid"]["checks"]["passed"] == 1

    # The image folder the demo draws, imported by the same job: 12 images of each of 3 labels.
    listed = run(ws, str(BIN / "dataplat"), "--workspace", str(ws), "--project", "demo", "image-folder", "show", "shapes", "--json")
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert (shown["status"], shown["images"], shown["labels"]) == ("ready", 36, 3)
    assert [(entry["label"], entry["index"], entry["images"]) for entry in shown["summary"]["labels"]] == [
        ("circle", 0, 12), ("square", 1, 12), ("triangle", 2, 12)]
    assert shown["summary"]["formats"] == {"JPEG": 18, "PNG": 18}
    print(f"first run of the main job: {first_run_s:.1f} s")


def test_a_failing_error_check_stops_the_demo_pipelines_next_step(demo_workspace):
    """orders_valid has an error check (amount >= 0): with a negative price in the shop's
    database, the main job publishes orders_valid, its check fails, and the steps after it
    (the join, the prediction, the export) do not run."""
    ws = demo_workspace
    for script in ("make_shop_db.py", "make_shapes.py"):
        made = run(ws, sys.executable, f"projects/demo/{script}")
        assert made.returncode == 0, made.stderr
    database = ws / "projects" / "demo" / "external" / "shop.db"
    with sqlite3.connect(database) as db:
        (order_id,) = db.execute("SELECT order_id FROM orders WHERE status != 'cancelled' ORDER BY order_id LIMIT 1").fetchone()
        db.execute("UPDATE orders SET unit_price = -2.5 WHERE order_id = ?", (order_id,))

    job = run(ws, str(BIN / "dagster"), "job", "execute", "-f", "projects/demo/definitions.py", "-d", "projects/demo", "-j", "main")
    assert job.returncode != 0
    assert "amount_be_between" in job.stdout + job.stderr
    with sqlite3.connect(database) as db:
        assert scored_tables(db) == []  # nothing exported

    dataplat = (str(BIN / "dataplat"), "--workspace", str(ws), "--project", "demo")
    datasets = {item["name"]: item for item in json.loads(run(ws, *dataplat, "dataset", "list", "--json").stdout)}
    assert datasets["orders_valid"]["status"] == "ready"
    assert datasets["orders_valid"]["checks"]["failed_checks"] == ["amount_be_between"]
    # Never materialized: the run that targeted them failed on orders_valid's blocking check.
    for name in ("orders_enriched", "orders_scored"):
        assert (datasets[name]["status"], datasets[name]["rows"]) == ("failed", None), datasets[name]
        assert "blocking asset check failed" in datasets[name]["error"] and "amount_be_between" in datasets[name]["error"]
    checks = {c["name"]: c for c in json.loads(run(ws, *dataplat, "check", "list", "orders_valid", "--json").stdout)}
    result = checks["amount_be_between"]["last_result"]
    assert result["passed"] is False and result["metadata"]["unexpected_count"] >= 1
    assert min(result["metadata"]["unexpected_sample"]) < 0
