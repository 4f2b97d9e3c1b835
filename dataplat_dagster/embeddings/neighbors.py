"""Nearest neighbours of stored vectors: exact search where it is cheap, faiss's IVF index
where it is not.

Image and text vectors are L2-normalized and compared by cosine distance (1 - cosine
similarity); tabular vectors by Euclidean distance. Exact search is faiss's flat index (one
BLAS product per block of queries). Two costs decide, each measured (bench/README.md):

- a single query costs n·d: exact search answers one on 12.8 million vector elements
  (200,000 × 64) in about 3 ms, on 20 million in 4 to 6 ms. Past ``INDEX_ABOVE`` elements a
  query goes through an inverted file index (``IndexIVFFlat``: ``4·√n`` lists, ``NPROBE``
  probed), built in the run and stored beside the vectors;
- every point's neighbours, which each run stores, cost n²·d: exact search of all 625,000 ×
  32 points took 23 minutes, 19 times IVF's time. Past ``ALL_EXACT_UP_TO`` (20,000 × 20,000
  × 32, under a second exact) they come from an IVF index even where single queries stay
  exact; IVF was already 2.6× faster there, and 7× at 200,000 × 32, with recall@10 ≥ 0.995.

On 1M vectors IVF builds in 0.70× the time of faiss's HNSW and 0.57× usearch's, with a better
recall (1.000 against 0.956 and 0.966). k-means runs on a sample drawn with a fixed seed:
a run finds the same neighbours as the last.

faiss is imported here only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dataplat_dagster.errors import DataplatError

INDEX_ABOVE = 20_000_000  # vectors × dimension: below it, an exact single query takes about 5 ms
ALL_EXACT_UP_TO = 20_000 * 20_000 * 32  # vectors² × dimension: below it, exact all-neighbours takes under a second
NPROBE = 16
STORED_NEIGHBORS = 15  # per point, nearest first: the explorer lists 10, UMAP's graph takes 15
TABULAR_HINT = "install the extra: pip install 'dataplat-dagster[embeddings-tabular]' (umap-learn, scikit-learn, faiss-cpu)"


def require_faiss():
    try:
        import faiss
    except ImportError:
        raise DataplatError(f"Nearest neighbours and maps of embeddings need faiss: {TABULAR_HINT}.") from None
    return faiss


@dataclass
class NeighborIndex:
    index: object
    metric: str  # "cosine" or "euclidean"
    approximate: bool

    @classmethod
    def build(cls, vectors: np.ndarray, metric: str, approximate: bool | None = None) -> NeighborIndex:
        """Exact up to ``INDEX_ABOVE`` elements, IVF above, unless ``approximate`` says which."""
        faiss = require_faiss()
        n, dimension = vectors.shape
        inner = metric == "cosine"
        if approximate is None:
            approximate = n * dimension > INDEX_ABOVE
        if not approximate:
            index = faiss.IndexFlatIP(dimension) if inner else faiss.IndexFlatL2(dimension)
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            return cls(index, metric, approximate=False)
        lists = int(4 * math.sqrt(n))
        quantizer = faiss.IndexFlatIP(dimension) if inner else faiss.IndexFlatL2(dimension)
        index = faiss.IndexIVFFlat(quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2)
        # k-means on a sample (faiss' own advice: 39 to 256 points per list); a fixed seed.
        sample = np.random.default_rng(0).choice(n, size=min(n, 64 * lists), replace=False)
        index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
        for start in range(0, n, 100_000):
            index.add(np.ascontiguousarray(vectors[start:start + 100_000], dtype=np.float32))
        index.nprobe = NPROBE
        return cls(index, metric, approximate=True)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest stored vectors of each query: (positions, distances), nearest first;
        a position of -1 where there are fewer than ``k`` vectors."""
        k = max(1, min(k, self.index.ntotal))
        scores, positions = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        if self.metric == "cosine":
            distances = 1.0 - scores
        else:
            distances = np.sqrt(np.maximum(scores, 0.0))
        return positions, np.where(positions < 0, np.inf, distances).astype(np.float32)

    def save(self, path) -> None:
        require_faiss().write_index(self.index, str(path))

    @classmethod
    def load(cls, path, metric: str) -> NeighborIndex:
        index = require_faiss().read_index(str(path))
        if hasattr(index, "nprobe"):
            index.nprobe = NPROBE
        return cls(index, metric, approximate=hasattr(index, "nprobe"))


def graph_index(index: NeighborIndex, vectors: np.ndarray) -> NeighborIndex:
    """The index to find every point's neighbours with: ``index`` itself, or an IVF index over
    ``vectors`` when ``index`` is exact and exact search of all points would cost more than
    ``ALL_EXACT_UP_TO``."""
    n, dimension = vectors.shape
    if index.approximate or n * n * dimension <= ALL_EXACT_UP_TO:
        return index
    return NeighborIndex.build(vectors, index.metric, approximate=True)


def all_neighbors(index: NeighborIndex, vectors: np.ndarray, k: int = STORED_NEIGHBORS,
                  block: int = 8_192) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ``k`` nearest other points, (n, k) positions and distances, -1 / inf where
    there are fewer. Queried block by block, so memory holds one block of scores at a time."""
    n = vectors.shape[0]
    positions = np.full((n, k), -1, dtype=np.int32)
    distances = np.full((n, k), np.inf, dtype=np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        found, found_distances = index.search(vectors[start:stop], k + 1)
        if found.shape[1] < k + 1:  # fewer points than k + 1: pad, the padding dropped below
            pad = k + 1 - found.shape[1]
            found = np.hstack([found, np.full((len(found), pad), -1, found.dtype)])
            found_distances = np.hstack([found_distances, np.full((len(found), pad), np.inf, np.float32)])
        # Drop each point itself; where exact copies pushed it out of the k + 1, drop the last.
        keep = found != np.arange(start, stop)[:, None]
        keep[keep.all(axis=1), -1] = False
        positions[start:stop] = found[keep].reshape(-1, k)
        distances[start:stop] = found_distances[keep].reshape(-1, k)
    return positions, distances


def uniqueness(distances: np.ndarray) -> np.ndarray:
    """How untypical each point is, in [0, 1]: the weighted distance to its 3 nearest
    neighbours (0.6, 0.3, 0.1, the weights of FiftyOne's brain), over the largest such.

    Not FiftyOne's ranking, by choice: its brain subtracts the mean vector before taking cosine
    distances (and below 15,000 samples skips the nearest neighbour), while this scores the
    neighbours the run stores and the explorer lists, in the run's own metric, so that a point
    shown as unique is one whose listed neighbours are far. Where vectors share a dominant
    direction the two rankings differ (bench/README.md: Spearman 0.07 on random-weight CLIP
    vectors; 0.99 when these are given FiftyOne's centred vectors)."""
    weights = np.array([0.6, 0.3, 0.1], dtype=np.float64)[: distances.shape[1]]
    near = np.where(np.isfinite(distances[:, : weights.size]), distances[:, : weights.size], 0.0)
    score = near @ (weights / weights.sum())
    top = score.max() if score.size else 0.0
    return (score / top if top > 0 else score).astype(np.float32)


def duplicate_groups(positions: np.ndarray, distances: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups of points linked by a neighbour within ``threshold`` (connected components),
    each sorted, largest groups first."""
    n = positions.shape[0]
    parent = np.arange(n)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    rows, cols = np.nonzero((distances <= threshold) & (positions >= 0))
    for row, col in zip(rows.tolist(), cols.tolist()):
        a, b = find(row), find(int(positions[row, col]))
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for point in sorted({int(p) for p in rows.tolist()} | {int(positions[r, c]) for r, c in zip(rows.tolist(), cols.tolist())}):
        groups.setdefault(find(point), []).append(point)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
