"""Fast instance clustering of LaneNet pixel embeddings (vectorised numpy, no scikit-learn).

A LaneNet embedding branch is trained with a discriminative loss: pixels of one lane are pulled within
``delta_v`` (0.5) of their lane's mean, lane means pushed ``2 * delta_d`` apart (delta_d = 3). So each lane
is a tight blob and blobs are far apart. The clustering exploits that:

1. seeds: the embedding space is cut into a grid of cells of half the kernel bandwidth; cells are visited
   from the most populated down (a density ranking in one ``np.unique``);
2. each seed climbs to its blob's centre by flat-kernel mean shift (a few O(N) steps);
3. every pixel takes the nearest centre within ``assign_radius``, others are noise (-1); clusters smaller
   than ``min_cluster_size`` become noise too.

The cost is O(N * E * (clusters + noise seeds) * iterations), about a millisecond for a few thousand pixels,
where scikit-learn's DBSCAN builds a neighbour list per pixel.
"""
from __future__ import annotations

import numpy as np

_MEAN_SHIFT_SAMPLES = 1500


def cluster_embeddings(emb: np.ndarray, bandwidth: float = 1.0, assign_radius: float = 1.5,
                       min_cluster_size: int = 15, max_clusters: int = 16, max_iter: int = 10) -> np.ndarray:
    """Group pixel embeddings into lane instances.

    Args:
        emb: (N, E) embeddings of the lane pixels.
        bandwidth: radius of the flat mean-shift kernel (about twice the pull margin).
        assign_radius: pixels farther than this from every centre are noise (keep it below half the
            distance between lane centres, i.e. below the push margin).
        min_cluster_size: clusters with fewer pixels are noise.
        max_clusters: at most this many clusters are returned (the largest).
        max_iter: mean-shift steps per seed.

    Returns:
        (N,) int64 labels 0..K-1 numbered by decreasing cluster size, -1 for noise.

    Raises:
        ValueError: ``emb`` is not two-dimensional or a radius is not positive.
    """
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be (N, E), got shape {emb.shape}")
    if bandwidth <= 0 or assign_radius <= 0:
        raise ValueError(f"bandwidth and assign_radius must be > 0, got {bandwidth} and {assign_radius}")
    if len(emb) == 0:
        return np.zeros(0, dtype=np.int64)
    centres = _find_centres(emb, bandwidth, assign_radius, min_cluster_size, max_clusters, max_iter)
    return _assign(emb, centres, assign_radius, min_cluster_size, max_clusters)


def _find_centres(emb: np.ndarray, bandwidth: float, assign_radius: float, min_cluster_size: int,
                  max_clusters: int, max_iter: int) -> list[np.ndarray]:
    """Mean-shift centres climbed from the densest grid cells, one per blob."""
    # seeds and centres come from a subsample: a blob's density peak and mean move little when every k-th
    # pixel is dropped, and the cost no longer grows with the number of pixels
    step = max(1, len(emb) // _MEAN_SHIFT_SAMPLES)
    sample = np.ascontiguousarray(emb[::step])
    sample_sq = np.einsum("ij,ij->i", sample, sample)
    first, counts = _dense_cells(sample, bandwidth / 2.0)
    order = np.argsort(-counts, kind="stable")
    seeds = sample[first[order[counts[order] >= max(2, min_cluster_size // (10 * step))]]]
    covered = np.zeros(len(seeds), dtype=bool)
    centres: list[np.ndarray] = []
    attempts = 0
    for i, seed in enumerate(seeds):
        if len(centres) >= 2 * max_clusters or attempts >= 4 * max_clusters:
            break
        if covered[i]:
            continue
        attempts += 1
        centre = _mean_shift(sample, sample_sq, seed, bandwidth, max_iter)
        covered |= _sq_dist(seeds, centre) < assign_radius**2
        if all(np.sum((centre - c) ** 2) > bandwidth**2 for c in centres):
            centres.append(centre)
    return centres


def _dense_cells(emb: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid cells of side ``cell``: index of one pixel in each occupied cell, and the cell's pixel count."""
    q = np.floor(emb / cell).astype(np.int64)
    q -= q.min(axis=0)
    spans = q.max(axis=0) + 1
    if np.prod(spans.astype(np.float64)) < 2.0**62:
        mult = np.cumprod(np.r_[1, spans[:-1]]).astype(np.int64)
        _, first, counts = np.unique(q @ mult, return_index=True, return_counts=True)
    else:  # very spread embeddings: compare the integer rows directly
        _, first, counts = np.unique(q, axis=0, return_index=True, return_counts=True)
    return first, counts


def _mean_shift(emb: np.ndarray, emb_sq: np.ndarray, start: np.ndarray, bandwidth: float,
                max_iter: int) -> np.ndarray:
    """Climb from ``start`` to the local mean of the points within ``bandwidth`` (flat kernel).

    ``emb_sq`` holds the squared norms of ``emb``: distances come from one matrix-vector product.
    """
    centre = start.astype(np.float32)
    limit = np.float32(bandwidth**2)
    for _ in range(max_iter):
        near = (emb_sq - 2.0 * (emb @ centre) + centre @ centre) < limit
        count = np.count_nonzero(near)
        if count == 0:
            break
        new = (near.astype(np.float32) @ emb) / np.float32(count)
        shift = float(np.sum((new - centre) ** 2))
        centre = new
        if shift < (1e-3 * bandwidth) ** 2:
            break
    return centre.astype(np.float64)


def _sq_dist(emb: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Squared distance of every embedding to one centre."""
    diff = emb - centre.astype(np.float32)
    return np.einsum("ij,ij->i", diff, diff)


def _assign(emb: np.ndarray, centres: list[np.ndarray], assign_radius: float, min_cluster_size: int,
            max_clusters: int) -> np.ndarray:
    """Nearest centre within ``assign_radius``; small clusters dropped; labels by decreasing size."""
    labels = np.full(len(emb), -1, dtype=np.int64)
    if not centres:
        return labels
    # squared distances as (K, N): reductions over the short K axis of a (N, K) array are slow in numpy
    c = np.asarray(centres, dtype=np.float32)
    d2 = c @ emb.T
    d2 *= -2.0
    d2 += np.einsum("ij,ij->i", emb, emb)[None, :]
    d2 += np.einsum("ij,ij->i", c, c)[:, None]
    best = d2.min(axis=0)
    nearest = np.full(len(emb), -1, dtype=np.int64)
    for k in range(len(centres) - 1, -1, -1):  # descending: the lowest index wins ties, like argmin
        nearest[d2[k] == best] = k
    nearest[best >= assign_radius**2] = -1
    inside = nearest >= 0
    sizes = np.bincount(nearest[inside], minlength=len(centres))
    order = np.argsort(-sizes, kind="stable")
    keep = order[sizes[order] >= min_cluster_size][:max_clusters]
    new_id = np.full(len(centres) + 1, -1, dtype=np.int64)  # last entry: nearest == -1
    new_id[keep] = np.arange(len(keep))
    return new_id[nearest]
