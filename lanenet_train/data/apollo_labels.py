"""Baidu ApolloScape lane-mark classes (the dataset's official table, laneMarkDetection.py).

Colours are RGB as stored in the ``Labels_roadXX`` colour label images. ``trainId`` 0..35 are the 36
training classes; ``noise`` and ``ignored`` map to 255 (ignore).
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np


class ApolloLabel(NamedTuple):
    """One row of the Apollo lane-mark table."""

    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


APOLLO_LABELS: tuple[ApolloLabel, ...] = (
    ApolloLabel("void", 0, 0, "void", 0, False, False, (0, 0, 0)),
    ApolloLabel("s_w_d", 200, 1, "dividing", 1, False, False, (70, 130, 180)),
    ApolloLabel("s_y_d", 204, 2, "dividing", 1, False, False, (220, 20, 60)),
    ApolloLabel("ds_w_dn", 213, 3, "dividing", 1, False, True, (128, 0, 128)),
    ApolloLabel("ds_y_dn", 209, 4, "dividing", 1, False, False, (255, 0, 0)),
    ApolloLabel("sb_w_do", 206, 5, "dividing", 1, False, True, (0, 0, 60)),
    ApolloLabel("sb_y_do", 207, 6, "dividing", 1, False, True, (0, 60, 100)),
    ApolloLabel("b_w_g", 201, 7, "guiding", 2, False, False, (0, 0, 142)),
    ApolloLabel("b_y_g", 203, 8, "guiding", 2, False, False, (119, 11, 32)),
    ApolloLabel("db_w_g", 211, 9, "guiding", 2, False, True, (244, 35, 232)),
    ApolloLabel("db_y_g", 208, 10, "guiding", 2, False, True, (0, 0, 160)),
    ApolloLabel("db_w_s", 216, 11, "stopping", 3, False, True, (153, 153, 153)),
    ApolloLabel("s_w_s", 217, 12, "stopping", 3, False, False, (220, 220, 0)),
    ApolloLabel("ds_w_s", 215, 13, "stopping", 3, False, True, (250, 170, 30)),
    ApolloLabel("s_w_c", 218, 14, "chevron", 4, False, True, (102, 102, 156)),
    ApolloLabel("s_y_c", 219, 15, "chevron", 4, False, True, (128, 0, 0)),
    ApolloLabel("s_w_p", 210, 16, "parking", 5, False, False, (128, 64, 128)),
    ApolloLabel("s_n_p", 232, 17, "parking", 5, False, True, (238, 232, 170)),
    ApolloLabel("c_wy_z", 214, 18, "zebra", 6, False, False, (190, 153, 153)),
    ApolloLabel("a_w_u", 202, 19, "thru/turn", 7, False, True, (0, 0, 230)),
    ApolloLabel("a_w_t", 220, 20, "thru/turn", 7, False, False, (128, 128, 0)),
    ApolloLabel("a_w_tl", 221, 21, "thru/turn", 7, False, False, (128, 78, 160)),
    ApolloLabel("a_w_tr", 222, 22, "thru/turn", 7, False, False, (150, 100, 100)),
    ApolloLabel("a_w_tlr", 231, 23, "thru/turn", 7, False, True, (255, 165, 0)),
    ApolloLabel("a_w_l", 224, 24, "thru/turn", 7, False, False, (180, 165, 180)),
    ApolloLabel("a_w_r", 225, 25, "thru/turn", 7, False, False, (107, 142, 35)),
    ApolloLabel("a_w_lr", 226, 26, "thru/turn", 7, False, False, (201, 255, 229)),
    ApolloLabel("a_n_lu", 230, 27, "thru/turn", 7, False, True, (0, 191, 255)),
    ApolloLabel("a_w_tu", 228, 28, "thru/turn", 7, False, True, (51, 255, 51)),
    ApolloLabel("a_w_m", 229, 29, "thru/turn", 7, False, True, (250, 128, 114)),
    ApolloLabel("a_y_t", 233, 30, "thru/turn", 7, False, True, (127, 255, 0)),
    ApolloLabel("b_n_sr", 205, 31, "reduction", 8, False, False, (255, 128, 0)),
    ApolloLabel("d_wy_za", 212, 32, "attention", 9, False, True, (0, 255, 255)),
    ApolloLabel("r_wy_np", 227, 33, "no parking", 10, False, False, (178, 132, 190)),
    ApolloLabel("vom_wy_n", 223, 34, "others", 11, False, True, (128, 128, 64)),
    ApolloLabel("om_n_n", 250, 35, "others", 11, False, False, (102, 0, 204)),
    ApolloLabel("noise", 249, 255, "ignored", 255, False, True, (0, 153, 153)),
    ApolloLabel("ignored", 255, 255, "ignored", 255, False, True, (255, 255, 255)),
)

NUM_TRAIN_CLASSES = 36
UNKNOWN_COLOR = 254  # internal marker: a colour in no table entry (reported, then made ignore)


def train_classes() -> list[dict]:
    """The 36 training classes as dataset.json class entries (id = trainId, RGB colour)."""
    return [{"id": lab.train_id, "name": lab.name, "color": list(lab.color)}
            for lab in APOLLO_LABELS if lab.train_id < NUM_TRAIN_CLASSES]


def train_id_colors() -> np.ndarray:
    """(256, 3) uint8 RGB colour of each trainId (black for ids without a class)."""
    out = np.zeros((256, 3), np.uint8)
    for lab in APOLLO_LABELS:
        if lab.train_id < NUM_TRAIN_CLASSES:
            out[lab.train_id] = lab.color
    return out


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB to one key per pixel, ``r << 16 | g << 8 | b`` (uint32, one interleaving pass)."""
    rgb = np.asarray(rgb, np.uint8)
    if rgb.ndim != 3:
        return (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    zero = np.zeros(rgb.shape[:2], np.uint8)
    bgra = cv2.merge([rgb[..., 2], rgb[..., 1], rgb[..., 0], zero])
    return bgra.view("<u4")[..., 0]


@lru_cache(maxsize=1)
def color_lut() -> np.ndarray:
    """(2**24,) uint8 trainId of every packed colour; colours in no table entry map to ``UNKNOWN_COLOR``."""
    lut = np.full(1 << 24, UNKNOWN_COLOR, np.uint8)
    for lab in APOLLO_LABELS:
        r, g, b = lab.color
        lut[(r << 16) | (g << 8) | b] = lab.train_id
    return lut
