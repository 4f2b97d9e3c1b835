"""The embeddings asset: ``[project, "embeddings", NAME]``, one per computed or declared
embeddings, downstream of the dataset or image folder ``NAME``.

A run of it (from ``dataplat embeddings compute``, the UI's Materialize button, a schedule,
or the automation that re-runs it when its input has a new version) computes the vectors
of the input's current version (``compute``) and publishes them as a new version of the
embeddings' folder. The options come from the run config where given, else from the
embeddings' entry (what the last ``compute`` was given, or what ``dataplat.yaml`` declares).

torch, faiss and umap are imported when the asset runs, never when the code location loads.
"""


import base64
import functools

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AutomationCondition,
    Config,
    Failure,
    MaterializeResult,
    asset,
    define_asset_job,
    in_process_executor,
)
from pydantic import Field

from dataplat_dagster.catalog.models import EmbeddingsSpec
from dataplat_dagster.datasets import run_marks
from dataplat_dagster.keys import dataset_key, embeddings_key
from dataplat_dagster.embeddings.layout import EXPLORER_PAGE, INPUT_VERSION_METADATA, MAP_PICTURE, embeddings_store
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.keys import image_folder_key
from dataplat_dagster.workspace import Project

IO_MANAGER_KEY = "dataplat_embeddings"
JOB_NAME = "compute_embeddings"


class EmbeddingsConfig(Config):
    """Options of one run; each unset one is the embeddings' entry's."""

    kind: str | None = Field(None, description="tabular, text or image.")
    columns: list[str] | None = Field(None, description="The dataset's columns to embed.")
    model: str | None = Field(None, description="The open_clip model, e.g. ViT-B-32.")
    pretrained: str | None = Field(None, description="open_clip's pretrained tag, e.g. laion2b_s34b_b79k.")
    checkpoint: str | None = Field(None, description="A local checkpoint file, or local-dir:FOLDER.")
    device: str | None = Field(None, description="auto, cpu or cuda.")
    batch_size: int | None = Field(None, description="Images or texts per batch.")
    map: str | None = Field(None, description="umap, pca or tsne.")

    def applied_to(self, spec: EmbeddingsSpec) -> EmbeddingsSpec:
        given = {key: value for key, value in self.model_dump().items() if value is not None}
        if given.get("checkpoint"):
            given["pretrained"] = None
        return EmbeddingsSpec.model_validate({**spec.model_dump(), **given})


def input_key(project: str, name: str, spec: EmbeddingsSpec) -> list[str]:
    return dataset_key(project, name) if spec.input == "dataset" else image_folder_key(project, name)


def embeddings_asset(project: Project, root, name: str, spec: EmbeddingsSpec) -> AssetsDefinition:
    key = AssetKey(embeddings_key(project.name, name))
    upstream = AssetKey(input_key(project.name, name, spec))
    what = "dataset" if spec.input == "dataset" else "image folder"

    @asset(
        key=key,
        deps=[upstream],
        group_name=project.name,
        description=f"Embeddings of the {what} {name!r} ({spec.kind}): vectors, neighbours, a 2D map and an explorer page.",
        kinds={"embeddings"},
        io_manager_key=IO_MANAGER_KEY,
        metadata={"dataplat/embeddings": name},
        config_schema=_config_schema(),
        # A new version of the input makes them stale: computed again once the input has settled.
        automation_condition=AutomationCondition.eager(),
    )
    def _embeddings(context: AssetExecutionContext) -> MaterializeResult:
        config = EmbeddingsConfig(**context.op_execution_context.op_config)
        store = embeddings_store(root, name)
        run_marks.mark_started(store, context.run_id)
        try:
            return MaterializeResult(metadata=materialize_embeddings(context.log, root, name, config.applied_to(spec), context.run_id))
        except DataplatError as error:
            run_marks.mark_failed(store, context.run_id, str(error))
            raise Failure(description=str(error), allow_retries=False) from None

    return _embeddings


def embeddings_job(project: Project, assets: list[AssetsDefinition]):
    """The job that computes any selection of the project's embeddings; in-process, as an
    import is: one step, and the model is loaded once in it."""
    return define_asset_job(
        JOB_NAME, selection=assets, executor_def=in_process_executor, tags={"dataplat/project": project.name},
        description=f"Compute the embeddings of datasets and image folders of project {project.name!r}.",
    )


@functools.cache
def _config_schema():
    return EmbeddingsConfig.to_config_schema()


def materialize_embeddings(log, root, name: str, spec: EmbeddingsSpec, run_id: str | None) -> dict:
    from dataplat_dagster.embeddings.compute import compute

    store = embeddings_store(root, name)
    with store.staging() as tmp:
        from pathlib import Path

        info, files, count, input_version = compute(log, root, name, spec, Path(tmp))
        version = store.new_version()
        store.publish_version(version, files, rows=count, run_id=run_id, state={"input_version": input_version})
    return _metadata(version, info)


def _metadata(version, info: dict) -> dict:
    from dagster import MetadataValue

    metadata = {
        "dagster/row_count": MetadataValue.int(info["count"]),
        "kind": MetadataValue.text(info["kind"]),
        "model": MetadataValue.text(info["model"]),
        "dimension": MetadataValue.int(info["dimension"]),
        "metric": MetadataValue.text(info["metric"]),
        "index": MetadataValue.text(info["index"]),
        "stored_neighbors": MetadataValue.text(info.get("stored_neighbors", info["index"])),
        "map": MetadataValue.json(info["map"]),
        "seconds": MetadataValue.float(info["seconds"]),
        "encode_seconds": MetadataValue.float(info["encode_seconds"]),
        "throughput_per_s": MetadataValue.float(info["throughput_per_s"]),
        "explorer": MetadataValue.url(version.uri(EXPLORER_PAGE)),
        INPUT_VERSION_METADATA: MetadataValue.text(info["input_version"]),
        "dataplat/version": MetadataValue.text(version.id),
    }
    for key in ("device", "batch_size", "loader_workers", "text_columns", "tabular"):
        if key in info:
            metadata[key] = MetadataValue.json(info[key]) if isinstance(info[key], (dict, list)) else MetadataValue.text(str(info[key]))
    picture = version.read_bytes(MAP_PICTURE)
    if picture:
        encoded = base64.b64encode(picture).decode("ascii")
        metadata["map_picture"] = MetadataValue.md(f"![2D map ({info['map']['method']})](data:image/png;base64,{encoded})")
    return metadata
