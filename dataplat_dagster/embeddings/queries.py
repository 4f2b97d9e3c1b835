"""The CLI's queries on stored embeddings: text search, duplicates, and the points they
return described by their values (a row) or their path (an image)."""

from __future__ import annotations

import numpy as np

from dataplat_dagster.errors import DataplatError

DEFAULT_THRESHOLDS = {"cosine": 0.05, "euclidean": 0.1}


def text_vector(stored, text: str) -> np.ndarray:
    """``text`` through the text tower of the model the embeddings were computed with."""
    from dataplat_dagster.embeddings.clip import load_model

    args = stored.info.get("model_args")
    if stored.info.get("kind") == "tabular" or not args:
        raise DataplatError(
            f"The embeddings of {stored.name!r} are tabular: search by text needs image or text embeddings "
            f"(`dataplat embeddings compute {stored.name} --kind text --columns C`). Use `dataplat embeddings neighbors` instead."
        )
    clip = load_model(args["model"], args.get("pretrained"), args.get("checkpoint"), "cpu")
    return clip.encode_text([text])[0]


def duplicates(stored, threshold: float | None = None) -> dict:
    """Exact duplicates (the same content hash) and near duplicates (stored neighbours within
    ``threshold``, exact copies of each other left out), as groups of ids."""
    from dataplat_dagster.embeddings.neighbors import duplicate_groups

    threshold = DEFAULT_THRESHOLDS.get(stored.metric, 0.1) if threshold is None else threshold
    if threshold < 0:
        raise DataplatError("--threshold is a distance: give 0 or more.")
    by_hash: dict[str, list[int]] = {}
    for position, digest in enumerate(stored.content_hashes):
        if digest is not None:
            by_hash.setdefault(digest, []).append(position)
    exact = sorted((group for group in by_hash.values() if len(group) > 1), key=lambda g: (-len(g), g[0]))
    hashes = np.array([h or f"-{i}" for i, h in enumerate(stored.content_hashes)], dtype=object)
    neighbors = stored.neighbors
    same = (neighbors >= 0) & (hashes[np.clip(neighbors, 0, None)] == hashes[:, None])
    distances = np.where(same, np.inf, stored.distances)
    near = duplicate_groups(neighbors, distances, threshold)
    return {
        "metric": stored.metric,
        "threshold": threshold,
        "exact": [{"ids": [stored.ids[i] for i in group]} for group in exact],
        "near": [{"ids": [stored.ids[i] for i in group], "max_distance": _spread(stored, group)} for group in near],
    }


def _spread(stored, group: list[int]) -> float:
    """The largest distance between two members of a group (its vectors compared directly)."""
    vectors = stored.vectors[group[:200]]
    if stored.metric == "cosine":
        return float(max(0.0, 1.0 - (vectors @ vectors.T).min()))
    squares = (vectors**2).sum(axis=1)
    return float(np.sqrt(max(0.0, (squares[:, None] + squares[None, :] - 2 * vectors @ vectors.T).max())))


def describe_points(project, stored, found: list[tuple[int, float]], score: str) -> list[dict]:
    """Each found point as ``{id, <score>, values}`` (a row's values, as stored in the dataset
    version that was embedded) or ``{id, <score>, path}`` (an image)."""
    points = [{"id": stored.ids[position], score: value} for position, value in found]
    if stored.info.get("input") == "image_folder":
        for point in points:
            point["path"] = point["id"]
        return points
    rows = _rows(project, stored, [position for position, _ in found])
    for point, values in zip(points, rows):
        point["values"] = values
    return points


def _rows(project, stored, positions: list[int]) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataplat_dagster.catalog.registry import project_catalog
    from dataplat_dagster.datasets.storage import DATA_FILE, DatasetStore, project_root

    store = DatasetStore(project_root(project.dir, project_catalog(project)), stored.name)
    versions, _ = store.versions()
    version = next((v for v in versions if v.id == stored.info.get("input_version")), None) or store.current()
    if version is None or not positions:
        return [{} for _ in positions]
    with version.local_file(DATA_FILE) as path:
        table = pq.read_table(path).take(pa.array(positions))
    return [{key: _plain(value) for key, value in row.items()} for row in table.to_pylist()]


def _plain(value):
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
