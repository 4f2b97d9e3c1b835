"""A project's dataset by name, and what is stored of it: for every command, the read-only
ones included, so nothing here imports Dagster."""

from __future__ import annotations

from dataplat_dagster.catalog.models import DatasetSpec
from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.storage import DatasetStore, project_root
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import Project


def dataset_store(project: Project, name: str) -> tuple[DatasetSpec, DatasetStore]:
    catalog = project_catalog(project)
    spec = catalog.datasets.get(name)
    if spec is None:
        known = ", ".join(sorted(catalog.datasets)) or "none"
        raise DataplatError(
            f"No dataset {name!r} in project {project.name!r} (datasets: {known}). "
            "See `dataplat dataset list`."
        )
    return spec, DatasetStore(project_root(project.dir, catalog), name)


def require_data(store: DatasetStore) -> None:
    if not store.exists(storage.DATA_FILE):
        raise DataplatError(
            f"Dataset {store.name!r} has no stored data yet (it is still parsing, failed, or was never "
            "materialized). See its status in `dataplat dataset list`."
        )


def version_list(store: DatasetStore) -> list[dict]:
    """The versions kept, newest first: ``id``, ``created_at``, ``rows``, ``run_id``, ``current``."""
    versions, current = store.versions()
    return [
        {"id": v.id, "created_at": v.manifest.get("created_at"), "rows": v.manifest.get("rows"),
         "run_id": v.manifest.get("run_id"), "current": v.id == current}
        for v in versions
    ]
