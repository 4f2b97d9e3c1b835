"""What users create at run time, kept beside the data under the project's storage root.

Declared configuration (connectors, datasources, exporters, declared datasets) is the
project's ``dataplat.yaml``: reviewed and committed, never written by a run. What the CLI
and runs create (imported datasets, snapshots, pipeline datasets, the datasets exported
through each exporter) lives here instead, so that every process of a deployment (the
CLI, the code server, the daemon, each run, on any machine) reads and writes the same
entries through the storage they already share.

One object per entry, never rewritten in place: a dataset is ``datasets/<name>.json``,
created with a create-if-absent write (two hosts importing the same name never both get
it); an export edge is the empty object ``exports/<exporter>/<dataset>``. What changes
with each version of a dataset (its current raw file) is in the Dagster instance, in
the materialization's metadata.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel
from upath import UPath

from dataplat_dagster.catalog.models import CheckSpec, DatasetSpec, EmbeddingsSpec, ImageFolderSpec, ProjectCatalog
from dataplat_dagster.datasets.storage import write_bytes, write_exclusive

REGISTRY_FOLDER = "_registry"
# Renames and deletes under way (``datasets.manage``): one record each, removed when done.
PENDING_FOLDER = "pending"


class Registry:
    def __init__(self, root: UPath):
        self.folder = root / REGISTRY_FOLDER

    def pending(self) -> list[UPath]:
        """The records of the renames and deletes that a command left half-done (``datasets.manage``)."""
        folder = self.folder / PENDING_FOLDER
        return sorted(record for record in folder.iterdir() if record.name.endswith(".json")) if folder.exists() else []

    # Datasets and image folders: one JSON object per entry, in a folder of its own per section.

    def _entry_path(self, section: str, name: str) -> UPath:
        return self.folder / section / f"{name}.json"

    def _entries(self, section: str, model: type[BaseModel]) -> dict:
        folder = self.folder / section
        if not folder.exists():
            return {}
        entries = [path.path for path in folder.iterdir() if path.name.endswith(".json") and not path.name.startswith(".")]
        # One batch: object stores fetch the entries concurrently (a code location with 300
        # datasets on S3 loaded in 5.7 s reading them one by one). An entry removed while
        # listing is left out.
        contents = folder.fs.cat(entries, on_error="omit") if entries else {}
        found = {key.rsplit("/", 1)[-1][: -len(".json")]: model.model_validate_json(text) for key, text in contents.items()}
        return dict(sorted(found.items(), key=lambda item: item[1].created_at))

    def _entry(self, section: str, model: type[BaseModel], name: str):
        try:
            return model.model_validate_json(self._entry_path(section, name).read_text())
        except FileNotFoundError:
            return None

    def _add(self, section: str, name: str, spec: BaseModel) -> bool:
        return write_exclusive(self._entry_path(section, name), spec.model_dump_json(exclude_none=True).encode())

    def _remove(self, section: str, name: str) -> None:
        path = self._entry_path(section, name)
        if path.exists():
            path.unlink()

    def datasets(self) -> dict[str, DatasetSpec]:
        """The registered datasets, oldest first."""
        return self._entries("datasets", DatasetSpec)

    def dataset(self, name: str) -> DatasetSpec | None:
        return self._entry("datasets", DatasetSpec, name)

    def add_dataset(self, name: str, spec: DatasetSpec) -> bool:
        """Register ``name``; ``False`` if another process registered it first."""
        return self._add("datasets", name, spec)

    def remove_dataset(self, name: str) -> None:
        self._remove("datasets", name)
        for exporter in self.exports():
            marker = self.folder / "exports" / exporter / name
            if marker.exists():
                marker.unlink()

    def image_folders(self) -> dict[str, ImageFolderSpec]:
        """The imported image folders, oldest first."""
        return self._entries("image_folders", ImageFolderSpec)

    def image_folder(self, name: str) -> ImageFolderSpec | None:
        return self._entry("image_folders", ImageFolderSpec, name)

    def add_image_folder(self, name: str, spec: ImageFolderSpec) -> bool:
        """Register ``name``; ``False`` if another process registered it first."""
        return self._add("image_folders", name, spec)

    def remove_image_folder(self, name: str) -> None:
        self._remove("image_folders", name)

    def embeddings(self) -> dict[str, EmbeddingsSpec]:
        """The computed embeddings, oldest first, with the options they were last computed with."""
        return self._entries("embeddings", EmbeddingsSpec)

    def embedding(self, name: str) -> EmbeddingsSpec | None:
        return self._entry("embeddings", EmbeddingsSpec, name)

    def save_embeddings(self, name: str, spec: EmbeddingsSpec) -> None:
        """Register the embeddings of ``name``, or record the options they are now computed with
        (the last writer wins: each compute says how the next run from the UI computes them)."""
        write_bytes(self._entry_path("embeddings", name), spec.model_dump_json(exclude_none=True).encode())

    def remove_embeddings(self, name: str) -> None:
        self._remove("embeddings", name)

    # Checks added with `dataplat check add`: one object per check, checks/<dataset>/<name>.json.

    def checks(self) -> dict[str, list[CheckSpec]]:
        """The added checks of each dataset, oldest first, each with its name set."""
        folder = self.folder / "checks"
        if not folder.exists():
            return {}
        found = {dataset.name: self.dataset_checks(dataset.name) for dataset in folder.iterdir() if dataset.is_dir()}
        return {dataset: specs for dataset, specs in found.items() if specs}

    def dataset_checks(self, dataset: str) -> list[CheckSpec]:
        """The added checks of one dataset, oldest first, each with its name set."""
        return [spec.model_copy(update={"name": name}) for name, spec in self._entries(f"checks/{dataset}", CheckSpec).items()]

    def add_check(self, dataset: str, spec: CheckSpec) -> bool:
        """Register ``spec`` (its name set); ``False`` if a check of that name exists."""
        added = spec.created_at or datetime.now(timezone.utc)
        return self._add(f"checks/{dataset}", spec.name, spec.model_copy(update={"name": None, "created_at": added}))

    def remove_check(self, dataset: str, name: str) -> None:
        self._remove(f"checks/{dataset}", name)

    def move_checks(self, dataset: str, new_name: str) -> None:
        """The added checks of ``dataset`` become those of ``new_name`` (a rename)."""
        for spec in self.dataset_checks(dataset):
            self.add_check(new_name, spec)
            self.remove_check(dataset, spec.name)

    def remove_checks(self, dataset: str) -> None:
        for spec in self.dataset_checks(dataset):
            self.remove_check(dataset, spec.name)

    def exports(self) -> dict[str, list[str]]:
        """The datasets exported through each exporter: the lineage edges to its target."""
        folder = self.folder / "exports"
        if not folder.exists():
            return {}
        return {
            exporter.name: sorted(marker.name for marker in exporter.iterdir() if not marker.name.startswith("."))
            for exporter in folder.iterdir()
            if exporter.is_dir()
        }

    def add_export(self, exporter: str, dataset: str) -> None:
        marker = self.folder / "exports" / exporter / dataset
        if not marker.exists():
            write_exclusive(marker, b"")



def project_catalog(project) -> ProjectCatalog:
    """The project's whole catalog: what ``dataplat.yaml`` declares, plus what was created at
    run time (registered datasets, export edges). A declared name always wins."""
    from dataplat_dagster.catalog.store import load_catalog

    declared = load_catalog(project.catalog_path)
    registry = project_registry(project, declared)
    datasets = {**declared.datasets}
    for name, spec in registry.datasets().items():
        datasets.setdefault(name, spec)
    image_folders = {**declared.image_folders}
    for name, spec in registry.image_folders().items():
        image_folders.setdefault(name, spec)
    embeddings = {**declared.embeddings}
    for name, spec in registry.embeddings().items():
        embeddings.setdefault(name, spec)
    checks = {dataset: list(specs) for dataset, specs in declared.checks.items()}
    for dataset, specs in registry.checks().items():
        checks.setdefault(dataset, []).extend(specs)
    edges = registry.exports()
    exporters = {
        name: spec.model_copy(update={"datasets": [*spec.datasets, *(d for d in edges.get(name, []) if d not in spec.datasets)]})
        for name, spec in declared.exporters.items()
    }
    return declared.model_copy(update={"datasets": datasets, "image_folders": image_folders, "embeddings": embeddings,
                                       "checks": checks, "exporters": exporters})


def project_registry(project, declared: ProjectCatalog | None = None) -> Registry:
    from dataplat_dagster.catalog.store import load_catalog
    from dataplat_dagster.datasets.storage import project_root

    declared = declared or load_catalog(project.catalog_path)
    return Registry(project_root(project.dir, declared))
