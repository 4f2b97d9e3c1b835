"""Runs the CLI starts, handed to Dagster's run machinery.

The CLI is a client: where a run executes is the instance's business. Three cases:

- A deployment (``--dagster-url`` / ``DATAPLAT_DAGSTER_URL``): the run is launched through
  the webserver's GraphQL API, so it is created from the deployment's own code location
  (the code server's origin) and goes through the instance's run coordinator (queued, then
  launched by ``dagster-daemon``) and run launcher (a process, a container, a pod).
- An instance whose ``dagster.yaml`` sets another run coordinator or launcher: the CLI
  creates the run with the code location's origin from ``workspace.yaml`` and submits it
  with ``instance.submit_run``; it never executes it.
- The embedded default (the default coordinator and launcher, no daemon): the run, created
  with the same origin, executes in a child forked from the CLI's process, which has the
  definitions loaded already, so a small import costs no second interpreter start nor a
  second load of the code location. The child outlives the CLI (``--no-wait`` returns at
  once; a CLI killed mid-run leaves the run going), and the CLI waits for it and reports.

Whichever way, what must follow a run (an import's bookkeeping) happens in the run itself.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus

from dataplat_dagster.datasets.run_marks import mark_submitted
from dataplat_dagster.workspace import Project, Workspace

IN_FLIGHT = {
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
}

# Run config for runs the CLI starts: the events are stored in the instance (and shown in
# the UI); the terminal gets the CLI's own summary instead of Dagster's event stream.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: DagsterRunStatus
    error: str | None


@dataclass(frozen=True)
class RunRequest:
    project: Project
    job_name: str
    asset_keys: list[AssetKey]
    run_config: Mapping
    tags: Mapping[str, str]
    # Asset checks to run without their assets (``dataplat check run``); with asset keys,
    # the run takes the checks of those assets by itself.
    check_keys: list[AssetCheckKey] = field(default_factory=list)


def submit(instance: DagsterInstance, workspace: Workspace, request: RunRequest, *, wait: bool) -> str:
    """Hand the run to Dagster; returns its id. With ``wait``, the caller then calls ``wait_for``."""
    from dataplat_dagster import webserver

    url = webserver.deployment_url()
    if url:
        run_id = webserver.launch_run(url, request)
        mark_submitted(request.project, [key.path for key in request.asset_keys], run_id)
        if instance.get_run_by_id(run_id) is None:
            from dataplat_dagster.errors import WorkspaceError

            raise WorkspaceError(
                f"The deployment at {url} launched run {run_id}, but this CLI's Dagster instance "
                f"({instance.root_directory}) does not hold it: point DAGSTER_HOME at a dagster.yaml "
                "with the deployment's storage (see deploy/README.md)."
            )
        return run_id
    run_id = _create_run(instance, workspace, request)
    mark_submitted(request.project, [key.path for key in request.asset_keys], run_id)
    if is_embedded(instance):
        _execute_in_child(instance, run_id, detach=not wait, log_dir=workspace.root / "logs" / "dataplat")
    else:
        _submit_to_coordinator(instance, workspace, run_id)
    return run_id


def is_embedded(instance: DagsterInstance) -> bool:
    """The instance's ``dagster.yaml`` sets no run coordinator nor launcher, or Dagster's
    default ones: nothing but this command would ever start the run (Dagster's own default
    coordinator queues, for a daemon the embedded shape does not run), so the CLI's child
    executes it."""
    import yaml

    path = Path(instance.root_directory) / "dagster.yaml"
    settings = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    defaults = {"run_coordinator": "DefaultRunCoordinator", "run_launcher": "DefaultRunLauncher"}
    return all((settings.get(key) or {}).get("class", default) == default for key, default in defaults.items())


# A run still queued after this long probably has no daemon to launch it: say so, once.
QUEUED_NOTICE_S = 30.0


def wait_for(instance: DagsterInstance, run_id: str, poll_s: float = 0.2, notice=None) -> RunOutcome:
    """Wait until the run has finished, however it executes; Ctrl-C asks Dagster to stop it.
    ``notice`` (a callable taking a message) hears once about a run that stays queued."""
    child = _CHILDREN.pop(run_id, None)
    started, told = time.monotonic(), False
    try:
        if child is not None:
            _wait_child(child)
        while (run := instance.get_run_by_id(run_id)) is not None and run.status in IN_FLIGHT:
            if notice and not told and run.status == DagsterRunStatus.QUEUED and time.monotonic() - started > QUEUED_NOTICE_S:
                notice(f"run {run_id} has been queued for {QUEUED_NOTICE_S:.0f} s: it starts when dagster-daemon "
                       "launches it (is `dagster-daemon run` running for this instance?). Ctrl-C cancels it.")
                told = True
            time.sleep(poll_s)
    except KeyboardInterrupt:
        if child is None:
            instance.run_coordinator.cancel_run(run_id)
        raise
    return outcome(instance, run_id)


def outcome(instance: DagsterInstance, run_id: str) -> RunOutcome:
    run = instance.get_run_by_id(run_id)
    error = failure_reason(instance, run_id) if run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED) else None
    return RunOutcome(run_id, run.status, error)


def failure_reason(instance: DagsterInstance, run_id: str) -> str:
    """The message of the first failed step, as the user should read it."""
    from dagster._core.events import DagsterEventType

    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        data = record.dagster_event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            return data.user_failure_data.description
        if data.error:
            error = data.error.cause or data.error
            if error.cls_name == "DagsterExecutionInterruptedError":
                return "the run was interrupted (Ctrl-C or a termination signal); import the file again."
            return error.message.strip()
    for record in instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE):
        return record.dagster_event.message or "the run failed"
    for record in instance.all_logs(run_id, of_type=DagsterEventType.RUN_CANCELED):
        return record.dagster_event.message or "the run was canceled"
    return "the run failed"


# --- creating a run with its code location's origin -------------------------------------

def _create_run(instance: DagsterInstance, workspace: Workspace, request: RunRequest) -> str:
    """Create the run from the definitions loaded in this process, with the origin that the
    workspace's webserver and daemon know the code location by (its entry in
    workspace.yaml), so the UI ties the run to the location and can re-execute it."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin

    project = request.project
    recon_repo = ReconstructableRepository.for_file(
        str(project.definitions_file), "defs", working_directory=str(project.dir)
    )
    recon_job = recon_repo.get_reconstructable_job(request.job_name)
    job_def = recon_job.get_definition()
    repository_origin = RemoteRepositoryOrigin(_location_origin(workspace, project), recon_repo.get_definition().name)
    remote_job_origin = RemoteJobOrigin(repository_origin, request.job_name)
    if request.check_keys:
        return _create_check_run(instance, job_def, request, recon_job.get_python_origin(), remote_job_origin)
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config=dict(request.run_config),
        tags=dict(request.tags),
        job_code_origin=recon_job.get_python_origin(),
        remote_job_origin=remote_job_origin,
        asset_selection=frozenset(request.asset_keys) if request.asset_keys else None,
    )
    return run.run_id


def _create_check_run(instance: DagsterInstance, job_def, request: RunRequest, job_code_origin, remote_job_origin) -> str:
    """A run of asset checks without their assets. ``create_run_for_job`` takes no check
    selection, so this is what it does, with one: the run records the selection, and the
    process that executes it subsets the job the same way."""
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.snap import snapshot_from_execution_plan

    checks = frozenset(request.check_keys)
    subset = job_def.get_subset(asset_selection=frozenset(request.asset_keys), asset_check_selection=checks)
    plan = create_execution_plan(job=subset, run_config=dict(request.run_config), tags=dict(request.tags),
                                 instance_ref=instance.get_ref() if instance.is_persistent else None)
    run = instance.create_run(
        job_name=subset.name, run_id=None, run_config=dict(request.run_config), status=None, tags=dict(request.tags),
        root_run_id=None, parent_run_id=None, step_keys_to_execute=plan.step_keys_to_execute, op_selection=None,
        resolved_op_selection=None, asset_selection=frozenset(request.asset_keys), asset_check_selection=checks,
        job_snapshot=subset.get_job_snapshot(),
        execution_plan_snapshot=snapshot_from_execution_plan(plan, subset.get_job_snapshot_id()),
        parent_job_snapshot=subset.get_parent_job_snapshot(), remote_job_origin=remote_job_origin,
        job_code_origin=job_code_origin, asset_graph=subset.asset_layer.asset_graph,
    )
    return run.run_id


def _location_origin(workspace: Workspace, project: Project):
    from dagster._core.workspace.load import location_origins_from_yaml_paths

    for origin in location_origins_from_yaml_paths([str(workspace.workspace_file)]):
        if origin.location_name == project.name:
            return origin
    from dataplat_dagster.errors import WorkspaceError

    raise WorkspaceError(f"{workspace.workspace_file} has no code location named {project.name!r}.")


def _submit_to_coordinator(instance: DagsterInstance, workspace: Workspace, run_id: str) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator

    if isinstance(instance.run_coordinator, QueuedRunCoordinator):
        # Queued: the daemon launches it from its own workspace; nothing here is needed.
        instance.submit_run(run_id, workspace=None)
        return
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    target = WorkspaceFileTarget(paths=[str(workspace.workspace_file)])
    with WorkspaceProcessContext(instance, target) as context:
        instance.submit_run(run_id, context.create_request_context())


# --- the embedded default: a forked child executes the run ------------------------------

_CHILDREN: dict[str, int] = {}


def _execute_in_child(instance: DagsterInstance, run_id: str, *, detach: bool, log_dir: Path) -> None:
    if not hasattr(os, "fork"):
        _start_worker(instance, run_id, log_dir)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        _CHILDREN[run_id] = pid
        return
    code = 1
    try:
        if detach:
            # Its own session: the terminal's Ctrl-C or hang-up no longer reaches it.
            os.setsid()
            log_dir.mkdir(parents=True, exist_ok=True)
            log = os.open(log_dir / f"{run_id}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            for fd in (1, 2):
                os.dup2(log, fd)
        code = _execute(instance, run_id)
    finally:
        os._exit(code)


def _wait_child(pid: int) -> None:
    """Wait for the child; a Ctrl-C reaches it too (same process group), and it marks the run
    failed and cleans up: wait for that as well before giving the interrupt back."""
    try:
        os.waitpid(pid, 0)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.waitpid(pid, 0)
        raise
    except ChildProcessError:
        pass


def _execute(instance: DagsterInstance, run_id: str) -> int:
    from dagster._core.execution.api import execute_run
    from dagster._utils.hosted_user_process import recon_job_from_origin

    run = instance.get_run_by_id(run_id)
    execute_run(recon_job_from_origin(run.job_code_origin), run, instance)
    return 0 if instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS else 1


def _start_worker(instance: DagsterInstance, run_id: str, log_dir: Path) -> None:
    """Where ``fork`` does not exist: a detached interpreter executes the run instead."""
    import subprocess

    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DAGSTER_HOME=str(instance.root_directory))
    with open(log_dir / f"{run_id}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dataplat_dagster.runs", run_id],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    _CHILDREN[run_id] = process.pid


if __name__ == "__main__":
    with DagsterInstance.get() as _instance:
        sys.exit(_execute(_instance, sys.argv[1]))
