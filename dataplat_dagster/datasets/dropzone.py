"""Importing a file from the Dagster UI, which cannot upload one: the ``import_file`` job
and the drop-zone sensor ``dropzone_<project>``.

``import_file`` (launchpad config ``ImportFileConfig``) imports a file that already lies
where the project can read it: in the project's drop zone, the folder ``dropzone/`` of its
storage root (``path`` relative to it, e.g. ``sales/2024.csv``), or on one of its file
connectors (``connector`` + ``path``: ftp, sftp, s3, gcs). It ends as
``dataplat dataset import`` does:

1. The dialect is detected first: a file that cannot be read is refused with the
   importer's own message, and nothing is staged or registered.
2. The file is staged under the dataset's ``raw/<id>/``; a new dataset is registered in
   the run-time registry (create-if-absent); a taken name needs ``replace``, and only a
   dataset of origin ``file_upload`` can be replaced.
3. The dataset is materialized with the config the CLI gives its asset (``upload``, the
   dialect, the CSV options, ``profile``), by the very function the asset runs
   (``assets.materialize_dataset``), so the asset's bookkeeping (``lifecycle``) is the same:
   the new raw file is recorded and the old one removed, a failed replace keeps the previous
   version, a failed new import is unregistered.

Design: the op materializes the dataset itself and reports the materialization
(``AssetMaterialization``, with ``dataplat/upload`` and ``dataplat/csv_options``, which the
asset's later runs and ``lifecycle.current_upload`` read). Starting a second run of
``refresh_datasets`` instead would need the new dataset's asset in the code location's
definitions, which a run cannot change: that works only where something reloads the code
location before the second run is created (a webserver, a code server), not under
``dagster job execute`` nor on a run worker of another machine. Doing the work in the op
works wherever the run runs. So that ``dataplat dataset list`` reads this run as it reads an
import's (``parsing`` while it runs, ``failed: reason`` when a replace failed, as the asset's
last run), the op reports the asset's materialization as planned, as Dagster does when it
creates an asset run, once the file is staged: where the CLI would have created its run.

A zip whose files are images goes in as an image folder instead (``import_into_image_folder``),
by the function the image folder's asset runs, with the same bookkeeping.

The sensor lists the drop zone every ``interval_s`` seconds (``dropzone: {interval_s: 30}``
in ``dataplat.yaml``) and asks for one ``import_file`` run per new file once it has stopped
changing: its version (size, mtime, etag where the store has one) the same on two
consecutive looks. The run key is the file's path and version, so a file is imported once;
the cursor (JSON) keeps the versions seen on the last look and the ones imported. The
dataset's name is the file's stem (``sanitized_name``). A file whose name is taken goes in
as ``replace`` only with ``dropzone: {replace: true}``; otherwise the sensor leaves it and
says why, and looks again at the next tick (the registry and that setting are read at each
tick; the interval is part of the sensor's definition, read when the code location loads).
"""

import json
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

from dagster import (
    AssetKey,
    AssetMaterialization,
    Config,
    DefaultSensorStatus,
    Failure,
    JobDefinition,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    config_mapping,
    in_process_executor,
    job,
    op,
    sensor,
)
from pydantic import Field
from upath import UPath

from dataplat_dagster.catalog.models import CsvOptions, DatasetSpec, DropzoneSettings
from dataplat_dagster.datasets import lifecycle, storage
from dataplat_dagster.datasets.assets import DatasetImportConfig
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import NAME_PATTERN, Project

IMPORT_JOB = "import_file"
# A job and an op may not share a name in one code location.
IMPORT_OP = "import_dataset_file"
DROPZONE_FOLDER = "dropzone"
FILE_CONNECTOR_TYPES = ("ftp", "sftp", "s3", "gcs")
# importing.TAG_ACTION and the action of `dataplat dataset import` (importing imports
# pyarrow, which a code location does not load).
TAG_ACTION = "dataplat/action"
TAG_DROPZONE_FILE = "dataplat/dropzone_file"
TAG_SOURCE_VERSION = "dataplat/source_version"
# The compression and archive suffixes a name leaves out with the table's own suffix.
_OUTER_SUFFIXES = (".gz", ".zip")


def sensor_name(project: str) -> str:
    return f"dropzone_{project}"


def dropzone_folder(root: UPath) -> UPath:
    return root / DROPZONE_FOLDER


def sanitized_name(path: str) -> str:
    """A valid dataset name from a file's name: its stem (``2024-sales.csv.gz`` →
    ``2024_sales`` → ``ds_2024_sales``), accents folded, lower case, anything but letters,
    digits and underscores as ``_``, a leading letter, at most 63 characters."""
    name = PurePosixPath(path.replace("\\", "/")).name
    for suffix in _OUTER_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    stem = PurePosixPath(name).stem if "." in name.lstrip(".") else name.lstrip(".")
    folded = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9]+", "_", folded.lower()).strip("_")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"ds_{cleaned}".rstrip("_")
    cleaned = cleaned[:63].rstrip("_")
    assert NAME_PATTERN.match(cleaned), cleaned
    return cleaned


def dropzone_path(path: str) -> str:
    """``path`` as a path inside the drop zone (``/``-separated); refuses an absolute path, a
    URL and ``..``: run config names no other file of the run's host."""
    text = (path or "").strip()
    if not text:
        raise DataplatError("Give `path`: a file in the project's drop zone, relative to it (e.g. sales/2024.csv).")
    parts = text.replace("\\", "/").split("/")
    absolute = text.startswith(("/", "\\", "~")) or "://" in text or re.match(r"^[A-Za-z]:", text) is not None
    if absolute or ".." in parts or "\x00" in text:
        raise DataplatError(
            f"The path {path!r} is not inside the drop zone: give a path relative to the drop zone "
            "(e.g. sales/2024.csv), with no leading '/' and no '..'."
        )
    cleaned = "/".join(part for part in parts if part not in ("", "."))
    if not cleaned:
        raise DataplatError(f"The path {path!r} names the drop zone itself: give a file in it (e.g. sales/2024.csv).")
    return cleaned


class ImportFileConfig(Config):
    """What to import, and how: as ``dataplat dataset import`` takes it."""

    path: str = Field(
        description="The file: relative to the project's drop zone (the folder dropzone/ of its storage root), "
        "e.g. sales/2024.csv; with `connector`, its path on that connector (from the connector's root)."
    )
    connector: str | None = Field(None, description="A file connector of the project (ftp, sftp, s3, gcs) to read `path` from.")
    name: str | None = Field(
        None, description="The dataset's name (a letter, then letters, digits, underscores); default: the file's name, sanitized."
    )
    replace: bool = Field(False, description="Import the file as the new version of the existing dataset of this name.")
    profile: bool = Field(True, description="Compute statistics, plots and the HTML report.")
    sep: str | None = Field(None, description="Field separator, e.g. ',', ';', '\\t', '|' (default: detected).")
    decimal: str | None = Field(None, description="Decimal separator, '.' or ',' (default: detected).")
    thousands: str | None = Field(None, description="Thousands separator; '' means none (default: detected).")
    encoding: str | None = Field(None, description="Text encoding, any Python codec name (default: detected).")
    header: bool | None = Field(None, description="Whether the first row holds the column names (default: detected).")
    quotechar: str | None = Field(None, description="Quote character (default: detected).")
    date_format: str | None = Field(None, description="strptime format of date columns, e.g. '%d/%m/%Y'.")


# --- the job ---------------------------------------------------------------------------


def import_file_job(project: Project, root: UPath) -> JobDefinition:
    """The job; its run config is ``ImportFileConfig`` itself (``path: ...``, ``name: ...``),
    handed to its one op."""

    @op(name=IMPORT_OP, out={}, description=f"Import a file of the drop zone or of a file connector as a dataset of project {project.name!r}.")
    def import_file(context: OpExecutionContext, config: ImportFileConfig):
        try:
            import_into_dataset(context, project, root, config)
        except DataplatError as error:
            raise Failure(description=str(error), allow_retries=False) from None

    @config_mapping
    def to_op(config: ImportFileConfig) -> dict:
        return {"ops": {IMPORT_OP: {"config": config.model_dump(exclude_none=True)}}}

    @job(
        name=IMPORT_JOB,
        config=to_op,
        executor_def=in_process_executor,
        tags={"dataplat/project": project.name, TAG_ACTION: "import"},
        description=f"Import a file as a dataset of project {project.name!r}, as `dataplat dataset import` does: "
        f"`path` in the drop zone ({_shown(project, dropzone_folder(root))}/), or `connector` + `path` on a file connector.",
    )
    def import_file_job_():
        import_file()

    return import_file_job_


def import_into_dataset(context: OpExecutionContext, project: Project, root: UPath, config: ImportFileConfig) -> None:
    from dataplat_dagster.catalog.registry import Registry, project_catalog
    from dataplat_dagster.datasets.assets import materialize_dataset
    from dataplat_dagster.ingest.detect import detect_dialect
    from dataplat_dagster.ingest.dialect import CsvOverrides
    from dataplat_dagster.datasets.upload import stage_upload
    from dataplat_dagster.workspace import check_name

    name = config.name or sanitized_name(config.path)
    check_name("dataset", name)
    options = _csv_options(config)
    catalog = project_catalog(project)
    existing = catalog.datasets.get(name)
    if existing and not config.replace:
        raise DataplatError(
            f"A dataset named {name!r} already exists in project {project.name!r}. Choose another name, or set "
            "replace: true to import this file as its new version."
        )
    if existing and existing.origin != "file_upload":
        raise DataplatError(
            f"Dataset {name!r} comes from a {existing.origin.replace('_', ' ')}, not a file upload; "
            "it cannot be replaced by a file. Import the file under another name."
        )
    store, registry = storage.DatasetStore(root, name), Registry(root)
    key = AssetKey(dataset_key(project.name, name))
    with _local_file(project, catalog, root, config) as (local, label):
        if is_image_zip(local):
            import_into_image_folder(context, project, root, name, local, label, config.replace)
            return
        try:
            dialect = detect_dialect(local, CsvOverrides(**options.model_dump()))
        except DataplatError as error:
            raise DataplatError(str(error).replace(str(local), label)) from None
        upload = stage_upload(store, local)
    registered = False
    try:
        # Create-if-absent: another import of the same name, from any host, may have been first.
        if not existing and not (registered := registry.add_dataset(name, DatasetSpec(origin="file_upload"))):
            raise DataplatError(f"A dataset named {name!r} was just created by another import; choose another name.")
        _report_planned(context, key)
    except BaseException:
        lifecycle.remove_upload(store, upload)
        if registered:
            registry.remove_dataset(name)
            store.delete()
        raise
    run_config = DatasetImportConfig(
        upload=upload, dialect=json.dumps(dialect.to_json()), profile=config.profile, **options.model_dump(exclude_none=True)
    )
    # A failed new import is unregistered, as when the CLI waits for its run.
    tags = {lifecycle.TAG_DATASET: name, lifecycle.TAG_UNREGISTER: "false" if existing else "true"}
    try:
        metadata = materialize_dataset(context.instance, project, store, existing or DatasetSpec(), key, run_config, tags, context.log,
                                       run_id=context.run_id)
    except BaseException:
        context.log.error(
            f"Import of {label} as {name!r} failed: "
            + ("the previous version of the dataset is unchanged." if existing else "nothing was registered.")
        )
        raise
    context.log_event(AssetMaterialization(asset_key=key, metadata=metadata, description=f"Imported from {label}."))
    rows, columns = metadata["dagster/row_count"].value, metadata["columns_count"].value
    context.log.info(f"Dataset {name!r} is ready: {rows:,} rows × {columns} columns.")
    from dataplat_dagster.quality.checks import log_evaluations

    log_evaluations(context, project.name, store.root, name, project_catalog(project).dataset_checks(name))
    if not existing:
        _reload_code_location(context, project)


def is_image_zip(path: Path) -> bool:
    """A zip whose files are mostly images (by their names): an image folder's upload."""
    import zipfile

    from dataplat_dagster.ingest.sources import IMAGE_SUFFIXES

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        files = [name for name in archive.namelist() if not name.endswith("/") and not name.startswith("__MACOSX/")]
    return bool(files) and 2 * sum(name.lower().endswith(IMAGE_SUFFIXES) for name in files) > len(files)


def import_into_image_folder(context: OpExecutionContext, project: Project, root: UPath, name: str, local: Path, label: str,
                             replace: bool) -> None:
    """A zip of images goes in as an image folder, as `dataplat image-folder import` does."""
    from dataplat_dagster.catalog.models import ImageFolderSpec
    from dataplat_dagster.catalog.registry import Registry, project_catalog
    from dataplat_dagster.datasets.upload import stage_upload
    from dataplat_dagster.images.assets import ImageFolderImportConfig, materialize_image_folder
    from dataplat_dagster.images.store import image_folder_store
    from dataplat_dagster.keys import image_folder_key

    existing = project_catalog(project).image_folders.get(name)
    if existing and not replace:
        raise DataplatError(
            f"An image folder named {name!r} already exists in project {project.name!r}. Choose another name, or set "
            "replace: true to import this zip as its new version."
        )
    store, registry = image_folder_store(root, name), Registry(root)
    key = AssetKey(image_folder_key(project.name, name))
    upload = stage_upload(store, local)
    try:
        if not existing and not registry.add_image_folder(name, ImageFolderSpec()):
            raise DataplatError(f"An image folder named {name!r} was just created by another import; choose another name.")
        _report_planned(context, key)
    except BaseException:
        lifecycle.remove_upload(store, upload)
        raise
    tags = {lifecycle.TAG_UNREGISTER: "false" if existing else "true"}
    metadata = materialize_image_folder(context, project, store, key, existing or ImageFolderSpec(),
                                        ImageFolderImportConfig(upload=upload), tags=tags)
    context.log_event(AssetMaterialization(asset_key=key, metadata=metadata, description=f"Imported from {label}."))
    context.log.info(f"Image folder {name!r} is ready: {metadata['images'].value:,} images.")
    if not existing:
        _reload_code_location(context, project)


def _csv_options(config: ImportFileConfig) -> CsvOptions:
    from pydantic import ValidationError

    try:
        return CsvOptions(**{field: getattr(config, field) for field in CsvOptions.model_fields})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise DataplatError(f"Invalid CSV options: {problems}.") from None


@contextmanager
def _local_file(project: Project, catalog, root: UPath, config: ImportFileConfig) -> Iterator[tuple[Path, str]]:
    """The file to import as a local path, and how messages name it."""
    if config.connector:
        with _connector_file(project, catalog, config.connector, config.path) as found:
            yield found
        return
    relative = dropzone_path(config.path)
    folder = dropzone_folder(root)
    file = folder / relative
    if storage.is_local(folder):
        real, zone = Path(file).resolve(), Path(folder).resolve()
        if not real.is_relative_to(zone):  # a link out of the drop zone
            raise DataplatError(f"The path {config.path!r} leads out of the drop zone (a link); put the file itself there.")
    if not file.is_file():
        raise DataplatError(
            f"There is no file {relative!r} in the drop zone of project {project.name!r} "
            f"({_shown(project, folder)}/). Put the file there, or give its path relative to the drop zone."
        )
    with storage.local_copy(file) as local:
        yield Path(local), relative


@contextmanager
def _connector_file(project: Project, catalog, name: str, path: str) -> Iterator[tuple[Path, str]]:
    from dataplat_dagster.catalog.models import find_entry
    from dataplat_dagster.connectors.registry import open_connector
    from dataplat_dagster.datasources.reading import fetch_file

    spec = find_entry(catalog.connectors, "connector", name, project.name)
    if spec.type not in FILE_CONNECTOR_TYPES:
        raise DataplatError(
            f"Connector {name!r} is a {spec.type} connector: files are read from ftp, sftp, s3 and gcs connectors."
        )
    with open_connector(name, spec, project.dir) as connector, tempfile.TemporaryDirectory(prefix="dataplat-import-") as tmp:
        fetched = fetch_file(connector, SimpleNamespace(path=path), Path(tmp))
        yield fetched.local, path


def _report_planned(context: OpExecutionContext, key: AssetKey) -> None:
    """Record that this run materializes ``key``, as Dagster does for the assets of a run it
    creates: the asset's last run is this one (its status: parsing, failed) from now on."""
    from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent

    step = context.get_step_execution_context().step.key
    event = DagsterEvent.build_asset_materialization_planned_event(context.job_name, step, AssetMaterializationPlannedData(key))
    context.instance.report_dagster_event(event, run_id=context.run_id)


def _reload_code_location(context: OpExecutionContext, project: Project) -> None:
    """Ask a running webserver to reload the location, so the UI shows the new dataset's
    asset (as the CLI does after registering one); nothing to do without one."""
    from dataplat_dagster import webserver

    workspace_root = next((folder for folder in project.dir.parents if (folder / "workspace.yaml").is_file()), None)
    if workspace_root is None:
        return
    try:
        warning = webserver.notify_catalog_changed(workspace_root, project.name)
    except Exception as error:  # the import itself succeeded
        warning = str(error)
    if warning:
        context.log.warning(f"{warning} Reload the code location to see the new dataset's asset.")


def _shown(project: Project, path: UPath) -> str:
    """A storage path as the UI may show it: relative to the project, or its URL."""
    return storage.catalog_reference(project.dir, path)


# --- the sensor ------------------------------------------------------------------------


@dataclass(frozen=True)
class DroppedFile:
    path: str  # relative to the drop zone, "/"-separated
    version: str  # size@mtime, and #etag where the store has one


def list_dropzone(folder: UPath) -> list[DroppedFile]:
    """The files under the drop zone, recursively; hidden files and folders (an upload in
    progress, ``.DS_Store``) left out."""
    from dataplat_dagster.connectors.filestore import FileInfo, is_temporary

    if not folder.exists():
        return []
    base = folder.path.rstrip("/")
    found = []
    for full, info in sorted(folder.fs.find(base, detail=True).items()):
        full = full.rstrip("/")
        if info.get("type", "file") != "file" or not full.startswith(base + "/"):
            continue
        relative = full[len(base) + 1 :]
        if any(part.startswith(".") for part in relative.split("/")) or is_temporary(relative):
            continue
        etag = info.get("ETag") or info.get("etag") or info.get("generation")
        version = FileInfo(relative, int(info.get("size") or 0), _modified(info), str(etag).strip('"') if etag else None).version
        found.append(DroppedFile(relative, version))
    return found


def _modified(info: dict) -> datetime | None:
    value = info.get("mtime", info.get("LastModified", info.get("updated")))
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
        except ValueError:
            return None
    return None


def _read_cursor(text: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """The versions seen on the last look, and the versions imported."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    return dict(data.get("seen") or {}), dict(data.get("imported") or {})


def dropzone_sensor(project: Project, root: UPath, import_job: JobDefinition, settings: DropzoneSettings | None) -> SensorDefinition:
    folder = dropzone_folder(root)
    shown = _shown(project, folder)
    interval = (settings or DropzoneSettings()).interval_s

    @sensor(
        name=sensor_name(project.name),
        job=import_job,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.STOPPED,
        description=f"Import each new file of the drop zone ({shown}/) as a dataset (a zip of images as an image folder) once it stops changing, "
        f"looking every {interval} s; a taken name is replaced only with `dropzone: {{replace: true}}` in dataplat.yaml.",
    )
    def _dropzone(context: SensorEvaluationContext):
        from dataplat_dagster.catalog.registry import project_catalog

        seen, imported = _read_cursor(context.cursor)
        files = list_dropzone(folder)
        catalog = project_catalog(project)
        replace = (catalog.dropzone or DropzoneSettings()).replace
        now_seen, now_imported, requests, notes, names = {}, {}, [], [], set()
        for file in files:
            if imported.get(file.path) == file.version:
                now_imported[file.path] = file.version
                continue
            now_seen[file.path] = file.version
            if seen.get(file.path) != file.version:
                notes.append(f"{file.path} is new or changed ({file.version}): imported once it stays the same until the next look.")
                continue
            name = sanitized_name(file.path)
            # A zip may hold images: then it replaces an image folder of that name (see import_into_image_folder).
            existing = catalog.datasets.get(name) or (catalog.image_folders.get(name) if file.path.lower().endswith(".zip") else None)
            why = _why_not(context, name, existing, replace, names)
            if why:
                notes.append(f"{file.path}: {why}")
                continue
            names.add(name)
            del now_seen[file.path]
            now_imported[file.path] = file.version
            requests.append(
                RunRequest(
                    run_key=f"{file.path}:{file.version}",
                    run_config={"path": file.path, "name": name, "replace": existing is not None},
                    tags={lifecycle.TAG_DATASET: name, TAG_DROPZONE_FILE: file.path, TAG_SOURCE_VERSION: file.version},
                )
            )
        cursor = json.dumps({"seen": now_seen, "imported": now_imported}, sort_keys=True)
        if requests:
            for note in notes:
                context.log.info(note)
            return SensorResult(run_requests=requests, cursor=cursor)
        if not files:
            reason = f"No files in the drop zone ({shown}/)."
        elif not notes:
            reason = f"Nothing new in the drop zone ({shown}/): {_files(len(now_imported))} imported already."
        else:
            reason = " ".join(notes)
        return SensorResult(skip_reason=reason, cursor=cursor)

    return _dropzone


def _why_not(context, name: str, existing: DatasetSpec | None, replace: bool, names: set[str]) -> str | None:
    """Why a file that stopped changing is not imported now, or None."""
    if name in names:
        return f"another file of this look goes to dataset {name!r} first; this one waits for the next look."
    if existing is not None and existing.origin != "file_upload":
        return f"dataset {name!r} comes from a {existing.origin.replace('_', ' ')} and cannot be replaced by a file; rename the file."
    if existing is not None and not replace:
        return (
            f"dataset {name!r} already exists; rename the file, or set `dropzone: {{replace: true}}` in dataplat.yaml "
            "to import dropped files as new versions of their datasets."
        )
    from dataplat_dagster.runs import IN_FLIGHT

    running = context.instance.get_runs(
        filters=RunsFilter(job_name=IMPORT_JOB, tags={lifecycle.TAG_DATASET: name}, statuses=list(IN_FLIGHT)), limit=1
    )
    if running:
        return f"an import into dataset {name!r} is running (run {running[0].run_id}); waiting for it to finish."
    return None


def _files(count: int) -> str:
    return f"{count} file" + ("" if count == 1 else "s")
