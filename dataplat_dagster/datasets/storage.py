"""Where a dataset's files live under the project's storage root.

The root is a local folder by default, or any fsspec URL (``s3://bucket/prefix``), so every
path here is a ``UPath``. Work happens in a local staging folder; ``publish`` then moves each
finished file to its final name in one step (``os.replace`` locally, a single object write on
object stores), so a reader never sees a half-written file and a failed run leaves the
previous version in place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from upath import UPath

DATA_FILE = "data.parquet"
PROFILE_FILE = "profile.json"
DIALECT_FILE = "dialect.json"
REPORT_FILE = "report.html"
DISTRIBUTIONS_FILE = "distributions.png"
CORRELATIONS_FILE = "correlations.png"
RAW_FOLDER = "raw"
# The profile's plots, by the key the metadata and report use for each.
IMAGE_FILES = {"distributions": DISTRIBUTIONS_FILE, "correlations": CORRELATIONS_FILE}


def is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


def resolve_reference(project_dir: Path, reference: str) -> UPath:
    """What the catalog names (the storage root, a source file): a path relative to the
    project folder, an absolute path, or a URL taken as is."""
    if "://" in reference:
        return UPath(reference)
    return UPath(project_dir / reference)


def project_root(project_dir: Path, catalog) -> UPath:
    """The project's storage root: ``storage_root`` of its catalog (a folder relative to the
    project, or an ``s3://`` / ``gs://`` URL). Every process of a deployment resolves it the
    same way, so only this function knows how."""
    return resolve_reference(project_dir, catalog.storage_root)


def write_exclusive(path: UPath, data: bytes) -> bool:
    """Write ``data`` to ``path`` only if nothing is there yet, in one step: ``False`` when
    another writer was first. Two hosts creating the same name never both succeed."""
    if is_local(path):
        local = Path(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        try:
            os.link(tmp, local)  # fails if the name exists: an atomic create-if-absent
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True
    raise NotImplementedError(f"exclusive writes on {path.protocol}:// storage")


def catalog_reference(project_dir: Path, path: UPath) -> str:
    """How the catalog names a stored file or folder (the inverse of ``resolve_reference``):
    relative to the project when it lies inside it (so the project can move), else an
    absolute path or a URL."""
    if not is_local(path):
        return str(path)
    local, project = Path(path).resolve(), project_dir.resolve()
    return str(local.relative_to(project)) if local.is_relative_to(project) else str(local)


@contextmanager
def local_copy(path: str | os.PathLike | UPath) -> Iterator[Path]:
    """A local path for any file: a local path as it is, a URL downloaded to a temporary folder."""
    if "://" not in str(path):
        yield Path(path)
        return
    remote = UPath(str(path))
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / remote.name
        remote.fs.get_file(remote.path, str(local))
        yield local


class DatasetStore:
    def __init__(self, root: UPath, name: str):
        self.root = root
        self.name = name
        self.folder = root / "datasets" / name

    def path(self, file: str) -> UPath:
        return self.folder / file

    def uri(self, file: str) -> str:
        path = self.path(file)
        return path.as_uri() if is_local(path) else str(path)

    def exists(self, file: str = DATA_FILE) -> bool:
        return self.path(file).exists()

    def size(self, file: str = DATA_FILE) -> int | None:
        path = self.path(file)
        return path.stat().st_size if path.exists() else None

    def read_json(self, file: str) -> dict | None:
        path = self.path(file)
        return json.loads(path.read_text()) if path.exists() else None

    def read_bytes(self, file: str) -> bytes | None:
        path = self.path(file)
        return path.read_bytes() if path.exists() else None

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A local scratch folder, on the same disk as the final files when storage is local
        (so ``publish`` is a rename), removed afterwards whatever happens."""
        base = None
        if is_local(self.root):
            base = Path(self.root) / ".staging"
            base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{self.name}-", dir=base) as tmp:
            yield Path(tmp)

    def publish(self, local_file: Path, file: str) -> UPath:
        target = self.path(file)
        if is_local(target):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            os.replace(local_file, target)
        else:
            target.fs.put_file(str(local_file), target.path)
        return target

    def local_file(self, relative: str):
        """A local path for reading one stored file (downloaded first when storage is remote)."""
        return local_copy(self.path(relative))

    def remove(self, file: str) -> None:
        path = self.path(file)
        if path.exists():
            path.unlink()

    def delete(self) -> None:
        if not self.folder.exists():
            return
        if is_local(self.folder):
            shutil.rmtree(Path(self.folder))
        else:
            self.folder.fs.rm(self.folder.path, recursive=True)

    def move_to(self, new_name: str) -> DatasetStore:
        target = DatasetStore(self.root, new_name)
        if self.folder.exists():
            if is_local(self.folder):
                Path(target.folder).parent.mkdir(parents=True, exist_ok=True)
                os.replace(Path(self.folder), Path(target.folder))
            else:
                self.folder.fs.mv(self.folder.path, target.folder.path, recursive=True)
        return target
