"""The image folder asset: one software-defined asset per image folder of a project.

A run of it reads the zip (or folder) that ``dataplat image-folder import`` staged under the
image folder's ``raw/<id>/``, checks and decodes every member (``archive``), and publishes a
new version of the image folder in one step, as a dataset's version is published: the
images with their original bytes under ``images/``, the manifest (``manifest.parquet``), the
summary, the label chart and the contact sheet (``summary``), then the pointer. The staged
upload is removed whatever happens: the stored images are the image folder's content, and a
download zips them again. A run with no upload (the UI's Materialize button) imports a
declared image folder's ``source`` (a zip or folder in the project, as the demo's), and
otherwise reports the current version again: there is nothing new to import.

Heavy modules (Pillow, pyarrow) are imported when the asset runs, never when the code
location loads.
"""

import functools
import json
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, Failure, MaterializeResult, asset
from pydantic import Field

from dataplat_dagster.catalog.models import ImageFolderSpec
from dataplat_dagster.datasets import lifecycle, run_marks, storage
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.images.store import (
    CONTACT_SHEET_FILE,
    IMAGES_FOLDER,
    LABEL_CHART_FILE,
    MANIFEST_TABLE,
    SUMMARY_FILE,
    image_folder_store,
)
from dataplat_dagster.keys import image_folder_key
from dataplat_dagster.workspace import Project

IO_MANAGER_KEY = "dataplat_image_folders"
ORIGIN_TAG = "dataplat/origin"


class ImageFolderImportConfig(Config):
    """Optional: a new upload to import, and whether to skip members that are not images."""

    upload: str | None = Field(
        None,
        description="A zip to import, as raw/<id>/<file name> inside the image folder's storage folder "
        "(staged by `dataplat image-folder import`). Unset: the current version is checked and reported again.",
    )
    skip_invalid: bool = Field(
        False, description="Skip members that are not decodable images (listed in the metadata) instead of failing.")


def image_folder_asset(project: Project, root, name: str, spec: ImageFolderSpec) -> AssetsDefinition:
    store = image_folder_store(root, name)
    key = AssetKey(image_folder_key(project.name, name))

    @asset(
        key=key,
        group_name=project.name,
        description=spec.description or "Image folder (file upload): images, subfolders as labels.",
        tags={ORIGIN_TAG: spec.origin},
        kinds={"images"},
        io_manager_key=IO_MANAGER_KEY,
        metadata={"dataplat/image_folder": name},
        config_schema=_config_schema(),
    )
    def _image_folder(context: AssetExecutionContext) -> MaterializeResult:
        config = ImageFolderImportConfig(**context.op_execution_context.op_config)
        return MaterializeResult(metadata=materialize_image_folder(context, project, store, key, spec, config))

    return _image_folder


@functools.cache
def _config_schema():
    return ImageFolderImportConfig.to_config_schema()


def materialize_image_folder(context, project: Project, store: DatasetStore, key: AssetKey, spec: ImageFolderSpec,
                             config: ImageFolderImportConfig, tags: dict | None = None) -> dict:
    """Import the staged upload (else a declared image folder's source) as a new version; on
    failure nothing is published, and a new image folder is unregistered if ``tags`` (by
    default the run's) ask for it. The asset runs it, and so does the ``import_file`` job."""
    from dataplat_dagster.catalog.registry import project_registry

    try:
        if config.upload:
            upload = lifecycle.staged_upload_path(store, config.upload)
            if not upload.exists():
                raise DataplatError(f"The upload of image folder {store.name!r} ({config.upload}) is gone; import the zip again.")
            return _import(context, project, store, upload, config.skip_invalid)
        if spec.source:
            source = storage.resolve_reference(project.dir, spec.source)
            if not source.exists():
                raise DataplatError(f"The source of image folder {store.name!r} ({spec.source}) does not exist; fix its source in dataplat.yaml.")
            return _import(context, project, store, source, config.skip_invalid)
        return _report_current(store)
    except BaseException as error:  # also an interrupted run: nothing it staged stays
        clear = isinstance(error, (DataplatError, ValueError))
        if clear and context.run_id:  # before after_failure, which may delete the folder
            run_marks.mark_failed(store, context.run_id, str(error))
        after_failure(context.instance, project_registry(project), store, key, context.run.tags if tags is None else tags)
        if clear:
            raise Failure(description=str(error), allow_retries=False) from None
        raise
    finally:
        lifecycle.remove_upload(store, config.upload)


def _import(context, project: Project, store: DatasetStore, source, skip_invalid: bool) -> dict:
    """Check and store the images of ``source`` (a zip, or a local folder) as a new version."""
    from dataplat_dagster.catalog.registry import project_catalog
    from dataplat_dagster.images.archive import ImageLimits, extract_images, manifest_table

    if context.run_id:  # a run that reports the current version again changes nothing: not marked
        run_marks.mark_started(store, context.run_id)
    source_name = source.name
    with store.staging() as tmp, storage.local_copy(source) as local:
        images = Path(tmp) / IMAGES_FOLDER
        images.mkdir()
        try:
            # Case-insensitive names: the images may be downloaded onto such a file system.
            extracted = extract_images(Path(local), images, skip_invalid=skip_invalid, limits=ImageLimits.from_env(),
                                       case_insensitive=True)
        except DataplatError as error:
            raise DataplatError(str(error).replace(str(local), source_name)) from None
        manifest = manifest_table(extracted)
        staged = _render(Path(tmp), manifest, extracted, lambda path: images / path)
        context.log.info(f"{len(extracted.records):,} images, {len(extracted.labels):,} labels; "
                         f"{len(extracted.skipped):,} members skipped, {extracted.debris:,} debris.")
        version = store.new_version()
        store.publish_version(version, {IMAGES_FOLDER: images, **staged}, rows=manifest.num_rows, run_id=context.run_id,
                              state={"source": source_name, "stripped_folder": extracted.stripped_folder},
                              versions_kept=project_catalog(project).versions_kept)
    return _metadata(store, version)


def _render(folder: Path, manifest, extracted, image_path) -> dict[str, Path]:
    """The manifest table, summary and pictures of a new version, written into ``folder``."""
    import pyarrow.parquet as pq
    from PIL import Image

    from dataplat_dagster.images.summary import contact_sheet_png, label_chart_png, summarize

    files = {MANIFEST_TABLE: folder / MANIFEST_TABLE, SUMMARY_FILE: folder / SUMMARY_FILE}
    pq.write_table(manifest, files[MANIFEST_TABLE])
    summary = summarize(manifest, extracted.skipped, extracted.debris)
    summary["stripped_folder"] = extracted.stripped_folder
    files[SUMMARY_FILE].write_text(json.dumps(summary, indent=1, default=str))
    pictures = {
        LABEL_CHART_FILE: label_chart_png(summary),
        CONTACT_SHEET_FILE: contact_sheet_png(manifest, lambda path: Image.open(image_path(path))),
    }
    for file, png in pictures.items():
        if png:
            files[file] = folder / file
            files[file].write_bytes(png)
    return files


def _report_current(store: DatasetStore) -> dict:
    version = store.current()
    if version is None or not version.exists(MANIFEST_TABLE):
        raise DataplatError(
            f"Image folder {store.name!r} has no images yet: import a zip with "
            f"`dataplat image-folder import ZIP --name {store.name}`."
        )
    return _metadata(store, version)


def _metadata(store: DatasetStore, version) -> dict:
    """The materialization's metadata, from a version's stored summary and pictures."""
    from dagster import MetadataValue

    from dataplat_dagster.images.summary import image_folder_metadata

    summary = version.read_json(SUMMARY_FILE) or {}
    metadata = image_folder_metadata(
        summary, label_chart=version.read_bytes(LABEL_CHART_FILE), contact_sheet=version.read_bytes(CONTACT_SHEET_FILE),
        uri=version.uri(IMAGES_FOLDER),
    )
    metadata["size_bytes"] = MetadataValue.int(int((summary.get("bytes") or {}).get("total") or 0))
    metadata["dataplat/version"] = MetadataValue.text(version.id)
    return metadata


def after_failure(instance, registry, store: DatasetStore, key: AssetKey, tags: dict) -> None:
    """A run of a new image folder failed: unregister it if the run's tags ask for it (the CLI
    waited, and says "Nothing was registered"); else it stays listed as failed."""
    never_materialized = instance.get_latest_materialization_event(key) is None
    if never_materialized and tags.get(lifecycle.TAG_UNREGISTER) == "true" and registry.image_folder(store.name) is not None:
        registry.remove_image_folder(store.name)
        store.delete()
