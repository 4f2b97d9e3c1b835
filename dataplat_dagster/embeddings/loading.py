"""Stored embeddings as inputs and for queries: ``StoredEmbeddings`` (the CLI's queries, and
what the ``dataplat_embeddings`` IO manager gives an asset downstream of the embeddings).

A ``StoredEmbeddings`` is one version, resolved once: its ids, vectors (a float32 matrix),
2D coordinates, each point's stored neighbours and uniqueness, and how they were computed.
Queries for other ``k`` or for new vectors (a text) go through the version's stored index
when it has one, else exact search over the vectors.
"""

from __future__ import annotations

import os

from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from dataplat_dagster.errors import DataplatError


class StoredEmbeddings:
    """One version of the embeddings of a dataset or image folder."""

    def __init__(self, name: str, version) -> None:
        import pyarrow.parquet as pq

        import numpy as np

        from dataplat_dagster.embeddings.layout import INFO_FILE, VECTORS_TABLE

        self.name, self.version = name, version
        self.info: dict = version.read_json(INFO_FILE) or {}
        with version.local_file(VECTORS_TABLE) as path:
            table = pq.read_table(path)
        self.ids: list[str] = table.column("id").to_pylist()
        self.dimension = table.schema.field("vector").type.list_size
        self.vectors = _matrix(table.column("vector"), self.dimension, np.float32)
        self.coordinates = np.column_stack([table.column("x").to_numpy(), table.column("y").to_numpy()])
        k = table.schema.field("neighbors").type.list_size
        self.neighbors = _matrix(table.column("neighbors"), k, np.int32)
        self.distances = _matrix(table.column("distances"), k, np.float32)
        self.uniqueness = table.column("uniqueness").to_numpy()
        self.content_hashes: list[str | None] = table.column("content_hash").to_pylist()
        self.metric: str = self.info.get("metric", "cosine")
        self._positions = {id: i for i, id in enumerate(self.ids)}
        self._index = None

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, id: str) -> int:
        try:
            return self._positions[str(id)]
        except KeyError:
            hint = ("a row's id is its 0-based position, 0 to " f"{len(self.ids) - 1}" if self.info.get("input") == "dataset"
                    else "an image's id is its path in the image folder, as `dataplat image-folder show` lists them")
            raise DataplatError(f"No point {id!r} in the embeddings of {self.name!r} ({hint}).") from None

    def index(self):
        from dataplat_dagster.embeddings.layout import INDEX_FILE
        from dataplat_dagster.embeddings.neighbors import NeighborIndex

        if self._index is None:
            if self.version.exists(INDEX_FILE):
                with self.version.local_file(INDEX_FILE) as path:
                    self._index = NeighborIndex.load(path, self.metric)
            else:
                self._index = NeighborIndex.build(self.vectors, self.metric)
        return self._index

    def neighbors_of(self, id: str, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` nearest other points of ``id``: (position, distance), nearest first."""
        own = self.position(id)
        if k <= self.neighbors.shape[1]:
            found = [(int(p), float(d)) for p, d in zip(self.neighbors[own], self.distances[own]) if p >= 0]
            return found[:k]
        positions, distances = self.index().search(self.vectors[own:own + 1], k + 1)
        return [(int(p), float(d)) for p, d in zip(positions[0], distances[0]) if p >= 0 and p != own][:k]

    def nearest_to(self, vector, k: int = 10) -> list[tuple[int, float]]:
        positions, distances = self.index().search(vector.reshape(1, -1), k)
        return [(int(p), float(d)) for p, d in zip(positions[0], distances[0]) if p >= 0]


def _matrix(column, width: int, dtype):
    """A fixed-size-list column as an (n, width) matrix, without a Python object per value."""
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.astype(dtype, copy=False).reshape(-1, width)


def load_embeddings(name: str, project: str | os.PathLike) -> StoredEmbeddings:
    """The current embeddings of dataset or image folder ``name`` of ``project`` (its folder, or a file in it)."""
    from dataplat_dagster.definitions import load_project

    return current_embeddings(load_project(project), name)


def current_embeddings(project, name: str) -> StoredEmbeddings:
    from dataplat_dagster.catalog.registry import project_catalog
    from dataplat_dagster.datasets.storage import project_root
    from dataplat_dagster.embeddings.layout import embeddings_store

    catalog = project_catalog(project)
    if name not in catalog.embeddings:
        raise DataplatError(
            f"{name!r} has no embeddings in project {project.name!r}: compute them with `dataplat embeddings compute {name}`."
        )
    version = embeddings_store(project_root(project.dir, catalog), name).current()
    if version is None:
        raise DataplatError(
            f"The embeddings of {name!r} are not computed yet (still computing, or the run failed): "
            "see `dataplat dataset list` or `dataplat image-folder list`."
        )
    return StoredEmbeddings(name, version)


class EmbeddingsIOManager(ConfigurableIOManager):
    """Gives the embeddings to the assets downstream of them as a ``StoredEmbeddings``:
    ``ids``, ``vectors`` (float32, one row per point), ``coordinates``, ``neighbors``, ``info``."""

    project: str = Field(description="The project (code location) whose embeddings these are.")

    def handle_output(self, context: OutputContext, obj) -> None:
        if obj is not None:
            raise DataplatError(f"{context.asset_key.to_user_string()} are embeddings: their asset stores its own files.")

    def load_input(self, context: InputContext) -> StoredEmbeddings:
        from dataplat_dagster.workspace import Project

        return current_embeddings(Project.loaded(self.project), context.asset_key.path[-1])
