"""Datasources in the asset graph.

Each datasource is an external asset ``[project, "datasources", NAME]`` (its table or
file, which Dagster does not materialize), and each dataset made from it is a
materializable asset downstream of it, whose every materialization is a new snapshot and
carries the ``schema_drift`` check.
"""


from dagster import AssetCheckSpec, AssetExecutionContext, AssetsDefinition, AssetSpec, Failure, MetadataValue, asset

from dataplat_dagster.catalog.models import DatasetSpec
from dataplat_dagster.connectors.base import connector_tags
from dataplat_dagster.connectors.models import ConnectorSpec, connector_kind
from dataplat_dagster.datasets import run_marks, storage
from dataplat_dagster.datasets.assets import ORIGIN_TAG, dataset_description
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.datasets.io_manager import IO_MANAGER_KEY
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.datasources.drift import DRIFT_CHECK
from dataplat_dagster.datasources.models import DatasourceSpec
from dataplat_dagster.datasources.snapshot import Snapshot, SnapshotConfig
from dataplat_dagster.workspace import Project

DATASOURCE_TAG = "dataplat/datasource"


def datasource_key(project: str, name: str) -> list[str]:
    return [project, "datasources", name]


def datasource_source_spec(project: Project, name: str, spec: DatasourceSpec, connector: ConnectorSpec) -> AssetSpec:
    """The datasource as an external asset: its table, query or file, read through ``connector``."""
    metadata = {"connector": MetadataValue.text(spec.connector), spec.kind: MetadataValue.text(spec.target())}
    if spec.table:
        metadata["dagster/table_name"] = MetadataValue.text(spec.target())
    if spec.path:
        metadata["dagster/uri"] = MetadataValue.text(connector.file_uri(spec.path))
    return AssetSpec(
        key=datasource_key(project.name, name),
        group_name=project.name,
        description=spec.description or f"Datasource: {spec.kind} {spec.target()} through connector {spec.connector!r} ({connector.address()}).",
        kinds={connector_kind(connector)},
        metadata=metadata,
        tags={DATASOURCE_TAG: name},
    )


def snapshot_asset(project: Project, root, name: str, spec: DatasetSpec, source: DatasourceSpec) -> AssetsDefinition:
    """The dataset ``name``, a snapshot of the datasource ``spec.datasource``."""
    store = DatasetStore(root, name)
    key = dataset_key(project.name, name)
    datasource = spec.datasource

    @asset(
        key=key,
        group_name=project.name,
        description=dataset_description(spec),
        tags={ORIGIN_TAG: spec.origin, DATASOURCE_TAG: datasource},
        kinds={"parquet"},
        io_manager_key=IO_MANAGER_KEY,
        metadata={"dataplat/dataset": name, "dataplat/storage": store.uri(storage.DATA_FILE), DATASOURCE_TAG: datasource},
        deps=[datasource_key(project.name, datasource)],
        required_resource_keys={source.connector},
        op_tags=connector_tags(source.connector),
        check_specs=[
            AssetCheckSpec(
                DRIFT_CHECK,
                asset=key,
                description=f"Columns added, removed or retyped since the previous snapshot (drift_policy: {source.drift_policy}).",
            )
        ],
    )
    def _snapshot(context: AssetExecutionContext, config: SnapshotConfig):
        from dataplat_dagster.catalog.registry import project_catalog, project_registry
        from dataplat_dagster.datasets import lifecycle

        connector = getattr(context.resources, source.connector)
        run_marks.mark_started(store, context.run_id)
        try:
            catalog = project_catalog(project)
            checks = catalog.dataset_checks(name) if source.quality_policy == "fail" else {}
            yield from Snapshot(context, store, datasource, source, connector, config, catalog.versions_kept, checks).run()
        except BaseException as error:  # a new snapshot dataset that never succeeded is unregistered if asked
            if isinstance(error, Failure):  # its message is the step's: before after_failure may delete the folder
                run_marks.mark_failed(store, context.run_id, error.description)
            lifecycle.after_failure(context.instance, project_registry(project), store, context.asset_key, context.run.tags, None)
            raise

    return _snapshot
