"""The dataset asset: one software-defined asset per dataset of a project's catalog."""

import json

from dagster import AssetExecutionContext, AssetsDefinition, Config, Failure, MaterializeResult, asset
from pydantic import Field

from dataplat_dagster.catalog.models import CsvOptions, DatasetSpec
from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.io_manager import IO_MANAGER_KEY
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import Project

ORIGIN_TAG = "dataplat/origin"


class DatasetImportConfig(Config):
    """Run config of a dataset's materialization. All optional: by default the asset parses
    the source file named in the catalog with the catalog's options."""

    source_path: str | None = Field(
        None, description="Parse this file instead of the catalog's source (set by `dataplat dataset import --replace`)."
    )
    sep: str | None = Field(None, description="Override the field separator.")
    decimal: str | None = Field(None, description="Override the decimal separator.")
    thousands: str | None = Field(None, description="Override the thousands separator ('' for none).")
    encoding: str | None = Field(None, description="Override the text encoding.")
    header: bool | None = Field(None, description="Override whether the first row holds column names.")
    quotechar: str | None = Field(None, description="Override the quote character.")
    date_format: str | None = Field(None, description="Override the date format (strptime).")
    profile: bool = Field(True, description="Compute statistics, plots and the HTML report.")
    dialect: str | None = Field(
        None, description="The dialect as JSON, already detected (by `dataplat dataset import`); detected again if unset."
    )


def dataset_key(project: str, name: str) -> list[str]:
    return [project, "datasets", name]


def dataset_asset(project: Project, root, name: str, spec: DatasetSpec) -> AssetsDefinition:
    store = DatasetStore(root, name)

    @asset(
        key=dataset_key(project.name, name),
        group_name=project.name,
        description=dataset_description(store, spec),
        tags={ORIGIN_TAG: spec.origin},
        kinds={"parquet"},
        io_manager_key=IO_MANAGER_KEY,
        metadata={"dataplat/dataset": name, "dataplat/storage": store.uri(storage.DATA_FILE)},
    )
    def _dataset(context: AssetExecutionContext, config: DatasetImportConfig) -> MaterializeResult:
        if spec.source is None and config.source_path is None:
            raise Failure(f"Dataset {name!r} has no source file in {project.catalog_path}.", allow_retries=False)
        source = config.source_path or spec.source.path
        overrides = _overrides(spec, config)
        try:
            from dataplat_dagster.datasets.materialize import materialize_file_dataset

            with storage.local_copy(storage.resolve_reference(project.dir, source)) as local:
                done = materialize_file_dataset(
                    store, local, overrides, profile=config.profile, log=context.log, dialect=_dialect(config)
                )
        except DataplatError as error:
            raise Failure(description=str(error), allow_retries=False) from None
        return MaterializeResult(metadata=done.metadata)

    return _dataset


def _overrides(spec: DatasetSpec, config: DatasetImportConfig):
    from dataplat_dagster.datasets.dialect import CsvOverrides

    base = spec.source.options if spec.source else CsvOptions()
    fields = CsvOptions.model_fields
    values = {key: getattr(config, key) if getattr(config, key) is not None else getattr(base, key) for key in fields}
    return CsvOverrides(**values)


def _dialect(config: DatasetImportConfig):
    if not config.dialect:
        return None
    from dataplat_dagster.datasets.dialect import Dialect

    return Dialect.from_json(json.loads(config.dialect))


def dataset_description(store: DatasetStore, spec: DatasetSpec) -> str:
    """The stored profile rendered into the description, which the UI shows inline on the
    asset's overview (metadata markdown only opens in a dialog)."""
    text = spec.description or f"Dataset ({spec.origin.replace('_', ' ')})."
    try:
        profile = store.read_json(storage.PROFILE_FILE)
    except (OSError, ValueError):
        profile = None
    if not profile:
        return text
    from dataplat_dagster.datasets.metadata import markdown_description

    images = {key: store.read_bytes(file) for key, file in storage.IMAGE_FILES.items()}
    return text + "\n\n" + markdown_description(profile, {k: v for k, v in images.items() if v})
