"""The Dagster UI and the CLI on one workspace: a real `dataplat dev` (dagster dev: webserver,
daemon, code server) on a free loopback port, and the real `dataplat` CLI next to it.

- `dataplat dev -- ARGS` passes ARGS to dagster dev and records the address it serves on.
- Catalog changes made with the CLI show in the running webserver without a restart: the
  CLI asks it to reload the project's code location.
- A run the CLI started is tied to the loaded code location the way the UI checks it (the
  run's origin and its job snapshot), so the UI re-executes it without the "may be different"
  warning, and the re-execution (queued, launched by dagster dev's daemon) succeeds.

One webserver serves the whole module (its own workspace, made with `dataplat init` and
`project create`). The re-execution test compares the run's snapshot with the loaded job's,
which every later catalog change alters, so it runs right after the first import, before the
tests that change the catalog again (pytest keeps the file's order).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataplat_dagster_tests.conftest import DATAPLAT, CliWorkspace
from dataplat_dagster_tests.servers.ports import HOST, free_port

PROJECT = "shop"
REPOSITORY = "__repository__"  # the repository a Definitions object makes
DATASETS_JOB = "refresh_datasets"

START_TIMEOUT = 60.0  # until /server_info answers
LOAD_TIMEOUT = 60.0  # until the code location is loaded
# Until a catalog change shows in GraphQL. The CLI's reload returns once the location has
# loaded again, so the change is there when the CLI returns; this is slack for a busy machine.
SHOW_TIMEOUT = 15.0
RUN_TIMEOUT = 120.0  # until a re-execution finishes

SMALL_CSV = "id,name,amount\n1,a,2.5\n2,b,3.0\n3,c,4.25\n"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


# --- the webserver ----------------------------------------------------------------------

@dataclass
class DevServer:
    workspace: CliWorkspace
    port: int
    popen: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return f"--- {self.log_path} ---\n" + "\n".join(text.splitlines()[-lines:])

    def get(self, path: str, timeout: float = 5) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as response:
            return json.loads(response.read())

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        """POST the query; its `data`, or AssertionError with the errors and the log's tail."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {answer['errors']}\n{self.log_tail()}")
        return answer["data"]

    def stop(self) -> None:
        """SIGTERM to dagster dev's process group (webserver, daemon, code server, run
        workers), then SIGKILL to whatever of it is left."""
        group = self.popen.pid  # a session leader: its pid is its group's id
        _signal_group(group, signal.SIGTERM)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(group, signal.SIGKILL)
        self.popen.wait(timeout=10)


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def _default_signals() -> None:
    # pytest (or an xdist worker) may ignore these; dagster dev must stop on SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def wait_until(what: str, check: Callable[[], object], timeout: float, server: DevServer | None = None,
               every: float = 0.5):
    """Call `check` until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        if server is not None and not server.alive():
            raise AssertionError(f"dagster dev exited ({server.popen.returncode}) while waiting for {what}\n{server.log_tail()}")
        try:
            found = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            found, last_error = None, error
        if found:
            return found
        if time.monotonic() > deadline:
            extra = f" (last error: {last_error})" if last_error else ""
            tail = f"\n{server.log_tail()}" if server is not None else ""
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}{extra}{tail}")
        time.sleep(every)


def make_workspace(root: Path) -> CliWorkspace:
    workspace = CliWorkspace(root)
    subprocess.run([DATAPLAT, "init", str(root)], check=True, capture_output=True, stdin=subprocess.DEVNULL)
    workspace.run("project", "create", PROJECT)
    return workspace


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Iterator[DevServer]:
    """`dataplat dev -- -p PORT -h 127.0.0.1` on its own workspace, with the location loaded."""
    base = tmp_path_factory.mktemp("ui_sync")
    workspace = make_workspace(base / "ws")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))}
    env["DAGSTER_HOME"] = str(workspace.root)
    log_path = base / "dev.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            [DATAPLAT, "dev", "--", "-p", str(port), "-h", HOST], cwd=workspace.root, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_default_signals,
        )
    server = DevServer(workspace, port, popen, log_path)
    try:
        wait_until("GET /server_info", lambda: server.get("/server_info"), START_TIMEOUT, server)
        wait_until(f"code location {PROJECT!r} to load", lambda: location(server) is not None, LOAD_TIMEOUT, server)
        yield server
    finally:
        server.stop()


# --- what GraphQL says --------------------------------------------------------------------

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
          ... on PythonError { message }
          ... on RepositoryLocation {
            name
            repositories {
              name
              pipelines { name pipelineSnapshotId }
              allTopLevelResourceDetails { name }
            }
          }
        }
      }
    }
  }
}
"""

ASSET_QUERY = """
query Asset($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset { definition { id } }
  }
  assetNodes(assetKeys: [{path: $path}]) { assetKey { path } }
}
"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId
      status
      pipelineName
      repositoryOrigin { repositoryLocationName repositoryName }
      pipelineSnapshotId
      parentPipelineSnapshotId
      parentRunId
      rootRunId
      assetSelection { path }
    }
  }
}
"""

PIPELINE_QUERY = """
query Job($location: String!, $repository: String!, $job: String!) {
  pipelineOrError(params: {repositoryLocationName: $location, repositoryName: $repository, pipelineName: $job}) {
    __typename
    ... on Pipeline { pipelineSnapshotId }
    ... on PythonError { message }
  }
}
"""

REEXECUTE_MUTATION = """
mutation Reexecute($parentRunId: String!) {
  launchRunReexecution(reexecutionParams: {parentRunId: $parentRunId, strategy: ALL_STEPS}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""


def location(server: DevServer) -> dict | None:
    """The loaded RepositoryLocation of the project, or None while it loads; a load error fails."""
    answer = server.graphql(WORKSPACE_QUERY)["workspaceOrError"]
    assert answer["__typename"] == "Workspace", answer
    for entry in answer["locationEntries"]:
        if entry["name"] != PROJECT or entry["loadStatus"] != "LOADED":
            continue
        loaded = entry["locationOrLoadError"]
        assert loaded and loaded["__typename"] == "RepositoryLocation", f"{PROJECT} failed to load: {loaded}\n{server.log_tail()}"
        return loaded
    return None


def repository(server: DevServer) -> dict:
    repositories = {repo["name"]: repo for repo in location(server)["repositories"]}
    assert REPOSITORY in repositories, repositories
    return repositories[REPOSITORY]


def resource_names(server: DevServer) -> set[str]:
    return {resource["name"] for resource in repository(server)["allTopLevelResourceDetails"]}


def asset_defined(server: DevServer, path: list[str]) -> bool:
    """Whether the loaded code location defines the asset: assetOrError's definition is set
    (an asset known only from past events has none), and assetNodes lists it."""
    data = server.graphql(ASSET_QUERY, {"path": path})
    answer = data["assetOrError"]
    by_asset = answer["__typename"] == "Asset" and answer["definition"] is not None
    by_nodes = [node["assetKey"]["path"] for node in data["assetNodes"]] == [path]
    assert by_asset == by_nodes, data  # the two views of the same workspace agree
    return by_asset


def run_info(server: DevServer, run_id: str) -> dict:
    answer = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
    assert answer["__typename"] == "Run", answer
    return answer


def ui_match_type(run: dict, repo_options: list[dict]) -> str | None:
    """How dagster-webserver's UI pairs a run with a loaded job before it re-executes it
    (ui-core/src/workspace/useRepositoryForRun.ts, useRepositoryForRunWithParentSnapshot, and
    useJobAvailabilityErrorForRun.tsx): `origin-and-snapshot` re-executes with no warning;
    `origin-only` is the "may be different than the one used for the original run" warning.

    `repo_options` are the workspace's repositories, each
    {"location": ..., "name": ..., "pipelines": [{"name", "pipelineSnapshotId"}]}."""

    def contains(option: dict, snapshot_id: str | None = None) -> bool:
        return any(
            job["name"] == run["pipelineName"] and (not snapshot_id or snapshot_id == job["pipelineSnapshotId"])
            for job in option["pipelines"]
        )

    origin = run["repositoryOrigin"]
    origin_match = None
    if origin:
        origin_match = next((o for o in repo_options if o["name"] == origin["repositoryName"]
                             and o["location"] == origin["repositoryLocationName"]), None)
        if origin_match and not contains(origin_match):
            origin_match = None
    # A subset run (an asset selection) is found by the snapshot it was subsetted from.
    snapshot_id = run["parentPipelineSnapshotId"] or run["pipelineSnapshotId"]
    snapshot_matches = [o for o in repo_options if contains(o, snapshot_id)] if snapshot_id else []
    if origin_match:
        if any(o["name"] == origin_match["name"] and o["location"] == origin_match["location"] for o in snapshot_matches):
            return "origin-and-snapshot"
        return "origin-only"
    if snapshot_matches:
        return "snapshot-only"
    if any(contains(o) for o in repo_options):
        return "pipeline-name-only"
    return None


def repo_options(server: DevServer) -> list[dict]:
    answer = server.graphql(WORKSPACE_QUERY)["workspaceOrError"]
    return [
        {"location": entry["locationOrLoadError"]["name"], "name": repo["name"], "pipelines": repo["pipelines"]}
        for entry in answer["locationEntries"]
        if (entry["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
        for repo in entry["locationOrLoadError"]["repositories"]
    ]


def dataset_key(name: str) -> list[str]:
    return [PROJECT, "datasets", name]


def import_small(workspace: CliWorkspace, name: str, *flags: str):
    path = workspace.root / f"{name}.csv"
    path.write_text(SMALL_CSV)
    return workspace.run("dataset", "import", path.name, "--name", name, "--json", *flags)


def no_reload_warning(result) -> None:
    """The CLI warns on stderr when the webserver it found could not reload."""
    assert "webserver" not in result.stderr.lower() and "reload" not in result.stderr.lower(), result.stderr


@pytest.fixture(scope="module")
def tiny_new(dev: DevServer) -> dict:
    """`dataplat dataset import small.csv --name tiny_new` with the webserver up: the CLI's JSON."""
    result = import_small(dev.workspace, "tiny_new")
    no_reload_warning(result)
    imported = result.json()
    assert imported["status"] == "ready", imported
    assert imported["rows"] == 3, imported
    return imported


# --- 1. dataplat dev ----------------------------------------------------------------------

def test_dev_passes_its_arguments_to_dagster_dev_and_records_the_url(dev):
    from dataplat_dagster.webserver import dev_url

    info = dev.get("/server_info")
    assert info["dagster_webserver_version"], info
    record = json.loads((dev.workspace.root / ".dataplat" / "dev.json").read_text())
    # `dataplat dev` execs dagster dev: the recorded pid is the process we started.
    assert record == {"url": f"http://127.0.0.1:{dev.port}", "pid": dev.popen.pid}
    assert dev_url(dev.workspace.root) == f"http://127.0.0.1:{dev.port}"
    # It serves the workspace's location, with DAGSTER_HOME set to the workspace.
    assert [repo["name"] for repo in location(dev)["repositories"]] == [REPOSITORY]


@pytest.mark.parametrize(
    "args, url",
    [
        (("-p", "3001"), "http://127.0.0.1:3001"),
        (("--port", "3001"), "http://127.0.0.1:3001"),
        (("--port=3001",), "http://127.0.0.1:3001"),
        (("-h", "0.0.0.0", "-p", "3001"), "http://127.0.0.1:3001"),
        (("--host=localhost", "--port", "4000"), "http://localhost:4000"),
        (("--log-level", "debug"), "http://127.0.0.1:3000"),
        # dagster dev (click) also takes these forms: `dagster dev --help` lists the aliases.
        (("-p3001",), "http://127.0.0.1:3001"),
        (("--dagit-port", "3002"), "http://127.0.0.1:3002"),
        (("--dagit-host", "localhost", "--dagit-port=3003"), "http://localhost:3003"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else value,
)
def test_the_recorded_url_is_where_dagster_dev_serves(args, url):
    from dagster._cli.dev import dev_command

    from dataplat_dagster.cli.project import _served_url

    params = dev_command.make_context("dev", list(args)).params  # how dagster dev reads them
    served = f"http://{'127.0.0.1' if params['host'] in (None, '0.0.0.0') else params['host']}:{params['port'] or 3000}"
    assert served == url
    assert _served_url(args) == url


def test_the_ui_check_tells_a_changed_job_from_the_loaded_one():
    """The helper the re-execution test relies on, on made-up runs: only a run whose origin
    and (parent) snapshot both match escapes the UI's warning."""
    options = [{"location": PROJECT, "name": REPOSITORY, "pipelines": [{"name": DATASETS_JOB, "pipelineSnapshotId": "s1"}]}]
    origin = {"repositoryLocationName": PROJECT, "repositoryName": REPOSITORY}
    run = {"pipelineName": DATASETS_JOB, "repositoryOrigin": origin, "pipelineSnapshotId": "sub", "parentPipelineSnapshotId": "s1"}
    assert ui_match_type(run, options) == "origin-and-snapshot"
    assert ui_match_type({**run, "parentPipelineSnapshotId": None, "pipelineSnapshotId": "s1"}, options) == "origin-and-snapshot"
    assert ui_match_type({**run, "parentPipelineSnapshotId": "s0"}, options) == "origin-only"
    other = {"repositoryLocationName": "elsewhere", "repositoryName": REPOSITORY}
    assert ui_match_type({**run, "repositoryOrigin": other}, options) == "snapshot-only"
    assert ui_match_type({**run, "repositoryOrigin": None, "parentPipelineSnapshotId": "s0"}, options) == "pipeline-name-only"


# --- 2. catalog changes show without a restart --------------------------------------------

def test_an_imported_dataset_shows_without_a_restart(dev, tiny_new):
    assert tiny_new["asset_key"] == dataset_key("tiny_new")
    # The CLI reloaded the location before the run: the asset is there once the CLI returns.
    assert asset_defined(dev, dataset_key("tiny_new"))
    assert DATASETS_JOB in {job["name"] for job in repository(dev)["pipelines"]}


# --- 3. re-executing a CLI run from the UI --------------------------------------------------

def test_a_cli_run_reexecutes_from_the_ui_without_warning(dev, tiny_new):
    run = run_info(dev, tiny_new["run_id"])
    assert run["status"] == "SUCCESS", run
    assert run["pipelineName"] == DATASETS_JOB
    assert run["repositoryOrigin"] == {"repositoryLocationName": PROJECT, "repositoryName": REPOSITORY}
    assert run["assetSelection"] == [{"path": dataset_key("tiny_new")}]
    assert run["pipelineSnapshotId"], "the UI says the job could not be found"

    loaded = dev.graphql(PIPELINE_QUERY, {"location": PROJECT, "repository": REPOSITORY, "job": DATASETS_JOB})
    loaded = loaded["pipelineOrError"]
    assert loaded["__typename"] == "Pipeline", loaded
    # An asset subset: the UI looks for the snapshot it was subsetted from.
    assert run["parentPipelineSnapshotId"] == loaded["pipelineSnapshotId"], (run, loaded)
    assert ui_match_type(run, repo_options(dev)) == "origin-and-snapshot"

    launched = dev.graphql(REEXECUTE_MUTATION, {"parentRunId": run["runId"]})["launchRunReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    new_id = launched["run"]["runId"]
    # Queued by the instance's (default, queued) coordinator; dagster dev's daemon launches it.
    done = wait_until(f"re-execution {new_id} to finish",
                      lambda: (r := run_info(dev, new_id))["status"] in TERMINAL and r, RUN_TIMEOUT, dev)
    assert done["status"] == "SUCCESS", f"{done}\n{dev.log_tail()}"
    assert done["parentRunId"] == run["runId"] and done["rootRunId"] == run["runId"]
    assert done["repositoryOrigin"] == run["repositoryOrigin"]
    assert done["assetSelection"] == run["assetSelection"]

    after = dev.workspace.datasets()["tiny_new"]
    assert after["run_id"] == new_id
    assert after["status"] == "ready", after
    for field in ("rows", "columns", "asset_key", "origin", "created_at"):
        assert after[field] == tiny_new[field], field
    download = dev.workspace.root / "tiny_new_out.csv"
    dev.workspace.run("dataset", "download", "tiny_new", "--format", "csv", "--output", str(download))
    with open(download, newline="") as rows:
        assert [row[:2] for row in csv.reader(rows)] == [["id", "name"], ["1", "a"], ["2", "b"], ["3", "c"]]


# --- 2, continued: other catalog changes ----------------------------------------------------

def test_a_renamed_then_deleted_dataset_follows_without_a_restart(dev):
    """Both halves are checked (one import for both, to keep the module short); the failure
    names each one that did not show."""
    import_small(dev.workspace, "tiny_old", "--no-profile")
    assert asset_defined(dev, dataset_key("tiny_old"))
    missed = []

    renamed = dev.workspace.run("dataset", "rename", "tiny_old", "tiny_renamed")
    no_reload_warning(renamed)
    try:
        wait_until("the renamed dataset's asset to be defined",
                   lambda: asset_defined(dev, dataset_key("tiny_renamed")), SHOW_TIMEOUT, dev)
        assert not asset_defined(dev, dataset_key("tiny_old")), "the old name's asset is still defined"
    except AssertionError as error:
        missed.append(f"after `dataplat dataset rename tiny_old tiny_renamed`: {str(error).splitlines()[0]}")

    deleted = dev.workspace.run("dataset", "delete", "tiny_renamed", "--yes")
    no_reload_warning(deleted)
    try:
        # Under either name: the one the UI showed last.
        wait_until("the deleted dataset's asset to leave the code location", lambda: not any(
            asset_defined(dev, dataset_key(name)) for name in ("tiny_old", "tiny_renamed")), SHOW_TIMEOUT, dev)
    except AssertionError as error:
        missed.append(f"after `dataplat dataset delete tiny_renamed --yes`: {str(error).splitlines()[0]}")
    assert not missed, "\n".join(missed) + f"\n{dev.log_tail(20)}"


def test_a_created_and_deleted_connector_shows_without_a_restart(dev):
    assert "db" not in resource_names(dev)
    created = dev.workspace.run("connector", "create", "sql", "db", "--dialect", "sqlite", "--database", "shop.db")
    no_reload_warning(created)
    wait_until("resource 'db' in the code location", lambda: "db" in resource_names(dev), SHOW_TIMEOUT, dev)

    deleted = dev.workspace.run("connector", "delete", "db", "--yes")
    no_reload_warning(deleted)
    wait_until("resource 'db' to leave the code location", lambda: "db" not in resource_names(dev), SHOW_TIMEOUT, dev)
