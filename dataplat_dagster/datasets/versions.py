"""The versions of a dataset kept in storage, and a rollback to one of them, as a Dagster run.

Each materialization publishes a new version (``DatasetStore.publish_version``); the last
``versions_kept`` of the project stay. A rollback is a run of the project's
``rollback_dataset`` job: it points the dataset's ``current.json`` at the earlier version
again and reports that version's metadata as the asset's new materialization, so the
detail page, ``dataset list`` and the readers all show the version rolled back to.
"""


from dagster import AssetKey, AssetMaterialization, Config, DagsterInstance, Failure, JobDefinition, MetadataValue, in_process_executor, job, op
from pydantic import Field

from dataplat_dagster.datasets import lifecycle, storage
from dataplat_dagster.datasets.storage import DatasetStore, DatasetVersion
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import Project

ROLLBACK_JOB = "rollback_dataset"
VERSION_METADATA = "dataplat/version"
# How far back the instance is searched for the materialization that published a version.
_EVENTS_SEARCHED = 100


class RollbackConfig(Config):
    dataset: str = Field(description="The dataset (a name from `dataplat dataset list`).")
    version: str = Field(description="The version to make current again (an id from `dataplat dataset versions NAME`).")


def rollback_job(project: Project) -> JobDefinition:
    @op(name="make_version_current", tags={"dataplat/project": project.name})
    def _rollback(context, config: RollbackConfig):
        from dataplat_dagster.catalog.registry import project_catalog
        from dataplat_dagster.keys import dataset_key
        from dataplat_dagster.datasets.storage import project_root

        catalog = project_catalog(project)
        if config.dataset not in catalog.datasets:
            raise Failure(f"Project {project.name!r} has no dataset {config.dataset!r}; see `dataplat dataset list`.", allow_retries=False)
        store = DatasetStore(project_root(project.dir, catalog), config.dataset)
        key = AssetKey(dataset_key(project.name, config.dataset))
        replaced = store.current()
        try:
            version = store.make_current(config.version, context.run_id)
        except DataplatError as error:
            raise Failure(str(error), allow_retries=False) from None
        context.log_event(
            AssetMaterialization(
                asset_key=key, metadata=version_metadata(context.instance, key, version),
                description=f"Version {version.id} made current again" + (f" (it replaces {replaced.id})." if replaced else "."),
            )
        )
        context.log.info(f"Dataset {config.dataset!r} is at version {version.id} ({version.manifest.get('rows')} rows).")
        from dataplat_dagster.quality.checks import log_evaluations

        log_evaluations(context, project.name, store.root, config.dataset, catalog.dataset_checks(config.dataset))

    @job(name=ROLLBACK_JOB, executor_def=in_process_executor, tags={"dataplat/project": project.name},
         description=f"Make an earlier version of a dataset of project {project.name!r} current again.")
    def _job():
        _rollback()

    return _job


def version_metadata(instance: DagsterInstance, key: AssetKey, version: DatasetVersion) -> dict:
    """The metadata the version was published with, from its materialization in the
    instance; rebuilt from its files when that event is gone (a version stored before
    versions existed, a renamed dataset's older versions)."""
    records = instance.fetch_materializations(key, limit=_EVENTS_SEARCHED).records
    for record in records:
        metadata = record.asset_materialization.metadata
        if getattr(metadata.get(VERSION_METADATA), "value", None) == version.id:
            found = dict(metadata)
            break
    else:
        found = _rebuilt_metadata(version)
    found[VERSION_METADATA] = MetadataValue.text(version.id)
    found["dagster/uri"] = MetadataValue.text(version.uri(storage.DATA_FILE))
    upload = found.get(lifecycle.UPLOAD_METADATA)
    if upload is not None and not version.store.path(upload.value).exists():
        # Its raw copy was replaced since: a later materialization without a new upload
        # then asks for a file instead of failing on a missing one.
        found.pop(lifecycle.UPLOAD_METADATA)
        found.pop(lifecycle.OPTIONS_METADATA, None)
    return found


def _rebuilt_metadata(version: DatasetVersion) -> dict:
    import pyarrow.parquet as pq

    with version.path(storage.DATA_FILE).open("rb") as file:
        parquet = pq.read_metadata(file)
    metadata = {
        "dagster/row_count": MetadataValue.int(parquet.num_rows),
        "columns_count": MetadataValue.int(parquet.num_columns),
        "size_bytes": MetadataValue.int(version.size(storage.DATA_FILE) or 0),
    }
    if version.exists(storage.REPORT_FILE):
        metadata["report"] = MetadataValue.url(version.uri(storage.REPORT_FILE))
    return metadata


def start_rollback(instance: DagsterInstance, workspace, project: Project, store: DatasetStore, version_id: str, *, wait: bool) -> str:
    """Submit the rollback run; returns its id. A version that is not kept, or already
    current, is refused before any run is created."""
    from dataplat_dagster import runs

    version = store.version(version_id)
    _, current = store.versions()
    if version.id == current:
        raise DataplatError(f"Version {version.id} is already the current version of dataset {store.name!r}.")
    config = {"ops": {"make_version_current": {"config": {"dataset": store.name, "version": version.id}}}, **runs.QUIET_CONSOLE}
    tags = {"dataplat/action": "rollback", lifecycle.TAG_DATASET: store.name}
    return runs.submit(instance, workspace, runs.RunRequest(project, ROLLBACK_JOB, [], config, tags), wait=wait)
