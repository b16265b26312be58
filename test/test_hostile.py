"""Hostile input (issue 24): what an attacker or a broken device can send the node and the bag tools.

The quick part of the hostile-input suite; ``tools/hostile_barrage.py`` runs the long barrage and the soak
against a live node (docs/node.md, "Hostile input").
"""
from __future__ import annotations

import array
import json
import os
import re
import time
import zlib

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from lanenet_ros.msg import LaneArray  # noqa: E402
from node_fixtures import DOMAIN_ID, camera_header, stripes_image  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from lanenet_ros.image_codec import MAX_PIXELS, ImageError, compressed_size, decode_compressed, image_to_bgr  # noqa: E402
from lanenet_ros.node.params import check  # noqa: E402


def wait(future, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < deadline, "no answer from the parameter service"
        time.sleep(0.02)
    return future.result()


# ---- runtime ground.homography (item 9) --------------------------------------------------------------------
HOMOGRAPHY = [0.0, -0.02, 7.0, -0.01, 0.0, 6.4, 0.0, -0.001, 1.0]


def test_a_homography_arrives_from_the_parameter_service_as_an_array_and_is_accepted():
    check("ground.homography", array.array("d", HOMOGRAPHY))  # what rclpy hands the set-parameters gate


@pytest.mark.ros
def test_ground_homography_set_at_run_time_through_the_parameter_service(ros, model):
    node = ros.lanenet(model=model, tracking=False)
    client = AsyncParameterClient(ros.probe, "/lanenet")
    assert client.wait_for_services(timeout_sec=10.0)
    result = wait(client.set_parameters([Parameter("ground.homography", Parameter.Type.DOUBLE_ARRAY,
                                                   HOMOGRAPHY)])).results[0]
    assert result.successful, result.reason
    assert list(node.get_parameter("ground.homography").value) == HOMOGRAPHY
    bad = wait(client.set_parameters([Parameter("ground.homography", Parameter.Type.DOUBLE_ARRAY,
                                                [1.0, 2.0, 3.0])])).results[0]
    assert not bad.successful and "9 finite numbers" in bad.reason
    node.trigger_deactivate()
    node.trigger_cleanup()
    assert node.start() and node.params.ground_homography == tuple(HOMOGRAPHY)  # in force after a configure


# ---- decompression bombs (item 3) --------------------------------------------------------------------------
def jpeg_declaring(width: int, height: int) -> bytes:
    """A tiny real JPEG (16x16 pixels of data) whose start-of-frame header declares ``width`` x ``height``."""
    data = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny real PNG whose header chunk declares ``width`` x ``height`` (its checksum made to match)."""
    data = bytearray(cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def test_a_tiny_jpeg_declaring_8000x8000_is_refused_before_it_is_decoded():
    bomb = jpeg_declaring(8000, 8000)
    assert len(bomb) < 1000 and compressed_size(bomb) == ("jpeg", 8000, 8000)
    with pytest.raises(ImageError, match=r"8000x8000 .*over the limit of 16\.8 megapixels \(max_pixels\)"):
        decode_compressed(bomb)
    with pytest.raises(ImageError, match="max_pixels"):
        decode_compressed(png_declaring(8000, 8000))


def test_the_pixel_limit_is_a_setting_and_holds_for_raw_images_alike():
    assert MAX_PIXELS == 16 * 1024 * 1024
    frame = jpeg_declaring(640, 480)
    assert compressed_size(frame)[1:] == (640, 480)
    with pytest.raises(ImageError, match="max_pixels"):
        decode_compressed(frame, max_pixels=640 * 480 - 1)
    with pytest.raises(ImageError, match="max_pixels"):
        image_to_bgr("mono8", 640, 480, 640, bytes(640 * 480), max_pixels=100_000)
    assert image_to_bgr("mono8", 640, 480, 640, bytes(640 * 480), max_pixels=640 * 480).shape == (480, 640, 3)


@pytest.mark.ros
def test_the_node_refuses_a_decompression_bomb_and_its_max_pixels_applies_at_once(ros, model):
    node = ros.lanenet(model=model, tracking=False, input="compressed", warn_period=0.1)
    lanes = ros.collect(LaneArray, "lanes")
    pub = ros.publisher(CompressedImage, "image/compressed")
    bomb = jpeg_declaring(8000, 8000)
    ros.feed(pub, lambda i: CompressedImage(header=camera_header(i), format="jpeg", data=bomb),
             lambda: node.stats.totals["bad"] >= 3)
    assert not lanes and node.stats.totals["processed"] == 0
    jpeg = cv2.imencode(".jpg", stripes_image(320, 240))[1].tobytes()
    good = lambda i: CompressedImage(header=camera_header(i), format="jpeg", data=jpeg)  # noqa: E731
    ros.feed(pub, good, lambda: lanes)
    assert node.set_parameters([Parameter("max_pixels", value=320 * 240 - 1)])[0].successful
    bad = node.stats.totals["bad"]
    ros.feed(pub, good, lambda: node.stats.totals["bad"] >= bad + 3)
    assert node.params.max_pixels == 320 * 240 - 1
    raw = ros.lanenet(namespace="raw", model=model, tracking=False, max_pixels=1000)
    ros.feed(ros.publisher(Image, "raw/image"),
             lambda i: Image(header=camera_header(i), encoding="mono8", width=40, height=30, step=40,
                             data=bytes(1200)), lambda: raw.stats.totals["bad"] >= 3)


# ---- what the C decoders print, and user strings in log lines (item 8) -------------------------------------
def noisy_picture() -> np.ndarray:
    return (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)


def damaged_jpeg() -> bytes:
    """A JPEG whose headers are whole but whose compressed pixels are overwritten: libjpeg warns and fills in."""
    data = bytearray(cv2.imencode(".jpg", noisy_picture())[1].tobytes())
    for i in range(data.index(b"\xff\xda") + 30, len(data) - 4, 5):
        data[i] = 0x5A
    return bytes(data)


def test_a_damaged_jpeg_is_refused_with_libjpegs_reason_and_nothing_reaches_stderr(capfd):
    with pytest.raises(ImageError, match=r"corrupt JPEG.*Corrupt JPEG data: premature end of data segment"):
        decode_compressed(damaged_jpeg())
    assert capfd.readouterr().err == ""


def test_harmless_jpeg_warnings_are_silenced_and_the_picture_kept(capfd):
    data = cv2.imencode(".jpg", noisy_picture())[1].tobytes()
    sof = data.index(b"\xff\xc0")
    end = sof + 2 + int.from_bytes(data[sof + 2:sof + 4], "big")
    padded = data[:end] + b"\x01\x02\x03" + data[end:]  # libjpeg: "3 extraneous bytes before marker 0xc4"
    assert np.array_equal(decode_compressed(padded), decode_compressed(data))
    assert capfd.readouterr().err == ""


def test_a_corrupt_png_says_what_libpng_found_and_nothing_reaches_stderr(capfd):
    data = bytearray(cv2.imencode(".png", noisy_picture())[1].tobytes())
    data[data.index(b"IDAT") + 100] ^= 0xFF
    with pytest.raises(ImageError, match=r"corrupt PNG.*libpng error: IDAT: CRC error"):
        decode_compressed(bytes(data))
    assert capfd.readouterr().err == ""


def test_other_output_during_a_decode_still_reaches_stderr(capfd):
    from lanenet_ros.image_codec import decoder_messages

    with decoder_messages() as said:
        os.write(2, b"[INFO] [1.0] [other_node]: written by another thread meanwhile\n")
        os.write(2, b"Corrupt JPEG data: bad Huffman code\n")
    assert said == ["Corrupt JPEG data: bad Huffman code"]
    assert capfd.readouterr().err == "[INFO] [1.0] [other_node]: written by another thread meanwhile\n"


def test_a_64_kib_encoding_name_is_cut_short_in_the_reason():
    with pytest.raises(ImageError) as caught:
        image_to_bgr("x" * 65536, 4, 3, 12, bytes(36))
    assert len(str(caught.value)) < 600 and "65536 characters" in str(caught.value)
    with pytest.raises(ImageError) as caught:
        decode_compressed(b"\x89PNG", "compressedDepth " * 4096)
    assert len(str(caught.value)) < 600


@pytest.mark.ros
def test_bad_frames_leave_only_throttled_short_lines_in_the_log(ros, model, capfd):
    node = ros.lanenet(model=model, tracking=False, input="compressed", warn_period=60.0,
                       **{"qos.reliability": "reliable", "qos.depth": 50})
    pub = ros.publisher(CompressedImage, "image/compressed", depth=100)
    damaged = damaged_jpeg()
    ros.feed(pub, lambda i: CompressedImage(header=camera_header(i), format="jpeg", data=damaged),
             lambda: node.stats.totals["bad"] >= 40, period=0.01)
    raw = ros.lanenet(namespace="raw", model=model, tracking=False, warn_period=60.0)
    ros.feed(ros.publisher(Image, "raw/image"),
             lambda i: Image(header=camera_header(i), encoding="e" * 65536, width=4, height=3, step=12,
                             data=bytes(36)), lambda: raw.stats.totals["bad"] >= 5)
    err = capfd.readouterr().err
    assert err.count("Corrupt JPEG data") == 1  # in the one warning, as its reason
    assert err.count("skipped a bad image") == 2  # one per node: the rest within warn_period
    assert max(len(line) for line in err.splitlines()) < 1000


# ---- corrupt bags (item 4) ---------------------------------------------------------------------------------
def synth_bag(root, storage: str, compressed: bool):
    """A 12-frame synthetic drive bag, written by lanenet-train synth --bag as a user would."""
    from lanenet_train.cli import main as train_main

    bag = root / f"{storage}{'_jpeg' if compressed else ''}"
    args = ["synth", "--bag", "--count", "12", "--seed", "7", "--width", "320", "--height", "180", "--storage", storage,
            "--out", str(bag)]
    assert train_main(args + (["--compressed"] if compressed else [])) == 0
    return bag


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    return {(storage, compressed): synth_bag(root, storage, compressed)
            for storage in ("sqlite3", "mcap") for compressed in (False, True)}


def damaged(bag, tmp_path, how: str):
    """A copy of ``bag`` with its data file truncated or 4 KiB overwritten (fixed pseudo-random bytes)."""
    import shutil

    copy = tmp_path / f"{bag.name}_{how}"
    shutil.copytree(bag, copy)
    data = next(p for p in copy.iterdir() if p.suffix in (".db3", ".mcap"))
    size = data.stat().st_size
    if how.startswith("truncate"):
        os.truncate(data, size // 2 if how == "truncate_half" else size - 64)
    else:
        where = {"overwrite_mid": 0.5, "overwrite_late": 0.75}[how]
        with open(data, "r+b") as f:
            f.seek(int(size * where))
            f.write(np.random.default_rng(24).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return copy


def replay_cli(bag, out, capsys) -> tuple[int, str, dict | None]:
    from lanenet_ros.replay import cli as replay

    code = replay.main([str(bag), "--out", str(out), "--backend", "onnxruntime-cpu"])
    err = capsys.readouterr().err
    report = out / "report.json"
    return code, err, json.loads(report.read_text())["summary"] if report.exists() else None


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "jpeg"])
@pytest.mark.parametrize("how", ["truncate_half", "truncate_end", "overwrite_mid", "overwrite_late"])
def test_a_damaged_bag_gives_one_line_and_never_a_silent_success(bags, tmp_path, capsys, storage, compressed,
                                                                 how):
    bag = damaged(bags[storage, compressed], tmp_path, how)
    code, err, summary = replay_cli(bag, tmp_path / "out", capsys)
    lines = [line for line in err.splitlines() if line.startswith("lanenet-replay:")]
    assert "Traceback" not in err
    if storage == "sqlite3" and not compressed and how == "overwrite_late" and code == 0:
        # sqlite3 keeps no checksums: bytes changed inside a picture's pixels cannot be noticed
        assert summary["frames"] == 12 and not lines
        return
    assert code in (2, 3) and len(lines) == 1, err
    if code == 2:  # nothing could be read: the bag does not open
        assert "cannot open the bag" in lines[0] and summary is None
    else:  # the rest replayed; which messages were lost is said and listed
        assert re.search(r"\d+ of 12 messages of /camera/image_raw could not be read \(#\d+", lines[0])
        assert summary["frames"] + summary["unreadable_messages"] == 12 and summary["unreadable"]


def test_bytes_changed_inside_a_picture_of_an_mcap_bag_are_found(bags, tmp_path, capsys):
    """The case of the issue: 4 KiB overwritten mid-file, and the replay said all 12 frames were processed."""
    bag = damaged(bags["mcap", False], tmp_path, "overwrite_mid")
    code, err, summary = replay_cli(bag, tmp_path / "out", capsys)
    assert code == 3 and "Chunk checksum mismatch" in err
    assert summary["unreadable_messages"] > 0 and summary["frames"] < 12


def test_a_whole_bag_still_replays_with_exit_0(bags, tmp_path, capsys):
    code, err, summary = replay_cli(bags["mcap", True], tmp_path / "out", capsys)
    assert code == 0 and summary["frames"] == 12 and summary["unreadable"] == [], err


def test_reading_a_damaged_bag_without_a_list_stops_at_the_first_bad_message(bags, tmp_path):
    from lanenet_ros.replay.bags import BagError, Unreadable, read_images

    bag = damaged(bags["mcap", False], tmp_path, "overwrite_mid")  # mcap: chunk checksums
    with pytest.raises(BagError, match=r"message #\d+"):
        list(read_images(bag))
    lost: list[Unreadable] = []
    read = list(read_images(bag, unreadable=lost))
    assert lost and len(read) + sum(item.count for item in lost) == 12
    assert [item.index for item in read] == sorted(item.index for item in read)  # positions in the bag


@pytest.mark.parametrize("args, reason", [
    (["--rate", "1e-300"], "--rate"),
    (["--rate", "nan"], "--rate"),
    (["--start", "1e30"], "--start"),
    (["--start", "-5"], "--start"),
    (["--topic", "bad topic!"], "--topic"),
])
def test_lanenet_bag_refuses_hostile_arguments_in_one_line(tmp_path, capsys, args, reason):
    from lanenet_ros.replay.bags import main as bag_main

    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "a.png"), noisy_picture())
    assert bag_main([*args, "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "bag")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "frame/s" not in line]  # not tqdm's
    assert len(lines) == 1 and lines[0].startswith("lanenet-bag: error:") and reason in lines[0], lines
    assert not (tmp_path / "bag").exists()


@pytest.mark.parametrize("args, reason", [
    (["--width", "100000", "--height", "100000"], "absurd"),
    (["--width", "8000", "--height", "8000"], "max_pixels"),
    (["--fps", "1e-300"], "--fps"),
    (["--start", "-5"], "--start"),
    (["--topic", "bad topic!"], "--topic"),
])
def test_synth_bag_refuses_hostile_arguments_in_one_line(tmp_path, capsys, args, reason):
    from lanenet_train.cli import main as train_main

    assert train_main(["synth", "--bag", "--count", "2", *args, "--out", str(tmp_path / "bag")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "frame/s" not in line]  # not tqdm's
    assert len(lines) == 1 and lines[0].startswith("lanenet-train synth:") and reason in lines[0], lines
    assert not (tmp_path / "bag").exists()


def test_lanenet_bag_refuses_a_truncated_jpeg_among_its_images(tmp_path, capsys):
    from lanenet_ros.replay.bags import main as bag_main

    (tmp_path / "imgs").mkdir()
    jpeg = cv2.imencode(".jpg", noisy_picture())[1].tobytes()
    (tmp_path / "imgs" / "a.jpg").write_bytes(jpeg)
    (tmp_path / "imgs" / "b.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    assert bag_main(["--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "bag")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lanenet-bag:")]
    assert len(lines) == 1 and "b.jpg: not a readable image (JPEG stream" in lines[0], lines


# ---- live replay that the node mostly did not answer (item 5) ----------------------------------------------
@pytest.mark.ros
def test_a_live_replay_fails_when_the_node_answered_too_few_frames(bags, ros, model, tmp_path, capsys,
                                                                   monkeypatch):
    from lanenet_ros.replay import cli as replay

    # newest frame only (depth 1); reliable, so that no frame of the paced replay is lost in transport
    ros.lanenet(model=model, tracking=False, **{"qos.reliability": "reliable"})
    monkeypatch.setenv("ROS_DOMAIN_ID", str(DOMAIN_ID))  # replay's own rclpy context joins the node's domain
    bag = [str(bags["sqlite3", False]), "--live", "--wait", "20", "--image-topic", "image"]
    # 1000 times the recorded rate: 12 frames within about 12 ms, more than the node can take
    assert replay.main([*bag, "--out", str(tmp_path / "fast"), "--rate-scale", "1000"]) == 4
    err = capsys.readouterr().err
    assert re.search(r"lanenet-replay: the node answered \d+ of 12 frames published \(\d+%\), fewer than "
                     r"--min-answered 80%", err), err
    summary = json.loads((tmp_path / "fast" / "report.json").read_text())["summary"]
    assert summary["published"] == 12 and summary["frames"] < 0.8 * 12
    assert replay.main([*bag, "--out", str(tmp_path / "lenient"), "--rate-scale", "1000",
                        "--min-answered", "0"]) == 0
    assert replay.main([*bag, "--out", str(tmp_path / "paced"), "--rate-scale", "2"]) == 0  # 20 Hz: all answered


def test_min_answered_must_be_a_share(capsys):
    from lanenet_ros.replay import cli as replay

    with pytest.raises(SystemExit):
        replay.main(["bag", "--out", "x", "--min-answered", "80"])
    assert "must be a share between 0 and 1" in capsys.readouterr().err


def test_a_jpeg_with_an_exif_orientation_decodes_as_stored_not_as_corrupt():
    """A camera (or phone) JPEG tagged "rotate 90": the pixels come back as stored, as ROS image transport does."""
    import struct

    picture = np.zeros((40, 80, 3), np.uint8)
    picture[:, :40] = 255
    jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
    tiff = b"II*\x00" + struct.pack("<IHHHIHHI", 8, 1, 0x0112, 3, 1, 6, 0, 0)  # one entry: Orientation = 6
    exif = b"Exif\x00\x00" + tiff
    tagged = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]
    out = decode_compressed(tagged)
    assert out.shape == (40, 80, 3) and out[20, 10].min() > 200 and out[20, 70].max() < 50
