"""dataplat_dagster: the Data section of a data platform, as a Dagster plugin.

The public names load on first use: `dataplat` commands that only read the project's
files (``--help``, ``connector list``) then never import Dagster (0.7 s of every command).
"""

import importlib

_EXPORTS = {
    "DataplatProject": "dataplat_dagster.components",
    "datasource_asset": "dataplat_dagster.datasources.factories",
    "datasource_op": "dataplat_dagster.datasources.factories",
    "project_definitions": "dataplat_dagster.definitions",
    "image_folder": "dataplat_dagster.images.loading",
    "load_image_folder": "dataplat_dagster.images.loading",
    "dataset_in": "dataplat_dagster.pipelines",
    "pipeline_dataset": "dataplat_dagster.pipelines",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dataplat_dagster' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
