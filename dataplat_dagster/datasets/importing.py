"""Importing an uploaded flat file, or a snapshot of a datasource, as a dataset, as a Dagster run.

1. Detect the dialect in the calling process, so that a file that cannot be read (empty,
   binary, a zip without exactly one table, undecodable) is refused before anything is
   registered or copied.
2. Copy the raw file into the dataset's storage folder under a fresh ``raw/<id>/`` name.
3. A new dataset is registered in the catalog (so its asset exists in the code location);
   a ``--replace`` leaves the catalog alone and points the run's config at the new copy.
4. Create the run, then execute it here or in a detached worker (``--no-wait``).
5. ``finish_import`` runs after the run in whichever process executed it: on success a
   replace switches the catalog to the new raw file and removes the old one; on failure the
   new raw copy is removed, and a new dataset is unregistered when the caller waited for it
   (with ``--no-wait`` it stays listed as ``failed``, with the reason, until deleted).

A snapshot (``start_snapshot``) copies nothing first: its asset reads the datasource
through the connector when it runs. A new snapshot dataset is registered with origin
``datasource``; on failure it is unregistered the same way.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from dataplat_dagster import runs
from dataplat_dagster.catalog import DatasetSpec, FileSource, edit_catalog, load_catalog
from dataplat_dagster.catalog.models import CsvOptions, find_entry
from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.assets import dataset_key
from dataplat_dagster.datasets.detect import detect_dialect
from dataplat_dagster.datasets.dialect import CsvOverrides, Dialect
from dataplat_dagster.datasets.storage import DatasetStore, catalog_reference, resolve_reference
from dataplat_dagster.definitions import DATASETS_JOB
from dataplat_dagster.errors import DataplatError, InputError
from dataplat_dagster.workspace import Project, check_name

TAG_ACTION = "dataplat/action"
TAG_DATASET = "dataplat/dataset"
TAG_PROJECT_DIR = "dataplat/project_dir"
TAG_STAGED = "dataplat/staged_source"
TAG_REPLACES = "dataplat/replaces"
TAG_UNREGISTER = "dataplat/unregister_on_failure"


@dataclass(frozen=True)
class StartedImport:
    run_id: str
    dialect: Dialect
    raw_copy: str  # where the run reads the upload from: an absolute path or a URL


def start_import(
    instance: DagsterInstance,
    project: Project,
    name: str,
    file: Path,
    options: CsvOptions,
    *,
    replace: bool = False,
    profile: bool = True,
    wait: bool = True,
) -> StartedImport:
    check_name("dataset", name)
    if not file.is_file():
        raise InputError(f"{file} does not exist or is not a file. Check the path of the file to import.")
    catalog = load_catalog(project.catalog_path)
    existing = catalog.datasets.get(name)
    if existing and not replace:
        raise DataplatError(
            f"A dataset named {name!r} already exists in project {project.name!r}. Choose another "
            "--name, or pass --replace to import this file as its new version."
        )
    if existing and existing.origin != "file_upload":
        raise DataplatError(
            f"Dataset {name!r} comes from a {existing.origin.replace('_', ' ')}, not a file upload; "
            "it cannot be replaced by a file. Import the file under another --name."
        )
    dialect = detect_dialect(file, CsvOverrides(**options.model_dump()))
    root = resolve_reference(project.dir, catalog.storage_root)
    source_ref = _store_raw(project, DatasetStore(root, name), file)
    if not existing:
        _register(project, name, DatasetSpec(source=FileSource(path=source_ref, options=options)), source_ref)
    key = AssetKey(dataset_key(project.name, name))
    op_config = {"profile": profile, "dialect": json.dumps(dialect.to_json())}
    if existing:
        op_config.update(source_path=source_ref, **options.model_dump(exclude_none=True))
    tags = {
        TAG_ACTION: "import",
        TAG_DATASET: name,
        TAG_PROJECT_DIR: str(project.dir),
        TAG_STAGED: source_ref,
        TAG_REPLACES: "true" if existing else "false",
        TAG_UNREGISTER: "true" if (wait and not existing) else "false",
    }
    try:
        run_config = {"ops": {_op_name(key): {"config": op_config}}, **runs.QUIET_CONSOLE}
        run_id = runs.create_run(instance, project, DATASETS_JOB, [key], run_config, tags)
    except Exception:
        _undo_failed_start(project, name, source_ref, new=not existing)
        raise
    return StartedImport(run_id, dialect, str(resolve_reference(project.dir, source_ref)))


def start_snapshot(
    instance: DagsterInstance,
    project: Project,
    name: str,
    datasource: str,
    *,
    replace: bool = False,
    profile: bool = True,
    wait: bool = True,
    full_refresh: bool = False,
) -> str:
    """Start a run taking a snapshot of ``datasource`` into dataset ``name``; returns the run id.
    A new dataset is registered first; with ``replace`` an existing snapshot of the same
    datasource takes a new snapshot."""
    check_name("dataset", name)
    catalog = load_catalog(project.catalog_path)
    find_entry(catalog.datasources, "datasource", datasource, project.name)
    existing = catalog.datasets.get(name)
    if existing and not replace:
        raise DataplatError(
            f"A dataset named {name!r} already exists in project {project.name!r}. Choose another "
            f"--name, or pass --replace to take a new snapshot (`dataplat dataset refresh {name}` does the same)."
        )
    if existing and existing.datasource != datasource:
        made_from = f"datasource {existing.datasource!r}" if existing.datasource else f"a {existing.origin.replace('_', ' ')}"
        raise DataplatError(
            f"Dataset {name!r} comes from {made_from}, not from datasource {datasource!r}; "
            "import the datasource under another --name."
        )
    if not existing:
        _register(project, name, DatasetSpec(origin="datasource", datasource=datasource), None)
    key = AssetKey(dataset_key(project.name, name))
    tags = {
        TAG_ACTION: "snapshot",
        TAG_DATASET: name,
        TAG_PROJECT_DIR: str(project.dir),
        TAG_UNREGISTER: "true" if (wait and not existing) else "false",
    }
    op_config = {"profile": profile, "full_refresh": full_refresh}
    try:
        run_config = {"ops": {_op_name(key): {"config": op_config}}, **runs.QUIET_CONSOLE}
        return runs.create_run(instance, project, DATASETS_JOB, [key], run_config, tags)
    except Exception:
        if not existing:
            _unregister(project, name)
        raise


def finish_import(instance: DagsterInstance, run_id: str) -> None:
    run = instance.get_run_by_id(run_id)
    tags = run.tags if run else {}
    if tags.get(TAG_ACTION) not in ("import", "snapshot"):
        return
    project = Project(Path(tags[TAG_PROJECT_DIR]).name, Path(tags[TAG_PROJECT_DIR]))
    name, staged = tags[TAG_DATASET], tags.get(TAG_STAGED)
    succeeded = run.status == DagsterRunStatus.SUCCESS
    if tags.get(TAG_REPLACES) == "true":
        if succeeded:
            _switch_source(project, name, staged, run.run_config)
        else:
            _remove_raw(project, staged)
    elif not succeeded and tags[TAG_UNREGISTER] == "true":
        _unregister(project, name)


def _register(project: Project, name: str, spec: DatasetSpec, source_ref: str | None) -> None:
    """Add the new dataset, checking the name again under the catalog's lock: another import
    of the same name may have registered it since this one started."""
    with edit_catalog(project.catalog_path) as catalog:
        if name not in catalog.datasets:
            catalog.datasets[name] = spec
            return
    if source_ref:
        _remove_raw(project, source_ref)
    raise DataplatError(f"A dataset named {name!r} was just created by another import; choose another --name.")


def _store_raw(project: Project, store: DatasetStore, file: Path) -> str:
    """Copy the upload to ``raw/<id>/<file name>``; return how the catalog refers to it."""
    relative = f"{storage.RAW_FOLDER}/{uuid.uuid4().hex[:12]}/{file.name}"
    with store.staging() as tmp:
        copy = tmp / file.name
        shutil.copyfile(file, copy)
        target = store.publish(copy, relative)
    return catalog_reference(project.dir, target)


def _switch_source(project: Project, name: str, staged: str, run_config: dict) -> None:
    options = next(iter(run_config.get("ops", {}).values()), {}).get("config", {})
    fields = {key: options[key] for key in CsvOptions.model_fields if options.get(key) is not None}
    with edit_catalog(project.catalog_path) as catalog:
        spec = catalog.datasets.get(name)
        if spec is None:
            return
        previous = spec.source.path if spec.source else None
        spec.source = FileSource(path=staged, options=CsvOptions(**fields))
    if previous and previous != staged:
        _remove_raw(project, previous)


def _remove_raw(project: Project, source_ref: str) -> None:
    """Remove one uploaded raw copy (its ``raw/<id>/`` folder in the dataset's storage).
    A source the user declared elsewhere is never touched."""
    catalog = load_catalog(project.catalog_path)
    root = resolve_reference(project.dir, catalog.storage_root)
    folder = resolve_reference(project.dir, source_ref).parent
    raw_folders = {str(DatasetStore(root, name).path(storage.RAW_FOLDER)) for name in catalog.datasets}
    if str(folder.parent) in raw_folders and folder.exists():
        folder.fs.rm(folder.path, recursive=True)


def _unregister(project: Project, name: str) -> None:
    with edit_catalog(project.catalog_path) as catalog:
        catalog.datasets.pop(name, None)
        root = resolve_reference(project.dir, catalog.storage_root)
    DatasetStore(root, name).delete()


def _undo_failed_start(project: Project, name: str, source_ref: str, new: bool) -> None:
    if new:
        _unregister(project, name)
    else:
        _remove_raw(project, source_ref)


def _op_name(key: AssetKey) -> str:
    return key.to_python_identifier()
