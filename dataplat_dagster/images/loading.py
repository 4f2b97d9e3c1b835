"""Image folders as inputs: in a project's assets (``ImageFolderIOManager``) and in image
experiments (``image_folder``, a ``torch.utils.data.Dataset``).

Both read one version of the image folder, resolved once: its manifest (a DataFrame, one row
per image: ``path``, ``label``, ``label_index``, ``width``, ``height``, ...) and its images,
opened from storage (a local folder, S3 or GCS) one at a time. torch is imported only by
``image_folder``; nothing here is imported when a code location loads.
"""

from __future__ import annotations

import io
import os

from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from dataplat_dagster.errors import DataplatError


class StoredImageFolder:
    """One version of an image folder: its manifest, labels, and its images opened on demand."""

    def __init__(self, name: str, version) -> None:
        import pyarrow.parquet as pq

        from dataplat_dagster.images.store import IMAGES_FOLDER, MANIFEST_TABLE

        self.name, self.version = name, version
        with version.local_file(MANIFEST_TABLE) as path:
            self.manifest = pq.read_table(path).to_pandas()
        self._images = version.path(IMAGES_FOLDER)
        labelled = self.manifest.dropna(subset=["label"])
        # torchvision's ImageFolder numbering: the labels sorted, each by its index.
        self.labels: list[str] = [label for _, label in sorted(set(zip(labelled["label_index"].astype(int), labelled["label"])))]

    def __len__(self) -> int:
        return len(self.manifest)

    def read_bytes(self, path: str) -> bytes:
        """The stored bytes of one image (its ``path`` in the manifest), as imported."""
        return (self._images / path).read_bytes()

    def open(self, path: str):
        """One image as a ``PIL.Image`` (loaded, so the bytes can go)."""
        from PIL import Image

        image = Image.open(io.BytesIO(self.read_bytes(path)))
        image.load()
        return image


def load_image_folder(name: str, project: str | os.PathLike) -> StoredImageFolder:
    """The current version of image folder ``name`` of ``project`` (its folder, or a file in it)."""
    from dataplat_dagster.catalog.registry import project_catalog
    from dataplat_dagster.datasets.storage import project_root
    from dataplat_dagster.definitions import load_project
    from dataplat_dagster.images.store import image_folder_store

    project_obj = load_project(project)
    catalog = project_catalog(project_obj)
    if name not in catalog.image_folders:
        known = ", ".join(sorted(catalog.image_folders)) or "none"
        raise DataplatError(f"No image folder {name!r} in project {project_obj.name!r} (image folders: {known}).")
    return _current(name, image_folder_store(project_root(project_obj.dir, catalog), name))


def _current(name: str, store) -> StoredImageFolder:
    version = store.current()
    if version is None:
        raise DataplatError(
            f"Image folder {name!r} has no images yet (still importing, or its import failed): "
            "see `dataplat image-folder list`."
        )
    return StoredImageFolder(name, version)


def image_folder(name: str, project: str | os.PathLike, transform=None, *, unlabelled: bool = False):
    """A ``torch.utils.data.Dataset`` of image folder ``name``: item ``i`` is ``(image,
    label_index)``, the image a ``PIL.Image`` in RGB passed through ``transform`` if given
    (torchvision's transforms, say). Images at the folder's root have no label and are left
    out, unless ``unlabelled`` (their label index is then -1). ``.classes`` lists the labels
    by index, as torchvision's ``ImageFolder`` does; ``.folder`` is the stored image folder."""
    try:
        from torch.utils.data import Dataset
    except ImportError:
        raise DataplatError(
            "image_folder needs PyTorch: install it (pip install 'dataplat-dagster[torch]'), or read the "
            "manifest and images with dataplat_dagster.images.loading.load_image_folder."
        ) from None

    folder = load_image_folder(name, project)
    rows = folder.manifest if unlabelled else folder.manifest[folder.manifest["label"].notna()]
    paths = rows["path"].tolist()
    indices = [-1 if index != index else int(index) for index in rows["label_index"].tolist()]  # NaN: no label

    class ImageFolderDataset(Dataset):
        classes = folder.labels

        def __init__(self) -> None:
            self.folder = folder
            self.samples = list(zip(paths, indices))

        def __len__(self) -> int:
            return len(self.samples)

        def __getitem__(self, index: int):
            path, label_index = self.samples[index]
            image = folder.open(path).convert("RGB")
            return (transform(image) if transform else image), label_index

    return ImageFolderDataset()


class ImageFolderIOManager(ConfigurableIOManager):
    """Gives an image folder to the assets downstream of it as a ``StoredImageFolder``: its
    ``manifest`` DataFrame, ``labels``, and ``open(path)`` / ``read_bytes(path)`` for each image."""

    project: str = Field(description="The project (code location) whose image folders these are.")

    def handle_output(self, context: OutputContext, obj) -> None:
        if obj is not None:
            raise DataplatError(f"{context.asset_key.to_user_string()} is an image folder: its asset stores its own files.")

    def load_input(self, context: InputContext) -> StoredImageFolder:
        from dataplat_dagster.catalog.registry import project_catalog
        from dataplat_dagster.datasets.storage import project_root
        from dataplat_dagster.images.store import image_folder_store
        from dataplat_dagster.workspace import Project

        project = Project.loaded(self.project)
        name = context.asset_key.path[-1]
        return _current(name, image_folder_store(project_root(project.dir, project_catalog(project)), name))
