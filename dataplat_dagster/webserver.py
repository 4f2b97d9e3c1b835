"""The Dagster webserver, seen from the CLI: launching runs on a deployment, and asking a
running webserver to reload a code location after the catalog changed.

Where the webserver is: ``--dagster-url`` (which sets ``DATAPLAT_DAGSTER_URL``) or
``DATAPLAT_DAGSTER_URL`` for a deployment; otherwise the address that a running
``dataplat dev`` recorded in the workspace (used for reloads only: in the embedded
shape, runs are not sent to the webserver).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from dataplat_dagster.errors import DataplatError

URL_ENV = "DATAPLAT_DAGSTER_URL"
DEV_RECORD = Path(".dataplat") / "dev.json"
# A reload waits for the code location to load again; launching waits for the run to be created.
RELOAD_TIMEOUT_S = 120


def deployment_url() -> str | None:
    return os.environ.get(URL_ENV) or None


def dev_url(workspace_root: Path) -> str | None:
    """The address a running ``dataplat dev`` of this workspace serves on, if any."""
    record = workspace_root / DEV_RECORD
    try:
        data = json.loads(record.read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return data.get("url")


def record_dev(workspace_root: Path, url: str) -> Path:
    record = workspace_root / DEV_RECORD
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    return record


def client(url: str):
    from dagster_graphql import DagsterGraphQLClient

    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        return DagsterGraphQLClient(
            parts.hostname or "127.0.0.1", port_number=parts.port, use_https=parts.scheme == "https",
            path_prefix=parts.path.rstrip("/"), timeout=RELOAD_TIMEOUT_S,
        )
    except Exception as error:  # the client fetches the schema when it is built
        raise DataplatError(
            f"Cannot reach the Dagster webserver at {url} ({_first_line(error)}). Check {URL_ENV} or "
            "--dagster-url, and that dagster-webserver is running there."
        ) from None


# dagster_graphql's submit_job_execution asks for the message of only some of the answers
# launchRun can give (not InvalidSubsetError: a dataset the location does not define), and
# fails on the others with a KeyError; this asks for every error's message.
LAUNCH_RUN_MUTATION = """
mutation DataplatLaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on Error { message }
  }
}
"""
# The repository of a code location built from one Definitions object.
REPOSITORY_NAME = "__repository__"

# Code locations this process has had the webserver reload (after a catalog change).
_RELOADED: set[tuple[str, str]] = set()
# What launchRun answers when the webserver's copy of the location is older than the catalog
# (a dataset registered, renamed or deleted since it was loaded): reload it and try again.
_STALE_LOCATION = {"InvalidSubsetError", "PipelineNotFoundError", "RunConfigValidationInvalid"}


def launch_run(url: str, request) -> str:
    """Launch the run through the webserver: created from the deployment's code location and
    submitted to its instance's run coordinator. Returns the run id.

    The location as the webserver has it is used as it is: every command that changes the
    catalog (a new dataset, a rename, a delete, a new export edge) has the webserver reload
    it before going on. If the webserver's copy lacks the job, an asset or a config field
    all the same (a change made by hand or by another tool), it is reloaded and the launch
    tried once more. Reloading the location of ``dagster code-server start`` starts a new
    code server process and loads the definitions again (seconds), one reload at a time, so
    a reload for every run would be the deployment's bottleneck."""
    graphql = client(url)
    location = request.project.name
    kind, answer = _launch(graphql, url, request)
    if kind in _STALE_LOCATION and (url, location) not in _RELOADED:
        reload_location(graphql, location, url)
        kind, answer = _launch(graphql, url, request)
    if kind == "LaunchRunSuccess":
        return answer["run"]["runId"]
    if kind == "RunConfigValidationInvalid":
        detail = "; ".join(error["message"] for error in answer["errors"])
    elif kind == "InvalidStepError":
        detail = f"no step {answer['invalidStepKey']!r}"
    elif kind == "InvalidOutputError":
        detail = f"step {answer['stepKey']!r} has no output {answer['invalidOutputName']!r}"
    else:
        detail = _first_line(DataplatError(answer.get("message") or kind))
    raise DataplatError(f"The deployment at {url} refused the run of {request.job_name!r} ({kind}): {detail}")


def _launch(graphql, url: str, request) -> tuple[str, dict]:
    from dagster_graphql import DagsterGraphQLClientError

    selector = {"repositoryLocationName": request.project.name, "repositoryName": REPOSITORY_NAME,
                "jobName": request.job_name}
    if request.asset_keys:
        selector["assetSelection"] = [{"path": list(key.path)} for key in request.asset_keys]
    if request.check_keys:
        selector["assetSelection"] = selector.get("assetSelection", [])
        selector["assetCheckSelection"] = [{"assetKey": {"path": list(key.asset_key.path)}, "name": key.name}
                                           for key in request.check_keys]
    params = {
        "selector": selector,
        "runConfigData": dict(request.run_config),
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in request.tags.items()]},
    }
    try:
        answer = graphql._execute(LAUNCH_RUN_MUTATION, {"executionParams": params})["launchRun"]
    except DagsterGraphQLClientError as error:
        raise DataplatError(f"The deployment at {url} refused the run of {request.job_name!r}: {_first_line(error)}") from None
    return answer["__typename"], answer


def reload_location(graphql, location: str, url: str) -> None:
    from dagster_graphql import DagsterGraphQLClientError, ReloadRepositoryLocationStatus

    try:
        info = graphql.reload_repository_location(location)
    except DagsterGraphQLClientError as error:
        raise DataplatError(f"The webserver at {url} could not reload code location {location!r}: {_first_line(error)}") from None
    if info.status != ReloadRepositoryLocationStatus.SUCCESS:
        raise DataplatError(
            f"Code location {location!r} failed to load on the webserver at {url}: {info.message}"
        )
    _RELOADED.add((url, location))


def notify_catalog_changed(workspace_root: Path, location: str) -> str | None:
    """Ask the webserver (a deployment's, or a running ``dataplat dev``) to reload the
    location, so the UI shows the change without anyone pressing Reload. Returns a warning
    to show when a webserver was expected but could not reload; None otherwise."""
    url = deployment_url() or dev_url(workspace_root)
    if not url:
        return None
    try:
        reload_location(client(url), location, url)
    except DataplatError as error:
        return str(error)
    return None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
