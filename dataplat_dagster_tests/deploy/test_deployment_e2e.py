"""The `dataplat` CLI against the deployed shape, end to end.

A client in a folder of its own (a copy of the workspace, the deployment's dagster.yaml and
client environment: client.py) imports a file, takes a datasource snapshot and exports a
dataset; the demo's `main` job is launched through the webserver's GraphQL API. Every run
goes through the webserver, the queue (QueuedRunCoordinator) and the daemon, executes in a
process the code server starts, and leaves its results in PostgreSQL and the bucket only.

The tests build on one another in file order (one deployment for the module).
"""

import json
import re
import sqlite3
from contextlib import closing
from types import SimpleNamespace

import pytest
from dagster import AssetKey, DagsterRunStatus
from dagster._core.events import DagsterEventType
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

from dataplat_dagster_tests.deploy.client import PROJECT, DeploymentClient
from dataplat_dagster_tests.deploy.compose import DAGSTER_SERVICES, command_for, compose_services

ROWS = 120
PIPELINE_DATASETS = ("customers", "sales", "orders_raw", "orders_valid", "orders_enriched", "orders_scored")

MATERIALIZATIONS = """
query($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset { assetMaterializations(limit: 10) { runId } }
  }
}
"""


@pytest.fixture(scope="module")
def client(deployment, tmp_path_factory) -> DeploymentClient:
    return DeploymentClient(deployment, tmp_path_factory.mktemp("client") / "workspace")


@pytest.fixture(scope="module")
def imported(client) -> dict[str, dict]:
    """Two CLI runs at once, as two users would: `dataplat dataset import f.csv --name people`
    and `dataplat dataset import --datasource shop_orders --name orders_snap`; their --json
    answers by dataset name."""
    csv = client.root / "f.csv"
    csv.write_text("id,name,score\n" + "".join(f"{i},person {i},{i * 0.5}\n" for i in range(ROWS)))
    commands = {
        "people": ("dataset", "import", "f.csv", "--name", "people", "--json"),
        "orders_snap": ("dataset", "import", "--datasource", "shop_orders", "--name", "orders_snap", "--json"),
    }
    started = {name: client.start(*args) for name, args in commands.items()}
    answers = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, f"dataplat {' '.join(commands[name])}:\n{stdout}\n{stderr}\n{client.deployment.logs()}"
        answers[name] = json.loads(stdout)
    return answers


@pytest.fixture(scope="module")
def people(imported) -> dict:
    return imported["people"]


def _tables(db) -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _count(db, table: str) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def test_an_import_runs_through_the_queue_and_the_daemon(deployment, client, people):
    run_id = people["run_id"]
    with deployment.instance() as instance:
        run = instance.get_run_by_id(run_id)
        assert run.status == DagsterRunStatus.SUCCESS
        # Created by the webserver from the code server's location, not from a file of the client.
        origin = run.remote_job_origin.repository_origin.code_location_origin
        assert isinstance(origin, GrpcServerCodeLocationOrigin), origin
        assert (origin.location_name, origin.port) == (PROJECT, deployment.code_server_port)
        events = [record.dagster_event.event_type for record in instance.all_logs(run_id) if record.dagster_event]
    # Queued by the webserver, then launched by the daemon (which reports STARTING and hands the
    # run to the launcher), then executed.
    order = [DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_STARTING, DagsterEventType.RUN_START,
             DagsterEventType.RUN_SUCCESS]
    assert all(kind in events for kind in order), events
    assert [events.index(kind) for kind in order] == sorted(events.index(kind) for kind in order), events
    assert re.search(r"QueuedRunCoordinatorDaemon - .*Launched \d+ runs", deployment.services["daemon"].log_path.read_text())

    assert people["status"] == "ready" and people["rows"] == ROWS, people
    listed = client.datasets()["people"]
    assert (listed["status"], listed["rows"], listed["columns"], listed["run_id"]) == ("ready", ROWS, 3, run_id)


def test_an_import_writes_to_the_bucket_only(client, people):
    keys = client.bucket_keys()
    assert {"datasets/people/current.json", "_registry/datasets/people.json"} <= keys, keys
    assert _has_version_file(keys, "people", "data.parquet") and _has_version_file(keys, "people", "profile.json"), keys
    # The raw upload is kept beside the data, on the bucket too.
    assert any(key.startswith("datasets/people/raw/") and key.endswith("/f.csv") for key in keys), keys
    for project_dir in (client.project_dir, client.code_server_project_dir):
        local = project_dir / "storage"
        assert not local.exists() or not any(local.rglob("*")), sorted(local.rglob("*"))


def test_a_datasource_snapshot_reads_the_code_servers_database(deployment, client, imported):
    snapshot = imported["orders_snap"]
    assert (snapshot["status"], snapshot["origin"], snapshot["datasource"]) == ("ready", "datasource", "shop_orders")
    assert snapshot["rows"] == _count(client.shop_db, "orders")
    with deployment.instance() as instance:
        run = instance.get_run_by_id(snapshot["run_id"])
    assert run.status == DagsterRunStatus.SUCCESS
    # The run-level tag that the queue's per-connector limit counts.
    assert run.tags.get("dataplat/connector") == "shop_db"
    assert _has_version_file(client.bucket_keys("datasets/orders_snap/"), "orders_snap", "data.parquet")


def test_an_export_writes_a_table_into_the_code_servers_database(client):
    before = _tables(client.shop_db)
    done = client.run("dataset", "export", "people", "--exporter", "scored_orders_out", "--json").json()
    assert (done["rows"], done["mode"]) == (ROWS, "timestamped"), done
    table = done["identifier"]
    assert table.startswith("scored_orders_") and table not in before
    assert _count(client.shop_db, table) == ROWS
    # The export edge is in the registry on the bucket, so every process sees it.
    assert "_registry/exports/scored_orders_out/people" in client.bucket_keys("_registry/exports/")
    exporters = {item["name"]: item for item in client.run("exporter", "list", "--json").json()}
    assert "people" in exporters["scored_orders_out"]["datasets"], exporters


def test_a_run_of_a_dataset_the_location_has_needs_no_reload(deployment, client, people):
    """A new version of a known dataset changes no definitions: the run is launched from the
    location as the webserver has it, without restarting the code server's process."""
    log = deployment.services["code_server"].log_path
    starts = log.read_text().count("Starting Dagster code server")
    again = client.run("dataset", "import", "f.csv", "--name", "people", "--replace", "--json").json()
    assert (again["status"], again["rows"]) == ("ready", ROWS) and again["run_id"] != people["run_id"]
    assert log.read_text().count("Starting Dagster code server") == starts


def test_the_main_job_launched_through_graphql(deployment, client):
    before = _tables(client.shop_db)
    run_id = client.launch_job("main")
    assert client.wait_for_run(run_id, timeout=180) == "SUCCESS", deployment.logs()
    new = sorted(table for table in _tables(client.shop_db) - before if table.startswith("scored_orders_"))
    assert len(new) == 1, new
    datasets = client.datasets()
    for name in PIPELINE_DATASETS:
        assert datasets[name]["status"] == "ready", datasets[name]
        assert datasets[name]["run_id"] == run_id, datasets[name]
    assert datasets["orders_scored"]["origin"] == "pipeline_output"
    assert _count(client.shop_db, new[0]) == datasets["orders_scored"]["rows"]
    keys = client.bucket_keys("datasets/")
    assert all(_has_version_file(keys, name, "data.parquet") for name in PIPELINE_DATASETS), keys


def test_results_through_graphql_postgresql_and_the_bucket(deployment, client, people):
    key = {"path": list(AssetKey([PROJECT, "datasets", "people"]).path)}
    asset = deployment.graphql(MATERIALIZATIONS, {"key": key})["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    assert people["run_id"] in {m["runId"] for m in asset["assetMaterializations"]}

    runs = client.runs_table()
    assert runs and all(row["status"] == "SUCCESS" for row in runs), runs
    by_job = {}
    for row in runs:
        by_job.setdefault(row["pipeline_name"], []).append(row)
    assert {"refresh_datasets", "export_dataset", "main"} <= set(by_job), sorted(by_job)
    imports = {row["tags"].get("dataplat/dataset") for row in by_job["refresh_datasets"]}
    assert {"people", "orders_snap"} <= imports
    assert people["run_id"] in {row["run_id"] for row in by_job["refresh_datasets"]}

    # Each finished run's record has its start and end (set by the run's own process).
    assert all(row["start_time"] and row["end_time"] and row["end_time"] >= row["start_time"] for row in runs), runs
    folder = client.project_prefix() + "datasets/people/"
    current = json.loads(client.s3().get_object(Bucket=deployment.bucket, Key=folder + "current.json")["Body"].read())["current"]
    profile = client.s3().get_object(Bucket=deployment.bucket, Key=f"{folder}versions/{current}/profile.json")
    assert profile["ContentLength"] > 0


def _has_version_file(keys, dataset: str, file: str) -> bool:
    """Whether a version of ``dataset`` in the bucket holds ``file`` (``datasets/<name>/versions/<id>/<file>``)."""
    return any(re.fullmatch(rf"datasets/{dataset}/versions/[^/]+/{re.escape(file)}", key) for key in keys)


def test_every_dagster_service_of_the_compose_file_was_run(deployment):
    """Each compose service that runs a Dagster command is one of those this suite started,
    with that command; the other services are the stock images the servers replace."""
    compose = compose_services()
    dagster_services = {name for name, spec in compose.items() if spec.command and spec.command[0].startswith("dagster")}
    assert dagster_services == set(DAGSTER_SERVICES) == set(deployment.services), (dagster_services, sorted(deployment.services))
    port = {"webserver": deployment.webserver_url.rsplit(":", 1)[1], "code_server": deployment.code_server_port}
    for name in dagster_services:
        service = deployment.services[name]
        assert service.alive(), f"{name} exited\n{deployment.logs()}"
        expected = command_for(name, host="127.0.0.1", port=port[name]) if name in port else command_for(name)
        assert service.argv == expected, (name, service.argv, expected)
    assert set(compose) - dagster_services == {"postgres", "minio", "create_bucket"}


def test_a_run_the_location_cannot_make_is_refused_with_the_webservers_reason(deployment):
    """launchRun's error answers (here InvalidSubsetError: an asset the location does not
    define) reach the user as the webserver's message, not as a KeyError of the client."""
    from dataplat_dagster import webserver
    from dataplat_dagster.errors import DataplatError
    from dataplat_dagster.runs import RunRequest

    request = RunRequest(SimpleNamespace(name=PROJECT), "refresh_datasets", [AssetKey([PROJECT, "datasets", "nowhere"])], {}, {})
    with pytest.raises(DataplatError, match=r"refused the run of 'refresh_datasets' \(InvalidSubsetError\): .*demo/datasets/nowhere"):
        webserver.launch_run(deployment.webserver_url, request)


def test_a_check_added_by_the_client_runs_in_the_deployment(deployment, client, people):
    """`check add` writes the check to the bucket's registry (no file of the code server's);
    `check run` launches the checks alone through GraphQL, as a run of the code server's
    location that the daemon starts; the result is in PostgreSQL, with its statistics."""
    client.run("check", "add", "people", "expect_column_values_to_be_between", "--column", "score", "--arg", "min_value=0",
               "--severity", "error")
    assert "_registry/checks/people/score_be_between.json" in client.bucket_keys()
    ran = client.run("check", "run", "people", "--json").json()
    assert ran["passed"] is True
    (result,) = ran["results"]
    assert (result["name"], result["metadata"]["element_count"], result["metadata"]["unexpected_count"]) == (
        "score_be_between", ROWS, 0)
    with deployment.instance() as instance:
        run = instance.get_run_by_id(ran["run_id"])
        assert run.status == DagsterRunStatus.SUCCESS and run.job_name == "quality_checks"
        assert [key.name for key in run.asset_check_selection] == ["score_be_between"]
        origin = run.remote_job_origin.repository_origin.code_location_origin
        assert isinstance(origin, GrpcServerCodeLocationOrigin), origin
    assert client.datasets()["people"]["checks"]["passed"] == 1
