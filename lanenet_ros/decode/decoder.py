"""Network outputs of one image -> LaneFrame: class mask at camera resolution and fitted, typed lanes.

LaneNet (``binary_logits`` + ``embedding``): lane pixels from the binary branch, instances from clustering
their embeddings (:mod:`lanenet_ros.decode.cluster`). Multi-class models (``class_logits``): per lane class, connected
components, with the dashes of one marking chained along their common line. Each instance is then fitted in
camera pixels (:mod:`lanenet_ros.decode.fitting`), typed and coloured (class name, else the network's own
``marking_logits`` where the model has them, else the paint along it in the camera image, else the mask's own
gaps: :mod:`lanenet_ros.decode.paint`), ordered left to right and assigned to the ego lane.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from lanenet_ros.decode import far_end, fitting, hood, paint
from lanenet_ros.decode.cluster import cluster_embeddings
from lanenet_ros.decode.fitting import _affine_poly, _robust_polyfit
from lanenet_ros.decode.settings import DecodeParams, SettingError
from lanenet_ros.jit import kernel, warm_up, warms_up
from lanenet_ros.lanes import LEARNED_COLORS, LEARNED_TYPES, DetectedLane, LaneFrame, MarkingColor, MarkingType, polyval
from lanenet_ros.model_info import MARKING_CHANNELS, ModelInfo
from lanenet_ros.preprocess import Geometry

MEANINGS = ("binary_logits", "embedding", "class_logits", "hood_logits", "marking_logits", "painted_logits")
_MAX_COMPONENTS = 64  # per class, largest first


@dataclass
class LanePixels:
    """Lane pixels at network-output resolution, sorted by lane, then row, then column.

    Attributes:
        rows: (N,) pixel rows.
        cols: (N,) pixel columns.
        labels: (N,) lane index 0..K-1 of each pixel.
        class_ids: (K,) class of each lane.
        scores: (K,) mean probability of each lane's class over its pixels.
    """

    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray


@dataclass
class Extracted:
    """What :meth:`LaneDecoder.extract` takes out of one image's network outputs (no view into them).

    Attributes:
        geometry: the camera image's geometry, with the outputs' size as the input size.
        class_mask: (H, W) uint8 class ids at the outputs' size.
        pixels: the lane pixels, for a per-class model or a LaneNet without embedding; else None.
        gathered: a LaneNet's lane pixels before clustering: rows, columns, (N, E) embeddings and the logit
            margins ``l1 - l0``; else None.
        bonnet: the bonnet's edge from ``hood_logits`` (when the model has it and ``params.hood`` is -1).
        markings: a copy of ``marking_logits`` (C, h, w) (when the model has it and ``params.learned_markings``
            is on), else None.
        painted: a copy of ``painted_logits`` (h, w) (when the model has it and ``params.min_painted`` is set),
            else None.
    """

    geometry: Geometry
    class_mask: np.ndarray
    pixels: LanePixels | None
    gathered: list[np.ndarray] | None
    bonnet: hood.HoodEdge | None
    markings: np.ndarray | None = None
    painted: np.ndarray | None = None


class LaneDecoder:
    """Turns one image's network outputs into a :class:`LaneFrame` in camera pixels."""

    def __init__(self, info: ModelInfo, params: DecodeParams | None = None) -> None:
        """Configure from a model description.

        Args:
            info: the model's description (architecture, outputs and their meanings, class table).
            params: tuning; defaults when None.

        Raises:
            SettingError: a setting out of range, or one the model cannot take (``flip_average`` without
                ``binary_logits``).
        """
        self.params = (params or DecodeParams()).validate()
        self.architecture = info.architecture
        self.output_meanings = dict(info.outputs)
        self.class_names = list(info.class_names)
        self.lane_class_ids = [int(i) for i in info.lane_class_ids] or list(range(1, len(self.class_names)))
        self.embedding_dim = info.embedding_dim
        self._class_marking = {i: paint.parse_class_marking(n) for i, n in enumerate(self.class_names)}
        warm_up()  # compile or load the kernels now, not on the first frame
        if self.params.flip_average and "binary_logits" not in self.output_meanings.values():
            raise SettingError("decode setting flip_average: averages a LaneNet's binary_logits, and this model "
                               "has none (a per-class model's classes may have a side); set flip_average false")

    def decode(self, outputs: Mapping[str, np.ndarray], geometry: Geometry,
               image_bgr: np.ndarray | None = None, hood_memory: hood.HoodMemory | None = None) -> LaneFrame:
        """Decode the outputs of one image.

        Args:
            outputs: output tensors by name (or by meaning: ``binary_logits``, ``embedding``, ``class_logits``),
                (C, H, W) each; a leading batch dimension of 1 is accepted.
            geometry: how the camera image became the network input (from the Preprocessor).
            image_bgr: the camera image, to read marking types and colours from the paint; without it types
                come from the mask alone and colours are UNKNOWN (unless the class names say).
            hood_memory: the bonnet over the frames before (:meth:`finish`).

        Returns:
            The frame: class mask at camera resolution and lanes left to right with ego indices.

        Raises:
            ValueError: a needed output is missing or has the wrong shape (the message names it).
        """
        return self.finish(self.extract(outputs, geometry), image_bgr, hood_memory)

    def extract(self, outputs: Mapping[str, np.ndarray], geometry: Geometry) -> Extracted:
        """The first half of :meth:`decode`: everything read from the network's outputs (the lane mask, the lane
        pixels with their embeddings or classes, the bonnet), copied out of them, so that the backend may
        overwrite its output buffers with the next frame's while :meth:`finish` works on this one.

        Raises:
            ValueError: as :meth:`decode`.
        """
        named = self._by_meaning(outputs)
        gathered = None
        if "class_logits" in named:
            logits = named["class_logits"]
            class_mask = argmax_channels(logits)
            pixels = self._component_pixels(class_mask, logits)
        elif "binary_logits" in named:
            logits = named["binary_logits"]
            embedding = named.get("embedding")
            if embedding is None or embedding.shape[0] == 0:
                class_mask = _lane_mask(logits, self.params.lane_threshold)
                pixels = self._component_pixels(class_mask, logits)
            else:
                class_mask, *gathered = _gather_lane_pixels(_float32(logits), _float32(embedding),
                                                            _logit(self.params.lane_threshold))
                pixels = None
        else:
            raise ValueError(f"model outputs {sorted(outputs)} hold neither binary_logits nor class_logits "
                             "(check the model's 'outputs' metadata)")
        geo = dataclasses.replace(geometry, input_width=class_mask.shape[1], input_height=class_mask.shape[0])
        hood_logits = named.get("hood_logits")
        bonnet = None  # read only where it is used: the bonnet left to the model (hood -1)
        if hood_logits is not None and self.params.hood < 0:
            plane = hood_logits[0]
            bonnet = hood.edge_from_logits(plane, _at_size(geo, plane.shape))
        markings = None  # copied only where they are used: learned_markings on (a stride-4 output is small)
        if "marking_logits" in named and self.params.learned_markings:
            markings = np.array(named["marking_logits"], dtype=np.float32)
        painted = None
        if "painted_logits" in named and self.params.min_painted > 0:
            painted = np.array(named["painted_logits"][0], dtype=np.float32)
        return Extracted(geo, class_mask, pixels, gathered, bonnet, markings, painted)

    def finish(self, ex: Extracted, image_bgr: np.ndarray | None = None,
               hood_memory: hood.HoodMemory | None = None) -> LaneFrame:
        """The second half of :meth:`decode`: lanes from what :meth:`extract` took out of the outputs.

        Args:
            hood_memory: the bonnet over the frames before, in time order (:class:`~lanenet_ros.decode.hood.
                HoodMemory`): it learns from this frame's bonnet, and its edge stands in where none is found.
        """
        geo, pixels = ex.geometry, ex.pixels
        if ex.gathered is not None:
            pixels = self._clustered_pixels(*ex.gathered)
        lanes: list[DetectedLane] = []
        if pixels is not None:
            seg = fitting.row_segments(pixels.rows, pixels.cols, pixels.labels)
            fits = self._fit_all(pixels, seg, geo)
            if ex.painted is not None:  # lanes where no line is painted go before the nearest are kept
                scores = _painted_scores(ex.painted, seg, fits, geo)
                fits = [f for f, score in zip(fits, scores, strict=True) if not score < self.params.min_painted]
            fits = self._select(fits, geo)
            lanes = self._typed(pixels, seg, fits, geo, image_bgr, ex.markings)
        if self.params.far_end_paint > 0 and _camera_image(image_bgr, geo):
            lanes = [far_end.end_at_paint(image_bgr, lane, self.params.far_end_paint * geo.src_height,
                                        self.params.point_step_px) for lane in lanes]
        found = self._hood(image_bgr, lanes, geo, ex, hood_memory)
        edge = None
        if found is not None:
            edge, crossings = found
            lanes = hood.cut_lanes(lanes, crossings, self.params.point_step_px, min_rows=2 * self.params.point_step_px)
        lanes, ego_l, ego_r = fitting.order_lanes(lanes, geo.src_width, geo.src_height, self.params.ego_center)
        return LaneFrame(width=geo.src_width, height=geo.src_height,
                         class_mask=functools.partial(_camera_mask, ex.class_mask, geo, edge),
                         lanes=lanes, ego_left_index=ego_l, ego_right_index=ego_r,
                         hood_row=-1.0 if edge is None else float(edge.row_at(geo.src_width / 2)))

    def _hood(self, image_bgr: np.ndarray | None, lanes: list[DetectedLane], geo: Geometry, ex: Extracted,
              memory: hood.HoodMemory | None) -> tuple[hood.HoodEdge, list[float | None]] | None:
        """The hood's edge (``params.hood``): the given one, the model's own (``hood_logits``) where it sees one,
        else one found in the image and confirmed by the lanes, else the one ``memory`` holds unless the lanes
        show paint below it; with the row where each lane crosses it. None without a hood."""
        share = self.params.hood
        if share > 0:
            edge = hood.HoodEdge.flat(hood.row_of_share(share, geo.src_height), geo.src_width)
            return edge, hood.crossing_rows(lanes, edge)
        if share == 0:
            return None
        learned = memory is not None and ex.bonnet is None and memory.learned \
            and memory.held(geo.src_width, geo.src_height) is not None
        # a frame without the network's bonnet, after frames in which the network saw the held one: that edge
        # stands in, not the search's (``heads_every``)
        found = None if learned else self._hood_in_frame(image_bgr, lanes, geo, ex)
        if found is not None and found[2]:
            if memory is not None:
                memory.found(found[0], geo.src_height, learned=ex.bonnet is not None)
            return found[:2]
        if memory is None:
            return None
        if found is not None:  # an edge the lanes did not confirm: half a vote for the memory
            memory.found(found[0], geo.src_height, sure=False)
        held = memory.held(geo.src_width, geo.src_height)
        if held is None:
            return None
        crossings = hood.crossing_rows(lanes, held)
        if _camera_image(image_bgr, geo) and hood.paint_below(image_bgr, lanes, crossings):
            memory.contradicted()
            return None
        memory.used()
        return held, crossings

    def _hood_in_frame(self, image_bgr: np.ndarray | None, lanes: list[DetectedLane], geo: Geometry,
                       ex: Extracted) -> tuple[hood.HoodEdge, list[float | None], bool] | None:
        """The bonnet this frame shows, with the lanes' crossing rows and whether it is sure: the network's where it
        sees one (sure), else the image search's where no crossing lane shows paint below it (sure where one shows
        paint above it: :func:`hood.confirmed`); None."""
        if ex.bonnet is not None:  # the network's bonnet, trusted as it is
            return ex.bonnet, hood.crossing_rows(lanes, ex.bonnet), True
        # no bonnet output, or one that sees none: the image search, taken only where the lanes confirm it
        if not lanes or not _camera_image(image_bgr, geo):
            return None
        edge = hood.find_edge(image_bgr)
        if edge is None:
            return None
        crossings = hood.crossing_rows(lanes, edge)
        if hood.paint_below(image_bgr, lanes, crossings):
            return None
        return edge, crossings, hood.paint_above(image_bgr, lanes, crossings)

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
        for plane in ("hood_logits", "painted_logits"):
            if plane in named and named[plane].shape[0] != 1:
                raise ValueError(f"{plane} must have 1 channel, got {named[plane].shape[0]}")
        if "marking_logits" in named:
            marking = named["marking_logits"]
            if marking.shape[0] != MARKING_CHANNELS:
                raise ValueError(f"marking_logits must have {MARKING_CHANNELS} channels ({len(LEARNED_TYPES)} "
                                 f"types, then {len(LEARNED_COLORS)} colours), got {marking.shape[0]}")
        mask = next((m for m in ("binary_logits", "class_logits") if m in named), None)
        for side in ("hood_logits", "marking_logits", "painted_logits"):  # the mask's size or a whole fraction
            if side in named and mask is not None and not _fraction(named[side].shape[1:], named[mask].shape[1:]):
                raise ValueError(f"{side} is {named[side].shape[1:]} but {mask} is {named[mask].shape[1:]} "
                                 "(H, W): it must be the same size or smaller by one whole factor")
        if "binary_logits" in named and named["binary_logits"].shape[0] != 2:
            raise ValueError(f"binary_logits must have 2 channels, got {named['binary_logits'].shape[0]}")
        if "embedding" in named and "binary_logits" in named \
                and named["embedding"].shape[1:] != named["binary_logits"].shape[1:]:
            raise ValueError(f"embedding is {named['embedding'].shape[1:]} but binary_logits is "
                             f"{named['binary_logits'].shape[1:]} (H, W)")
        return named

    def _clustered_pixels(self, rows: np.ndarray, cols: np.ndarray, emb: np.ndarray,
                          margin: np.ndarray) -> LanePixels | None:
        """LaneNet: the lane pixels (:func:`_gather_lane_pixels`) grouped by clustering their embeddings."""
        p = self.params
        if len(rows) < p.min_lane_pixels:
            return None
        labels = cluster_embeddings(emb, bandwidth=p.cluster_bandwidth, assign_radius=p.cluster_radius,
                                    min_cluster_size=p.min_lane_pixels, max_clusters=2 * p.max_lanes)
        rows, cols, labels, scores = _group_by_label(rows, cols, labels, _sigmoid(margin))
        if len(scores) == 0:
            return None
        return LanePixels(rows, cols, labels, np.ones(len(scores), dtype=np.int64), scores)

    def _component_pixels(self, class_mask: np.ndarray, logits: np.ndarray) -> LanePixels | None:
        """Per lane class: connected components, the dashes of one marking chained along their line."""
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        class_ids, scores = [], []
        for cid in self.lane_class_ids:
            if cid >= logits.shape[0]:
                continue
            count, comp, stats, _ = cv2.connectedComponentsWithStats((class_mask == cid).astype(np.uint8),
                                                                     connectivity=8)
            # the largest components only, specks dropped: a noisy mask must not cost seconds
            area = stats[1:, cv2.CC_STAT_AREA]
            keep = 1 + np.argsort(-area, kind="stable")[:_MAX_COMPONENTS]
            keep = keep[area[keep - 1] >= max(3, self.params.min_lane_pixels // 10)]
            if len(keep) == 0:
                continue
            wanted = np.zeros(count, dtype=bool)
            wanted[keep] = True
            rows, cols = np.nonzero(wanted[comp])
            for group in fitting.chain_components(rows, cols, comp[rows, cols], self.params.chain_px):
                if len(group) >= self.params.min_lane_pixels:
                    parts.append((rows[group], cols[group]))
                    class_ids.append(cid)
                    scores.append(_class_probability(logits, cid, rows[group], cols[group]))
        if not parts:
            return None
        rows = np.concatenate([r for r, _ in parts])
        cols = np.concatenate([c for _, c in parts])
        labels = np.repeat(np.arange(len(parts)), [len(r) for r, _ in parts])
        order = np.lexsort((cols, rows, labels))
        return LanePixels(rows[order], cols[order], labels[order], np.array(class_ids), np.array(scores))

    def _fit_all(self, px: LanePixels, seg: fitting.RowSegments, geo: Geometry) -> list[_Fit]:
        """Fit x(y) to the row centres of every lane of ``px``; those too small or too weak left out."""
        p = self.params
        bounds = np.searchsorted(seg.label, np.arange(len(px.class_ids) + 1))
        ok, degree, coeffs_in, coeffs, y_range, confidence = _fit_lanes(
            seg.row, seg.median, bounds, px.scores, geo.input_height, p.min_lane_rows, p.min_span, p.min_fill,
            p.poly_degree, p.outlier_px, p.min_confidence, p.extend_far, geo.scale_x, geo.scale_y,
            float(geo.crop_top), float(geo.src_height))
        fits = []
        for k in np.flatnonzero(ok):
            n = degree[k] + 1
            y_min, y_max = float(y_range[k, 0]), float(y_range[k, 1])
            lane = DetectedLane(image_coeffs=coeffs[k, :n].copy(), y_min=y_min, y_max=y_max,
                                points=fitting.sample_points(coeffs[k, :n], y_min, y_max, p.point_step_px),
                                confidence=float(confidence[k]))
            fits.append(_Fit(lane, slice(bounds[k], bounds[k + 1]), coeffs_in[k, :n].copy(), int(px.class_ids[k])))
        return fits

    def _select(self, fits: list[_Fit], geo: Geometry) -> list[_Fit]:
        """The fits of the lanes ``fitting.limit_lanes`` keeps (``max_lanes``, ``max_per_side``)."""
        p = self.params
        by_lane = {id(f.lane): f for f in fits}
        lanes, _, _ = fitting.limit_lanes([f.lane for f in fits], geo.src_width, geo.src_height, p.ego_center,
                                          p.max_lanes, p.max_per_side)
        return [by_lane[id(lane)] for lane in lanes]

    def _typed(self, px: LanePixels, seg: fitting.RowSegments, fits: list[_Fit], geo: Geometry,
               image_bgr: np.ndarray | None, learned: np.ndarray | None = None) -> list[DetectedLane]:
        """The fitted lanes with their marking type and colour (read for the kept lanes only)."""
        markings = self._markings(px, seg, fits, geo, image_bgr, learned)
        return [f.lane.replace(marking_type=kind, color=color)
                for f, (kind, color) in zip(fits, markings, strict=True)]

    def _markings(self, px: LanePixels, seg: fitting.RowSegments, fits: list[_Fit], geo: Geometry,
                  image_bgr: np.ndarray | None,
                  learned: np.ndarray | None = None) -> list[tuple[MarkingType, MarkingColor]]:
        """Type and colour per fit: class name first, then the network's ``marking_logits`` (``learned``: the argmax
        of its type softmax and of its colour softmax, each averaged along the fit, :meth:`_learned_markings`) for
        the type (but raised dots that the paint shows for the network's dashes), and for the colour where the
        camera image is not at hand (the paint in the image tells the colour better: bench/real_road_shifts.py),
        then the paint in the image, then the mask's gaps."""
        out = [(MarkingType.UNKNOWN, MarkingColor.UNKNOWN)] * len(fits)
        usable = _camera_image(image_bgr, geo)
        read = [i for i, f in enumerate(fits) if self._class_marking.get(f.class_id) is None]  # not class-named
        from_net = {}  # fit index -> the network's marking
        if learned is not None:
            seen = _learned_markings(learned, seg, [fits[i] for i in read], geo)
            from_net = {read[j]: marking for j, marking in seen.items()}
        if usable and read:
            curves = [(fits[i].lane.image_coeffs, fits[i].lane.y_min, fits[i].lane.y_max) for i in read]
            widths = [(fitting.median(seg.extent[fits[i].part]) + 1.0) * geo.scale_x / 2.0 for i in read]
            default = geo.crop_top if geo.crop_top > 0 else 0.45 * geo.src_height
            seen = paint.read_markings(image_bgr, curves, widths, paint.horizon_row(curves, default),
                                       self.params.camera_height_m, self.params.double_fraction)
            for i, marking in zip(read, seen, strict=True):
                out[i] = marking
        for i, f in enumerate(fits):
            named = self._class_marking.get(f.class_id)
            if named is not None:
                out[i] = (named.marking_type, named.color)
            elif i in from_net:  # the network's type; its colour only without the image's paint
                kind = from_net[i][0]
                if kind == MarkingType.DASHED and out[i][0] == MarkingType.BOTTS_DOTS:
                    kind = MarkingType.BOTTS_DOTS  # the packaged heads read raised dots as dashes; the paint does not
                out[i] = (kind, out[i][1] if usable else from_net[i][1])
            elif not usable:  # without the image, the mask's own gaps and double runs
                out[i] = (self._mask_marking_type(px, seg, f), MarkingColor.UNKNOWN)
        return out

    def _mask_marking_type(self, px: LanePixels, seg: fitting.RowSegments, f: _Fit) -> MarkingType:
        """Solid / dashed / double from the mask rows whose centre lies on the fit (stray rows left out)."""
        band = self._band(seg, f)
        rows = seg.row[f.part]
        on = np.abs(seg.median[f.part] - polyval(rows, f.coeffs_in)) <= band
        if not on.any():
            return MarkingType.UNKNOWN

        def side_rows() -> tuple[np.ndarray, np.ndarray]:
            first, last = seg.start[f.part][0], seg.end[f.part][-1]
            r, c = px.rows[first:last], px.cols[first:last]
            centre = polyval(r, f.coeffs_in)
            near = np.abs(c - centre) <= band
            return np.unique(r[near & (c < centre)]), np.unique(r[near & (c >= centre)])

        return paint.marking_type(rows[on], seg.runs[f.part][on], self.params.double_fraction,
                                  side_rows=side_rows)

    def _band(self, seg: fitting.RowSegments, f: _Fit) -> float:
        """How far from the fit (network pixels) a pixel or a row's centre still belongs to the marking: half the
        lane's usual marking width (its rows' median extent), plus the outlier distance."""
        return self.params.outlier_px + fitting.median(seg.extent[f.part]) / 2.0 + 1.0


@dataclass
class _Fit:
    """A fitted lane and what its marking is read from."""

    lane: DetectedLane
    part: slice  # its entries in the row segments
    coeffs_in: np.ndarray  # x(y) in network pixels
    class_id: int


def _camera_image(image_bgr: np.ndarray | None, geo: Geometry) -> bool:
    """Whether ``image_bgr`` is the colour camera image the outputs came from (paint and hood are read in it)."""
    return image_bgr is not None and image_bgr.ndim == 3 and image_bgr.shape[:2] == (geo.src_height, geo.src_width)


def _camera_mask(class_mask: np.ndarray, geo: Geometry, hood_edge: hood.HoodEdge | None) -> np.ndarray:
    """The class mask at camera resolution, background below the car's hood (made when a frame's mask is read)."""
    camera_mask = geo.mask_to_camera(class_mask)
    if hood_edge is not None:
        hood.clear_below(camera_mask, hood_edge)
    return camera_mask


def _logit(p: float) -> float:
    """softmax over two logits: p(lane) > p  <=>  l1 - l0 > logit(p)."""
    return math.log(p / (1 - p))


def _float32(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous float32 array (the type the kernels are compiled for; no copy when it is one)."""
    return np.ascontiguousarray(a, dtype=np.float32)


def _lane_mask(logits: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W) uint8: 1 where a two-channel ``binary_logits`` gives p(lane) > ``threshold``."""
    return (logits[1] - logits[0] > _logit(threshold)).astype(np.uint8)


@kernel
def _gather_lane_pixels(logits, embedding, min_margin):  # pragma: no cover
    """Lane pixels of a LaneNet output: where ``logits[1] - logits[0] > min_margin``.

    Returns the (H, W) uint8 lane mask, the pixels' rows and columns in row-major order, their (N, E)
    embeddings and their logit margins ``l1 - l0``.
    """
    _, h, w = logits.shape
    bg, fg = logits[0].ravel(), logits[1].ravel()
    mask = np.empty(h * w, np.uint8)
    n = 0
    for i in range(h * w):  # branch-free: the compiler vectorises it
        lane = np.uint8(fg[i] - bg[i] > min_margin)
        mask[i] = lane
        n += lane
    index = np.empty(n, np.int64)
    k = 0
    for i in range(h * w):
        if mask[i]:
            index[k] = i
            k += 1
    dim = embedding.shape[0]
    flat = embedding.reshape(dim, h * w)
    emb = np.empty((n, dim), np.float32)
    margin = np.empty(n, np.float32)
    for k in range(n):
        i = index[k]
        for d in range(dim):
            emb[k, d] = flat[d, i]
        margin[k] = fg[i] - bg[i]
    return mask.reshape(h, w), index // w, index % w, emb, margin


@kernel
def _fit_lanes(seg_row, seg_median, bounds, scores, input_height, min_lane_rows, min_span, min_fill, poly_degree,
               outlier_px, min_confidence, extend_far, scale_x, scale_y, crop_top, src_height):  # pragma: no cover
    """Fit x(y) to each lane's row centres (its entries ``bounds[k]:bounds[k + 1]`` of the row segments).

    A lane is left out when it has too few rows (``min_lane_rows``), spans too few of the network's rows
    (``min_span``) or is marked on too few of those it spans (``min_fill``), or its confidence (its mean lane
    probability times its share of inlier rows, less when it spans under a quarter of the rows) is under
    ``min_confidence``. Short lanes get lower degrees (under 30% of the rows 2, under 15% 1). The fit is moved
    from network to camera pixels (both axes are affine maps, see ``Geometry.to_camera``); its ends are the
    outer edges of the first and last supporting network rows, the far one continued by ``extend_far`` of the
    image height.

    Returns, per lane: kept, degree, coefficients in network and in camera pixels (lowest order first, padded
    with zeros), (y_min, y_max) in camera rows and confidence.
    """
    lanes = len(bounds) - 1
    ok = np.zeros(lanes, np.bool_)
    degrees = np.zeros(lanes, np.int64)
    coeffs_in = np.zeros((lanes, poly_degree + 1))
    coeffs = np.zeros((lanes, poly_degree + 1))
    y_range = np.zeros((lanes, 2))
    confidence = np.zeros(lanes)
    # network row = a * camera row + b ; camera column = sx * (network column + 0.5) - 0.5
    a = 1.0 / scale_y
    b = (0.5 - crop_top) / scale_y - 0.5
    for k in range(lanes):
        rows = seg_row[bounds[k]:bounds[k + 1]].astype(np.float64)  # one entry per occupied row, sorted
        if len(rows) < max(min_lane_rows, 2):
            continue
        spanned = rows[-1] - rows[0] + 1
        span = spanned / input_height
        if span < min_span or len(rows) < min_fill * spanned:
            continue
        degree = poly_degree if span >= 0.3 else min(poly_degree, 2 if span >= 0.15 else 1)
        degree = min(degree, len(rows) - 1)
        q, inliers = _robust_polyfit(rows, seg_median[bounds[k]:bounds[k + 1]], degree, outlier_px, 3)
        conf = scores[k] * np.count_nonzero(inliers) / len(inliers) * min(1.0, span / 0.25)
        if conf < min_confidence:
            continue
        support = rows[inliers]
        ok[k], degrees[k], confidence[k] = True, degree, min(max(conf, 0.0), 1.0)
        coeffs_in[k, :degree + 1] = q
        cam = _affine_poly(q, a, b) * scale_x
        cam[0] += 0.5 * scale_x - 0.5
        coeffs[k, :degree + 1] = cam
        y_range[k, 0] = max(support[0] * scale_y + crop_top - 0.5 - extend_far * src_height, crop_top)
        y_range[k, 1] = min((support[-1] + 1.0) * scale_y + crop_top - 0.5, src_height - 1.0)
    return ok, degrees, coeffs_in, coeffs, y_range, confidence


@kernel
def _group_by_label(rows, cols, labels, probability):  # pragma: no cover
    """The pixels with a label (0..K-1; -1: noise) ordered by label, keeping their order within a label (a
    counting sort): their rows, columns and labels, and each label's mean of ``probability``."""
    k = labels.max() + 1 if len(labels) else 0
    counts = np.zeros(k + 1, np.int64)
    scores = np.zeros(k, np.float64)
    for i in range(len(labels)):
        if labels[i] >= 0:
            counts[labels[i] + 1] += 1
            scores[labels[i]] += probability[i]
    starts = np.cumsum(counts)
    n = starts[k]
    out_rows, out_cols, out_labels = np.empty(n, rows.dtype), np.empty(n, cols.dtype), np.empty(n, labels.dtype)
    for i in range(len(labels)):
        j = labels[i]
        if j >= 0:
            at = starts[j]
            out_rows[at], out_cols[at], out_labels[at] = rows[i], cols[i], j
            starts[j] = at + 1
    for j in range(k):
        scores[j] /= max(counts[j + 1], 1)
    return out_rows, out_cols, out_labels, scores


@warms_up
def _warm() -> None:
    logits = np.zeros((2, 4, 6), np.float32)
    logits[1, 1:3, 2:4] = 5.0
    _, _, _, emb, margin = _gather_lane_pixels(logits, np.zeros((4, 4, 6), np.float32), _logit(0.5))
    rows = np.zeros(len(emb), np.int64)
    _group_by_label(rows, rows, rows, _sigmoid(margin))
    rows = np.arange(12, dtype=np.int64)
    _fit_lanes(rows, 0.5 * rows.astype(np.float64), np.array([0, 12]), np.ones(1), 256, 8, 0.0, 0.5, 3, 2.5, 0.1,
               0.015, 2.5, 2.1, 180.0, 720.0)


def _sigmoid(margin: np.ndarray) -> np.ndarray:
    """p(lane) of the lane pixels from their float32 logit margins ``l1 - l0`` (the softmax of two logits is the
    sigmoid of their margin): numpy's vectorised float32 exp, several times faster than a compiled loop. A
    margin is above the logit of ``lane_threshold`` (at least 0.01), so exp(-margin) cannot overflow."""
    p = np.negative(margin, dtype=np.float32)
    np.exp(p, out=p)
    p += np.float32(1.0)
    return np.reciprocal(p, out=p)


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


def _learned_markings(logits: np.ndarray, seg: fitting.RowSegments, fits: list[_Fit],
                      geo: Geometry) -> dict[int, tuple[MarkingType, MarkingColor]]:
    """The network's type and colour of each fit (by its index in ``fits``): the argmax of the type softmax and of
    the colour softmax of ``logits`` (C, h, w: ``marking_logits``, at the mask's size ``geo`` or a whole fraction
    of it), averaged over the cells the fit passes through in the rows where its lane has pixels (the network
    learns markings on lane pixels only; the fit, not the cluster's stray pixels). A fit that leaves the output
    everywhere is left out."""
    if not fits:
        return {}
    lane, p = _along_fits(logits, seg, fits, geo)
    types = len(LEARNED_TYPES)
    for part in (p[:types], p[types:]):  # the two softmaxes, vectorised
        part -= part.max(axis=0)
        np.exp(part, out=part)
        part /= part.sum(axis=0)
    counts, sums = _sums_by_fit(lane, p, len(fits))  # the argmax of a mean is that of the sum
    kinds, colors = np.argmax(sums[:types], axis=0), np.argmax(sums[types:], axis=0)
    return {int(k): (LEARNED_TYPES[kinds[k]], LEARNED_COLORS[colors[k]]) for k in np.flatnonzero(counts)}


def _painted_scores(logits: np.ndarray, seg: fitting.RowSegments, fits: list[_Fit], geo: Geometry) -> np.ndarray:
    """(len(fits),) the network's probability that each fit is a painted line (``painted_logits`` (h, w), at the
    mask's size ``geo`` or a whole fraction of it), averaged along it as :func:`_learned_markings` reads; NaN for
    a fit that leaves the output everywhere."""
    if not fits:
        return np.zeros(0)
    lane, p = _along_fits(logits[None], seg, fits, geo)
    counts, sums = _sums_by_fit(lane, 1.0 / (1.0 + np.exp(-p)), len(fits))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums[0] / counts, np.nan)


def _along_fits(logits: np.ndarray, seg: fitting.RowSegments, fits: list[_Fit],
                geo: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """The cells of ``logits`` (C, h, w) each fit passes through in the rows where its lane has pixels (a head
    learns on lane pixels only: the fit, not the cluster's stray pixels): the fit's index of each sample, and
    (C, samples) their values, a copy."""
    channels, h, w = logits.shape
    rows = [seg.row[f.part] for f in fits]
    y = np.concatenate(rows)
    x = np.concatenate([polyval(r, f.coeffs_in) for r, f in zip(rows, fits, strict=True)])
    cell_y = y.astype(np.int64) * h // geo.input_height
    cell_x = np.floor((x + 0.5) * w / geo.input_width).astype(np.int64)  # the cell holding the fit's point
    inside = (cell_x >= 0) & (cell_x < w)
    lane = np.repeat(np.arange(len(fits)), [len(r) for r in rows])[inside]
    return lane, np.take(logits.reshape(channels, h * w), cell_y[inside] * w + cell_x[inside], axis=1)


def _sums_by_fit(lane: np.ndarray, values: np.ndarray, fits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per fit, its number of samples and the sums of their (C, samples) ``values`` ((C, fits), float64); a fit
    without samples gets some other fit's sums (from reduceat), not to be read."""
    counts = np.bincount(lane, minlength=fits)
    if counts.sum() == 0:
        return counts, np.zeros((len(values), fits))
    starts = np.minimum(np.cumsum(counts) - counts, counts.sum() - 1)
    return counts, np.add.reduceat(values, starts, axis=1, dtype=np.float64)


def _fraction(small: tuple[int, ...], full: tuple[int, ...]) -> bool:
    """Whether an output of size ``small`` (H, W) is ``full`` or ``full`` divided by one whole factor."""
    h, w = small
    return h > 0 and w > 0 and full[0] % h == 0 and full[1] % w == 0 and full[0] // h == full[1] // w


def _at_size(geo: Geometry, shape: tuple[int, int]) -> Geometry:
    """``geo`` with an output plane of ``shape`` (H, W) as the network's size (a stride-4 output covers the same
    camera pixels with fewer cells)."""
    return dataclasses.replace(geo, input_height=int(shape[0]), input_width=int(shape[1]))


def _class_probability(logits: np.ndarray, cid: int, rows: np.ndarray, cols: np.ndarray) -> float:
    """Mean softmax probability of class ``cid`` over the given pixels."""
    z = logits[:, rows, cols].astype(np.float64)
    z -= z.max(axis=0, keepdims=True)
    p = np.exp(z)
    return float((p[cid] / p.sum(axis=0)).mean())
