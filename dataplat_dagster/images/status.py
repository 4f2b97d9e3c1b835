"""Each image folder's status, images, labels and size, for ``image-folder list`` and
``image-folder show``, as ``datasets.status`` gives a dataset's: from the project's state
first (the current version's pointer and summary, and the run mark of ``run_marks``),
which needs neither Dagster's import nor its instance. The instance answers only where that
does not settle a folder (a run marked as started and not accounted for yet, a folder never
materialized, a version without its summary), and a failure it tells of is written back as
the run's mark, so that it is asked once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from dataplat_dagster.catalog import ProjectCatalog
from dataplat_dagster.catalog.models import ImageFolderSpec
from dataplat_dagster.datasets import run_marks
from dataplat_dagster.datasets.status import (
    InstanceGetter,
    asset_entries,
    materialized_at,
    metadata_value,
    remember_failure,
    run_status,
)
from dataplat_dagster.datasets.storage import DatasetStore, project_root
from dataplat_dagster.images.store import SUMMARY_FILE, image_folder_store
from dataplat_dagster.images.summary import named_label_count
from dataplat_dagster.keys import image_folder_key
from dataplat_dagster.workspace import Project


@dataclass(frozen=True)
class ImageFolderInfo:
    name: str
    status: str
    error: str | None
    images: int | None
    labels: int | None
    size_bytes: int | None
    created_at: str
    materialized_at: str | None
    run_id: str | None
    asset_key: list[str]
    description: str | None
    embeddings: str = "none"  # none, computing, ready, stale, or failed: reason

    def to_json(self) -> dict:
        return asdict(self)


def image_folder_infos(instance: InstanceGetter, project: Project, catalog: ProjectCatalog,
                       names: list[str] | None = None) -> list[ImageFolderInfo]:
    """The catalog's image folders (or only ``names``), in catalog order. ``instance`` (the
    CLI's, made on first call) is called only where the recorded state does not settle one."""
    from dataplat_dagster.embeddings.status import embeddings_status

    folders = catalog.image_folders
    wanted = [name for name in folders if names is None or name in names]
    root = project_root(project.dir, catalog)
    stores = {name: image_folder_store(root, name) for name in wanted}
    found = {name: _recorded(project, name, folders[name], stores[name]) for name in wanted}
    unsettled = [name for name, info in found.items() if info is None]
    if unsettled:
        found.update(_from_instance(instance(), project, folders, stores, unsettled))
    embeddings = embeddings_status(instance, project, catalog, wanted)
    return [replace(found[name], embeddings=embeddings[name]) for name in wanted]


def _recorded(project: Project, name: str, spec: ImageFolderSpec, store: DatasetStore) -> ImageFolderInfo | None:
    version = store.current()
    run = run_marks.recorded_run(store, version)
    if run is None:
        return None
    summary = version.read_json(SUMMARY_FILE) if version is not None else {}
    if summary is None:
        return None  # a version without its summary
    return ImageFolderInfo(
        name=name, status=run.status, error=run.error, images=summary.get("images"),
        labels=named_label_count(summary) if "labels" in summary else None,
        size_bytes=(summary.get("bytes") or {}).get("total"),
        created_at=spec.created_at.isoformat(timespec="seconds"), materialized_at=run.materialized_at,
        run_id=run.run_id, asset_key=image_folder_key(project.name, name), description=spec.description,
    )


def _from_instance(instance, project: Project, folders: dict, stores: dict[str, DatasetStore],
                   names: list[str]) -> dict[str, ImageFolderInfo]:
    from dagster import AssetKey

    keys = {name: AssetKey(image_folder_key(project.name, name)) for name in names}
    entries = asset_entries(instance, keys)
    infos = {}
    for name in names:
        entry = entries[name]
        materialization = entry.last_materialization if entry else None
        metadata = materialization.asset_materialization.metadata if materialization else {}
        status, error, run_id = run_status(instance, entry, materialization)
        infos[name] = ImageFolderInfo(
            name=name, status=status, error=error, images=metadata_value(metadata, "images"),
            labels=metadata_value(metadata, "labels"), size_bytes=metadata_value(metadata, "size_bytes"),
            created_at=folders[name].created_at.isoformat(timespec="seconds"), materialized_at=materialized_at(materialization),
            run_id=run_id, asset_key=list(keys[name].path), description=folders[name].description,
        )
        remember_failure(stores[name], status, run_id, error)
    return infos
