"""The network-learned bonnet: synth labels it, convert draws it as class `hood`, a LaneNet with
`model_config.hood_output` learns it (hood_logits), export carries it, and the decoder ends lanes at it;
models without it keep the image search."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from lanenet_ros.decode import hood
from lanenet_ros.decode.decoder import DecodeParams, LaneDecoder
from lanenet_ros.preprocess import Geometry

REPO = Path(__file__).resolve().parent.parent


def cli(*args):
    return subprocess.run([sys.executable, "-m", "lanenet_train.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)


def _geometry(w=128, h=64, src_w=1280, src_h=720):
    return Geometry(src_width=src_w, src_height=src_h, crop_top=0, input_width=w, input_height=h)


def test_edge_from_logits_finds_a_bonnet_and_rejects_none():
    geo = _geometry()
    logits = np.full((64, 128), -5.0, np.float32)
    rows = np.arange(64)[:, None]
    cols = np.arange(128)[None, :]
    top = 58 - 2.0 * (1 - ((cols - 63.5) / 64) ** 2)  # bulging up in the middle
    logits[rows >= top] = 5.0
    edge = hood.edge_from_logits(logits, geo)
    assert edge is not None
    # network row 58 starts at camera row 58 * 11.25 - 0.5; the middle bulges two network rows higher
    assert abs(float(edge.row_at(0)) - 58 * 11.25 + 0.5) < 12
    assert float(edge.row_at(640)) < float(edge.row_at(0)) - 11
    assert hood.edge_from_logits(np.full((64, 128), -5.0, np.float32), geo) is None
    high = np.full((64, 128), -5.0, np.float32)
    high[20:] = 5.0  # "bonnet" up to a third of the image: not one
    assert hood.edge_from_logits(high, geo) is None


def _outputs(with_hood: bool):
    """Two straight lanes over the whole height, and (optionally) a bonnet over the bottom 8 rows."""
    h, w = 64, 128
    binary = np.zeros((2, h, w), np.float32)
    binary[0] = 4.0
    emb = np.zeros((4, h, w), np.float32)
    for k, x0 in enumerate((30, 98)):
        for r in range(10, h):
            x = round(x0 + (64 - x0) * (h - 1 - r) / 80)
            binary[1, r, x - 1:x + 2] = 8.0
            emb[k, r, x - 1:x + 2] = 5.0
    out = {"binary_logits": binary, "embedding": emb}
    if with_hood:
        hood_logits = np.full((1, h, w), -6.0, np.float32)
        hood_logits[0, 56:] = 6.0
        out["hood_logits"] = hood_logits
    return out


_INFO = SimpleNamespace(architecture="lanenet", class_names=["background", "lane"], lane_class_ids=[1],
                        embedding_dim=4, outputs={"binary_logits": "binary_logits", "embedding": "embedding",
                                                  "hood_logits": "hood_logits"})


def test_decoder_ends_lanes_at_the_learned_bonnet_and_falls_back_without_it():
    geo = _geometry()
    decoder = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10))
    with_hood = decoder.decode(_outputs(True), geo)
    without = decoder.decode(_outputs(False), geo)
    assert len(with_hood.lanes) == len(without.lanes) == 2
    edge = 56 * 11.25 - 0.5
    for lane in with_hood.lanes:
        assert lane.y_max < edge
    for lane in without.lanes:
        assert lane.y_max > edge + 50  # no camera image, no hood output: lanes run to the bottom as before
    assert not with_hood.class_mask[int(edge) + 2:].any()
    assert abs(with_hood.hood_row - edge) < 12 and without.hood_row == -1.0  # what the frame reports
    quarter = _outputs(True)  # the bonnet at stride 4 (no resize in the network): resized by the decoder
    quarter["hood_logits"] = np.ascontiguousarray(quarter["hood_logits"][:, 2::4, 2::4])
    assert abs(decoder.decode(quarter, geo).hood_row - with_hood.hood_row) < 24
    given = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10, hood=0.0)).decode(_outputs(True), geo)
    assert all(lane.y_max > edge + 50 for lane in given.lanes)  # hood=0: no bonnet, whatever the model says


@pytest.mark.slow
def test_bonnet_labels_train_export_and_decode(tmp_path):
    raw, data = tmp_path / "raw", tmp_path / "data"
    made = cli("synth", "--format", "tusimple", "--out", raw, "--count", "8", "--width", "256", "--height", "144",
               "--seed", "4", "--val-fraction", "0.25", "--label-lanes", "all", "--label-hood", "--nproc", "1",
               "--config", "hood_prob=0.75", "--config", "real_hood_prob=1")
    assert made.returncode == 0, made.stderr[-2000:]
    labels = [json.loads(line) for line in (raw / "label_data_train.json").read_text().splitlines()]
    assert all("hood" in label for label in labels) and any(label["hood"] for label in labels)
    converted = cli("convert", "--format", "tusimple", "--input", raw, "--output", data, "--lane-width", "3")
    assert converted.returncode == 0, converted.stderr[-2000:]
    meta = json.loads((data / "dataset.json").read_text())
    assert [c["name"] for c in meta["classes"]] == ["background", "lane", "hood"]
    records = [json.loads(line) for line in (data / "index.jsonl").read_text().splitlines()]
    with_hood = next(r for r in records if r["hood"])
    mask = cv2.imread(str(data / with_hood["mask"]), cv2.IMREAD_UNCHANGED)
    assert mask[-1].min() == 2 and (mask == 2).mean() > 0.03  # the bottom row is bonnet
    assert cli("stats", "--dataset", data).returncode == 0
    spec = tmp_path / "spec.txt"
    spec.write_text(f"""
dataset_config {{ data_sources {{ dataset_root: "{data}" }} validation_data_sources {{ dataset_root: "{data}" }}
                  target_class_mapping {{ key: "lane" value: "lane" }} num_workers: 0 }}
model_config {{ input_image_width: 128 input_image_height: 64 width_multiplier: 0.125 hood_output: true
                painted_output: true }}
train_config {{ batch_size: 2 epochs: 1 log_interval: 1 }}""")
    run = tmp_path / "run"
    trained = cli("train", "-e", spec, "-r", run)
    assert trained.returncode == 0, trained.stderr[-3000:]
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("hood" in r and "painted" in r for r in steps), steps[:2]  # the bonnet and painted terms
    onnx_path = tmp_path / "m.onnx"
    exported = cli("export", "-m", run / "latest.pth", "-o", onnx_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    from lanenet_ros.pipeline import LanePipeline
    pipe = LanePipeline(onnx_path, backend="onnxruntime-cpu", tracking=False)
    assert pipe.info.output_for("hood_logits") == "hood_logits"
    assert pipe.info.output_for("painted_logits") == "painted_logits"
    frame = pipe.process(cv2.imread(str(data / with_hood["image"])))
    assert frame.class_mask.shape == (144, 256)
    # the exported model rebuilds as a torch checkpoint (train --from-default, the recipe's default.pth)
    from lanenet_train.onnx_weights import compare_with_onnx, rebuild
    model, payload = rebuild(onnx_path, calibration_frames=2)
    assert payload["spec"]["model_config"]["hood_output"] is payload["spec"]["model_config"]["painted_output"] is True
    assert set(compare_with_onnx(model, onnx_path)) >= {"binary_logits", "embedding", "hood_logits", "painted_logits"}


def _step(model, hood_target, settings=None):
    import torch

    from lanenet_train.distributed import World
    from lanenet_train.engine import LossSettings, train_step

    torch.manual_seed(0)
    batch = {"image": torch.randn(2, 3, 64, 128), "mask": torch.randint(0, 2, (2, 64, 128)),
             "instance": torch.randint(0, 3, (2, 64, 128)), "hood": hood_target}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-2)
    settings = settings or LossSettings([1.0, 5.0], regularizer="L2", regularizer_weight=1e-4)
    return train_step(model, batch, optimizer, None, settings, World(), False)


def test_train_only_the_bonnet_head_leaves_the_lane_network_as_it_was():
    import torch

    from lanenet_train.models.lanenet import LaneNet
    from lanenet_train.train import freeze

    model = LaneNet(width_multiplier=0.125, hood=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = freeze(model, ["heads"])
    assert frozen and model not in frozen and model.heads not in frozen and model.stage1 in frozen
    model.train()
    for module in frozen:
        module.eval()
    target = torch.zeros(2, 64, 128, dtype=torch.long)
    target[:, 56:] = 1
    _step(model, target)
    after = model.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed and all(k.startswith("heads.") for k in changed), changed[:5]  # BN statistics too
    assert any(k.endswith("running_mean") for k in changed)  # the head's own batch norm does train

    with pytest.raises(ValueError, match="'hood' is not a module of this network; its modules are initial"):
        freeze(LaneNet(width_multiplier=0.125, hood=True), ["hood"])
    # only a part that no loss term reads: said plainly rather than as a torch error
    from lanenet_train.engine import LossSettings

    other = LaneNet(width_multiplier=0.125)
    freeze(other, ["embedding_decoder"])
    with pytest.raises(ValueError, match=r"no loss term of this batch \(segmentation\) reaches the trained"):
        _step(other, target, LossSettings([1.0, 5.0], embedding_weight=0.0))
    assert freeze(other, []) == []


def test_far_end_paint_moves_the_far_end_back_to_the_paint():
    from lanenet_ros.decode import far_end
    from lanenet_ros.decode.fitting import sample_points
    from lanenet_ros.lanes import DetectedLane

    image = np.full((720, 1280, 3), 70, np.uint8)
    cv2.line(image, (640, 400), (640, 719), (230, 230, 230), 6)  # paint ends at row 400
    coeffs = np.array([640.0, 0.0])
    lane = DetectedLane(image_coeffs=coeffs, y_min=340.0, y_max=719.0, points=sample_points(coeffs, 340, 719, 10))
    moved = far_end.end_at_paint(image, lane, 0.1 * 720, 10.0)
    assert abs(moved.y_min - 400) <= 2 and moved.points[-1, 1] == moved.y_min
    assert abs(far_end.end_at_paint(image, moved, 72.0, 10.0).y_min - moved.y_min) <= 1  # on paint: stays
    blank = np.full_like(image, 70)
    assert far_end.end_at_paint(blank, lane, 72.0, 10.0) is lane  # no paint seen: a faint line is not cut


def test_real_road_options_bonnet_labels_and_barrier():
    import dataclasses

    from lanenet_train.synth import SynthConfig
    from lanenet_train.synth.cli import config_overrides
    from lanenet_train.synth.render import render_frame
    from lanenet_train.synth.world import build_world

    cfg = SynthConfig(width=320, height=180, hood_prob=1.0, real_hood_prob=1.0)
    frame = render_frame(cfg, 5)
    edge = np.asarray(frame.hood_edge)
    assert edge.shape == (65, 2) and edge[:, 1].min() > 180 * 0.85 and edge[:, 1].max() < 180
    for lane in frame.lanes:  # lanes end at the bonnet's edge
        assert (lane.points[:, 1] <= np.interp(lane.points[:, 0], edge[:, 0], edge[:, 1]) + 1e-6).all()
    assert render_frame(dataclasses.replace(cfg, hood_prob=0.0), 5).hood_edge == []
    barrier = dataclasses.replace(cfg, median_barrier_prob=1.0, two_way_prob=0.0)
    world = build_world(barrier, np.random.default_rng(3), 300.0)
    assert world.scene.scenery.left == "nj_barrier"
    assert 0.3 <= world.road.edge_left - world.road.boundaries[0].offset <= 1.2
    assert config_overrides(["curve_hold_m=10,50", "lanes=2,3", "real_hood_prob=0.5"]) == {
        "curve_hold_m": (10.0, 50.0), "lanes": (2, 3), "real_hood_prob": 0.5}
    with pytest.raises(ValueError, match="SynthConfig field"):
        config_overrides(["no_such=1"])
