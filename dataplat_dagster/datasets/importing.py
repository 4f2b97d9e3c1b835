"""Importing an uploaded flat file, or a snapshot of a datasource, as a dataset, as a Dagster run.

1. Check the name and the file, and start copying the file into the dataset's storage
   folder under a fresh ``raw/<id>/`` name (``upload``: on a thread, while the command
   loads Dagster).
2. Detect the dialect in the calling process, so that a file that cannot be read (empty,
   binary, a zip without exactly one table, undecodable) is refused before anything is
   registered; its copy is removed.
3. A new dataset is registered in the project's run-time registry (so its asset exists in
   the code location), and a running webserver is asked to reload the location.
4. Hand the run to Dagster (``runs.submit``), its config naming the staged upload.
5. What follows (recording the new raw file and removing the old one, removing a failed
   copy, unregistering a failed new dataset) is the run's own work: see ``lifecycle``.

A snapshot (``start_snapshot``) stages nothing: its asset reads the datasource through the
connector when it runs. A new snapshot dataset is registered with origin ``datasource``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetKey, DagsterInstance

from dataplat_dagster import runs, webserver
from dataplat_dagster.catalog import DatasetSpec
from dataplat_dagster.catalog.models import CsvOptions, find_entry
from dataplat_dagster.catalog.registry import Registry, project_catalog
from dataplat_dagster.connectors.base import connector_tags
from dataplat_dagster.datasets import lifecycle
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.ingest.detect import detect_dialect
from dataplat_dagster.ingest.dialect import CsvOverrides, Dialect
from dataplat_dagster.datasets.storage import DatasetStore, project_root
from dataplat_dagster.datasets.upload import PendingUpload
from dataplat_dagster.definitions import DATASETS_JOB
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import Project, Workspace, check_name

TAG_ACTION = "dataplat/action"


@dataclass(frozen=True)
class StartedImport:
    run_id: str
    dialect: Dialect
    upload: str  # the staged copy the run reads, inside the dataset's storage folder
    warning: str | None  # a webserver that could not reload the code location


def start_import(
    instance: DagsterInstance,
    workspace: Workspace,
    project: Project,
    name: str,
    upload: PendingUpload,
    file: Path,
    options: CsvOptions,
    *,
    profile: bool = True,
    wait: bool = True,
) -> StartedImport:
    """Start the import of ``file`` as dataset ``name``, its copy into storage under way
    (``datasets.upload.begin_upload``, which checked the name and the file): detect its
    dialect, register a new dataset, and submit the run once the copy is whole. The copy is
    removed if the run is not submitted."""
    # What the checks found decides: a dataset another import registers meanwhile makes
    # this one's registration fail, as it should, rather than turn it into a replace.
    store, existing = upload.store, upload.existing
    try:
        dialect = detect_dialect(file, CsvOverrides(**options.model_dump()))
        staged = upload.result()
    except BaseException:
        upload.discard()
        raise
    registry = Registry(store.root)
    if not existing:
        _register(registry, name, DatasetSpec(origin="file_upload"), lambda: lifecycle.remove_upload(store, staged))
    op_config = {"profile": profile, "dialect": json.dumps(dialect.to_json()), "upload": staged,
                 **options.model_dump(exclude_none=True)}
    tags = _tags("import", name, unregister=wait and not existing)
    try:
        warning = webserver.notify_catalog_changed(workspace.root, project.name) if not existing else None
        run_id = _submit(instance, workspace, project, name, op_config, tags, wait)
    except BaseException:
        lifecycle.remove_upload(store, staged)
        if not existing:
            _unregister(registry, store)
        raise
    return StartedImport(run_id, dialect, staged, warning)


def start_snapshot(
    instance: DagsterInstance,
    workspace: Workspace,
    project: Project,
    name: str,
    datasource: str,
    *,
    replace: bool = False,
    profile: bool = True,
    wait: bool = True,
    full_refresh: bool = False,
) -> tuple[str, str | None]:
    """Start a run taking a snapshot of ``datasource`` into dataset ``name``; returns the run
    id and a warning, if any. A new dataset is registered first; with ``replace`` an existing
    snapshot of the same datasource takes a new snapshot."""
    check_name("dataset", name)
    catalog = project_catalog(project)
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
    root = project_root(project.dir, catalog)
    store, registry = DatasetStore(root, name), Registry(root)
    if not existing:
        _register(registry, name, DatasetSpec(origin="datasource", datasource=datasource), lambda: None)
    # The run-level connector tag: a deployment's tag concurrency limit per connector holds across runs.
    tags = {**_tags("snapshot", name, unregister=wait and not existing), **connector_tags(catalog.datasources[datasource].connector)}
    op_config = {"profile": profile, "full_refresh": full_refresh}
    try:
        warning = webserver.notify_catalog_changed(workspace.root, project.name) if not existing else None
        return _submit(instance, workspace, project, name, op_config, tags, wait), warning
    except BaseException:
        if not existing:
            _unregister(registry, store)
        raise


def after_failed_run(instance: DagsterInstance, project: Project, name: str, run_id: str) -> None:
    """A run the CLI waited for failed: make sure its bookkeeping happened, also when it
    failed before its step ran (the run's own step does the same, idempotently)."""
    run = instance.get_run_by_id(run_id)
    catalog = project_catalog(project)
    root = project_root(project.dir, catalog)
    config = run_op_config(run)
    key = AssetKey(dataset_key(project.name, name))
    lifecycle.after_failure(instance, Registry(root), DatasetStore(root, name), key, run.tags, config.get("upload"))


def run_op_config(run) -> dict:
    """The config the run gave its one asset's op (an import's ``upload``, ...)."""
    return next(iter((run.run_config or {}).get("ops", {}).values()), {}).get("config", {})


def _tags(action: str, name: str, *, unregister: bool) -> dict[str, str]:
    return {TAG_ACTION: action, lifecycle.TAG_DATASET: name, lifecycle.TAG_UNREGISTER: "true" if unregister else "false"}


def _submit(instance, workspace, project, name, op_config, tags, wait) -> str:
    key = AssetKey(dataset_key(project.name, name))
    run_config = {"ops": {key.to_python_identifier(): {"config": op_config}}, **runs.QUIET_CONSOLE}
    return runs.submit(instance, workspace, runs.RunRequest(project, DATASETS_JOB, [key], run_config, tags), wait=wait)


def _register(registry: Registry, name: str, spec: DatasetSpec, undo) -> None:
    """Add the new dataset with a create-if-absent write: another import of the same name,
    from any host, may have registered it since this one started."""
    if registry.add_dataset(name, spec):
        return
    undo()
    raise DataplatError(f"A dataset named {name!r} was just created by another import; choose another --name.")


def _unregister(registry: Registry, store: DatasetStore) -> None:
    registry.remove_dataset(store.name)
    store.delete()
