"""Whether what the lane branch marks is a painted line (``painted_logits``): the loss teaches 1 on labelled lanes
and 0 where the frozen lane branch marks pixels away from them, the two kinds weighing the same; the decoder
drops lanes the output rates under ``min_painted`` before the nearest ones are kept, and keeps every lane with
the setting off or without the output."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_marking_output import LANE_X, _geometry, _lane_pixels, _lanenet_outputs

from lanenet_ros.decode.decoder import DecodeParams, LaneDecoder
from lanenet_ros.model_info import ModelError, ModelInfo, check_graph
from lanenet_train.losses import painted_loss
from lanenet_train.models.lanenet import LaneNet


def test_painted_loss_teaches_lanes_one_and_marks_away_from_them_zero() -> None:
    target = torch.zeros(1, 16, 32, dtype=torch.long)
    target[0, :, 10] = 1  # a labelled lane
    target[0, :, 30] = 255  # ignored
    lane = torch.zeros(1, 2, 16, 32)
    lane[:, 0] = 1.0
    lane[0, 1, :, [10, 12, 20, 30]] = 2.0  # the branch marks the lane, its rim, a bare edge, an ignored column
    painted = torch.zeros(1, 1, 4, 8, requires_grad=True)  # stride 4: resized to the target
    loss, seen = painted_loss(painted, lane, target, margin=3)
    assert seen == 16 + 16  # the lane's pixels and the bare edge's; the rim (within 3 px) and the ignored not
    assert float(loss.detach()) == pytest.approx(math.log(2.0))  # both kinds at p = 0.5: half a log 2 each
    loss.backward()
    assert painted.grad is not None and painted.grad.abs().sum() > 0
    sure = torch.full((1, 1, 16, 32), -20.0)
    sure[0, 0, :, 10] = 20.0
    assert float(painted_loss(sure, lane, target, margin=3)[0]) < 1e-6  # right on both kinds
    nothing = torch.zeros(1, 16, 32, dtype=torch.long)
    assert painted_loss(painted, torch.zeros(1, 2, 16, 32), nothing) == (0.0, 0)


def test_lanenet_gives_a_stride_four_painted_output() -> None:
    out = LaneNet(width_multiplier=0.25, painted=True).eval()(torch.zeros(1, 3, 64, 128))
    assert tuple(out["painted_logits"].shape) == (1, 1, 16, 32) and "hood_logits" not in out


_INFO = SimpleNamespace(architecture="lanenet", class_names=["background", "lane"], lane_class_ids=[1],
                        embedding_dim=4, outputs={"binary_logits": "binary_logits", "embedding": "embedding",
                                                  "painted_logits": "painted_logits"})


def _outputs(scores):
    """The two lanes of test_marking_output, ``painted_logits`` at stride 4 rating lane k ``scores[k]`` (a
    logit) and everything else confidently unpainted."""
    out = _lanenet_outputs(with_markings=False)
    painted = np.full((1, 64, 128), -9.0, np.float32)
    for (rows, cols), score in zip(_lane_pixels(), scores, strict=True):
        painted[0, rows, cols] = score
    out["painted_logits"] = np.ascontiguousarray(painted[:, 1::4, 1::4])
    return out


def _bottoms(frame):
    """Each lane's column at the bottom row, in network pixels (the camera is 10 times wider)."""
    return pytest.approx([float(lane.x_at(719)) / 10 for lane in frame.lanes], abs=2)


def test_decoder_drops_lanes_rated_unpainted_before_keeping_the_nearest() -> None:
    geo = _geometry()
    both = list(LANE_X)
    params = DecodeParams(min_lane_pixels=10, min_painted=0.5)
    assert both == _bottoms(LaneDecoder(_INFO, params).decode(_outputs((4.0, 4.0)), geo))
    kept = LaneDecoder(_INFO, params).decode(_outputs((4.0, -4.0)), geo)
    assert both[:1] == _bottoms(kept)  # the right one rated unpainted (p 0.02) is gone
    off = DecodeParams(min_lane_pixels=10)  # min_painted 0: the output is not read
    assert both == _bottoms(LaneDecoder(_INFO, off).decode(_outputs((4.0, -4.0)), geo))
    without = {k: v for k, v in _outputs((4.0, -4.0)).items() if k != "painted_logits"}
    assert both == _bottoms(LaneDecoder(_INFO, params).decode(without, geo))  # a model without the output


def test_model_description_checks_the_painted_output() -> None:
    info = ModelInfo(architecture="lanenet", input_width=128, input_height=64, embedding_dim=4,
                     outputs={"binary_logits": "binary_logits", "embedding": "embedding",
                              "painted_logits": "painted_logits"})
    shapes = {"binary_logits": [1, 2, 64, 128], "embedding": [1, 4, 64, 128], "painted_logits": [1, 1, 16, 32]}
    check_graph(info, {"input": [1, 3, 64, 128]}, shapes, "m.onnx")
    with pytest.raises(ModelError, match=r"'painted_logits' \(painted_logits\) has shape \[1, 2, 16, 32\]"):
        check_graph(info, {"input": [1, 3, 64, 128]}, {**shapes, "painted_logits": [1, 2, 16, 32]}, "m.onnx")
