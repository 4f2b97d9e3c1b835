"""Rename, download and delete datasets.

Asset keys follow the name: a renamed dataset's asset is ``[project, "datasets", NEW]``.
Dagster has no key aliases, so the rename copies the latest materialization's metadata to
the new key as a runless materialization (the dataset is ``ready`` at once, with its
profile), and records the old name under ``renamed_from`` in the catalog and in that
metadata; the old key's history stays in the instance, reachable under the old key.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster import AssetKey, AssetMaterialization, DagsterInstance, MetadataValue

from dataplat_dagster.catalog import FileSource, edit_catalog
from dataplat_dagster.catalog.registry import Registry, project_catalog
from dataplat_dagster.catalog.models import DatasetSpec
from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.assets import dataset_key
from dataplat_dagster.datasets.storage import DatasetStore, catalog_reference, project_root
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import Project, check_name

DOWNLOAD_FORMATS = ("csv", "parquet")


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


def rename_dataset(instance: DagsterInstance, project: Project, name: str, new_name: str) -> None:
    """A dataset created at run time is renamed in the registry (the new name is taken with a
    create-if-absent write, then the files move, then the old entry goes); one the catalog
    file declares is renamed there."""
    check_name("dataset", new_name)
    spec, store = dataset_store(project, name)
    catalog = project_catalog(project)
    if new_name in catalog.datasets:
        raise DataplatError(f"A dataset named {new_name!r} already exists; choose another name.")
    registry = Registry(store.root)
    if registry.dataset(name) is not None:
        renamed = spec.model_copy(update={"renamed_from": [*spec.renamed_from, name]})
        if not registry.add_dataset(new_name, renamed):
            raise DataplatError(f"A dataset named {new_name!r} was just created; choose another name.")
        moved = store.move_to(new_name)
        registry.remove_dataset(name)
    else:
        moved = _rename_declared(project, store, name, new_name)
    _carry_materialization(instance, project, name, new_name, moved)


def _rename_declared(project: Project, store: DatasetStore, name: str, new_name: str) -> DatasetStore:
    with edit_catalog(project.catalog_path) as catalog:
        if new_name in catalog.datasets:
            raise DataplatError(f"A dataset named {new_name!r} already exists; choose another name.")
        old_prefix = catalog_reference(project.dir, store.folder)
        moved = store.move_to(new_name)
        spec = catalog.datasets.pop(name)
        spec.renamed_from.append(name)
        if spec.source and spec.source.path.startswith(old_prefix + "/"):
            # A raw copy inside the dataset's folder moved with it.
            new_path = catalog_reference(project.dir, moved.folder) + spec.source.path[len(old_prefix) :]
            spec.source = FileSource(path=new_path, options=spec.source.options)
        catalog.datasets[new_name] = spec
    return moved


def _carry_materialization(instance, project: Project, name: str, new_name: str, moved: DatasetStore) -> None:
    old_key = AssetKey(dataset_key(project.name, name))
    latest = instance.get_latest_materialization_event(old_key)
    if latest is None:
        return
    metadata = dict(latest.asset_materialization.metadata)
    metadata["dagster/uri"] = MetadataValue.text(moved.uri(storage.DATA_FILE))
    if "report" in metadata:
        metadata["report"] = MetadataValue.url(moved.uri(storage.REPORT_FILE))
    metadata["renamed_from"] = MetadataValue.text("/".join(old_key.path))
    instance.report_runless_asset_event(
        AssetMaterialization(asset_key=AssetKey(dataset_key(project.name, new_name)), metadata=metadata)
    )


def delete_dataset(instance: DagsterInstance, project: Project, name: str) -> None:
    """Remove the dataset's files (raw upload, Parquet, reports) and its entry, and wipe its
    asset's events so it leaves the UI's catalog. Nothing outside storage is touched."""
    _, store = dataset_store(project, name)
    registry = Registry(store.root)
    if registry.dataset(name) is not None:
        registry.remove_dataset(name)
    else:
        with edit_catalog(project.catalog_path) as catalog:
            catalog.datasets.pop(name, None)
    store.delete()
    instance.wipe_assets([AssetKey(dataset_key(project.name, name))])


def download_dataset(project: Project, name: str, fmt: str, output: Path) -> int:
    """Write the dataset to ``output`` (through a temporary file, replaced at the end); return its size."""
    if fmt not in DOWNLOAD_FORMATS:
        raise DataplatError(f"Unknown format {fmt!r}: use one of {', '.join(DOWNLOAD_FORMATS)}.")
    if output.is_dir():
        raise DataplatError(f"{output} is a folder: give the path of the file to write, e.g. {output / (name + '.' + fmt)}.")
    _, store = dataset_store(project, name)
    require_data(store)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.partial")
    try:
        with store.local_file(storage.DATA_FILE) as parquet:
            if fmt == "parquet":
                shutil.copyfile(parquet, tmp)
            else:
                _parquet_to_csv(parquet, tmp)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return output.stat().st_size


def _parquet_to_csv(parquet: Path, target: Path) -> None:
    """Batch by batch, so memory stays flat whatever the dataset's size."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    source = pq.ParquetFile(parquet)
    with pacsv.CSVWriter(str(target), source.schema_arrow) as writer:
        for batch in source.iter_batches(batch_size=65536):
            writer.write_batch(batch)
