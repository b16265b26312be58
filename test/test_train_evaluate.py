"""`evaluate` and `inference` on a briefly trained checkpoint; the scorer on exact lanes."""
import json

import cv2
import numpy as np
import pytest
from train_fixture import make_dataset

from lanenet_ros.decode.settings import DecodeParams
from lanenet_ros.lanes import DetectedLane, LaneFrame
from lanenet_train.cli import main
from lanenet_train.evaluate import Scorer
from lanenet_train.spec.schema import EvaluationConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = make_dataset(root / "data", n_train=4, n_val=3)
    spec = root / "spec.txt"
    spec.write_text(f"""
dataset_config {{ data_sources {{ dataset_root: "{data}" }} validation_data_sources {{ dataset_root: "{data}" }}
                  num_workers: 0 }}
model_config {{ input_image_width: 64 input_image_height: 32 width_multiplier: 0.25 }}
train_config {{ batch_size: 2 epochs: 1 }}
evaluation_config {{ batch_size: 2 num_worst_frames: 2 }}""")
    assert main(["train", "-e", str(spec), "-r", str(root / "run"), "-k", "pw"]) == 0
    return root, spec, data


def test_evaluate_writes_report_and_pictures(trained, capsys):
    root, spec, _ = trained
    assert main(["evaluate", "-e", str(spec), "-m", str(root / "run" / "latest.pth"), "-k", "pw",
                 "-o", str(root / "ev")]) == 0
    report = json.loads((root / "ev" / "report.json").read_text())
    assert report["frames"] == 3 and report["tusimple"]["frames"] == 3
    assert 0 <= report["tusimple"]["accuracy"] <= 1 and 0 <= report["culane"]["f1"] <= 1
    seg = report["segmentation"]
    assert set(seg["per_class_iou"]) == {"background", "lane"}
    assert np.asarray(seg["confusion_matrix"]).sum() == 3 * 64 * 128  # every camera pixel of the 3 images
    for name in ("per_class_iou.png", "confusion_matrix.png", "worst_frames.png"):
        image = cv2.imread(str(root / "ev" / name))
        assert image is not None and image.shape[0] > 100
    assert "report:" in capsys.readouterr().out
    assert main(["evaluate", "-e", str(spec), "-m", str(root / "run" / "latest.pth"), "-k", "bad"]) == 2
    assert "wrong key" in capsys.readouterr().err
    assert main(["evaluate", "-e", str(spec), "-m", str(root / "run" / "latest.pth"), "-k", "pw",
                 "--decode", "max_lanz=3"]) == 2
    assert "max_lanz=3" in capsys.readouterr().err


def test_exported_onnx_model_scores_as_its_checkpoint(trained):
    root, spec, data = trained
    ckpt, onnx_path = root / "run" / "latest.pth", root / "model.onnx"
    assert main(["export", "-m", str(ckpt), "-o", str(onnx_path), "-k", "pw"]) == 0
    reports = []
    for model, out in ((ckpt, root / "ev_ckpt"), (onnx_path, root / "ev_onnx")):
        assert main(["evaluate", "-e", str(spec), "-m", str(model), "-k", "pw", "-o", str(out)]) == 0
        reports.append(json.loads((out / "report.json").read_text()))
    for key in ("tusimple", "culane"):
        assert reports[1][key] == pytest.approx(reports[0][key], abs=0.02)
    from lanenet_ros.model_info import read_model_info

    assert read_model_info(onnx_path).decode == []  # the spec's evaluation_config.decode: none
    tuned = root / "tuned.onnx"
    assert main(["export", "-m", str(ckpt), "-o", str(tuned), "-k", "pw", "--decode", "max_lanes=3"]) == 0
    assert read_model_info(tuned).decode == ["max_lanes=3"]
    assert main(["export", "-m", str(ckpt), "-o", str(tuned), "-k", "pw", "--decode", "max_lanes=3",
                 "--decode", "lane_threshold=0.6", "--decode", "max_lanes=4"]) == 0
    assert read_model_info(tuned).decode == ["max_lanes=4", "lane_threshold=0.6"]  # the last of a name wins
    assert main(["export", "-m", str(ckpt), "-o", str(tuned), "-k", "pw", "--decode", "max_lanes=0"]) == 2
    # image by image: the ONNX model (static batch, run once per image) gives each image its own outputs
    from lanenet_train.predict import Predictor

    images = [cv2.imread(str(p)) for p in sorted((data / "images" / "val").glob("*"))]
    by_onnx, _ = Predictor(onnx_path).outputs(images)
    by_ckpt, _ = Predictor(ckpt, key="pw").outputs(images)
    for name, value in by_ckpt.items():
        assert np.abs(by_onnx[name] - value).max() < 1e-3, name
        assert np.abs(value[0] - value[-1]).max() > 1e-3, "the images should give different outputs"
    # flip_average: the checkpoint (one batch) and the ONNX model (image by image) average the same way
    flip = {"flip_average": True}
    flipped_onnx, _ = Predictor(onnx_path, decode_params=flip).outputs(images)
    flipped_ckpt, _ = Predictor(ckpt, key="pw", decode_params=flip).outputs(images)
    assert np.abs(flipped_onnx["binary_logits"] - flipped_ckpt["binary_logits"]).max() < 1e-3
    assert np.abs(flipped_ckpt["binary_logits"] - by_ckpt["binary_logits"]).max() > 1e-3
    assert np.array_equal(flipped_ckpt["embedding"], by_ckpt["embedding"])
    assert reports[1]["segmentation"]["miou"] == pytest.approx(reports[0]["segmentation"]["miou"], abs=0.01)


def test_inference_writes_overlays_lanes_and_a_video(trained):
    root, spec, data = trained
    out = root / "inf"
    assert main(["inference", "-e", str(spec), "-i", str(data / "images" / "val"), "-o", str(out),
                 "-m", str(root / "run" / "latest.pth"), "-k", "pw"]) == 0
    assert len(list((out / "overlays").glob("*.jpg"))) == 3
    assert len((out / "lanes.jsonl").read_text().splitlines()) == 3
    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames == 3 and int(video.get(cv2.CAP_PROP_FRAME_WIDTH)) == 128
    out2 = root / "inf2"  # the video itself is a valid input
    assert main(["inference", "-e", str(spec), "-i", str(out / "overlay.mp4"), "-o", str(out2),
                 "-m", str(root / "run" / "latest.pth"), "-k", "pw", "--no-video"]) == 0
    assert len(list((out2 / "overlays").glob("*.jpg"))) == 3 and not (out2 / "overlay.mp4").exists()


def lane_from_points(points):
    pts = np.asarray(points, dtype=np.float64)
    coeffs = np.polynomial.polynomial.polyfit(pts[:, 1], pts[:, 0], 1)
    return DetectedLane(coeffs, pts[:, 1].min(), pts[:, 1].max(), pts.astype(np.float32))


def test_scorer_gives_full_marks_to_the_ground_truth_and_counts_a_missed_lane(tmp_path):
    root = make_dataset(tmp_path / "d", n_train=1, n_val=0, width=1280, height=720)  # TuSimple's own size
    sample = json.loads((root / "index.jsonl").read_text().splitlines()[0])
    mask = cv2.imread(str(root / sample["mask"]), cv2.IMREAD_UNCHANGED)
    sample.update(mask=str(root / sample["mask"]), lut=np.arange(256, dtype=np.uint8))
    scorer = Scorer(["background", "lane"], EvaluationConfig())
    exact = LaneFrame(1280, 720, mask, [lane_from_points(p) for p in sample["lanes"]])
    assert scorer.add(sample, exact) == pytest.approx(1.0)
    missing = LaneFrame(1280, 720, np.zeros_like(mask), [lane_from_points(p) for p in sample["lanes"][:2]])
    scorer.add(sample, missing)
    report = scorer.report()
    assert report["tusimple"]["accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert report["tusimple"]["fn"] == pytest.approx((0 + 1 / 3) / 2)
    assert report["tusimple"]["frames_over_5_lanes"] == 0
    assert report["tusimple"]["accuracy_frames_up_to_5_lanes"] == report["tusimple"]["accuracy"]
    assert report["culane"]["tp"] == 5 and report["culane"]["fn"] == 1
    assert report["segmentation"]["per_class_iou"]["lane"] == pytest.approx(0.5)
    first, second = report["per_frame"]
    assert first["id"] == second["id"] == sample["id"] and (first["lanes"], second["lanes"]) == (3, 2)
    assert first["tusimple"] == {"accuracy": 1.0, "fp": 0.0, "fn": 0.0}
    assert second["tusimple"]["fn"] == pytest.approx(1 / 3) and second["culane"] == {"tp": 2, "fp": 0, "fn": 1}
    assert first["lane_iou"] == pytest.approx(1.0) and second["lane_iou"] == 0.0
    assert "tusimple_by_condition" not in report  # no scene in the fixture's samples
    json.dumps(report)  # plain data all through
    lane_pixels = 2 * int((mask > 0).sum())
    background = 2 * mask.size - lane_pixels
    assert report["segmentation"]["constant_baseline_miou"] == pytest.approx(background / (2 * mask.size) / 2)


def test_scorer_splits_the_tusimple_score_by_the_scene_of_synthetic_samples(tmp_path):
    root = make_dataset(tmp_path / "d", n_train=1, n_val=0, width=1280, height=720)
    sample = json.loads((root / "index.jsonl").read_text().splitlines()[0])
    lanes = [lane_from_points(p) for p in sample["lanes"]]
    mask = np.zeros((720, 1280), np.uint8)
    scorer = Scorer(["background", "lane"], EvaluationConfig())
    for time, found in (("day", lanes), ("night", lanes[:2]), ("night", lanes)):
        scorer.add(dict(sample, mask=None, meta={"scene": {"time": time, "weather": "rain"}}),
                   LaneFrame(1280, 720, mask, found))
    split = scorer.report()["tusimple_by_condition"]
    assert split["time"]["day"] == {"accuracy": 1.0, "fp": 0.0, "fn": 0.0, "frames": 1}
    assert split["time"]["night"]["fn"] == pytest.approx(1 / 6) and split["time"]["night"]["frames"] == 2
    overall = scorer.report()["tusimple"]
    assert split["weather"]["rain"] == {k: overall[k] for k in ("accuracy", "fp", "fn", "frames")}


def test_decode_settings_are_typed_and_checked():
    params = DecodeParams.from_pairs(["max_lanes=5", "min_confidence=0.3"])
    assert params.max_lanes == 5 and params.min_confidence == 0.3
    with pytest.raises(ValueError, match="one of"):
        DecodeParams.from_pairs(["max_lane=5"])
    with pytest.raises(ValueError, match="not a int"):
        DecodeParams.from_pairs(["max_lanes=five"])
    with pytest.raises(ValueError, match="max_lanes"):
        DecodeParams.from_pairs(["max_lanes=0"])
