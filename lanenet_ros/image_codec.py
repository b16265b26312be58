"""Camera image bytes to BGR numpy arrays, without ROS (the fields of sensor_msgs/Image, CompressedImage).

Everything a camera driver can get wrong is checked before a byte is read: unknown encodings, ``step``
smaller than a row, data that is empty, truncated or longer than ``step * height``, absurd dimensions, images
over the pixel limit (``max_pixels``; for JPEG and PNG read from the header before decoding, so a tiny file
declaring a huge picture costs nothing) and corrupt or truncated JPEG / PNG streams. Each raises
:class:`ImageError` with the reason, so the node can skip the frame and go on. ``bgr8`` (and ``8UC3``) come
back as a view of the message buffer, row padding included, without a copy; the other encodings need one
conversion pass (OpenCV, a few hundred microseconds at 1280x720).
"""
from __future__ import annotations

import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import cv2
import numpy as np

MAX_SIDE = 16384
"""Largest width or height accepted; anything bigger is a corrupt header, not a camera."""
MAX_PIXELS = 16 * 1024 * 1024
"""Default largest width * height accepted (16.8 megapixels: 4K and most machine-vision cameras fit); the
node's ``max_pixels`` parameter changes it."""


class ImageError(ValueError):
    """An image message that cannot be turned into a picture; the message says why."""


def clip(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters (saying how long it was), so that no sender can flood a log line."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def quoted(value: str, limit: int = 64) -> str:
    """``repr(value)`` of a string a message sent, cut to about ``limit`` characters."""
    return repr(value) if len(value) <= limit else f"{clip(value, limit)!r}"


@dataclass(frozen=True)
class _Layout:
    channels: int
    dtype: str  # numpy dtype of one channel ("u1" or "u2"); byte order from is_bigendian
    to_bgr: int | None  # cv2.COLOR_* code, None when already BGR (or handled specially)


_LAYOUTS: dict[str, _Layout] = {
    "bgr8": _Layout(3, "u1", None),
    "rgb8": _Layout(3, "u1", cv2.COLOR_RGB2BGR),
    "bgra8": _Layout(4, "u1", cv2.COLOR_BGRA2BGR),
    "rgba8": _Layout(4, "u1", cv2.COLOR_RGBA2BGR),
    "mono8": _Layout(1, "u1", cv2.COLOR_GRAY2BGR),
    "mono16": _Layout(1, "u2", cv2.COLOR_GRAY2BGR),
    # ROS "yuv422" is UYVY byte order; "yuv422_yuy2" is YUYV. Two bytes per pixel.
    "yuv422": _Layout(2, "u1", cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": _Layout(2, "u1", cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": _Layout(2, "u1", cv2.COLOR_YUV2BGR_YUYV),
    "yuyv": _Layout(2, "u1", cv2.COLOR_YUV2BGR_YUYV),
    # OpenCV names Bayer patterns by the second row's first two pixels, ROS by the first row's.
    "bayer_rggb8": _Layout(1, "u1", cv2.COLOR_BayerBG2BGR),
    "bayer_bggr8": _Layout(1, "u1", cv2.COLOR_BayerRG2BGR),
    "bayer_gbrg8": _Layout(1, "u1", cv2.COLOR_BayerGR2BGR),
    "bayer_grbg8": _Layout(1, "u1", cv2.COLOR_BayerGB2BGR),
    # Generic OpenCV type names, read as their usual meaning.
    "8UC1": _Layout(1, "u1", cv2.COLOR_GRAY2BGR),
    "8UC3": _Layout(3, "u1", None),
    "8UC4": _Layout(4, "u1", cv2.COLOR_BGRA2BGR),
    "16UC1": _Layout(1, "u2", cv2.COLOR_GRAY2BGR),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)
"""Encodings :func:`image_to_bgr` understands."""


def check_dimensions(width: int, height: int, max_pixels: int = MAX_PIXELS) -> None:
    """Reject sizes no camera produces (zero, negative, beyond :data:`MAX_SIDE`) and those over the limit.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        max_pixels: largest width * height accepted.

    Raises:
        ImageError: when the size is empty, absurd or over ``max_pixels``.
    """
    if width <= 0 or height <= 0:
        raise ImageError(f"image size {width}x{height} is empty: width and height must be positive")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageError(f"image size {width}x{height} is absurd (limit {MAX_SIDE} per side): the header is "
                         "probably corrupt")
    if width * height > max_pixels:
        raise ImageError(f"image size {width}x{height} ({width * height / 1e6:.1f} megapixels) is over the "
                         f"limit of {max_pixels / 1e6:.1f} megapixels (max_pixels)")


def _buffer(data: object) -> np.ndarray:
    """A flat uint8 view of bytes, bytearray, memoryview, array.array or a numpy array."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError as exc:
        raise ImageError(f"image data of type {type(data).__name__} is not a byte buffer") from exc


def image_view(encoding: str, width: int, height: int, step: int, data: object,
               is_bigendian: int = 0, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The pixels of a raw image as a (height, width[, channels]) numpy view of ``data`` (no copy).

    Row padding (``step`` larger than a row) stays in the view's strides. Multi-byte channels use the
    message's byte order.

    Args:
        encoding: sensor_msgs/Image encoding, one of :data:`SUPPORTED_ENCODINGS`.
        width: pixels per row.
        height: rows.
        step: bytes from the start of one row to the start of the next.
        data: the pixel bytes (any object with the buffer protocol).
        is_bigendian: 1 when multi-byte channels are big-endian.
        max_pixels: largest width * height accepted.

    Returns:
        A read-only or writable view, depending on ``data``.

    Raises:
        ImageError: for an unknown encoding, absurd dimensions or more than ``max_pixels``, a ``step`` shorter
            than a row, or data whose size is not ``step * height``.
    """
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageError(f"unknown image encoding {quoted(encoding)}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    check_dimensions(width, height, max_pixels)
    if layout.channels == 2 and width % 2:
        raise ImageError(f"{encoding} packs pixel pairs, so the width must be even, got {width}")
    item = np.dtype((">" if is_bigendian else "<") + layout.dtype)
    row_bytes = width * layout.channels * item.itemsize
    if step < row_bytes:
        raise ImageError(f"step {step} is shorter than one row of {width} {encoding} pixels "
                         f"({row_bytes} bytes)")
    buf = _buffer(data)
    if buf.size == 0:
        raise ImageError(f"image data is empty, expected {step * height} bytes "
                         f"({height} rows of step {step})")
    if buf.size != step * height:
        what = "truncated" if buf.size < step * height else "longer than its header says"
        raise ImageError(f"image data is {what}: {buf.size} bytes, but step {step} x height {height} "
                         f"= {step * height}")
    shape = (height, width) if layout.channels == 1 else (height, width, layout.channels)
    strides = (step, item.itemsize) if layout.channels == 1 else (step, layout.channels * item.itemsize,
                                                                   item.itemsize)
    return np.ndarray(shape, dtype=item, buffer=buf, strides=strides)


def image_to_bgr(encoding: str, width: int, height: int, step: int, data: object,
                 is_bigendian: int = 0, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Convert the fields of a sensor_msgs/Image to a (height, width, 3) uint8 BGR array.

    ``bgr8`` and ``8UC3`` return a view of ``data`` (no copy, possibly read-only and with row padding in
    its strides). ``mono16`` is scaled to 8 bits over its full range (value / 257), as cv_bridge does.

    Args:
        encoding: sensor_msgs/Image encoding, one of :data:`SUPPORTED_ENCODINGS`.
        width: pixels per row.
        height: rows.
        step: bytes per row including padding.
        data: the pixel bytes.
        is_bigendian: 1 when multi-byte channels are big-endian.
        max_pixels: largest width * height accepted.

    Returns:
        The image in BGR order.

    Raises:
        ImageError: see :func:`image_view`.
    """
    view = image_view(encoding, width, height, step, data, is_bigendian, max_pixels)
    code = _LAYOUTS[encoding].to_bgr
    if code is None:
        return view
    if view.dtype.itemsize == 2:
        # One rounding pass to 8 bits; astype also brings big-endian data to native order.
        view = ((view.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return cv2.cvtColor(view, code)


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(buf: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment, checking the stream is whole."""
    if buf.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise ImageError(f"JPEG stream of {len(buf)} bytes is truncated (no end-of-image marker)")
    pos = 2
    while pos + 4 <= len(buf):
        if buf[pos] != 0xFF:
            raise ImageError(f"corrupt JPEG: expected a marker at byte {pos}")
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", buf[pos + 2:pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(buf):
                break
            height, width = struct.unpack(">HH", buf[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    raise ImageError("corrupt JPEG: no start-of-frame segment with the image size")


def _png_size(buf: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, checking the stream is whole."""
    if len(buf) < 33 or buf[12:16] != b"IHDR":
        raise ImageError(f"corrupt PNG: {len(buf)} bytes without a header chunk")
    if buf[-12:-4] != b"\x00\x00\x00\x00IEND":
        raise ImageError(f"PNG stream of {len(buf)} bytes is truncated (no IEND chunk)")
    width, height = struct.unpack(">II", buf[16:24])
    return width, height


def compressed_size(data: object) -> tuple[str, int, int]:
    """Format and size of a compressed image, read from its header without decoding it.

    Args:
        data: the bytes of a JPEG or PNG file.

    Returns:
        ("jpeg" | "png", width, height).

    Raises:
        ImageError: for empty data, an unknown format, or a truncated or corrupt header.
    """
    buf = _buffer(data).tobytes()
    if not buf:
        raise ImageError("compressed image data is empty")
    if buf[:2] == b"\xff\xd8":
        return ("jpeg", *_jpeg_size(buf))
    if buf[:8] == b"\x89PNG\r\n\x1a\n":
        return ("png", *_png_size(buf))
    raise ImageError(f"compressed image is neither JPEG nor PNG (first bytes {buf[:4].hex()})")


def decode_compressed(data: object, fmt: str = "", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage payload (JPEG or PNG) to a (H, W, 3) uint8 BGR array.

    The size is read from the header first: a picture over ``max_pixels`` is refused before any decoding.

    Args:
        data: the compressed bytes.
        fmt: the message's ``format`` field (for example ``"bgr8; jpeg compressed bgr8"``); only used to
            refuse ``compressedDepth`` streams, which hold depth, not a picture.
        max_pixels: largest width * height accepted.

    Returns:
        The decoded image in BGR order (grey images are expanded to three channels).

    Raises:
        ImageError: for empty, truncated or corrupt data, absurd dimensions, more than ``max_pixels`` or a
            depth stream.
    """
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise ImageError(f"compressed format {quoted(fmt)} is a depth image; lane detection needs a camera "
                         "picture")
    kind, width, height = compressed_size(data)
    check_dimensions(width, height, max_pixels)
    with decoder_messages() as said:
        # as stored: an EXIF orientation is not applied (as ROS image transport decodes), so the size is the header's
        image = cv2.imdecode(_buffer(data), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    damage = [line for line in said if not _HARMLESS.search(line)]
    if image is None or image.shape[:2] != (height, width) or damage:
        why = f" ({clip('; '.join(damage), 200)})" if damage else ""
        raise ImageError(f"corrupt {kind.upper()}: the {width}x{height} image could not be decoded{why}")
    return image


# libjpeg and libpng print their warnings and errors on stderr from C, past the node's log throttle (one
# line per bad frame). While a picture is decoded, file descriptor 2 points at a scratch file instead: the
# decoders' lines become the ImageError's reason, anything else written meanwhile goes on to stderr.
_DECODER_LINE = re.compile(r"^(Corrupt JPEG data|Premature end of JPEG|Invalid SOS parameters|Inconsistent "
                           r"progression|Unknown Adobe color|Application transferred too many|Warning: unknown "
                           r"JFIF|libpng (warning|error)|\[ *(WARN|ERROR|INFO)[^]]*\] global )")
_HARMLESS = re.compile(r"extraneous bytes before marker|bad ICC marker|unknown JFIF|Unknown Adobe color|"
                       r"Invalid SOS parameters|libpng warning|\[ *INFO")
"""Decoder lines about a picture that decoded whole: stray bytes between segments, unknown metadata."""


class _ScratchStderr:
    """A scratch file that stands in for stderr (file descriptor 2) during a decode, one decode at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.file: IO[bytes] | None = None

    def fileno(self) -> int:
        if self.file is None:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 - open for the life of the process
        return self.file.fileno()


_SCRATCH = _ScratchStderr()


@contextmanager
def decoder_messages() -> Iterator[list[str]]:
    """Catch what C code prints on stderr in the ``with`` block; yields the list the decoders' lines go into.

    Lines that do not come from libjpeg, libpng or OpenCV (another thread's log line) are written on to
    stderr when the block ends. Decodes in several threads take turns.
    """
    said: list[str] = []
    with _SCRATCH.lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # stderr closed or missing: nothing to catch
            yield said
            return
        scratch = _SCRATCH.fileno()
        os.dup2(scratch, 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            text = os.pread(scratch, os.lseek(scratch, 0, os.SEEK_END), 0)
            os.ftruncate(scratch, 0)
            os.lseek(scratch, 0, os.SEEK_SET)
        others = []
        for line in text.decode("utf-8", "replace").splitlines(keepends=True):
            if _DECODER_LINE.match(line):
                said.append(line.rstrip())
            else:
                others.append(line)
        if others:
            os.write(2, "".join(others).encode())
