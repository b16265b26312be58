"""The lanenet lifecycle node: camera images in; lanes, class mask, overlay, RViz markers and diagnostics out.

A thin rclpy adapter around :class:`lanenet_ros.pipeline.LanePipeline`. ``on_configure`` opens the model
(a missing or unsuitable one fails there, saying why), ``on_activate`` subscribes, ``on_deactivate``
unsubscribes, ``on_cleanup`` frees the model. With ``autostart`` (the default) the node configures and
activates itself, so a plain ``lanenet-node`` or launch just works.

Frames go through a one-slot mailbox to two worker threads, one after the other: the first converts the image,
preprocesses it and runs the network, the second decodes the lanes, projects and tracks them and publishes, so
that one frame is decoded while the next is inferred (both cores at work). The newest frame is processed,
older ones waiting are replaced and counted, never queued; between the two workers one frame waits at most (the
first waits for the second, it never drops a frame it has inferred). Frames the middleware lost before they
reached the node are counted apart (the subscription's message-lost event, where the middleware reports it). A
bad message (unknown encoding, wrong step, truncated or corrupt data) is skipped with a throttled warning and
the node goes on with the next one.

Ctrl-C (SIGINT) or SIGTERM: the first one stops the node, later ones are ignored (a terminal's Ctrl-C reaches
the node twice under ``ros2 launch``); the worker ends without publishing once the context is shut down, and
is joined.

Topics (relative, remap with ``-r``): ``image`` or ``image/compressed`` and ``camera_info`` in; ``lanes``,
``mask``, ``overlay``, ``markers`` out, each with the input image's header; ``/diagnostics``.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import QoSMessageLostInfo, SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from lanenet_ros.calibrate import Intrinsics
from lanenet_ros.decode import hood
from lanenet_ros.image_codec import ImageError, clip
from lanenet_ros.msg import LaneArray
from lanenet_ros.node.configure import (
    calibrator_for,
    ground_from_camera_info,
    intrinsics_from_camera_info,
    open_pipeline,
)
from lanenet_ros.node.convert import (
    MarkerBuilder,
    bgr8_msg,
    compressed_msg_to_bgr,
    diagnostics_msg,
    image_msg_to_bgr,
    mask_msg,
)
from lanenet_ros.node.params import TABLE, NodeParams, ParamError
from lanenet_ros.node.ros_params import declare_all, gate, read_all
from lanenet_ros.node.stats import Mailbox, NodeStats, Period
from lanenet_ros.node.wire import lane_array_bytes, parse_compressed, parse_image, ros_header
from lanenet_ros.overlay import draw_overlay
from lanenet_ros.pipeline import Inferred

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
LOST_WARN_SHARE = 0.1  # WARN when the middleware lost more than this share of the frames sent to the node


@dataclass
class _Begun:
    """A frame between the two workers."""

    header: Any
    image: np.ndarray
    inferred: Inferred
    received: float  # perf_counter when it arrived
    start: float  # when the first worker took it
    converted: float  # when its image was converted


class LaneNetNode(LifecycleNode):
    """The lanenet lifecycle node (see the module docstring).

    Args:
        node_name: ROS node name.
        **kwargs: passed to rclpy's node (``namespace``, ``context``, ``parameter_overrides``, ...).

    Raises:
        ParamError: a parameter given at start-up is invalid (the message says which and why).
    """

    def __init__(self, node_name: str = "lanenet", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.params = NodeParams()
        self._declared = False  # the gate's calls while declaring are the start-up values, not later changes
        self.add_on_set_parameters_callback(self._on_set_parameters)
        try:
            declare_all(self)
        except (InvalidParameterValueException, InvalidParameterTypeException, ParamError) as exc:
            name = self.get_fully_qualified_name()
            self.destroy_node()
            raise ParamError(f"{name}: {exc}") from exc
        self._declared = True
        self.params = read_all(self)
        self.stats = NodeStats()
        self.pipeline: Any = None
        self._pubs: dict[str, Any] = {}
        self._subs: list[Any] = []
        self._mailbox: Mailbox | None = None
        self._handoff: Mailbox | None = None  # inferred frames, from the first worker to the second
        self._workers: list[threading.Thread] = []
        self._diag_pub = self._diag_timer = None
        self._markers = MarkerBuilder()
        self._intrinsics: tuple[float, float, float, float] | None = None
        self._ground_lock = threading.Lock()
        self._ground_pending: Any = None  # (camera, calibrator) set by the camera_info callback, taken by the worker
        self._lost_reported = True  # False when the middleware has no message-lost event
        self._hood: tuple[float, int] | None = None  # the last frame's bonnet edge row at the centre, image height

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """The single gate for every value: at declaration and on every later set."""
        result, self.params, later = gate(params, self.params)
        if later and self._declared:
            self.get_logger().info(f"{', '.join(later)} will apply at the next configure "
                                   "(deactivate, cleanup, configure, activate)")
        return result

    # ---- lifecycle -------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the model and create the publishers; fail with the reason when the model cannot be used."""
        self.params = read_all(self)
        try:
            self.pipeline, _ = open_pipeline(self.params)
        except Exception as exc:  # ModelError, BackendError, OSError...: all mean "this model cannot run"
            self.get_logger().error(f"cannot configure: {exc}")
            return FAILURE
        self.stats, self._markers = NodeStats(), MarkerBuilder()
        self._intrinsics = None  # the next camera_info sets up the new pipeline's ground plane
        self._hood = None
        self._pubs = {name: self.create_lifecycle_publisher(kind, name, OUTPUT_QOS) for name, kind in
                      (("lanes", LaneArray), ("mask", Image), ("overlay", Image), ("markers", MarkerArray))}
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self.params.diagnostics_period, self._publish_diagnostics)
        self.get_logger().info(f"model {self._model_name()}: {self.pipeline.describe()}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the publishers, start the worker, subscribe to the camera."""
        result = super().on_activate(state)
        self._mailbox, self._handoff = Mailbox(), Mailbox()
        self._workers = [threading.Thread(target=work, args=(self._mailbox, self._handoff), daemon=True,
                                          name=f"lanenet-{name}{self.get_namespace()}")
                         for name, work in (("infer", self._infer_frames), ("finish", self._finish_frames))]
        for worker in self._workers:
            worker.start()
        p = self.params
        reliability = (ReliabilityPolicy.BEST_EFFORT if p.qos_reliability == "best_effort"
                       else ReliabilityPolicy.RELIABLE)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p.qos_depth, reliability=reliability,
                         durability=DurabilityPolicy.VOLATILE)
        kind, topic = (CompressedImage, "image/compressed") if p.input == "compressed" else (Image, "image")
        try:
            images = self.create_subscription(kind, topic, self._on_image, qos, raw=True, event_callbacks=(
                SubscriptionEventCallbacks(message_lost=self._on_message_lost)))
            self._lost_reported = True
        except UnsupportedEventTypeError:
            images = self.create_subscription(kind, topic, self._on_image, qos, raw=True)
            self._lost_reported = False
        self._subs = [images, self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos)]
        self.get_logger().info(f"listening on {self._subs[0].topic_name} "
                               f"({p.qos_reliability}, depth {p.qos_depth})")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker (the frame in progress finishes first)."""
        self._stop_input()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers and free the model."""
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything, from whichever state."""
        self.close()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free everything so the node can be configured again."""
        return self.on_shutdown(state)

    def _stop_input(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._mailbox is not None:
            self._mailbox.close()  # the first worker ends and closes the hand-off: the second ends after it
        for worker in self._workers:
            worker.join()
        self._mailbox = self._handoff = None
        self._workers = []

    def _release(self) -> None:
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self.destroy_publisher(self._diag_pub)
        self._diag_pub = self._diag_timer = None
        self.pipeline = None

    def close(self) -> None:
        """Stop the input and free everything, whatever the lifecycle state (before destroying the node)."""
        self._stop_input()
        self._release()

    def start(self) -> bool:
        """Configure and activate (what ``autostart`` does).

        Returns:
            True when the node is active; False (the reason logged) when configuring failed.
        """
        if self.trigger_configure() != SUCCESS:
            self.get_logger().fatal("lanenet could not configure; fix the parameter named above and restart, "
                                    "or configure it again through its lifecycle services")
            return False
        return self.trigger_activate() == SUCCESS

    # ---- input -----------------------------------------------------------------------------------------
    def _on_image(self, raw: bytes) -> None:
        self.stats.count("received")
        mailbox = self._mailbox
        if mailbox is not None and mailbox.put((raw, time.perf_counter())):
            self.stats.count("replaced")

    def _on_message_lost(self, status: QoSMessageLostInfo) -> None:
        self.stats.count("lost", status.total_count_change)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        fx, fy, cx, cy = msg.k[0], msg.k[4], msg.k[2], msg.k[5]
        if fx <= 0 or fy <= 0:
            self.get_logger().warning(f"camera_info without intrinsics (K = {list(msg.k)}) ignored",
                                      throttle_duration_sec=self.params.warn_period)
            return
        if self._intrinsics != (fx, fy, cx, cy):
            self._intrinsics = (fx, fy, cx, cy)
            pending = (ground_from_camera_info(msg, self.params),
                       calibrator_for(intrinsics_from_camera_info(msg), self.params))
            with self._ground_lock:
                self._ground_pending = pending

    # ---- work ------------------------------------------------------------------------------------------
    def _infer_frames(self, mailbox: Mailbox, handoff: Mailbox) -> None:
        """The first worker: the newest frame converted, preprocessed and inferred, handed to the second."""
        try:
            while (item := mailbox.take()) is not None:
                if (begun := self._guarded(self._begin, *item)) is not None:
                    handoff.put(begun, wait=True)
        finally:
            handoff.close()

    def _finish_frames(self, mailbox: Mailbox, handoff: Mailbox) -> None:
        """The second worker: each inferred frame decoded, projected, tracked and published, in order."""
        while (begun := handoff.take()) is not None:
            self._guarded(self._complete, begun)

    def _guarded(self, step: Any, *args: Any) -> Any:
        """``step(*args)``; a frame the pipeline cannot handle is counted and logged, and must not stop the node."""
        try:
            return step(*args)
        except Exception as exc:
            if self.context.ok():  # else shutting down (Ctrl-C): the publishers are gone, nothing is wrong
                self.stats.count("failed")
                self.get_logger().error(f"frame skipped, processing failed: {clip(repr(exc))}",
                                        throttle_duration_sec=self.params.warn_period)
            return None

    def _process(self, msg: bytes | Image | CompressedImage, received: float) -> None:
        """One frame through both workers' steps in this thread (benchmarks and tests)."""
        if (begun := self._begin(msg, received)) is not None:
            self._complete(begun)

    def _begin(self, msg: bytes | Image | CompressedImage, received: float) -> _Begun | None:
        """The first worker's step, on the serialized message as the subscription gives it (or a message); None
        for a bad image (counted and logged)."""
        start = time.perf_counter()
        try:
            compressed = self.params.input == "compressed"
            if isinstance(msg, (bytes, bytearray, memoryview)):  # the pixels stay in the received bytes
                msg = (parse_compressed if compressed else parse_image)(msg)
            convert = compressed_msg_to_bgr if compressed else image_msg_to_bgr
            image = convert(msg, self.params.max_pixels)
        except ImageError as exc:
            self.stats.count("bad")
            self.get_logger().warning(f"skipped a bad image ({self.stats.totals['bad']} so far): {clip(str(exc))}",
                                      throttle_duration_sec=self.params.warn_period)
            return None
        converted = time.perf_counter()
        return _Begun(ros_header(msg.header), image, self.pipeline.infer(image), received, start, converted)

    def _complete(self, begun: _Begun) -> None:
        """The second worker's step: the frame finished and published, its timings counted."""
        self._take_ground(begun.image)
        stamp = begun.header.stamp
        frame = self.pipeline.finish(begun.inferred, begun.image, stamp=stamp.sec + stamp.nanosec * 1e-9)
        finished = time.perf_counter()
        self._hood = frame.hood_row, frame.height
        self._publish(frame, begun.image, begun.header)
        done = time.perf_counter()
        self.stats.frame_done({**frame.timings, "wait": begun.start - begun.received,
                               "convert_in": begun.converted - begun.start, "publish": done - finished,
                               "total": done - begun.received})

    def _take_ground(self, image: np.ndarray) -> None:
        """Apply what the latest camera_info asked for; without one, self-calibrate from the field-of-view
        fallback (``calibration.horizontal_fov``) when set."""
        with self._ground_lock:
            pending, self._ground_pending = self._ground_pending, None
        pipeline, p = self.pipeline, self.params
        if pending is not None:
            camera, calibrator = pending
            if camera is not None:
                pipeline.set_ground(camera)
            pipeline.set_calibrator(calibrator)
        elif self._intrinsics is None and pipeline.calibrator is None and p.calibration_horizontal_fov > 0:
            h, w = image.shape[:2]
            pipeline.set_calibrator(calibrator_for(Intrinsics.from_fov(w, h, p.calibration_horizontal_fov), p))
        if pipeline.calibrator is not None:
            pipeline.calibrator.frozen = p.calibration_freeze

    def _publish(self, frame: Any, image: np.ndarray, header: Any) -> None:
        p, pubs = self.params, self._pubs
        ground = p.ground_frame_id if frame.calibration else ""
        pubs["lanes"].publish(lane_array_bytes(frame, header, ground))
        if p.publish_mask and pubs["mask"].get_subscription_count():
            pubs["mask"].publish(mask_msg(frame.class_mask, header))
        if p.publish_overlay and pubs["overlay"].get_subscription_count():
            picture = draw_overlay(image, frame, self.pipeline.info.class_colors)
            pubs["overlay"].publish(bgr8_msg(picture, header))
            self.stats.count("overlays")
        if p.publish_markers and pubs["markers"].get_subscription_count():
            pubs["markers"].publish(self._markers.build(frame, header, ground, self._intrinsics,
                                                        p.markers_lifetime, p.markers_image_depth))

    # ---- diagnostics -----------------------------------------------------------------------------------
    def _model_name(self) -> str:
        """The ``model`` parameter, or which packaged file runs for an empty one (it follows the backend)."""
        if self.params.model:
            return self.params.model
        return f"(packaged default: {self.pipeline.model_path.name if self.pipeline else '-'})"

    def _publish_diagnostics(self) -> None:
        period = self.stats.roll()
        level, message = self._health(period)
        totals = self.stats.totals
        every = self.pipeline.heads_every if self.pipeline else 0
        values = {"backend": self.pipeline.backend_name if self.pipeline else "", "model": self._model_name(),
                  **({"default_heads every (frames)": every} if every else {}),
                  "active": self._mailbox is not None,
                  "input topic": self._subs[0].topic_name if self._subs else "",
                  "input rate (Hz)": f"{period.input_rate:.2f}",
                  "output rate (Hz)": f"{period.output_rate:.2f}",
                  "received frames": totals["received"],
                  "frames lost before the node": totals["lost"] if self._lost_reported else
                  "unknown (the middleware does not report lost messages)",
                  "frames replaced in the mailbox": totals["replaced"], "bad frames": totals["bad"],
                  "failed frames": totals["failed"], "processed frames": totals["processed"],
                  **{f"latency {stage} (ms)": f"{ms:.2f}" for stage, ms in sorted(period.stage_ms.items())},
                  **({"bonnet": hood.describe(*self._hood, self.pipeline.decoder.params.hood)}
                     if self._hood and self.pipeline else {}),
                  **self._calibration_values()}
        self._diag_pub.publish(diagnostics_msg(
            self.get_clock().now().to_msg(), f"{self.get_fully_qualified_name()}: lane detection",
            values["backend"], level, message, values))

    def _calibration_values(self) -> dict[str, str]:
        """Self-calibration's state for /diagnostics (empty when the node does not self-calibrate)."""
        calibrator = self.pipeline.calibrator if self.pipeline else None
        if calibrator is None:
            given = bool(self.pipeline and self.pipeline.projector is not None)
            return {"calibration": "given" if given else "none"}
        st = calibrator.status
        values = {"calibration": st.state, "calibration confidence": f"{st.confidence:.2f}",
                  "calibration frames used": f"{st.frames_used}/{st.frames_seen}"}
        if st.mounting is not None:
            m = st.mounting
            values.update({"camera height (m)": f"{m.height_m:.3f}",
                           "camera pitch (deg)": f"{math.degrees(m.pitch_rad):.3f}",
                           "camera yaw (deg)": f"{math.degrees(m.yaw_rad):.3f}"})
            if calibrator.estimate_roll or m.roll_rad:
                values["camera roll (deg)"] = f"{math.degrees(m.roll_rad):.3f}"
        if st.lane_width_m is not None:
            values["lane width (m)"] = f"{st.lane_width_m:.2f}"
        if st.waiting_for:
            values["calibration waiting for"] = st.waiting_for
        return values

    def _health(self, period: Period) -> tuple[bytes, str]:
        if self._mailbox is None:
            return DiagnosticStatus.OK, "inactive"
        if period.lost_share > LOST_WARN_SHARE:
            return DiagnosticStatus.WARN, (f"{period.lost} of {period.lost + period.received} frames lost before "
                                           "the node (see docs/node.md, Big images)")
        if period.received == 0:
            return DiagnosticStatus.WARN, f"no images for {period.seconds:.1f} s"
        if period.bad or period.failed:
            return DiagnosticStatus.WARN, f"{period.bad} bad and {period.failed} failed frames skipped"
        if period.replaced > period.processed:
            return DiagnosticStatus.WARN, (f"node too slow, frames replaced in the mailbox: input "
                                           f"{period.input_rate:.1f} Hz, output {period.output_rate:.1f} Hz")
        return DiagnosticStatus.OK, f"running at {period.output_rate:.1f} Hz"


def _parser() -> argparse.ArgumentParser:
    rows = "\n".join(f"  {r.name} ({r.kind}, default {r.default!r}): {r.description}" for r in TABLE)
    return argparse.ArgumentParser(
        prog="lanenet-node", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Lane detection node: image (or image/compressed) and camera_info in; lanes, mask, "
                    "overlay, markers and /diagnostics out.",
        epilog="ROS arguments follow --ros-args, e.g.\n  lanenet-node --ros-args -p model:=model.onnx "
               "-r image:=/camera/image_raw -r __ns:=/front\n\nparameters:\n" + rows)


def _stop_on_first_signal() -> None:
    """SIGINT and SIGTERM: the first raises KeyboardInterrupt (stop), later ones are ignored, so that the
    clean-up runs to its end. Installed before ``rclpy.init``, whose own handler (it shuts the context down
    and wakes the executor) then calls this one."""
    received: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if not received:
            received.append(signum)
            raise KeyboardInterrupt

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, handler)


def main(argv: list[str] | None = None) -> int:
    """Run the node (the ``lanenet-node`` console script).

    Args:
        argv: command line including ROS arguments (default ``sys.argv``).

    Returns:
        0 on a clean shutdown, 1 when autostart could not configure the node, 2 for invalid parameters.
    """
    argv = list(sys.argv if argv is None else argv)
    _parser().parse_args(rclpy.utilities.remove_ros_args(argv)[1:])
    _stop_on_first_signal()
    rclpy.init(args=argv)
    try:
        node = LaneNetNode()
    except ParamError as exc:
        print(f"lanenet-node: invalid parameter: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    code = 0
    try:
        if node.params.autostart and not node.start():
            code = 1
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
        for number in (signal.SIGINT, signal.SIGTERM):  # done: a late signal (ros2 launch forwards the
            signal.signal(number, signal.SIG_IGN)        # terminal's Ctrl-C) must not kill Python's exit
    return code


if __name__ == "__main__":
    sys.exit(main())
