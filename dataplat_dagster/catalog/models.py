"""Pydantic models of a project's catalog file (``dataplat.yaml``)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataplat_dagster.catalog.csv_options import CsvOptions
from dataplat_dagster.connectors.models import ConnectorSpec
from dataplat_dagster.datasources.models import DatasourceSpec
from dataplat_dagster.errors import CatalogError
from dataplat_dagster.exporters.models import ExporterSpec
from dataplat_dagster.workspace import NAME_PATTERN, NAME_RULE

Origin = Literal["file_upload", "datasource", "pipeline_output", "pipeline_intermediate"]
ORIGINS: tuple[str, ...] = get_args(Origin)
PIPELINE_ORIGINS = ("pipeline_output", "pipeline_intermediate")


# Resource keys every project's code location already uses; connectors are keyed by name.
RESERVED_RESOURCE_KEYS = ("io_manager", "dataplat_datasets", "dataplat_image_folders", "dataplat_embeddings")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileSource(_Strict):
    path: str = Field(description="The raw file: relative to the project folder, or an absolute path or URL.")
    options: CsvOptions = Field(default_factory=CsvOptions)
    stored: bool = Field(False, description="The path is inside the dataset's own storage folder (an upload kept there).")


class DatasetSpec(_Strict):
    origin: Origin = "file_upload"
    description: str | None = None
    source: FileSource | None = Field(None, description="The flat file this dataset is parsed from.")
    datasource: str | None = Field(None, description="The datasource this dataset is a snapshot of.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    renamed_from: list[str] = Field(default_factory=list, description="Earlier names, newest last.")


class ImageFolderSpec(_Strict):
    """An image folder: the images of an uploaded zip (or folder), subfolders as labels."""

    origin: Literal["file_upload"] = "file_upload"  # only ever from an upload: no datasource, no connector
    description: str | None = None
    source: str | None = Field(
        None, description="A declared image folder's zip or folder of images, relative to the project folder: "
        "what a run imports when it is given no upload.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    renamed_from: list[str] = Field(default_factory=list, description="Earlier names, newest last.")


EmbeddingInput = Literal["dataset", "image_folder"]
EmbeddingKind = Literal["tabular", "text", "image"]
MapMethod = Literal["umap", "pca", "tsne"]
DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_WEIGHTS = "laion2b_s34b_b79k"


class EmbeddingsSpec(_Strict):
    """The embeddings of one dataset or image folder (of the same name), and how they are computed.

    ``dataplat embeddings compute`` registers it (and records the options it was last given,
    so that a run from the UI or a schedule computes the same); it can be declared too.
    """

    input: EmbeddingInput = Field(description="What is embedded: the dataset or the image folder of this name.")
    kind: EmbeddingKind = Field(
        "tabular", description="tabular: the rows' values (no torch); text: text columns through open_clip's text "
        "tower; image: the images through its image tower.")
    columns: list[str] | None = Field(None, description="The dataset's columns to embed; unset: all of them.")
    model: str = Field(DEFAULT_CLIP_MODEL, description="The open_clip model (text and image embeddings).")
    pretrained: str | None = Field(
        DEFAULT_CLIP_WEIGHTS, description="open_clip's pretrained tag, downloaded through Hugging Face's hub at first use and cached.")
    checkpoint: str | None = Field(
        None, description="Local weights instead of a pretrained tag: a checkpoint file, or local-dir:FOLDER "
        "(open_clip_config.json and the weights).")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(64, ge=1, le=4096)
    map: MapMethod = Field("umap", description="The 2D map drawn in the explorer.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))


Severity = Literal["warn", "error"]
CHECK_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")  # Dagster's rule for an asset check's name
# What an expectation's name loses in its check's name: "expect_column_values_to_not_be_null"
# on column "id" is the check "id_not_be_null".
_EXPECTATION_PREFIXES = ("expect_column_values_to_", "expect_column_", "expect_table_", "expect_")


class CheckSpec(_Strict):
    """One Great Expectations expectation of a dataset, run as a Dagster asset check of it.

    Declared in ``dataplat.yaml`` (``checks: {DATASET: [CheckSpec, ...]}``) or added with
    ``dataplat check add`` (then kept in the run-time registry).
    """

    expectation: str = Field(description="The GX expectation type, e.g. expect_column_values_to_not_be_null.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Its arguments: column, min_value, value_set, mostly, ...")
    severity: Severity = Field(
        "warn", description="error: a failure blocks the steps downstream of the dataset (and, under a datasource's "
        "quality_policy: fail, refuses the new snapshot); warn: it is reported only.")
    name: str | None = Field(None, description="The asset check's name; unset: derived from the expectation and its column.")
    created_at: datetime | None = Field(None, description="When `dataplat check add` added it (unset for a declared check).")

    @field_validator("expectation")
    @classmethod
    def _looks_like_an_expectation(cls, value: str) -> str:
        if not re.fullmatch(r"expect_[a-z0-9_]+", value):
            raise ValueError(f"{value!r} is not an expectation type: they are snake_case names that start with expect_")
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and not CHECK_NAME.match(value):
            raise ValueError(f"check name {value!r} is not valid: use letters, digits and underscores")
        return value

    def describe(self) -> str:
        """``expect_...(column="id", min_value=0), severity error``: as the CLI and the UI show it."""
        return f"{self.expectation}({describe_arguments(self.kwargs)}), severity {self.severity}"

    def default_name(self) -> str:
        short = next(self.expectation[len(p):] for p in _EXPECTATION_PREFIXES if self.expectation.startswith(p))
        column = self.kwargs.get("column")
        name = f"{column}_{short}" if isinstance(column, str) else short
        return re.sub(r"[^A-Za-z0-9_]", "_", name)[:100]


def describe_arguments(kwargs: dict) -> str:
    return ", ".join(f"{key}={json.dumps(value, default=str)}" for key, value in kwargs.items())


def named_checks(specs: list[CheckSpec]) -> dict[str, CheckSpec]:
    """The checks of one dataset by name, each with its name set: a derived name that is
    taken gets a number (``id_not_be_null_2``)."""
    named: dict[str, CheckSpec] = {}
    for spec in specs:
        name = spec.name or spec.default_name()
        base, number = name, 2
        while name in named and spec.name is None:
            name, number = f"{base}_{number}", number + 1
        if name in named:
            raise ValueError(f"two checks are named {name!r}: give one another name")
        named[name] = spec.model_copy(update={"name": name})
    return named


class DropzoneSettings(_Strict):
    """The drop-zone sensor of the project (``dataplat_dagster.datasets.dropzone``)."""

    replace: bool = Field(
        False,
        description="A dropped file whose dataset name is taken goes in as that dataset's new version; "
        "by default the sensor leaves it and says why.",
    )
    interval_s: int = Field(30, ge=1, description="Seconds between two looks at the drop zone.")


def find_entry(entries: dict, kind: str, name: str, project: str):
    """``entries[name]``, or a CatalogError that lists the names there are."""
    try:
        return entries[name]
    except KeyError:
        known = ", ".join(sorted(entries)) or "none yet"
        raise CatalogError(f"Project {project!r} has no {kind} {name!r} (its {kind}s: {known}).") from None


# The connector type that reaches each object store scheme of a storage root.
STORAGE_CONNECTOR_TYPES = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


def storage_connector_problem(name: str, connectors: dict, storage_root: str, root_from: str = "storage_root") -> str | None:
    """What is wrong with ``storage_connector: name`` for a storage root, or None.

    The connector must exist and be an s3 or gcs connector; on an object store URL, of the
    type of the URL's scheme (s3:// takes s3, gs:// takes gcs). A local storage root takes
    any of the two and ignores it, so that a deployment can point the project at an object
    store with DATAPLAT_STORAGE_ROOT while the catalog keeps a local folder for development.
    """
    connector = connectors.get(name)
    if connector is None:
        known = ", ".join(sorted(connectors)) or "none yet"
        return f"storage_connector names the connector {name!r}, which does not exist (connectors: {known})"
    if connector.type not in ("s3", "gcs"):
        return f"storage_connector {name!r} is {_a(connector.type)} connector: give an s3 or gcs connector, or unset storage_connector"
    if "://" not in storage_root:
        return None
    scheme = storage_root.split("://", 1)[0].lower()
    wanted = STORAGE_CONNECTOR_TYPES.get(scheme)
    if wanted is None:
        return f"storage_connector {name!r} is set, but {root_from} {storage_root!r} is on {scheme}://: a storage connector only reaches s3:// and gs:// storage"
    if connector.type != wanted:
        return f"storage_connector {name!r} is {_a(connector.type)} connector, but {root_from} {storage_root!r} is on {scheme}://: give {_a(wanted)} connector"
    return None


def _a(connector_type: str) -> str:
    """The connector type with its article, as it is read aloud ("an s3", "a gcs")."""
    return f"an {connector_type}" if connector_type in ("s3", "ftp", "sftp") else f"a {connector_type}"


class ProjectCatalog(_Strict):
    storage_root: str = Field("storage", description="Folder relative to the project, or an fsspec URL.")
    storage_connector: str | None = Field(
        None,
        description="The name of an s3 or gcs connector of this project whose credentials and endpoint reach "
        "storage_root; unset: the default credential chain.",
    )
    description: str | None = None
    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)
    image_folders: dict[str, ImageFolderSpec] = Field(
        default_factory=dict, description="Image folders; imported ones are in the run-time registry, not here.")
    embeddings: dict[str, EmbeddingsSpec] = Field(
        default_factory=dict, description="Embeddings of datasets and image folders; computed ones are in the run-time registry.")
    connectors: dict[str, ConnectorSpec] = Field(default_factory=dict)
    datasources: dict[str, DatasourceSpec] = Field(default_factory=dict)
    exporters: dict[str, ExporterSpec] = Field(default_factory=dict)
    checks: dict[str, list[CheckSpec]] = Field(
        default_factory=dict, description="Data-quality checks per dataset name; those added with `dataplat check add` "
        "are in the run-time registry.")
    dropzone: DropzoneSettings | None = Field(None, description="The drop-zone sensor's settings.")
    versions_kept: int = Field(
        3, ge=1, description="Versions of each dataset kept in storage (the current one always): "
        "`dataplat dataset rollback` can make any of them current again.",
    )

    def connector_dependants(self, connector: str) -> list[str]:
        """The catalog objects that read or write through ``connector`` ("datasource sales", ...)."""
        dependants = []
        for kind in ("datasources", "exporters"):
            for name, spec in (getattr(self, kind, None) or {}).items():
                if getattr(spec, "connector", None) == connector:
                    dependants.append(f"{kind[:-1]} {name!r}")
        if self.storage_connector == connector:
            dependants.append("the project's storage (storage_connector)")
        return dependants

    def dataset_checks(self, dataset: str) -> dict[str, CheckSpec]:
        """The checks of ``dataset`` by name (declared and added ones, in the merged catalog)."""
        return named_checks(self.checks.get(dataset, []))

    def datasource_dependants(self, datasource: str) -> list[str]:
        """The datasets that are snapshots of ``datasource``."""
        return [f"dataset {name!r}" for name, spec in self.datasets.items() if spec.datasource == datasource]

    @model_validator(mode="after")
    def _entries_fit_their_connectors(self) -> "ProjectCatalog":
        for name, spec in self.datasources.items():
            self._check_fits_connector("datasource", name, spec, "reads", "a table or a query")
        for name, spec in self.exporters.items():
            self._check_fits_connector("exporter", name, spec, "writes", "a table")
            if name in self.connectors:
                raise ValueError(f"exporter {name!r} has the name of a connector: both are resources of the project, so choose another name")
        for name, spec in self.datasets.items():
            if spec.datasource and spec.datasource not in self.datasources:
                raise ValueError(f"dataset {name!r} is a snapshot of the datasource {spec.datasource!r}, which does not exist")
        for dataset, specs in self.checks.items():
            try:
                named_checks(specs)
            except ValueError as error:
                raise ValueError(f"checks of dataset {dataset!r}: {error}") from None
        if self.storage_connector is not None:
            problem = storage_connector_problem(self.storage_connector, self.connectors, self.storage_root)
            if problem:
                raise ValueError(problem)
        return self

    def _check_fits_connector(self, kind: str, name: str, spec, verb: str, sql_targets: str) -> None:
        """The connector a datasource or exporter names exists, and takes what it targets:
        a table or query on SQL, a path on a file store."""
        connector = self.connectors.get(spec.connector)
        if connector is None:
            known = ", ".join(sorted(self.connectors)) or "none yet"
            raise ValueError(f"{kind} {name!r} names the connector {spec.connector!r}, which does not exist (connectors: {known})")
        if connector.type == "sql" and spec.kind == "path":
            raise ValueError(f"{kind} {name!r} {verb} a path, but {spec.connector!r} is a SQL connector: give {sql_targets}")
        if connector.type != "sql" and spec.kind != "path":
            raise ValueError(f"{kind} {name!r} {verb} a {spec.kind}, but {spec.connector!r} is a {connector.type} connector: give a path")

    @field_validator("datasets", "connectors", "datasources", "exporters")
    @classmethod
    def _names_are_valid(cls, entries: dict, info) -> dict:
        kind = info.field_name.rstrip("s")
        for name in entries:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"{kind} name {name!r} is not valid: use {NAME_RULE}")
            if kind in ("connector", "exporter") and name in RESERVED_RESOURCE_KEYS:
                raise ValueError(f"{kind} name {name!r} is taken by a resource of every project: choose another")
        return entries
