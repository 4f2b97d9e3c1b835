"""dataplat_dagster: the Data section of a data platform, as a Dagster plugin."""

from dataplat_dagster.components import DataplatProject
from dataplat_dagster.definitions import project_definitions

__all__ = ["DataplatProject", "project_definitions"]
