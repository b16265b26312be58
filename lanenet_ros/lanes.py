"""Plain data types shared by the pipeline, the node, replay and training (no rclpy, no torch).

The integer constants mirror ``msg/Lane.msg`` one for one; ``test/test_messages.py`` checks
that they agree, so the ROS-free core can use them without importing the generated messages.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Position(IntEnum):
    """Position of a lane boundary relative to the ego vehicle (Lane.POSITION_*)."""

    UNKNOWN = 0
    EGO_LEFT = 1
    EGO_RIGHT = 2
    SECOND_LEFT = 3
    SECOND_RIGHT = 4
    THIRD_LEFT = 5
    THIRD_RIGHT = 6
    FOURTH_LEFT = 7
    FOURTH_RIGHT = 8


class MarkingType(IntEnum):
    """Painted marking type (Lane.TYPE_*)."""

    UNKNOWN = 0
    SOLID = 1
    DASHED = 2
    DOUBLE_SOLID = 3
    SOLID_DASHED = 4
    DASHED_SOLID = 5
    DOUBLE_DASHED = 6
    BOTTS_DOTS = 7
    ROAD_EDGE = 8


class MarkingColor(IntEnum):
    """Painted marking colour (Lane.COLOR_*)."""

    UNKNOWN = 0
    WHITE = 1
    YELLOW = 2
    BLUE = 3
    RED = 4


# A network's marking output (``marking_logits``, docs/model_format.md): one channel per type here, then one per
# colour here, in these orders; the types and the colours are two separate softmaxes.
LEARNED_TYPES = (MarkingType.SOLID, MarkingType.DASHED, MarkingType.DOUBLE_SOLID, MarkingType.SOLID_DASHED,
                 MarkingType.DASHED_SOLID, MarkingType.DOUBLE_DASHED, MarkingType.BOTTS_DOTS)
LEARNED_COLORS = (MarkingColor.WHITE, MarkingColor.YELLOW)


@dataclass
class DetectedLane:
    """One lane boundary found in one image, in the camera image's pixel coordinates.

    Attributes:
        image_coeffs: polynomial x(y), lowest order first (``np.polynomial`` order).
        y_min: first image row the polynomial is valid for (pixels).
        y_max: last image row the polynomial is valid for (pixels).
        points: (N, 2) float32 samples (x, y) of the polynomial, near (bottom) to far (top).
        confidence: in [0, 1].
        ground_coeffs: (c0, c1, c2, c3) of y(x) in metres in the vehicle frame, or None.
        ground_x_range: (x_min, x_max) in metres for which ``ground_coeffs`` hold, or None.
        ground_points: (M, 2) float32 samples (x forward, y left) in metres, or None.
    """

    image_coeffs: np.ndarray
    y_min: float
    y_max: float
    points: np.ndarray
    confidence: float = 1.0
    position: Position = Position.UNKNOWN
    marking_type: MarkingType = MarkingType.UNKNOWN
    color: MarkingColor = MarkingColor.UNKNOWN
    track_id: int = 0
    ground_coeffs: np.ndarray | None = None
    ground_x_range: tuple[float, float] | None = None
    ground_points: np.ndarray | None = None

    def replace(self, **changes: object) -> DetectedLane:
        """A copy with ``changes`` (as ``dataclasses.replace``, without its per-field work: the tracker and the
        decoder copy every lane of every frame). Only field names are accepted."""
        unknown = changes.keys() - _LANE_FIELDS
        if unknown:
            raise TypeError(f"DetectedLane has no field {', '.join(sorted(unknown))}")
        lane = object.__new__(DetectedLane)
        lane.__dict__.update(self.__dict__, **changes)
        return lane

    def x_at(self, y: np.ndarray | float) -> np.ndarray:
        """Evaluate x(y) of the image polynomial (no range check)."""
        return polyval(np.asarray(y, dtype=np.float64), self.image_coeffs)


_LANE_FIELDS = frozenset(f.name for f in dataclasses.fields(DetectedLane))


def polyval(x: np.ndarray | float, coeffs: np.ndarray) -> np.ndarray | float:
    """``np.polynomial.polynomial.polyval`` (coefficients lowest order first) by Horner's rule, without its
    argument checks: the lane code evaluates short polynomials many times a frame."""
    out = coeffs[-1] + 0.0 * x
    for c in coeffs[-2::-1]:
        out = out * x + c
    return out


@dataclass
class LaneFrame:
    """Everything the pipeline found in one camera image.

    Attributes:
        width: camera image width in pixels (the frame of all image coordinates).
        height: camera image height in pixels.
        class_mask: (height, width) uint8 class ids at camera resolution. May be given as a function without
            arguments that makes it: it is then called on the first read only (the decoder gives one, so a
            frame whose mask nobody looks at does not pay for scaling it to camera size).
        lanes: lane boundaries ordered left to right at the bottom of the image.
        ego_left_index: index into ``lanes`` of the ego lane's left boundary, or -1.
        ego_right_index: index into ``lanes`` of the ego lane's right boundary, or -1.
        timings: seconds spent per pipeline stage (``preprocess``, ``infer``, ``decode``, ...).
        calibration: where the ground-plane fields' camera mounting came from: ``given`` (parameters, a
            homography), ``estimated`` (self-calibration, :mod:`lanenet_ros.calibrate`), or ``""`` (none).
        hood_row: camera row of the ego vehicle's bonnet edge at the image's centre column (lanes end at the
            edge, the mask is background below it), -1 when no bonnet was found or given (``decode.hood``).
    """

    width: int
    height: int
    class_mask: np.ndarray
    lanes: list[DetectedLane] = field(default_factory=list)
    ego_left_index: int = -1
    ego_right_index: int = -1
    timings: dict[str, float] = field(default_factory=dict)
    calibration: str = ""
    hood_row: float = -1.0

    def replace(self, **changes: object) -> LaneFrame:
        """A copy with ``changes`` (``dataclasses.replace``) that leaves a mask not yet made unmade."""
        changes.setdefault("class_mask", self.__dict__["_class_mask"])
        return dataclasses.replace(self, **changes)


def _class_mask(frame: LaneFrame) -> np.ndarray:
    mask = frame.__dict__["_class_mask"]
    if callable(mask):
        mask = frame.__dict__["_class_mask"] = mask()
    return mask


def _set_class_mask(frame: LaneFrame, mask: np.ndarray | Callable[[], np.ndarray]) -> None:
    frame.__dict__["_class_mask"] = mask


# a property set after the dataclass is made: the generated __init__ assigns through it, and the dataclass
# still sees a plain field
LaneFrame.class_mask = property(_class_mask, _set_class_mask, doc="(height, width) uint8 class ids")  # type: ignore[assignment]
