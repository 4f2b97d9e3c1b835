"""Datasources as the first step of a pipeline: an op factory and an asset factory.

    from dataplat_dagster import datasource_asset, datasource_op

    orders = datasource_asset("orders", project=__file__)     # an asset downstream of the datasource
    read_orders = datasource_op("orders", project=__file__)  # an op, for op-based jobs

Each reads the datasource through its connector (the resource of the same name that the
project's definitions provide), streaming Arrow batches (ADBC's binary COPY on PostgreSQL),
and outputs a ``pyarrow.Table`` or, with ``output="pandas"``, a DataFrame. The output's
metadata has the row count and the column schema.
"""

from __future__ import annotations

import os
from typing import Literal

from dagster import AssetKey, AssetsDefinition, Failure, MetadataValue, OpDefinition, Out, Output, TableColumn, TableSchema, asset, op

from dataplat_dagster.catalog import load_catalog
from dataplat_dagster.catalog.models import find_entry
from dataplat_dagster.connectors.base import connector_tags
from dataplat_dagster.datasources.assets import datasource_key
from dataplat_dagster.datasources.models import DatasourceSpec
from dataplat_dagster.datasources.reading import open_datasource
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import Project

OutputKind = Literal["arrow", "pandas"]


def datasource_op(datasource: str, *, project: str | os.PathLike, name: str | None = None, output: OutputKind = "arrow") -> OpDefinition:
    """An op named ``name`` (default ``read_<datasource>``) that outputs the datasource's rows."""
    project_obj, spec = _datasource(project, datasource)

    @op(
        name=name or f"read_{datasource}",
        required_resource_keys={spec.connector},
        tags=connector_tags(spec.connector),
        out=Out(description=f"The rows of datasource {datasource!r} ({spec.target()})."),
        description=f"Read datasource {datasource!r} of project {project_obj.name!r} through connector {spec.connector!r}.",
    )
    def _read(context):
        table = _read_table(context, spec)
        return Output(_as(table, output), metadata=_metadata(table))

    return _read


def datasource_asset(
    datasource: str,
    *,
    project: str | os.PathLike,
    key: AssetKey | list[str] | None = None,
    dataset: str | None = None,
    output: OutputKind = "arrow",
    io_manager_key: str = "io_manager",
    **asset_kwargs,
) -> AssetsDefinition:
    """An asset (default key ``[project, "pipeline", <datasource>]``) holding the datasource's
    rows, downstream of the datasource's external asset in the lineage graph. With
    ``dataset=NAME`` the rows are stored as that pipeline dataset (``pipeline_dataset``)."""
    project_obj, spec = _datasource(project, datasource)
    asset_kwargs.setdefault("group_name", project_obj.name)
    asset_kwargs.setdefault("description", f"The rows of datasource {datasource!r} ({spec.target()}).")
    if dataset:
        from dataplat_dagster.pipelines import pipeline_dataset

        decorate = pipeline_dataset(dataset, project=project, deps=[datasource_key(project_obj.name, datasource)],
                                    required_resource_keys={spec.connector}, op_tags=connector_tags(spec.connector), **asset_kwargs)
    else:
        decorate = asset(
            key=key or [project_obj.name, "pipeline", datasource],
            deps=[datasource_key(project_obj.name, datasource)],
            required_resource_keys={spec.connector},
            op_tags=connector_tags(spec.connector),
            io_manager_key=io_manager_key,
            **asset_kwargs,
        )

    @decorate
    def _read(context):
        table = _read_table(context, spec)
        return Output(_as(table, output), metadata=_metadata(table))

    return _read


def _datasource(project: str | os.PathLike, datasource: str) -> tuple[Project, DatasourceSpec]:
    from dataplat_dagster.definitions import load_project

    project_obj = load_project(project)
    catalog = load_catalog(project_obj.catalog_path)
    return project_obj, find_entry(catalog.datasources, "datasource", datasource, project_obj.name)


def _read_table(context, spec: DatasourceSpec):
    connector = getattr(context.resources, spec.connector)
    try:
        with open_datasource(connector, spec) as reader:
            table = reader.read_all()
    except DataplatError as error:
        raise Failure(description=f"Datasource {spec.target()!r}: {error}", allow_retries=False) from None
    context.log.info(f"Read {table.num_rows:,} rows × {table.num_columns} columns from {spec.target()}.")
    return table


def _as(table, output: OutputKind):
    return table.to_pandas() if output == "pandas" else table


def _metadata(table) -> dict:
    schema = TableSchema(columns=[TableColumn(name=f.name, type=str(f.type)) for f in table.schema])
    return {"dagster/row_count": MetadataValue.int(table.num_rows), "dagster/column_schema": MetadataValue.table_schema(schema)}
