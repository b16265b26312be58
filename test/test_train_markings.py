"""The learned marking type and colour, training side: the generator labels each lane's marking, convert keeps
it in lane-id order, the dataset turns it into per-pixel targets that follow flips (a solid-dashed line
mirrored is dashed-solid), and a LaneNet with `model_config.marking_output` learns it and exports it."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lanenet_ros.lanes import LEARNED_COLORS, LEARNED_TYPES, MarkingColor, MarkingType
from lanenet_train.augment import hflip
from lanenet_train.data.formats import _tusimple_line
from lanenet_train.data.sources import BadInputError
from lanenet_train.datasets import marking_targets

REPO = Path(__file__).resolve().parent.parent


def cli(*args):
    return subprocess.run([sys.executable, "-m", "lanenet_train.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)


def test_marking_targets_follow_the_lane_ids_and_mirror_with_the_image():
    instance = np.zeros((4, 6), np.uint8)
    instance[:, 1], instance[:, 4] = 1, 2
    kinds, colors = marking_targets(instance, [(MarkingType.SOLID_DASHED, MarkingColor.YELLOW),
                                               (MarkingType.DASHED, MarkingColor.WHITE)], instance.shape)
    sd = LEARNED_TYPES.index(MarkingType.SOLID_DASHED)
    assert (kinds[:, 1] == sd).all() and (kinds[:, 4] == LEARNED_TYPES.index(MarkingType.DASHED)).all()
    assert (colors[:, 1] == LEARNED_COLORS.index(MarkingColor.YELLOW)).all()
    assert (kinds[:, [0, 2, 3, 5]] == 255).all() and (colors[:, 0] == 255).all()  # off the lanes: ignored
    # a type the network does not learn (ROAD_EDGE), and samples without markings: ignored
    unknown, _ = marking_targets(instance, [(MarkingType.ROAD_EDGE, MarkingColor.WHITE)], instance.shape)
    assert (unknown == 255).all()
    assert (marking_targets(None, None, (4, 6))[0] == 255).all()
    assert (marking_targets(instance, None, (4, 6))[1] == 255).all()

    from lanenet_train.datasets import _IDENTITY, _MIRROR_TYPES
    image = np.zeros((4, 6, 3), np.uint8)
    stack = np.dstack([instance > 0, kinds, colors]).astype(np.uint8)
    _, flipped, ids = hflip(image, stack, instance, np.stack([_IDENTITY, _MIRROR_TYPES, _IDENTITY]))
    ds = LEARNED_TYPES.index(MarkingType.DASHED_SOLID)
    assert (flipped[:, 4, 1] == ds).all()  # the solid side is on the right now
    assert (flipped[:, 1, 1] == LEARNED_TYPES.index(MarkingType.DASHED)).all()  # a symmetric type stays
    assert (flipped[:, 4, 2] == colors[:, 1]).all() and (ids[:, 4] == 2).all()


def test_tusimple_markings_are_checked_naming_the_line(tmp_path):
    line = {"raw_file": "a.jpg", "h_samples": [10, 20], "lanes": [[1, 2], [3, 4]],
            "markings": [["DASHED", "WHITE"], ["SOLID", "YELLOW"]]}
    assert _tusimple_line(tmp_path / "l.json", 3, json.dumps(line))["markings"][1] == ["SOLID", "YELLOW"]
    with pytest.raises(BadInputError, match=r"l.json:3: markings must be a list .* one per lane \(2\)"):
        _tusimple_line(tmp_path / "l.json", 3, json.dumps({**line, "markings": [["DASHED", "WHITE"]]}))
    with pytest.raises(BadInputError, match=r"l.json:4: markings\[1\] must be \[type, colour\].*'RED!'"):
        _tusimple_line(tmp_path / "l.json", 4, json.dumps({**line, "markings": [["DASHED", "WHITE"],
                                                                                   ["SOLID", "RED!"]]}))


def test_generator_labels_markings_and_convert_keeps_them_in_lane_id_order(tmp_path):
    raw, data = tmp_path / "raw", tmp_path / "data"
    made = cli("synth", "--format", "tusimple", "--out", raw, "--count", "4", "--width", "256", "--height", "144",
               "--seed", "4", "--val-fraction", "0", "--label-lanes", "all", "--nproc", "1",
               "--config", "two_way_prob=1")
    assert made.returncode == 0, made.stderr[-2000:]
    labels = [json.loads(line) for line in (raw / "label_data_train.json").read_text().splitlines()]
    assert all(len(label["markings"]) == len(label["lanes"]) for label in labels)
    assert any(t in ("DOUBLE_SOLID", "SOLID_DASHED", "DASHED_SOLID", "DASHED") and c == "YELLOW"
               for label in labels for t, c in label["markings"])  # two-way roads: a yellow centre line
    converted = cli("convert", "--format", "tusimple", "--input", raw, "--output", data, "--lane-width", "3",
                    "--val-fraction", "0")
    assert converted.returncode == 0, converted.stderr[-2000:]
    by_image = {label["raw_file"]: label for label in labels}
    for record in map(json.loads, (data / "index.jsonl").read_text().splitlines()):
        label = by_image[record["meta"]["source"]]
        h = label["h_samples"]
        assert len(record["markings"]) == len(record["lanes"])
        for lane, marking in zip(record["lanes"], record["markings"], strict=True):
            # find the label lane with these points: its marking is the record's, as values
            (source,) = [k for k, xs in enumerate(label["lanes"])
                         if [[float(x), float(y)] for x, y in zip(xs, h, strict=True) if x >= 0] == lane]
            t, c = label["markings"][source]
            assert marking == [int(MarkingType[t]), int(MarkingColor[c])]


@pytest.mark.slow
def test_heads_train_alone_beside_a_frozen_network_and_export(tmp_path):
    raw, data = tmp_path / "raw", tmp_path / "data"
    assert cli("synth", "--format", "tusimple", "--out", raw, "--count", "6", "--width", "256", "--height", "144",
               "--seed", "5", "--val-fraction", "0", "--label-lanes", "all", "--label-hood", "--nproc", "1",
               "--config", "hood_prob=0.75").returncode == 0
    assert cli("convert", "--format", "tusimple", "--input", raw, "--output", data, "--lane-width", "3",
               "--val-fraction", "0").returncode == 0
    assert cli("stats", "--dataset", data).returncode == 0
    base = (f'dataset_config {{ data_sources {{ dataset_root: "{data}" }} '
            'target_class_mapping { key: "lane" value: "lane" } num_workers: 0 }\n'
            "model_config { input_image_width: 128 input_image_height: 64 width_multiplier: 0.125 %s }\n"
            "train_config { batch_size: 2 epochs: 1 log_interval: 1 validation_interval: 0 %s }\n")
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text(base % ("", ""))
    assert cli("train", "-e", first, "-r", tmp_path / "lanes").returncode == 0
    second.write_text(base % ("hood_output: true marking_output: true",
                              f'train_only: "heads" '
                              f'pretrained_model_path: "{tmp_path / "lanes" / "latest.pth"}"'))
    trained = cli("train", "-e", second, "-r", tmp_path / "heads")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "has no heads.deep or heads.fuse or heads.hood or heads.marking; they start from fresh weights" \
        in trained.stderr
    steps = [json.loads(line) for line in (tmp_path / "heads" / "metrics.jsonl").read_text().splitlines()]
    assert all(k in steps[0] for k in ("marking_type", "marking_color", "hood"))
    import torch
    before = torch.load(tmp_path / "lanes" / "latest.pth", weights_only=True)["model_state"]
    after = torch.load(tmp_path / "heads" / "latest.pth", weights_only=True)["model_state"]
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # the lane network did not move
    trained_heads = [v for k, v in after.items() if k.startswith("heads.")
                     and k.endswith("running_mean")]
    assert trained_heads and all(v.abs().sum() > 0 for v in trained_heads)  # batch norm starts at 0: it trained

    onnx_path = tmp_path / "m.onnx"
    exported = cli("export", "-m", tmp_path / "heads" / "latest.pth", "-o", onnx_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    from lanenet_ros.model_info import read_model_info
    assert read_model_info(onnx_path).output_for("marking_logits") == "marking_logits"
    from lanenet_train.onnx_weights import compare_with_onnx, rebuild
    model, payload = rebuild(onnx_path, calibration_frames=2)
    assert payload["spec"]["model_config"]["marking_output"] is True
    assert set(compare_with_onnx(model, onnx_path)) >= {"binary_logits", "hood_logits", "marking_logits"}
