"""LanePipeline end to end on camera-sized frames, with a hand-set model that really finds painted lines."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from model_fixtures import draw_road, export_line_model, export_model, model_info

from lanenet_ros import pipeline as pipeline_module
from lanenet_ros.backends import BackendError
from lanenet_ros.lanes import Position
from lanenet_ros.model_info import ModelError
from lanenet_ros.pipeline import STAGES, LanePipeline

LINES = (0.15, 0.45, 0.85)  # bottom-edge x of the painted lines, fraction of the width


@pytest.fixture(scope="module")
def line_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipeline") / "lines.onnx"
    export_line_model(path, roi_top=0.4)
    return path


def test_lanes_found_where_they_are_painted(line_model: Path) -> None:
    pipe = LanePipeline(line_model, backend="onnxruntime-cpu", tracking=False)
    frame = pipe.process(draw_road(LINES))
    assert (frame.width, frame.height, frame.class_mask.shape) == (1280, 720, (720, 1280))
    bottoms = [float(lane.x_at(719)) for lane in frame.lanes]
    assert bottoms == pytest.approx([x * 1280 for x in LINES], abs=8)
    assert (frame.ego_left_index, frame.ego_right_index) == (1, 2)
    assert [lane.position for lane in frame.lanes] == [Position.SECOND_LEFT, Position.EGO_LEFT, Position.EGO_RIGHT]
    assert frame.class_mask[: int(0.4 * 720)].max() == 0  # the model's roi_top: sky rows never hold lanes
    x700 = round(float(frame.lanes[0].x_at(700)))
    assert frame.class_mask[700, x700] == 1 and frame.class_mask[700, x700 + 60] == 0


def test_every_stage_is_timed(line_model: Path) -> None:
    frame = LanePipeline(line_model, backend="onnxruntime-cpu", tracking=False).process(draw_road(LINES))
    assert set(frame.timings) == {*STAGES, "total"}
    assert all(frame.timings[s] >= 0 for s in STAGES) and frame.timings["infer"] > 0
    assert frame.timings["total"] == pytest.approx(sum(frame.timings[s] for s in STAGES), rel=1e-6)


def test_auto_backend_reports_what_runs_and_why_others_did_not(line_model: Path) -> None:
    pipe = LanePipeline(line_model, backend="auto", tracking=False)
    if pipe.backend_name != "onnxruntime-cpu":
        pytest.skip(f"this machine runs {pipe.backend_name}")
    skipped = "\n".join(pipe.backend.skipped)
    assert "tensorrt:" in skipped and "onnxruntime-cuda: CUDAExecutionProvider is not in" in skipped
    with pytest.raises(BackendError, match="CUDAExecutionProvider"):
        LanePipeline(line_model, backend="onnxruntime-cuda")


def test_roi_override_and_its_validation(line_model: Path) -> None:
    pipe = LanePipeline(line_model, backend="onnxruntime-cpu", roi_top=0.5, tracking=False)
    assert pipe.preprocessor.roi_top == 0.5
    frame = pipe.process(draw_road(LINES))
    assert frame.class_mask[:360].max() == 0 and frame.class_mask[360:].max() == 1
    with pytest.raises(ValueError, match="roi_top"):
        LanePipeline(line_model, backend="onnxruntime-cpu", roi_top=1.5)


class OneChannelNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 6, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.conv(x)
        return {"binary_logits": y[:, :2], "embedding": y[:, 2:]}


def test_model_unsuitable_for_camera_images_is_refused(tmp_path: Path) -> None:
    info = model_info(input_channels=1, mean=[0.5], std=[0.25])
    export_model(OneChannelNet().eval(), info, tmp_path / "grey.onnx", verify_images=1)
    with pytest.raises(ModelError, match=r"grey\.onnx: the model takes 1-channel input.*3-channel camera"):
        LanePipeline(tmp_path / "grey.onnx", backend="onnxruntime-cpu")


def test_embedded_default_model(line_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "DEFAULT_MODEL", tmp_path / "models" / "default.onnx")
    with pytest.raises(ModelError, match="embedded default model is missing"):
        LanePipeline()
    monkeypatch.setattr(pipeline_module, "DEFAULT_MODEL", line_model)
    pipe = LanePipeline(backend="onnxruntime-cpu", tracking=False)
    assert pipe.model_path == line_model and pipe.info.architecture == "lanenet"


def test_default_model_with_heads_on_a_gpu_without_them_on_the_cpu(line_model: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    heads = tmp_path / "default_heads.onnx"
    heads.write_bytes(line_model.read_bytes())
    monkeypatch.setattr(pipeline_module, "DEFAULT_MODEL", line_model)
    monkeypatch.setattr(pipeline_module, "DEFAULT_HEADS_MODEL", heads)
    assert [pipeline_module.default_model_path(k) for k in ("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu")] \
        == [heads, heads, line_model]
    # this machine has no GPU: every way to ask ends on the CPU with the model without heads
    for kind in ("auto", "onnxruntime", "onnxruntime-cpu"):
        pipe = LanePipeline(backend=kind, tracking=False)
        assert (pipe.model_path, pipe.backend_name) == (line_model, "onnxruntime-cpu"), kind
    assert any(s.startswith("onnxruntime-cuda:") for s in LanePipeline(backend="auto").backend.skipped)
    with pytest.raises(BackendError, match=r"default_heads\.onnx:\n  onnxruntime-cuda: CUDAExecutionProvider"):
        LanePipeline(backend="onnxruntime-cuda")  # a GPU backend asked for by name opens the heads' model
    named = LanePipeline("default_heads", backend="onnxruntime-cpu")  # by name: that one, on any backend
    assert named.model_path == heads and LanePipeline("default", backend="auto").model_path == line_model
    heads.unlink()  # a package without it: the one model everywhere
    assert pipeline_module.default_model_path("tensorrt") == line_model


def test_given_model_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing\.onnx: model file does not exist"):
        LanePipeline(tmp_path / "missing.onnx")


def test_unusable_images_raise_value_error(line_model: Path) -> None:
    pipe = LanePipeline(line_model, backend="onnxruntime-cpu", tracking=False)
    with pytest.raises(ValueError, match="uint8"):
        pipe.process(np.zeros((720, 1280, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        pipe.process(np.zeros((720, 1280, 2), np.uint8))
    assert len(pipe.process(draw_road(LINES)).lanes) == 3  # and the next good frame still works


CAMERA = {"fx": 1000.0, "fy": 1000.0, "cx": 640.0, "cy": 360.0, "height_m": 1.5,
          "pitch_rad": float(np.arctan((360 - 0.4 * 720) / 1000.0))}  # horizon row = the lines' vanishing point


def test_ground_lanes_of_a_straight_road_are_parallel_and_ordered(line_model: Path) -> None:
    pipe = LanePipeline(line_model, backend="onnxruntime-cpu", camera=CAMERA, tracking=False)
    lanes = pipe.process(draw_road(LINES)).lanes
    assert len(lanes) == 3 and all(lane.ground_coeffs is not None for lane in lanes)
    offsets = [lane.ground_coeffs[0] for lane in lanes]
    assert offsets[0] > offsets[1] > 0 > offsets[2]  # y is left of the vehicle: leftmost lane largest
    for lane in lanes:  # lines through the horizon's centre run straight ahead on the ground
        x0, x1 = lane.ground_x_range
        assert 0 < x0 < x1 and np.ptp(lane.ground_points[:, 1]) < 0.15
        assert abs(lane.ground_coeffs[1]) < 0.02
    # pinhole geometry by hand: depth of the bottom row, then the lateral gap of two lines 512 px apart there
    pitch, t = CAMERA["pitch_rad"], (719 - 360) / 1000
    forward = 1.5 * (np.cos(pitch) - t * np.sin(pitch)) / (t * np.cos(pitch) + np.sin(pitch))
    depth = forward * np.cos(pitch) + 1.5 * np.sin(pitch)
    assert offsets[1] - offsets[2] == pytest.approx((0.85 - 0.45) * 1280 * depth / 1000, rel=0.05)


def test_ground_lanes_are_fitted_to_the_lanes_as_tracked(line_model: Path) -> None:
    """With tracking on, each published lane's ground fit is that of its published (smoothed) image lane, not
    a blend of each frame's own ground fits: what bench/calibration.py scores. The ego lines' go through the
    ground-plane filter on top (EgoLaneFilter), fed those same lanes frame by frame."""
    from lanenet_ros.ground import GroundProjector, add_ground_lanes
    from lanenet_ros.ground_tracking import EgoLaneFilter

    for ground_tracking in (False, True):
        pipe = LanePipeline(line_model, backend="onnxruntime-cpu", camera=CAMERA,
                            tracking={"ground": ground_tracking})
        tracked: list = []

        def record(frame, stamp, track=pipe.tracker.update, tracked=tracked, **options):
            tracked.append(track(frame, stamp, **options))
            return tracked[-1]

        pipe.tracker.update = record
        published = []
        for k, lines in enumerate(((0.15, 0.45, 0.85), (0.17, 0.47, 0.87), (0.16, 0.44, 0.86))):
            out = pipe.process(draw_road(lines), float(k) / 10)
            assert out.calibration == "given" and all(lane.ground_coeffs is not None for lane in out.lanes)
            assert out.ego_left_index >= 0 and out.ego_right_index >= 0
            published.append([lane.ground_coeffs.copy() for lane in out.lanes])
        ego_filter = EgoLaneFilter() if ground_tracking else None
        for k, (frame, coeffs) in enumerate(zip(tracked, published, strict=True)):
            again = frame.replace(lanes=[lane.replace(ground_coeffs=None) for lane in frame.lanes])
            add_ground_lanes(again, GroundProjector.from_camera(**CAMERA), ego_filter=ego_filter, stamp=k / 10)
            for got, fitted in zip(coeffs, again.lanes, strict=True):
                np.testing.assert_allclose(got, fitted.ground_coeffs, atol=1e-9)


def test_camera_given_as_object_set_later_and_cleared(line_model: Path) -> None:
    class CameraParams:  # like lanenet_train.synth's CameraParams: attributes, extra fields ignored
        width, height, k1, k2 = 1280, 720, 0.0, 0.0

    camera = CameraParams()
    vars(camera).update(CAMERA)
    pipe = LanePipeline(line_model, backend="onnxruntime-cpu", tracking=False)
    assert pipe.process(draw_road(LINES)).lanes[0].ground_coeffs is None
    assert pipe.set_ground(camera) is True
    assert pipe.process(draw_road(LINES)).lanes[0].ground_coeffs is not None
    assert pipe.set_ground(None) is False
    with pytest.raises(ValueError, match="height_m, pitch_rad missing"):
        pipe.set_ground({"fx": 1000, "fy": 1000, "cx": 640, "cy": 360})


def test_tracking_keeps_ids_while_the_car_drifts(line_model: Path) -> None:
    tracked = LanePipeline(line_model, backend="onnxruntime-cpu")
    untracked = LanePipeline(line_model, backend="onnxruntime-cpu", tracking=False)
    ids = []
    for k in range(5):
        image = draw_road(tuple(x + 0.004 * k for x in LINES), seed=k)
        frame = tracked.process(image, stamp=k * 100_000_000)  # 10 Hz, integer nanoseconds
        ids.append([lane.track_id for lane in frame.lanes])
        assert [lane.track_id for lane in untracked.process(image).lanes] == [0, 0, 0]
    assert len(set(map(tuple, ids[1:]))) == 1 and len(set(ids[-1])) == 3 and 0 not in ids[-1]


def test_decoder_settings_come_from_the_model_unless_given(tmp_path):
    from model_fixtures import export_tiny

    from lanenet_ros.decode.settings import DecodeParams

    path = tmp_path / "tuned.onnx"
    export_tiny(path, info_overrides={"decode": ["max_lanes=2", "lane_threshold=0.8"]})
    assert LanePipeline(path, "onnxruntime-cpu").decoder.params == DecodeParams(max_lanes=2, lane_threshold=0.8)
    mixed = LanePipeline(path, "onnxruntime-cpu", decode_params={"max_lanes": 3, "min_span": 0.1,
                                                                 "max_per_side": 1, "ego_center": 0.4})
    assert mixed.decoder.params == DecodeParams(max_lanes=3, lane_threshold=0.8, min_span=0.1, max_per_side=1,
                                                ego_center=0.4)
    tracker = mixed.tracker  # reports lanes as the decoder keeps them (coasting ones included)
    assert (tracker.max_lanes, tracker.max_per_side, tracker.ego_center) == (3, 1, 0.4)
    # a setting given wins whatever its value, the generic default included (--decode lane_threshold=0.5)
    from lanenet_ros.decode.settings import parse_pairs

    named = parse_pairs(["lane_threshold=0.5"])
    assert LanePipeline(path, "onnxruntime-cpu", decode_params=named).decoder.params == DecodeParams(max_lanes=2)
    # evaluate / inference decode an exported model the same way
    from lanenet_train.predict import Predictor

    assert Predictor(path).decoder.params == DecodeParams(max_lanes=2, lane_threshold=0.8)
    assert Predictor(path, decode_params={"max_lanes": 3}).decoder.params == \
        DecodeParams(max_lanes=3, lane_threshold=0.8)
    assert Predictor(path, decode_params=named).decoder.params == DecodeParams(max_lanes=2)
    with pytest.raises(ValueError, match="no_such"):
        LanePipeline(path, "onnxruntime-cpu", decode_params={"no_such": 1})
    with pytest.raises(ValueError, match="max_lanes"):
        LanePipeline(path, "onnxruntime-cpu", decode_params={"max_lanes": 0})
    bad = tmp_path / "bad.onnx"
    export_tiny(bad, info_overrides={"decode": ["max_lanes=0"]})
    with pytest.raises(ValueError, match="max_lanes"):
        LanePipeline(bad, "onnxruntime-cpu")


def test_flip_average_averages_the_binary_branch_with_the_mirror_image(tmp_path, line_model):
    from model_fixtures import export_tiny

    from lanenet_ros.pipeline import run_model

    path = tmp_path / "tiny.onnx"
    export_tiny(path)
    pipe = LanePipeline(path, "onnxruntime-cpu", tracking=False)  # its backend reuses its output buffers
    batch, _ = pipe.preprocessor(draw_road((0.3, 0.6)))
    plain = {k: v.copy() for k, v in pipe.backend.infer(batch).items()}
    mirror = {k: v.copy() for k, v in pipe.backend.infer(np.ascontiguousarray(batch[..., ::-1])).items()}
    averaged = run_model(pipe.backend.infer, batch, pipe.info, flip_average=True)
    assert averaged["binary_logits"] == pytest.approx((plain["binary_logits"] + mirror["binary_logits"][..., ::-1])
                                                      / 2, abs=1e-6)
    assert not np.allclose(averaged["binary_logits"], plain["binary_logits"], atol=1e-3)  # the net is one-sided
    assert np.array_equal(averaged["embedding"], plain["embedding"])  # lanes are told apart by the first run
    assert run_model(pipe.backend.infer, batch, pipe.info)["binary_logits"] == pytest.approx(plain["binary_logits"])
    # end to end, lanes are still found where they are painted, by the node's pipeline and by evaluation's
    from lanenet_train.predict import Predictor

    flipped = LanePipeline(line_model, "onnxruntime-cpu", decode_params={"flip_average": True}, tracking=False)
    frame = flipped.process(draw_road(LINES))
    assert [float(lane.x_at(719)) for lane in frame.lanes] == pytest.approx([x * 1280 for x in LINES], abs=8)
    (evaluated,) = Predictor(line_model, decode_params={"flip_average": True})([draw_road(LINES)])
    assert [float(lane.x_at(719)) for lane in evaluated.lanes] == pytest.approx([x * 1280 for x in LINES], abs=8)


def test_flip_average_is_refused_for_a_per_class_model(tmp_path):
    from model_fixtures import export_tiny

    path = tmp_path / "classes.onnx"
    export_tiny(path, "deeplabv3plus")
    with pytest.raises(ValueError, match="flip_average"):
        LanePipeline(path, "onnxruntime-cpu", decode_params={"flip_average": True})
