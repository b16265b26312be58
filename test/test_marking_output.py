"""The network-learned marking type and colour (``marking_logits``): the model description accepts the output
with its channel count, the decoder types each kept lane from the output's softmaxes along its fit
(class names that say a marking still win), ``learned_markings=false`` and models without the output keep the
paint / mask reading, and an exported model carries it through ONNX Runtime."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lanenet_ros.decode.decoder import DecodeParams, LaneDecoder
from lanenet_ros.lanes import LEARNED_COLORS, LEARNED_TYPES, MarkingColor, MarkingType
from lanenet_ros.model_info import MARKING_CHANNELS, ModelError, ModelInfo, check_graph
from lanenet_ros.preprocess import Geometry

H, W = 64, 128
LANE_X = (30, 98)  # bottom-row columns of the two lanes, left to right


def _geometry():
    return Geometry(src_width=1280, src_height=720, crop_top=0, input_width=W, input_height=H)


def _lane_pixels():
    """Per lane, the (rows, cols) of its 3-pixel-wide straight line from row 10 to the bottom."""
    out = []
    for x0 in LANE_X:
        rows, cols = [], []
        for r in range(10, H):
            x = round(x0 + (64 - x0) * (H - 1 - r) / 80)
            rows += [r] * 3
            cols += [x - 1, x, x + 1]
        out.append((np.array(rows), np.array(cols)))
    return out


def _marking_logits(types, colors):
    """(9, H, W) logits: away from the lanes, confident nonsense (botts' dots, yellow), which only lane pixels may
    be read past; on lane k, ``types[k]`` / ``colors[k]``, with a fifth of its pixels saying something else (the
    average of the softmaxes still wins)."""
    nt = len(LEARNED_TYPES)
    logits = np.zeros((MARKING_CHANNELS, H, W), np.float32)
    logits[LEARNED_TYPES.index(MarkingType.BOTTS_DOTS)] = 9.0
    logits[nt + LEARNED_COLORS.index(MarkingColor.YELLOW)] = 9.0
    for (rows, cols), kind, color in zip(_lane_pixels(), types, colors, strict=True):
        logits[:, rows, cols] = 0.0
        logits[LEARNED_TYPES.index(kind), rows, cols] = 5.0
        logits[nt + LEARNED_COLORS.index(color), rows, cols] = 5.0
        stray = slice(None, None, 5)
        logits[:, rows[stray], cols[stray]] = 0.0
        logits[LEARNED_TYPES.index(MarkingType.SOLID), rows[stray], cols[stray]] = 6.0
        other = MarkingColor.WHITE if color == MarkingColor.YELLOW else MarkingColor.YELLOW
        logits[nt + LEARNED_COLORS.index(other), rows[stray], cols[stray]] = 6.0
    return logits


TYPES = (MarkingType.DOUBLE_SOLID, MarkingType.DASHED)
COLORS = (MarkingColor.YELLOW, MarkingColor.WHITE)


def _lanenet_outputs(with_markings=True):
    binary = np.zeros((2, H, W), np.float32)
    binary[0] = 4.0
    emb = np.zeros((4, H, W), np.float32)
    for k, (rows, cols) in enumerate(_lane_pixels()):
        binary[1, rows, cols] = 8.0
        emb[k, rows, cols] = 5.0
    out = {"binary_logits": binary, "embedding": emb}
    if with_markings:
        out["marking_logits"] = _marking_logits(TYPES, COLORS)
    return out


_INFO = SimpleNamespace(architecture="lanenet", class_names=["background", "lane"], lane_class_ids=[1],
                        embedding_dim=4, outputs={"binary_logits": "binary_logits", "embedding": "embedding",
                                                  "marking_logits": "marking_logits"})


def _markings(frame):
    return [(lane.marking_type, lane.color) for lane in frame.lanes]


def test_lanes_take_type_and_colour_from_the_marking_output():
    decoder = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10))
    frame = decoder.decode(_lanenet_outputs(), _geometry())
    assert _markings(frame) == list(zip(TYPES, COLORS, strict=True))
    # with the camera image too: the network's type, and the colour as the paint shows it (bare grey here)
    grey = np.full((720, 1280, 3), 90, np.uint8)
    painted = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10, learned_markings=False)).decode(
        _lanenet_outputs(), _geometry(), grey)
    assert _markings(decoder.decode(_lanenet_outputs(), _geometry(), grey)) == \
        [(t, c) for t, (_, c) in zip(TYPES, _markings(painted), strict=True)]
    # extract then finish, the output overwritten in between (a backend reusing its buffers)
    outputs = _lanenet_outputs()
    extracted = decoder.extract(outputs, _geometry())
    outputs["marking_logits"][:] = 0.0
    assert _markings(decoder.finish(extracted)) == list(zip(TYPES, COLORS, strict=True))


def test_learned_markings_off_or_no_output_reads_as_before():
    geo = _geometry()
    grey = np.full((720, 1280, 3), 90, np.uint8)
    plain = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10))
    off = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10, learned_markings=False))
    for image in (None, grey):
        without = plain.decode(_lanenet_outputs(with_markings=False), geo, image)
        ignored = off.decode(_lanenet_outputs(), geo, image)
        assert len(without.lanes) == 2 and _markings(ignored) == _markings(without)
        assert [lane.image_coeffs.tolist() for lane in ignored.lanes] == \
            [lane.image_coeffs.tolist() for lane in without.lanes]
    assert _markings(plain.decode(_lanenet_outputs(with_markings=False), geo)) == [
        (MarkingType.SOLID, MarkingColor.UNKNOWN)] * 2  # the mask's own reading: whole lines, no colour
    assert off.extract(_lanenet_outputs(), geo).markings is None  # nothing sampled when it is off


def test_class_names_that_say_a_marking_win_over_the_output():
    # a per-class model: the left lane's class says solid white, the right one's is a plain "lane"
    logits = np.zeros((3, H, W), np.float32)
    logits[0] = 4.0
    for cid, (rows, cols) in zip((1, 2), _lane_pixels(), strict=True):
        logits[cid, rows, cols] = 8.0
    info = SimpleNamespace(architecture="deeplabv3plus", class_names=["background", "s_w_d", "lane"],
                           lane_class_ids=[1, 2], embedding_dim=0,
                           outputs={"class_logits": "class_logits", "marking_logits": "marking_logits"})
    decoder = LaneDecoder(info, DecodeParams(min_lane_pixels=10))
    frame = decoder.decode({"class_logits": logits, "marking_logits": _marking_logits(TYPES, COLORS)}, _geometry())
    assert _markings(frame) == [(MarkingType.SOLID, MarkingColor.WHITE), (TYPES[1], COLORS[1])]


def test_a_stride_4_marking_output_is_read_at_the_cells_the_fits_cross():
    # a quarter-size output (the exported heads' stride 4), float64: each lane's cells say its marking, the
    # cells beside them (one cell away) and everywhere else say something else
    nt = len(LEARNED_TYPES)
    small = np.zeros((MARKING_CHANNELS, H // 4, W // 4), np.float64)
    small[LEARNED_TYPES.index(MarkingType.BOTTS_DOTS)] = 9.0
    small[nt + LEARNED_COLORS.index(MarkingColor.YELLOW)] = 9.0
    for (rows, cols), kind, color in zip(_lane_pixels(), TYPES, COLORS, strict=True):
        cy, cx = rows // 4, cols[1::3].repeat(3) // 4  # the centre column's cell, row by row
        small[:, cy, cx] = 0.0
        small[LEARNED_TYPES.index(kind), cy, cx] = 5.0
        small[nt + LEARNED_COLORS.index(color), cy, cx] = 5.0
    outputs = _lanenet_outputs()
    outputs["marking_logits"] = small
    decoder = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10))
    assert _markings(decoder.decode(outputs, _geometry())) == list(zip(TYPES, COLORS, strict=True))
    # the same cells a column off the lanes: the fits do not cross them, so what they say is not read
    outputs["marking_logits"] = np.roll(small, 2, axis=2)
    assert all(m == (MarkingType.BOTTS_DOTS, MarkingColor.YELLOW) for m in _markings(decoder.decode(outputs,
                                                                                                    _geometry())))


def test_a_marking_output_of_the_wrong_shape_is_refused():
    decoder = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10))
    outputs = _lanenet_outputs()
    outputs["marking_logits"] = outputs["marking_logits"][:8]
    with pytest.raises(ValueError, match=r"marking_logits must have 9 channels \(7 types, then 2 colours\), got 8"):
        decoder.decode(outputs, _geometry())
    outputs["marking_logits"] = np.zeros((MARKING_CHANNELS, H // 2, W // 3), np.float32)
    with pytest.raises(ValueError, match=r"marking_logits is \(32, 42\) but binary_logits is \(64, 128\)"):
        decoder.decode(outputs, _geometry())
    # refused whether or not it is used
    off = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10, learned_markings=False))
    with pytest.raises(ValueError, match="marking_logits is"):
        off.decode(outputs, _geometry())


def test_model_description_takes_a_marking_output_of_nine_channels():
    assert MARKING_CHANNELS == len(LEARNED_TYPES) + len(LEARNED_COLORS) == 9
    info = ModelInfo(architecture="lanenet", input_width=W, input_height=H, embedding_dim=4,
                     outputs={"binary_logits": "binary_logits", "embedding": "embedding", "marks": "marking_logits"})
    info.validate("m.onnx")
    inputs = {"input": [1, 3, H, W]}
    shapes = {"binary_logits": [1, 2, H, W], "embedding": [1, 4, H, W]}
    check_graph(info, inputs, {**shapes, "marks": [1, 9, H, W]}, "m.onnx")
    check_graph(info, inputs, {**shapes, "marks": ["batch", 9, H, W]}, "m.onnx")
    with pytest.raises(ModelError, match=r"m\.onnx: output 'marks' \(marking_logits\) has shape \[1, 7, 64, 128\]; "
                                         r"expected \(N, 9, H, W\)"):
        check_graph(info, inputs, {**shapes, "marks": [1, 7, H, W]}, "m.onnx")


def test_exported_model_with_a_marking_output_decodes_through_onnxruntime(tmp_path: Path):
    import torch
    from model_fixtures import BrightLineNet, draw_road, export_model, model_info

    from lanenet_ros.pipeline import LanePipeline

    class MarkedLineNet(torch.nn.Module):
        """BrightLineNet, and every pixel a dashed yellow marking (the image's lines are solid white)."""

        def __init__(self, lines: torch.nn.Module) -> None:
            super().__init__()
            self.lines = lines
            marking = torch.full((1, MARKING_CHANNELS, 1, 1), -4.0)
            marking[0, LEARNED_TYPES.index(MarkingType.DASHED)] = 4.0
            marking[0, len(LEARNED_TYPES) + LEARNED_COLORS.index(MarkingColor.YELLOW)] = 4.0
            self.register_buffer("marking", marking)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            out = self.lines(x)
            out["marking_logits"] = self.marking + 0.0 * out["binary_logits"][:, :1]
            return out

    width, height, roi_top = 256, 128, 0.4
    info = model_info("lanenet", input_width=width, input_height=height, roi_top=roi_top)
    lines = BrightLineNet(width, height, (width / 2, 0.0), info["mean"], info["std"])
    path = tmp_path / "marked.onnx"
    report = export_model(MarkedLineNet(lines).eval(), info, path, verify_images=1)
    assert report.info.output_for("marking_logits") == "marking_logits"
    road = draw_road((0.15, 0.45, 0.85))
    pipe = LanePipeline(path, backend="onnxruntime-cpu", tracking=False)
    frame = pipe.process(road)
    assert len(frame.lanes) == 3
    assert _markings(frame) == [(MarkingType.DASHED, MarkingColor.WHITE)] * 3  # the colour: the image's paint
    assert [_markings(f) for f in pipe.process_batch([road, road])] == [_markings(frame)] * 2
    # mirror averaging averages binary_logits only; the marking is the first run's
    flipped = LanePipeline(path, backend="onnxruntime-cpu", tracking=False, decode_params={"flip_average": True})
    assert _markings(flipped.process(road)) == [(MarkingType.DASHED, MarkingColor.WHITE)] * 3
    painted = LanePipeline(path, backend="onnxruntime-cpu", tracking=False,
                           decode_params={"learned_markings": False})
    assert _markings(painted.process(road)) == [(MarkingType.SOLID, MarkingColor.WHITE)] * 3  # the paint


def test_a_marking_output_at_a_whole_fraction_of_the_size_is_read_at_its_cells():
    # a network may give its side outputs at stride 4, without the resize to the input: each lane pixel reads
    # the cell it falls in
    decoder = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10))
    outputs = _lanenet_outputs()
    small = np.zeros((MARKING_CHANNELS, H // 4, W // 4), np.float32)
    for k, (rows, cols) in enumerate(_lane_pixels()):
        small[LEARNED_TYPES.index(TYPES[k]), rows // 4, cols // 4] = 6.0
        small[len(LEARNED_TYPES) + LEARNED_COLORS.index(COLORS[k]), rows // 4, cols // 4] = 6.0
    outputs["marking_logits"] = small
    assert _markings(decoder.decode(outputs, _geometry())) == list(zip(TYPES, COLORS, strict=True))


def test_raised_dots_in_the_image_win_over_the_outputs_dashes():
    """The packaged heads read Botts' dots as dashes (their training had few); where the paint along a lane the
    network calls dashed shows raised dots, the lane is dots. Other learned types stand."""
    from lanenet_ros.decode import paint

    decoder = LaneDecoder(_INFO, DecodeParams(min_lane_pixels=10))
    grey = np.full((720, 1280, 3), 90, np.uint8)
    lanes = decoder.decode(_lanenet_outputs(), _geometry(), grey).lanes
    curves = [(lane.image_coeffs, lane.y_min, lane.y_max) for lane in lanes]
    horizon = paint.horizon_row(curves, 0.45 * 720)
    height = decoder.params.camera_height_m
    dotted = grey.copy()
    for lane in lanes:  # 0.11 m dots every 1.25 m along both lanes (these lanes meet far above the image, a
        # steep view of a few metres of road: a long focal length, 10000 px, puts enough dots in their nearer half)
        for y in range(int(lane.y_min), int(lane.y_max) + 1):
            ppm = (y - horizon) / height  # road pixels per metre across, at this row
            if ppm > 0 and (10000 / ppm) % 1.25 < 0.11:
                x, half = lane.x_at(float(y)), max(1, round(0.055 * ppm))
                dotted[y, int(x) - half:int(x) + half + 1] = 230
    assert [kind for kind, _ in paint.read_markings(dotted, curves, [4.0, 4.0], horizon, height)] == \
        [MarkingType.BOTTS_DOTS] * 2  # what the paint shows on both
    assert [kind for kind, _ in _markings(decoder.decode(_lanenet_outputs(), _geometry(), dotted))] == \
        [MarkingType.DOUBLE_SOLID, MarkingType.BOTTS_DOTS]  # the output said double solid and dashed
