"""Datasources as the first step of a user's pipeline: the op and asset factories."""

import pandas as pd
import pyarrow as pa
import pytest
from dagster import AssetKey, Definitions, job, materialize, op

from dataplat_dagster import datasource_asset, datasource_op, project_definitions
from dataplat_dagster.errors import CatalogError
from dataplat_dagster_tests.datasources.snapshots import SnapshotProject
from dataplat_dagster_tests.datasources.sources import EU_CSV, s3_connector
from dataplat_dagster_tests.datasources.test_snapshots import pg  # noqa: F401  (fixture)


def test_an_op_and_an_asset_read_a_postgres_table_and_an_s3_file(pg, s3, tmp_path):
    s3.client().put_object(Bucket=s3.bucket, Key="eu.csv", Body=EU_CSV)
    project = SnapshotProject(tmp_path, {"pg": pg, "lake": s3_connector(s3)},
                              {"orders": {"connector": "pg", "table": "snap_orders"}, "eu": {"connector": "lake", "path": "eu.csv"}})
    seen = {}

    @op
    def total(table: pa.Table) -> float:
        seen["op"] = table
        return float(sum(table.column("total").to_pylist()))

    @job
    def sum_orders():
        total(datasource_op("orders", project=project.dir)())

    orders_asset = datasource_asset("orders", project=project.dir)
    eu_frame = datasource_asset("eu", project=project.dir, key=["shop", "pipeline", "eu_frame"], output="pandas")
    base = project_definitions(project.dir)
    defs = Definitions.merge(base, Definitions(assets=[orders_asset, eu_frame], jobs=[sum_orders]))

    result = defs.resolve_job_def("sum_orders").execute_in_process(instance=project.instance)
    assert result.success
    table = seen["op"]
    assert table.num_rows == 2500 and str(table.schema.field("total").type) == "decimal128(10, 2)"
    assert result.output_for_node("total") == pytest.approx(sum(i * 1.25 for i in range(1, 2501)))
    read = result.output_for_node("read_orders")
    assert read.num_rows == 2500

    materialized = materialize([orders_asset, eu_frame], resources=defs.resources, instance=project.instance)
    frame = materialized.output_for_node(eu_frame.op.name)
    assert isinstance(frame, pd.DataFrame) and frame["city"].tolist() == ["Köln", "Sevilla", "Besançon"]
    event = project.instance.get_latest_materialization_event(AssetKey(["shop", "pipeline", "orders"]))
    assert event.asset_materialization.metadata["dagster/row_count"].value == 2500

    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey(["shop", "pipeline", "orders"])).parent_keys == {AssetKey(["shop", "datasources", "orders"])}


def test_an_unknown_datasource_is_named(tmp_path):
    project = SnapshotProject(tmp_path, {"lite": {"type": "sql", "dialect": "sqlite", "database": "x.db"}}, {"t": {"connector": "lite", "table": "t"}})
    with pytest.raises(CatalogError, match=r"Project 'shop' has no datasource 'nope' \(its datasources: t\)"):
        datasource_op("nope", project=project.dir)
