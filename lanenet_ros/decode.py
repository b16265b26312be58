"""Network outputs of one image -> LaneFrame: class mask at camera resolution and fitted, typed lanes.

LaneNet (``binary_logits`` + ``embedding``): lane pixels from the binary branch, instances from clustering
their embeddings (:mod:`lanenet_ros.cluster`). Multi-class models (``class_logits``): per lane class, connected
components, with the dashes of one marking chained along their common line. Each instance is then fitted in
camera pixels (:mod:`lanenet_ros.fitting`), typed, coloured, ordered left to right and assigned to the ego lane.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from lanenet_ros import fitting
from lanenet_ros.cluster import cluster_embeddings
from lanenet_ros.lanes import DetectedLane, LaneFrame, MarkingColor, MarkingType
from lanenet_ros.preprocess import Geometry

MEANINGS = ("binary_logits", "embedding", "class_logits")


@dataclass
class DecodeParams:
    """Tuning of the decoder (pixel sizes are network-output pixels unless they say camera).

    Attributes:
        min_lane_pixels: instances with fewer pixels are dropped.
        min_lane_rows: instances spanning fewer distinct rows are dropped.
        poly_degree: degree of x(y) (lowered for short lanes).
        outlier_px: a pixel row further than this from the fit (at least) is an outlier.
        point_step_px: camera rows between sampled lane points.
        cluster_bandwidth: mean-shift kernel radius in embedding space.
        cluster_radius: embedding distance within which a pixel joins a lane.
        chain_px: multi-class: a dash joins a marking when within this of its extended line.
        max_lanes: most lanes kept (highest confidence).
        min_confidence: lanes below are dropped.
        double_fraction: share of near rows with two runs that makes a double line.
        ego_center: vehicle centre line as a fraction of the image width at the bottom row.
    """

    min_lane_pixels: int = 30
    min_lane_rows: int = 8
    poly_degree: int = 3
    outlier_px: float = 2.5
    point_step_px: float = 10.0
    cluster_bandwidth: float = 1.0
    cluster_radius: float = 1.5
    chain_px: float = 6.0
    max_lanes: int = 8
    min_confidence: float = 0.1
    double_fraction: float = 0.4
    ego_center: float = 0.5

    def validate(self) -> DecodeParams:
        """Check ranges; return self.

        Raises:
            ValueError: naming the first bad parameter and its allowed range.
        """
        checks = {"min_lane_pixels": self.min_lane_pixels >= 2, "min_lane_rows": self.min_lane_rows >= 2,
                  "poly_degree": 1 <= self.poly_degree <= 5, "outlier_px": self.outlier_px > 0,
                  "point_step_px": self.point_step_px > 0, "cluster_bandwidth": self.cluster_bandwidth > 0,
                  "cluster_radius": self.cluster_radius > 0, "chain_px": self.chain_px >= 0,
                  "max_lanes": self.max_lanes >= 1, "min_confidence": 0 <= self.min_confidence <= 1,
                  "double_fraction": 0 < self.double_fraction <= 1, "ego_center": 0 <= self.ego_center <= 1}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"decode parameter {name}={getattr(self, name)!r} is out of range "
                                 "(counts >= 2 or 1, sizes > 0, fractions in [0, 1], poly_degree 1..5)")
        return self


@dataclass
class LaneInstance:
    """Pixels of one lane at network-output resolution, with the class and mean probability behind them."""

    rows: np.ndarray
    cols: np.ndarray
    class_id: int
    score: float


class LaneDecoder:
    """Turns one image's network outputs into a :class:`LaneFrame` in camera pixels."""

    def __init__(self, info: Any, params: DecodeParams | None = None) -> None:
        """Configure from a model description.

        Args:
            info: ``ModelInfo`` or anything with ``architecture``, ``outputs`` (tensor name -> meaning),
                ``class_names``, ``lane_class_ids`` and ``embedding_dim``.
            params: tuning; defaults when None.
        """
        self.params = (params or DecodeParams()).validate()
        self.architecture = str(getattr(info, "architecture", "lanenet"))
        self.output_meanings = dict(getattr(info, "outputs", None) or {})
        self.class_names = list(getattr(info, "class_names", None) or ["background", "lane"])
        ids = getattr(info, "lane_class_ids", None)
        self.lane_class_ids = [int(i) for i in ids] if ids else list(range(1, len(self.class_names)))
        self.embedding_dim = int(getattr(info, "embedding_dim", 0) or 0)
        self._class_marking = {i: fitting.parse_class_marking(n) for i, n in enumerate(self.class_names)}

    def decode(self, outputs: Mapping[str, np.ndarray], geometry: Geometry,
               image_bgr: np.ndarray | None = None) -> LaneFrame:
        """Decode the outputs of one image.

        Args:
            outputs: output tensors by name (or by meaning: ``binary_logits``, ``embedding``, ``class_logits``),
                (C, H, W) each; a leading batch dimension of 1 is accepted.
            geometry: how the camera image became the network input (from the Preprocessor).
            image_bgr: the camera image, to read marking colours; colours are UNKNOWN without it.

        Returns:
            The frame: class mask at camera resolution and lanes left to right with ego indices.

        Raises:
            ValueError: a needed output is missing or has the wrong shape (the message names it).
        """
        named = self._by_meaning(outputs)
        if "class_logits" in named:
            logits = named["class_logits"]
            class_mask = argmax_channels(logits)
            instances = self._component_instances(class_mask, logits)
        elif "binary_logits" in named:
            logits = named["binary_logits"]
            class_mask = (logits[1] > logits[0]).astype(np.uint8)
            instances = self._binary_instances(class_mask, logits, named.get("embedding"))
        else:
            raise ValueError(f"model outputs {sorted(outputs)} hold neither binary_logits nor class_logits "
                             "(check the model's 'outputs' metadata)")
        geo = dataclasses.replace(geometry, input_width=class_mask.shape[1], input_height=class_mask.shape[0])
        lanes = [lane for inst in instances if (lane := self._fit(inst, geo, image_bgr)) is not None]
        lanes = sorted(lanes, key=lambda lane: -lane.confidence)[: self.params.max_lanes]
        lanes, ego_l, ego_r = fitting.order_lanes(lanes, geo.src_width, geo.src_height, self.params.ego_center)
        return LaneFrame(width=geo.src_width, height=geo.src_height, class_mask=geo.mask_to_camera(class_mask),
                         lanes=lanes, ego_left_index=ego_l, ego_right_index=ego_r)

    def _by_meaning(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs keyed by meaning, batch dimension dropped, shapes checked."""
        named = {}
        for name, value in outputs.items():
            meaning = self.output_meanings.get(name, name)
            if meaning not in MEANINGS:
                continue
            arr = np.asarray(value)
            if arr.ndim == 4 and arr.shape[0] == 1:
                arr = arr[0]
            if arr.ndim != 3:
                raise ValueError(f"output {name!r} ({meaning}) must be (C, H, W), got shape {arr.shape}")
            named[meaning] = arr
        if "binary_logits" in named and named["binary_logits"].shape[0] != 2:
            raise ValueError(f"binary_logits must have 2 channels, got {named['binary_logits'].shape[0]}")
        return named

    def _binary_instances(self, mask: np.ndarray, logits: np.ndarray,
                          embedding: np.ndarray | None) -> list[LaneInstance]:
        """LaneNet: cluster lane-pixel embeddings; without an embedding, chain connected components."""
        if embedding is None or embedding.shape[0] == 0:
            return self._component_instances(mask, logits)
        if embedding.shape[1:] != mask.shape:
            raise ValueError(f"embedding is {embedding.shape[1:]} but binary_logits is {mask.shape} (H, W)")
        rows, cols = np.nonzero(mask)
        if len(rows) < self.params.min_lane_pixels:
            return []
        p = self.params
        labels = cluster_embeddings(embedding[:, rows, cols].T, bandwidth=p.cluster_bandwidth,
                                    assign_radius=p.cluster_radius, min_cluster_size=p.min_lane_pixels,
                                    max_clusters=2 * p.max_lanes)
        prob = 1.0 / (1.0 + np.exp(logits[0, rows, cols] - logits[1, rows, cols]))
        return [LaneInstance(rows[labels == k], cols[labels == k], 1, float(prob[labels == k].mean()))
                for k in range(int(labels.max()) + 1)]

    def _component_instances(self, class_mask: np.ndarray, logits: np.ndarray) -> list[LaneInstance]:
        """Per lane class: connected components, dashes of one marking chained along their line."""
        instances = []
        for cid in self.lane_class_ids:
            if cid >= logits.shape[0]:
                continue
            count, comp = cv2.connectedComponents((class_mask == cid).astype(np.uint8), connectivity=8)
            if count <= 1:
                continue
            rows, cols = np.nonzero(comp)
            for group in chain_components(rows, cols, comp[rows, cols], self.params.chain_px):
                if len(group) >= self.params.min_lane_pixels:
                    r, c = rows[group], cols[group]
                    instances.append(LaneInstance(r, c, cid, _class_probability(logits, cid, r, c)))
        return instances

    def _fit(self, inst: LaneInstance, geo: Geometry, image_bgr: np.ndarray | None) -> DetectedLane | None:
        """Fit, type and colour one instance; None when too small or too weak."""
        p = self.params
        uniq, median, _, extent = fitting.row_runs(inst.rows, inst.cols)
        if len(uniq) < p.min_lane_rows:
            return None
        span = (uniq[-1] - uniq[0] + 1) / geo.input_height
        degree = p.poly_degree if span >= 0.3 else min(p.poly_degree, 2 if span >= 0.15 else 1)
        # fit the per-row centre line in network pixels; map the fit's support to camera pixels
        coeffs_in, inliers = fitting.robust_polyfit(uniq, median, degree, p.outlier_px)
        xc, yc = geo.to_camera(median[inliers], uniq[inliers])
        coeffs = np.polynomial.polynomial.polyfit(yc, xc, min(degree, len(yc) - 1))
        half_row = geo.scale_y / 2.0
        y_min = float(max(yc.min() - half_row, geo.crop_top))
        y_max = float(min(yc.max() + half_row, geo.src_height - 1))
        # pixels of the marking itself: within half its usual width (plus the fit tolerance) of the fit
        band = p.outlier_px + np.median(extent) / 2.0 + 1.0
        on_line = np.abs(inst.cols - np.polynomial.polynomial.polyval(inst.rows, coeffs_in)) <= band
        confidence = inst.score * inliers.mean() * min(1.0, span / 0.25)
        if confidence < p.min_confidence:
            return None
        return DetectedLane(
            image_coeffs=coeffs, y_min=y_min, y_max=y_max,
            points=fitting.sample_points(coeffs, y_min, y_max, p.point_step_px),
            confidence=float(np.clip(confidence, 0.0, 1.0)),
            marking_type=self._marking_type(inst, on_line, coeffs_in),
            color=self._marking_color(inst, geo, image_bgr))

    def _marking_type(self, inst: LaneInstance, on_line: np.ndarray, coeffs_in: np.ndarray) -> MarkingType:
        """From the class name when it says, else from gaps and double runs along the lane."""
        named = self._class_marking.get(inst.class_id)
        if named is not None:
            return named.marking_type
        rows, cols = inst.rows[on_line], inst.cols[on_line]
        if len(rows) == 0:
            return MarkingType.UNKNOWN
        centre = np.polynomial.polynomial.polyval(rows, coeffs_in)
        return fitting.marking_type(rows, cols, centre, self.params.double_fraction)

    def _marking_color(self, inst: LaneInstance, geo: Geometry, image_bgr: np.ndarray | None) -> MarkingColor:
        """From the class name when it says, else from the camera pixels under the lane."""
        named = self._class_marking.get(inst.class_id)
        if named is not None and named.color != MarkingColor.UNKNOWN:
            return named.color
        if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[:2] != (geo.src_height, geo.src_width):
            return MarkingColor.UNKNOWN
        pick = slice(None, None, max(1, len(inst.rows) // 400))
        xc, yc = geo.to_camera(inst.cols[pick], inst.rows[pick])
        u = np.clip(np.rint(xc).astype(np.intp), 0, geo.src_width - 1)
        v = np.clip(np.rint(yc).astype(np.intp), 0, geo.src_height - 1)
        return fitting.marking_color(image_bgr[v, u, :3])


def argmax_channels(logits: np.ndarray) -> np.ndarray:
    """Per-pixel index of the largest channel of (C, H, W) logits as uint8 (first wins ties).

    A running maximum over channels: several times faster than ``np.argmax(axis=0)`` on (C, H, W) arrays.
    """
    best = logits[0].copy()
    index = np.zeros(best.shape, dtype=np.uint8)
    larger = np.empty(best.shape, dtype=bool)
    for c in range(1, logits.shape[0]):
        np.greater(logits[c], best, out=larger)
        np.maximum(best, logits[c], out=best)
        np.putmask(index, larger, c)
    return index


def chain_components(rows: np.ndarray, cols: np.ndarray, comp: np.ndarray, chain_px: float) -> list[np.ndarray]:
    """Group connected components lying on one line (the dashes of a dashed marking).

    Components are taken from the bottom of the image up; each joins the first group whose line (fitted
    x(y), straight for short groups) passes within ``chain_px`` of the component's centre at its middle row
    and ends below it, otherwise it starts a group.

    Args:
        rows: (N,) pixel rows.
        cols: (N,) pixel columns.
        comp: (N,) component label of each pixel (>= 1).
        chain_px: lateral tolerance in pixels.

    Returns:
        One index array into ``rows`` per group.
    """
    order = np.argsort(comp, kind="stable")
    _, starts = np.unique(comp[order], return_index=True)
    members = np.split(order, starts[1:])
    bottoms = np.array([rows[m].max() for m in members])
    groups: list[list[np.ndarray]] = []
    fits: list[tuple[np.ndarray, float]] = []  # (coeffs of x(y), top row)
    for k in np.argsort(-bottoms, kind="stable"):
        m = members[k]
        mid_row = float(np.median(rows[m]))
        mid_col = float(np.median(cols[m]))
        target = next((g for g, (coef, top) in enumerate(fits) if rows[m].max() <= top + 2
                       and abs(np.polynomial.polynomial.polyval(mid_row, coef) - mid_col) <= chain_px), None)
        if target is None:
            groups.append([m])
            target = len(groups) - 1
        else:
            groups[target].append(m)
        idx = np.concatenate(groups[target])
        deg = 1 if np.ptp(rows[idx]) < 40 or len(groups[target]) < 3 else 2
        coef = np.polynomial.polynomial.polyfit(rows[idx], cols[idx], deg) if np.ptp(rows[idx]) > 0 \
            else np.array([float(cols[idx].mean()), 0.0])
        fits_entry = (coef, float(rows[idx].min()))
        if target == len(fits):
            fits.append(fits_entry)
        else:
            fits[target] = fits_entry
    return [np.concatenate(g) for g in groups]


def _class_probability(logits: np.ndarray, cid: int, rows: np.ndarray, cols: np.ndarray) -> float:
    """Mean softmax probability of class ``cid`` over the given pixels."""
    z = logits[:, rows, cols].astype(np.float64)
    z -= z.max(axis=0, keepdims=True)
    p = np.exp(z)
    return float((p[cid] / p.sum(axis=0)).mean())
