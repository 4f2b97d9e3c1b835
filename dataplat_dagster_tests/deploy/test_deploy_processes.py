"""The deployed shape of deploy/ comes up: the compose file's code server, webserver and daemon,
started on loopback with their compose commands and environments (conftest.py), on a real
PostgreSQL and a real S3 server (moto), each in its own folder sharing only those two."""

import time

import yaml

from dataplat_dagster_tests.deploy.compose import DAGSTER_SERVICES, INSTANCE_FILE, command_for, compose_services

WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

DAEMON_QUERY = """
{
  instance {
    daemonHealth {
      allDaemonStatuses { daemonType healthy required lastHeartbeatErrors { message } }
    }
  }
}
"""


def test_each_dagster_service_runs_its_compose_command(deployment):
    compose = compose_services()
    for name in DAGSTER_SERVICES:
        service = deployment.services[name]
        assert service.alive(), f"{name} exited\n{deployment.logs()}"
        written = compose[name].command
        # The program from this environment; only the listening address and port differ.
        assert service.argv[0].rsplit("/", 1)[-1] == written[0]
        assert len(service.argv) == len(written)
        changed = {written[i - 1] for i in range(1, len(written)) if service.argv[i] != written[i]}
        assert changed <= {"-h", "-p"}, (name, service.argv, written)
    assert deployment.services["daemon"].argv == command_for("daemon")
    assert deployment.services["webserver"].argv == command_for(
        "webserver", host="127.0.0.1", port=deployment.webserver_url.rsplit(":", 1)[1])
    assert deployment.services["code_server"].argv == command_for(
        "code_server", host="127.0.0.1", port=deployment.code_server_port)


def test_webserver_answers_server_info(deployment):
    import json
    import urllib.request

    with urllib.request.urlopen(f"{deployment.webserver_url}/server_info", timeout=10) as response:
        info = json.loads(response.read())
    assert response.status == 200
    assert "dagster_version" in info


def _location_entries(deployment, timeout: float = 30.0) -> list[dict]:
    """The workspace's entries, once none is still loading."""
    deadline = time.monotonic() + timeout
    while True:
        workspace = deployment.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", workspace
        entries = workspace["locationEntries"]
        if all(entry["loadStatus"] == "LOADED" for entry in entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.5)


def test_demo_code_location_loads_from_the_code_server(deployment):
    entries = {entry["name"]: entry for entry in _location_entries(deployment)}
    assert set(entries) == {"demo"}, entries
    demo = entries["demo"]
    error = demo["locationOrLoadError"]
    assert demo["loadStatus"] == "LOADED", demo
    assert error["__typename"] == "RepositoryLocation", (
        f"the demo code location failed to load in the code server:\n{error.get('message')}\n"
        f"{''.join(error.get('stack') or [])}"
    )


def test_daemon_heartbeats_with_a_healthy_run_queue(deployment):
    deadline = time.monotonic() + 60
    while True:
        statuses = {
            status["daemonType"]: status
            for status in deployment.graphql(DAEMON_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
        }
        if statuses.get("QUEUED_RUN_COORDINATOR", {}).get("healthy"):
            break
        assert time.monotonic() < deadline, f"no healthy QUEUED_RUN_COORDINATOR heartbeat after 60 s: {statuses}"
        time.sleep(1)
    # The same heartbeats, read from PostgreSQL by a client with only dagster.yaml and the env.
    with deployment.instance() as instance:
        heartbeats = instance.get_daemon_heartbeats()
    assert "QUEUED_RUN_COORDINATOR" in heartbeats
    assert {"SCHEDULER", "SENSOR", "MONITORING"} <= set(heartbeats), sorted(heartbeats)


def test_client_instance_is_the_deployed_one(deployment):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.storage.runs import SqlRunStorage
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_postgres import PostgresRunStorage

    with deployment.instance() as instance:
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, QueuedRunCoordinator)
        config = yaml.safe_load(INSTANCE_FILE.read_text())["run_coordinator"]["config"]
        assert coordinator.get_run_queue_config().max_concurrent_runs == config["max_concurrent_runs"]
        limits = coordinator.get_run_queue_config().tag_concurrency_limits
        assert {"key": "dataplat/connector", "value": {"applyLimitPerUniqueValue": True}, "limit": 2} in limits

        run_storage = instance.run_storage
        assert isinstance(run_storage, PostgresRunStorage) and isinstance(run_storage, SqlRunStorage)
        assert run_storage._engine.url.drivername == "postgresql+psycopg2"
        assert run_storage._engine.url.database == deployment.database

        # Compute logs go to the deployment's bucket, through AWS_ENDPOINT_URL alone.
        logs = instance.compute_log_manager
        assert isinstance(logs, S3ComputeLogManager)
        assert logs._s3_bucket == deployment.bucket
        assert logs._s3_session.meta.endpoint_url == deployment.s3_endpoint_url
        logs._s3_session.head_bucket(Bucket=deployment.bucket)
