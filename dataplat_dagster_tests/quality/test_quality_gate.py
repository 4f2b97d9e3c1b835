"""The quality gate, end to end through the real `dataplat` and `dagster` CLIs in a workspace:

- a datasource under ``quality_policy: fail`` refuses a snapshot that fails an ``error``
  check (the previous version stays current); under ``warn`` it is published with the check
  failed, and ``dataset list`` says so;
- across runs, a pipeline step that reads a dataset whose current version failed an
  ``error`` check is refused by the dataset IO manager, and runs once the data is fixed;
- within one run, Dagster's blocking check keeps the downstream step from starting.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from dagster import AssetKey, DagsterEventType, DagsterRunStatus, RunsFilter

from dataplat_dagster_tests.conftest import stored

DAGSTER = str(Path(sys.executable).parent / "dagster")
GOOD_ROWS = [(i, i * 2.5) for i in range(25)]

PIPELINE = '''\
"""Code location of project 'shop', with a step downstream of dataset 'orders'."""

from pathlib import Path

from dagster import AssetSelection, Definitions, asset, define_asset_job, in_process_executor

from dataplat_dagster import dataset_in, project_definitions

HERE = Path(__file__).parent


@asset(ins={"orders": dataset_in("orders", project=__file__)}, group_name="shop")
def order_total(orders) -> float:
    total = float(orders["amount"].sum())
    (HERE / "order_total.txt").write_text(f"{total}\\n")
    return total


main = define_asset_job("main", selection=AssetSelection.groups("shop").materializable(), executor_def=in_process_executor)

defs = Definitions.merge(project_definitions(__file__), Definitions(assets=[order_total], jobs=[main]))
'''


# --- helpers ----------------------------------------------------------------------------

def edit_catalog(ws, change) -> None:
    path = ws.project_dir / "dataplat.yaml"
    catalog = yaml.safe_load(path.read_text())
    change(catalog)
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))


def make_snapshot_source(ws, policy: str | None) -> None:
    """Table `orders` in SQLite, its datasource (with ``quality_policy``, if given) and an
    error check on the snapshot dataset `orders_snap`: no negative total."""
    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        db.execute("CREATE TABLE orders (id INTEGER, total REAL)")
        db.executemany("INSERT INTO orders VALUES (?, ?)", GOOD_ROWS)
    ws.run("connector", "create", "sql", "shop_db", "--dialect", "sqlite", "--database", "shop.db")
    ws.run("datasource", "create", "orders", "--connector", "shop_db", "--table", "orders")

    def declare(catalog):
        if policy is not None:
            catalog["datasources"]["orders"]["quality_policy"] = policy
        catalog["checks"] = {"orders_snap": [{"expectation": "expect_column_values_to_be_between",
                                              "kwargs": {"column": "total", "min_value": 0}, "severity": "error"}]}

    edit_catalog(ws, declare)


def corrupt_source(ws) -> None:
    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        db.execute("UPDATE orders SET total = -7.5 WHERE id = 3")
        db.execute("INSERT INTO orders VALUES (25, 1.0)")


def current_of(folder: Path) -> dict:
    return json.loads((folder / "current.json").read_text())


def rows_of(folder: Path) -> list[tuple]:
    table = pq.read_table(stored(folder, "data.parquet"))
    return list(zip(table["id"].to_pylist(), table["total"].to_pylist()))


def dagster(ws, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))}
    env["DAGSTER_HOME"] = str(ws.root)
    return subprocess.run([DAGSTER, *args, "-f", "projects/shop/definitions.py", "-d", "projects/shop"], cwd=ws.root, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


# --- a. quality_policy of a datasource ---------------------------------------------------

def test_quality_policy_fail_refuses_a_failing_snapshot_and_keeps_the_previous_version(cli_workspace):
    ws = cli_workspace
    make_snapshot_source(ws, "fail")
    folder = ws.project_dir / "storage" / "datasets" / "orders_snap"

    first = ws.run("dataset", "import", "--datasource", "orders", "--name", "orders_snap", "--json").json()
    assert (first["status"], first["rows"]) == ("ready", 25)
    assert first["checks"] == {"count": 1, "passed": 1, "failed": 0, "not_run": 0, "failed_checks": []}
    before = ws.datasets()["orders_snap"]
    version = current_of(folder)
    assert rows_of(folder) == GOOD_ROWS

    corrupt_source(ws)
    refused = ws.run("dataset", "refresh", "orders_snap", check=False)
    assert refused.code == 1, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert "The new version of datasource 'orders' was refused: it failed its error check(s)" in refused.stderr
    assert "total_be_between: 1 unexpected of 26 rows" in refused.stderr and "-7.5" in refused.stderr
    assert "Its quality_policy is 'fail', so the previous version stays current." in refused.stderr

    after = ws.datasets()["orders_snap"]
    assert (after["rows"], after["columns"], after["materialized_at"], after["size_bytes"]) == (
        25, 2, before["materialized_at"], before["size_bytes"])
    assert after["status"] == "failed" and "total_be_between" in after["error"]
    # The refused version was never published: the check's last result is still the pass.
    assert after["checks"]["failed"] == 0
    assert current_of(folder) == version  # same current version, nothing new kept
    assert rows_of(folder) == GOOD_ROWS
    (check,) = ws.run("check", "list", "orders_snap", "--json").json()
    assert (check["name"], check["severity"], check["last_result"]["passed"], check["last_result"]["version"]) == (
        "total_be_between", "error", True, version["current"])

    # Fixed at the source: the next snapshot passes the gate and is published.
    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        db.execute("UPDATE orders SET total = 7.5 WHERE id = 3")
    fixed = ws.run("dataset", "refresh", "orders_snap", "--json").json()
    assert (fixed["status"], fixed["rows"]) == ("ready", 26)
    assert current_of(folder)["current"] != version["current"]
    assert rows_of(folder) == [(3, 7.5) if i == 3 else (i, t) for i, t in GOOD_ROWS] + [(25, 1.0)]


def test_quality_policy_warn_publishes_a_failing_snapshot_with_the_check_failed(cli_workspace):
    ws = cli_workspace
    make_snapshot_source(ws, None)  # warn, the default
    folder = ws.project_dir / "storage" / "datasets" / "orders_snap"
    ws.run("dataset", "import", "--datasource", "orders", "--name", "orders_snap")
    version = current_of(folder)["current"]

    corrupt_source(ws)
    ws.run("dataset", "refresh", "orders_snap", check=False)  # see the report: its exit status and message

    new_version = current_of(folder)["current"]
    assert new_version != version
    assert (3, -7.5) in rows_of(folder) and len(rows_of(folder)) == 26
    listed = ws.datasets()["orders_snap"]
    assert (listed["status"], listed["rows"]) == ("ready", 26)
    assert listed["checks"] == {"count": 1, "passed": 0, "failed": 1, "not_run": 0, "failed_checks": ["total_be_between"]}
    table = ws.run("dataset", "list").stdout.splitlines()
    (row,) = [line for line in table if line.startswith("orders_snap ")]
    assert "ready, 1 check failed" in row
    (check,) = ws.run("check", "list", "orders_snap", "--json").json()
    result = check["last_result"]
    assert (result["passed"], result["version"]) == (False, new_version)
    assert (result["metadata"]["unexpected_count"], result["metadata"]["element_count"]) == (1, 26)
    assert result["metadata"]["unexpected_sample"] == [-7.5]


# --- b. and c. the gate in pipelines ------------------------------------------------------

def test_a_failed_error_check_stops_the_downstream_step_across_runs_and_within_a_run(cli_workspace):
    ws = cli_workspace
    (ws.root / "bad.csv").write_text("order_id,amount\n1,10.5\n2,-4\n3,7\n")
    (ws.root / "good.csv").write_text("order_id,amount\n1,10.5\n2,4\n3,7\n")
    (ws.project_dir / "definitions.py").write_text(PIPELINE)
    marker = ws.project_dir / "order_total.txt"
    downstream = AssetKey("order_total")
    orders_key = AssetKey(["shop", "datasets", "orders"])

    ws.run("dataset", "import", "bad.csv", "--name", "orders")
    ws.run("check", "add", "orders", "expect_column_values_to_be_between", "--column", "amount",
           "--arg", "min_value=0", "--severity", "error")
    checked = ws.run("check", "run", "orders", check=False)
    assert checked.code == 1
    assert "amount_be_between  error     FAILED  1 unexpected of 3 rows (33.33%), e.g. -4.0" in checked.stdout
    assert "Dataset 'orders' failed its error check(s) amount_be_between" in checked.stderr

    # b. Across runs: the step that reads `orders` is refused by the IO manager.
    refused = dagster(ws, "asset", "materialize", "--select", "order_total")
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert ("Dataset 'orders' failed its error check(s) on its current version (amount_be_between: 1 unexpected of 3 "
            "rows (33.33%), e.g. -4.0), so the steps that read it do not run.") in output
    assert 'Execution of step "order_total" failed.' in output
    assert not marker.exists()
    with ws.instance() as instance:
        assert instance.get_latest_materialization_event(downstream) is None

    # c. Within one run: orders is materialized again (from the same bad upload), its
    # blocking check fails, and order_total does not start.
    job = dagster(ws, "job", "execute", "-j", "main")
    assert job.returncode != 0
    assert not marker.exists()
    with ws.instance() as instance:
        (run,) = instance.get_runs(filters=RunsFilter(job_name="main"))
        assert run.status == DagsterRunStatus.FAILURE
        events = [record.dagster_event for record in instance.all_logs(run.run_id) if record.dagster_event]
        materialized = {e.asset_key for e in events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION}
        assert materialized == {orders_key}
        evaluations = [e.event_specific_data for e in events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
        assert [(ev.asset_key, ev.check_name, ev.passed) for ev in evaluations] == [(orders_key, "amount_be_between", False)]
        started = {e.step_key for e in events if e.event_type == DagsterEventType.STEP_START}
        assert "order_total" not in started and "quality_checks_orders" in started
        assert instance.get_latest_materialization_event(downstream) is None

    # Fixed data: a good file replaces the bad one, its check passes, and the step runs.
    ws.run("dataset", "import", "good.csv", "--name", "orders", "--replace")
    (check,) = ws.run("check", "list", "orders", "--json").json()
    assert check["last_result"]["passed"] is True
    assert check["last_result"]["version"] == current_of(ws.project_dir / "storage" / "datasets" / "orders")["current"]
    ran = dagster(ws, "asset", "materialize", "--select", "order_total")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert marker.read_text() == "21.5\n"
    with ws.instance() as instance:
        assert instance.get_latest_materialization_event(downstream) is not None
