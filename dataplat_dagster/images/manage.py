"""Importing, listing, renaming, downloading and deleting image folders, for the CLI.

An import works as a dataset's does (``datasets.importing``): the zip is staged under the
image folder's ``raw/<id>/``, a new image folder is registered in the project's run-time
registry (so its asset exists in the code location), and a run of the project's
``refresh_datasets`` job imports it (``images.assets``). A folder given instead of a zip is
zipped first (stored, not compressed), so that the run reads one file whatever the storage.
Status comes from the Dagster instance, as a dataset's does.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import AssetKey, DagsterInstance, RunsFilter

from dataplat_dagster import runs, webserver
from dataplat_dagster.catalog.models import ImageFolderSpec
from dataplat_dagster.catalog.registry import Registry, project_catalog
from dataplat_dagster.datasets import lifecycle
from dataplat_dagster.datasets.importing import TAG_ACTION, run_op_config
from dataplat_dagster.datasets.upload import stage_upload
from dataplat_dagster.datasets.storage import project_root
from dataplat_dagster.definitions import DATASETS_JOB
from dataplat_dagster.embeddings.manage import follow_delete, follow_rename
from dataplat_dagster.errors import DataplatError, InputError
from dataplat_dagster.images.assets import after_failure
from dataplat_dagster.images.store import IMAGES_FOLDER, SUMMARY_FILE, find_image_folder, image_folder_store
from dataplat_dagster.keys import image_folder_key
from dataplat_dagster.workspace import Project, Workspace, check_name

TAG_IMAGE_FOLDER = "dataplat/image_folder"


# -- import ---------------------------------------------------------------------------


def start_image_import(instance: DagsterInstance, workspace: Workspace, project: Project, name: str, source: Path, *,
                       replace: bool = False, skip_invalid: bool = False, wait: bool = True) -> tuple[str, str | None]:
    """Stage ``source`` (a zip, or a folder) and start the run that imports it as image folder
    ``name``; returns the run id and a warning (a webserver that could not reload), if any."""
    check_name("image folder", name)
    catalog = project_catalog(project)
    existing = catalog.image_folders.get(name)
    if existing and not replace:
        raise DataplatError(
            f"An image folder named {name!r} already exists in project {project.name!r}. Choose another --name, "
            "or pass --replace to import this zip as its new version."
        )
    root = project_root(project.dir, catalog)
    store, registry = image_folder_store(root, name), Registry(root)
    with _as_zip(source) as archive:
        upload = stage_upload(store, archive)
    if not existing and not registry.add_image_folder(name, ImageFolderSpec()):
        lifecycle.remove_upload(store, upload)
        raise DataplatError(f"An image folder named {name!r} was just created by another import; choose another --name.")
    key = AssetKey(image_folder_key(project.name, name))
    tags = {TAG_ACTION: "import", TAG_IMAGE_FOLDER: name, lifecycle.TAG_UNREGISTER: "true" if wait and not existing else "false"}
    run_config = {"ops": {key.to_python_identifier(): {"config": {"upload": upload, "skip_invalid": skip_invalid}}},
                  **runs.QUIET_CONSOLE}
    try:
        warning = webserver.notify_catalog_changed(workspace.root, project.name) if not existing else None
        run_id = runs.submit(instance, workspace, runs.RunRequest(project, DATASETS_JOB, [key], run_config, tags), wait=wait)
    except BaseException:
        lifecycle.remove_upload(store, upload)
        if not existing:
            registry.remove_image_folder(name)
            store.delete()
        raise
    return run_id, warning


@contextmanager
def _as_zip(source: Path) -> Iterator[Path]:
    """The zip to stage: ``source`` itself, or a stored zip of a folder, made in a temporary folder."""
    if source.is_dir():
        with tempfile.TemporaryDirectory(prefix="dataplat-image-folder-") as tmp:
            archive = Path(tmp) / f"{source.resolve().name or 'images'}.zip"
            _zip_folder(source, archive)
            yield archive
        return
    if not source.is_file():
        raise InputError(f"{source} does not exist. Give the path of a zip of images, or of a folder of images.")
    if not zipfile.is_zipfile(source):
        raise InputError(
            f"{source} is not a zip file. Image folders are imported from a .zip of images (subfolders as "
            "labels) or from a folder of images."
        )
    yield source


def _zip_folder(folder: Path, archive: Path) -> None:
    """Every file under ``folder``, by its relative path; links are stored as links, for the
    run to refuse, never followed out of the folder."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for directory, subfolders, files in os.walk(folder):
            subfolders.sort()
            for file in sorted(files):
                path = Path(directory) / file
                relative = path.relative_to(folder).as_posix()
                if path.is_symlink():
                    info = zipfile.ZipInfo(relative)
                    info.external_attr = (0o120777 << 16)  # a symlink entry
                    out.writestr(info, os.readlink(path))
                else:
                    out.write(path, relative)


def after_failed_run(instance: DagsterInstance, project: Project, name: str, run_id: str) -> None:
    """A run the CLI waited for failed: its bookkeeping, also when it failed before its step ran."""
    run = instance.get_run_by_id(run_id)
    catalog = project_catalog(project)
    root = project_root(project.dir, catalog)
    store = image_folder_store(root, name)
    lifecycle.remove_upload(store, run_op_config(run).get("upload"))
    after_failure(instance, Registry(root), store, AssetKey(image_folder_key(project.name, name)), run.tags)


# -- rename, download, delete ---------------------------------------------------------


def in_flight_runs(instance: DagsterInstance, project: Project, name: str) -> list:
    key = AssetKey(image_folder_key(project.name, name))
    found = instance.get_runs(RunsFilter(statuses=list(runs.IN_FLIGHT)))
    return [run for run in found if run.tags.get(TAG_IMAGE_FOLDER) == name or key in (run.asset_selection or ())]


def rename_image_folder(instance: DagsterInstance, project: Project, name: str, new_name: str) -> None:
    """The new entry (a create-if-absent write), the files, the old entry, then the last
    materialization reported again under the new key (the old key's history stays)."""
    from dagster import MetadataValue

    check_name("image folder", new_name)
    store = find_image_folder(project, name)
    registry = Registry(store.root)
    spec = registry.image_folder(name)
    if new_name in project_catalog(project).image_folders or not registry.add_image_folder(
            new_name, spec.model_copy(update={"renamed_from": [*spec.renamed_from, name]})):
        raise DataplatError(f"An image folder named {new_name!r} already exists; choose another name.")
    moved = store.move_to(new_name)
    follow_rename(instance, project, store.root, name, new_name)
    registry.remove_image_folder(name)
    version = moved.current()
    lifecycle.carry_materialization(
        instance, AssetKey(image_folder_key(project.name, name)), AssetKey(image_folder_key(project.name, new_name)),
        {"dagster/uri": MetadataValue.path(version.uri(IMAGES_FOLDER))} if version is not None else None)


def delete_image_folder(instance: DagsterInstance, project: Project, name: str) -> None:
    """The entry first, then the files and the asset's events."""
    store = find_image_folder(project, name)
    Registry(store.root).remove_image_folder(name)
    store.delete()
    follow_delete(instance, project, store.root, name)
    instance.wipe_assets([AssetKey(image_folder_key(project.name, name))])


def download_image_folder(project: Project, name: str, output: Path) -> tuple[int, int]:
    """Zip the current version's images to ``output`` (through a temporary file), under the
    paths they were imported with (the common top folder put back); returns (images, bytes)."""
    import pyarrow.parquet as pq

    from dataplat_dagster.images.store import MANIFEST_TABLE

    if output.is_dir():
        raise DataplatError(f"{output} is a folder: give the path of the zip to write, e.g. {output / (name + '.zip')}.")
    version = find_image_folder(project, name).current()
    if version is None:
        raise DataplatError(f"Image folder {name!r} has no images yet: see its status in `dataplat image-folder list`.")
    with version.local_file(MANIFEST_TABLE) as manifest_path:
        paths = pq.read_table(manifest_path, columns=["path"]).column("path").to_pylist()
    top = (version.read_json(SUMMARY_FILE) or {}).get("stripped_folder")
    images = version.path(IMAGES_FOLDER)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.partial")
    try:
        # Stored, not compressed: images are compressed already; a member is copied in chunks.
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as out:
            for path in paths:
                with (images / path).open("rb") as source, out.open(f"{top}/{path}" if top else path, "w", force_zip64=True) as target:
                    while chunk := source.read(1 << 20):
                        target.write(chunk)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return len(paths), output.stat().st_size
