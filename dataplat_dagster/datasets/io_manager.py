"""Datasets as the inputs and outputs of other assets.

Every dataset asset names this IO manager. As an input, a dataset is its stored Parquet: a
pandas DataFrame by default, a ``pyarrow.Table`` when the input is annotated so. As an
output, it matters only for a pipeline's datasets (``pipeline_dataset``): the DataFrame or
Table the asset returns is written, profiled and published like any dataset, and the
dataset is registered in the project's run-time registry (origin ``pipeline_intermediate``
or ``pipeline_output``) on its first materialization, so ``dataset list`` shows it. The
run never writes the project's catalog file. The other
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

    project: str = Field(description="The project (code location) whose datasets these are; its storage root is in its catalog.")

    def _project_state(self):
        from dataplat_dagster.catalog.registry import Registry, project_catalog
        from dataplat_dagster.datasets.storage import project_root
        from dataplat_dagster.workspace import Project

        project = Project.loaded(self.project)
        catalog = project_catalog(project)
        root = project_root(project.dir, catalog)
        return catalog, root, Registry(root)

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
        from dataplat_dagster.catalog import DatasetSpec
        from dataplat_dagster.datasets.materialize import materialize_arrow_dataset
        from dataplat_dagster.type_handlers import TYPE_HANDLERS

        name = context.asset_key.path[-1]
        handler = next((h for h in TYPE_HANDLERS if h.handles(obj)), None)
        if handler is None:
            kinds = ", ".join(h.name for h in TYPE_HANDLERS)
            raise Failure(f"Dataset {name!r} cannot be stored from a {type(obj).__name__}: return one of {kinds}.", allow_retries=False)
        catalog, root, registry = self._project_state()
        _check_free(catalog, name, origin)  # before anything is written
        store = DatasetStore(root, name)
        done = materialize_arrow_dataset(store, handler.to_arrow(obj), log=context.log, subtitle=f"Pipeline dataset ({origin.replace('_', ' ')})",
                                         run_id=context.run_id, versions_kept=catalog.versions_kept)
        if name not in catalog.datasets:  # declared, or registered by an earlier run: nothing to add
            registry.add_dataset(name, DatasetSpec(origin=origin, description="Written by a pipeline."))
        return done.metadata

    def load_input(self, context: InputContext):
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = context.asset_key.path[-1]
        catalog, root, _ = self._project_state()
        version = DatasetStore(root, name).current()
        if version is None:
            raise DataplatError(
                f"Dataset {name!r} has no stored data yet: materialize "
                f"{context.asset_key.to_user_string()} first (or import it with `dataplat dataset import`)."
            )
        checks = catalog.dataset_checks(name)
        if checks:
            from dataplat_dagster.quality.gate import refusal

            reason = refusal(context.instance, self.project, name, checks, version.id)
            if reason:
                raise Failure(reason, allow_retries=False)
        with version.local_file(storage.DATA_FILE) as path:
            table = pq.read_table(path)
        if context.dagster_type.typing_type is pa.Table:
            return table
        return table.to_pandas()


def _check_free(catalog, name: str, origin: str) -> None:
    existing = catalog.datasets.get(name)
    if existing is not None and existing.origin != origin:
        raise Failure(
            f"A dataset named {name!r} already exists with origin {existing.origin}; a pipeline cannot "
            "overwrite it. Give the pipeline's dataset another name.",
            allow_retries=False,
        )
