"""What the Dagster instance says about each dataset: status, size, shape.

Status comes from the instance, not from a side database: the last run that targeted the
dataset's asset (in flight → ``parsing``, failed after the last materialization → ``failed``
with the step's message), else the last materialization (``ready``), else ``not_materialized``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from dataplat_dagster.catalog import DatasetSpec, ProjectCatalog
from dataplat_dagster.datasets.assets import dataset_key
from dataplat_dagster.runs import IN_FLIGHT, failure_reason
from dataplat_dagster.workspace import Project


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


def dataset_infos(
    instance: DagsterInstance, project: Project, catalog: ProjectCatalog, names: list[str] | None = None
) -> list[DatasetInfo]:
    """The datasets of the catalog (or only ``names``), in catalog order."""
    wanted = [name for name in catalog.datasets if names is None or name in names]
    keys = {name: AssetKey(dataset_key(project.name, name)) for name in wanted}
    from dataplat_dagster.embeddings.status import embeddings_status

    records = {record.asset_entry.asset_key: record.asset_entry for record in instance.get_asset_records(list(keys.values()))}
    from dataplat_dagster.quality.checks import checks_summary

    embeddings = embeddings_status(instance, project, catalog, wanted)
    return [_info(instance, name, catalog.datasets[name], keys[name], records.get(keys[name]), embeddings[name],
                  checks_summary(instance, project.name, name, catalog.dataset_checks(name)))
            for name in wanted]


def _info(instance: DagsterInstance, name: str, spec: DatasetSpec, key: AssetKey, entry, embeddings: str,
          checks: dict | None) -> DatasetInfo:
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
        embeddings=embeddings,
        checks=checks,
    )


def run_status(instance: DagsterInstance, entry, materialization) -> tuple[str, str | None, str | None]:
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
    from datetime import datetime, timezone

    return datetime.fromtimestamp(materialization.timestamp, timezone.utc).isoformat(timespec="seconds")
