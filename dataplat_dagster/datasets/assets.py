"""The dataset asset: one software-defined asset per dataset of a project's catalog."""

import functools
import json

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, Failure, MaterializeResult, MetadataValue, asset
from pydantic import Field

from dataplat_dagster.catalog.models import CsvOptions, DatasetSpec
from dataplat_dagster.datasets import lifecycle, run_marks, storage
from dataplat_dagster.datasets.io_manager import IO_MANAGER_KEY
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.workspace import Project

ORIGIN_TAG = "dataplat/origin"


class DatasetImportConfig(Config):
    # All optional: by default the asset parses its current raw file (the last upload, else
    # the source the catalog declares) with the options it was read with. The docstring is
    # in every dataset's op of every job snapshot: one line.
    """Optional: a new upload to parse, and CSV options over the recorded ones."""

    upload: str | None = Field(
        None,
        description="A new upload to parse, as raw/<id>/<file name> inside the dataset's storage folder "
        "(staged by `dataplat dataset import`). It becomes the current version if the run succeeds.",
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


def dataset_asset(project: Project, root, name: str, spec: DatasetSpec) -> AssetsDefinition:
    store = DatasetStore(root, name)
    key = AssetKey(dataset_key(project.name, name))

    @asset(
        key=key,
        group_name=project.name,
        description=dataset_description(spec),
        tags={ORIGIN_TAG: spec.origin},
        kinds={"parquet"},
        io_manager_key=IO_MANAGER_KEY,
        metadata={"dataplat/dataset": name, "dataplat/storage": store.uri(storage.DATA_FILE)},
        config_schema=_config_schema(),
    )
    def _dataset(context: AssetExecutionContext) -> MaterializeResult:
        config = DatasetImportConfig(**context.op_execution_context.op_config)
        return MaterializeResult(
            metadata=materialize_dataset(context.instance, project, store, spec, key, config, context.run.tags, context.log,
                                         run_id=context.run_id)
        )

    return _dataset


@functools.cache
def _config_schema():
    """The schema of ``DatasetImportConfig``, built once: Dagster infers it anew for each
    asset whose body takes the class as a parameter, a second of a 300-dataset load."""
    return DatasetImportConfig.to_config_schema()


def materialize_dataset(instance, project: Project, store: DatasetStore, spec: DatasetSpec, key: AssetKey,
                        config: DatasetImportConfig, tags: dict, log, run_id: str | None = None) -> dict:
    """The work of one materialization of a dataset, its bookkeeping included (``lifecycle``):
    parse and publish, record the upload it came from and remove the one it replaces; on
    failure, drop what was staged and unregister a new dataset if ``tags`` ask for it.
    Returns the materialization's metadata. The dataset's asset runs it, and so does the
    ``import_file`` job (``dropzone``), which reports the materialization itself."""
    from dataplat_dagster.catalog.registry import project_registry

    previous, recorded_options = lifecycle.current_upload(instance, key)
    if run_id:
        run_marks.mark_started(store, run_id)
    try:
        done, upload, options = _materialize(project, store, spec, config, previous, recorded_options, log, run_id)
    except BaseException as error:  # also an interrupted run: nothing it staged stays
        clear = isinstance(error, (DataplatError, ValueError))
        if clear and run_id:  # before after_failure, which may delete the dataset's folder
            run_marks.mark_failed(store, run_id, str(error))
        lifecycle.after_failure(instance, project_registry(project), store, key, tags, config.upload)
        if clear:
            raise Failure(description=str(error), allow_retries=False) from None
        raise
    metadata = dict(done.metadata)
    if upload:
        metadata[lifecycle.UPLOAD_METADATA] = MetadataValue.text(upload)
        metadata[lifecycle.OPTIONS_METADATA] = MetadataValue.text(json.dumps(options))
    if config.upload and previous and previous != config.upload:
        lifecycle.remove_upload(store, previous)
    return metadata


def _materialize(project: Project, store: DatasetStore, spec: DatasetSpec, config: DatasetImportConfig,
                 previous: str | None, recorded: dict, log, run_id: str | None):
    """Parse the run's source; returns what was published, the upload it came from (if any)
    and the CSV options it was read with."""
    from dataplat_dagster.catalog.registry import project_catalog
    from dataplat_dagster.datasets.materialize import materialize_file_dataset

    upload = config.upload or previous
    if upload:
        source = lifecycle.staged_upload_path(store, upload)
        base = {} if config.upload else recorded
    elif spec.source is not None:
        if spec.source.stored:
            source = store.path(spec.source.path)
        elif "://" in spec.source.path:  # a URL under the storage root keeps the root's credentials
            source = storage.stored_path(store.root, spec.source.path)
        else:
            source = storage.resolve_reference(project.dir, spec.source.path)
        base = spec.source.options.model_dump(exclude_none=True)
    else:
        raise DataplatError(
            f"Dataset {store.name!r} has no raw file to parse: import one with "
            f"`dataplat dataset import PATH --name {store.name} --replace`."
        )
    options = {**base, **{k: getattr(config, k) for k in CsvOptions.model_fields if getattr(config, k) is not None}}
    if not source.exists():
        raise DataplatError(f"The raw file of dataset {store.name!r} ({upload or spec.source.path}) is gone; import the file again.")
    with storage.local_copy(source) as local:
        try:
            done = materialize_file_dataset(
                store, local, _overrides(options), profile=config.profile, log=log, dialect=_dialect(config),
                source_label=source.name, run_id=run_id, versions_kept=project_catalog(project).versions_kept,
            )
        except DataplatError as error:
            # Name the file as the user knows it, not by its copy's path on this host.
            raise DataplatError(str(error).replace(str(local), source.name)) from None
    return done, upload, options


def _overrides(options: dict):
    from dataplat_dagster.ingest.dialect import CsvOverrides

    return CsvOverrides(**{key: options.get(key) for key in CsvOptions.model_fields})


def _dialect(config: DatasetImportConfig):
    if not config.dialect:
        return None
    from dataplat_dagster.ingest.dialect import Dialect

    return Dialect.from_json(json.loads(config.dialect))


def dataset_description(spec: DatasetSpec) -> str:
    """Fixed text: the profile and its plots are in each materialization's metadata, so that
    materializing a dataset never changes its definition (nor the job snapshots that a
    re-execution compares with)."""
    return spec.description or f"Dataset ({spec.origin.replace('_', ' ')})."
