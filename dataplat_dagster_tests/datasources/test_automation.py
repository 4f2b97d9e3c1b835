"""The snapshot jobs, schedules and file-change sensors of datasources, on real servers.

The sensor and the schedule are evaluated through Dagster's testing API against the
workspace's own instance (so the snapshot the CLI took counts); one test runs the real
``dagster-daemon`` on the workspace and lets it notice a changed file in S3 by itself.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from dagster import (
    AssetKey,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunsFilter,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from dataplat_dagster import project_definitions
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.datasources.automation import TAG_SNAPSHOT_OF

DAEMON = str(Path(sys.executable).parent / "dagster-daemon")
KEY = "exports/sales.csv"
CSV = b"region,amount\nnorth,10.5\nsouth,7\neast,3\n"
MORE_ROWS = b"region,amount\nnorth,10.5\nsouth,7\neast,3\nwest,1.25\ncentre,8\n"
SECRETS = ("SHOP_S3_KEY", "SHOP_S3_SECRET")


def s3_env(s3) -> dict[str, str]:
    return {"SHOP_S3_KEY": s3.access_key, "SHOP_S3_SECRET": s3.secret_key}


def upload(s3, body: bytes, key: str = KEY) -> str:
    """Put ``body`` at ``key``; the file's version as S3 reports it (size@mtime#etag)."""
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=body)
    return s3_version(s3, key)


def s3_version(s3, key: str = KEY) -> str:
    """The version computed from boto3's head_object, independently of the connector."""
    head = s3.client().head_object(Bucket=s3.bucket, Key=key)
    modified = head["LastModified"].astimezone(timezone.utc).isoformat()
    return f"{head['ContentLength']}@{modified}#{head['ETag'].strip(chr(34))}"


def make_s3_snapshot(ws, s3, datasource: str = "sales", *flags: str) -> dict[str, str]:
    """Connector ``lake`` on the test bucket, datasource ``datasource`` on KEY, and its snapshot
    dataset ``<datasource>_snap`` (imported through the CLI: materialized once)."""
    env = s3_env(s3)
    ws.run("connector", "create", "s3", "lake", "--bucket", s3.bucket, "--endpoint-url", s3.endpoint_url,
               "--region", s3.region, "--access-key-env", SECRETS[0], "--secret-key-env", SECRETS[1])
    ws.run("datasource", "create", datasource, "--connector", "lake", "--path", KEY, *flags, env=env)
    ws.run("dataset", "import", "--datasource", datasource, "--name", f"{datasource}_snap", "--no-profile", env=env)
    return env


def cursor(snapshotted: str | None, changed: str | None = None) -> str:
    """The file sensor's cursor, as JSON."""
    return json.dumps({"snapshotted": snapshotted, "changed": changed})


def waiting(version: str, path: str = KEY, interval: int = 60) -> str:
    return (f"{path} changed ({version}); a snapshot starts if the next look, in {interval} s, finds it the same, "
            "so that an upload still in progress is not read half-way.")


def latest_materialization(instance, project: str, dataset: str):
    return instance.get_latest_materialization_event(AssetKey(dataset_key(project, dataset))).asset_materialization


def materialization_count(instance, project: str, dataset: str) -> int:
    return len(instance.fetch_materializations(AssetKey(dataset_key(project, dataset)), limit=100).records)


# -- the file-change sensor, through the testing API --------------------------------------


def test_the_sensor_starts_one_snapshot_per_new_version_of_the_file(cli_workspace, s3_server, monkeypatch):
    ws = cli_workspace
    s3_server.reset()
    first = upload(s3_server, CSV)
    env = make_s3_snapshot(ws, s3_server)
    for name, value in env.items():  # the connector resource reads its keys from EnvVars
        monkeypatch.setenv(name, value)

    defs = project_definitions(ws.project_dir)
    sensor = defs.resolve_sensor_def("watch_sales")
    assert sensor.job_name == "snapshot_sales"
    assert sensor.default_status == DefaultSensorStatus.STOPPED  # no --watch
    assert sensor.minimum_interval_seconds == 60  # the default interval
    resources = {"lake": defs.resources["lake"]}

    with ws.instance() as instance:
        assert latest_materialization(instance, "shop", "sales_snap").metadata["dagster/row_count"].value == 3
        assert latest_materialization(instance, "shop", "sales_snap").metadata["dataplat/source_version"].value == first

        def tick(cursor):
            return sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, resources=resources))

        # No cursor yet: the last snapshot holds this version, so it counts as seen.
        data = tick(None)
        assert data.run_requests == []
        assert data.skip_message == f"The last snapshot already holds this version of {KEY} ({first})."
        assert data.cursor == cursor(first)

        data = tick(cursor(first))
        assert data.run_requests == []
        assert data.skip_message == f"{KEY} is unchanged ({first})."
        assert data.cursor == cursor(first)

        # A change starts a run once the next look sees the same version.
        second = upload(s3_server, MORE_ROWS)
        assert second != first
        data = tick(cursor(first))
        assert data.run_requests == []
        assert data.skip_message == waiting(second)
        assert data.cursor == cursor(first, changed=second)
        data = tick(data.cursor)
        assert data.skip_message is None
        assert len(data.run_requests) == 1
        request = data.run_requests[0]
        assert request.run_key == f"sales:{second}"
        assert request.tags == {
            TAG_SNAPSHOT_OF: "sales", "dataplat/source_version": second, "dagster/sensor_name": "watch_sales"}
        assert request.job_name is None  # the sensor's own job, snapshot_sales
        assert data.cursor == cursor(second)

        data = tick(cursor(second))
        assert data.run_requests == [] and data.skip_message == f"{KEY} is unchanged ({second})."
        assert data.cursor == cursor(second)

        # No cursor (e.g. a sensor reset) and a file newer than the last snapshot: a run, at the second look.
        data = tick(None)
        assert data.run_requests == [] and data.cursor == cursor(None, changed=second)
        data = tick(data.cursor)
        assert [r.run_key for r in data.run_requests] == [f"sales:{second}"]
        assert data.cursor == cursor(second)

        # A cursor of an earlier version (the version alone) still counts as snapshotted.
        data = tick(second)
        assert data.run_requests == [] and data.skip_message == f"{KEY} is unchanged ({second})."

        # The file goes away: a skip that names it, and the cursor stays as it was.
        s3_server.client().delete_object(Bucket=s3_server.bucket, Key=KEY)
        data = tick(cursor(second))
        assert data.run_requests == []
        assert data.skip_message == (
            f"{KEY!r} does not exist in s3://{s3_server.bucket}/: check the path (it starts from the connector's "
            "root); waiting for it to appear."
        )
        assert data.cursor == cursor(second)

        # It comes back with the content of the last snapshot's version: a new upload is a new version.
        third = upload(s3_server, CSV)
        data = tick(tick(cursor(second)).cursor)
        assert [r.run_key for r in data.run_requests] == [f"sales:{third}"]


def test_a_file_still_being_written_over_sftp_is_snapshotted_once_it_stops_changing(cli_workspace, sftp_server, monkeypatch):
    import paramiko

    ws, server = cli_workspace, sftp_server
    folder = f"watch_{uuid.uuid4().hex[:8]}"
    (server.home / folder).mkdir()
    (server.home / folder / "sales.csv").write_bytes(CSV)
    for path in (server.home / folder, server.home / folder / "sales.csv"):  # the SFTP user uploads there
        shutil.chown(path, server.home.stat().st_uid, server.home.stat().st_gid)
    env = {"WATCH_SFTP_PASSWORD": server.password}
    monkeypatch.setenv("WATCH_SFTP_PASSWORD", server.password)
    ws.run("connector", "create", "sftp", "drop", "--host", server.host, "--port", str(server.port), "--username", server.username,
           "--password-env", "WATCH_SFTP_PASSWORD", "--known-hosts", str(server.known_hosts), "--root", folder)
    ws.run("datasource", "create", "sales", "--connector", "drop", "--path", "sales.csv", "--watch-interval", "5", env=env)
    ws.run("dataset", "import", "--datasource", "sales", "--name", "sales_snap", "--no-profile", env=env)

    defs = project_definitions(ws.project_dir)
    sensor = defs.resolve_sensor_def("watch_sales")
    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts))
    client.connect(server.host, port=server.port, username=server.username, password=server.password,
                   look_for_keys=False, allow_agent=False)
    with ws.instance() as instance, client, client.open_sftp() as sftp:
        state = {"cursor": None}

        def look():
            data = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=state["cursor"], resources={"drop": defs.resources["drop"]}))
            state["cursor"] = data.cursor
            return data

        assert look().skip_message.startswith("The last snapshot already holds this version of sales.csv")
        pieces = [MORE_ROWS[:20], MORE_ROWS[20:40], MORE_ROWS[40:]]
        seen = []
        with sftp.open(f"{folder}/sales.csv", "wb") as upload_in_progress:
            for piece in pieces:  # a look after each piece: a new version every time, never a run
                upload_in_progress.write(piece)
                upload_in_progress.flush()
                data = look()
                assert data.run_requests == []
                seen.append(json.loads(data.cursor)["changed"])
                assert data.skip_message == waiting(seen[-1], path="sales.csv", interval=5)
        assert [int(version.split("@")[0]) for version in seen] == [20, 40, len(MORE_ROWS)]  # sizes as it grew

        data = look()  # the same version as at the last look: the upload is done
        assert [r.run_key for r in data.run_requests] == [f"sales:{seen[-1]}"]
        assert data.run_requests[0].tags["dataplat/source_version"] == seen[-1]
        assert look().skip_message == f"sales.csv is unchanged ({seen[-1]})."


def test_watch_flags_set_the_sensors_default_status_and_interval(cli_workspace, s3_server):
    ws = cli_workspace
    s3_server.reset()
    upload(s3_server, CSV)
    # (Without --watch: STOPPED and 60 s, see the test above.)
    make_s3_snapshot(ws, s3_server, "watched", "--watch", "--watch-interval", "15")
    # A datasource without a snapshot dataset has no job and no sensor, even with --watch.
    ws.run("datasource", "create", "unused", "--connector", "lake", "--path", KEY, "--watch", env=s3_env(s3_server))

    defs = project_definitions(ws.project_dir)
    assert [s.name for s in defs.sensors] == ["watch_watched", "dropzone_shop"]  # (the drop zone's is always there)
    watched = defs.resolve_sensor_def("watch_watched")
    assert (watched.default_status, watched.minimum_interval_seconds, watched.job_name) == (
        DefaultSensorStatus.RUNNING, 15, "snapshot_watched")
    assert watched.description.endswith("looking every 15 s.")
    job_names = {job.name for job in defs.jobs}
    assert "snapshot_watched" in job_names and "snapshot_unused" not in job_names
    # No --schedule: no schedules.
    assert list(defs.schedules or []) == []


# -- the schedule of a table datasource ---------------------------------------------------


def test_a_scheduled_table_datasource_gets_a_schedule_and_a_snapshot_job(cli_workspace):
    ws = cli_workspace
    db_path = ws.project_dir / "shop.db"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE orders (id INTEGER, total REAL)")
        db.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 2.5) for i in range(40)])
    db.close()
    ws.run("connector", "create", "sql", "shop_db", "--dialect", "sqlite", "--database", "shop.db")
    ws.run("datasource", "create", "orders", "--connector", "shop_db", "--table", "orders", "--schedule", "0 6 * * *")
    ws.run("dataset", "import", "--datasource", "orders", "--name", "orders_snap", "--no-profile")

    defs = project_definitions(ws.project_dir)
    assert [s.name for s in defs.sensors or []] == ["dropzone_shop"]  # a table has no file to watch
    schedule = defs.resolve_schedule_def("snapshot_orders_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "snapshot_orders"

    at = datetime(2025, 3, 14, 6, 0, tzinfo=timezone.utc)
    data = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=at))
    assert data.skip_message is None
    assert len(data.run_requests) == 1
    request = data.run_requests[0]
    # No job_name: the run is for the schedule's own job, snapshot_orders (checked above).
    assert (request.job_name, request.run_key, request.run_config) == (None, None, {})
    assert request.tags == {"dagster/schedule_name": "snapshot_orders_schedule"}

    with sqlite3.connect(db_path) as db:
        db.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 2.5) for i in range(40, 55)])
    db.close()
    job = defs.resolve_job_def("snapshot_orders")
    # The connector as a run tag: a deployment's per-connector queue limit holds for scheduled runs.
    assert job.tags == {"dataplat/project": "shop", TAG_SNAPSHOT_OF: "orders", "dataplat/connector": "shop_db"}
    with ws.instance() as instance:
        assert materialization_count(instance, "shop", "orders_snap") == 1
        assert latest_materialization(instance, "shop", "orders_snap").metadata["dagster/row_count"].value == 40
        result = job.execute_in_process(instance=instance)
        assert result.success
        assert result.dagster_run.job_name == "snapshot_orders"
        assert result.dagster_run.tags[TAG_SNAPSHOT_OF] == "orders"
        assert materialization_count(instance, "shop", "orders_snap") == 2
        latest = latest_materialization(instance, "shop", "orders_snap")
        assert latest.metadata["dagster/row_count"].value == 55
        assert latest.metadata["dataplat/datasource"].value == "orders"
    listed = ws.datasets()["orders_snap"]
    assert (listed["rows"], listed["datasource"]) == (55, "orders")


# -- the real daemon ------------------------------------------------------------------------


def sensor_ticks(instance, name: str) -> list:
    """The ticks of sensor ``name`` recorded in the instance, newest first."""
    ticks = []
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == name:
            ticks += instance.get_ticks(state.instigator_origin_id, state.selector_id)
    return sorted(ticks, key=lambda t: t.timestamp, reverse=True)


def snapshot_runs(instance, datasource: str) -> list:
    return instance.get_runs(filters=RunsFilter(tags={TAG_SNAPSHOT_OF: datasource}))


def wait_for(what: str, check, timeout: float, log: Path, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    tail = log.read_text(errors="replace")[-6000:] if log.exists() else ""
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}. Daemon log tail:\n{tail}")


def test_the_daemon_snapshots_a_changed_file_once(cli_workspace, s3_server, tmp_path):
    ws = cli_workspace
    s3_server.reset()
    first = upload(s3_server, CSV)
    env = make_s3_snapshot(ws, s3_server, "sales", "--watch", "--watch-interval", "5")
    daemon_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))}
    daemon_env |= env | {"DAGSTER_HOME": str(ws.root)}
    log = tmp_path / "daemon.log"
    with ws.instance() as instance:
        assert snapshot_runs(instance, "sales") == []  # the CLI's import is not a snapshot_sales run
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            [DAEMON, "run", "-w", "workspace.yaml"], cwd=ws.root, env=daemon_env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        with ws.instance() as instance:
            seen = wait_for("the sensor's first tick", lambda: [
                t for t in sensor_ticks(instance, "watch_sales") if t.status == TickStatus.SKIPPED], 90, log)
            assert f"The last snapshot already holds this version of {KEY} ({first})." in {
                t.skip_reason for t in seen}
            assert snapshot_runs(instance, "sales") == []

            second = upload(s3_server, MORE_ROWS)
            changed_at = time.time()
            runs = wait_for("a successful snapshot_sales run", lambda: [
                r for r in snapshot_runs(instance, "sales") if r.status == DagsterRunStatus.SUCCESS], 120, log)
            took = time.time() - changed_at
            runs = snapshot_runs(instance, "sales")
            assert len(runs) == 1, [(r.run_id, r.status, r.tags) for r in runs]
            run = runs[0]
            assert run.job_name == "snapshot_sales"
            assert run.tags["dagster/run_key"] == f"sales:{second}"
            assert run.tags["dagster/sensor_name"] == "watch_sales"
            assert run.tags["dataplat/source_version"] == second
            assert run.tags["dataplat/project"] == "shop"
            latest = latest_materialization(instance, "shop", "sales_snap")
            assert latest.metadata["dagster/row_count"].value == 5
            assert latest.metadata["dataplat/source_version"].value == second
            assert materialization_count(instance, "shop", "sales_snap") == 2

            # Two more intervals on the unchanged file: skipped ticks, no second run.
            ticks_before = len(sensor_ticks(instance, "watch_sales"))
            time.sleep(12)
            ticks = sensor_ticks(instance, "watch_sales")
            assert len(ticks) >= ticks_before + 1, "the sensor stopped ticking"
            done = [t for t in ticks if t.status != TickStatus.STARTED]  # not the one in progress, if any
            assert done[0].status == TickStatus.SKIPPED
            assert done[0].skip_reason == f"{KEY} is unchanged ({second})."
            assert [t.status for t in ticks].count(TickStatus.SUCCESS) == 1  # the one that started the run
            assert len(snapshot_runs(instance, "sales")) == 1
            print(f"snapshot run succeeded {took:.1f} s after the upload")
        assert ws.datasets()["sales_snap"]["rows"] == 5
    finally:
        stop(daemon)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the daemon's process group (its code server and run workers), then SIGKILL."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)
