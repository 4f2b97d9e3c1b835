"""The 2D map of a set of vectors, and its picture for the asset's page.

UMAP by default (umap-learn; its neighbour graph is the one the run already found with
faiss, so UMAP does not search again), PCA and t-SNE (scikit-learn) on demand. Each runs
with a fixed random state: a run draws the same map as the last. The parameters go into
the metadata with the map.

Above ``UMAP_SAMPLE`` points UMAP is fitted on a fixed sample of that many, and every other
point is placed at the distance-weighted mean of the map positions of its ``PLACE_NEIGHBORS``
nearest sample points (found with faiss). UMAP's time and memory grow faster than n (29 min
and 9.5 GB at 1M points on 2 cores, single-threaded since a random state forces it), the
explorer draws at most 200,000 points, and bench/README.md has what the sample costs in
neighbourhoods kept.
"""

from __future__ import annotations

import io

import numpy as np

from dataplat_dagster.embeddings.neighbors import TABULAR_HINT
from dataplat_dagster.errors import DataplatError

SEED = 42
UMAP_NEIGHBORS = 15
UMAP_MIN_DIST = 0.1
TSNE_PERPLEXITY = 30.0
UMAP_SAMPLE = 100_000
PLACE_NEIGHBORS = 10


def map_2d(vectors: np.ndarray, method: str, metric: str, neighbors: np.ndarray | None = None,
           distances: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """(n, 2) float32 coordinates, and the method with its parameters."""
    n = vectors.shape[0]
    if n < 4 or method == "pca":
        return _pca(vectors), {"method": "pca", "components": 2}
    try:
        if method == "tsne":
            from sklearn.manifold import TSNE
        else:
            import umap  # noqa: F401 (checked here, so that a missing extra is named before any work)
    except ImportError:
        raise DataplatError(f"A {method.upper()} map needs the extra: {TABULAR_HINT} (or choose --map pca).") from None
    if method == "tsne":
        perplexity = min(TSNE_PERPLEXITY, (n - 1) / 3)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=SEED,
                    metric="cosine" if metric == "cosine" else "euclidean")
        return tsne.fit_transform(vectors).astype(np.float32), {"method": "tsne", "perplexity": perplexity, "init": "pca",
                                                               "random_state": SEED}
    if n > UMAP_SAMPLE:
        return _umap_of_sample(vectors, metric)
    return _umap(vectors, metric, neighbors, distances)


def _umap(vectors: np.ndarray, metric: str, neighbors: np.ndarray | None = None,
          distances: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    import umap

    n = vectors.shape[0]
    k = min(UMAP_NEIGHBORS, n - 1)
    params = {"method": "umap", "n_neighbors": k, "min_dist": UMAP_MIN_DIST, "metric": metric, "random_state": SEED}
    knn = None
    if neighbors is not None and neighbors.shape[1] >= k - 1 and (neighbors[:, : k - 1] >= 0).all():
        # UMAP's graph holds each point itself first, at distance 0.
        own = np.arange(n, dtype=np.int32)[:, None]
        knn = (np.hstack([own, neighbors[:, : k - 1]]), np.hstack([np.zeros((n, 1), np.float32), distances[:, : k - 1]]), None)
        params["neighbor_graph"] = "faiss (the stored neighbours)"
    reducer = umap.UMAP(n_neighbors=k, min_dist=UMAP_MIN_DIST, metric=metric, random_state=SEED,
                        precomputed_knn=knn if knn is not None else (None, None, None), init="spectral" if n > k + 1 else "random")
    coordinates = reducer.fit_transform(vectors)
    return np.asarray(coordinates, dtype=np.float32), params


def _umap_of_sample(vectors: np.ndarray, metric: str) -> tuple[np.ndarray, dict]:
    """UMAP fitted on ``UMAP_SAMPLE`` points drawn with a fixed seed, the others placed from it."""
    from dataplat_dagster.embeddings.neighbors import (
        NeighborIndex,
        all_neighbors,
        graph_index,
    )

    n = vectors.shape[0]
    sample = np.sort(np.random.default_rng(SEED).choice(n, size=UMAP_SAMPLE, replace=False))
    fitted = np.ascontiguousarray(vectors[sample], dtype=np.float32)
    index = graph_index(NeighborIndex.build(fitted, metric), fitted)
    positions, distances = all_neighbors(index, fitted)
    sample_coordinates, params = _umap(fitted, metric, positions, distances)
    params["neighbor_graph"] = "faiss (the sample's own neighbours)"
    coordinates = np.empty((n, 2), dtype=np.float32)
    coordinates[sample] = sample_coordinates
    rest = np.ones(n, dtype=bool)
    rest[sample] = False
    rest = np.flatnonzero(rest)
    for start in range(0, len(rest), 65_536):
        rows = rest[start:start + 65_536]
        near, far = index.search(vectors[rows], PLACE_NEIGHBORS)
        # Nearer sample points weigh more; a copy of a sample point lands on it.
        weights = np.where(near >= 0, 1.0 / (np.maximum(far, 0.0).astype(np.float64) + 1e-6), 0.0)
        placed = np.einsum("rk,rkc->rc", weights, sample_coordinates[np.maximum(near, 0)])
        coordinates[rows] = placed / weights.sum(axis=1, keepdims=True)
    params.update({"sample_size": UMAP_SAMPLE, "fitted_on": f"{UMAP_SAMPLE:,} of {n:,} points (a fixed sample, seed {SEED})",
                   "others_placed": f"distance-weighted mean of their {PLACE_NEIGHBORS} nearest sample points"})
    return coordinates, params


def _pca(vectors: np.ndarray) -> np.ndarray:
    centered = vectors - vectors.mean(axis=0, dtype=np.float64)
    if centered.shape[0] < 2:
        return np.zeros((centered.shape[0], 2), dtype=np.float32)
    _, _, vt = np.linalg.svd(centered[: min(len(centered), 200_000)], full_matrices=False)
    components = vt[:2].T
    signs = np.sign(components[np.abs(components).argmax(axis=0), np.arange(components.shape[1])])
    coordinates = centered @ (components * np.where(signs == 0, 1, signs))
    if coordinates.shape[1] < 2:
        coordinates = np.hstack([coordinates, np.zeros((len(coordinates), 2 - coordinates.shape[1]))])
    return coordinates.astype(np.float32)


PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]


def map_png(coordinates: np.ndarray, labels: list | None = None, size: int = 720) -> bytes:
    """The map as a PNG: a point per row, coloured by ``labels`` (the 10 most frequent, grey others)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    if len(coordinates):
        low, high = coordinates.min(axis=0), coordinates.max(axis=0)
        span = np.where(high - low > 0, high - low, 1.0)
        pixels = ((coordinates - low) / span * (size - 24) + 12).astype(int)
        colours = ["#4e79a7"] * len(pixels)
        if labels is not None:
            values, counts = np.unique(np.asarray([str(v) for v in labels]), return_counts=True)
            top = {value: PALETTE[i] for i, value in enumerate(values[np.argsort(-counts, kind="stable")][: len(PALETTE)])}
            colours = [top.get(str(v), "#c8c8c8") for v in labels]
        radius = 1 if len(pixels) > 20_000 else 2
        step = max(1, len(pixels) // 200_000)  # a picture, not the data: at most 200,000 dots
        for (x, y), colour in zip(pixels[::step], colours[::step]):
            draw.rectangle([x - radius, size - y - radius, x + radius, size - y + radius], fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
