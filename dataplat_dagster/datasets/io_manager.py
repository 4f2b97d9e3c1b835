"""Datasets as the inputs and outputs of other assets.

Every dataset asset names this IO manager. As an input, a dataset is its stored Parquet: a
pandas DataFrame by default, a ``pyarrow.Table`` when the input is annotated so. As an
output, it matters only for a pipeline's datasets (``pipeline_dataset``): the DataFrame or
Table the asset returns is written, profiled and published like any dataset, and the
dataset is registered in the catalog (origin ``pipeline_intermediate`` or
``pipeline_output``) on its first materialization, so ``dataset list`` shows it. The other
dataset assets write their own files (see ``materialize``) and return no value.
"""

from dagster import ConfigurableIOManager, Failure, InputContext, OutputContext
from pydantic import Field

from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.errors import DataplatError

IO_MANAGER_KEY = "dataplat_datasets"
ORIGIN_METADATA = "dataplat/origin"


class DatasetIOManager(ConfigurableIOManager):
    """Loads a project's datasets from its storage, and stores its pipelines' datasets."""

    storage_root: str = Field(description="The project's storage root: a local folder or an fsspec URL.")
    project_dir: str = Field(description="The project's folder, whose catalog lists the datasets.")

    def handle_output(self, context: OutputContext, obj) -> None:
        from dataplat_dagster.catalog.models import PIPELINE_ORIGINS

        if obj is None:
            return
        origin = (context.definition_metadata or {}).get(ORIGIN_METADATA)
        if origin not in PIPELINE_ORIGINS:
            raise DataplatError(
                f"{context.asset_key.to_user_string()} is a dataset: its asset stores its own files and "
                "returns a MaterializeResult, not a value."
            )
        context.add_output_metadata(self._store_pipeline_dataset(context, obj, origin))

    def _store_pipeline_dataset(self, context: OutputContext, obj, origin: str) -> dict:
        from upath import UPath

        from dataplat_dagster.datasets.materialize import materialize_arrow_dataset
        from dataplat_dagster.type_handlers import TYPE_HANDLERS

        name = context.asset_key.path[-1]
        handler = next((h for h in TYPE_HANDLERS if h.handles(obj)), None)
        if handler is None:
            kinds = ", ".join(h.name for h in TYPE_HANDLERS)
            raise Failure(f"Dataset {name!r} cannot be stored from a {type(obj).__name__}: return one of {kinds}.", allow_retries=False)
        _check_free(self.project_dir, name, origin)  # before anything is written
        store = DatasetStore(UPath(self.storage_root), name)
        done = materialize_arrow_dataset(store, handler.to_arrow(obj), log=context.log, subtitle=f"Pipeline dataset ({origin.replace('_', ' ')})")
        _register(self.project_dir, name, origin)
        return done.metadata

    def load_input(self, context: InputContext):
        import pyarrow as pa
        import pyarrow.parquet as pq
        from upath import UPath

        name = context.asset_key.path[-1]
        store = DatasetStore(UPath(self.storage_root), name)
        if not store.exists(storage.DATA_FILE):
            raise DataplatError(
                f"Dataset {name!r} has no stored data yet: materialize "
                f"{context.asset_key.to_user_string()} first (or import it with `dataplat dataset import`)."
            )
        with store.local_file(storage.DATA_FILE) as path:
            table = pq.read_table(path)
        if context.dagster_type.typing_type is pa.Table:
            return table
        return table.to_pandas()


def _catalog_path(project_dir: str):
    from pathlib import Path

    from dataplat_dagster.workspace import CATALOG_FILE

    return Path(project_dir) / CATALOG_FILE


def _check_free(project_dir: str, name: str, origin: str) -> None:
    from dataplat_dagster.catalog import load_catalog

    existing = load_catalog(_catalog_path(project_dir)).datasets.get(name)
    if existing is not None and existing.origin != origin:
        raise Failure(
            f"A dataset named {name!r} already exists with origin {existing.origin}; a pipeline cannot "
            "overwrite it. Give the pipeline's dataset another name.",
            allow_retries=False,
        )


def _register(project_dir: str, name: str, origin: str) -> None:
    from dataplat_dagster.catalog import DatasetSpec, edit_catalog, load_catalog

    if name in load_catalog(_catalog_path(project_dir)).datasets:
        return  # declared already (or registered by an earlier run): leave the file alone
    with edit_catalog(_catalog_path(project_dir)) as catalog:
        if name not in catalog.datasets:
            catalog.datasets[name] = DatasetSpec(origin=origin, description="Written by a pipeline.")
