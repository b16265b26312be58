"""LaneDecoder on model outputs built by hand from lanes drawn in a camera image (no trained model needed).

Lanes are drawn in a 1280x720 camera image and an instance mask; the "perfect network" outputs are that mask
sampled at the network input pixels (512x256 after a sky crop): binary logits from lane / not lane, and a 4-D
embedding per lane instance. The decoder must give back the drawn lanes in camera pixels.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
import sys

import cv2
import numpy as np
import pytest

from lanenet_ros.decode.decoder import LaneDecoder, argmax_channels
from lanenet_ros.decode.settings import SETTING, SETTINGS, DecodeParams, SettingError, format_pairs, parse_pairs
from lanenet_ros.lanes import MarkingColor, MarkingType, Position
from lanenet_ros.model_info import ModelInfo
from lanenet_ros.preprocess import Geometry

W, H, TOP = 1280, 720, 252
GEO = Geometry(W, H, TOP, 512, 256)
LANENET = ModelInfo("lanenet", 512, 256, {"binary_logits": "binary_logits", "embedding": "embedding"},
                    class_names=["background", "lane"], lane_class_ids=[1], embedding_dim=4)
WHITE, YELLOW = (235, 235, 235), (0, 200, 230)  # BGR


def lane_x(bottom: float, y: np.ndarray, curve: float = 0.0) -> np.ndarray:
    """A lane through (bottom, 719) heading for the vanishing point (640, 260), optionally curving."""
    t = (719 - y) / (719 - 260)
    return bottom + (640 - bottom) * t + curve * t**2


def draw(mask: np.ndarray, image: np.ndarray, xs: np.ndarray, ys: np.ndarray, ident: int, colour: tuple,
         dashed: bool = False, thickness: int = 8) -> None:
    pts = np.stack([xs, ys], 1).round().astype(np.int32)
    for a, b in itertools.pairwise(pts):
        if dashed and (719 - a[1]) % 90 >= 45:  # 45 rows painted, 45 rows gap
            continue
        cv2.line(mask, tuple(map(int, a)), tuple(map(int, b)), ident, thickness)
        cv2.line(image, tuple(map(int, a)), tuple(map(int, b)), colour, thickness)


def scene(specs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Camera image (grey road) and instance mask of lanes given as dicts of draw() arguments.

    ``label`` in a spec: "paint" (default) labels the painted pixels; "polyline" draws the label as one
    continuous 12 px line through the lane's centre, as TuSimple-style labels are; "only" leaves the road
    unpainted (a lane the network sees without paint).
    """
    mask = np.zeros((H, W), np.uint8)
    image = np.full((H, W, 3), 90, np.uint8)
    scratch = np.zeros_like(image)
    ys = np.arange(719, 299, -1.0)
    for k, spec in enumerate(specs, start=1):
        label = spec.get("label", "paint")
        lines = spec.get("lines", [0.0])
        for offset in lines:
            xs = lane_x(spec["bottom"], ys, spec.get("curve", 0.0)) + offset
            dashed = spec.get("dashed", False) if offset == lines[-1] else spec.get("dash_all", False)
            target_mask = mask if label == "paint" else np.zeros_like(mask)
            target_image = scratch if label == "only" else image
            draw(target_mask, target_image, xs, ys, k, spec.get("colour", WHITE), dashed, spec.get("thickness", 8))
        if label != "paint":
            draw(mask, scratch, lane_x(spec["bottom"], ys, spec.get("curve", 0.0)), ys, k, WHITE, False, 12)
    return image, mask


def network_view(mask: np.ndarray) -> np.ndarray:
    """The camera mask sampled at the network input's pixel centres."""
    xi, yi = np.meshgrid(np.arange(GEO.input_width), np.arange(GEO.input_height))
    xc, yc = GEO.to_camera(xi, yi)
    return mask[np.clip(np.rint(yc).astype(int), 0, H - 1), np.clip(np.rint(xc).astype(int), 0, W - 1)]


def lanenet_outputs(mask: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    inst = network_view(mask)
    rng = np.random.default_rng(seed)
    centres = np.vstack([np.zeros(4), 4.0 * np.eye(4), -4.0 * np.eye(4)])
    emb = centres[inst].transpose(2, 0, 1) + rng.normal(0, 0.1, (4, *inst.shape))
    fg = np.where(inst > 0, 3.0, -3.0)
    return {"binary_logits": np.stack([-fg, fg]).astype(np.float32), "embedding": emb.astype(np.float32)}


FOUR = [{"bottom": 100}, {"bottom": 470, "dashed": True}, {"bottom": 820, "colour": YELLOW}, {"bottom": 1190}]


def test_four_lanes_back_in_camera_pixels_with_positions() -> None:
    image, mask = scene(FOUR)
    frame = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, image)
    assert (frame.width, frame.height) == (W, H) and frame.class_mask.shape == (H, W)
    assert len(frame.lanes) == 4
    assert [lane.position for lane in frame.lanes] == [Position.SECOND_LEFT, Position.EGO_LEFT,
                                                      Position.EGO_RIGHT, Position.SECOND_RIGHT]
    assert (frame.ego_left_index, frame.ego_right_index) == (1, 2)
    for k, (lane, spec) in enumerate(zip(frame.lanes, FOUR, strict=True), start=1):
        ys = lane.points[:, 1]
        assert np.all(np.diff(ys) < 0)  # near to far
        err = np.abs(lane.points[:, 0] - lane_x(spec["bottom"], ys))
        assert err.max() < 3.0, spec
        drawn_rows = np.nonzero(mask == k)[0]
        assert abs(lane.y_max - drawn_rows.max()) < 3 and abs(lane.y_min - drawn_rows.min()) < 3
        assert 0.5 < lane.confidence <= 1.0


def test_extend_far_continues_each_lane_along_its_fit() -> None:
    image, mask = scene(FOUR)
    plain = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, image)
    longer = LaneDecoder(LANENET, DecodeParams(extend_far=0.02)).decode(lanenet_outputs(mask), GEO, image)
    for a, b, spec in zip(plain.lanes, longer.lanes, FOUR, strict=True):
        assert b.y_max == a.y_max and b.y_min == pytest.approx(max(a.y_min - 0.02 * H, GEO.crop_top))
        assert np.abs(b.points[:, 0] - lane_x(spec["bottom"], b.points[:, 1])).max() < 3.0  # still on the line
    with pytest.raises(ValueError, match="extend_far"):
        DecodeParams(extend_far=-0.1).validate()


def test_min_span_drops_fragments_near_the_horizon() -> None:
    image, mask = scene(FOUR[1:3])
    # a 40-row stub just below the horizon: 40 / 468 camera rows below the crop, about 9% of the network's rows
    cv2.line(mask, (900, 300), (960, 340), 3, 8)
    kept = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, image)
    assert len(kept.lanes) == 3
    dropped = LaneDecoder(LANENET, DecodeParams(min_span=0.15)).decode(lanenet_outputs(mask), GEO, image)
    assert len(dropped.lanes) == 2 and all(lane.y_max > 700 for lane in dropped.lanes)
    with pytest.raises(ValueError, match="min_span"):
        DecodeParams(min_span=1.0).validate()


def test_min_fill_drops_a_lane_marked_only_in_patches() -> None:
    """A lane with pixels on half the rows between its ends (its dashes marked, not the gaps) goes at
    min_fill=0.65; the same line marked whole through its gaps, as LaneNet marks a line, stays."""
    patchy = [{"bottom": 470, "dashed": True}, {"bottom": 820}]
    image, mask = scene(patchy)
    assert len(LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, image).lanes) == 2
    frame = LaneDecoder(LANENET, DecodeParams(min_fill=0.65)).decode(lanenet_outputs(mask), GEO, image)
    near = frame.lanes[0].points[np.argmax(frame.lanes[0].points[:, 1])]
    assert len(frame.lanes) == 1 and abs(near[0] - lane_x(820, near[1:2])[0]) < 5
    image, mask = scene([dict(patchy[0], label="polyline"), patchy[1]])
    assert len(LaneDecoder(LANENET, DecodeParams(min_fill=0.65)).decode(lanenet_outputs(mask), GEO, image).lanes) == 2
    with pytest.raises(ValueError, match="min_fill"):
        DecodeParams(min_fill=1.5).validate()


def test_max_per_side_keeps_the_lanes_nearest_the_ego_vehicle() -> None:
    image, mask = scene(FOUR)
    one = LaneDecoder(LANENET, DecodeParams(max_per_side=1)).decode(lanenet_outputs(mask), GEO, image)
    assert [lane.position for lane in one.lanes] == [Position.EGO_LEFT, Position.EGO_RIGHT]
    assert (one.ego_left_index, one.ego_right_index) == (0, 1)
    assert np.allclose([lane.points[0, 0] for lane in one.lanes], [FOUR[1]["bottom"], FOUR[2]["bottom"]], atol=3)
    two = LaneDecoder(LANENET, DecodeParams(max_per_side=2)).decode(lanenet_outputs(mask), GEO, image)
    assert len(two.lanes) == 4
    with pytest.raises(ValueError, match="max_per_side"):
        DecodeParams(max_per_side=-1).validate()


def test_lane_threshold_on_the_binary_probability() -> None:
    image, mask = scene(FOUR[1:3])
    outputs = lanenet_outputs(mask)
    outputs["binary_logits"] *= np.linspace(0.1, 1.0, GEO.input_height, dtype=np.float32)[:, None]  # surer nearer
    p_lane = 1 / (1 + np.exp(outputs["binary_logits"][0] - outputs["binary_logits"][1]))
    cut = float(np.median(p_lane[p_lane > 0.5]))  # the far half of the lane pixels is less sure than this
    strict = LaneDecoder(LANENET, DecodeParams(lane_threshold=cut)).decode(outputs, GEO, image)
    loose = LaneDecoder(LANENET).decode(outputs, GEO, image)
    assert 0 < np.count_nonzero(strict.class_mask) < 0.7 * np.count_nonzero(loose.class_mask)
    with pytest.raises(ValueError, match="lane_threshold"):
        DecodeParams(lane_threshold=1.0).validate()


def test_marking_type_and_colour() -> None:
    image, mask = scene(FOUR)
    frame = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, image)
    assert [lane.marking_type for lane in frame.lanes] == [MarkingType.SOLID, MarkingType.DASHED,
                                                          MarkingType.SOLID, MarkingType.SOLID]
    assert [lane.color for lane in frame.lanes] == [MarkingColor.WHITE, MarkingColor.WHITE,
                                                   MarkingColor.YELLOW, MarkingColor.WHITE]
    no_image = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO)
    assert {lane.color for lane in no_image.lanes} == {MarkingColor.UNKNOWN}


def test_paint_decides_when_labels_are_continuous_polylines() -> None:
    # TuSimple-style labels run through the gaps of dashed lines: the mask alone looks solid
    specs = [{"bottom": 150, "label": "polyline"}, {"bottom": 500, "dashed": True, "label": "polyline"},
             {"bottom": 850, "dashed": True, "colour": YELLOW, "label": "polyline"},
             {"bottom": 1150, "label": "only"}]
    image, mask = scene(specs)
    frame = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, image)
    assert [(ln.marking_type, ln.color) for ln in frame.lanes] == [
        (MarkingType.SOLID, MarkingColor.WHITE), (MarkingType.DASHED, MarkingColor.WHITE),
        (MarkingType.DASHED, MarkingColor.YELLOW), (MarkingType.UNKNOWN, MarkingColor.UNKNOWN)]
    blind = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO)  # no image: only the mask to go by
    assert [ln.marking_type for ln in blind.lanes] == [MarkingType.SOLID] * 4


@pytest.mark.parametrize(("dash_left", "dash_right", "expected"), [
    (False, False, MarkingType.DOUBLE_SOLID), (False, True, MarkingType.SOLID_DASHED),
    (True, False, MarkingType.DASHED_SOLID)])
def test_double_lines(dash_left: bool, dash_right: bool, expected: MarkingType) -> None:
    spec = {"bottom": 560, "lines": [-9.0, 9.0], "thickness": 7, "colour": YELLOW,
            "dash_all": dash_left, "dashed": dash_right}
    image, mask = scene([spec, {"bottom": 1000}])
    frame = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, image)
    assert len(frame.lanes) == 2
    assert frame.lanes[0].marking_type == expected
    assert frame.lanes[0].color == MarkingColor.YELLOW
    assert frame.lanes[1].marking_type == MarkingType.SOLID


def test_curved_lane_and_stray_pixels_are_rejected() -> None:
    image, mask = scene([{"bottom": 300, "curve": 160.0}, {"bottom": 900, "curve": 160.0}])
    outputs = lanenet_outputs(mask)
    # a stray blob with lane 1's embedding, about 100 input px right of it
    outputs["binary_logits"][:, 140:160, 280:290] = np.array([-3.0, 3.0])[:, None, None]
    outputs["embedding"][:, 140:160, 280:290] = (4.0 * np.eye(4))[0][:, None, None]
    frame = LaneDecoder(LANENET).decode(outputs, GEO, image)
    assert len(frame.lanes) == 2
    for lane, bottom in zip(frame.lanes, (300, 900), strict=True):
        ys = lane.points[:, 1]
        assert np.abs(lane.points[:, 0] - lane_x(bottom, ys, 160.0)).max() < 3.0


def test_multiclass_lanes_from_classes_and_chained_dashes() -> None:
    info = ModelInfo("deeplabv3plus", 512, 256, {"logits": "class_logits"},
                     class_names=["background", "s_w_d", "b_y_g", "a_w_t"], lane_class_ids=[1, 2])
    image, mask = scene([{"bottom": 200}, {"bottom": 700, "dashed": True}])
    classes = network_view(mask)
    classes[200:215, 300:330] = 3  # an arrow painted on the road: not a lane
    logits = np.stack([np.where(classes == c, 4.0, 0.0) for c in range(4)]).astype(np.float32)
    frame = LaneDecoder(info).decode({"logits": logits[None]}, GEO, image)
    assert len(frame.lanes) == 2
    solid, dashed = frame.lanes
    assert (solid.marking_type, solid.color) == (MarkingType.SOLID, MarkingColor.WHITE)
    assert (dashed.marking_type, dashed.color) == (MarkingType.DASHED, MarkingColor.YELLOW)  # from the class name
    assert np.abs(dashed.points[:, 0] - lane_x(700, dashed.points[:, 1])).max() < 3.0
    assert dashed.y_max > 700 and dashed.y_min < 320  # all dashes chained into one lane
    assert set(np.unique(frame.class_mask).tolist()) == {0, 1, 2, 3}
    assert not frame.class_mask[:TOP].any()


def test_outputs_by_tensor_name_with_batch_dimension() -> None:
    _, mask = scene(FOUR[:2])
    out = lanenet_outputs(mask)
    info = dataclasses.replace(LANENET, outputs={"seg": "binary_logits", "emb": "embedding"})
    frame = LaneDecoder(info).decode({"seg": out["binary_logits"][None], "emb": out["embedding"][None]}, GEO)
    assert len(frame.lanes) == 2
    assert (frame.ego_left_index, frame.ego_right_index) == (1, -1)


def test_empty_road_and_bad_outputs() -> None:
    _, mask = scene([])
    frame = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO)
    assert frame.lanes == [] and (frame.ego_left_index, frame.ego_right_index) == (-1, -1)
    assert not frame.class_mask.any()
    with pytest.raises(ValueError, match="neither binary_logits nor class_logits"):
        LaneDecoder(LANENET).decode({"embedding": np.zeros((4, 256, 512), np.float32)}, GEO)
    bad = lanenet_outputs(mask)
    bad["embedding"] = bad["embedding"][:, :100]
    with pytest.raises(ValueError, match="embedding"):
        LaneDecoder(LANENET).decode(bad, GEO)


def test_params_validation_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="poly_degree"):
        LaneDecoder(LANENET, DecodeParams(poly_degree=0))
    with pytest.raises(ValueError, match="ego_center"):
        DecodeParams(ego_center=1.5).validate()


def test_argmax_channels_matches_numpy() -> None:
    logits = np.random.default_rng(0).normal(size=(7, 20, 30)).astype(np.float32)
    logits[3, 0, 0] = logits[5, 0, 0] = 99.0  # a tie: the first channel wins, as np.argmax
    np.testing.assert_array_equal(argmax_channels(logits), np.argmax(logits, axis=0))


def test_noise_outputs_decode_to_a_bounded_frame() -> None:
    # an untrained model: random logits everywhere must still give a frame, not an error or a stall
    rng = np.random.default_rng(0)
    info = ModelInfo("deeplabv3plus", 512, 256, {}, class_names=["background", "s_w_d", "b_y_g"], lane_class_ids=[1, 2])
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    frame = LaneDecoder(info, DecodeParams(max_lanes=5)).decode(
        {"class_logits": rng.normal(size=(3, 256, 512)).astype(np.float32)}, GEO, image)
    assert frame.class_mask.shape == (H, W) and len(frame.lanes) <= 5
    noisy = {"binary_logits": rng.normal(size=(2, 256, 512)).astype(np.float32),
             "embedding": rng.normal(size=(4, 256, 512)).astype(np.float32)}
    assert len(LaneDecoder(LANENET).decode(noisy, GEO, image).lanes) <= DecodeParams().max_lanes


def hood_edge_rows(width: int = W) -> np.ndarray:
    """Top row of the hood drawn by ``with_hood``: 640 at the sides, bulging up to 628 in the middle."""
    u = (np.arange(width) - width / 2) / (width / 2)
    return 640.0 - 12.0 * (1 - u * u)


def with_hood(image: np.ndarray, colour: tuple = (70, 40, 110)) -> np.ndarray:
    """The image with a plain bonnet over its bottom rows (the lanes' paint ends at its edge)."""
    out = image.copy()
    edge = hood_edge_rows()
    rows = np.arange(H)[:, None]
    out[rows >= edge[None, :]] = colour
    return out


def test_lanes_end_at_the_hood_the_network_carries_them_across() -> None:
    from lanenet_ros.decode import hood

    image, mask = scene(FOUR)  # the network's mask runs on to the bottom row, as trained networks' often do
    assert hood.find_edge(image) is None
    image = with_hood(image)
    found = hood.find_edge(image)
    assert found is not None
    assert np.abs(found.row_at(np.arange(0, W, 40)) - hood_edge_rows()[::40]).max() < 6.0
    frame = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, image)
    assert len(frame.lanes) == 4
    for lane in frame.lanes:
        edge_here = float(np.interp(lane.x_at(lane.y_max), np.arange(W), hood_edge_rows()))
        assert edge_here - 8 < lane.y_max < edge_here + 3  # the edge is found on a 4x smaller image
        assert lane.points[:, 1].max() <= lane.y_max
    assert not frame.class_mask[660:].any() and frame.class_mask[560:620].any()
    # a model with a bonnet output that sees none here (a dark bonnet at night): the search still finds it
    blind = {**lanenet_outputs(mask), "hood_logits": np.full((1, 256, 512), -5.0, np.float32)}
    assert [lane.y_max for lane in LaneDecoder(LANENET).decode(blind, GEO, image).lanes] == \
        [lane.y_max for lane in frame.lanes]
    # one that sees a bonnet: its edge wins over the search (network rows 240 on: camera row 690 on)
    seen = np.where(np.arange(256)[:, None] >= 240, 5.0, -5.0) + np.zeros((1, 512))
    seeing = {**blind, "hood_logits": seen[None].astype(np.float32)}
    assert abs(LaneDecoder(LANENET).decode(seeing, GEO, image).hood_row - (TOP + 240 * (H - TOP) / 256 - 0.5)) < 2
    # hood=0: no hood is looked for; the lanes run on to the bottom
    plain = LaneDecoder(LANENET, DecodeParams(hood=0.0)).decode(lanenet_outputs(mask), GEO, image)
    assert all(lane.y_max > 715 for lane in plain.lanes) and plain.class_mask[700:].any()


def test_the_bonnet_is_described_with_the_setting_that_fixes_it() -> None:
    """/diagnostics and lanenet-replay say where the bonnet is and which decode.hood holds it there: given back,
    that value puts the edge on the same row."""
    from lanenet_ros.decode import hood

    image, mask = scene(FOUR)
    found = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, with_hood(image))
    text = hood.describe(found.hood_row, H, -1.0)
    assert text.startswith(f"row {found.hood_row:.0f} of {H} at the centre: the bottom ")
    share = float(text.split("decode.hood ")[1].split()[0])
    given = LaneDecoder(LANENET, DecodeParams(hood=share)).decode(lanenet_outputs(mask), GEO, image)
    assert abs(given.hood_row - found.hood_row) < 1.0
    assert hood.describe(given.hood_row, H, share) == f"row {given.hood_row:.0f} of {H} at the centre, given " \
        f"(decode.hood {share:g})"
    assert hood.describe(-1.0, H, -1.0) == "none found"
    assert hood.describe(-1.0, H, 0.0) == "none looked for (decode.hood 0)"


@pytest.mark.parametrize("size", [(1920, 1080), (1242, 375), (1024, 576), (640, 360)])
def test_the_hood_is_found_at_other_camera_sizes(size: tuple[int, int]) -> None:
    from lanenet_ros.decode import hood

    width, height = size  # the search works in blocks of the whole number of pixels nearest width / 320
    image = cv2.resize(with_hood(scene(FOUR)[0]), size, interpolation=cv2.INTER_AREA)
    found = hood.find_edge(image)
    assert found is not None
    xs = np.arange(0, width, 20)
    truth = (hood_edge_rows()[np.minimum(xs * W // width, W - 1)] + 0.5) * height / H - 0.5
    assert np.abs(found.row_at(xs) - truth).max() < 6.0 * max(height / H, 0.5)


def test_a_glossy_hood_that_reflects_the_sky_is_found() -> None:
    from lanenet_ros.decode import hood

    # reflections streak the bonnet: vertical bands of 16 columns, 6 grey levels apart (about 3 levels of
    # horizontal change on the search's 4x4 blocks: rougher than a plain bonnet, smoother than a road)
    image = with_hood(scene(FOUR)[0], (50, 50, 50))
    below = hood_edge_rows()[None, :] <= np.arange(H)[:, None]
    streaks = (np.arange(W) // 16 % 2 * 6).astype(np.uint8)[None, :, None]
    image = np.where(below[:, :, None], image + streaks, image)
    found = hood.find_edge(image)
    assert found is not None
    assert np.abs(found.row_at(np.arange(0, W, 40)) - hood_edge_rows()[::40]).max() < 6.0


def test_the_hood_search_averages_blocks_as_opencv_does() -> None:
    from lanenet_ros.decode.hood import _block_means

    grey = np.random.default_rng(3).integers(0, 256, (236, 1280), dtype=np.uint8)
    expected = cv2.resize(grey, (320, 59), interpolation=cv2.INTER_AREA).astype(np.float32)
    np.testing.assert_array_equal(_block_means(grey, 4), expected)  # 4 x 4: the same, rounding included


def test_a_shadow_across_the_road_is_not_a_hood() -> None:
    from lanenet_ros.decode import hood

    image, mask = scene(FOUR)
    shadow = image.copy()
    shadow[hood_edge_rows()[None, :] <= np.arange(H)[:, None]] //= 2  # darker below, the paint still shows
    frame = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, shadow)
    assert all(lane.y_max > 715 for lane in frame.lanes) and frame.class_mask[700:].any()
    # an edge there is a hood only when the lanes' paint stops at it
    edge = hood.HoodEdge((float(hood_edge_rows()[W // 2]), 0.0, 12.0), W)
    crossings = hood.crossing_rows(frame.lanes, edge)
    assert not hood.confirmed(shadow, frame.lanes, crossings)
    assert hood.confirmed(with_hood(image), frame.lanes, crossings)


def test_a_hood_below_a_dash_gap_is_confirmed() -> None:
    from lanenet_ros.decode import hood

    image, mask = scene(FOUR)
    gap = image.copy()  # every line's paint gone for 60 rows above the hood's edge (the grey road shows)
    gap[(hood_edge_rows()[None, :] - 60 <= np.arange(H)[:, None]) & (np.arange(H)[:, None] < hood_edge_rows())] = 90
    gap = with_hood(gap)
    frame = LaneDecoder(LANENET).decode(lanenet_outputs(mask), GEO, gap)
    edge = hood.HoodEdge((float(hood_edge_rows()[W // 2]), 0.0, 12.0), W)
    assert hood.confirmed(gap, frame.lanes, hood.crossing_rows(frame.lanes, edge))  # the paint above the gap
    assert frame.hood_row > 0 and all(lane.y_max < 645 for lane in frame.lanes)


def test_the_hood_memory_holds_an_edge_found_in_a_row_and_lets_it_go() -> None:
    from lanenet_ros.decode.hood import HoodEdge, HoodMemory

    def edge(row: float, width: int = W) -> HoodEdge:
        return HoodEdge((row, 0.0, -12.0), width)

    memory = HoodMemory(agree=3, tolerance=0.015, release=5)  # 0.015 of 720 rows: 10.8 rows
    memory.found(edge(640), H)
    memory.found(edge(600), H)  # not the same edge: the run starts again
    memory.found(edge(642), H)
    assert memory.held(W, H) is None
    memory.found(edge(644), H)
    memory.found(edge(646), H)  # three in a row within 10.8 rows of each other
    held = memory.held(W, H)
    assert held is not None and held.coeffs[0] == pytest.approx(644.0)
    assert memory.held(W // 2, H // 2) is None  # not for another camera's images
    memory.found(edge(648), H)  # an agreeing edge refines it
    assert memory.held(W, H).coeffs[0] == pytest.approx(645.0)
    memory.found(edge(560), H)
    memory.found(edge(562), H)  # edges elsewhere go against it, and three that agree take its place
    assert memory.held(W, H).coeffs[0] == pytest.approx(645.0)
    memory.found(edge(564), H)
    assert memory.held(W, H).coeffs[0] == pytest.approx(562.0)
    for _ in range(4):
        memory.contradicted()
    memory.used()  # a frame that did not contradict it: the count starts again
    for _ in range(4):
        memory.contradicted()
    assert memory.held(W, H) is not None
    memory.contradicted()  # the fifth frame in a row with paint below it
    assert memory.held(W, H) is None
    # edges the lanes did not confirm count half: six in a row hold an edge, and they do not go against one
    unsure = HoodMemory()
    for k in range(5):
        unsure.found(edge(640 + k), H, sure=False)
    assert unsure.held(W, H) is None
    unsure.found(edge(640), H, sure=False)
    assert unsure.held(W, H).coeffs[0] == pytest.approx(3850 / 6)
    for _ in range(5):
        unsure.found(edge(500), H, sure=False)
    assert unsure.held(W, H).coeffs[0] == pytest.approx(3850 / 6)
    with pytest.raises(ValueError, match="tolerance"):
        HoodMemory(tolerance=0.0)


def test_a_bonnet_found_in_earlier_frames_ends_the_lanes_where_the_search_fails() -> None:
    from lanenet_ros.decode import hood

    image, mask = scene(FOUR)
    plain = with_hood(image)
    rough = with_hood(image, (96, 96, 96))  # a bonnet the search misses: hardly darker or brighter than the road
    assert hood.find_edge(rough) is None
    outputs, decoder = lanenet_outputs(mask), LaneDecoder(LANENET)
    assert all(lane.y_max > 715 for lane in decoder.decode(outputs, GEO, rough).lanes)  # alone: across the bonnet
    memory = hood.HoodMemory()
    assert decoder.decode(outputs, GEO, rough, memory).hood_row < 0  # nothing held yet
    for _ in range(3):
        found = decoder.decode(outputs, GEO, plain, memory)
    frame = decoder.decode(outputs, GEO, rough, memory)
    assert frame.hood_row == pytest.approx(found.hood_row, abs=0.5)
    assert [lane.y_max for lane in frame.lanes] == pytest.approx([lane.y_max for lane in found.lanes], abs=0.5)
    assert not frame.class_mask[660:].any()
    # the road going on below the held edge (the paint shows there): not used, and five such frames let it go
    for _ in range(5):
        frame = decoder.decode(outputs, GEO, image, memory)
        assert frame.hood_row < 0 and all(lane.y_max > 715 for lane in frame.lanes)
    assert memory.held(W, H) is None
    # without an image (nothing to read paint from) the held edge is used as it is
    for _ in range(3):
        decoder.decode(outputs, GEO, plain, memory)
    assert decoder.decode(outputs, GEO, None, memory).hood_row > 0
    # a hood given by hand wins and leaves the memory alone
    given = LaneDecoder(LANENET, DecodeParams(hood=0.1)).decode(outputs, GEO, rough, hood.HoodMemory())
    assert given.hood_row == pytest.approx(0.9 * H - 0.5)


def test_a_bonnet_the_network_saw_is_held_through_frames_without_its_output() -> None:
    from lanenet_ros.decode import hood

    image, mask = scene(FOUR)  # the heads' model every few frames, the lean one between (heads_every)
    seen = np.where(np.arange(256)[:, None] >= 240, 5.0, -5.0) + np.zeros((1, 512))  # camera row ~690 on
    heads = {**lanenet_outputs(mask), "hood_logits": seen[None].astype(np.float32)}
    decoder, memory = LaneDecoder(LANENET), hood.HoodMemory()
    for _ in range(3):
        learned = decoder.decode(heads, GEO, image, memory)
    assert memory.learned and learned.hood_row > 680
    # a frame without the output whose image shows an edge the search would take (rows 628-640): the network's
    # edge stands in
    assert decoder.decode(lanenet_outputs(mask), GEO, with_hood(image)).hood_row < 645
    held = decoder.decode(lanenet_outputs(mask), GEO, with_hood(image), memory)
    assert held.hood_row == pytest.approx(learned.hood_row, abs=0.5)


def test_a_known_hood_is_given_as_a_share_of_the_rows() -> None:
    _, mask = scene(FOUR)
    frame = LaneDecoder(LANENET, DecodeParams(hood=0.1)).decode(lanenet_outputs(mask), GEO)  # no image needed
    assert len(frame.lanes) == 4
    assert all(640 < lane.y_max <= 0.9 * H - 1 for lane in frame.lanes)
    assert not frame.class_mask[648:].any() and frame.class_mask[600:647].any()
    for bad in (0.5, -0.5, 1.0):
        with pytest.raises(ValueError, match="hood"):
            DecodeParams(hood=bad).validate()


def test_merged_settings_keep_the_base_and_replace_by_name() -> None:
    def merge_decode_settings(*groups: list[str]) -> list[str]:
        return format_pairs(parse_pairs([pair for group in groups for pair in group]))

    spec = ["max_lanes=6", "lane_threshold=0.8", "min_span=0.22"]
    assert merge_decode_settings(spec, ["lane_threshold=0.5"]) == ["max_lanes=6", "lane_threshold=0.5", "min_span=0.22"]
    assert merge_decode_settings(spec, []) == spec
    assert merge_decode_settings([], [" max_lanes=3", "max_lanes=4"]) == ["max_lanes=4"]


@pytest.mark.parametrize("row", [r for r in SETTINGS if r.kind is not bool], ids=lambda r: r.name)
def test_every_numeric_setting_has_a_range_and_refuses_what_lies_outside_it(row) -> None:
    assert row.low <= row.default <= row.high or row.default == row.also
    for inside in (row.low, row.high):
        assert DecodeParams(**{row.name: inside}).validate() == DecodeParams(**{row.name: inside})
    nudge = 1 if row.kind is int else 1e-3
    for outside in (row.low - nudge, row.high + nudge, *([float("nan")] if row.kind is float else [])):
        with pytest.raises(SettingError, match=rf"{row.name}=.* is out of range; allowed {re.escape(row.allowed)}\."):
            DecodeParams(**{row.name: outside}).validate()


def test_the_ends_of_the_ranges_that_cost_time_or_find_nothing_still_give_the_lanes() -> None:
    """point_step_px=0.000001 once took all memory and cluster_bandwidth=1e-9 found no lane; their
    smallest allowed values keep every lane, with a point per camera row at most."""
    image, mask = scene(FOUR)
    lowest = {"point_step_px": SETTING["point_step_px"].low, "cluster_bandwidth": SETTING["cluster_bandwidth"].low,
              "cluster_radius": SETTING["cluster_radius"].low}
    frame = LaneDecoder(LANENET, DecodeParams(**lowest)).decode(lanenet_outputs(mask), GEO, image)
    assert len(frame.lanes) == 4
    assert all(len(lane.points) <= lane.y_max - lane.y_min + 2 for lane in frame.lanes)
    with pytest.raises(SettingError, match=re.escape("point_step_px=1e-06 is out of range; allowed 1.0 to 200.0")):
        DecodeParams.from_pairs(["point_step_px=0.000001"])
    with pytest.raises(SettingError, match=re.escape("cluster_bandwidth=1e-09 is out of range; allowed 0.25 to 10.0")):
        DecodeParams.from_pairs(["cluster_bandwidth=1e-9"])


def test_every_form_of_a_setting_is_read_by_the_table() -> None:
    assert parse_pairs(["max_lanes=6", "flip_average=true", "hood=-1", "lane_threshold=0.8"]) == \
        {"max_lanes": 6, "flip_average": True, "hood": -1.0, "lane_threshold": 0.8}
    assert format_pairs({"max_lanes": 6, "flip_average": True, "lane_threshold": 0.8}) == \
        ["max_lanes=6", "flip_average=true", "lane_threshold=0.8"]
    with pytest.raises(SettingError, match="flip_average: 'maybe' is not a bool"):
        parse_pairs(["flip_average=maybe"])
    with pytest.raises(SettingError, match="expected NAME=VALUE"):
        parse_pairs(["max_lanes"])
    with pytest.raises(SettingError, match=r"max_lanes=2.5 is not a int"):
        DecodeParams(max_lanes=2.5).validate()
    with pytest.raises(SettingError, match="unknown decode setting 'max_lane'; did you mean 'max_lanes'"):
        DecodeParams().override({"max_lane": 3})


def test_the_docs_table_of_settings_is_the_rendering_of_the_table() -> None:
    from pathlib import Path

    from lanenet_ros.decode.settings import markdown_table

    docs = (Path(__file__).resolve().parents[1] / "docs" / "node.md").read_text(encoding="utf-8")
    assert markdown_table() in docs, "docs/node.md: paste the output of `python -m lanenet_ros.decode.settings`"


def test_no_kernel_is_compiled_after_the_decoder_is_made() -> None:
    """The node builds its decoder in ``configure``: every compiled kernel must be ready then, for the argument
    types real frames bring (lanes of every kind, paint read, a hood found), so no frame waits for numba. Run in
    a fresh interpreter: in this one, earlier tests have compiled everything already. A kernel that a warmed one
    calls is compiled with it, but only loaded from numba's cache when first called itself."""
    import subprocess

    for _ in range(2):  # the first run may compile and fill numba's cache; the second loads what it can from it
        done = subprocess.run([sys.executable, __file__, "--compile-check"], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "no kernel compiled while decoding" in done.stdout


def _compile_check() -> None:
    import numba

    from lanenet_ros import ground, metrics, preprocess, tracking
    from lanenet_ros.decode import cluster, decoder, fitting, hood, paint

    def signatures() -> dict[str, int]:
        return {f"{m.__name__}.{name}": len(f.signatures)
                for m in (cluster, decoder, fitting, hood, paint, preprocess, ground, metrics)
                for name, f in vars(m).items() if isinstance(f, numba.core.registry.CPUDispatcher)}

    made = LaneDecoder(LANENET)
    prepare = preprocess.Preprocessor(512, 256, [0.5] * 3, [0.25] * 3, roi_top=TOP / H)
    tracker = tracking.LaneTracker()
    before = signatures()
    assert before and any(before.values())
    image, mask = scene([*FOUR, {"bottom": 300, "lines": [-9.0, 9.0], "colour": YELLOW}])
    for picture in (image, with_hood(image)):
        prepare(picture)
        frame = made.decode(lanenet_outputs(mask), GEO, picture)
        assert frame.lanes and frame.class_mask.shape == (H, W)
        ground.add_ground_lanes(frame, ground.GroundProjector.from_camera(1000.0, 1000.0, 640.0, 360.0, 1.5, 0.07))
        assert any(lane.ground_coeffs is not None for lane in frame.lanes)
        tracker.update(frame)
    compiled = {k: v for k, v in signatures().items() if v != before[k]}
    assert not compiled, f"compiled while decoding: {compiled}"
    print("no kernel compiled while decoding")


if __name__ == "__main__" and sys.argv[1:] == ["--compile-check"]:
    _compile_check()
