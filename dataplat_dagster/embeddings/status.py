"""The embeddings status that ``dataset list`` and ``image-folder list`` show.

It comes from the Dagster instance, as a dataset's status does (a run in flight, a failed
run, the last materialization), and from the input's current version: embeddings computed
from an older version of their dataset or image folder are ``stale``.
"""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance

from dataplat_dagster.datasets.status import run_status
from dataplat_dagster.datasets.storage import project_root
from dataplat_dagster.embeddings.assets import INPUT_VERSION_METADATA, embeddings_key
from dataplat_dagster.embeddings.layout import input_store
from dataplat_dagster.workspace import Project


def embeddings_status(instance: DagsterInstance, project: Project, catalog, names: list[str]) -> dict[str, str]:
    """``none``, ``computing``, ``ready``, ``stale`` or ``failed: reason`` for each of ``names``."""
    found = {name: "none" for name in names}
    wanted = [name for name in names if name in catalog.embeddings]
    if not wanted:
        return found
    keys = {name: AssetKey(embeddings_key(project.name, name)) for name in wanted}
    records = {record.asset_entry.asset_key: record.asset_entry for record in instance.get_asset_records(list(keys.values()))}
    root = project_root(project.dir, catalog)
    for name in wanted:
        entry = records.get(keys[name])
        materialization = entry.last_materialization if entry else None
        status, error, _ = run_status(instance, entry, materialization)
        if status == "parsing":
            found[name] = "computing"
        elif status == "failed":
            found[name] = f"failed: {error}" if error else "failed"
        elif status == "ready":
            value = materialization.asset_materialization.metadata.get(INPUT_VERSION_METADATA)
            current = input_store(root, name, catalog.embeddings[name]).current()
            stale = current is not None and value is not None and value.value != current.id
            found[name] = "stale" if stale else "ready"
    return found
