"""An instance whose dagster.yaml sets a QueuedRunCoordinator: the CLI submits and never
executes; dagster-daemon launches the runs, one at a time per connector tag."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster import DagsterRunStatus

QUEUED_INSTANCE = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
    tag_concurrency_limits:
      - key: dataplat/connector
        value: {applyLimitPerUniqueValue: true}
        limit: 1
"""


def runs_by_status(ws) -> dict[str, str]:
    with ws.instance() as instance:
        return {run.run_id: run.status for run in instance.get_runs()}


def test_the_cli_queues_runs_and_the_daemon_launches_them_under_the_limits(cli_workspace, tmp_path):
    ws = cli_workspace
    with open(ws.root / "dagster.yaml", "a") as instance_file:
        instance_file.write(QUEUED_INSTANCE)
    import sqlite3

    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        db.execute("CREATE TABLE orders (id INTEGER, total REAL)")
        db.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 1.5) for i in range(30)])
    ws.run("connector", "create", "sql", "shop_db", "--dialect", "sqlite", "--database", "shop.db")
    ws.run("datasource", "create", "orders", "--connector", "shop_db", "--table", "orders")
    (tmp_path / "people.csv").write_text("id,name\n1,ann\n2,bob\n")

    started = time.monotonic()
    upload = ws.run("dataset", "import", str(tmp_path / "people.csv"), "--name", "people", "--no-wait", "--json").json()
    snapshots = [ws.run("dataset", "import", "--datasource", "orders", "--name", f"orders_{i}", "--no-wait", "--json").json()
                 for i in range(2)]
    # The CLI returned, nothing executed it: every run waits in the queue for a daemon.
    assert set(runs_by_status(ws).values()) == {DagsterRunStatus.QUEUED}
    assert time.monotonic() - started < 60
    with ws.instance() as instance:
        for done in snapshots:
            assert instance.get_run_by_id(done["run_id"]).tags["dataplat/connector"] == "shop_db"
        assert "dataplat/connector" not in instance.get_run_by_id(upload["run_id"]).tags
    assert ws.datasets()["people"]["status"] == "parsing"

    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(ws.root / "workspace.yaml")],
        cwd=ws.root, env=dict(os.environ, DAGSTER_HOME=str(ws.root)), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and any(s in (DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING,
                                                         DagsterRunStatus.STARTED, DagsterRunStatus.NOT_STARTED)
                                                    for s in runs_by_status(ws).values()):
            time.sleep(1)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=30)
    assert set(runs_by_status(ws).values()) == {DagsterRunStatus.SUCCESS}
    datasets = ws.datasets()
    assert [(datasets[n]["status"], datasets[n]["rows"]) for n in ("people", "orders_0", "orders_1")] == [
        ("ready", 2), ("ready", 30), ("ready", 30)]
    # The two snapshots share a connector: the tag limit of 1 kept them from overlapping.
    with ws.instance() as instance:
        records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
    first, second = sorted((records[d["run_id"]] for d in snapshots), key=lambda r: r.start_time)
    assert first.end_time <= second.start_time
