"""Raw and compressed camera images to BGR: every encoding from hand-made bytes, and every way a driver can
get the fields wrong."""
from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

from lanenet_ros.image_codec import (
    SUPPORTED_ENCODINGS,
    ImageError,
    compressed_size,
    decode_compressed,
    image_to_bgr,
)

# A 3x4 test card: each pixel a distinct BGR colour, so a swapped channel or a shifted row shows.
CARD = np.array([[[10 * r + c, 100 + 10 * r + c, 200 + 10 * r + c] for c in range(4)] for r in range(3)],
                dtype=np.uint8)


def padded(rows: np.ndarray, pad: int) -> tuple[bytes, int]:
    """Row bytes with `pad` junk bytes after each row, as some drivers publish them; returns (data, step)."""
    flat = rows.reshape(rows.shape[0], -1).view(np.uint8)
    junk = np.full((flat.shape[0], pad), 0xAB, dtype=np.uint8)
    return np.hstack([flat, junk]).tobytes(), flat.shape[1] + pad


@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize("encoding, pixels", [
    ("bgr8", CARD), ("8UC3", CARD), ("rgb8", CARD[:, :, ::-1]),
    ("bgra8", np.dstack([CARD, np.full(CARD.shape[:2], 7, np.uint8)])),
    ("8UC4", np.dstack([CARD, np.full(CARD.shape[:2], 7, np.uint8)])),
    ("rgba8", np.dstack([CARD[:, :, ::-1], np.full(CARD.shape[:2], 7, np.uint8)])),
])
def test_colour_encodings_give_the_same_bgr_picture(encoding, pixels, pad):
    data, step = padded(np.ascontiguousarray(pixels), pad)
    out = image_to_bgr(encoding, 4, 3, step, data)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, CARD)


def test_bgr8_is_a_view_of_the_message_buffer_even_with_row_padding():
    data, step = padded(CARD, 8)
    buf = array.array("B", data)  # what rclpy puts in Image.data
    out = image_to_bgr("bgr8", 4, 3, step, buf)
    assert np.shares_memory(out, np.frombuffer(buf, np.uint8))
    buf[step + 3] = 77  # row 1, pixel 1, blue
    assert out[1, 1, 0] == 77


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_becomes_grey_bgr(encoding):
    grey = np.array([[0, 50, 255], [1, 2, 3]], dtype=np.uint8)
    data, step = padded(grey, 3)
    out = image_to_bgr(encoding, 3, 2, step, data)
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


@pytest.mark.parametrize("bigendian", [0, 1])
def test_mono16_is_scaled_to_eight_bits_in_its_byte_order(bigendian):
    values = np.array([[0, 257, 65535], [32896, 1000, 128]], dtype=np.uint16)
    raw = values.astype(">u2" if bigendian else "<u2").tobytes()
    out = image_to_bgr("mono16", 3, 2, 6, raw, is_bigendian=bigendian)
    expected = np.array([[0, 1, 255], [128, 4, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(out[:, :, 0], expected)
    np.testing.assert_array_equal(out[:, :, 2], expected)


def test_mono16_with_the_wrong_byte_order_flag_reads_differently():
    raw = np.array([[256]], dtype="<u2").tobytes()  # little endian: 256 -> 1; read as big endian: 1 -> 0
    assert image_to_bgr("mono16", 1, 1, 2, raw, 0)[0, 0, 0] == 1
    assert image_to_bgr("mono16", 1, 1, 2, raw, 1)[0, 0, 0] == 0


# BT.601 limited range: Y=81 U=90 V=240 is pure red, Y=145 U=54 V=34 pure green, Y=41 U=240 V=110 pure blue.
RED, GREEN, BLUE = (81, 90, 240), (145, 54, 34), (41, 240, 110)


@pytest.mark.parametrize("encoding, order", [("yuv422", "uyvy"), ("uyvy", "uyvy"),
                                             ("yuv422_yuy2", "yuyv"), ("yuyv", "yuyv")])
def test_yuv422_pixel_pairs_decode_to_their_colours(encoding, order):
    def pair(y, u, v):
        return [u, y, v, y] if order == "uyvy" else [y, u, y, v]
    row = pair(*RED) + pair(*GREEN) + pair(*BLUE) + [0, 0]  # 6 pixels, 2 bytes padding
    out = image_to_bgr(encoding, 6, 2, 14, bytes(row * 2))
    assert out.shape == (2, 6, 3)
    expected = np.array([[0, 0, 255]] * 2 + [[0, 255, 0]] * 2 + [[255, 0, 0]] * 2)
    assert np.abs(out[1].astype(int) - expected).max() <= 3


@pytest.mark.parametrize("encoding, offsets", [  # offsets: (row, col) of R, then B, in the 2x2 tile
    ("bayer_rggb8", ((0, 0), (1, 1))), ("bayer_bggr8", ((1, 1), (0, 0))),
    ("bayer_gbrg8", ((1, 0), (0, 1))), ("bayer_grbg8", ((0, 1), (1, 0))),
])
def test_bayer_mosaics_of_a_flat_colour_decode_to_that_colour(encoding, offsets):
    b, g, r = 40, 120, 220
    mosaic = np.full((8, 8), g, dtype=np.uint8)
    (rr, rc), (br, bc) = offsets
    mosaic[rr::2, rc::2] = r
    mosaic[br::2, bc::2] = b
    out = image_to_bgr(encoding, 8, 8, 8, mosaic.tobytes())
    assert np.abs(out[2:6, 2:6].astype(int) - [b, g, r]).max() <= 2


def test_every_supported_encoding_is_covered_by_a_test_above():
    tested = {"bgr8", "8UC3", "rgb8", "bgra8", "8UC4", "rgba8", "mono8", "8UC1", "mono16", "16UC1",
              "yuv422", "uyvy", "yuv422_yuy2", "yuyv",
              "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8"}
    assert set(SUPPORTED_ENCODINGS) == tested
    out = image_to_bgr("16UC1", 1, 1, 2, np.array([[65535]], "<u2").tobytes())
    assert out.tolist() == [[[255, 255, 255]]]


@pytest.mark.parametrize("args, reason", [
    (("bgr16", 4, 3, 24, bytes(72)), "unknown image encoding 'bgr16'"),
    (("bgr8", 4, 3, 12, b""), "empty"),
    (("bgr8", 4, 3, 12, bytes(35)), "truncated: 35 bytes"),
    (("bgr8", 4, 3, 12, bytes(37)), "longer than its header says"),
    (("bgr8", 4, 3, 10, bytes(30)), "step 10 is shorter than one row"),
    (("mono16", 4, 3, 4, bytes(12)), "step 4 is shorter"),
    (("bgr8", 0, 3, 0, b""), "empty: width and height must be positive"),
    (("bgr8", -4, 3, 12, bytes(36)), "must be positive"),
    (("bgr8", 100000, 2, 300000, b"\x00"), "absurd"),
    (("mono8", 10000, 10000, 10000, b"\x00"), "10000x10000 .* is over the limit of 16.8 megapixels"),
    (("yuyv", 5, 2, 10, bytes(20)), "width must be even"),
    (("bgr8", 1, 1, 3, "abc"), "not a byte buffer"),
])
def test_bad_fields_are_refused_with_the_reason(args, reason):
    with pytest.raises(ImageError, match=reason.replace("(", r"\(")):
        image_to_bgr(*args)


def encoded(ext: str, image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :32] = (255, 0, 0)
    image[:, 32:] = (0, 0, 255)
    return image


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_jpeg_and_png_decode_to_the_same_bgr_picture(ext, picture):
    data = array.array("B", encoded(ext, picture))
    assert compressed_size(data)[1:] == (64, 48)
    out = decode_compressed(data, "bgr8; jpeg compressed bgr8")
    assert out.shape == (48, 64, 3)
    assert np.abs(out.astype(int) - picture).mean() < 3


def test_grey_jpeg_comes_back_with_three_channels(picture):
    out = decode_compressed(encoded(".jpg", cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)))
    assert out.shape == (48, 64, 3)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_streams_are_refused(ext, picture):
    data = encoded(ext, picture)
    for cut in (len(data) // 2, len(data) - 3, 10):
        with pytest.raises(ImageError, match=r"truncated|corrupt"):
            decode_compressed(data[:cut])


def test_corrupt_jpeg_body_is_refused(picture):
    data = bytearray(encoded(".jpg", picture))
    dht = data.index(b"\xff\xc4")
    data[dht + 4:dht + 34] = b"\x13" * 30  # garbage Huffman table: size and end marker intact
    assert compressed_size(bytes(data))[1:] == (64, 48)
    with pytest.raises(ImageError, match="corrupt JPEG"):
        decode_compressed(bytes(data))


def test_absurd_size_in_a_jpeg_header_is_refused_before_decoding(picture):
    data = bytearray(encoded(".jpg", picture))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    with pytest.raises(ImageError, match="absurd"):
        decode_compressed(bytes(data))


@pytest.mark.parametrize("data, fmt, reason", [
    (b"", "jpeg", "empty"),
    (b"GIF89a" + bytes(40), "gif", "neither JPEG nor PNG"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "png", "corrupt PNG"),
    (b"\xff\xd8\xff\xd9", "jpeg", "no start-of-frame"),
    (b"\x89PNG", "16UC1; compressedDepth png", "depth image"),
])
def test_bad_compressed_payloads_are_refused_with_the_reason(data, fmt, reason):
    with pytest.raises(ImageError, match=reason):
        decode_compressed(data, fmt)
