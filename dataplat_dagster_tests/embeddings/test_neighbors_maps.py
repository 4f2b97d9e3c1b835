"""Which index finds every point's neighbours, and the UMAP map fitted on a sample: both chosen
by size, both the same from one run to the next."""

import numpy as np
import pytest

from dataplat_dagster.embeddings import maps, neighbors
from dataplat_dagster.embeddings.neighbors import (
    NeighborIndex,
    all_neighbors,
    graph_index,
)


def _clusters(n=600, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 10, (4, d))
    labels = rng.integers(0, 4, n)
    return (centers[labels] + rng.normal(0, 1, (n, d))).astype(np.float32), labels


def test_all_neighbours_go_through_ivf_where_exact_search_of_every_point_costs_too_much(monkeypatch):
    pytest.importorskip("faiss")
    vectors, _ = _clusters()
    exact = NeighborIndex.build(vectors, "euclidean")
    assert not exact.approximate and graph_index(exact, vectors) is exact
    monkeypatch.setattr(neighbors, "ALL_EXACT_UP_TO", 600 * 600 * 8 - 1)
    graph = graph_index(exact, vectors)
    assert graph.approximate and not exact.approximate  # single queries stay exact
    truth, _ = all_neighbors(exact, vectors)
    found, distances = all_neighbors(graph, vectors)
    again, _ = all_neighbors(graph_index(exact, vectors), vectors)
    assert np.array_equal(found, again)
    recall = np.mean([len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(found, truth)])
    assert recall > 0.95 and (found != np.arange(600)[:, None]).all() and (np.diff(distances, axis=1) >= 0).all()


def test_umap_above_its_sample_size_places_the_other_points_near_their_neighbours(monkeypatch):
    pytest.importorskip("umap")
    vectors, labels = _clusters()
    monkeypatch.setattr(maps, "UMAP_SAMPLE", 200)
    positions, distances = all_neighbors(NeighborIndex.build(vectors, "euclidean"), vectors)
    coordinates, params = maps.map_2d(vectors, "umap", "euclidean", positions, distances)
    again, _ = maps.map_2d(vectors, "umap", "euclidean", positions, distances)
    assert coordinates.shape == (600, 2) and np.isfinite(coordinates).all() and np.array_equal(coordinates, again)
    assert params["fitted_on"].startswith("200 of 600 points") and "nearest sample points" in params["others_placed"]
    # Placed points land among their own cluster: nearest on the map mostly share the label.
    near = np.argsort(((coordinates[:, None] - coordinates[None]) ** 2).sum(-1), axis=1)[:, 1:6]
    assert (labels[near] == labels[:, None]).mean() > 0.9
