"""Exporting a dataset from the list: the ``export_dataset`` job and the exports in the lineage.

The job's launchpad config is ``dataset`` and ``exporter``; its op streams the dataset's
Parquet through the exporter (the same IO manager that pipelines use) and reports a
materialization of ``[project, "exports", <exporter>]``, an external asset for the
exporter's target whose upstreams are the datasets exported through it (declared under the
exporter's ``datasets`` in the catalog, or recorded in the project's run-time registry on
the first export, so the lineage graph shows the edge from the next load of the code
location on).
"""

import os

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    Config,
    EnvVar,
    Failure,
    JobDefinition,
    MetadataValue,
    build_resources,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from dataplat_dagster.catalog.registry import Registry, project_catalog
from dataplat_dagster.connectors.models import ConnectorSpec, connector_kind
from dataplat_dagster.datasets import storage
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.datasets.storage import DatasetStore, project_root
from dataplat_dagster.exporters.io_manager import ExporterIOManager
from dataplat_dagster.exporters.models import ExporterSpec
from dataplat_dagster.workspace import Project

EXPORT_JOB = "export_dataset"
EXPORTER_TAG = "dataplat/exporter"


class ExportConfig(Config):
    dataset: str = Field(description="The dataset to export (a name from `dataplat dataset list`).")
    exporter: str = Field(description="The exporter to write it through (a name from `dataplat exporter list`).")


def export_key(project: str, exporter: str) -> list[str]:
    return [project, "exports", exporter]


def export_target_spec(project: Project, name: str, spec: ExporterSpec, connector: ConnectorSpec, datasets: list[str]) -> AssetSpec:
    """The exporter's target as an external asset, downstream of the datasets exported to it."""
    metadata = {"connector": MetadataValue.text(spec.connector), "export_mode": MetadataValue.text(spec.mode)}
    if spec.table:
        metadata["dagster/table_name"] = MetadataValue.text(spec.target())
    else:
        metadata["dagster/uri"] = MetadataValue.text(connector.file_uri(spec.path))
    return AssetSpec(
        key=export_key(project.name, name),
        group_name=project.name,
        description=spec.description or f"Exporter {name!r}: {spec.mode} {spec.kind} {spec.target()} through connector {spec.connector!r}.",
        deps=[dataset_key(project.name, dataset) for dataset in datasets],
        kinds={connector_kind(connector)},
        metadata=metadata,
        tags={EXPORTER_TAG: name},
    )


def export_dataset_job(project: Project, exporters: dict[str, ExporterIOManager]) -> JobDefinition:
    """``exporters``: the project's exporter resources, by name. The op starts only the one a
    run chose (and its connector), not all of them as ``required_resource_keys`` would: an
    exporter whose connector cannot start (its secret's variable unset) breaks only itself."""

    @op(name="write_export", tags={"dataplat/project": project.name})
    def _export(context, config: ExportConfig):
        catalog = project_catalog(project)
        if config.exporter not in catalog.exporters:
            raise Failure(f"Project {project.name!r} has no exporter {config.exporter!r} (its exporters: {', '.join(sorted(catalog.exporters))}).", allow_retries=False)
        spec = catalog.datasets.get(config.dataset)
        if spec is None:
            raise Failure(f"Project {project.name!r} has no dataset {config.dataset!r}; see `dataplat dataset list`.", allow_retries=False)
        # Image folders (not tables) will be refused here, before anything is written.
        store = DatasetStore(project_root(project.dir, catalog), config.dataset)
        if not store.exists(storage.DATA_FILE):
            raise Failure(f"Dataset {config.dataset!r} has no stored data yet: materialize it first.", allow_retries=False)
        if config.exporter not in exporters:
            raise Failure(f"Exporter {config.exporter!r} was added after this code location loaded: reload it and run again.", allow_retries=False)
        _refuse_unset_secrets(config.exporter, exporters[config.exporter].connector)
        from dataplat_dagster.datasources.reading import parquet_batches

        with build_resources({config.exporter: exporters[config.exporter]}, instance=context.instance) as started, \
                store.local_file(storage.DATA_FILE) as local:
            metadata = getattr(started, config.exporter).export(parquet_batches(local), context.log)
        record_export(project, config.exporter, config.dataset)
        context.log_event(
            AssetMaterialization(
                asset_key=AssetKey(export_key(project.name, config.exporter)),
                description=f"Dataset {config.dataset!r} exported.",
                metadata={**metadata, "dataset": MetadataValue.text(config.dataset),
                          "dataset_asset": MetadataValue.asset(AssetKey(dataset_key(project.name, config.dataset)))},
            )
        )

    # In process: one step, which a subprocess would only slow down.
    @job(name=EXPORT_JOB, description=f"Export a dataset of project {project.name!r} through one of its exporters.",
         tags={"dataplat/project": project.name}, executor_def=in_process_executor)
    def _job():
        _export()

    return _job


def _refuse_unset_secrets(exporter: str, connector) -> None:
    """A clear message for what Dagster reports as a config error with its stack trace."""
    unset = [value.env_var_name for field in connector.secret_fields
             if isinstance(value := getattr(connector, field, None), EnvVar) and os.environ.get(value.env_var_name) is None]
    if unset:
        raise Failure(
            f"Exporter {exporter!r} cannot start: its connector {connector.connector_name!r} reads a secret from "
            f"{', '.join('$' + var for var in unset)}, which is not set where this run executes. Set it in the environment "
            "of the runs (the shell running `dataplat`, `dagster dev` or the code server) and run the export again.",
            allow_retries=False,
        )


def record_export(project: Project, exporter: str, dataset: str) -> bool:
    """Note that ``dataset`` was exported through ``exporter``: its edge in the lineage, in
    the run-time registry (the catalog file is never written by a run). Returns whether the
    edge is new."""
    catalog = project_catalog(project)
    known = catalog.exporters.get(exporter)
    if known is None or dataset in known.datasets or dataset not in catalog.datasets:
        return False
    Registry(project_root(project.dir, catalog)).add_export(exporter, dataset)
    return True
