"""Runs of a project's jobs started from the CLI, recorded in the workspace's Dagster instance.

The CLI creates the run itself (so it is in the instance, and visible in the UI, before the
command returns) and then either executes it in this process, or hands its id to a detached
worker process (``--no-wait``): ``python -m dataplat_dagster.runs RUN_ID``. Both paths run the
same ``execute_and_finish``, which also applies what the run asked to happen afterwards
(see ``dataplat_dagster.datasets.importing``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.events import DagsterEventType
from dagster._core.execution.api import execute_run
from dagster._core.origin import JobPythonOrigin

from dataplat_dagster.workspace import Project

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


def create_run(
    instance: DagsterInstance,
    project: Project,
    job_name: str,
    asset_keys: list[AssetKey],
    run_config: Mapping,
    tags: Mapping[str, str],
) -> str:
    recon_job = ReconstructableRepository.for_file(
        str(project.definitions_file), "defs", working_directory=str(project.dir)
    ).get_reconstructable_job(job_name)
    job_def = recon_job.get_definition()
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config=dict(run_config),
        tags=dict(tags),
        job_code_origin=recon_job.get_python_origin(),
        asset_selection=frozenset(asset_keys) if asset_keys else None,
    )
    return run.run_id


def execute(instance: DagsterInstance, run_id: str) -> RunOutcome:
    run = instance.get_run_by_id(run_id)
    recon_job = _reconstruct(run.job_code_origin)
    execute_run(recon_job, run, instance)
    return outcome(instance, run_id)


def start_detached(instance: DagsterInstance, run_id: str, log_dir: Path) -> None:
    """Execute the run in a worker that outlives this command; its output goes to a log file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DAGSTER_HOME=str(instance.root_directory))
    with open(log_dir / f"{run_id}.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "dataplat_dagster.runs", run_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def outcome(instance: DagsterInstance, run_id: str) -> RunOutcome:
    run = instance.get_run_by_id(run_id)
    error = failure_reason(instance, run_id) if run.status == DagsterRunStatus.FAILURE else None
    return RunOutcome(run_id, run.status, error)


def failure_reason(instance: DagsterInstance, run_id: str) -> str:
    """The message of the first failed step, as the user should read it."""
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
    return "the run failed"


def _reconstruct(origin: JobPythonOrigin):
    from dagster._utils.hosted_user_process import recon_job_from_origin

    return recon_job_from_origin(origin)


def _worker(run_id: str) -> int:
    from dataplat_dagster.datasets.importing import finish_import

    with DagsterInstance.get() as instance:
        result = execute(instance, run_id)
        finish_import(instance, run_id)
    return 0 if result.status == DagsterRunStatus.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
