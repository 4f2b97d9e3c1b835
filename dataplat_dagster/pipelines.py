"""Building blocks for a project's own pipelines, in Python.

    from dagster import asset
    from dataplat_dagster import dataset_in, datasource_asset, pipeline_dataset

    orders = datasource_asset("orders", project=__file__)

    @pipeline_dataset("big_orders", project=__file__, ins={"orders": AssetIn(orders.key)})
    def big_orders(orders):                      # stored, profiled, listed as a dataset
        return orders.filter(orders["total"] > 100)

    @asset(io_manager_key="predictions_out", ins={"scored": dataset_in("big_orders", project=__file__)})
    def export_big_orders(scored):               # the exporter writes it: a terminal node
        return scored

A ``pipeline_dataset`` is the asset ``[project, "datasets", name]``: what it returns (a
DataFrame or a pyarrow Table) is stored as the dataset's Parquet with its profile, and the
dataset appears in ``dataplat dataset list`` with origin ``pipeline_intermediate`` (or
``pipeline_output`` with ``final=True``).
"""

from __future__ import annotations

import os

from dagster import AssetIn, asset

from dataplat_dagster.datasets.assets import ORIGIN_TAG
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.datasets.io_manager import IO_MANAGER_KEY, ORIGIN_METADATA


def pipeline_dataset(name: str, *, project: str | os.PathLike, final: bool = False, **asset_kwargs):
    """Decorate an asset function whose result is stored as dataset ``name`` of ``project``."""
    from dataplat_dagster.definitions import load_project
    from dataplat_dagster.workspace import check_name

    check_name("dataset", name)
    project_name = load_project(project).name
    origin = "pipeline_output" if final else "pipeline_intermediate"
    asset_kwargs.setdefault("group_name", project_name)
    return asset(
        key=dataset_key(project_name, name),
        io_manager_key=IO_MANAGER_KEY,
        kinds={"parquet"},
        tags={ORIGIN_TAG: origin, **asset_kwargs.pop("tags", {})},
        metadata={ORIGIN_METADATA: origin, "dataplat/dataset": name, **asset_kwargs.pop("metadata", {})},
        **asset_kwargs,
    )


def dataset_in(name: str, *, project: str | os.PathLike) -> AssetIn:
    """An asset input that is dataset ``name`` of ``project`` (uploaded, snapshot or pipeline)."""
    from dataplat_dagster.definitions import load_project

    return AssetIn(key=dataset_key(load_project(project).name, name))
