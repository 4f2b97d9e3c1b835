"""Reading datasets into the assets and ops downstream of them.

Every dataset asset names this IO manager, so an asset of the user's with a dataset as
input gets its stored Parquet: a pandas DataFrame by default, a ``pyarrow.Table`` when the
input is annotated so. The dataset assets write their own files (see ``materialize``), so
there is nothing to store on output.
"""

from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.errors import DataplatError

IO_MANAGER_KEY = "dataplat_datasets"


class DatasetIOManager(ConfigurableIOManager):
    """Loads a project's datasets from its storage."""

    storage_root: str = Field(description="The project's storage root: a local folder or an fsspec URL.")

    def handle_output(self, context: OutputContext, obj) -> None:
        if obj is not None:
            raise DataplatError(
                f"{context.asset_key.to_user_string()} is a dataset: its asset stores its own files and "
                "returns a MaterializeResult, not a value."
            )

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
