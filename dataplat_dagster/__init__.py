"""dataplat_dagster: the Data section of a data platform, as a Dagster plugin."""

from dataplat_dagster.components import DataplatProject
from dataplat_dagster.datasources.factories import datasource_asset, datasource_op
from dataplat_dagster.definitions import project_definitions

__all__ = ["DataplatProject", "datasource_asset", "datasource_op", "project_definitions"]
