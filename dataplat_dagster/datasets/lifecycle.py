"""What a run of a dataset's asset does besides writing the data: the bookkeeping of an
import or snapshot, inside the run itself, so that it happens whoever launched the run (the
CLI, the UI's launchpad, a re-execution, a schedule or a sensor) and whether or not the
process that asked for it is still there.

- The raw file of an uploaded dataset's current version is recorded in its
  materialization's metadata (``dataplat/upload``, a path inside the dataset's storage
  folder, so it follows a rename). A new upload is staged under ``raw/<id>/`` before the
  run; on success the run records it and removes the previous raw copy, on failure it
  removes the staged copy and the previous version stays current.
- A new dataset whose first run fails is unregistered when the run was asked to
  (``dataplat/unregister_on_failure``: the CLI waited and says so), else it stays listed
  as ``failed`` with the reason.

The same functions run in the CLI after a run it waited for failed before its step
started (the code location could not load, say): they are idempotent.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster import AssetKey, DagsterInstance

from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.errors import InputError

UPLOAD_METADATA = "dataplat/upload"
OPTIONS_METADATA = "dataplat/csv_options"
TAG_DATASET = "dataplat/dataset"
TAG_UNREGISTER = "dataplat/unregister_on_failure"


def current_upload(instance: DagsterInstance, key: AssetKey) -> tuple[str | None, dict]:
    """The raw file of the dataset's current version and the CSV options it was read with."""
    event = instance.get_latest_materialization_event(key)
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    upload = metadata.get(UPLOAD_METADATA)
    options = metadata.get(OPTIONS_METADATA)
    return (upload.value if upload else None), (json.loads(options.value) if options else {})


def staged_upload_path(store: DatasetStore, upload: str):
    """A staged upload is a file under the dataset's own ``raw/`` folder, nowhere else: run
    config can name no other file of the run's host, not even through a link."""
    parts = upload.split("/")
    if len(parts) != 3 or parts[0] != storage.RAW_FOLDER or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise InputError(
            f"The run's upload {upload!r} is not an upload of dataset {store.name!r}: it must be raw/<id>/<file name>, "
            "a file staged in the dataset's storage folder by `dataplat dataset import`. Leave `upload` unset to "
            "parse the dataset's current raw file again, or import the file with `dataplat dataset import`."
        )
    path = store.path(upload)
    if storage.is_local(path) and not Path(path).resolve().is_relative_to(Path(store.path(storage.RAW_FOLDER)).resolve()):
        raise InputError(
            f"The run's upload {upload!r} leads out of dataset {store.name!r}'s raw folder (a link); "
            "import the file itself with `dataplat dataset import`."
        )
    return path


def remove_upload(store: DatasetStore, upload: str | None) -> None:
    """Remove one raw copy (its ``raw/<id>/`` folder); a run config's ``upload`` that names
    no upload of this dataset names nothing to remove."""
    if not upload:
        return
    try:
        folder = staged_upload_path(store, upload).parent
    except InputError:
        return
    if folder.exists():
        folder.fs.rm(folder.path, recursive=True)


def after_failure(instance: DagsterInstance, registry, store: DatasetStore, key: AssetKey, tags: dict, upload: str | None) -> None:
    """A run of the dataset failed: drop what it staged; unregister a new dataset if asked."""
    current, _ = current_upload(instance, key)
    if upload and upload != current:
        remove_upload(store, upload)
    never_materialized = instance.get_latest_materialization_event(key) is None
    if never_materialized and tags.get(TAG_UNREGISTER) == "true" and registry.dataset(store.name) is not None:
        registry.remove_dataset(store.name)
        store.delete()


def carry_materialization(instance: DagsterInstance, old_key: AssetKey, new_key: AssetKey, updates: dict | None = None) -> None:
    """After a rename (a dataset, an image folder, their embeddings), report the old key's last
    materialization again under the new key, with ``updates`` over its metadata (the moved
    files' addresses) and ``renamed_from``; the old key's history stays. Nothing is reported
    twice when the command that was interrupted reported it already."""
    from dagster import AssetMaterialization, MetadataValue

    latest = instance.get_latest_materialization_event(old_key)
    if latest is None:
        return
    carried = instance.get_latest_materialization_event(new_key)
    if carried is not None and carried.timestamp >= latest.timestamp:
        return
    metadata = {**latest.asset_materialization.metadata, **(updates or {}),
                "renamed_from": MetadataValue.text("/".join(old_key.path))}
    instance.report_runless_asset_event(AssetMaterialization(asset_key=new_key, metadata=metadata))
