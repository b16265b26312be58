"""Self-calibration: the camera's pitch, yaw and height above the road estimated from the lanes it sees.

No ROS here. :class:`MountingEstimator` takes the pipeline's lane frames, one after another, and keeps an
estimate of how the camera is mounted, for a :class:`~lanenet_ros.ground.GroundProjector`:

- pitch and yaw from the vanishing point of the lines that are straight in the (undistorted) image: on a
  straight road every lane line runs to one point, whose row gives the pitch and whose column the yaw.
  Curved lines (bends), frames with fewer than two straight lines, and points that are not above every line
  are not measurements. The yaw measured in one frame is the camera's mounting yaw plus the car's heading
  relative to the lanes; the heading averages out over a drive;
- the camera height from the ego lane's width: a monocular camera sees the ratio lane width / height, not
  either alone, so the height is ``lane_width_m / ratio`` with a lane-width prior the user can set (3.6 m by
  default), or, when the height is given, the lane width is ``height * ratio``. Widths outside 2.5-5 m are not
  taken as lanes. An ego lane the camera sits ``_OFF_CENTRE`` to ``_TWO_LANES`` of its width off-centre in is
  most often two lanes (a car ahead hides one ego line and the next one out is named in its place) and is read
  as the half the camera is in, counted once lanes seen whole confirm it (``MountingEstimator._one_lane``);
  further off-centre, while the height is estimated, a frame gives no width;
- roll from the widths of the lanes beside the ego lane: one family of parallel lines fixes only their vanishing
  point, not the horizon's tilt, but lanes of one width do. A camera turned about its optical axis sees the road
  nearer on one side and farther on the other, so read without the roll the lanes on one side come out narrower
  and on the other wider (2 deg at 1.5 m: 3.1 m and 4.3 m for two 3.6 m lanes). A frame with three or more
  straight lines in a row of lane-like widths gives the roll that makes those widths most alike; until
  ``min_frames // 2`` frames have, the roll is the seed's or zero, and then the median of them is taken at once,
  the pitch, yaw and widths read again with it. Only with ``estimate_roll``: lanes that differ in width bias it
  (about 1 deg for lanes 0.2 m apart in width), so it is for a camera mounted visibly askew on roads of
  one lane width;

The estimate is the median of the last ``window`` measurements. It is ``collecting`` until ``min_frames``
measurements agree closely enough, then ``converged``; from then on (or from a seed) the value in use moves
towards the median by at most ``max_step_deg`` (and ``_HEIGHT_STEP`` of the height) per measurement, so a car
pitching under braking or changing lanes for a few seconds barely moves it. A converged estimate ignores yaws
more than ``_YAW_GATE`` from it (a lane change); ``_REGATE`` such measurements in a row mean the camera itself
turned, and the estimator starts over. A frozen estimator keeps its value and ignores measurements.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from lanenet_ros.ground import GroundProjector, undistort_normalised
from lanenet_ros.lanes import LaneFrame

LANE_WIDTH_RANGE_M = (2.5, 5.0)
"""Lane widths outside this range are not lanes."""
_MAX_PITCH, _MAX_YAW = math.radians(30.0), math.radians(20.0)
_DRIFT, _SETTLE, _YAW_GATE = 0.05, 1.0, math.radians(0.6)  # lane widths/s, s, rad: see _steady
_JUMP = 0.1  # lane widths between two frames that no steady move makes (0.36 m in 0.1 s on a 3.6 m lane)
_OFF_CENTRE = 0.2  # lane widths from the ego lane's centre beyond which a frame's lane width is not used: see update
_TWO_LANES = 0.3  # up to here off-centre, the ego "lane" is read as two lanes, the camera near one's centre: update
_CONFIRM = 5  # one-lane widths that must agree with the median before lanes read as two lanes' halves count
_AGREE = 0.15  # relative: a one-lane width within this of the median agrees with it
_GIVE_HEIGHT = "then give its height, calibration.mode pitch_yaw with ground.camera_height"
_SETTLED_SPREAD_DEG, _SETTLED_WIDTH_SE = 0.05, 0.005  # pitch/yaw standard error, width's relative: converged
_REGATE = 300  # yaws outside the gate in a row (30 s of straight road at 10 Hz) that restart the estimate
_HEIGHT_STEP = 0.0005  # most the height in use moves per measurement once converged (relative)
_ROWS_USED = (0.3, 0.8)  # of a lane's row span above its lowest point, used for the vanishing point
_MEDIAN_SE = 1.2533 * 1.4826  # standard error of a median, in units of MAD / sqrt(n), for normal noise
_MAX_ROLL, _ROLL_STEP = math.radians(6.0), math.radians(0.5)  # the rolls a frame's lane widths are tried at
_LANE_LIKE = (0.6, 1.6)  # a lane beside the ego lane counts for the roll when its width is this share of the ego's


RADIAL_FIRST = ("plumb_bob", "rational_polynomial")
"""CameraInfo distortion models whose first two coefficients are the radial k1, k2."""


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera's intrinsics in pixels of the camera image, with radial distortion k1, k2."""

    fx: float
    fy: float
    cx: float
    cy: float
    k1: float = 0.0
    k2: float = 0.0

    @classmethod
    def from_fov(cls, width: int, height: int, horizontal_fov_deg: float) -> Intrinsics:
        """The fallback without camera_info: square pixels, the principal point at the image centre, no distortion.

        Raises:
            ValueError: the field of view is not within (0, 180) degrees.
        """
        if not 0.0 < horizontal_fov_deg < 180.0:
            raise ValueError(f"horizontal field of view must be within (0, 180) degrees, got {horizontal_fov_deg}")
        f = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    @classmethod
    def from_camera_info(cls, k: Sequence[float], d: Sequence[float], distortion_model: str) -> Intrinsics:
        """The intrinsics a sensor_msgs/CameraInfo gives: ``k`` the 3x3 camera matrix row by row, ``d`` its
        distortion, of which radial k1, k2 are read for ``plumb_bob`` and ``rational_polynomial`` (none else)."""
        k1, k2 = (float(d[0]), float(d[1])) if distortion_model in RADIAL_FIRST and len(d) >= 2 else (0.0, 0.0)
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]), k1, k2)

    def normalised(self, pts: np.ndarray) -> np.ndarray:
        """(N, 2) undistorted normalised coordinates (x/z, y/z) of raw-image pixels (N, 2)."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        xn, yn = undistort_normalised((pts[:, 0] - self.cx) / self.fx, (pts[:, 1] - self.cy) / self.fy,
                                      self.k1, self.k2)
        return np.stack([xn, yn], axis=1)


@dataclass(frozen=True)
class Mounting:
    """How the camera sits: height above the road (m), pitch down and yaw left of the car's axis, and roll about
    its optical axis (rad, clockwise seen from behind: :meth:`GroundProjector.from_camera`)."""

    height_m: float
    pitch_rad: float
    yaw_rad: float = 0.0
    roll_rad: float = 0.0


@dataclass(frozen=True)
class Measurement:
    """One frame's evidence: pitch and yaw (rad) of the vanishing point, the ego lane's width divided by the
    camera height, and the camera's offset left of the ego lane's centre in lane widths (both NaN when the
    ego lane's two lines were not both straight)."""

    pitch_rad: float
    yaw_rad: float
    width_ratio: float
    offset: float = math.nan
    halved: bool = False  # the ego lines were two lanes apart: the width and offset are of the half with the camera
    roll_rad: float = math.nan  # the roll that makes the frame's lane widths most alike; NaN: not measured
    vp: tuple[float, float] | None = None  # the vanishing point (normalised) the pitch and yaw were read from
    ego: tuple | None = None  # the ego lines (normalised n . p = d) the width and offset were read from


@dataclass(frozen=True)
class CalibrationStatus:
    """Where the estimator stands.

    Attributes:
        state: ``collecting`` (no mounting yet), ``converged``, ``seeded`` (started from given values, not yet
            confirmed by measurements) or ``frozen``.
        mounting: the mounting in use, or None while collecting.
        lane_width_m: the ego lane's median width with this mounting (the prior when the height is estimated).
        confidence: 0..1, from the number of measurements and how well they agree.
        frames_seen: frames given to :meth:`MountingEstimator.update`.
        frames_used: frames that gave a measurement.
        spread_deg: standard error of the pitch and yaw medians (degrees; NaN before two measurements).
        waiting_for: while collecting, what the estimate still needs, in words; empty otherwise.
    """

    state: str
    mounting: Mounting | None
    lane_width_m: float | None
    confidence: float
    frames_seen: int
    frames_used: int
    spread_deg: float
    waiting_for: str = ""


class MountingEstimator:
    """Online estimate of the camera's pitch, yaw and height from lane frames (see the module docstring).

    Args:
        intrinsics: the camera's intrinsics (camera_info, or :meth:`Intrinsics.from_fov`).
        lane_width_m: lane-width prior that sets the scale (metres, 2.5-5); ignored when ``height_m`` is given.
        height_m: the camera height when known: only pitch and yaw are estimated, the lane width is measured.
        seed: a mounting to start from (used at once, then adapted slowly); its height is replaced by
            ``height_m`` when that is given.
        window: measurements the median is taken over (300 = 30 s of straight road at 10 Hz).
        min_frames: measurements needed before the estimate can converge.
        straight_tol_px: a line whose points lie farther than this from a straight line (undistorted image,
            pixels) is curved and not used.
        max_step_deg: most the pitch, yaw or roll in use moves per measurement once converged.
        estimate_roll: measure the roll from the lanes' widths (else it stays the seed's, or zero). Off by
            default: lanes of a road that differ in width by a few tenths of a metre bias it by about a degree
            (docs/node.md, "Self-calibration").

    Raises:
        ValueError: a setting out of range.
    """

    def __init__(self, intrinsics: Intrinsics, *, lane_width_m: float = 3.6, height_m: float | None = None,
                 seed: Mounting | None = None, window: int = 300, min_frames: int = 30,
                 straight_tol_px: float = 2.0, max_step_deg: float = 0.005, estimate_roll: bool = False) -> None:
        lo, hi = LANE_WIDTH_RANGE_M
        if not lo <= lane_width_m <= hi:
            raise ValueError(f"lane width prior must be within {lo}-{hi} m, got {lane_width_m}")
        if height_m is not None and not height_m > 0:
            raise ValueError(f"camera height must be > 0 m, got {height_m}")
        if not 1 <= min_frames <= window:
            raise ValueError(f"min_frames must be within 1..window ({window}), got {min_frames}")
        self.intrinsics = intrinsics
        self.lane_width_m, self.height_m = lane_width_m, height_m
        self.min_frames, self.straight_tol_px = min_frames, straight_tol_px
        self.max_step = math.radians(max_step_deg)
        self.estimate_roll = estimate_roll
        self.frozen = False
        self._roll_known = False  # the roll has been taken from measurements once (later it moves step by step)
        self._history: deque[Measurement] = deque(maxlen=window)
        self._seen = self._used = 0
        self._off_centre = 0  # frames whose lane width was not taken: the camera far off the ego lane's centre
        self._offsets: deque[tuple[float, float]] = deque()
        self._unsteady_until = -math.inf
        self._jumped: float | None = None  # the offset of a frame that jumped off the track, until confirmed
        self._gated = 0  # converged: yaws outside the gate in a row
        self._mounting = None if seed is None else replace(seed, height_m=height_m or seed.height_m)
        self._state = "collecting" if seed is None else "seeded"
        self._projector: GroundProjector | None = None
        self._projected: Mounting | None = None

    # ---- per frame ---------------------------------------------------------------------------------------
    def update(self, frame: LaneFrame, stamp: float | None = None) -> bool:
        """Take one frame's lanes into the estimate.

        Args:
            frame: the pipeline's lanes for one image (``ego_left_index``/``ego_right_index`` set).
            stamp: the image's time in seconds (default: 10 Hz frame counting).

        Returns:
            True when the frame gave a measurement that was used.
        """
        self._seen += 1
        if self.frozen:
            return False
        m = self.measure(frame)
        if m is None:
            return False
        m = self._one_lane(m)
        if not self._steady(m, self._seen * 0.1 if stamp is None else float(stamp)) or not self._within_gate(m):
            return False
        # what _one_lane leaves further off-centre is not read as a lane (a lane change, a camera far off-centre)
        off_centre = self.height_m is None and abs(m.offset) > _OFF_CENTRE
        if not math.isnan(m.width_ratio) and (off_centre or not self._plausible_width(m.width_ratio)):
            self._off_centre += off_centre
            m = replace(m, width_ratio=math.nan)
        self._history.append(m)
        self._used += 1
        target, settled = self._median()
        if target is None:
            return True
        if self._mounting is None:
            if settled:
                self._mounting, self._state = target, "converged"
        else:
            if self._state == "seeded" and settled:
                self._state = "converged"
            self._mounting = self._step_towards(self._mounting, target)
        rolls = self._rolls()
        if self._mounting is not None and not self._roll_known and len(rolls) >= self.min_frames // 2:
            # at once (see the module docstring), the pitch and yaw read again from the same vanishing points
            roll = float(np.median(rolls))
            for k, m in enumerate(self._history):
                self._history[k] = _read_again(m, roll)
            target, _ = self._median()
            self._mounting = replace(self._mounting, pitch_rad=target.pitch_rad, yaw_rad=target.yaw_rad,
                                     roll_rad=roll)
            self._roll_known = True
        return True

    def measure(self, frame: LaneFrame) -> Measurement | None:
        """The vanishing point's pitch and yaw and the ego lane's width ratio in one frame, or None when the
        frame has fewer than two straight lines or they do not meet in a plausible point."""
        lines = {}
        for i, lane in enumerate(frame.lanes):
            line = self._straight_line(self.intrinsics.normalised(_middle_part(lane.points)))
            if line is not None:
                lines[i] = line
        # on a bend every line bows the same way; a detection's own wiggles do not agree from line to line
        if not lines or abs(np.median([ln[5] for ln in lines.values()])) > self.straight_tol_px:
            return None
        vp = _vanishing_point([ln[:5] for ln in lines.values()])
        if vp is None:
            return None
        roll = self._mounting.roll_rad if self._mounting is not None else 0.0
        pitch, yaw = _pitch_yaw(vp, roll)
        if abs(pitch) > _MAX_PITCH or abs(yaw) > _MAX_YAW:
            return None
        ego = frame.ego_left_index, frame.ego_right_index
        if all(i in lines for i in ego):
            ego_lines = tuple(lines[i] for i in ego)
            lane = _ego_lane(ego_lines, vp, roll)
            if lane is not None:
                measured = _roll(lines, ego, vp) if self.estimate_roll else math.nan
                return Measurement(pitch, yaw, *lane, roll_rad=measured, vp=vp, ego=ego_lines)
        return Measurement(pitch, yaw, math.nan, vp=vp)

    def _straight_line(self, pts: np.ndarray) -> tuple[float, ...] | None:
        """(nx, ny, d, top, weight, bow): the line n . p = d (unit normal) through normalised points, its
        topmost row, its length, and how far (pixels, signed) the points bow from it; None when the points are
        too few or too short, or bow by more than four times ``straight_tol_px``."""
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if len(pts) < 5 or np.ptp(pts[:, 1]) * self.intrinsics.fy < 30.0:
            return None
        centre = pts.mean(axis=0)
        _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
        normal = vt[1]
        # bow: the quadratic term of x(y) over the line's rows, signed alike for every line of a bend
        rel = pts - centre
        bow = np.polyfit(rel[:, 1], rel[:, 0], 2)[0] * (np.ptp(pts[:, 1]) / 2.0) ** 2 * self.intrinsics.fx
        if abs(bow) > 4.0 * self.straight_tol_px or abs(normal[0]) < 1e-6:
            return None
        return (float(normal[0]), float(normal[1]), float(normal @ centre), float(pts[:, 1].min()),
                float(np.ptp(rel @ vt[0])), float(bow))

    def _one_lane(self, m: Measurement) -> Measurement:
        """The measurement of one lane. An ego lane that the camera sits a quarter of its width off-centre in
        (``_OFF_CENTRE`` to ``_TWO_LANES``) is most often two lanes: a car ahead hides the ego line on one side and
        the decoder names the next one out (taken whole, the lane looks twice as wide and the height would come
        out half); a car keeping its lane, its camera near its centre line, stays well within 0.2 of the centre.
        Such a frame is read as the half the camera is in. With the height given, the width check decides
        (a camera mounted off-centre keeps a whole lane of plausible width); without it, :meth:`_median` counts
        the halves only once lanes seen whole agree with them."""
        if not _OFF_CENTRE < abs(m.offset) <= _TWO_LANES:
            return m
        half = replace(m, width_ratio=m.width_ratio / 2.0, offset=2.0 * m.offset - math.copysign(0.5, m.offset),
                       halved=True)
        if self.height_m is not None and self._plausible_width(m.width_ratio) \
                and not self._plausible_width(half.width_ratio):
            return m
        return half

    def _steady(self, m: Measurement, t: float) -> bool:
        """Whether the car keeps its lane: the yaw measured is the mounting's plus the car's heading to the
        lanes, which is far from zero while changing lanes. Unsteady: the ego lane unknown, the offset in it
        moving faster than ``_DRIFT`` lane widths a second (or jumping to another lane), or within ``_SETTLE``
        seconds of such a move. A single frame off the track (one ego line missed and the next line taken for
        it) is a detection's glitch: that frame alone is left out; a jump is a move when the next frame
        agrees with it."""
        if math.isnan(m.offset):
            return False
        track = self._offsets
        while track and not 0.0 <= t - track[0][0] <= 1.0:
            track.popleft()
        if track and abs(m.offset - track[-1][1]) > _JUMP:
            confirmed = self._jumped is not None and abs(m.offset - self._jumped) <= _JUMP
            self._jumped = m.offset
            if not confirmed:
                return False
            track.clear()  # the car is somewhere else in the lane, or in another lane
            self._unsteady_until = t + _SETTLE
        self._jumped = None
        track.append((t, m.offset))
        if len(track) >= 4 and track[-1][0] - track[0][0] >= 0.3:
            times, offsets = np.array(track).T
            if abs(np.polyfit(times, offsets, 1)[0]) > _DRIFT:
                self._unsteady_until = t + _SETTLE
        return t >= self._unsteady_until

    def _within_gate(self, m: Measurement) -> bool:
        """Once converged, whether the yaw is within ``_YAW_GATE`` of the estimate; ``_REGATE`` misses in a row
        are not a lane change but a turned camera, and the estimate starts over."""
        if self._state != "converged" or abs(m.yaw_rad - self._mounting.yaw_rad) < _YAW_GATE:
            self._gated = 0
            return True
        self._gated += 1
        if self._gated >= _REGATE:
            self._history.clear()
            self._mounting, self._state, self._gated, self._roll_known = None, "collecting", 0, False
        return False

    def _plausible_width(self, ratio: float) -> bool:
        lo, hi = LANE_WIDTH_RANGE_M
        height = self.height_m or (self._mounting.height_m if self._mounting else None)
        if height is not None:
            return lo <= ratio * height <= hi
        known = self._ratios()
        if len(known) < 10:
            return True
        return lo <= self.lane_width_m * ratio / float(np.median(known)) <= hi

    # ---- the estimate ------------------------------------------------------------------------------------
    def _median(self) -> tuple[Mounting | None, bool]:
        """(the median mounting, whether it is settled), or (None, False) without enough measurements."""
        pitch = np.array([m.pitch_rad for m in self._history])
        yaw = np.array([m.yaw_rad for m in self._history])
        ratio = self._ratios()
        if len(ratio) == 0 and self.height_m is None:
            return None, False
        height = self.height_m or self.lane_width_m / float(np.median(ratio))
        rolls = self._rolls()
        roll = float(np.median(rolls)) if len(rolls) >= self.min_frames // 2 else \
            self._mounting.roll_rad if self._mounting is not None else 0.0
        target = Mounting(height, float(np.median(pitch)), float(np.median(yaw)), roll)
        settled = (len(pitch) >= self.min_frames and len(ratio) >= self.min_frames // 2
                   and self._spread() < _SETTLED_SPREAD_DEG
                   and (self.height_m or (_relative_se(ratio) < _SETTLED_WIDTH_SE and self._confirmed(ratio))))
        return target, bool(settled)

    def _confirmed(self, ratio: np.ndarray) -> bool:
        """Whether the widths ``ratio`` (those of the history) stand on lanes seen whole: none is a half of two
        lanes (:meth:`_one_lane`), or ``_CONFIRM`` whole ones agree with their median."""
        halves, agreeing = self._halves(ratio)
        return halves == 0 or agreeing >= _CONFIRM

    def _halves(self, ratio: np.ndarray) -> tuple[int, int]:
        """(widths of the history read as two lanes' halves, whole ones within ``_AGREE`` of the median)."""
        whole = np.array([m.width_ratio for m in self._history if not m.halved and math.isfinite(m.width_ratio)])
        if not len(ratio):
            return 0, 0
        return len(ratio) - len(whole), int(np.count_nonzero(np.abs(whole / np.median(ratio) - 1.0) <= _AGREE))

    def _spread(self) -> float:
        """Standard error of the pitch and yaw medians, in degrees (the larger)."""
        if len(self._history) < 2:
            return math.nan
        se = [_MEDIAN_SE * _mad(np.array(v)) / math.sqrt(len(v))
              for v in ([m.pitch_rad for m in self._history], [m.yaw_rad for m in self._history])]
        return math.degrees(max(se))

    def _step_towards(self, now: Mounting, target: Mounting) -> Mounting:
        step, rel = self.max_step, _HEIGHT_STEP
        return Mounting(now.height_m * (1.0 + float(np.clip(target.height_m / now.height_m - 1.0, -rel, rel))),
                        now.pitch_rad + float(np.clip(target.pitch_rad - now.pitch_rad, -step, step)),
                        now.yaw_rad + float(np.clip(target.yaw_rad - now.yaw_rad, -step, step)),
                        now.roll_rad + float(np.clip(target.roll_rad - now.roll_rad, -step, step)))

    def _rolls(self) -> np.ndarray:
        """The rolls of the history that were measured."""
        roll = np.array([m.roll_rad for m in self._history])
        return roll[np.isfinite(roll)]

    def _ratios(self) -> np.ndarray:
        """The width ratios of the history that were measured."""
        ratio = np.array([m.width_ratio for m in self._history])
        return ratio[np.isfinite(ratio)]

    def _width_m(self, ratio: np.ndarray) -> float | None:
        """The lane width in metres (the mounting's height times the median of ``ratio``), None without both."""
        return self._mounting.height_m * float(np.median(ratio)) if self._mounting is not None and len(ratio) \
            else None

    @property
    def lane_width_measured_m(self) -> float | None:
        """The lane width the estimate measures (``status.lane_width_m``), without the rest of :attr:`status`."""
        return self._width_m(self._ratios())

    @property
    def status(self) -> CalibrationStatus:
        """The current state, mounting, lane width and confidence."""
        ratio = self._ratios()
        width = self._width_m(ratio)
        spread = self._spread()
        confidence = 0.0
        if len(self._history) >= 2:
            rel = _relative_se(ratio) if len(ratio) >= 2 and self.height_m is None else 0.0
            agreement = 1.0 - max(spread / 0.3, rel / 0.05)
            confidence = float(np.clip(agreement, 0.0, 1.0) * min(1.0, len(self._history) / self.min_frames))
        state = "frozen" if self.frozen and self._mounting is not None else self._state
        waiting = self._waiting_for(ratio, spread) if state == "collecting" else ""
        return CalibrationStatus(state, self._mounting, width, confidence, self._seen, self._used, spread, waiting)

    def _waiting_for(self, ratio: np.ndarray, spread: float) -> str:
        """What keeps the estimate from converging, in the order :meth:`_median` checks it (``ratio``: the width
        ratios measured, ``spread``: :meth:`_spread`)."""
        if self.frozen:
            return "nothing: frozen with no value (give calibration.seed, or unfreeze)"
        straight = len(self._history)
        if straight < self.min_frames:
            return f"frames of straight road with both ego lines steady: {straight} of {self.min_frames}"
        widths = len(ratio)
        if self.height_m is None and widths < self.min_frames // 2:
            why = (f"; {self._off_centre} frames had the camera over {_TWO_LANES:g} lane widths off the ego lane's "
                   f"centre (changing lanes, or a camera mounted off-centre: {_GIVE_HEIGHT})" if self._off_centre
                   else "")
            return f"lane widths measured: {widths} of {self.min_frames // 2}{why}"
        if not spread < _SETTLED_SPREAD_DEG:
            return f"pitch and yaw to agree: spread {spread:.3f} deg (under {_SETTLED_SPREAD_DEG:g} needed)"
        halves, agreeing = self._halves(ratio)
        if self.height_m is None and halves and agreeing < _CONFIRM:
            return (f"lane widths of a lane seen whole to confirm those read as two lanes: {agreeing} of {_CONFIRM}; "
                    f"{halves} frames had the ego lines two lanes apart (a car ahead hiding an ego line, or a camera "
                    f"mounted a quarter lane off-centre: {_GIVE_HEIGHT})")
        return (f"lane widths to agree: {100 * _relative_se(ratio):.2f} % "
                f"(under {100 * _SETTLED_WIDTH_SE:g} % needed)")

    def projector(self) -> GroundProjector | None:
        """The ground projector of the mounting in use, or None while collecting."""
        m = self._mounting
        if m is None:
            return None
        if m != self._projected:
            c = self.intrinsics
            self._projector = GroundProjector.from_camera(c.fx, c.fy, c.cx, c.cy, m.height_m, m.pitch_rad,
                                                          k1=c.k1, k2=c.k2, yaw_rad=m.yaw_rad, roll_rad=m.roll_rad)
            self._projected = m
        return self._projector


def _middle_part(points: np.ndarray) -> np.ndarray:
    """The points of a lane between ``_ROWS_USED`` of its row span above its lowest point: detected lines bend
    most near the horizon, where a pixel spans metres of road, and at the bottom edge, where the decoder's
    polynomial runs out of support (measured on the default model's detections, bench/calibration.py)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return pts
    bottom, span = pts[:, 1].max(), np.ptp(pts[:, 1])
    low, high = _ROWS_USED
    return pts[(pts[:, 1] <= bottom - low * span) & (pts[:, 1] >= bottom - high * span)]


def _pitch_yaw(vp: tuple[float, float], roll: float) -> tuple[float, float]:
    """The pitch and yaw (rad) of a camera with this roll whose image shows the road's vanishing point at ``vp``
    (normalised coordinates): the point turned back by the roll, as an upright camera would see it."""
    c, s = math.cos(roll), math.sin(roll)
    x, y = c * vp[0] - s * vp[1], s * vp[0] + c * vp[1]
    pitch = math.atan(-y)
    return pitch, math.atan(x * math.cos(pitch))


def _offsets(lines: Sequence[tuple[float, ...]], vp: tuple[float, float], roll: float) -> np.ndarray:
    """How far left of the camera each line through the vanishing point ``vp`` lies on the ground, in camera
    heights, for a camera with this roll (NaN where the line's probe point is not below the horizon)."""
    pitch, yaw = _pitch_yaw(vp, roll)
    if abs(pitch) >= math.pi / 2 - 1e-6 or abs(yaw) > math.pi / 4:
        return np.full(len(lines), np.nan)
    unit = GroundProjector.from_camera(1.0, 1.0, 0.0, 0.0, 1.0, pitch, yaw_rad=yaw, roll_rad=roll)
    probe = vp[1] + 0.2  # a row below the vanishing point: the lines are parallel on the ground
    return unit.image_to_ground(np.array([[(ln[2] - ln[1] * probe) / ln[0], probe] for ln in lines]))[:, 1]


def _ego_lane(ego: Sequence[tuple[float, ...]], vp: tuple[float, float], roll: float) -> tuple[float, float] | None:
    """(the ego lane's width in camera heights, the camera's offset left of its centre in lane widths) from its
    two lines, or None where they are not left and right of each other below the horizon."""
    y = _offsets(ego, vp, roll)
    if not (np.all(np.isfinite(y)) and y[0] > y[1]):
        return None
    return float(y[0] - y[1]), float(-(y[0] + y[1]) / 2.0 / (y[0] - y[1]))


def _read_again(m: Measurement, roll: float) -> Measurement:
    """A measurement read again from its vanishing point and ego lines with another roll (its width and offset
    halved again where they were: ``MountingEstimator._one_lane``; a width left out stays out)."""
    if m.vp is None:
        return m
    pitch, yaw = _pitch_yaw(m.vp, roll)
    m = replace(m, pitch_rad=pitch, yaw_rad=yaw)
    lane = None if m.ego is None or not math.isfinite(m.width_ratio) else _ego_lane(m.ego, m.vp, roll)
    if lane is None:
        return m
    ratio, offset = lane
    if m.halved:
        ratio, offset = ratio / 2.0, 2.0 * offset - math.copysign(0.5, offset)
    return replace(m, width_ratio=ratio, offset=offset)


def _roll(lines: dict[int, tuple[float, ...]], ego: tuple[int, int], vp: tuple[float, float]) -> float:
    """The roll (rad) that makes the widths of the lanes in a row with the ego lane (``ego``: its two lines'
    indices; each lane ``_LANE_LIKE`` of the ego lane's width without roll) most alike, or NaN without a lane
    beside the ego lane, or where the best roll is beyond +-``_MAX_ROLL``."""
    keys = list(lines)
    base = _offsets([lines[k] for k in keys], vp, 0.0)
    if not np.all(np.isfinite(base)):
        return math.nan
    order = [keys[i] for i in np.argsort(-base)]  # left to right
    at = {k: y for k, y in zip(keys, base, strict=True)}
    i, j = order.index(ego[0]), order.index(ego[1])
    if j != i + 1:
        return math.nan
    lo, hi = (f * (at[ego[0]] - at[ego[1]]) for f in _LANE_LIKE)
    while i > 0 and lo <= at[order[i - 1]] - at[order[i]] <= hi:
        i -= 1
    while j < len(order) - 1 and lo <= at[order[j]] - at[order[j + 1]] <= hi:
        j += 1
    run = [lines[k] for k in order[i:j + 1]]
    if len(run) < 3:
        return math.nan
    rolls = np.arange(-_MAX_ROLL, _MAX_ROLL + 1e-9, _ROLL_STEP)
    costs = []
    for r in rolls:
        widths = -np.diff(_offsets(run, vp, float(r)))
        ok = np.all(np.isfinite(widths)) and widths.min() > 0
        costs.append(float(np.var(widths) / np.mean(widths) ** 2) if ok else math.inf)
    k = int(np.argmin(costs))
    if k in (0, len(rolls) - 1) or not math.isfinite(costs[k - 1] + costs[k + 1]):
        return math.nan
    curve = costs[k - 1] - 2.0 * costs[k] + costs[k + 1]
    shift = 0.5 * (costs[k - 1] - costs[k + 1]) / curve if curve > 0 else 0.0
    return float(rolls[k] + shift * _ROLL_STEP)


def _vanishing_point(lines: list[tuple[float, float, float, float, float]]) -> tuple[float, float] | None:
    """Least-squares meeting point (x, y) of lines n . p = d (normalised coordinates), dropping the worst line
    while more than two disagree; None when fewer than two lines remain, they are near parallel, or the point
    is not above all of them."""
    lines = list(lines)
    while len(lines) >= 2:
        arr = np.array(lines)
        w = np.sqrt(arr[:, 4])
        design = arr[:, :2] * w[:, None]
        if np.linalg.svd(design / np.linalg.norm(w), compute_uv=False)[-1] < 0.1:
            return None  # near parallel: the meeting point is ill defined
        vp, *_ = np.linalg.lstsq(design, arr[:, 2] * w, rcond=None)
        miss = np.abs(arr[:, :2] @ vp - arr[:, 2])
        if len(lines) == 2 or miss.max() < 0.002:
            return None if vp[1] >= arr[:, 3].min() else (float(vp[0]), float(vp[1]))
        lines.pop(int(np.argmax(miss)))
    return None


def _mad(values: np.ndarray) -> float:
    return float(np.median(np.abs(values - np.median(values))))


def _relative_se(ratio: np.ndarray) -> float:
    if len(ratio) < 2:
        return math.inf
    return _MEDIAN_SE * _mad(ratio) / math.sqrt(len(ratio)) / float(np.median(ratio))
