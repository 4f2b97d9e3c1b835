"""Refreshing snapshot datasets on time and on change: a job, a schedule and a sensor per datasource.

- ``snapshot_<datasource>``: the job that takes a new snapshot of every dataset made from it.
- ``snapshot_<datasource>_schedule``: the datasource's ``schedule`` (cron, UTC); it starts
  switched on, since declaring it says so.
- ``watch_<datasource>`` (files only): a sensor that looks at the file every
  ``watch_interval_s`` seconds and starts the job when its size, mtime or etag changed and
  then stayed the same for one interval (two looks in a row), so that a file still being
  written (an FTP or SFTP upload in progress) is not snapshotted half-way. The version is
  the run key, so one change starts one run however often the sensor looks; the sensor's
  cursor keeps the last version snapshotted and the changed one it is waiting on, and with
  no cursor yet the version of the last snapshot counts as snapshotted. It starts switched
  on only with ``watch: true``.

Both can be switched on and off on the UI's Automation page.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    in_process_executor,
    sensor,
)

from dataplat_dagster.connectors.base import connector_tags
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.datasources.models import DatasourceSpec, schedule_name, sensor_name, snapshot_job_name
from dataplat_dagster.datasources.snapshot import SOURCE_VERSION_KEY

TAG_SNAPSHOT_OF = "dataplat/snapshot_of"


def datasource_automation(project: str, datasources: dict[str, DatasourceSpec], datasets_by_source: dict[str, list[str]]):
    """The jobs, schedules and sensors of the datasources that have snapshot datasets."""
    jobs, schedules, sensors = [], [], []
    for name, spec in datasources.items():
        keys = [AssetKey(dataset_key(project, dataset)) for dataset in datasets_by_source.get(name, [])]
        if not keys:
            continue
        job = define_asset_job(
            snapshot_job_name(name),
            selection=AssetSelection.assets(*keys),
            executor_def=in_process_executor,
            description=f"Take a new snapshot of the datasets made from datasource {name!r} ({spec.target()}).",
            # The connector as a run tag: a deployment's per-connector limit holds for scheduled runs too.
            tags={"dataplat/project": project, TAG_SNAPSHOT_OF: name, **connector_tags(spec.connector)},
        )
        jobs.append(job)
        if spec.schedule:
            schedules.append(
                ScheduleDefinition(
                    name=schedule_name(name),
                    job=job,
                    cron_schedule=spec.schedule,
                    execution_timezone="UTC",
                    default_status=DefaultScheduleStatus.RUNNING,
                    description=f"Snapshot datasource {name!r} on '{spec.schedule}' (UTC).",
                )
            )
        if spec.kind == "path":
            sensors.append(file_change_sensor(name, spec, job, keys))
    return jobs, schedules, sensors


def file_change_sensor(name: str, spec: DatasourceSpec, job: JobDefinition, keys: list[AssetKey]) -> SensorDefinition:
    @sensor(
        name=sensor_name(name),
        job=job,
        minimum_interval_seconds=spec.watch_interval_s,
        default_status=DefaultSensorStatus.RUNNING if spec.watch else DefaultSensorStatus.STOPPED,
        required_resource_keys={spec.connector},
        description=f"Snapshot datasource {name!r} when {spec.path} changes (size, mtime or etag), "
        f"looking every {spec.watch_interval_s} s.",
    )
    def _watch(context: SensorEvaluationContext):
        connector = getattr(context.resources, spec.connector)
        with connector.open_store() as store:
            try:
                info = store.stat(spec.path)
            except FileNotFoundError as error:
                # The store's message ends its sentence; this one goes on after it.
                return SkipReason(f"{str(error).rstrip('.')}; waiting for it to appear.")
        version = info.version
        watched = WatchCursor.parse(context.cursor)
        if version == watched.snapshotted:
            context.update_cursor(WatchCursor(version).dump())  # back to what was snapshotted: nothing to wait on
            return SkipReason(f"{spec.path} is unchanged ({version}).")
        if watched.snapshotted is None and all(_snapshot_version(context.instance, key) == version for key in keys):
            context.update_cursor(WatchCursor(version).dump())
            return SkipReason(f"The last snapshot already holds this version of {spec.path} ({version}).")
        if version != watched.changed:
            context.update_cursor(WatchCursor(watched.snapshotted, changed=version).dump())
            return SkipReason(
                f"{spec.path} changed ({version}); a snapshot starts if the next look, in {spec.watch_interval_s} s, "
                "finds it the same, so that an upload still in progress is not read half-way."
            )
        context.update_cursor(WatchCursor(version).dump())
        return RunRequest(
            run_key=f"{name}:{version}",
            tags={TAG_SNAPSHOT_OF: name, "dataplat/source_version": version},
        )

    return _watch


@dataclass(frozen=True)
class WatchCursor:
    """The file sensor's cursor: the version last snapshotted (or found in the last snapshot),
    and a newer version seen at the last look, which starts a run if the next look sees it again."""

    snapshotted: str | None
    changed: str | None = None

    @classmethod
    def parse(cls, cursor: str | None) -> "WatchCursor":
        if not cursor:
            return cls(None)
        try:
            fields = json.loads(cursor)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            return cls(cursor)  # an earlier version's cursor: the version last seen, on its own
        return cls(fields.get("snapshotted"), fields.get("changed"))

    def dump(self) -> str:
        return json.dumps(asdict(self))


def _snapshot_version(instance, key: AssetKey) -> str | None:
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    entry = event.asset_materialization.metadata.get(SOURCE_VERSION_KEY)
    return getattr(entry, "value", None)
