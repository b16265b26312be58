"""lanenet-bag: bags of camera images from folders and videos, in both storages, read back exactly."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lanenet_ros.replay.bags import image_topics, main, read_images


def numbered_images(folder: Path, count: int = 6) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    rng = np.random.default_rng(3)
    for i in range(count):
        image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), image)
        images.append(image)
    return images


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_images_folder_round_trips_losslessly(tmp_path, storage):
    images = numbered_images(tmp_path / "imgs")
    bag = tmp_path / "bag"
    assert main(["--images", str(tmp_path / "imgs"), "--out", str(bag), "--storage", storage, "--rate", "4",
                 "--topic", "/cam/front/image_raw", "--frame-id", "front_cam", "--start", "100"]) == 0
    assert image_topics(bag) == {"/cam/front/image_raw": "sensor_msgs/msg/Image"}
    read = list(read_images(bag))
    assert len(read) == len(images)
    for i, (item, image) in enumerate(zip(read, images, strict=True)):
        assert np.array_equal(item.image, image)
        assert item.stamp_ns == item.timestamp_ns == 100 * 10**9 + i * 250_000_000
        assert item.frame_id == "front_cam"


def test_compressed_bag_from_a_video(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(7):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    writer.release()
    bag = tmp_path / "bag"
    assert main(["--video", str(video), "--out", str(bag), "--compressed", "--limit", "5"]) == 0
    assert image_topics(bag) == {"/camera/image_raw": "sensor_msgs/msg/CompressedImage"}
    read = list(read_images(bag))
    assert len(read) == 5
    assert [int(item.image.mean() / 30 + 0.5) for item in read] == [0, 1, 2, 3, 4]


def test_errors_name_the_problem_and_leave_nothing_behind(tmp_path, capsys):
    numbered_images(tmp_path / "imgs", 2)
    (tmp_path / "imgs" / "frame_999.png").write_bytes(b"not a png")
    bag = tmp_path / "bag"
    assert main(["--images", str(tmp_path / "imgs"), "--out", str(bag)]) == 2
    assert "frame_999.png: not a readable image" in capsys.readouterr().err
    assert not bag.exists() and not (tmp_path / "bag.partial").exists()
    (tmp_path / "empty").mkdir()
    assert main(["--images", str(tmp_path / "empty"), "--out", str(bag)]) == 2
    assert "no images" in capsys.readouterr().err
    bag.mkdir()
    assert main(["--images", str(tmp_path / "imgs"), "--out", str(bag)]) == 2
    assert "exists already" in capsys.readouterr().err


def test_reading_a_missing_topic_lists_the_topics_there(tmp_path):
    numbered_images(tmp_path / "imgs", 1)
    main(["--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "bag")])
    with pytest.raises(ValueError, match=r"no image topic '/other'.*'/camera/image_raw'"):
        list(read_images(tmp_path / "bag", "/other"))


def test_a_synthetic_drive_bag_comes_from_the_training_toolkit(tmp_path, capsys):
    import json

    from lanenet_ros.replay.bags import labels_path
    from lanenet_train.cli import main as train_main

    assert main(["--synth", "3", "--out", str(tmp_path / "old"), "--rate", "5"]) == 2
    assert "lanenet-train synth --bag --count 3 --seed 7 --fps 5 --out" in capsys.readouterr().err
    out = tmp_path / "drive"
    assert train_main(["synth", "--bag", "--count", "3", "--width", "320", "--height", "192", "--seed", "5",
                       "--fps", "5", "--storage", "mcap", "--out", str(out)]) == 0
    images = list(read_images(out))
    labels = [json.loads(line) for line in labels_path(out).read_text().splitlines()]
    assert [label["timestamp_ns"] for label in labels] == [image.timestamp_ns for image in images]
    assert len(images) == 3 and images[1].timestamp_ns - images[0].timestamp_ns == 2 * 10**8
    assert images[0].image.shape == (192, 320, 3) and all(label["lanes"] for label in labels)
    assert train_main(["synth", "--bag", "--count", "3", "--out", str(out)]) == 2  # never over a bag
    assert "exists already" in capsys.readouterr().err


def test_a_synthetic_bag_carries_its_camera_as_camera_info(tmp_path):
    import json

    from lanenet_ros.replay.bags import labels_path
    from lanenet_ros.replay.camera import bag_camera_info
    from lanenet_train.cli import main as train_main

    bag = tmp_path / "drive"
    assert train_main(["synth", "--bag", "--count", "2", "--width", "320", "--height", "180", "--out", str(bag)]) == 0
    camera = json.loads(labels_path(bag).read_text().splitlines()[0])["camera"]
    intrinsics = bag_camera_info(bag)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == pytest.approx(
        (camera["fx"], camera["fy"], camera["cx"], camera["cy"]))
    assert (intrinsics.k1, intrinsics.k2) == pytest.approx((camera["k1"], camera["k2"]))
