"""Where embeddings are stored: a versioned folder per name under ``embeddings/``, as a
dataset's (``DatasetStore``), with these files in each version. Nothing heavy is imported
here: the code location reads these names when it loads."""

from __future__ import annotations

from dataplat_dagster.datasets.storage import DatasetStore

SECTION = "embeddings"
VECTORS_TABLE = "embeddings.parquet"
INDEX_FILE = "index.faiss"
MAP_PICTURE = "map.png"
EXPLORER_PAGE = "explorer.html"
INFO_FILE = "embeddings.json"
# The input version they were computed from, in each materialization's metadata.
INPUT_VERSION_METADATA = "dataplat/input_version"


def embeddings_store(root, name: str) -> DatasetStore:
    return DatasetStore(root, name, SECTION)


def input_store(root, name: str, spec) -> DatasetStore:
    """The dataset's or image folder's store whose current version the embeddings are computed from."""
    return DatasetStore(root, name, "datasets" if spec.input == "dataset" else "image_folders")
