"""``dataplat dataset export``: a run of the project's ``export_dataset`` job, from the CLI."""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from dataplat_dagster import runs, webserver
from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.connectors.base import connector_tags
from dataplat_dagster.catalog.models import find_entry
from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.storage import DatasetStore, project_root
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.exporters.export_job import EXPORT_JOB, EXPORTER_TAG, export_key, record_export
from dataplat_dagster.workspace import Project, Workspace


def export_dataset(instance: DagsterInstance, workspace: Workspace, project: Project, dataset: str, exporter: str) -> dict:
    """Export ``dataset`` through ``exporter`` and wait; returns what was written."""
    catalog = project_catalog(project)
    if dataset in catalog.image_folders and dataset not in catalog.datasets:
        raise DataplatError(
            f"{dataset!r} is an image folder: image folders cannot be exported (they are source material for image "
            f"experiments). Download it with `dataplat image-folder download {dataset} --output FILE.zip`."
        )
    find_entry(catalog.datasets, "dataset", dataset, project.name)
    spec = find_entry(catalog.exporters, "exporter", exporter, project.name)
    if not DatasetStore(project_root(project.dir, catalog), dataset).exists(storage.DATA_FILE):
        raise DataplatError(f"Dataset {dataset!r} has no stored data yet (see `dataplat dataset list`); materialize it first.")
    # Recorded first, so that the run's definitions already draw the dataset → export edge.
    # A new lineage edge: a running webserver redraws it (a failed reload does not stop the export).
    if record_export(project, exporter, dataset):
        webserver.notify_catalog_changed(workspace.root, project.name)
    config = {"ops": {"write_export": {"config": {"dataset": dataset, "exporter": exporter}}}, **runs.QUIET_CONSOLE}
    tags = {EXPORTER_TAG: exporter, "dataplat/dataset": dataset, **connector_tags(spec.connector)}
    run_id = runs.submit(instance, workspace, runs.RunRequest(project, EXPORT_JOB, [], config, tags), wait=True)
    outcome = runs.wait_for(instance, run_id)
    if outcome.status != DagsterRunStatus.SUCCESS:
        raise DataplatError(f"Export of dataset {dataset!r} through {exporter!r} failed (run {run_id}): {outcome.error or outcome.status.value}")
    event = instance.get_latest_materialization_event(AssetKey(export_key(project.name, exporter)))
    metadata = {key: getattr(value, "value", getattr(value, "text", value)) for key, value in event.asset_materialization.metadata.items()}
    return {
        "dataset": dataset,
        "exporter": exporter,
        "mode": spec.mode,
        "run_id": run_id,
        "rows": metadata["dagster/row_count"],
        "exported_to": metadata["exported_to"],
        "identifier": metadata.get("dagster/relation_identifier") or metadata.get("dagster/uri"),
        "dropped_by_retention": metadata.get("dropped_by_retention", []),
    }
