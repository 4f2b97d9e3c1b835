"""The embeddings status that ``dataset list`` and ``image-folder list`` show: ``none``,
``computing``, ``ready``, ``stale`` (computed from an older version of their dataset or
image folder than the current one) or ``failed: reason``.

As a dataset's status (``datasets.status``): from the project's state first, the version's
manifest (the input version it was computed from) and the run mark; the Dagster instance
answers only where those do not settle it.
"""

from __future__ import annotations

from dataplat_dagster.datasets import run_marks
from dataplat_dagster.datasets.status import InstanceGetter, asset_entries, remember_failure, run_status
from dataplat_dagster.datasets.storage import project_root
from dataplat_dagster.embeddings.layout import INPUT_VERSION_METADATA, embeddings_store, input_store
from dataplat_dagster.keys import embeddings_key
from dataplat_dagster.workspace import Project

def embeddings_status(instance: InstanceGetter, project: Project, catalog, names: list[str]) -> dict[str, str]:
    """The status of each of ``names``; ``instance`` is called only where it is needed."""
    found = {name: "none" for name in names}
    wanted = [name for name in names if name in catalog.embeddings]
    if not wanted:
        return found
    root = project_root(project.dir, catalog)
    unsettled = []
    for name in wanted:
        status = _recorded(root, name, catalog.embeddings[name])
        if status is None:
            unsettled.append(name)
        else:
            found[name] = status
    if unsettled:
        found.update(_from_instance(instance(), project, root, catalog, unsettled))
    return found


def _recorded(root, name: str, spec) -> str | None:
    store = embeddings_store(root, name)
    version = store.current()
    mark = run_marks.unsettled_mark(store, version)
    if mark is not None:
        return f"failed: {mark['error']}" if mark["state"] == "failed" and mark.get("error") else None
    if version is None:
        return None
    return _ready_or_stale(root, name, spec, version.state.get("input_version"))


def _ready_or_stale(root, name: str, spec, input_version: str | None) -> str:
    current = input_store(root, name, spec).current()
    return "stale" if current is not None and input_version is not None and input_version != current.id else "ready"


def _from_instance(instance, project: Project, root, catalog, names: list[str]) -> dict[str, str]:
    from dagster import AssetKey

    entries = asset_entries(instance, {name: AssetKey(embeddings_key(project.name, name)) for name in names})
    found = {}
    for name in names:
        entry = entries[name]
        materialization = entry.last_materialization if entry else None
        status, error, run_id = run_status(instance, entry, materialization)
        remember_failure(embeddings_store(root, name), status, run_id, error)
        if status == "parsing":
            found[name] = "computing"
        elif status == "failed":
            found[name] = f"failed: {error}" if error else "failed"
        elif status == "ready":
            value = materialization.asset_materialization.metadata.get(INPUT_VERSION_METADATA)
            found[name] = _ready_or_stale(root, name, catalog.embeddings[name], value.value if value is not None else None)
        else:
            found[name] = "none"
    return found
