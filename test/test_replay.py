"""lanenet-replay: a bag through the pipeline, scored against labels; and `make demo`'s live path."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_fixtures import draw_road, export_line_model

from lanenet_ros.replay import cli as replay
from lanenet_ros.replay.bags import main as bag_main

LINES = (0.15, 0.45, 0.85)
CENTRED = (0.05, 0.3, 0.75)  # the camera near its lane's centre (self-calibration wants it within 0.2)
H, W, HORIZON = 720, 1280, 0.4
H_SAMPLES = list(range(160, 720, 10))


def true_lanes(shift: float = 0.0) -> list[list[float]]:
    """TuSimple x values of the painted lines of draw_road (-2 above where the paint starts)."""
    top = int(HORIZON * H) + int(0.08 * H)
    lanes = []
    for fx in LINES:
        x0, xv, yv = fx * W, W / 2, HORIZON * H
        x_top = xv + (x0 - xv) * (top - yv) / (H - 1 - yv)
        lanes.append([x0 + (x_top - x0) * (H - 1 - y) / (H - 1 - top) + shift if y >= top else -2.0
                      for y in H_SAMPLES])
    return lanes


@pytest.fixture(scope="module")
def road_bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("replay")
    (root / "imgs").mkdir()
    for i in range(6):
        cv2.imwrite(str(root / "imgs" / f"{i:02d}.png"), draw_road(LINES, seed=i))
    assert bag_main(["--images", str(root / "imgs"), "--out", str(root / "bag"), "--start", "50"]) == 0
    model = root / "lines.onnx"
    export_line_model(model, roi_top=0.4)
    return root / "bag", model


def write_labels(path: Path, shift: float) -> Path:
    rows = [{"timestamp_ns": 50 * 10**9 + i * 10**8, "h_samples": H_SAMPLES, "lanes": true_lanes(shift)}
            for i in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_offline_replay_scores_against_labels_and_writes_its_outputs(road_bag, tmp_path, capsys):
    bag, model = road_bag
    labels = write_labels(tmp_path / "labels.json", shift=0.0)
    out = tmp_path / "out"
    assert replay.main([str(bag), "--model", str(model), "--backend", "onnxruntime-cpu",
                        "--labels", str(labels), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    summary = report["summary"]
    assert summary["frames"] == 6 and len(report["frames"]) == 6
    assert summary["tusimple"]["accuracy"] > 0.95 and summary["tusimple"]["fn"] == 0.0
    assert summary["ego_lane_availability"] == 1.0 and summary["mean_lanes_per_frame"] == 3.0
    assert summary["ego_width_px_mean"] == pytest.approx((LINES[2] - LINES[1]) * W, abs=10)
    assert set(report["frames"][0]["stages_ms"]) >= {"preprocess", "infer", "decode"}
    for name in ("overlay.mp4", "latency.png", "timeline.png"):
        assert (out / name).stat().st_size > 1000, name
    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    printed = capsys.readouterr().out
    assert "TuSimple: accuracy" in printed
    assert summary["bonnet"]["text"] == "none found" and "bonnet: none found" in printed  # a camera without one


def test_wrong_labels_score_badly(road_bag, tmp_path):
    bag, model = road_bag
    labels = write_labels(tmp_path / "labels.json", shift=100.0)
    out = tmp_path / "out"
    assert replay.main([str(bag), "--model", str(model), "--backend", "onnxruntime-cpu",
                        "--labels", str(labels), "--out", str(out)]) == 0
    tusimple = json.loads((out / "report.json").read_text())["summary"]["tusimple"]
    # The angle-adjusted threshold (20 px / cos) lets some points of the slanted outer lanes pass; no lane matches.
    assert tusimple["accuracy"] < 0.5 and tusimple["fp"] == 1.0 and tusimple["fn"] == 1.0


def test_bad_labels_name_file_and_line(road_bag, tmp_path, capsys):
    bag, model = road_bag
    labels = tmp_path / "labels.json"
    labels.write_text('{"h_samples": [1], "lanes": []}\n{"h_samples": [1]}\n')
    assert replay.main([str(bag), "--model", str(model), "--labels", str(labels), "--out", str(tmp_path)]) == 2
    assert "labels.json:2: label lacks ['lanes']" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.ros
def test_demo_runs_the_node_live_on_a_synthetic_drive(road_bag, tmp_path, capsys):
    from lanenet_ros.replay import demo

    _, model = road_bag
    assert demo.main(["--out", str(tmp_path), "--frames", "12", "--model", str(model), "--rate", "5"]) == 0
    summary = json.loads((tmp_path / "report.json").read_text())["summary"]
    assert summary["published"] == 12 and summary["frames"] >= 10
    assert "tusimple" in summary and summary["latency_ms"]["mean"] > 0
    assert (tmp_path / "drive.labels.json").exists() and (tmp_path / "overlay.mp4").stat().st_size > 1000
    assert np.isfinite(summary["latency_ms"]["p95"])


def test_offline_replay_takes_decoder_settings(road_bag, tmp_path, capsys):
    bag, model = road_bag
    out = tmp_path / "out"
    assert replay.main([str(bag), "--model", str(model), "--backend", "onnxruntime-cpu", "--out", str(out),
                        "--decode", "max_lanes=2"]) == 0
    # three lines on the road (3.0 per frame without the setting); tracking may carry a lane over a frame
    assert json.loads((out / "report.json").read_text())["summary"]["mean_lanes_per_frame"] < 2.5
    assert replay.main([str(bag), "--model", str(model), "--backend", "onnxruntime-cpu", "--out", str(out),
                        "--decode", "max_lanes=0"]) != 0
    assert "max_lanes" in capsys.readouterr().err
    # a bonnet given by hand: the report says where the lanes were cut, in every frame
    assert replay.main([str(bag), "--model", str(model), "--backend", "onnxruntime-cpu", "--out", str(out),
                        "--decode", "hood=0.1"]) == 0
    bonnet = json.loads((out / "report.json").read_text())["summary"]["bonnet"]
    assert bonnet["share_of_frames"] == 1.0 and bonnet["row_median"] == pytest.approx(0.9 * H - 0.5)
    assert "bonnet: found in 100.0 % of frames, row 648 of 720 at the centre, given (decode.hood 0.1)" in \
        capsys.readouterr().out


def test_ego_width_extends_lanes_straight_to_the_bottom_row():
    from lanenet_ros.decode.fitting import sample_points
    from lanenet_ros.lanes import DetectedLane, LaneFrame
    from lanenet_ros.replay.report import ego_width

    def ending_at_500(bottom: float, cubic: float) -> DetectedLane:
        # x = x500 + 0.5 (y - 500) + cubic (y - 500)^3: straight near its end (y <= 500), not below it
        shifted = np.polynomial.Polynomial([bottom - 0.5 * 219, 0.5, 0.0, cubic])
        coeffs = shifted(np.polynomial.Polynomial([-500.0, 1.0])).coef
        return DetectedLane(coeffs, 300.0, 500.0, sample_points(coeffs, 300.0, 500.0, 10.0))

    lanes = [ending_at_500(400.0, 1e-4), ending_at_500(900.0, -1e-4)]
    frame = LaneFrame(1280, 720, np.zeros((720, 1280), np.uint8), lanes, ego_left_index=0, ego_right_index=1)
    assert abs(lanes[0].x_at(719.0) - 400.0) > 500  # the polynomial swings far off below its rows
    assert ego_width(frame) == pytest.approx(500.0, abs=1.0)


def test_demo_refuses_a_bad_decoder_setting(capsys):
    from lanenet_ros.replay import demo

    assert demo.main(["--decode", "min_span=2"]) == 2
    assert "min_span" in capsys.readouterr().err


@pytest.fixture(scope="module")
def straight_bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """35 frames of a straight road (640x360, lines meeting at (320, 144), the camera near the middle of its lane:
    the ego lane's lines at 0.3 and 0.75 of the width) and a camera_info file for it."""
    root = tmp_path_factory.mktemp("calibration")
    (root / "imgs").mkdir()
    for i in range(35):
        cv2.imwrite(str(root / "imgs" / f"{i:02d}.png"), draw_road(CENTRED, size=(360, 640), seed=i, thickness=6))
    assert bag_main(["--images", str(root / "imgs"), "--out", str(root / "bag"), "--start", "50"]) == 0
    info = root / "camera.yaml"
    info.write_text("image_width: 640\nimage_height: 360\ncamera_name: front\n"
                    "camera_matrix: {rows: 3, cols: 3, data: [500, 0, 320, 0, 500, 180, 0, 0, 1]}\n"
                    "distortion_model: plumb_bob\n"
                    "distortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}\n")
    model = root / "lines.onnx"
    export_line_model(model, roi_top=0.4)
    return root / "bag", model, info


def test_replay_with_camera_info_estimates_the_mounting_and_writes_node_parameters(straight_bag, tmp_path, capsys):
    import math

    import yaml

    from lanenet_ros.ground import GroundProjector

    bag, model, info = straight_bag
    out = tmp_path / "out"
    assert replay.main([str(bag), "--model", str(model), "--out", str(out), "--camera-info", str(info)]) == 0
    printed = capsys.readouterr().out
    pitch = math.atan((180 - 0.4 * 360) / 500)  # the vanishing point's row
    unit = GroundProjector.from_camera(500, 500, 320, 180, 1.0, pitch)
    (_, left), (_, right) = unit.image_to_ground(np.array([[0.3 * 640, 359.0], [0.75 * 640, 359.0]]))
    height = 3.6 / (left - right)  # the ego lane, 3.6 m wide by default
    summary = json.loads((out / "report.json").read_text())["summary"]["calibration"]
    assert summary["state"] == "converged"
    assert summary["camera_pitch_deg"] == pytest.approx(math.degrees(pitch), abs=0.3)
    assert summary["camera_yaw_deg"] == pytest.approx(0.0, abs=0.3)
    assert summary["camera_height_m"] == pytest.approx(height, rel=0.05)
    assert f"camera height {summary['camera_height_m']:.3f} m" in printed and "mean lane width 3.60 m" in printed
    params = yaml.safe_load((out / "calibration.yaml").read_text())["/**"]["ros__parameters"]["calibration"]
    assert params["seed"] == pytest.approx([summary["camera_height_m"], pitch, 0.0], abs=0.01)


def test_a_calibration_that_did_not_converge_says_what_it_waited_for() -> None:
    from lanenet_ros.calibrate import Intrinsics, MountingEstimator
    from lanenet_ros.lanes import LaneFrame
    from lanenet_ros.replay.camera import calibration_summary, format_calibration

    est = MountingEstimator(Intrinsics(500, 500, 320, 180))
    for _ in range(3):
        est.update(LaneFrame(640, 360, np.zeros((1, 1), np.uint8)))
    line = format_calibration(est.status)
    assert line.startswith("self-calibration: not converged (0 of 3 frames measured); waiting for frames of straight "
                           "road with both ego lines steady: 0 of 30")
    assert calibration_summary(est.status)["waiting_for"] == est.status.waiting_for


def test_a_roll_goes_into_the_printed_line_and_the_seed(tmp_path) -> None:
    import yaml

    from lanenet_ros.calibrate import Intrinsics, Mounting, MountingEstimator
    from lanenet_ros.node.params import NodeParams
    from lanenet_ros.replay.camera import format_calibration, write_calibration_params

    est = MountingEstimator(Intrinsics(500, 500, 320, 180), seed=Mounting(1.4, 0.05, 0.01, 0.04))
    assert ", yaw 0.573 deg, roll 2.292 deg" in format_calibration(est.status)
    write_calibration_params(tmp_path / "calibration.yaml", est.status, 3.6)
    params = yaml.safe_load((tmp_path / "calibration.yaml").read_text())["/**"]["ros__parameters"]
    assert params["calibration"]["seed"] == pytest.approx([1.4, 0.05, 0.01, 0.04])
    assert NodeParams.from_values({"calibration.seed": params["calibration"]["seed"]}).calibration_seed
    upright = MountingEstimator(Intrinsics(500, 500, 320, 180), seed=Mounting(1.4, 0.05, 0.01))
    assert "roll" not in format_calibration(upright.status)


def test_replay_refuses_a_camera_info_file_without_a_matrix(straight_bag, tmp_path, capsys):
    bag, model, _ = straight_bag
    bad = tmp_path / "camera.yaml"
    bad.write_text("image_width: 640\n")
    assert replay.main([str(bag), "--model", str(model), "--out", str(tmp_path / "o"), "--camera-info", str(bad)]) == 2
    assert f"{bad}: no camera_matrix.data" in capsys.readouterr().err
