"""dataplat_dagster: the Data section of a data platform, as a Dagster plugin."""

from dataplat_dagster.components import DataplatProject
from dataplat_dagster.datasources.factories import datasource_asset, datasource_op
from dataplat_dagster.definitions import project_definitions
from dataplat_dagster.images.loading import image_folder, load_image_folder
from dataplat_dagster.pipelines import dataset_in, pipeline_dataset

__all__ = [
    "DataplatProject", "dataset_in", "datasource_asset", "datasource_op", "image_folder", "load_image_folder",
    "pipeline_dataset", "project_definitions",
]
