"""Fast instance clustering of LaneNet pixel embeddings (one compiled kernel, no scikit-learn).

A LaneNet embedding branch is trained with a discriminative loss: pixels of one lane are pulled within
``delta_v`` (0.5) of their lane's mean, lane means pushed ``2 * delta_d`` apart (delta_d = 3). So each lane
is a tight blob and blobs are far apart. The clustering exploits that:

1. seeds: the embedding space is cut into a grid of cells of half the kernel bandwidth; the most populated
   cells are the seeds (a density ranking);
2. the seeds climb to their blobs' centres by flat-kernel mean shift; the best-supported centre of each
   blob is kept; a second and third round seed from the pixels the centres found so far leave uncovered
   (small lanes beside big ones);
3. every pixel takes the nearest centre within ``assign_radius``, others are noise (-1); clusters smaller
   than ``min_cluster_size`` become noise too.

Seeds and centres come from a subsample of at most 500 pixels (a blob's density peak and mean move little
when every k-th pixel is dropped), so the cost of steps 1-2 does not grow with the number of pixels; step 3 is
one pass over the pixels. Well under a millisecond per frame, where scikit-learn's DBSCAN builds a neighbour
list per pixel (``bench/bench_clustering.py``).
"""
from __future__ import annotations

import numpy as np

from lanenet_ros.jit import kernel, warms_up

_MEAN_SHIFT_SAMPLES = 500
_ROUNDS = 3  # seeding rounds: the densest cells, then what the centres found so far leave uncovered


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
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be (N, E), got shape {emb.shape}")
    if bandwidth <= 0 or assign_radius <= 0:
        raise ValueError(f"bandwidth and assign_radius must be > 0, got {bandwidth} and {assign_radius}")
    if len(emb) == 0:
        return np.zeros(0, dtype=np.int64)
    centres = _find_centres(emb, float(bandwidth), float(assign_radius), int(min_cluster_size),
                            int(max_clusters), int(max_iter))
    return _assign(emb, centres, float(assign_radius), int(min_cluster_size), int(max_clusters))


@kernel
def _find_centres(emb, bandwidth, assign_radius, min_cluster_size, max_clusters, max_iter):  # pragma: no cover
    """Mean-shift centres climbed from the densest grid cells, one per blob, as (K, E) float32.

    A round climbs the densest cells not yet within ``assign_radius`` of a centre (best supported first, one
    centre per blob); a later round looks at what the earlier ones left uncovered, so small lanes are found
    even when the big ones fill many cells.
    """
    step = max(1, len(emb) // _MEAN_SHIFT_SAMPLES)
    sample = emb[::step].copy()
    n, dim = sample.shape
    min_count = max(2, min_cluster_size // (10 * step))
    limit = 2 * max_clusters
    centres = np.zeros((limit, dim), np.float32)
    found = 0
    uncovered = np.ones(n, np.bool_)
    by_first = sample[np.argsort(sample[:, 0], kind="mergesort")]  # mean shift scans a window of it
    for _ in range(_ROUNDS):
        left = sample[uncovered]
        if len(left) * step < min_cluster_size or found >= limit:
            break  # what is left could not make a cluster
        first, counts = _dense_cells(left, bandwidth / 2.0)
        order = np.argsort(-counts, kind="mergesort")
        seeds = np.empty((min(len(order), limit), dim), np.float32)
        n_seeds = 0
        for i in order:
            if counts[i] < min_count or n_seeds == len(seeds):
                break
            seeds[n_seeds] = left[first[i]]
            n_seeds += 1
        if n_seeds == 0:
            break
        climbed, support = _mean_shift(by_first, seeds[:n_seeds], bandwidth, max_iter)
        for i in np.argsort(-support, kind="mergesort"):  # best supported first; one centre per blob
            if found >= limit:
                break
            new = True
            for j in range(found):  # farther than the bandwidth from every centre kept so far
                if _sq_dist(climbed, i, centres, j) <= bandwidth * bandwidth:
                    new = False
                    break
            if new:
                centres[found] = climbed[i]
                found += 1
        for p in range(n):
            if uncovered[p]:
                for j in range(found):
                    if _sq_dist(sample, p, centres, j) < assign_radius * assign_radius:
                        uncovered[p] = False
                        break
    return centres[:found].copy()


@kernel
def _dense_cells(emb, cell):  # pragma: no cover
    """Grid cells of side ``cell``: index of the first pixel in each occupied cell, and the cell's pixel count;
    cells in lexicographic order of their grid coordinates, the last coordinate most significant."""
    n, dim = emb.shape
    q = np.empty((n, dim), np.int64)
    for i in range(n):
        for d in range(dim):
            q[i, d] = np.int64(np.floor(emb[i, d] / cell))
    order = np.arange(n)
    spare = np.empty(n, np.int64)
    width = 1
    while width < n:  # a bottom-up merge sort of the pixels by cell: stable, pixels in a cell keep their order
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            a, b = lo, mid
            for k in range(lo, hi):
                if a < mid and (b == hi or not _after(q, order[a], order[b])):
                    spare[k] = order[a]
                    a += 1
                else:
                    spare[k] = order[b]
                    b += 1
        order, spare = spare, order
        width *= 2
    first = np.empty(n, np.int64)
    counts = np.zeros(n, np.int64)
    cells = -1
    for k in range(n):
        i = order[k]
        if k == 0 or _differ(q, i, order[k - 1]):
            cells += 1
            first[cells] = i
        counts[cells] += 1
    return first[:cells + 1], counts[:cells + 1]


@kernel
def _after(q, i, j):  # pragma: no cover
    """Whether row ``q[i]`` comes after ``q[j]`` in lexicographic order, the last coordinate most significant."""
    for d in range(q.shape[1] - 1, -1, -1):
        if q[i, d] != q[j, d]:
            return q[i, d] > q[j, d]
    return False


@kernel
def _differ(q, i, j):  # pragma: no cover
    """Whether rows ``q[i]`` and ``q[j]`` differ."""
    for d in range(q.shape[1]):  # noqa: SIM110 (a generator is slower in numba)
        if q[i, d] != q[j, d]:
            return True
    return False


@kernel
def _sq_dist(a, i, b, j):  # pragma: no cover
    """Squared distance between rows ``a[i]`` and ``b[j]``."""
    s = np.float32(0.0)
    for d in range(a.shape[1]):
        t = a[i, d] - b[j, d]
        s += t * t
    return s


@kernel
def _mean_shift(emb, starts, bandwidth, max_iter):  # pragma: no cover
    """Climb every row of ``starts`` to the mean of the points of ``emb`` within ``bandwidth`` (flat kernel);
    ``emb`` sorted by its first coordinate, so that only the points within ``bandwidth`` of a centre in that
    coordinate are looked at.

    Returns the centres (S, E) and the number of points within ``bandwidth`` of each on the last step (a seed
    that finds none stays where it is, with support 0).
    """
    limit = np.float32(bandwidth * bandwidth)
    tol = np.float32((1e-3 * bandwidth) ** 2)
    dim = emb.shape[1]
    first = emb[:, 0].copy()
    centres = starts.copy()
    support = np.zeros(len(centres), np.float32)
    total = np.zeros(dim, np.float64)
    for s in range(len(centres)):
        for _ in range(max_iter):
            total[:] = 0.0
            count = 0
            lo = np.searchsorted(first, centres[s, 0] - bandwidth)
            hi = np.searchsorted(first, centres[s, 0] + bandwidth, side="right")
            for p in range(lo, hi):
                if _sq_dist(emb, p, centres, s) < limit:
                    count += 1
                    for d in range(dim):
                        total[d] += emb[p, d]
            support[s] = count
            if count == 0:
                break
            shift = np.float32(0.0)
            for d in range(dim):
                t = np.float32(total[d] / count)
                shift += (t - centres[s, d]) ** 2
                centres[s, d] = t
            if shift < tol:
                break
    return centres, support


@kernel
def _assign(emb, centres, assign_radius, min_cluster_size, max_clusters):  # pragma: no cover
    """Nearest centre within ``assign_radius`` (the lowest index on ties); small clusters dropped; labels by
    decreasing size."""
    n, k = len(emb), len(centres)
    nearest = np.full(n, -1, np.int64)
    sizes = np.zeros(k + 1, np.int64)
    limit = np.float32(assign_radius * assign_radius)
    # a pixel nearer to a centre than about half the way to the next centre is nearest to it (the triangle
    # inequality; 1 / 2.05, a margin for rounding), and pixels come lane by lane along the rows: the previous
    # pixel's centre is tried first, and the scan of all centres stops at one that settles it
    sure = np.full(k, limit, np.float32)
    for j in range(k):
        for m in range(k):
            if m != j:
                sure[j] = min(sure[j], _sq_dist(centres, j, centres, m) / np.float32(2.05**2))
    last = -1
    for p in range(n):
        if last >= 0 and _sq_dist(emb, p, centres, last) < sure[last]:
            nearest[p] = last
        else:
            best = limit
            for j in range(k):
                d = _sq_dist(emb, p, centres, j)
                if d < sure[j]:  # no other centre can be as near
                    nearest[p] = j
                    break
                if d < best:
                    best = d
                    nearest[p] = j
            last = nearest[p]
        sizes[nearest[p]] += 1  # noise counts in sizes[-1]
    order = np.argsort(-sizes[:k], kind="mergesort")
    new_id = np.full(k + 1, -1, np.int64)  # last entry: nearest == -1
    for kept, j in enumerate(order):
        if sizes[j] < min_cluster_size or kept == max_clusters:
            break
        new_id[j] = kept
    for p in range(n):
        nearest[p] = new_id[nearest[p]]
    return nearest


@warms_up
def _warm() -> None:
    rng = np.random.default_rng(0)
    cluster_embeddings(rng.normal(0.0, 0.2, (40, 4)).astype(np.float32), min_cluster_size=5)
