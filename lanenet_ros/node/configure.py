"""From the node's parameters to a LanePipeline and its ground projection (no ROS imports).

Kept apart from :mod:`lanenet_ros.node.lanenet_node` so that the mapping from parameters to the pipeline can be read
and tested without rclpy.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lanenet_ros.calibrate import Intrinsics, Mounting, MountingEstimator
from lanenet_ros.node.params import NodeParams
from lanenet_ros.pipeline import LanePipeline


def open_pipeline(params: NodeParams) -> tuple[LanePipeline, bool]:
    """Open the model as the parameters say.

    Args:
        params: the node's parameters.

    Returns:
        (the pipeline, whether lanes carry ground coordinates from the start: a homography was given).

    Raises:
        ModelError: the model is missing, invalid or unsuitable.
        BackendError: the backend cannot run here.
        ValueError: a setting the pipeline refuses.
    """
    camera = None
    if params.ground_homography:
        from lanenet_ros.ground import GroundProjector

        matrix = np.asarray(params.ground_homography, dtype=np.float64).reshape(3, 3)
        camera = GroundProjector.from_homography(matrix)
    options: dict[str, Any] = {"precision": params.precision}
    if params.threads:
        options["intra_op_threads"] = params.threads
    pipeline = LanePipeline(params.model or None, params.backend, decode_params=params.decode,
                            roi_top=None if params.roi_top < 0 else params.roi_top, camera=camera,
                            heads_every=params.heads_every,
                            tracking=params.tracking and {"alpha": params.tracker_smoothing,
                                                          "max_misses": params.tracker_max_misses,
                                                          "coast": params.tracker_coast,
                                                          "coast_after": params.tracker_coast_after,
                                                          "ground": params.tracker_ground,
                                                          "hood": params.tracker_hood},
                            **options)
    return pipeline, pipeline.projector is not None


def ground_from_camera_info(info: Any, params: NodeParams) -> dict[str, float] | None:
    """Camera parameters for the ground projection from a sensor_msgs/CameraInfo and the mounting parameters.

    Args:
        info: a CameraInfo (``k``, ``d``, ``distortion_model``).
        params: the node's parameters (``ground.camera_height``, ``ground.camera_pitch``, ``_yaw``, ``_roll``).

    Returns:
        ``fx, fy, cx, cy, height_m, pitch_rad, k1, k2, yaw_rad, roll_rad`` for :meth:`LanePipeline.set_ground`,
        or None when the ground plane is off (no camera height) or a homography is used instead.
    """
    if (params.ground_homography or params.ground_camera_height <= 0
            or params.calibration_mode == "pitch_yaw"):
        return None
    c = intrinsics_from_camera_info(info)
    return {"fx": c.fx, "fy": c.fy, "cx": c.cx, "cy": c.cy, "height_m": params.ground_camera_height,
            "pitch_rad": params.ground_camera_pitch, "k1": c.k1, "k2": c.k2, "yaw_rad": params.ground_camera_yaw,
            "roll_rad": params.ground_camera_roll}


def intrinsics_from_camera_info(info: Any) -> Intrinsics:
    """The intrinsics of a sensor_msgs/CameraInfo (``k``; radial ``k1, k2`` from ``d`` for plumb_bob and
    rational_polynomial, otherwise none)."""
    return Intrinsics.from_camera_info(info.k, info.d, info.distortion_model)


def calibrator_for(intrinsics: Intrinsics, params: NodeParams) -> MountingEstimator | None:
    """The self-calibration the parameters ask for with these intrinsics, or None: ``calibration.mode`` off, a
    homography given, or (mode ``auto``) a camera height given, whose values then win.

    Args:
        intrinsics: from camera_info (:func:`intrinsics_from_camera_info`) or ``calibration.horizontal_fov``.
        params: the node's parameters (``calibration.*``, ``ground.camera_height``, ``ground.homography``).
    """
    mode, height = params.calibration_mode, params.ground_camera_height
    if mode == "off" or params.ground_homography or (mode == "auto" and height > 0):
        return None
    known = height if mode == "pitch_yaw" and height > 0 else None
    seed = Mounting(*params.calibration_seed) if params.calibration_seed else None
    estimator = MountingEstimator(intrinsics, lane_width_m=params.calibration_lane_width, height_m=known,
                                  seed=seed, estimate_roll=params.calibration_roll)
    estimator.frozen = params.calibration_freeze
    return estimator
