"""Rename, download and delete datasets.

Asset keys follow the name: a renamed dataset's asset is ``[project, "datasets", NEW]``.
Dagster has no key aliases, so the rename copies the latest materialization's metadata to
the new key as a runless materialization (the dataset is ``ready`` at once, with its
profile), and records the old name under ``renamed_from`` in the catalog and in that
metadata; the old key's history stays in the instance, reachable under the old key.

A rename or delete is several steps (the catalog entry, the files, the instance's events)
that no store does at once. Each first writes what it is about to do into the registry
(``_registry/pending/<name>.json``) and removes that record last; every step is one that
can be done again. A command that dies half-way leaves the record, and the next dataset
command finishes the operation (``finish_interrupted``) before it does anything else: the
catalog never names a dataset whose files are gone.

A dataset with a run in flight (an import, a snapshot, an export, a pipeline run that
materializes it) is neither renamed nor deleted: the run would write to, or read from, a
name that is no longer there. ``in_flight_runs`` finds them, for the CLI to refuse with
their ids or to wait for them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRun, MetadataValue, RunsFilter

from dataplat_dagster.catalog import FileSource, edit_catalog, load_catalog
from dataplat_dagster.catalog.registry import PENDING_FOLDER, REGISTRY_FOLDER, Registry, project_catalog, project_registry
from dataplat_dagster.catalog.models import DatasetSpec
from dataplat_dagster.datasets import lifecycle, storage
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.datasets.lookup import dataset_store, require_data
from dataplat_dagster.datasets.storage import DatasetStore, catalog_reference, project_root
from dataplat_dagster.embeddings.manage import follow_delete, follow_rename
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import Project, check_name

DOWNLOAD_FORMATS = ("csv", "parquet")


def in_flight_runs(instance: DagsterInstance, project: Project, name: str) -> list[DagsterRun]:
    """The runs not yet finished that write or read dataset ``name``: tagged with it, or
    materializing its asset."""
    from dataplat_dagster.datasets import lifecycle
    from dataplat_dagster.runs import IN_FLIGHT

    key = AssetKey(dataset_key(project.name, name))
    runs = instance.get_runs(RunsFilter(statuses=list(IN_FLIGHT)))
    return [run for run in runs if run.tags.get(lifecycle.TAG_DATASET) == name or key in (run.asset_selection or ())]


def _pending_path(root, name: str):
    return root / REGISTRY_FOLDER / PENDING_FOLDER / f"{name}.json"


def _begin(root, name: str, operation: dict) -> None:
    storage.write_bytes(_pending_path(root, name), json.dumps(operation).encode())


def _end(root, name: str) -> None:
    path = _pending_path(root, name)
    if path.exists():
        path.unlink()


def finish_interrupted(instance: DagsterInstance, project: Project) -> list[str]:
    """Finish the renames and deletes a command left half-done; returns what was finished."""
    finished = []
    for record in project_registry(project).pending():
        name, operation = record.name[: -len(".json")], json.loads(record.read_text())
        if operation["op"] == "rename":
            _rename_steps(instance, project, name, operation["to"], DatasetSpec.model_validate(operation["spec"]))
            finished.append(f"the rename of dataset {name!r} to {operation['to']!r}")
        else:
            _delete_steps(instance, project, name)
            finished.append(f"the deletion of dataset {name!r}")
    return finished


def rename_dataset(instance: DagsterInstance, project: Project, name: str, new_name: str) -> None:
    """Rename ``name`` to ``new_name``: recorded as pending, then the new entry (taken with a
    create-if-absent write for a registered dataset, in the catalog file for a declared
    one), the files, the old entry, the materialization under the new key."""
    check_name("dataset", new_name)
    spec, store = dataset_store(project, name)
    catalog = project_catalog(project)
    if new_name in catalog.datasets:
        raise DataplatError(f"A dataset named {new_name!r} already exists; choose another name.")
    renamed = spec.model_copy(update={"renamed_from": [*spec.renamed_from, name]})
    _begin(store.root, name, {"op": "rename", "to": new_name, "spec": renamed.model_dump(mode="json", exclude_none=True)})
    try:
        _take_name(project, store, name, new_name, renamed)
    except BaseException:
        _end(store.root, name)
        raise
    _rename_steps(instance, project, name, new_name, renamed)


def _take_name(project: Project, store: DatasetStore, name: str, new_name: str, renamed: DatasetSpec) -> None:
    """The entry under the new name, beside the old one: in the registry with a
    create-if-absent write, in the catalog file for a declared dataset."""
    registry = Registry(store.root)
    if registry.dataset(name) is not None:
        if not registry.add_dataset(new_name, renamed):
            raise DataplatError(f"A dataset named {new_name!r} was just created; choose another name.")
        return
    with edit_catalog(project.catalog_path) as declared:
        if new_name in declared.datasets:
            raise DataplatError(f"A dataset named {new_name!r} already exists; choose another name.")
        declared.datasets[new_name] = _declared_rename(project, store, renamed, new_name)


def _rename_steps(instance, project: Project, name: str, new_name: str, renamed: DatasetSpec) -> None:
    """The rename from the new entry on; each step can run again after a crash."""
    catalog = project_catalog(project)
    root = project_root(project.dir, catalog)
    registry, store = Registry(root), DatasetStore(root, name)
    if new_name not in catalog.datasets:  # the command died before it took the new name
        _take_name(project, store, name, new_name, renamed)
    moved = store.move_to(new_name)
    follow_rename(instance, project, root, name, new_name)
    _follow_checks(project, registry, name, new_name)
    if registry.dataset(name) is not None:
        registry.remove_dataset(name)
    elif name in load_catalog(project.catalog_path).datasets:
        with edit_catalog(project.catalog_path) as declared:
            declared.datasets.pop(name, None)
    _carry_materialization(instance, project, name, new_name, moved)
    _end(root, name)


def _follow_checks(project: Project, registry: Registry, name: str, new_name: str | None) -> None:
    """The dataset's checks follow a rename (to ``new_name``) or go with a delete (None),
    whether added with the CLI or declared in the catalog file."""
    if new_name:
        registry.move_checks(name, new_name)
    else:
        registry.remove_checks(name)
    if name in load_catalog(project.catalog_path).checks:
        with edit_catalog(project.catalog_path) as declared:
            specs = declared.checks.pop(name)
            if new_name:
                declared.checks[new_name] = [*declared.checks.get(new_name, []), *specs]


def _declared_rename(project: Project, store: DatasetStore, renamed: DatasetSpec, new_name: str) -> DatasetSpec:
    """A declared dataset's entry under its new name: a raw copy inside the dataset's folder moves with it."""
    old_prefix = catalog_reference(project.dir, store.folder)
    source = renamed.source
    if source and source.path.startswith(old_prefix + "/"):
        new_folder = catalog_reference(project.dir, DatasetStore(store.root, new_name).folder)
        source = FileSource(path=new_folder + source.path[len(old_prefix):], options=source.options)
    return renamed.model_copy(update={"source": source})


def _carry_materialization(instance, project: Project, name: str, new_name: str, moved: DatasetStore) -> None:
    version = moved.current() or moved  # the files of the version current after the move
    updates = {"dagster/uri": MetadataValue.text(version.uri(storage.DATA_FILE))}
    if version.exists(storage.REPORT_FILE):  # a profiled version: its metadata links the report
        updates["report"] = MetadataValue.url(version.uri(storage.REPORT_FILE))
    lifecycle.carry_materialization(instance, AssetKey(dataset_key(project.name, name)),
                                    AssetKey(dataset_key(project.name, new_name)), updates)


def delete_dataset(instance: DagsterInstance, project: Project, name: str) -> None:
    """Remove the dataset's entry, its files (raw upload, versions, reports) and its asset's
    events, so it leaves the UI's catalog. Nothing outside storage is touched."""
    _, store = dataset_store(project, name)
    _begin(store.root, name, {"op": "delete"})
    _delete_steps(instance, project, name)


def _delete_steps(instance, project: Project, name: str) -> None:
    """The entry first, then the files: a crash between them leaves files no entry names
    (and the pending record that removes them), never an entry without its files."""
    catalog = project_catalog(project)
    root = project_root(project.dir, catalog)
    registry = Registry(root)
    if registry.dataset(name) is not None:
        registry.remove_dataset(name)
    elif name in load_catalog(project.catalog_path).datasets:
        with edit_catalog(project.catalog_path) as declared:
            declared.datasets.pop(name, None)
    DatasetStore(root, name).delete()
    follow_delete(instance, project, root, name)
    _follow_checks(project, registry, name, None)
    instance.wipe_assets([AssetKey(dataset_key(project.name, name))])
    _end(root, name)


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
