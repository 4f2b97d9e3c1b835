"""An uploaded file's way into storage, before its import run: the checks that come first,
and its copy into the dataset's ``raw/<id>/`` folder.

The run reads the copy, not the user's file: a run may execute on another machine, or be
re-executed from the UI after the file has gone. ``begin_upload`` makes the copy on a thread
(``shutil.copyfile`` and object-store writes release the GIL), so that it overlaps what the
command does meanwhile: importing Dagster and opening its instance, about a second. A 650 MB
CSV takes 0.7 s to copy here. This module imports no Dagster.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path

from dataplat_dagster.catalog import DatasetSpec, ProjectCatalog
from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.storage import DatasetStore, project_root
from dataplat_dagster.errors import DataplatError, InputError
from dataplat_dagster.workspace import Project, check_name


def check_upload(project: Project, catalog: ProjectCatalog, name: str, file: Path, *, replace: bool) -> DatasetSpec | None:
    """Refuse an import that cannot be: a bad name, a missing file, a name taken without
    ``replace``, a dataset that does not come from a file. Returns the existing dataset."""
    check_name("dataset", name)
    if not file.is_file():
        raise InputError(f"{file} does not exist or is not a file. Check the path of the file to import.")
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
    return existing


def stage_upload(store: DatasetStore, file: Path) -> str:
    """Copy the upload to ``raw/<id>/<file name>`` in the dataset's storage folder; returns
    that relative name (the run's ``upload`` config)."""
    relative = f"{storage.RAW_FOLDER}/{uuid.uuid4().hex[:12]}/{file.name}"
    with store.staging() as tmp:
        copy = tmp / file.name
        shutil.copyfile(file, copy)
        store.publish(copy, relative)
    return relative


class PendingUpload:
    """The copy of ``file`` into ``store`` (a dataset's folder), under way on a thread.
    ``existing``: the dataset it replaces, as the checks found it (None: a new dataset)."""

    def __init__(self, store: DatasetStore, file: Path, existing: DatasetSpec | None) -> None:
        self.store = store
        self.existing = existing
        self._upload: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._copy, args=(file,), name=f"upload-{store.name}", daemon=True)
        self._thread.start()

    def result(self) -> str:
        """The staged copy's relative name, once it is whole; the copy's error, if it failed."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._upload

    def discard(self) -> None:
        """Remove the copy (once it is done): the import it was for did not start."""
        from dataplat_dagster.datasets import lifecycle

        self._thread.join()
        lifecycle.remove_upload(self.store, self._upload)
        if storage.is_local(self.store.root):  # the folders the copy made for a new dataset
            for folder in (Path(self.store.folder / storage.RAW_FOLDER), Path(self.store.folder)):
                try:
                    folder.rmdir()
                except OSError:  # not empty (an existing dataset's), or not there
                    break

    def _copy(self, file: Path) -> None:
        try:
            self._upload = stage_upload(self.store, file)
        except BaseException as error:  # handed to the caller by result()
            self._error = error


def begin_upload(project: Project, name: str, file: Path, *, replace: bool) -> PendingUpload:
    """Check the import (``check_upload``), then start copying ``file`` into storage."""
    catalog = project_catalog(project)  # read once: on an object store, the registry is a listing
    existing = check_upload(project, catalog, name, file, replace=replace)
    return PendingUpload(DatasetStore(project_root(project.dir, catalog), name), file, existing)
