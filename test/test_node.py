"""The lanenet node over real rclpy topics: images in; lanes, mask, overlay, markers, diagnostics out;
lifecycle transitions; parameters; several cameras; the console script."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lanenet_ros.msg import Lane, LaneArray  # noqa: E402
from lifecycle_msgs.msg import State  # noqa: E402
from node_fixtures import (  # noqa: E402
    DOMAIN_ID,
    camera_header,
    export_trained_format_model,
    frame_seq,
    stripes_image,
)
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from lanenet_ros.node.convert import bgr8_msg  # noqa: E402
from lanenet_ros.node.params import ParamError  # noqa: E402

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[1]


def listening(node) -> list[str]:
    """Topics the node subscribes to (its own list: the ROS graph would lag behind)."""
    return sorted(sub.topic_name for sub in node.subscriptions)


def frames(image: np.ndarray, frame_id: str = "front_camera_optical"):
    return lambda i: bgr8_msg(image, camera_header(i, frame_id))


def test_an_image_becomes_lanes_mask_and_markers_with_its_header(ros, model):
    ros.lanenet(model=model, tracking=False)
    lanes, masks = ros.collect(LaneArray, "lanes"), ros.collect(Image, "mask")
    markers = ros.collect(MarkerArray, "markers")
    pub = ros.publisher(Image, "image")
    ros.feed(pub, frames(stripes_image(320, 240)), lambda: lanes and masks and markers)
    msg = lanes[0]
    assert msg.header == camera_header(frame_seq(msg.header))  # a header we sent, unchanged
    assert (msg.image_width, msg.image_height) == (320, 240)
    assert [lane.position for lane in msg.lanes] == [Lane.POSITION_EGO_LEFT, Lane.POSITION_EGO_RIGHT]
    assert (msg.ego_left_index, msg.ego_right_index) == (0, 1)
    assert [round(lane.image_coeffs[0]) for lane in msg.lanes] == pytest.approx([96, 224], abs=2)
    mask = masks[0]
    assert (mask.encoding, mask.width, mask.height, mask.step) == ("mono8", 320, 240, 320)
    assert mask.header == camera_header(frame_seq(mask.header))
    ids = np.frombuffer(mask.data, np.uint8).reshape(240, 320)
    assert ids[200, 96] == 1 and ids[200, 160] == 0 and ids[20, 96] == 0
    strips = [m for m in markers[0].markers if m.type == Marker.LINE_STRIP]
    assert len(strips) == 2 and all(m.header.frame_id == "front_camera_optical" for m in strips)


def test_overlay_is_drawn_only_while_someone_subscribes(ros, model):
    node = ros.lanenet(model=model, tracking=False)
    lanes = ros.collect(LaneArray, "lanes")
    image = stripes_image(320, 240)
    ros.feed(ros.publisher(Image, "image"), frames(image), lambda: len(lanes) >= 3)
    assert node.stats.totals["overlays"] == 0
    overlays = ros.collect(Image, "overlay")
    ros.feed(ros.publisher(Image, "image"), frames(image), lambda: overlays)
    picture = np.frombuffer(overlays[0].data, np.uint8).reshape(240, 320, 3)
    assert overlays[0].encoding == "bgr8" and node.stats.totals["overlays"] >= 1
    assert np.any(picture[200, 90:102] != image[200, 90:102])  # lane drawn
    assert np.all(picture[5, 150:170] == image[5, 150:170])  # sky untouched


def test_compressed_input_by_parameter(ros, model):
    ros.lanenet(model=model, input="compressed", tracking=False)
    lanes = ros.collect(LaneArray, "lanes")
    jpeg = cv2.imencode(".jpg", stripes_image(640, 360))[1].tobytes()
    pub = ros.publisher(CompressedImage, "image/compressed")
    ros.feed(pub, lambda i: CompressedImage(header=camera_header(i), format="jpeg", data=jpeg), lambda: lanes)
    assert (lanes[0].image_width, lanes[0].image_height) == (640, 360) and len(lanes[0].lanes) == 2


def test_lifecycle_subscribes_only_while_active_and_frees_on_cleanup(ros, model):
    node = ros.lanenet(model="/nonexistent/model.onnx", start=False, tracking=False)
    assert listening(node) == []
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE and node.pipeline is None
    node.set_parameters([Parameter("model", value=model)])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and node.pipeline is not None
    assert listening(node) == []
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_ACTIVE
    lanes = ros.collect(LaneArray, "lanes")
    pub = ros.publisher(Image, "image")
    ros.feed(pub, frames(stripes_image()), lambda: lanes)
    assert listening(node) == ["/camera_info", "/image"]
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert listening(node) == []
    count = len(lanes)
    for i in range(10):
        pub.publish(frames(stripes_image())(100 + i))
    time.sleep(0.5)
    assert len(lanes) == count  # inactive: nothing processed
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS and node.pipeline is None
    assert node.start()  # and back up again
    ros.feed(pub, frames(stripes_image()), lambda: len(lanes) > count)


def test_missing_model_fails_configure_with_the_reason(ros, tmp_path):
    node = ros.lanenet(model=str(tmp_path / "absent.onnx"), start=False)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07not really onnx")
    node.set_parameters([Parameter("model", value=str(broken))])
    assert not node.start() and node.pipeline is None


def test_parameters_are_validated_at_start_and_on_set(ros, model):
    with pytest.raises(ParamError, match=r"qos\.depth"):
        ros.lanenet(model=model, start=False, **{"qos.depth": 0})
    with pytest.raises(ParamError, match="choose one of image, compressed"):
        ros.lanenet(model=model, start=False, input="video")
    typo = re.escape("unknown parameter 'qos.dept' (did you mean 'qos.depth'?)")
    with pytest.raises(ParamError, match=typo):
        ros.lanenet(model=model, start=False, **{"qos.dept": 1})
    node = ros.lanenet(model=model, tracking=False)
    result = node.set_parameters([Parameter("backend", value="cuda")])[0]
    assert not result.successful and "choose one of auto" in result.reason
    result = node.set_parameters([Parameter("ground.homography", value=[1.0, 2.0])])[0]
    assert not result.successful and "9 finite numbers" in result.reason
    assert node.get_parameter("backend").value == "auto"
    assert node.set_parameters([Parameter("publish.markers", value=False)])[0].successful
    assert node.params.publish_markers is False  # live: applies at once
    assert node.set_parameters([Parameter("decode.max_lanes", value=4)])[0].successful
    assert "max_lanes" not in node.params.decode  # applies at the next configure


def test_decode_parameters_left_unset_take_the_models_settings_and_set_ones_override(ros, tmp_path):
    from model_fixtures import export_tiny

    path = tmp_path / "tuned.onnx"
    export_tiny(path, info_overrides={"decode": ["max_lanes=2", "lane_threshold=0.8"]})
    carried = ros.lanenet(model=str(path), tracking=False)
    assert carried.get_parameter("decode.max_lanes").value is None  # declared, not set
    assert (carried.pipeline.decoder.params.max_lanes, carried.pipeline.decoder.params.lane_threshold) == (2, 0.8)
    # set, even to the generic default (0.5), a setting overrides the model's
    given = ros.lanenet(namespace="cam2", model=str(path), tracking=False, **{"decode.lane_threshold": 0.5})
    assert given.get_parameter("decode.lane_threshold").value == 0.5
    assert (given.pipeline.decoder.params.max_lanes, given.pipeline.decoder.params.lane_threshold) == (2, 0.5)
    with pytest.raises(ParamError, match="hood"):
        ros.lanenet(namespace="cam3", model=str(path), start=False, **{"decode.hood": 0.7})


@pytest.mark.parametrize("name, value", [
    ("decode.point_step_px", 0.000001),  # a lane point per millionth of a row: every frame ran out of memory
    ("decode.cluster_bandwidth", 1e-9),  # no embedding within reach of another: no lane was ever found
    ("decode.max_lanes", 1000),
])
def test_decode_settings_that_stall_or_blind_the_node_are_refused_at_start_and_on_set(ros, model, name, value):
    allowed = re.escape(f"{name[len('decode.'):]}={value!r} is out of range; allowed")
    with pytest.raises(ParamError, match=allowed):
        ros.lanenet(model=model, start=False, **{name: value})
    node = ros.lanenet(namespace="cam2", model=model, tracking=False)
    result = node.set_parameters([Parameter(name, value=value)])[0]
    assert not result.successful and re.search(allowed, result.reason), result.reason
    assert node.get_parameter(name).value is None  # still unset: the model's setting runs


def test_markers_switch_off_live(ros, model):
    node = ros.lanenet(model=model, tracking=False)
    lanes, markers = ros.collect(LaneArray, "lanes"), ros.collect(MarkerArray, "markers")
    pub = ros.publisher(Image, "image")
    ros.feed(pub, frames(stripes_image()), lambda: markers)
    node.set_parameters([Parameter("publish.markers", value=False)])
    time.sleep(0.3)
    count, seen = len(markers), len(lanes)
    ros.feed(pub, frames(stripes_image()), lambda: len(lanes) >= seen + 3)
    assert len(markers) == count


def test_diagnostics_report_backend_rates_and_latency(ros, model):
    ros.lanenet(model=model, tracking=False, diagnostics_period=0.3)
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")

    def busy_report():
        return [s for d in diagnostics for s in d.status if dict((kv.key, kv.value) for kv in s.values)
                .get("processed frames", "0") != "0"]
    ros.feed(ros.publisher(Image, "image"), frames(stripes_image()), busy_report)
    status = busy_report()[-1]
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == "/lanenet: lane detection" and status.hardware_id == "onnxruntime-cpu"
    assert values["backend"] == "onnxruntime-cpu" and float(values["input rate (Hz)"]) > 0
    assert float(values["latency infer (ms)"]) > 0 and values["frames replaced in the mailbox"].isdigit()
    assert values["frames lost before the node"].isdigit()  # Fast DDS reports the message-lost event
    assert values["bonnet"] == "none found"  # where the lanes are cut: the stripes have no bonnet


def test_two_cameras_in_two_namespaces_stay_apart(ros, model):
    ros.lanenet(namespace="front", model=model, tracking=False)
    ros.lanenet(namespace="rear", model=model, tracking=False)
    front, rear = ros.collect(LaneArray, "/front/lanes"), ros.collect(LaneArray, "/rear/lanes")
    pub_front, pub_rear = ros.publisher(Image, "/front/image"), ros.publisher(Image, "/rear/image")
    front_frames = frames(stripes_image(320, 240), "front_optical")
    rear_frames = frames(stripes_image(400, 200, columns=(0.5,)), "rear_optical")

    def both(i):
        pub_rear.publish(rear_frames(i))
        return front_frames(i)
    ros.feed(pub_front, both, lambda: front and rear)
    assert {m.header.frame_id for m in front} == {"front_optical"} and front[0].image_width == 320
    assert {m.header.frame_id for m in rear} == {"rear_optical"} and rear[0].image_width == 400
    assert len(rear[0].lanes) == 1 and len(front[0].lanes) == 2


def test_console_script_runs_with_the_params_file_and_exits_with_meaning(ros, model):
    script = [sys.executable, "-m", "lanenet_ros.node.lanenet_node"]
    env = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN_ID)}
    assert subprocess.run([*script, "--help"], capture_output=True, env=env).returncode == 0
    bad = subprocess.run([*script, "--ros-args", "-p", "input:=video"], capture_output=True, text=True,
                         env=env)
    assert bad.returncode == 2 and "choose one of image, compressed" in bad.stderr
    missing = subprocess.run([*script, "--ros-args", "-p", "model:=/nope/model.onnx"], capture_output=True,
                             text=True, env=env, timeout=60)
    assert missing.returncode == 1 and "model file does not exist" in missing.stderr
    lanes = ros.collect(LaneArray, "/cli/lanes")
    ros_args = ["--params-file", str(ROOT / "config" / "lanenet.yaml"), "-p", f"model:={model}",
                "-r", "__ns:=/cli", "-r", "image:=/cli/camera/image_raw"]
    proc = subprocess.Popen([*script, "--ros-args", *ros_args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        ros.feed(ros.publisher(Image, "/cli/camera/image_raw"), frames(stripes_image()), lambda: lanes,
                 timeout=30.0)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        print(err.decode()[-3000:])
    assert len(lanes[0].lanes) == 2
    assert proc.returncode == 0, err.decode()[-2000:]  # SIGTERM: a clean stop


def test_tracked_lanes_keep_their_ids_in_lanes_and_markers(ros, model):
    ros.lanenet(model=model)  # tracking on: the default
    lanes, markers = ros.collect(LaneArray, "lanes"), ros.collect(MarkerArray, "markers")
    tracked = lambda: [m for m in lanes if all(lane.track_id for lane in m.lanes) and len(m.lanes) == 2]  # noqa: E731
    ros.feed(ros.publisher(Image, "image"), frames(stripes_image()), lambda: len(tracked()) >= 3)
    ids = {tuple(lane.track_id for lane in m.lanes) for m in tracked()}
    assert len(ids) == 1  # the same two ids frame after frame
    strip_ids = {m.id for a in markers for m in a.markers if m.type == Marker.LINE_STRIP}
    assert set(next(iter(ids))) <= strip_ids


def stripes_with_camera_info(ros):
    """Frame i of the stripes picture, each published after a 320x240 camera_info (fx 300)."""
    info_pub = ros.publisher(CameraInfo, "camera_info")
    info = CameraInfo(header=camera_header(0), width=320, height=240, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=[300.0, 0.0, 160.0, 0.0, 300.0, 120.0, 0.0, 0.0, 1.0])
    image_frames = frames(stripes_image())

    def with_info(i):
        info_pub.publish(info)
        return image_frames(i)
    return with_info


def test_camera_info_and_mounting_give_lanes_on_the_ground(ros, model):
    ros.lanenet(model=model, tracking=False, **{"ground.camera_height": 1.5, "ground.camera_pitch": 0.1})
    lanes, markers = ros.collect(LaneArray, "lanes"), ros.collect(MarkerArray, "markers")
    with_info = stripes_with_camera_info(ros)
    grounded = lambda: [m for m in lanes if m.ground_frame_id and len(m.lanes) == 2]  # noqa: E731
    ros.feed(ros.publisher(Image, "image"), with_info, grounded)
    left, right = grounded()[0].lanes
    assert grounded()[0].ground_frame_id == "base_link" and left.ground_valid and right.ground_valid
    # a vertical image stripe is a ground ray from below the camera: y = x (cx - u) / fx, left of it is +y
    assert left.c0 == pytest.approx(0.0, abs=0.2) and right.c0 == pytest.approx(0.0, abs=0.2)
    assert left.c1 == pytest.approx((160 - 96) / 300, abs=0.04)
    assert right.c1 == pytest.approx((160 - 224) / 300, abs=0.04)
    assert 0 < left.ground_x_min < left.ground_x_max and len(left.ground_points) >= 2
    ros.feed(ros.publisher(Image, "image"), with_info,
             lambda: any(m.header.frame_id == "base_link" for a in markers for m in a.markers))


def test_without_a_given_mounting_a_seeded_self_calibration_puts_lanes_on_the_ground(ros, model):
    node = ros.lanenet(model=model, tracking=False, **{"calibration.seed": [1.5, 0.1, 0.0]})
    lanes = ros.collect(LaneArray, "lanes")
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    with_info = stripes_with_camera_info(ros)
    grounded = lambda: [m for m in lanes if m.ground_frame_id and len(m.lanes) == 2]  # noqa: E731
    ros.feed(ros.publisher(Image, "image"), with_info, grounded)
    msg = grounded()[0]
    assert msg.calibration == LaneArray.CALIBRATION_ESTIMATED
    assert msg.lanes[0].c1 == pytest.approx((160 - 96) / 300, abs=0.04)  # as with the same values given
    # parallel image stripes have no vanishing point: nothing to measure, the seed holds
    assert node.pipeline.calibrator.status.state == "seeded"
    states = lambda: [v.value for a in diagnostics for s in a.status for v in s.values  # noqa: E731
                      if v.key == "calibration"]
    ros.feed(ros.publisher(Image, "image"), with_info, states)
    assert states()[-1] == "seeded"


def test_a_collecting_self_calibration_says_in_diagnostics_what_it_waits_for(ros, model):
    ros.lanenet(model=model, tracking=False)  # no mounting, no seed: estimated from the lanes
    lanes = ros.collect(LaneArray, "lanes")
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    waiting = lambda: [v.value for a in diagnostics for s in a.status for v in s.values  # noqa: E731
                       if v.key == "calibration waiting for"]
    ros.feed(ros.publisher(Image, "image"), stripes_with_camera_info(ros), waiting)
    # parallel stripes have no vanishing point: no straight-road measurement yet, and no ground output
    assert waiting()[-1].startswith("frames of straight road with both ego lines steady: 0 of 30")
    assert lanes and not any(m.ground_frame_id for m in lanes)


def test_without_camera_info_the_field_of_view_fallback_gives_intrinsics(ros, model):
    node = ros.lanenet(model=model, tracking=False, **{"calibration.seed": [1.5, 0.1, 0.0, 0.02],
                                                        "calibration.horizontal_fov": 90.0})
    lanes = ros.collect(LaneArray, "lanes")
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    grounded = lambda: [m for m in lanes if m.ground_frame_id and len(m.lanes) == 2]  # noqa: E731
    ros.feed(ros.publisher(Image, "image"), frames(stripes_image()), grounded)
    assert grounded()[0].calibration == LaneArray.CALIBRATION_ESTIMATED
    assert node.pipeline.calibrator.intrinsics.fx == pytest.approx(160.0)  # 320 px wide, 90 deg
    rolls = lambda: [v.value for a in diagnostics for s in a.status for v in s.values  # noqa: E731
                     if v.key == "camera roll (deg)"]
    ros.feed(ros.publisher(Image, "image"), frames(stripes_image()), rolls)
    assert rolls()[-1] == "1.146"  # the seed's fourth number


def test_a_given_mounting_wins_over_a_seed_and_is_reported_as_given(ros, model):
    ros.lanenet(model=model, tracking=False, **{"ground.camera_height": 1.5, "calibration.seed": [2.0, 0.0, 0.0]})
    lanes = ros.collect(LaneArray, "lanes")
    with_info = stripes_with_camera_info(ros)
    grounded = lambda: [m for m in lanes if m.ground_frame_id and len(m.lanes) == 2]  # noqa: E731
    ros.feed(ros.publisher(Image, "image"), with_info, grounded)
    assert grounded()[0].calibration == LaneArray.CALIBRATION_GIVEN


def encoded(image: np.ndarray, encoding: str, pad: int = 0) -> tuple[bytes, int]:
    """The bytes of ``image`` (BGR) in a ROS encoding, rows padded by ``pad`` bytes; returns (data, step)."""
    converted = {
        "bgr8": image, "rgb8": image[:, :, ::-1], "bgra8": cv2.cvtColor(image, cv2.COLOR_BGR2BGRA),
        "mono8": cv2.cvtColor(image, cv2.COLOR_BGR2GRAY),
        "mono16": cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(">u2") * 257,
        "yuv422_yuy2": cv2.cvtColor(image, cv2.COLOR_BGR2YUV_YUYV),
    }[encoding]
    rows = np.ascontiguousarray(converted).reshape(image.shape[0], -1).view(np.uint8)
    rows = np.hstack([rows, np.zeros((rows.shape[0], pad), np.uint8)])
    return rows.tobytes(), rows.shape[1]


@pytest.mark.parametrize("encoding", ["rgb8", "bgra8", "mono8", "mono16", "yuv422_yuy2", "bgr8"])
def test_common_encodings_with_row_padding_give_the_same_lanes(ros, model, encoding):
    ros.lanenet(model=model, tracking=False)
    lanes = ros.collect(LaneArray, "lanes")
    data, step = encoded(stripes_image(320, 240), encoding, pad=64)

    def make(i):
        return Image(header=camera_header(i), height=240, width=320, encoding=encoding, step=step, data=data,
                     is_bigendian=int(encoding == "mono16"))
    ros.feed(ros.publisher(Image, "image"), make, lambda: lanes)
    assert [round(lane.image_coeffs[0]) for lane in lanes[0].lanes] == pytest.approx([96, 224], abs=2)


@pytest.mark.parametrize("architecture", ["lanenet", "deeplabv3plus"])
def test_a_model_exported_by_lanenet_train_runs_in_the_node(ros, tmp_path, architecture):
    exported = export_trained_format_model(tmp_path, architecture)
    ros.lanenet(model=str(exported))
    lanes, masks = ros.collect(LaneArray, "lanes"), ros.collect(Image, "mask")
    ros.feed(ros.publisher(Image, "image"), frames(stripes_image(640, 360)), lambda: lanes and masks)
    assert lanes[0].header == camera_header(frame_seq(lanes[0].header))
    assert (lanes[0].image_width, lanes[0].image_height) == (640, 360)  # untrained: any lanes, right frame
    assert (masks[0].width, masks[0].height, masks[0].encoding) == (640, 360, "mono8")
    assert np.frombuffer(masks[0].data, np.uint8).max() < 3  # class ids of the model's 3 classes
