"""Each dataset's status, size and shape, for ``dataset list`` and ``dataset show``.

From the project's state first (``run_marks``): the current version's manifest (rows,
columns, size), the pointer (the run that made it current, and when), the run mark, and the
checks' recorded results. That needs neither Dagster's import nor its instance, and reads
the same from every process of a deployment. Where the recorded state does not settle a
dataset (a run marked as started and not yet accounted for, a dataset never materialized, a
version written before manifests recorded their columns), the instance answers, as it always
did: the last run that targeted the dataset's asset (in flight → ``parsing``, failed after
the last materialization → ``failed`` with the step's message), else the last
materialization (``ready``), else ``not_materialized``. A finished run's answer is written
back as the run's mark, so it is asked once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone

from dataplat_dagster.catalog import DatasetSpec, ProjectCatalog
from dataplat_dagster.datasets import run_marks
from dataplat_dagster.datasets.storage import DatasetStore, project_root
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.workspace import Project

# Called only where the recorded state does not settle a status: Dagster's instance.
InstanceGetter = Callable[[], object]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    origin: str
    status: str
    error: str | None
    rows: int | None
    columns: int | None
    size_bytes: int | None
    created_at: str
    materialized_at: str | None
    datasource: str | None
    run_id: str | None
    asset_key: list[str]
    description: str | None
    embeddings: str = "none"  # none, computing, ready, stale, or failed: reason
    # Its data-quality checks' last results: {count, passed, failed, not_run, failed_checks}.
    checks: dict | None = None

    def to_json(self) -> dict:
        return asdict(self)

    def status_text(self) -> str:
        """The status as the list and show print it: "ready, 2 checks failed"."""
        text = self.status + (f": {self.error}" if self.error else "")
        failed = (self.checks or {}).get("failed")
        return f"{text}, {failed} check{'s' if failed != 1 else ''} failed" if failed else text


def dataset_infos(instance: InstanceGetter, project: Project, catalog: ProjectCatalog,
                  names: list[str] | None = None) -> list[DatasetInfo]:
    """The datasets of the catalog (or only ``names``), in catalog order. ``instance`` (the
    CLI's, made on first call) is called only where the recorded state does not settle one."""
    from dataplat_dagster.embeddings.status import embeddings_status
    from dataplat_dagster.quality.results import checks_summary

    wanted = [name for name in catalog.datasets if names is None or name in names]
    root = project_root(project.dir, catalog)
    stores = {name: DatasetStore(root, name) for name in wanted}
    versions = {name: store.current() for name, store in stores.items()}  # one read of each pointer
    found = {name: _recorded(project, name, catalog.datasets[name], stores[name], versions[name]) for name in wanted}
    unsettled = [name for name, info in found.items() if info is None]
    if unsettled:
        found.update(_from_instance(instance(), project, catalog, stores, unsettled))
    embeddings = embeddings_status(instance, project, catalog, wanted)
    return [replace(found[name], embeddings=embeddings[name],
                    checks=checks_summary(instance, project.name, stores[name], versions[name], catalog.dataset_checks(name)))
            for name in wanted]


def _recorded(project: Project, name: str, spec: DatasetSpec, store: DatasetStore, version) -> DatasetInfo | None:
    """The dataset's info from the project's state alone (``version``: its current one, or
    None), or None where that does not settle it."""
    run = run_marks.recorded_run(store, version)
    if run is None:
        return None
    manifest = version.manifest if version is not None else {}
    if version is not None and "columns" not in manifest:
        return None  # written before manifests recorded what the list shows
    return DatasetInfo(
        name=name, origin=spec.origin, status=run.status, error=run.error,
        rows=manifest.get("rows"), columns=manifest.get("columns"), size_bytes=manifest.get("size_bytes"),
        created_at=spec.created_at.isoformat(timespec="seconds"), materialized_at=run.materialized_at,
        datasource=spec.datasource, run_id=run.run_id,
        asset_key=dataset_key(project.name, name), description=spec.description,
    )


# --- the instance's answer, where the recorded state does not settle it -------------------

def _from_instance(instance, project: Project, catalog: ProjectCatalog, stores: dict[str, DatasetStore],
                   names: list[str]) -> dict[str, DatasetInfo]:
    from dagster import AssetKey

    keys = {name: AssetKey(dataset_key(project.name, name)) for name in names}
    entries = asset_entries(instance, keys)
    infos = {}
    for name in names:
        infos[name] = _info(instance, name, catalog.datasets[name], keys[name], entries[name])
        remember_failure(stores[name], infos[name].status, infos[name].run_id, infos[name].error)
    return infos


def asset_entries(instance, keys: dict) -> dict:
    """Each name's asset entry in the instance (None where it has none), in one query."""
    records = {record.asset_entry.asset_key: record.asset_entry for record in instance.get_asset_records(list(keys.values()))}
    return {name: records.get(key) for name, key in keys.items()}


def remember_failure(store: DatasetStore, status: str, run_id: str | None, error: str | None) -> None:
    """Write a failure the instance told of as the run's mark, so that it is asked once."""
    mark = run_marks.read_mark(store)
    if status == "failed" and run_id and mark is not None and mark["run_id"] == run_id and mark["state"] != "failed":
        run_marks.mark_failed(store, run_id, error)


def _info(instance, name: str, spec: DatasetSpec, key, entry) -> DatasetInfo:
    materialization = entry.last_materialization if entry else None
    metadata = materialization.asset_materialization.metadata if materialization else {}
    status, error, run_id = run_status(instance, entry, materialization)
    return DatasetInfo(
        name=name,
        origin=spec.origin,
        status=status,
        error=error,
        rows=metadata_value(metadata, "dagster/row_count"),
        columns=metadata_value(metadata, "columns_count"),
        size_bytes=metadata_value(metadata, "size_bytes"),
        created_at=spec.created_at.isoformat(timespec="seconds"),
        materialized_at=materialized_at(materialization),
        datasource=spec.datasource,
        run_id=run_id,
        asset_key=list(key.path),
        description=spec.description,
    )


def run_status(instance, entry, materialization) -> tuple[str, str | None, str | None]:
    from dagster import DagsterRunStatus

    from dataplat_dagster.runs import IN_FLIGHT, failure_reason

    last_run_id = entry.last_run_id if entry else None
    run = instance.get_run_by_id(last_run_id) if last_run_id else None
    materialized_run_id = materialization.run_id if materialization else None
    if run is not None and run.run_id != materialized_run_id:
        if run.status in IN_FLIGHT:
            return "parsing", None, run.run_id
        if run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            return "failed", failure_reason(instance, run.run_id), run.run_id
    if materialization is not None:
        return "ready", None, materialized_run_id
    return "not_materialized", None, None


def metadata_value(metadata: dict, key: str):
    value = metadata.get(key)
    return value.value if value is not None else None


def materialized_at(materialization) -> str | None:
    if materialization is None:
        return None
    return datetime.fromtimestamp(materialization.timestamp, timezone.utc).isoformat(timespec="seconds")
