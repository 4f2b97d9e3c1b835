"""Where an image folder's files are: its storage folder (a ``DatasetStore`` in the
``image_folders`` section) and the files of each of its versions. No Dagster here: the
read-only commands use it."""

from __future__ import annotations

from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.datasets.storage import DatasetStore, project_root
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.keys import IMAGE_FOLDERS
from dataplat_dagster.workspace import Project

SECTION = IMAGE_FOLDERS
IMAGES_FOLDER = "images"
MANIFEST_TABLE = "manifest.parquet"
SUMMARY_FILE = "summary.json"
LABEL_CHART_FILE = "labels.png"
CONTACT_SHEET_FILE = "contact_sheet.png"


def image_folder_store(root, name: str) -> DatasetStore:
    return DatasetStore(root, name, SECTION)


def find_image_folder(project: Project, name: str) -> DatasetStore:
    catalog = project_catalog(project)
    if name not in catalog.image_folders:
        known = ", ".join(sorted(catalog.image_folders)) or "none"
        hint = " It is a dataset: see `dataplat dataset list`." if name in catalog.datasets else " See `dataplat image-folder list`."
        raise DataplatError(f"No image folder {name!r} in project {project.name!r} (image folders: {known}).{hint}")
    return image_folder_store(project_root(project.dir, catalog), name)
