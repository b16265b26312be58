"""`lanenet-train stats` (ENet class weights) and the canonical layout reader."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanenet_train.cli import main
from lanenet_train.data.layout import DatasetError, load_dataset, read_dataset_meta, write_dataset_meta
from lanenet_train.data.stats import enet_weights


def folder_dataset(tmp_path: Path) -> Path:
    """Train: 140 background, 40 class 1, 10 class 2 and 10 ignored pixels; val: 100 of class 2."""
    src = tmp_path / "src"
    masks = {"train/a": np.zeros((10, 10), np.uint8), "train/b": np.zeros((10, 10), np.uint8),
             "val/c": np.full((10, 10), 2, np.uint8)}
    masks["train/a"][:4] = 1
    masks["train/b"][:1] = 2
    masks["train/b"][9] = 255
    for name, m in masks.items():
        (src / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        (src / "masks" / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / "images" / f"{name}.png"), np.zeros((10, 10, 3), np.uint8))
        cv2.imwrite(str(src / "masks" / f"{name}.png"), m)
    (src / "classes.json").write_text(json.dumps([{"id": 0, "name": "background"}, {"id": 1, "name": "lane"},
                                                  {"id": 2, "name": "curb", "color": [9, 9, 9]}]))
    out = tmp_path / "ds"
    assert main(["convert", "--format", "folder", "--input", str(src), "--output", str(out), "--nproc", "1"]) == 0
    return out


def test_enet_weights_written_into_dataset_json(tmp_path):
    ds = folder_dataset(tmp_path)
    assert main(["stats", "--dataset", str(ds), "--nproc", "1"]) == 0
    meta = read_dataset_meta(ds)
    assert meta["pixel_counts"] == [140, 40, 10]  # row 9 of b is ignore (255)
    total = 190
    expected = [1 / math.log(1.02 + n / total) for n in (140, 40, 10)]
    assert meta["class_weights"] == pytest.approx(expected, rel=1e-5)
    assert meta["class_weights_method"] == "enet: w = 1 / ln(1.02 + p)"
    assert meta["class_weights"][2] > meta["class_weights"][1] > meta["class_weights"][0]
    assert main(["stats", "--dataset", str(ds), "--split", "all", "--nproc", "1"]) == 0
    assert read_dataset_meta(ds)["pixel_counts"] == [140, 40, 110]


def test_enet_weight_bounds():
    w = enet_weights(np.array([1_000_000, 0]))
    assert w[1] == pytest.approx(1 / math.log(1.02)) and w[0] == pytest.approx(1 / math.log(2.02))


def test_manual_weights_and_their_errors(tmp_path, capsys):
    ds = folder_dataset(tmp_path)
    assert main(["stats", "--dataset", str(ds), "--weights", "1.5,2.3,4", "--nproc", "1"]) == 0
    meta = read_dataset_meta(ds)
    assert meta["class_weights"] == [1.5, 2.3, 4.0] and meta["class_weights_method"] == "manual"
    assert main(["stats", "--dataset", str(ds), "--weights", "1.5,2.3"]) == 1
    assert "--weights: need 3" in capsys.readouterr().err
    assert main(["stats", "--dataset", str(ds), "--split", "test"]) == 1
    assert "--split test: no samples" in capsys.readouterr().err


def test_stats_survive_an_unchanged_reconversion_and_reset_on_change(tmp_path):
    ds = folder_dataset(tmp_path)
    assert main(["stats", "--dataset", str(ds), "--nproc", "1"]) == 0
    args = ["convert", "--format", "folder", "--input", str(tmp_path / "src"), "--output", str(ds), "--nproc", "1"]
    assert main(args) == 0
    assert read_dataset_meta(ds)["class_weights"] is not None
    cv2.imwrite(str(tmp_path / "src/masks/train/a.png"), np.ones((10, 10), np.uint8))
    assert main(args) == 0
    assert read_dataset_meta(ds)["class_weights"] is None


def test_layout_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset\.json: not found"):
        load_dataset(tmp_path)
    write_dataset_meta(tmp_path, {"format": "lanenet-dataset", "version": 1, "classes": [], "ignore_index": 255})
    (tmp_path / "index.jsonl").write_text('{"id": "train/a", "split": "train", "image": "a.jpg"}\n{"id": \n')
    with pytest.raises(DatasetError, match=r"index.jsonl:2: not valid JSON"):
        load_dataset(tmp_path)
    (tmp_path / "index.jsonl").write_text('{"id": "train/a", "split": "train"}\n')
    with pytest.raises(DatasetError, match=r"index.jsonl:1: sample lacks \['image'\]"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="lacks 'classes'"):
        write_dataset_meta(tmp_path, {"format": "lanenet-dataset", "version": 1})
