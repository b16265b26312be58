"""Embedding clustering on LaneNet-like embeddings: tight lane blobs far apart, plus scattered noise pixels."""
from __future__ import annotations

import numpy as np
import pytest

from lanenet_ros.decode.cluster import cluster_embeddings


def lane_embeddings(rng: np.random.Generator, sizes: list[int], centres: np.ndarray | None = None,
                    noise: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blobs within 0.45 of centres at least 3.5 apart (pull/push margins), then uniform noise."""
    dim = 4
    if centres is None:
        found: list[np.ndarray] = []
        while len(found) < len(sizes):
            c = rng.uniform(-4, 4, dim)
            if all(np.linalg.norm(c - o) > 3.5 for o in found):
                found.append(c)
        centres = np.array(found)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    off = rng.normal(0, 0.12, (len(truth), dim))
    off *= np.minimum(1.0, 0.45 / np.linalg.norm(off, axis=1, keepdims=True))
    emb = centres[truth] + off
    scatter = rng.uniform(centres.min(0) - 1.5, centres.max(0) + 1.5, (noise, dim))
    return np.vstack([emb, scatter]).astype(np.float32), np.r_[truth, np.full(noise, -1)]


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index from the contingency table (pair counting)."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    pairs = lambda x: (x * (x - 1) / 2).sum()  # noqa: E731
    index, sa, sb = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = sa * sb / pairs(np.array([len(a)]))
    return float((index - expected) / ((sa + sb) / 2 - expected))


def test_recovers_lanes_and_rejects_scattered_noise() -> None:
    rng = np.random.default_rng(0)
    emb, truth = lane_embeddings(rng, [1500, 1100, 700, 400, 60], noise=150)
    labels = cluster_embeddings(emb)
    assert labels.shape == truth.shape and labels.dtype == np.int64
    for lane in range(5):
        found, counts = np.unique(labels[truth == lane], return_counts=True)
        assert found[np.argmax(counts)] >= 0 and counts.max() == (truth == lane).sum()
    assert len(set(labels[truth >= 0].tolist())) == 5
    assert np.mean(labels[truth == -1] == -1) > 0.9
    assert adjusted_rand(truth, labels) > 0.99


def test_labels_numbered_by_decreasing_size() -> None:
    emb, truth = lane_embeddings(np.random.default_rng(1), [200, 900, 500])
    labels = cluster_embeddings(emb)
    sizes = np.bincount(labels[labels >= 0])
    assert list(sizes) == [900, 500, 200]
    assert np.all(labels[truth == 1] == 0)


def test_close_but_separate_lanes_are_not_merged() -> None:
    centres = np.array([[0.0, 0, 0, 0], [3.1, 0, 0, 0]])  # just over the push margin apart
    emb, truth = lane_embeddings(np.random.default_rng(2), [800, 800], centres=centres)
    labels = cluster_embeddings(emb)
    assert adjusted_rand(truth, labels) == 1.0


def test_small_clusters_become_noise() -> None:
    emb, truth = lane_embeddings(np.random.default_rng(3), [600, 10])
    labels = cluster_embeddings(emb, min_cluster_size=15)
    assert np.all(labels[truth == 1] == -1) and np.all(labels[truth == 0] == 0)
    labels = cluster_embeddings(emb, min_cluster_size=5)
    assert len(np.unique(labels[truth == 1])) == 1 and labels[truth == 1][0] == 1


def test_max_clusters_keeps_the_largest() -> None:
    emb, _ = lane_embeddings(np.random.default_rng(4), [500, 400, 300, 200])
    labels = cluster_embeddings(emb, max_clusters=2)
    assert set(np.unique(labels).tolist()) == {-1, 0, 1}
    assert (labels == -1).sum() == 500


def test_same_labeling_as_dbscan() -> None:
    cluster = pytest.importorskip("sklearn.cluster")
    emb, _ = lane_embeddings(np.random.default_rng(5), [1200, 900, 600, 300], noise=100)
    ref = cluster.DBSCAN(eps=0.35, min_samples=20).fit_predict(emb)
    assert adjusted_rand(ref, cluster_embeddings(emb)) >= 0.99


def test_empty_and_bad_input() -> None:
    assert cluster_embeddings(np.zeros((0, 4), np.float32)).shape == (0,)
    only_noise = np.random.default_rng(6).uniform(-50, 50, (30, 4)).astype(np.float32)
    assert np.all(cluster_embeddings(only_noise) == -1)
    with pytest.raises(ValueError, match=r"\(N, E\)"):
        cluster_embeddings(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="bandwidth"):
        cluster_embeddings(np.zeros((3, 4), np.float32), bandwidth=0)


def test_every_pixel_takes_its_nearest_centre_within_the_radius() -> None:
    from lanenet_ros.decode.cluster import _assign

    rng = np.random.default_rng(5)
    for trial in range(20):
        emb, _ = lane_embeddings(rng, [300, 200, 150], noise=400)
        emb = emb[rng.permutation(len(emb))] if trial % 2 else emb  # lane by lane, and shuffled
        centres = rng.uniform(-4, 4, (int(rng.integers(1, 7)), 4)).astype(np.float32)
        labels = _assign(emb, centres, 1.5, 1, 16)
        d = ((emb[:, None, :] - centres[None]) ** 2).sum(axis=2)
        nearest = np.where(d.min(axis=1) < 1.5**2, d.argmin(axis=1), -1)
        sizes = np.bincount(nearest[nearest >= 0], minlength=len(centres))
        rank = np.empty(len(centres), np.int64)
        rank[np.argsort(-sizes, kind="mergesort")] = np.arange(len(centres))
        expected = np.where(nearest >= 0, rank[nearest], -1)
        expected[(nearest >= 0) & (sizes[np.maximum(nearest, 0)] == 0)] = -1
        np.testing.assert_array_equal(labels, expected)
