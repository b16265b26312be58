"""Preprocessor output against a direct formula, and Geometry undoing crop + resize exactly."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lanenet_ros.preprocess import Geometry, Preprocessor

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def test_constant_colour_normalised_in_network_channel_order() -> None:
    image = np.zeros((90, 160, 3), np.uint8)
    image[:] = (10, 100, 200)  # B, G, R
    for order, rgb in (("rgb", (200, 100, 10)), ("bgr", (10, 100, 200))):
        batch, _ = Preprocessor(64, 32, MEAN, STD, channel_order=order)(image)
        assert batch.shape == (1, 3, 32, 64) and batch.dtype == np.float32
        expected = (np.array(rgb) / 255.0 - MEAN) / STD
        np.testing.assert_allclose(batch[0, :, 5, 7], expected, rtol=1e-6)
        assert np.ptp(batch[0], axis=(1, 2)).max() == 0


def test_matches_reference_resize_and_formula() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    batch, geo = Preprocessor(80, 40, MEAN, STD, roi_top=0.25)(image)
    assert geo.crop_top == 30
    ref = cv2.resize(image[30:], (80, 40), interpolation=cv2.INTER_LINEAR)[:, :, ::-1] / 255.0
    ref = ((ref - MEAN) / STD).transpose(2, 0, 1)
    np.testing.assert_allclose(batch[0], ref, atol=1e-5)


def test_roi_top_drops_the_sky() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    image[:40] = 255  # bright sky in the top 40 % of rows
    batch, geo = Preprocessor(50, 30, (0, 0, 0), (1, 1, 1), roi_top=0.4)(image)
    assert geo.crop_top == 40
    assert batch.max() == 0.0
    kept, _ = Preprocessor(50, 30, (0, 0, 0), (1, 1, 1), roi_top=0.0)(image)
    assert kept.max() == 1.0


def test_point_found_in_input_maps_back_to_camera() -> None:
    image = np.zeros((720, 1280, 3), np.uint8)
    image[500:510, 900:910] = 255  # a small bright square centred at (904.5, 504.5)
    batch, geo = Preprocessor(512, 256, (0, 0, 0), (1, 1, 1), roi_top=0.3)(image)
    lum = batch[0].sum(0)
    ys, xs = np.nonzero(lum > 0)
    w = lum[ys, xs]
    x, y = geo.to_camera(np.average(xs, weights=w), np.average(ys, weights=w))
    assert x == pytest.approx(904.5, abs=0.5) and y == pytest.approx(504.5, abs=0.5)


def test_to_camera_and_to_input_are_inverse() -> None:
    geo = Geometry(1280, 720, 216, 512, 256)
    x, y = np.array([0.0, 100.25, 511.0]), np.array([0.0, 37.5, 255.0])
    xc, yc = geo.to_camera(x, y)
    xi, yi = geo.to_input(xc, yc)
    np.testing.assert_allclose(xi, x)
    np.testing.assert_allclose(yi, y)
    # the input image's outer pixel edges land on the camera image's outer edges (below the crop)
    assert geo.to_camera(-0.5, -0.5) == (pytest.approx(-0.5), pytest.approx(215.5))
    assert geo.to_camera(511.5, 255.5) == (pytest.approx(1279.5), pytest.approx(719.5))


@pytest.mark.parametrize(("src", "top", "inp"), [((1280, 720), 216, (512, 256)), ((640, 480), 0, (512, 256)),
                                                  ((300, 200), 13, (512, 256)), ((512, 256), 0, (512, 256))])
def test_mask_to_camera_is_exact_nearest_inverse(src: tuple[int, int], top: int, inp: tuple[int, int]) -> None:
    geo = Geometry(src[0], src[1], top, inp[0], inp[1])
    mask = np.random.default_rng(1).integers(0, 36, (inp[1], inp[0])).astype(np.uint8)
    cam = geo.mask_to_camera(mask)
    assert cam.shape == (src[1], src[0]) and cam.dtype == np.uint8
    assert not cam[:top].any()
    v, u = np.mgrid[top:src[1], 0:src[0]]
    xi, yi = geo.to_input(u + 0.0, v + 0.0)  # input coordinates of each camera pixel centre
    ix = np.clip(np.floor(xi + 0.5).astype(int), 0, inp[0] - 1)
    iy = np.clip(np.floor(yi + 0.5).astype(int), 0, inp[1] - 1)
    # a centre exactly on the border of two input pixels may take either of them
    tie = np.isclose(xi + 0.5, np.round(xi + 0.5), atol=1e-9) | np.isclose(yi + 0.5, np.round(yi + 0.5), atol=1e-9)
    ok = (cam[top:] == mask[iy, ix]) | tie
    assert ok.all() and tie.mean() < 0.5
    if src == inp:
        np.testing.assert_array_equal(cam, mask)


def test_mask_to_camera_rejects_wrong_size() -> None:
    with pytest.raises(ValueError, match="512x256"):
        Geometry(1280, 720, 0, 512, 256).mask_to_camera(np.zeros((10, 10), np.uint8))


def test_output_buffer_reuse_is_switchable() -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    reuse = Preprocessor(32, 16, MEAN, STD)
    assert reuse(image)[0] is reuse(image)[0]
    fresh = Preprocessor(32, 16, MEAN, STD, reuse_output=False)
    a, b = fresh(image)[0], fresh(image + 50)[0]
    assert a is not b and not np.array_equal(a, b)


def test_grey_and_bgra_inputs_and_bad_inputs() -> None:
    pre = Preprocessor(32, 16, (0, 0, 0), (1, 1, 1))
    grey = np.full((40, 60), 255, np.uint8)
    assert pre(grey)[0].min() == 1.0
    bgra = np.zeros((40, 60, 4), np.uint8)
    bgra[..., 2] = 255  # red
    out = pre(bgra)[0][0]
    assert out[0].min() == 1.0 and out[1:].max() == 0.0
    with pytest.raises(ValueError, match="uint8"):
        pre(np.zeros((40, 60, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        pre(np.zeros((40, 60, 2), np.uint8))


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"roi_top": 1.0}, "roi_top"), ({"channel_order": "rgba"}, "channel_order"),
    ({"std": (1, 0, 1)}, "std"), ({"input_width": 0}, "input_width")])
def test_bad_parameters_are_named(kwargs: dict, word: str) -> None:
    args = {"input_width": 32, "input_height": 16, "mean": MEAN, "std": STD, **kwargs}
    with pytest.raises(ValueError, match=word):
        Preprocessor(**args)


def test_from_model_info_attributes() -> None:
    info = SimpleNamespace(input_width=64, input_height=32, mean=MEAN, std=STD, channel_order="bgr", roi_top=0.5)
    pre = Preprocessor.from_info(info)
    batch, geo = pre(np.zeros((100, 200, 3), np.uint8))
    assert batch.shape == (1, 3, 32, 64) and geo.crop_top == 50 and pre.channel_order == "bgr"
    assert Preprocessor.from_info(info, roi_top=0.0).geometry(200, 100).crop_top == 0
