"""Where a dataset's files live under the project's storage root.

The root is a local folder by default, or any fsspec URL (``s3://bucket/prefix``,
``gs://bucket/prefix``), so every path here is a ``UPath``; ``project_root`` gives it the
filesystem options (credentials, endpoint) that reach the store, and every path joined to
it keeps them. Work happens in a local staging folder; ``publish`` then moves each
finished file to its final name in one step (``os.replace`` locally, a single object write on
object stores), so a reader never sees a half-written file and a failed run leaves the
previous version in place.

Each version of a dataset (its Parquet, profile, dialect, report and plots) is an immutable
folder ``versions/<id>/`` with a small ``manifest.json`` (rows, columns, size, created_at,
run_id, and what the run that wrote it must find again, such as an incremental datasource's
cursor). One pointer object, ``current.json``, names the current version, the versions kept
(newest first) and the run that made it current, and when; it is written last, in one step, so a reader that resolves it once sees one
version whole, and a run that dies before it leaves the previous version current. A
dataset stored before versions existed (its files directly in its folder) reads as one
implicit version, ``initial``, until it is pruned.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from upath import UPath

from dataplat_dagster.errors import CatalogError, ConnectorError, DataplatError

DATA_FILE = "data.parquet"
PROFILE_FILE = "profile.json"
DIALECT_FILE = "dialect.json"
REPORT_FILE = "report.html"
DISTRIBUTIONS_FILE = "distributions.png"
CORRELATIONS_FILE = "correlations.png"
RAW_FOLDER = "raw"
VERSIONS_FOLDER = "versions"
POINTER_FILE = "current.json"
MANIFEST_FILE = "manifest.json"
# The version of a dataset stored before versions existed, read from the dataset's folder.
INITIAL_VERSION = "initial"
DEFAULT_VERSIONS_KEPT = 3
# The profile's plots, by the key the metadata and report use for each.
IMAGE_FILES = {"distributions": DISTRIBUTIONS_FILE, "correlations": CORRELATIONS_FILE}
# What each version holds; everything else (raw uploads) belongs to the dataset's folder.
VERSION_FILES = (DATA_FILE, PROFILE_FILE, DIALECT_FILE, REPORT_FILE, *IMAGE_FILES.values(), MANIFEST_FILE)

# Set once for a deployment: every project's storage root is ``<value>/<project folder name>``.
STORAGE_ROOT_ENV = "DATAPLAT_STORAGE_ROOT"
S3_PROTOCOLS = ("s3", "s3a")
GCS_PROTOCOLS = ("gs", "gcs")
# The fsspec filesystem of each object store, and the extra of this package that installs it.
_FILESYSTEMS = {"s3": ("s3fs", "s3"), "gcs": ("gcsfs", "gcs")}
# Other processes (the CLI, the code server, each run, on other hosts) add and remove the
# objects under a root, the registry's among them: a listing is asked for fresh each time,
# never taken from the filesystem's cache (which never expires by default).
_FRESH_LISTINGS = {"use_listings_cache": False}


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
    project, or an ``s3://`` / ``gs://`` URL), or ``$DATAPLAT_STORAGE_ROOT/<project folder
    name>`` when that variable is set. Every process of a deployment resolves it the same
    way, so only this function knows how.

    On S3 and GCS the path's filesystem reaches the store through ``storage_connector``
    (its endpoint, region and keys, read from their variables now), else through the
    default credential chain. Secrets go into the filesystem's options only: a UPath's
    ``str`` and ``repr`` show the URL alone.
    """
    override = os.environ.get(STORAGE_ROOT_ENV, "").strip()
    if override:
        reference, root_from = _overridden_root(override, project_dir.name), f"${STORAGE_ROOT_ENV}"
    else:
        reference, root_from = catalog.storage_root, "storage_root"
    if "://" not in reference:
        return UPath(project_dir / reference)
    protocol = reference.split("://", 1)[0].lower()
    connector = _storage_connector(catalog, reference, root_from)
    if protocol in S3_PROTOCOLS:
        _require_filesystem("s3", reference, root_from)
        return _with_filesystem(UPath(reference, **s3_storage_options(catalog.storage_connector, connector)), "s3")
    if protocol in GCS_PROTOCOLS:
        _require_filesystem("gcs", reference, root_from)
        options = gcs_storage_options(catalog.storage_connector, connector, project_dir)
        emulator = bool(options.get("endpoint_url") or os.environ.get("STORAGE_EMULATOR_HOST"))
        return _with_filesystem(UPath(reference, **options), "gcs-plain" if emulator else "gs")
    return UPath(reference)


def _overridden_root(override: str, project: str) -> str:
    if "://" in override:
        return override.rstrip("/") + "/" + project
    base = Path(override).expanduser()
    if not base.is_absolute():
        raise DataplatError(
            f"${STORAGE_ROOT_ENV} is {override!r}, a relative path: give an absolute folder or a URL "
            "(s3://bucket/prefix, gs://bucket/prefix), the same for every process of the deployment."
        )
    return str(base / project)


def _storage_connector(catalog, reference: str, root_from: str):
    """The catalog's storage connector (None when unset), checked against the root in use."""
    from dataplat_dagster.catalog.models import storage_connector_problem

    name = getattr(catalog, "storage_connector", None)
    if name is None:
        return None
    problem = storage_connector_problem(name, catalog.connectors, reference, root_from)
    if problem:
        raise CatalogError(f"{problem}.")
    return catalog.connectors[name]


def _require_filesystem(store: str, reference: str, root_from: str) -> None:
    import importlib.util

    module, extra = _FILESYSTEMS[store]
    if importlib.util.find_spec(module) is None:
        where = "storage_root" if root_from == "storage_root" else f"storage_root (from {root_from})"
        raise DataplatError(f"{where} {reference} needs {module}: pip install 'dataplat-dagster[{extra}]'")


def _secret(connector_name: str, var: str, what: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise ConnectorError(
            f"storage_connector {connector_name!r} reads {what} from ${var}, which is not set: set it in the "
            "environment of every process that uses the project (the CLI, the code server, the runs)."
        )
    return value


def s3_storage_options(name: str | None, connector) -> dict:
    """s3fs options: the connector's endpoint, region, keys and time-out; without one, the
    default AWS credential chain (AWS_* variables, ``~/.aws``, a role) with the endpoint of
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``."""
    options: dict = {**_FRESH_LISTINGS}
    endpoint = connector.endpoint_url if connector else None
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    if connector is None:
        return options
    if connector.region:
        options["client_kwargs"] = {"region_name": connector.region}
    if connector.access_key_env:
        options["key"] = _secret(name, connector.access_key_env, "the access key id")
        options["secret"] = _secret(name, connector.secret_key_env, "the secret access key")
    # Standard retry mode: max_attempts counts the first attempt, as the connector's retries do.
    options["config_kwargs"] = {"connect_timeout": connector.timeout_s, "retries": {"max_attempts": connector.retries, "mode": "standard"}}
    return options


def gcs_storage_options(name: str | None, connector, project_dir: Path) -> dict:
    """gcsfs options: the connector's project, key (its file, or its JSON from a variable)
    and endpoint, anonymous for an emulator without a key; without one, an emulator at
    ``STORAGE_EMULATOR_HOST`` (anonymous), else Application Default Credentials."""
    if connector is None:
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            return {**_FRESH_LISTINGS, "endpoint_url": emulator, "token": "anon"}
        return {**_FRESH_LISTINGS, "token": "google_default"}
    from dataplat_dagster.connectors.base import project_path

    options: dict = {**_FRESH_LISTINGS}
    if connector.gcp_project:
        options["project"] = connector.gcp_project
    if connector.endpoint_url:
        options["endpoint_url"] = connector.endpoint_url
    if connector.credentials_env:
        raw = _secret(name, connector.credentials_env, "the service account's JSON key")
        try:
            options["token"] = json.loads(raw)
        except ValueError:
            raise ConnectorError(
                f"storage_connector {name!r}: ${connector.credentials_env} is not JSON: put the whole content "
                "of the service account's key file in the variable."
            ) from None
    elif connector.credentials_file:
        options["token"] = project_path(project_dir, connector.credentials_file)
    elif connector.endpoint_url or os.environ.get("STORAGE_EMULATOR_HOST"):
        options["token"] = "anon"
    else:
        options["token"] = "google_default"
    return options


class ProcessFilesystem:
    """A storage root's fsspec filesystem, made in whichever process uses it.

    fsspec's S3 and GCS filesystems belong to the process that made them: in a forked
    child (the CLI executes its runs so) one made by the parent fails with "This class is
    not fork-safe". A UPath keeps the first filesystem it makes; this stands in for it
    and asks fsspec for the current process's instance on each use (fsspec keeps one per
    process and options, so that is a dictionary look-up).

    ``gcs-plain`` is gcsfs's plain filesystem, for emulators: gcsfs's default one first
    asks the Storage Control API, over gRPC, for each bucket's layout, which an emulator
    does not serve, so every operation would wait a minute for that to time out.
    """

    def __init__(self, kind: str, options: dict):
        self._kind = kind
        self._options = options

    def current(self):
        if self._kind == "gcs-plain":
            from gcsfs.core import GCSFileSystem as cls
        else:
            import fsspec

            cls = fsspec.get_filesystem_class(self._kind)
        return cls(**self._options)

    def __getattr__(self, name: str):
        # Only what the instance lacks comes here; its own fields while it is being built
        # (a copy, say) must not recurse.
        if name.startswith("__") or name in ("_kind", "_options"):
            raise AttributeError(name)
        return getattr(self.current(), name)

    def __repr__(self) -> str:
        return f"<ProcessFilesystem {self._kind}>"  # never the options: they hold secrets


def _with_filesystem(root: UPath, kind: str) -> UPath:
    """``root``, with every path joined to it, on a ``ProcessFilesystem``."""
    root._fs_cached = ProcessFilesystem(kind, dict(root.storage_options))
    return root


def stored_path(root: UPath, reference: str) -> UPath:
    """A URL the catalog or a run holds (a raw upload's ``catalog_reference``) as a path on
    the storage root's filesystem, with its options, when it lies under the root; other
    references as ``UPath(reference)``."""
    if is_local(root) or not reference.startswith(str(root).rstrip("/") + "/"):
        return UPath(reference)
    return root / reference[len(str(root).rstrip("/")) + 1 :]


def write_exclusive(path: UPath, data: bytes) -> bool:
    """Write ``data`` to ``path`` only if nothing is there yet, in one step: ``False`` when
    another writer was first. Two hosts creating the same name never both succeed.

    Locally a hard link of a temporary file (fails if the name exists); on S3 a PUT with
    ``If-None-Match: *``, on GCS an upload with ``ifGenerationMatch=0``: the store refuses
    it (412) if an object has the name, and the first object stays. A store that ignores
    the condition is safe only from writers that come later, not from one at the same time."""
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
    if path.protocol in S3_PROTOCOLS + GCS_PROTOCOLS:
        # Not needed where the store honours the condition; where it does not (the GCS
        # emulator, some S3-compatible stores), it still refuses a name taken earlier.
        if path.fs.exists(path.path):
            return False
        try:
            # s3fs: put_object(..., IfNoneMatch="*"); gcsfs: an upload with ifGenerationMatch=0.
            path.fs.pipe_file(path.path, data, mode="create")
        except FileExistsError:
            return False
        except OSError as error:
            if _precondition_failed(error):
                return False
            raise
        return True
    raise NotImplementedError(f"exclusive writes on {path.protocol}:// storage")


def _precondition_failed(error: OSError) -> bool:
    """s3fs raises FileExistsError for a 412 only when the answer names the If-None-Match
    condition; some S3-compatible stores leave that out (a plain OSError then)."""
    cause = error.__cause__
    response = getattr(cause, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "412") or status == 412


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
    # A UPath keeps its filesystem (credentials, endpoint); a string gets the default one.
    remote = path if isinstance(path, UPath) else UPath(str(path))
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / remote.name
        remote.fs.get_file(remote.path, str(local))
        yield local


class _StoredFiles:
    """Reading the files of one folder under a storage root."""

    root: UPath
    folder: UPath

    def path(self, file: str) -> UPath:
        return self.folder / file

    def uri(self, file: str) -> str:
        """The file's address as metadata shows it: the URL on an object store; on a local
        root, the path from the folder holding the root (``storage/datasets/...``), since
        an absolute path would only hold on the machine that wrote it."""
        path = self.folder / file
        if not is_local(path):
            return str(path)
        return str(Path(path).relative_to(Path(self.root).parent))

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

    def local_file(self, relative: str):
        """A local path for reading one stored file (downloaded first when storage is remote)."""
        return local_copy(self.path(relative))


class DatasetVersion(_StoredFiles):
    """One immutable version of a dataset: its files and its manifest."""

    def __init__(self, store: DatasetStore, id: str, manifest: dict | None = None, pointer: dict | None = None):
        self.store, self.id, self.root = store, id, store.root
        self.folder = store.folder if id == INITIAL_VERSION else store.folder / VERSIONS_FOLDER / id
        self._manifest = manifest
        self._pointer = pointer or {}

    @property
    def manifest(self) -> dict:
        """``id``, ``created_at``, ``rows``, ``run_id`` and ``state`` (what its run recorded)."""
        if self._manifest is None:
            self._manifest = self.read_json(MANIFEST_FILE) or (self._initial_manifest() if self.id == INITIAL_VERSION else {})
        return self._manifest

    @property
    def state(self) -> dict:
        return self.manifest.get("state") or {}

    @property
    def made_current(self) -> tuple[str | None, datetime | None]:
        """The run that made this version current, and when, as the pointer it was resolved
        from records them (a rollback's run is not the run that wrote the version); else,
        for a pointer written before it did, the manifest's run and time."""
        at = self._pointer.get("at") or self.manifest.get("created_at")
        run_id = self._pointer.get("run_id") if self._pointer.get("at") else self.manifest.get("run_id")
        return run_id, datetime.fromisoformat(at) if at else None

    def _initial_manifest(self) -> dict:
        """What a dataset stored before versions existed says of itself: its Parquet's footer and time."""
        import pyarrow.parquet as pq

        data = self.path(DATA_FILE)
        if not data.exists():
            return {}
        with data.open("rb") as file:
            rows = pq.read_metadata(file).num_rows
        modified = datetime.fromtimestamp(data.stat().st_mtime, timezone.utc)
        return {"id": INITIAL_VERSION, "created_at": modified.isoformat(timespec="seconds"), "rows": rows, "run_id": None, "state": {}}

    def remove(self) -> None:
        if self.id == INITIAL_VERSION:  # the dataset's folder holds its raw uploads too
            for file in VERSION_FILES:
                if self.path(file).exists():
                    self.path(file).unlink()
        elif self.folder.exists():
            _remove_tree(self.folder)


class DatasetStore(_StoredFiles):
    """A dataset's folder. Its version files (``path(DATA_FILE)``, ...) are those of the
    version current when asked; a reader that needs several files of one version resolves
    it once with ``current()``."""

    def __init__(self, root: UPath, name: str, section: str = "datasets"):
        self.root = root
        self.name = name
        self.section = section  # "datasets", or "image_folders": the same versioned layout
        self.folder = root / section / name

    def path(self, file: str) -> UPath:
        if file in VERSION_FILES:
            version = self.current()
            if version is not None:
                return version.path(file)
        return self.folder / file

    # -- versions -----------------------------------------------------------------------

    def _pointer(self) -> dict | None:
        try:
            return json.loads((self.folder / POINTER_FILE).read_text())
        except FileNotFoundError:
            return None

    def current(self) -> DatasetVersion | None:
        """The current version, or None for a dataset with no stored data."""
        pointer = self._pointer()
        if pointer is not None:
            return DatasetVersion(self, pointer["current"], pointer=pointer)
        if (self.folder / DATA_FILE).exists():
            return DatasetVersion(self, INITIAL_VERSION)
        return None

    def versions(self) -> tuple[list[DatasetVersion], str | None]:
        """The versions kept, newest first, and the current one's id."""
        pointer = self._pointer()
        if pointer is not None:
            return [DatasetVersion(self, id) for id in pointer["versions"]], pointer["current"]
        current = self.current()
        return ([current], current.id) if current else ([], None)

    def version(self, id: str) -> DatasetVersion:
        versions, _ = self.versions()
        found = next((version for version in versions if version.id == id), None)
        if found is None:
            known = ", ".join(version.id for version in versions) or "none"
            raise DataplatError(
                f"Dataset {self.name!r} has no version {id!r} (versions kept: {known}). "
                f"See `dataplat dataset versions {self.name}`."
            )
        return found

    def new_version(self) -> DatasetVersion:
        """A fresh version id and folder; nothing is written until ``publish_version``."""
        id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")  # sorts as it was created
        return DatasetVersion(self, id, manifest={})

    def publish_version(self, version: DatasetVersion, staged: dict[str, Path], *, rows: int, run_id: str | None,
                        state: dict | None = None, versions_kept: int = DEFAULT_VERSIONS_KEPT) -> DatasetVersion:
        """Write the staged files into the version's folder, its manifest after them, then
        make it current by writing the pointer, and prune the versions beyond ``versions_kept``."""
        manifest = {"id": version.id, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "rows": rows, "run_id": run_id, "state": state or {}, **_data_figures(staged.get(DATA_FILE))}
        try:
            for name, local in staged.items():
                _put(local, version.path(name))
            write_bytes(version.path(MANIFEST_FILE), json.dumps(manifest, indent=1, default=str).encode())
            kept, _ = self.versions()
            self._point(version.id, [version.id, *(v.id for v in kept)], run_id)
        except BaseException:  # an interrupted publish leaves no folder behind
            version.remove()
            raise
        version._manifest = manifest
        self._prune(versions_kept)
        return version

    def make_current(self, id: str, run_id: str | None = None) -> DatasetVersion:
        """Point at an earlier version again (a rollback); the versions kept stay as they are."""
        version = self.version(id)
        versions, _ = self.versions()
        self._point(id, [v.id for v in versions], run_id)
        return version

    def _point(self, current: str, versions: list[str], run_id: str | None) -> None:
        pointer = {"current": current, "versions": versions, "run_id": run_id,
                   "at": datetime.now(timezone.utc).isoformat(timespec="microseconds")}
        write_bytes(self.folder / POINTER_FILE, json.dumps(pointer).encode())

    def _prune(self, versions_kept: int) -> None:
        """Keep the newest ``versions_kept`` and the current one; remove the others, and
        the folders of runs that died before publishing, once older than every version kept."""
        versions, current = self.versions()
        kept = [v for i, v in enumerate(versions) if i < versions_kept or v.id == current]
        if len(kept) < len(versions):
            pointer = self._pointer()
            write_bytes(self.folder / POINTER_FILE, json.dumps({**pointer, "versions": [v.id for v in kept]}).encode())
            for version in versions:
                if version not in kept:
                    version.remove()
        oldest = min((v.id for v in kept if v.id != INITIAL_VERSION), default="")
        folder = self.folder / VERSIONS_FOLDER
        for leftover in folder.iterdir() if folder.exists() else ():
            if leftover.name < oldest:
                _remove_tree(leftover)

    # -- writing ------------------------------------------------------------------------

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
        """One file of the dataset's folder (a raw upload), moved into place in one step."""
        target = self.folder / file
        _put(local_file, target)
        return target

    def remove(self, file: str) -> None:
        path = self.folder / file
        if path.exists():
            path.unlink()

    def delete(self) -> None:
        if self.folder.exists():
            _remove_tree(self.folder)

    def move_to(self, new_name: str) -> DatasetStore:
        target = DatasetStore(self.root, new_name, self.section)
        if self.folder.exists():
            if is_local(self.folder):
                Path(target.folder).parent.mkdir(parents=True, exist_ok=True)
                os.replace(Path(self.folder), Path(target.folder))
            else:
                _move_objects(self.folder, target.folder)
        return target


def _data_figures(data_file: Path | None) -> dict:
    """What the read-only commands show of a version without the Dagster instance: its
    columns and its Parquet's size (the footer of the local staged file: no data is read)."""
    if data_file is None:
        return {}
    import pyarrow.parquet as pq

    return {"columns": pq.read_metadata(data_file).num_columns, "size_bytes": data_file.stat().st_size}


def _put(local_file: Path, target: UPath) -> None:
    """``local_file`` to ``target`` in one step: a rename locally, one object write elsewhere.
    A folder (an image folder's images) is renamed whole locally, uploaded file by file elsewhere."""
    if is_local(target):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        os.replace(local_file, target)
    elif Path(local_file).is_dir():
        target.fs.put(str(local_file).rstrip("/") + "/", target.path.rstrip("/") + "/", recursive=True)
    else:
        target.fs.put_file(str(local_file), target.path)


def write_bytes(target: UPath, data: bytes) -> None:
    """A small object written whole in one step: a temporary file renamed over it locally,
    a single PUT on an object store (which replaces an object atomically)."""
    if is_local(target):
        local = Path(target)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, local)
    else:
        target.fs.pipe_file(target.path, data)


def _remove_tree(folder: UPath) -> None:
    if is_local(folder):
        shutil.rmtree(Path(folder), ignore_errors=True)
    else:
        folder.fs.rm(folder.path, recursive=True)


def _move_objects(folder: UPath, target: UPath) -> None:
    """Every object under ``folder`` to the same name under ``target``: copies, then the
    deletes (an object store has no rename). fsspec's recursive ``mv`` would also copy the
    folder itself, which is no object on S3."""
    fs, source, dest = folder.fs, folder.path.rstrip("/"), target.path.rstrip("/")
    files = [file for file in fs.find(source) if file.startswith(source + "/")]
    if files:
        fs.copy(files, [dest + file[len(source) :] for file in files])
        fs.rm(files)
