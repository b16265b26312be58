"""The ROS-free lane pipeline: camera image -> preprocess -> backend -> decode -> tracking -> ground.

One :class:`LanePipeline` serves the node, ``lanenet-replay`` and ``lanenet-train inference``. It
configures itself from the model's own description (docs/model_format.md), refuses a model it cannot
run with a message that says why, and fills ``LaneFrame.timings`` with the seconds spent per stage.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lanenet_ros.backends import CPU_KIND, Backend, create_backend
from lanenet_ros.calibrate import MountingEstimator
from lanenet_ros.decode.decoder import Extracted, LaneDecoder
from lanenet_ros.decode.hood import HoodMemory
from lanenet_ros.decode.settings import DecodeParams
from lanenet_ros.ground import GroundProjector, add_ground_lanes
from lanenet_ros.ground_tracking import EgoLaneFilter
from lanenet_ros.lanes import LaneFrame
from lanenet_ros.model_info import ModelError, ModelInfo
from lanenet_ros.preprocess import Geometry, Preprocessor
from lanenet_ros.tracking import LaneTracker

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default.onnx"
# the same lane network with the bonnet and marking-type heads beside it (docs/default_model.md)
DEFAULT_HEADS_MODEL = DEFAULT_MODEL.with_name("default_heads.onnx")
STAGES = ("preprocess", "infer", "decode", "track", "ground")  # in the order they run
PACKAGED_NAMES = ("default", "default_heads")  # a model given by name: the packaged file of that name
HEADS_EVERY = 3  # on the CPU the packaged model's heads run every third frame (docs/training.md, "The heads every
# third frame on the CPU")


def packaged_model(name: str | Path) -> Path | None:
    """The packaged model a ``model`` value names (one of ``PACKAGED_NAMES``), else None (a path)."""
    return dict(zip(PACKAGED_NAMES, (DEFAULT_MODEL, DEFAULT_HEADS_MODEL), strict=True)).get(str(name))


def default_model_path(backend: str = CPU_KIND) -> Path:
    """The model shipped inside the package for a backend (used when no model is given): on a GPU the one with
    the heads (bonnet, marking type), on the CPU the lane network alone, which the heads would take below 25
    frames a second on two cores; their lanes are the same network's."""
    return DEFAULT_MODEL if backend == CPU_KIND or not DEFAULT_HEADS_MODEL.is_file() else DEFAULT_HEADS_MODEL


@dataclass
class Inferred:
    """A frame between :meth:`LanePipeline.infer` and :meth:`LanePipeline.finish`: what the decoder took from
    the network's outputs, and the seconds the first half spent per stage."""

    extracted: Extracted
    timings: dict[str, float]
    learned: bool = False  # the outputs came from the heads' model (``heads_every``)


class CameraMount(Protocol):
    """A calibrated camera on the car, as ``lanenet_train.synth.CameraParams`` describes one (``k1``, ``k2``:
    optional radial distortion)."""

    fx: float
    fy: float
    cx: float
    cy: float
    height_m: float
    pitch_rad: float


Camera = GroundProjector | CameraMount | Mapping[str, float] | None
"""A ground projection: a projector, a camera mount, or its fields by name (``fx, fy, cx, cy, height_m,
pitch_rad`` and optionally ``k1, k2``: the node's camera_info); None for image-space lanes only."""


class LanePipeline:
    """Lane detection on camera images.

    Args:
        model_path: ``.onnx`` model or TensorRT engine, or a packaged model by name (``default``,
            ``default_heads``); None for the embedded default model (:func:`default_model_path`: with its heads
            on a GPU backend, without them on the CPU). With a backend object, only named in messages.
        backend: ``auto``, ``tensorrt``, ``onnxruntime``, ``onnxruntime-trt``, ``onnxruntime-cuda`` or
            ``onnxruntime-cpu`` (see :func:`lanenet_ros.backends.create_backend`), or a :class:`Backend`
            already open (``lanenet_train.predict``'s torch backend for a checkpoint).
        decode_params: decoder settings ``name -> value`` (:mod:`lanenet_ros.decode.settings`) on top of those
            the model was evaluated with (its description's ``decode``, see docs/model_format.md); each one
            given wins, whatever its value.
        roi_top: fraction of image rows cut from the top, overriding the model's ``roi_top``.
        camera: the ground projection (:data:`Camera`).
        calibrator: a :class:`~lanenet_ros.calibrate.MountingEstimator` that estimates the camera's mounting
            from the lanes and projects them to the ground once it has converged (used when ``camera`` is
            None; see :meth:`set_calibrator`).
        heads_every: where the packaged model runs on the CPU without its heads (no model given, or ``default``),
            run the one with them (``default_heads``) every this many frames instead, for its bonnet and its
            marking types, which the tracker then weighs this many times a frame read from the paint (0: never).
            Ignored for any other model and backend.
        tracking: keep track ids and smooth lanes across frames; a mapping turns it on with those
            :class:`~lanenet_ros.tracking.LaneTracker` settings (``alpha``, ``max_misses``, ``coast``),
            ``ground`` (default True: the ego lines' ground fields are also tracked in the ground plane,
            :class:`~lanenet_ros.ground_tracking.EgoLaneFilter`) and ``hood`` (default True: the bonnet found
            in earlier frames stands in where a frame's is not found, :class:`~lanenet_ros.decode.hood.HoodMemory`).
        **backend_options: passed to the backend (``precision``, ``intra_op_threads``, ``cache_dir``, ...).

    Raises:
        ModelError: the model is missing, invalid, or unsuitable for this pipeline.
        BackendError: the requested backend cannot run here.
        ValueError: a parameter is out of range (the message names it).
    """

    def __init__(self, model_path: str | Path | None = None, backend: str | Backend = "auto",
                 decode_params: Mapping[str, Any] | None = None, roi_top: float | None = None,
                 camera: Camera = None, tracking: bool | Mapping[str, Any] = True,
                 calibrator: MountingEstimator | None = None, heads_every: int = HEADS_EVERY,
                 **backend_options: Any) -> None:
        if heads_every < 0:
            raise ValueError(f"heads_every must be >= 0, got {heads_every}")
        if isinstance(backend, str):
            model_path = packaged_model(model_path) or model_path
            path, cpu_model = Path(model_path or default_model_path(backend)), None
            if not model_path:  # the packaged one; without its heads where it runs on the CPU
                cpu_model = default_model_path(CPU_KIND)
                if not cpu_model.is_file():
                    raise ModelError(f"{cpu_model}: no model was given and the embedded default model is missing; "
                                     "pass a model exported with `lanenet-train export` (parameter `model`)")
            backend = create_backend(path, backend, cpu_model, **backend_options)
            if backend.name == CPU_KIND and cpu_model is not None:
                path = cpu_model
        else:
            path = Path(model_path or backend.name)
        self.model_path = path
        self.backend = backend
        # the packaged model's heads every few frames beside the CPU model without them
        self.heads_backend: Backend | None = None
        if heads_every and backend.name == CPU_KIND and path.resolve() == DEFAULT_MODEL \
                and DEFAULT_HEADS_MODEL.is_file():
            self.heads_backend = create_backend(DEFAULT_HEADS_MODEL, CPU_KIND, **backend_options)
        self.heads_every = heads_every if self.heads_backend is not None else 0
        self._inferred = 0  # frames begun, for heads_every
        self.info: ModelInfo = self.backend.info
        check_suitable(self.info, path)
        self.preprocessor = Preprocessor.from_info(self.info, roi_top=roi_top)
        self.decoder = LaneDecoder(self.info, DecodeParams.from_pairs(self.info.decode).override(decode_params))
        settings = dict(tracking) if isinstance(tracking, Mapping) else ({} if tracking else None)  # None: off
        ground = settings is not None and settings.pop("ground", True)
        self.hood_memory = HoodMemory() if settings is not None and settings.pop("hood", True) else None
        self.tracker = None if settings is None else LaneTracker.for_decoder(self.decoder.params, **settings)
        # the ego lines tracked in the ground plane too (a Kalman filter over c0..c3), with tracking on
        self.ego_filter = EgoLaneFilter() if ground else None
        self._ground_source = ""  # what the ground fields came from last frame: given, estimated or ""
        self.projector: GroundProjector | None = None
        self.calibrator = calibrator
        self.set_ground(camera)

    @property
    def backend_name(self) -> str:
        """The backend that runs the model (``tensorrt``, ``onnxruntime-cpu``, ...)."""
        return self.backend.name

    def describe(self) -> str:
        """What runs, in words: ``lanenet 512x256 on onnxruntime-cpu`` and the heads' model where it runs beside."""
        info = self.info
        heads = f", with {DEFAULT_HEADS_MODEL.stem} every {self.heads_every} frames" if self.heads_every else ""
        return f"{info.architecture} {info.input_width}x{info.input_height} on {self.backend_name}{heads}"

    def set_ground(self, camera: Camera) -> bool:
        """Set or clear the ground projection (e.g. when ``camera_info`` arrives).

        Args:
            camera: a ``GroundProjector``, camera parameters by name (``fx, fy, cx, cy, height_m, pitch_rad``),
                or None.

        Returns:
            True when lanes will now carry ground coordinates.
        """
        self.projector = _as_projector(camera)
        if self.ego_filter is not None:
            self.ego_filter.reset()  # its lines are in the old projection's metres
        return self.projector is not None

    def set_calibrator(self, calibrator: Any) -> None:
        """Set or clear self-calibration (a :class:`~lanenet_ros.calibrate.MountingEstimator`, or None).

        Every frame then goes into the estimate; while no ground projection is set (:meth:`set_ground`: given
        values win), lanes get ground coordinates from the estimated mounting once it has converged (or was
        seeded), and ``LaneFrame.calibration`` says ``estimated``.
        """
        self.calibrator = calibrator

    def process(self, image_bgr: np.ndarray, stamp: float | int | None = None) -> LaneFrame:
        """Detect lanes in one camera image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR (grey and BGRA are accepted too).
            stamp: the image's time (seconds, or integer nanoseconds); used by tracking when given.

        Returns:
            The LaneFrame, with ``timings`` in seconds for each stage and ``total``.

        Raises:
            ValueError: the image is not a usable camera image.
        """
        return self.finish(self.infer(image_bgr), image_bgr, stamp)

    def infer(self, image_bgr: np.ndarray) -> Inferred:
        """The first half of :meth:`process`: preprocess, inference and what the decoder reads from the outputs
        (:meth:`LaneDecoder.extract`), which holds no reference to the backend's buffers. The node runs it for
        the next frame while :meth:`finish` works on this one.

        Raises:
            ValueError: the image is not a usable camera image.
        """
        clock = [time.perf_counter()]
        batch, geometry = self.preprocessor(image_bgr)
        clock.append(time.perf_counter())
        learned = self.heads_every > 0 and self._inferred % self.heads_every == 0
        self._inferred += 1
        backend = self.heads_backend if learned else self.backend
        outputs = run_model(backend.infer, batch, backend.info, self.decoder.params.flip_average)
        clock.append(time.perf_counter())
        extracted = self.decoder.extract(outputs, geometry)
        clock.append(time.perf_counter())
        return Inferred(extracted, {"preprocess": clock[1] - clock[0], "infer": clock[2] - clock[1],
                                    "extract": clock[3] - clock[2]}, learned)

    def finish(self, inferred: Inferred, image_bgr: np.ndarray, stamp: float | int | None = None) -> LaneFrame:
        """The second half of :meth:`process`: lanes, tracking, ground, for the frame :meth:`infer` began (frames
        in the order they were taken: tracking and self-calibration follow them in time). Self-calibration
        measures the frame's own detections; the ground fits are made of the lanes as tracked (smoothed over
        frames), the ones published (bench/calibration.py scores them so).

        Returns:
            The LaneFrame, with ``timings`` in seconds for each stage of both halves and ``total``.
        """
        clock = [time.perf_counter()]
        frame = detected = self.decoder.finish(inferred.extracted, image_bgr, self.hood_memory)
        clock.append(time.perf_counter())
        if self.tracker is not None:
            frame = self.tracker.update(detected, stamp, type_votes=self.heads_every if inferred.learned else 1)
        clock.append(time.perf_counter())
        projector, calibration = self.projector, "given" if self.projector is not None else ""
        if self.calibrator is not None:
            self.calibrator.update(detected, None if stamp is None else _seconds(stamp))
            if projector is None and (projector := self.calibrator.projector()) is not None:
                calibration = "estimated"
        frame.calibration = calibration
        if self.ego_filter is not None and calibration != self._ground_source:
            self.ego_filter.reset()
        self._ground_source = calibration
        if projector is not None:
            width = None if self.calibrator is None else self.calibrator.lane_width_measured_m
            add_ground_lanes(frame, projector, ego_filter=self.ego_filter,
                             stamp=None if stamp is None else _seconds(stamp), lane_width_m=width)
        clock.append(time.perf_counter())
        first = inferred.timings
        frame.timings = {"preprocess": first["preprocess"], "infer": first["infer"],
                         "decode": first["extract"] + clock[1] - clock[0], "track": clock[2] - clock[1],
                         "ground": clock[3] - clock[2]}
        frame.timings["total"] = sum(frame.timings.values())
        return frame

    def outputs(self, images_bgr: Sequence[np.ndarray]) -> tuple[dict[str, np.ndarray], list[Geometry]]:
        """The network's outputs for several camera images (any sizes), run in the largest batches the
        backend takes (``max_batch``; without one, all at once with a dynamic batch dimension, else one by one).

        Returns:
            The outputs by name, stacked along the batch dimension (copies: they outlive the backend's
            buffers), and each image's geometry.
        """
        batch = np.empty((len(images_bgr), self.info.input_channels, self.info.input_height,
                          self.info.input_width), np.float32)
        geometries = []
        for i, image in enumerate(images_bgr):
            batch[i:i + 1], geometry = self.preprocessor(image)
            geometries.append(geometry)
        step = self.backend.max_batch or (len(batch) if self.info.dynamic_batch else 1)
        flip = self.decoder.params.flip_average
        parts = [{k: np.array(v, copy=True) for k, v in run_model(self.backend.infer, batch[i:i + step], self.info,
                                                                    flip).items()}
                 for i in range(0, len(batch), step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, geometries

    def process_batch(self, images_bgr: Sequence[np.ndarray]) -> list[LaneFrame]:
        """Detect lanes in several camera images at once (evaluation, ``lanenet-train inference``); ground
        lanes when a projection is set, tracked in the given order when tracking is on; no timings.

        Returns:
            One frame per image (class mask at camera resolution, lanes left to right).
        """
        if not images_bgr:
            return []
        out, geometries = self.outputs(images_bgr)
        frames = []
        for i, (geometry, image) in enumerate(zip(geometries, images_bgr, strict=True)):
            frame = self.decoder.decode({k: v[i] for k, v in out.items()}, geometry, image, self.hood_memory)
            if self.tracker is not None:
                frame = self.tracker.update(frame, None)
            if self.projector is not None:
                add_ground_lanes(frame, self.projector, ego_filter=self.ego_filter)
            frames.append(frame)
        return frames


def run_model(infer: Callable[[np.ndarray], Mapping[str, np.ndarray]], batch: np.ndarray, info: ModelInfo,
              flip_average: bool = False) -> Mapping[str, np.ndarray]:
    """The network's outputs for a preprocessed batch, averaged with its mirror image's when asked.

    Args:
        infer: runs the network: (N, C, H, W) float32 -> output tensors by name.
        batch: the preprocessed input.
        info: the model's description (which output is ``binary_logits``).
        flip_average: run the network on the mirrored batch too and average the ``binary_logits`` (the
            mirror's flipped back); the other outputs are the first run's (``DecodeParams.flip_average``).
    """
    outputs = infer(batch)
    if not flip_average:
        return outputs
    name = info.output_for("binary_logits")
    if name is None:
        raise ValueError("flip_average needs a binary_logits output")
    first = {k: np.array(v, copy=True) for k, v in outputs.items()}  # a backend may reuse its output buffers
    mirrored = infer(np.ascontiguousarray(batch[..., ::-1]))[name]
    first[name] = (first[name] + mirrored[..., ::-1]) * np.float32(0.5)
    return first


def check_suitable(info: ModelInfo, path: Path) -> None:
    """Refuse a model the pipeline cannot feed or decode.

    Raises:
        ModelError: naming the model file and what does not fit.
    """
    if info.input_channels != 3:
        raise ModelError(f"{path}: the model takes {info.input_channels}-channel input, but the pipeline feeds "
                         "3-channel camera images; export a 3-channel model")
    if info.architecture == "lanenet" and info.output_for("embedding") is None:
        raise ModelError(f"{path}: a lanenet model needs an 'embedding' output to separate lanes")


def _seconds(stamp: float | int) -> float:
    """Seconds of a stamp given as float seconds or integer nanoseconds."""
    return stamp * 1e-9 if isinstance(stamp, (int, np.integer)) else float(stamp)


def _as_projector(camera: Camera) -> GroundProjector | None:
    if camera is None or isinstance(camera, GroundProjector):
        return camera
    fields = camera if isinstance(camera, Mapping) else {k: getattr(camera, k, None) for k in _MOUNT}
    missing = [k for k in _MOUNT[:6] if fields.get(k) is None]
    if missing:
        raise ValueError(f"camera: {', '.join(missing)} missing; give fx, fy, cx, cy, height_m and pitch_rad "
                         "(or a GroundProjector)")
    fx, fy, cx, cy, height_m, pitch_rad, k1, k2, yaw_rad, roll_rad = (fields.get(k) for k in _MOUNT)
    return GroundProjector.from_camera(fx, fy, cx, cy, height_m, pitch_rad, k1=k1 or 0.0, k2=k2 or 0.0,
                                       yaw_rad=yaw_rad or 0.0, roll_rad=roll_rad or 0.0)


_MOUNT = ("fx", "fy", "cx", "cy", "height_m", "pitch_rad", "k1", "k2", "yaw_rad", "roll_rad")
