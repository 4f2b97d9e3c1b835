"""Which run last set out to write a stored asset (a dataset, an image folder, embeddings):
one small object, ``run.json``, in the asset's storage folder.

The read-only commands (``dataset list|show``, ``check list``, ``image-folder list|show``)
take what they show from the storage root alone, the same from every process of a
deployment, and ask the Dagster instance (a second of imports and storage set-up) only where
the recorded state does not settle it. The current version's manifest and pointer say what
is stored and which run made it current; the mark says whether a later run set out to
change it:

- the CLI writes ``started`` when it submits a run, and the asset's own op does when it
  starts (so runs launched from the UI, a schedule or a sensor are marked too);
- a mark of the run that made the current version current, or older than that version, is
  settled: the version is the last word;
- ``failed`` (with the reason) is written by whoever learns it, from the instance, once;
- ``started`` and newer than the current version is the one case the instance is asked
  about: still in flight, or failed (then written back as ``failed``).

A run that no op of ours starts in (a pipeline's own asset that fails, a step skipped after
a blocking check) is not marked: its dataset stays ``ready`` with the data it had, and the
UI shows the failed run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from dataplat_dagster.datasets.storage import DatasetStore, project_root, write_bytes
from dataplat_dagster.keys import DATASETS, EMBEDDINGS, IMAGE_FOLDERS

RUN_FILE = "run.json"
STORED_SECTIONS = (DATASETS, EMBEDDINGS, IMAGE_FOLDERS)


def mark_started(store: DatasetStore, run_id: str) -> None:
    """A run that will write ``store`` was submitted, or its op started. The first mark of a
    run keeps its time, so that a version the run publishes is never older than its mark."""
    mark = read_mark(store)
    if mark is not None and mark["run_id"] == run_id:
        return
    _write(store, {"run_id": run_id, "state": "started", "at": _now()})


def mark_submitted(project, asset_paths: list[list[str]], run_id: str) -> None:
    """Mark the stored assets among ``asset_paths`` (asset keys, as lists) that a run submitted
    from here will write. Only those with a folder already: the run may have started, failed
    and removed a new dataset's folder by now, and a mark must not bring it back (a new
    dataset's status then comes from the instance until its op marks it)."""
    from dataplat_dagster.catalog.registry import project_catalog

    stored = [path for path in asset_paths if len(path) == 3 and path[0] == project.name and path[1] in STORED_SECTIONS]
    if stored:
        root = project_root(project.dir, project_catalog(project))
        for _, section, name in stored:
            store = DatasetStore(root, name, section)
            if store.folder.exists():
                mark_started(store, run_id)


def mark_failed(store: DatasetStore, run_id: str, error: str | None) -> None:
    mark = read_mark(store)
    at = mark["at"] if mark is not None and mark["run_id"] == run_id else _now()
    _write(store, {"run_id": run_id, "state": "failed", "error": error, "at": at})


def read_mark(store: DatasetStore) -> dict | None:
    try:
        return json.loads(store.path(RUN_FILE).read_text())
    except FileNotFoundError:
        return None


def unsettled_mark(store: DatasetStore, current_version) -> dict | None:
    """The mark of a run that the current version does not account for, or None: a run
    that made no version current yet (in flight, or failed)."""
    mark = read_mark(store)
    if mark is None:
        return None
    if current_version is None:
        return mark
    run_id, at = current_version.made_current
    if mark["run_id"] == run_id or (at is not None and datetime.fromisoformat(mark["at"]) <= at):
        return None
    return mark


@dataclass(frozen=True)
class RecordedRun:
    """How the last run of a stored asset went, as its recorded state says: ``failed`` (the
    mark's run and error), else ``ready`` (the run that made the current version current).
    ``at``: when the current version was made current, None without one."""

    status: str
    error: str | None
    run_id: str | None
    at: datetime | None

    @property
    def materialized_at(self) -> str | None:
        return self.at.astimezone(timezone.utc).isoformat(timespec="seconds") if self.at else None


def recorded_run(store: DatasetStore, current_version) -> RecordedRun | None:
    """The recorded state's word on ``store`` (``current_version``: its current version, or
    None), or None where it does not settle it: a run started and not accounted for (in
    flight, or failed without a word yet), or no version and no mark (never materialized,
    or by a run nothing here marked)."""
    mark = unsettled_mark(store, current_version)
    if (mark is not None and mark["state"] != "failed") or (current_version is None and mark is None):
        return None
    made_by, at = current_version.made_current if current_version is not None else (None, None)
    if mark is not None:
        return RecordedRun("failed", mark.get("error"), mark["run_id"], at)
    return RecordedRun("ready", None, made_by, at)


def _write(store: DatasetStore, mark: dict) -> None:
    write_bytes(store.path(RUN_FILE), json.dumps(mark).encode())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
