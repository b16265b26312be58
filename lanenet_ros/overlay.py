"""Draw what the pipeline found on the camera image: class mask, fitted lanes and their labels (no ROS).

Used by the node's ``overlay`` topic, by replay and by ``lanenet-train inference``, so that a picture
of a result looks the same wherever it comes from.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from lanenet_ros.lanes import DetectedLane, LaneFrame, MarkingColor, MarkingType, Position

# Lane colours by position (RGB, 0-255): ego boundaries stand out, outer ones fade; shared with RViz markers.
POSITION_COLORS_RGB: dict[Position, tuple[int, int, int]] = {
    Position.EGO_LEFT: (0, 230, 64),
    Position.EGO_RIGHT: (0, 160, 255),
    Position.SECOND_LEFT: (255, 200, 0),
    Position.SECOND_RIGHT: (255, 100, 200),
    Position.THIRD_LEFT: (200, 120, 0),
    Position.THIRD_RIGHT: (160, 60, 220),
    Position.FOURTH_LEFT: (130, 90, 40),
    Position.FOURTH_RIGHT: (100, 40, 160),
    Position.UNKNOWN: (200, 200, 200),
}

_SHORT_POSITION = {
    Position.UNKNOWN: "?", Position.EGO_LEFT: "L1", Position.EGO_RIGHT: "R1", Position.SECOND_LEFT: "L2",
    Position.SECOND_RIGHT: "R2", Position.THIRD_LEFT: "L3", Position.THIRD_RIGHT: "R3",
    Position.FOURTH_LEFT: "L4", Position.FOURTH_RIGHT: "R4",
}


def position_color_rgb(position: int) -> tuple[int, int, int]:
    """RGB colour (0-255) used for a lane at this position, in the overlay and in RViz markers.

    Args:
        position: a :class:`Position` value (unknown values get the UNKNOWN colour).

    Returns:
        (r, g, b).
    """
    try:
        return POSITION_COLORS_RGB[Position(position)]
    except ValueError:
        return POSITION_COLORS_RGB[Position.UNKNOWN]


def default_class_colors(num_classes: int = 256) -> list[tuple[int, int, int]]:
    """A distinct RGB colour per class id (class 0, background, black), for models that name none.

    Args:
        num_classes: how many colours.

    Returns:
        List of (r, g, b).
    """
    hues = (np.arange(num_classes) * 47) % 180
    hsv = np.stack([hues, np.full(num_classes, 220), np.full(num_classes, 255)], axis=1).astype(np.uint8)
    rgb = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]
    colors = [tuple(int(v) for v in c) for c in rgb]
    colors[0] = (0, 0, 0)
    return colors


def lane_label(lane: DetectedLane) -> str:
    """Short text for a lane: position, track id, type, colour, confidence (``L1 #3 dashed white 0.91``).

    Args:
        lane: the lane.

    Returns:
        The label.
    """
    parts = [_SHORT_POSITION.get(lane.position, "?")]
    if lane.track_id:
        parts.append(f"#{lane.track_id}")
    if lane.marking_type != MarkingType.UNKNOWN:
        parts.append(MarkingType(lane.marking_type).name.lower().replace("_", "-"))
    if lane.color != MarkingColor.UNKNOWN:
        parts.append(MarkingColor(lane.color).name.lower())
    parts.append(f"{lane.confidence:.2f}")
    return " ".join(parts)


def _color_table(class_colors: Sequence[Sequence[int]] | None) -> np.ndarray:
    """(256, 3) uint8 BGR lookup table from RGB class colours (missing entries get default colours)."""
    table = np.array(default_class_colors(256), dtype=np.uint8)
    if class_colors:
        given = np.asarray(class_colors, dtype=np.uint8).reshape(-1, 3)[:256]
        table[: len(given)] = given
    return np.ascontiguousarray(table[:, ::-1])


def blend_mask(image_bgr: np.ndarray, class_mask: np.ndarray,
               class_colors: Sequence[Sequence[int]] | None = None, alpha: float = 0.45) -> np.ndarray:
    """The image with every non-background pixel of the class mask tinted in its class colour.

    Args:
        image_bgr: (H, W, 3) uint8 camera image (not modified).
        class_mask: (H, W) uint8 class ids, 0 = background.
        class_colors: RGB colour per class id, or None for default colours.
        alpha: weight of the class colour.

    Returns:
        A new (H, W, 3) uint8 BGR image.

    Raises:
        ValueError: when the mask and the image differ in size.
    """
    if class_mask.shape != image_bgr.shape[:2]:
        raise ValueError(f"class mask {class_mask.shape} does not match the image {image_bgr.shape[:2]}")
    out = np.array(image_bgr, dtype=np.uint8, copy=True, order="C")
    rows, cols = np.nonzero(class_mask)
    if rows.size:
        tint = _color_table(class_colors)[class_mask[rows, cols]].astype(np.float32)
        pixels = out[rows, cols].astype(np.float32)
        out[rows, cols] = (pixels * (1.0 - alpha) + tint * alpha + 0.5).astype(np.uint8)
    return out


def draw_lanes(canvas: np.ndarray, lanes: Sequence[DetectedLane], labels: bool = True) -> np.ndarray:
    """Draw each lane's fitted polyline (colour by position) and its label on ``canvas`` in place.

    Args:
        canvas: (H, W, 3) uint8 BGR image, modified.
        lanes: lanes in the canvas's pixel coordinates.
        labels: whether to write the text label at the far end of each lane (lanes meet near the horizon, so
            a label that would cover one already written moves down below it).

    Returns:
        ``canvas``.
    """
    thickness = max(2, canvas.shape[1] // 320)
    font_scale = max(0.4, canvas.shape[1] / 2000.0)
    texts = []
    for lane in lanes:
        points = np.asarray(lane.points, dtype=np.float64).reshape(-1, 2)
        points = points[np.all(np.isfinite(points), axis=1)]
        if len(points) < 2:
            continue
        bgr = position_color_rgb(lane.position)[::-1]
        cv2.polylines(canvas, [np.round(points).astype(np.int32)], False, bgr, thickness, cv2.LINE_AA)
        texts.append((lane_label(lane), points[-1], bgr))
    if not labels:
        return canvas
    sizes = []
    for text, _, _ in texts:
        (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness + 2)
        sizes.append((w, h + baseline))  # room for the descenders and the outline
    origins = label_origins([end for _, end, _ in texts], sizes, canvas.shape[:2])
    for (text, _, bgr), origin in zip(texts, origins, strict=True):
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness + 2,
                    cv2.LINE_AA)
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, bgr, max(1, thickness - 1),
                    cv2.LINE_AA)
    return canvas


def label_origins(ends: Sequence[Sequence[float]], sizes: Sequence[tuple[int, int]],
                  shape: tuple[int, int]) -> list[tuple[int, int]]:
    """Bottom-left text origins for labels at lane ends, inside the image and not covering one another.

    Each label starts just above its lane's end, centred on it; one that would overlap a label already placed
    moves down below it, as often as needed (labels are placed in order).

    Args:
        ends: (x, y) far end of each lane.
        sizes: (width, height) of each label's text.
        shape: (height, width) of the image.

    Returns:
        One ``(x, y)`` origin per label.
    """
    height, width = shape
    placed: list[tuple[int, int, int, int]] = []  # x0, y0 (top), x1, y1 (bottom) of each label
    origins = []
    for (x, y), (w, h) in zip(ends, sizes, strict=True):
        ox = int(np.clip(round(x) - w // 2, 0, max(0, width - w)))
        oy = int(np.clip(round(y) - 8, h + 2, height - 4))
        for _ in range(len(placed) + 1):
            hit = [b for b in placed if ox < b[2] and b[0] < ox + w and oy - h - 2 < b[3] and b[1] < oy + 4]
            if not hit:
                break
            oy = min(max(b[3] for b in hit) + h + 4, height - 4)
        placed.append((ox, oy - h - 2, ox + w, oy + 4))
        origins.append((ox, oy))
    return origins


def draw_overlay(image_bgr: np.ndarray, frame: LaneFrame,
                 class_colors: Sequence[Sequence[int]] | None = None, labels: bool = True) -> np.ndarray:
    """The camera image with the class mask tinted in, the fitted lanes drawn and labelled.

    Args:
        image_bgr: (H, W, 3) uint8 camera image the frame was computed from (not modified).
        frame: the pipeline's result for that image (mask and lanes at camera resolution).
        class_colors: RGB colour per class id (the model's ``class_colors``), or None for default colours.
        labels: whether to write a label beside each lane.

    Returns:
        A new (H, W, 3) uint8 BGR image.

    Raises:
        ValueError: when the frame's size is not the image's.
    """
    if (frame.height, frame.width) != image_bgr.shape[:2]:
        raise ValueError(f"lane frame is {frame.width}x{frame.height} but the image is "
                         f"{image_bgr.shape[1]}x{image_bgr.shape[0]}: draw on the image the frame came from")
    return draw_lanes(blend_mask(image_bgr, frame.class_mask, class_colors), frame.lanes, labels)
