"""Datasets and augmentation: canonical layout and TAO folders, class mapping, weights, flips keep lane order."""
import dataclasses

import cv2
import numpy as np
import pytest
from train_fixture import draw_sample, make_dataset

from lanenet_train.augment import Augmenter, crop_and_resize, hflip, order_instances
from lanenet_train.data.layout import DatasetError, read_dataset_meta, write_dataset_meta
from lanenet_train.data.stats import enet_weights
from lanenet_train.datasets import build_dataset, class_weights_for
from lanenet_train.spec import parse_spec
from lanenet_train.spec.schema import ClassMapping


def spec_for(root, extra="", overrides=()):
    return parse_spec(f"""
dataset_config {{ data_sources {{ dataset_root: "{root}" }} validation_data_sources {{ dataset_root: "{root}" }} }}
model_config {{ input_image_width: 64 input_image_height: 32 }}
{extra}""", "t", overrides)


def lane_x_at_bottom(instance):
    out = {}
    for lane in sorted(set(np.unique(instance)) - {0, 255}):
        ys, xs = np.nonzero(instance == lane)
        out[int(lane)] = xs[ys == ys.max()].mean()
    return out


def test_canonical_dataset_gives_normalised_tensors_at_input_size(tmp_path):
    root = make_dataset(tmp_path / "d")
    spec = spec_for(root, "augmentation_config { horizontal_flip: 0 crop_and_resize_prob: 0 brightness: 0 "
                          "contrast: 0 saturation: 0 }")
    train, table = build_dataset(spec.dataset_config.data_sources, spec, train=True)
    val, _ = build_dataset(spec.dataset_config.validation_data_sources, spec, train=False)
    assert (len(train), len(val)) == (6, 2)
    item = train[0]
    assert item["image"].shape == (3, 32, 64) and item["mask"].shape == (32, 64)
    assert set(item["mask"].unique().tolist()) == {0, 1}
    assert set(item["instance"].unique().tolist()) == {0, 1, 2, 3}
    assert -3 < item["image"].min() < item["image"].max() < 3
    assert table.names == ["background", "lane"]
    x = lane_x_at_bottom(item["instance"].numpy())
    assert x[1] < x[2] < x[3]


def test_class_mapping_merges_classes_and_weights_follow_pixel_counts(tmp_path):
    root = make_dataset(tmp_path / "d", classes=3)
    spec = spec_for(root, overrides=["model_config.architecture=deeplabv3plus"])
    spec.dataset_config.target_class_mapping = [
        ClassMapping("mark1", "solid"), ClassMapping("mark2", "solid"), ClassMapping("mark3", "dashed")]
    train, table = build_dataset(spec.dataset_config.data_sources, spec, train=True)
    assert table.names == ["background", "solid", "dashed"]
    assert set(train[0]["mask"].unique().tolist()) == {0, 1, 2}
    weights = class_weights_for(spec.loss_config, table)
    assert weights == pytest.approx(enet_weights(np.array(table.pixel_counts)))
    assert weights[0] == min(weights) and weights[0] < 2  # background is the most common class
    spec.loss_config.class_weights = [1.0, 2.0]
    with pytest.raises(ValueError, match="2 values for 3 classes"):
        class_weights_for(spec.loss_config, table)


def test_tao_folder_source_reads_images_and_masks(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(2):
            image, mask, _, _ = draw_sample(rng, 96, 48)
            (tmp_path / split / "images").mkdir(parents=True, exist_ok=True)
            (tmp_path / split / "labels").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / split / "images" / f"{i}.jpg"), image)
            cv2.imwrite(str(tmp_path / split / "labels" / f"{i}.png"), mask)
    spec = parse_spec(f"""dataset_config {{
  data_sources: {{ label_directory_path: "{tmp_path}/train/labels" image_directory_path: "{tmp_path}/train/images" }}
  image_extension: "jpg"
  target_class_mapping {{ key: "lane" value: "lane" }} }}
model_config {{ input_image_width: 64 input_image_height: 32 }}""", "t")
    train, table = build_dataset(spec.dataset_config.data_sources, spec, train=False)
    assert len(train) == 2 and table.names == ["background", "lane"]
    assert train[1]["mask"].max() == 1 and (train[1]["instance"] == 255).all()  # no instances: ignored
    (tmp_path / "train" / "labels" / "1.png").unlink()
    with pytest.raises(DatasetError, match=r"1\.png: label for 1\.jpg not found"):
        build_dataset(spec.dataset_config.data_sources, spec, train=True)


def test_hflip_mirrors_and_renumbers_lanes_left_to_right():
    image, mask, instance, _ = draw_sample(np.random.default_rng(3), 128, 64, n_lanes=3)
    before = lane_x_at_bottom(instance)
    image2, mask2, inst2 = hflip(image, mask, instance)
    after = lane_x_at_bottom(inst2)
    assert after[1] < after[2] < after[3]
    # the old rightmost lane (3) is now the leftmost (1), at the mirrored position
    assert after[1] == pytest.approx(127 - before[3])
    assert np.array_equal(image2[:, ::-1], image) and np.array_equal(mask2[:, ::-1], mask)


def test_crop_and_resize_zooms_and_drops_lanes_outside_the_window():
    image, mask, instance, _ = draw_sample(np.random.default_rng(4), 128, 64, n_lanes=3)
    img2, mask2, inst2 = crop_and_resize(image, mask, instance, zoom=2.0, fx=0.0, fy=1.0)
    assert img2.shape == image.shape and mask2.shape == mask.shape
    lanes = sorted(set(np.unique(inst2)) - {0})
    assert lanes == list(range(1, len(lanes) + 1)) and len(lanes) < 3
    assert np.array_equal(mask2 > 0, inst2 > 0)


def test_order_instances_keeps_ignore_and_augmenter_is_deterministic_per_seed():
    inst = np.zeros((4, 6), np.uint8)
    inst[:, 5], inst[:, 1], inst[0, 0] = 7, 9, 255
    ordered = order_instances(inst)
    assert ordered[0, 1] == 1 and ordered[0, 5] == 2 and ordered[0, 0] == 255
    image, mask, instance, _ = draw_sample(np.random.default_rng(5), 64, 32)
    aug = Augmenter(horizontal_flip=0.5, crop_and_resize_prob=0.5, zoom_max=1.5)
    a = aug(np.random.default_rng((1, 2, 3)), image, mask, instance)
    b = aug(np.random.default_rng((1, 2, 3)), image, mask, instance)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], image)  # photometric jitter changed the pixels


def test_weights_from_data_need_the_counts_of_every_source(tmp_path):
    """Two sources whose pixel counts add up; one without counts (no `stats` run) is an error naming it."""
    a, b = make_dataset(tmp_path / "a"), make_dataset(tmp_path / "b", seed=1)
    spec = spec_for(a)
    spec.dataset_config.data_sources.append(dataclasses.replace(spec.dataset_config.data_sources[0],
                                                                dataset_root=str(b)))
    _, table = build_dataset(spec.dataset_config.data_sources, spec, train=True)
    counts = np.add(read_dataset_meta(a)["pixel_counts"], read_dataset_meta(b)["pixel_counts"])
    assert class_weights_for(spec.loss_config, table) == pytest.approx(enet_weights(counts))
    meta = read_dataset_meta(b)
    write_dataset_meta(b, dict(meta, pixel_counts=None))
    _, table = build_dataset(spec.dataset_config.data_sources, spec, train=True)
    with pytest.raises(ValueError, match=f"{b} has no pixel counts; run `lanenet-train stats --dataset {b}`"):
        class_weights_for(spec.loss_config, table)
    spec.loss_config.class_weights_from_dataset = False
    assert class_weights_for(spec.loss_config, table) is None
