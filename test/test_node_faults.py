"""Bad camera messages do not stop the node: thousands of malformed images interleaved with good ones are
skipped with a throttled warning, and the node keeps answering the good frames."""
from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from lanenet_ros.msg import LaneArray  # noqa: E402
from node_fixtures import camera_header, frame_seq, stripes_image  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from lanenet_ros.node.convert import bgr8_msg  # noqa: E402

pytestmark = pytest.mark.ros


def bad_images() -> list[Image]:
    """One of each way a raw image message can be broken (plus tiny valid ones the pipeline may refuse)."""
    def image(encoding="bgr8", width=8, height=4, step=None, data=None, big=0):
        step = width * 3 if step is None else step
        data = bytes(step * height) if data is None else data
        return Image(encoding=encoding, width=width, height=height, step=step, data=data, is_bigendian=big)
    return [
        image(encoding="bgr16"), image(encoding="32FC1"), image(encoding=""), image(encoding="BGR8"),
        image(step=10), image(data=bytes(50)), image(data=b""), image(data=bytes(200)),
        image(width=100000, height=100000, step=300000, data=bytes(64)), image(width=0, height=0, step=0),
        image(encoding="yuyv", width=7, step=14, data=bytes(56)), image(step=2**31, data=bytes(32)),
        image(encoding="mono16", width=2, height=2, step=5, data=bytes(10), big=1),  # odd step: unaligned
        image(width=1, height=1, step=3, data=b"\xff\xff\xff"), image(width=2, height=4000, step=6),
    ]


def bad_jpegs() -> list[bytes]:
    good = cv2.imencode(".jpg", stripes_image(160, 120))[1].tobytes()
    corrupt = bytearray(good)
    dht = corrupt.index(b"\xff\xc4")
    corrupt[dht + 4:dht + 34] = b"\x13" * 30
    absurd = bytearray(good)
    sof = absurd.index(b"\xff\xc0")
    absurd[sof + 5:sof + 9] = b"\xff\xff\xff\xff"
    return [b"", good[:len(good) // 2], bytes(corrupt), bytes(absurd), b"\xff\xd8" + os.urandom(300),
            b"\x89PNG\r\n\x1a\n" + bytes(40), b"GIF89a...."]


def barrage(ros, node, pub, bad: list, good, n_bad: int, lanes: list) -> None:
    """Publish ``n_bad`` bad messages, about 1 kHz, with a good frame after every 50th, then check the node
    still works. Bad frames that arrive while a good one is processed are replaced unseen (newest frame only);
    the others reach the converter."""
    for i in range(n_bad):
        msg = bad[i % len(bad)]
        msg.header = camera_header(i)
        pub.publish(msg)
        if i % 50 == 49:
            pub.publish(good(i))
        time.sleep(0.0005)
    assert node._workers and all(worker.is_alive() for worker in node._workers)
    done = n_bad + 1000
    ros.feed(pub, lambda i: good(done + i), lambda: any(frame_seq(m.header) >= done for m in lanes))
    answer = next(m for m in lanes if frame_seq(m.header) >= done)
    assert len(answer.lanes) == 2


def test_thousands_of_bad_raw_images_among_good_ones(ros, model, capfd):
    node = ros.lanenet(model=model, tracking=False, warn_period=30.0,
                       **{"qos.reliability": "reliable", "qos.depth": 50})
    lanes = ros.collect(LaneArray, "lanes", depth=200)
    image = stripes_image(320, 240)
    barrage(ros, node, ros.publisher(Image, "image", depth=100), bad_images(),
            lambda i: bgr8_msg(image, camera_header(i)), 3000, lanes)
    totals = node.stats.totals
    assert totals["bad"] >= 500 and totals["processed"] > 10, totals  # most others: replaced in the mailbox
    assert totals["received"] >= totals["bad"] + totals["processed"]
    warnings = capfd.readouterr().err.count("skipped a bad image")
    assert 1 <= warnings <= 3  # throttled: one line per warn_period, not one per bad message


def test_thousands_of_bad_compressed_images_among_good_ones(ros, model):
    node = ros.lanenet(model=model, tracking=False, input="compressed",
                       **{"qos.reliability": "reliable", "qos.depth": 50})
    lanes = ros.collect(LaneArray, "lanes", depth=200)
    jpeg = cv2.imencode(".jpg", stripes_image(320, 240))[1].tobytes()
    bad = [CompressedImage(format="jpeg", data=data) for data in bad_jpegs()]
    bad.append(CompressedImage(format="16UC1; compressedDepth png", data=cv2.imencode(".png", np.zeros((4, 4),
                                                                                                   np.uint16))[1]
                               .tobytes()))
    barrage(ros, node, ros.publisher(CompressedImage, "image/compressed", depth=100), bad,
            lambda i: CompressedImage(header=camera_header(i), format="jpeg", data=jpeg), 2000, lanes)
    assert node.stats.totals["bad"] >= 500, node.stats.totals
