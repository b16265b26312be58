"""Camera intrinsics for offline replay, and the self-calibration result as a node parameter file (no rclpy).

Intrinsics come from a camera_info YAML file (the format of ROS ``camera_calibration_parsers``: ``camera_matrix``,
``distortion_model``, ``distortion_coefficients``; or the message's own field names ``k``, ``d``), from the
first ``sensor_msgs/CameraInfo`` in the bag, or from a horizontal field of view.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lanenet_ros.calibrate import CalibrationStatus, Intrinsics
from lanenet_ros.fileio import atomic_write_text
from lanenet_ros.replay.bags import CAMERA_INFO_TYPE, _typestore


def _intrinsics(k: list[float], d: list[float], model: str, where: str) -> Intrinsics:
    if len(k) != 9 or not k[0] > 0 or not k[4] > 0:
        raise ValueError(f"{where}: the camera matrix needs 9 numbers with fx, fy > 0, got {k}")
    return Intrinsics.from_camera_info(k, d, model)


def load_camera_info(path: Path) -> Intrinsics:
    """Intrinsics from a camera_info YAML file.

    Raises:
        ValueError: the file cannot be read, is not YAML, or lacks a usable camera matrix (the message names
            the file and what is missing).
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the camera_info file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a camera_info mapping (camera_matrix, distortion_coefficients)")
    k = data.get("k") or (data.get("camera_matrix") or {}).get("data")
    d = data.get("d") or (data.get("distortion_coefficients") or {}).get("data") or []
    if k is None:
        raise ValueError(f"{path}: no camera_matrix.data (or k) with the 9 numbers of the camera matrix")
    try:
        return _intrinsics([float(v) for v in k], [float(v) for v in d],
                           str(data.get("distortion_model", "plumb_bob")), str(path))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def bag_camera_info(bag: Path) -> Intrinsics | None:
    """Intrinsics of the first CameraInfo message in the bag, or None when it has none or none can be read (a
    damaged bag: the image reader, :func:`lanenet_ros.replay.bags.read_images`, names what is damaged)."""
    from rosbags.rosbag2 import Reader

    store = _typestore()
    try:
        with Reader(bag) as reader:
            connections = [c for c in reader.connections if c.msgtype == CAMERA_INFO_TYPE]
            if not connections:  # (an empty list would read every topic)
                return None
            for connection, _, raw in reader.messages(connections=connections):
                msg = store.deserialize_cdr(raw, connection.msgtype)
                return _intrinsics(list(msg.k), list(msg.d), msg.distortion_model, f"{bag} {connection.topic}")
    except ValueError:
        raise  # a CameraInfo that is read but unusable: said, naming the bag and topic
    except Exception:  # damage in the storage (rosbags, sqlite, mcap errors of many kinds)
        return None
    return None


def calibration_summary(status: CalibrationStatus) -> dict[str, Any]:
    """The estimate as plain numbers for report.json (heights in metres, angles in degrees)."""
    m = status.mounting
    return {"state": status.state, "confidence": round(status.confidence, 3), "frames_used": status.frames_used,
            "frames_seen": status.frames_seen,
            "camera_height_m": None if m is None else round(m.height_m, 4),
            "camera_pitch_deg": None if m is None else round(math.degrees(m.pitch_rad), 4),
            "camera_yaw_deg": None if m is None else round(math.degrees(m.yaw_rad), 4),
            "camera_roll_deg": None if m is None else round(math.degrees(m.roll_rad), 4),
            "lane_width_m": None if status.lane_width_m is None else round(status.lane_width_m, 3),
            "waiting_for": status.waiting_for}


def format_calibration(status: CalibrationStatus) -> str:
    """One line for the console."""
    m = status.mounting
    used = f"{status.frames_used} of {status.frames_seen} frames measured"
    if m is None:
        return (f"self-calibration: not converged ({used}); waiting for {status.waiting_for or 'measurements'} "
                "(docs/node.md, Self-calibration)")
    width = "" if status.lane_width_m is None else f", mean lane width {status.lane_width_m:.2f} m"
    roll = f", roll {math.degrees(m.roll_rad):.3f} deg" if m.roll_rad else ""
    return (f"self-calibration ({status.state}, confidence {status.confidence:.2f}, {used}): camera height "
            f"{m.height_m:.3f} m, pitch {math.degrees(m.pitch_rad):.3f} deg, yaw {math.degrees(m.yaw_rad):.3f} deg"
            f"{roll}{width}")


def write_calibration_params(path: Path, status: CalibrationStatus, lane_width_prior: float) -> None:
    """The estimate as a node parameter file (``--params-file``): ``calibration.seed`` starts the node's own
    estimate from it; add ``calibration.freeze: true`` to keep it fixed."""
    m = status.mounting
    assert m is not None, "write_calibration_params needs an estimate"
    text = "\n".join([
        "# Camera mounting estimated by lanenet-replay's self-calibration (docs/node.md, Self-calibration).",
        f"# state {status.state}, confidence {status.confidence:.2f}, {status.frames_used} frames measured;",
        f"# height {m.height_m:.3f} m (scale from a lane width of {lane_width_prior} m), pitch "
        f"{math.degrees(m.pitch_rad):.3f} deg, yaw {math.degrees(m.yaw_rad):.3f} deg"
        + (f", roll {math.degrees(m.roll_rad):.3f} deg." if m.roll_rad else "."),
        "# calibration.seed starts the node from these values and keeps adapting them slowly; set",
        "# calibration.freeze to true to keep them as they are.",
        "/**:", "  ros__parameters:", "    calibration:",
        f"      lane_width: {float(lane_width_prior)!r}",
        f"      seed: [{m.height_m:.4f}, {m.pitch_rad:.6f}, {m.yaw_rad:.6f}"
        + (f", {m.roll_rad:.6f}]" if m.roll_rad else "]"), ""])
    atomic_write_text(path, text)
