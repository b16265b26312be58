"""Lane tracking across frames: stable track ids, exponential smoothing, confirmation and removal.

Detections are matched to tracks one to one (Hungarian algorithm) by the mean lateral distance between the two
curves over the rows they share and at the image's bottom row. A track is confirmed after ``min_hits``
matched frames (its lanes carry its id from then on; tentative lanes carry track id 0) and removed after
``max_misses`` frames without a match, during which a confirmed track keeps being reported ("coasting")
with decaying confidence. Marking type and colour are the most frequent over the track's recent frames, so
one badly lit frame does not flip them. Lanes are tracked in the image; their ground fields are left empty, to
be fitted to the tracked lanes (the pipeline does so after tracking).
"""
from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lanenet_ros.decode import fitting
from lanenet_ros.decode.settings import DecodeParams
from lanenet_ros.jit import kernel, warms_up
from lanenet_ros.lanes import DetectedLane, LaneFrame, MarkingColor, MarkingType
from lanenet_ros.metrics import min_cost_assignment

_VOTES = 15  # frames of marking type / colour votes a track remembers


@dataclass
class _Track:
    track_id: int
    lane: DetectedLane
    hits: int = 1
    misses: int = 0
    # recent marking types and colours read in each frame: the track reports the most frequent
    types: deque = field(default_factory=lambda: deque(maxlen=_VOTES))
    colors: deque = field(default_factory=lambda: deque(maxlen=_VOTES))

    def vote(self, lane: DetectedLane, type_votes: int = 1) -> None:
        """Remember the frame's type (``type_votes`` times) and colour (UNKNOWN does not vote)."""
        if lane.marking_type != MarkingType.UNKNOWN:
            self.types.extend([lane.marking_type] * type_votes)
        if lane.color != MarkingColor.UNKNOWN:
            self.colors.append(lane.color)


class LaneTracker:
    """Gives lanes stable ``track_id`` values across frames and smooths their polynomials."""

    def __init__(self, min_hits: int = 2, max_misses: int = 3, alpha: float = 0.7,
                 match_fraction: float = 0.03, coast: bool = True, point_step_px: float = 10.0,
                 ego_center: float = 0.5, max_gap_s: float = 1.0, max_lanes: int = 0,
                 max_per_side: int = 0, coast_after: int = 5) -> None:
        """Configure the tracker.

        Args:
            min_hits: matched frames before a track is confirmed and its id published.
            max_misses: frames without a match before a track is dropped.
            alpha: weight of the new detection in the exponential smoothing (1 = no smoothing).
            match_fraction: largest mean lateral distance for a match, as a fraction of the image width.
            coast: report confirmed tracks that missed a frame (confidence halved per miss).
            coast_after: matched frames a track needs before it coasts: a lane seen for a few frames only (often
                one along a barrier's base, a road edge or a shadow) is not carried on through the frames that
                miss it.
            point_step_px: camera rows between re-sampled lane points.
            ego_center: vehicle centre as a fraction of the width, for re-assigning positions.
            max_gap_s: when stamps are given, a jump back in time or a gap longer than this resets the tracks.
            max_lanes: most lanes reported (highest confidence; 0: no limit). Coasting tracks count, so that
                the tracker reports no more lanes than the decoder keeps (``DecodeParams.max_lanes``).
            max_per_side: most lanes reported on each side of the ego centre line, nearest first (0: no
                limit; ``DecodeParams.max_per_side``).

        Raises:
            ValueError: a parameter is out of range (named in the message).
        """
        if min_hits < 1 or coast_after < 1 or max_misses < 0 or max_lanes < 0 or max_per_side < 0:
            raise ValueError(f"min_hits and coast_after must be >= 1, max_misses, max_lanes and max_per_side >= 0; "
                             f"got {min_hits}, {coast_after}, {max_misses}, {max_lanes} and {max_per_side}")
        if not 0 < alpha <= 1 or match_fraction <= 0:
            raise ValueError(f"alpha must be in (0, 1] and match_fraction > 0, got {alpha} and {match_fraction}")
        self.min_hits, self.max_misses = min_hits, max_misses
        self.alpha, self.match_fraction, self.coast, self.coast_after = alpha, match_fraction, coast, coast_after
        self.point_step_px, self.ego_center = point_step_px, ego_center
        self.max_gap_s = max_gap_s
        self.max_lanes, self.max_per_side = max_lanes, max_per_side
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_stamp: float | None = None

    @classmethod
    def for_decoder(cls, params: DecodeParams, **settings: Any) -> LaneTracker:
        """The tracker of a pipeline whose decoder has ``params``: it reports lanes as the decoder keeps them (no
        more, same order), with ``settings`` (``alpha``, ``max_misses``, ``coast``, ...; the node's
        ``tracker.*`` parameters) over the defaults.

        Raises:
            ValueError: a setting out of range (named in the message).
        """
        return cls(**{"point_step_px": params.point_step_px, "ego_center": params.ego_center,
                      "max_lanes": params.max_lanes, "max_per_side": params.max_per_side, **settings})

    def reset(self) -> None:
        """Forget all tracks (e.g. after a jump in time or a camera change); ids keep increasing."""
        self._tracks = []

    def update(self, frame: LaneFrame, stamp: float | int | None = None, type_votes: int = 1) -> LaneFrame:
        """Match the frame's lanes to the tracks and return the frame with tracked, smoothed lanes.

        Args:
            frame: one decoded frame (lanes in camera pixels).
            stamp: the image time, float seconds or integer nanoseconds; a bag looping back or a long gap
                starts the tracks afresh. None: frames are taken as consecutive.
            type_votes: how many votes each lane's marking type in this frame counts (a frame whose types a
                network's head read, among frames whose types were read from the paint).

        Returns:
            A new LaneFrame (same mask and timings) whose lanes carry track ids, ordered left to right.
        """
        if stamp is not None:
            now = stamp * 1e-9 if isinstance(stamp, (int, np.integer)) else float(stamp)
            if self._last_stamp is not None and not 0 <= now - self._last_stamp <= self.max_gap_s:
                self.reset()
            self._last_stamp = now
        det = frame.lanes
        cost = lane_distances([t.lane for t in self._tracks], det, frame.height)
        gate = self.match_fraction * frame.width
        matched_t, matched_d = set(), set()
        if cost.size:
            for ti, di in zip(*min_cost_assignment(cost), strict=True):  # ids follow the best overall matching
                if cost[ti, di] <= gate:
                    self._merge(self._tracks[ti], det[di], type_votes)
                    matched_t.add(int(ti))
                    matched_d.add(int(di))
        for ti, track in enumerate(self._tracks):
            if ti not in matched_t:
                track.misses += 1
        self._tracks = [t for t in self._tracks if t.misses <= self.max_misses]
        for di, lane in enumerate(det):
            if di not in matched_d:
                self._tracks.append(_Track(self._next_id, lane.replace(ground_coeffs=None, ground_x_range=None,
                                                                       ground_points=None)))
                self._tracks[-1].vote(lane, type_votes)
                self._next_id += 1
        lanes = [lane for t in self._tracks if not t.misses and (lane := self._report(t)) is not None]
        # a coasting track stands in for a lane missed this frame, not for one seen again a little away
        coasting = [lane for t in self._tracks if t.misses and (lane := self._report(t)) is not None]
        if coasting and lanes:
            near = lane_distances(coasting, lanes, frame.height).min(axis=1) <= 2 * gate
            coasting = [lane for lane, dup in zip(coasting, near, strict=True) if not dup]
        lanes, ego_l, ego_r = fitting.limit_lanes(lanes + coasting, frame.width, frame.height, self.ego_center,
                                                  self.max_lanes, self.max_per_side)
        return frame.replace(lanes=lanes, ego_left_index=ego_l, ego_right_index=ego_r)

    def _merge(self, track: _Track, det: DetectedLane, type_votes: int = 1) -> None:
        """Blend a matched detection into its track."""
        a, old = self.alpha, track.lane
        track.vote(det, type_votes)
        coeffs = _blend(old.image_coeffs, det.image_coeffs, a)
        y_min, y_max = (1 - a) * old.y_min + a * det.y_min, (1 - a) * old.y_max + a * det.y_max
        track.lane = det.replace(
            image_coeffs=coeffs, y_min=y_min, y_max=y_max,
            points=fitting.sample_points(coeffs, y_min, y_max, self.point_step_px),
            marking_type=_most_common(track.types, det.marking_type),
            color=_most_common(track.colors, det.color),
            ground_coeffs=None, ground_x_range=None, ground_points=None)
        track.hits += 1
        track.misses = 0

    def _report(self, track: _Track) -> DetectedLane | None:
        """The lane to publish for a track this frame, or None."""
        confirmed = track.hits >= self.min_hits
        if track.misses and not (confirmed and self.coast and track.hits >= self.coast_after):
            return None
        return track.lane.replace(track_id=track.track_id if confirmed else 0,
                                   confidence=track.lane.confidence * 0.5**track.misses)


def lane_distances(a: list[DetectedLane], b: list[DetectedLane], height: int, rows: int = 16) -> np.ndarray:
    """Mean lateral distance (pixels) between every lane of ``a`` and every lane of ``b``.

    The mean runs over the bottom row (lanes extended straight, see ``fitting.bottom_x``) and the sampled rows
    where both lanes are defined.

    Returns:
        (len(a), len(b)) float64.
    """
    if not a or not b:
        return np.zeros((len(a), len(b)))
    ys = _sample_rows(height, rows)
    (ca, ea), (cb, eb) = fitting.lane_table(a), fitting.lane_table(b)
    return _lane_distances(_profile(ca, ea, ys, float(height)), ea, _profile(cb, eb, ys, float(height)), eb, ys)


@functools.lru_cache(maxsize=8)
def _sample_rows(height: int, rows: int) -> np.ndarray:
    """``rows`` rows evenly from the top to the bottom of the image, made once per image height: shared by every
    call, never written (left writable: the kernels are compiled for writable arrays)."""
    return np.linspace(0.0, height - 1.0, rows)


@kernel
def _profile(coeffs, ends, ys, height):  # pragma: no cover
    """Each lane's column at the bottom row (continued straight) and at the rows ``ys``: (L, 1 + len(ys))."""
    xs = np.empty((len(coeffs), 1 + len(ys)))
    xs[:, 0] = fitting._bottom_xs(coeffs, ends, height)
    for i in range(len(coeffs)):
        for r in range(len(ys)):
            xs[i, 1 + r] = fitting._horner(coeffs[i], ys[r])
    return xs


@kernel
def _lane_distances(xa, ea, xb, eb, ys):  # pragma: no cover
    """:func:`lane_distances` of two profiles (:func:`_profile`) and the lanes' row ranges."""
    out = np.empty((len(xa), len(xb)))
    for i in range(len(xa)):
        for j in range(len(xb)):
            total, count = abs(xa[i, 0] - xb[j, 0]), 1  # the bottom row: both lanes reach it
            for r in range(len(ys)):
                y = ys[r]
                if ea[i, 0] <= y <= ea[i, 1] and eb[j, 0] <= y <= eb[j, 1]:
                    total += abs(xa[i, 1 + r] - xb[j, 1 + r])
                    count += 1
            out[i, j] = total / count
    return out


@warms_up
def _warm() -> None:
    coeffs, ends, ys = np.ones((2, 4)), np.array([[300.0, 719.0], [400.0, 719.0]]), np.linspace(0.0, 719.0, 16)
    profile = _profile(coeffs, ends, ys, 720.0)
    _lane_distances(profile, ends, profile, ends, ys)


def _most_common(votes: deque, fallback: Any) -> Any:
    """The most frequent recent vote (the latest among equals), or ``fallback`` without votes."""
    best, most = fallback, 0
    for vote in reversed(votes):  # a handful of votes: counting each beats building a Counter
        if (count := votes.count(vote)) > most:
            best, most = vote, count
    return best


def _blend(old: np.ndarray, new: np.ndarray, alpha: float) -> np.ndarray:
    """(1 - alpha) * old + alpha * new of two coefficient vectors padded to the same length."""
    if len(old) == len(new):
        return (1 - alpha) * np.asarray(old, np.float64) + alpha * np.asarray(new, np.float64)
    out = np.zeros(max(len(old), len(new)))
    out[: len(old)] += (1 - alpha) * np.asarray(old, np.float64)
    out[: len(new)] += alpha * np.asarray(new, np.float64)
    return out

