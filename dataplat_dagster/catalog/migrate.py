"""The one-time move of what earlier versions wrote into ``dataplat.yaml`` at run time.

Earlier versions registered every imported dataset, and every pipeline dataset a run
wrote, in the catalog file itself. Now the catalog file holds declarations only, and what
is created at run time lives in the registry under the storage root (see ``registry``).
``dataplat project migrate`` moves those entries: a file upload whose raw copy lies in the
dataset's own storage folder (it was copied there by an import), and a pipeline dataset
registered by a run. Everything else stays declared, and works as before.
"""

from __future__ import annotations

from dataplat_dagster.catalog.models import DatasetSpec, FileSource
from dataplat_dagster.catalog.registry import Registry
from dataplat_dagster.catalog.store import edit_catalog
from dataplat_dagster.datasets.storage import DatasetStore, catalog_reference, project_root
from dataplat_dagster.workspace import Project

# What the earlier pipeline IO manager wrote as the description of the datasets it registered.
REGISTERED_BY_A_RUN = "Written by a pipeline."


def migrate_project(project: Project) -> list[str]:
    """Move the run-time entries of the catalog file into the registry; returns their names."""
    moved = []
    with edit_catalog(project.catalog_path) as catalog:
        root = project_root(project.dir, catalog)
        registry = Registry(root)
        for name, spec in list(catalog.datasets.items()):
            entry = _run_time_entry(project, DatasetStore(root, name), spec)
            if entry is None:
                continue
            if registry.dataset(name) is None:
                registry.add_dataset(name, entry)
            del catalog.datasets[name]
            moved.append(name)
    return moved


def _run_time_entry(project: Project, store: DatasetStore, spec: DatasetSpec) -> DatasetSpec | None:
    """The registry's form of ``spec`` if an earlier version created it at run time, else None."""
    if spec.origin in ("pipeline_output", "pipeline_intermediate") and spec.description == REGISTERED_BY_A_RUN:
        return spec
    if spec.origin != "file_upload" or spec.source is None or spec.source.stored:
        return None
    folder = catalog_reference(project.dir, store.folder) + "/"
    if not spec.source.path.startswith(folder + "raw/"):
        return None
    # The raw copy, named from the dataset's folder: it follows the dataset through renames.
    source = FileSource(path=spec.source.path[len(folder):], options=spec.source.options, stored=True)
    return spec.model_copy(update={"source": source})
