"""Computing and querying embeddings, for the CLI; and their status in the dataset and image
folder lists.

``start_compute`` records the embeddings' options in the project's run-time registry (so
that their asset exists in the code location, and a run from the UI computes the same) and
starts a run of the ``compute_embeddings`` job for their asset. Status comes from the Dagster
instance, as a dataset's does, and from the input's current version: embeddings computed
from an older version of their input are ``stale``.
"""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance

from dataplat_dagster import runs, webserver
from dataplat_dagster.catalog.models import EmbeddingsSpec
from dataplat_dagster.catalog.registry import Registry, project_catalog
from dataplat_dagster.datasets.storage import project_root
from dataplat_dagster.embeddings.assets import JOB_NAME
from dataplat_dagster.keys import embeddings_key
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import Project, Workspace

TAG_EMBEDDINGS = "dataplat/embeddings"
CLIP_OPTIONS = ("model", "pretrained", "checkpoint")


def input_kind(catalog, project: Project, name: str) -> str:
    """Whether ``name`` is a dataset or an image folder of the project."""
    if name in catalog.datasets:
        return "dataset"
    if name in catalog.image_folders:
        return "image_folder"
    raise DataplatError(
        f"Project {project.name!r} has no dataset or image folder {name!r}: see `dataplat dataset list` and "
        "`dataplat image-folder list`."
    )


def compute_spec(project: Project, name: str, options: dict) -> tuple[EmbeddingsSpec, bool]:
    """The options the run computes with (those given over those recorded), and whether the
    embeddings are declared in ``dataplat.yaml`` (then the registry is not written)."""
    catalog = project_catalog(project)
    kind_of_input = input_kind(catalog, project, name)
    existing = catalog.embeddings.get(name)
    given = {key: value for key, value in options.items() if value is not None}
    if kind_of_input == "image_folder":
        if given.get("columns"):
            raise DataplatError(f"{name!r} is an image folder: --columns applies to datasets only.")
        if given.get("kind") not in (None, "image"):
            raise DataplatError(f"{name!r} is an image folder: its embeddings are of kind image.")
        given["kind"] = "image"
    elif given.get("kind") == "image":
        raise DataplatError(f"{name!r} is a dataset: its embeddings are tabular, or text (--kind text).")
    elif "kind" not in given and any(key in given for key in CLIP_OPTIONS):
        given["kind"] = "text"  # a model was asked for: the text tower
    if given.get("checkpoint"):
        given["pretrained"] = None
    base = existing.model_dump() if existing and existing.input == kind_of_input else {"input": kind_of_input}
    spec = EmbeddingsSpec.model_validate({**base, **given, "input": kind_of_input})
    if kind_of_input == "dataset":
        _check_dataset_columns(project, catalog, name, spec)
    declared = name in _declared(project)
    return spec, declared


def _check_dataset_columns(project: Project, catalog, name: str, spec: EmbeddingsSpec) -> None:
    """Refuse columns that do not exist or do not fit the kind before anything is recorded
    or run (the footer of the dataset's current version is all that is read)."""
    import pyarrow.parquet as pq

    from dataplat_dagster.datasets.storage import DATA_FILE, DatasetStore
    from dataplat_dagster.embeddings.tabular import check_columns

    version = DatasetStore(project_root(project.dir, catalog), name).current()
    if version is None:
        raise DataplatError(f"Dataset {name!r} has no stored data yet: wait for its import (`dataplat dataset list`), then compute.")
    with version.path(DATA_FILE).open("rb") as file:
        schema = pq.read_schema(file)
    check_columns(schema, spec.columns, spec.kind)


def _declared(project: Project) -> dict:
    from dataplat_dagster.catalog.store import load_catalog

    return load_catalog(project.catalog_path).embeddings


def start_compute(instance: DagsterInstance, workspace: Workspace, project: Project, name: str, options: dict, *,
                  wait: bool) -> tuple[str, EmbeddingsSpec, str | None]:
    """Record the options and start the run; returns its id, the options, and a warning (a
    webserver that could not reload), if any."""
    spec, declared = compute_spec(project, name, options)
    if spec.kind != "tabular":
        from dataplat_dagster.embeddings.clip import EXTRA_HINT

        try:
            import open_clip  # noqa: F401
        except ImportError:
            raise DataplatError(f"Embeddings of {'images' if spec.kind == 'image' else 'text'} need open_clip and torch: {EXTRA_HINT}.") from None
    catalog = project_catalog(project)
    registry = Registry(project_root(project.dir, catalog))
    new = name not in catalog.embeddings
    if not declared:
        registry.save_embeddings(name, spec.model_copy(update={"created_at": catalog.embeddings[name].created_at}) if not new else spec)
    key = AssetKey(embeddings_key(project.name, name))
    config = {field: getattr(spec, field) for field in ("kind", "columns", "model", "pretrained", "checkpoint", "device",
                                                         "batch_size", "map")}
    run_config = {"ops": {key.to_python_identifier(): {"config": config}}, **runs.QUIET_CONSOLE}
    tags = {TAG_EMBEDDINGS: name, "dataplat/action": "embeddings"}
    warning = webserver.notify_catalog_changed(workspace.root, project.name) if new else None
    run_id = runs.submit(instance, workspace, runs.RunRequest(project, JOB_NAME, [key], run_config, tags), wait=wait)
    return run_id, spec, warning


def follow_rename(instance: DagsterInstance, project: Project, root, name: str, new_name: str) -> None:
    """The embeddings of a renamed dataset or image folder move with it: their entry, their
    files (their ids, row positions or image paths, still hold), and their last
    materialization, reported again under the new key. Each step can run again after a crash."""
    from dataplat_dagster.datasets.lifecycle import carry_materialization
    from dataplat_dagster.embeddings.layout import embeddings_store

    registry = Registry(root)
    spec = registry.embedding(name)
    if spec is not None:
        registry.save_embeddings(new_name, spec)
    embeddings_store(root, name).move_to(new_name)
    if spec is not None:
        registry.remove_embeddings(name)
    carry_materialization(instance, AssetKey(embeddings_key(project.name, name)), AssetKey(embeddings_key(project.name, new_name)))


def follow_delete(instance: DagsterInstance, project: Project, root, name: str) -> None:
    """The embeddings of a deleted dataset or image folder go with it: entry, files, events."""
    from dataplat_dagster.embeddings.layout import embeddings_store

    Registry(root).remove_embeddings(name)
    embeddings_store(root, name).delete()
    instance.wipe_assets([AssetKey(embeddings_key(project.name, name))])
