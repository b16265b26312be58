"""Label images to class-id masks: Apollo colour labels (vectorised colour lookup) and folder masks."""
from __future__ import annotations

import cv2
import numpy as np

from lanenet_train.data.apollo_labels import APOLLO_LABELS, UNKNOWN_COLOR, color_lut, pack_rgb
from lanenet_train.data.sources import BadInputError, SourceSample, read_image


def apollo_train_ids(rgb: np.ndarray) -> tuple[np.ndarray, dict[tuple[int, int, int], int]]:
    """Apollo colour label to trainIds in one vectorised pass: each pixel's packed colour indexes a
    table of all 2**24 colours (no loop over classes).

    Args:
        rgb: (H, W, 3) uint8 RGB colour label.

    Returns:
        ``(ids, unknown)``: (H, W) uint8 trainIds (``noise``/``ignored`` and colours in no table entry
        become 255), and the pixel count of each colour that is in no table entry.
    """
    packed = pack_rgb(rgb)
    ids = np.take(color_lut(), packed)
    unknown: dict[tuple[int, int, int], int] = {}
    missing = ids == UNKNOWN_COLOR
    if missing.any():
        values, counts = np.unique(packed[missing], return_counts=True)
        unknown = {((int(v) >> 16) & 255, (int(v) >> 8) & 255, int(v) & 255): int(c)
                   for v, c in zip(values, counts, strict=True)}
        ids[missing] = 255
    return ids, unknown


def apollo_train_ids_per_class(rgb: np.ndarray) -> np.ndarray:
    """The same mapping by comparing the image with each class colour in turn (the slow way; for the bench)."""
    ids = np.full(rgb.shape[:2], 255, np.uint8)
    for label in APOLLO_LABELS:
        ids[np.all(rgb == np.array(label.color, np.uint8), axis=-1)] = label.train_id
    return ids


def apollo_mapper(sample: SourceSample, image: np.ndarray) -> tuple[np.ndarray, None, dict]:
    """Read an Apollo colour label, check its size against the image, map it to trainIds."""
    label = read_image(sample.label, sample.origin, cv2.IMREAD_COLOR)
    if label.shape[:2] != image.shape[:2]:
        raise BadInputError(f"{sample.label}: label is {label.shape[1]}x{label.shape[0]} but its image "
                       f"{sample.image} is {image.shape[1]}x{image.shape[0]}; labels must match their image")
    ids, unknown = apollo_train_ids(cv2.cvtColor(label, cv2.COLOR_BGR2RGB))
    return ids, None, unknown


def _single_channel(path, arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 3:
        if arr.shape[2] == 1 or (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
            arr = arr[..., 0]
        else:
            raise BadInputError(f"{path}: {what} has colour channels; folder masks must be single-channel class ids")
    if arr.dtype != np.uint8:
        raise BadInputError(f"{path}: {what} is {arr.dtype}; save it as 8-bit PNG")
    return arr


def folder_mapper(value_map: np.ndarray):
    """A mapper for folder masks: pixel values through ``value_map`` (256 entries; 254 = not in the table)."""
    def mapper(sample: SourceSample, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, dict]:
        raw = _single_channel(sample.label, read_image(sample.label, sample.origin, cv2.IMREAD_UNCHANGED), "mask")
        if raw.shape != image.shape[:2]:
            raise BadInputError(f"{sample.label}: mask is {raw.shape[1]}x{raw.shape[0]} but its image {sample.image} "
                           f"is {image.shape[1]}x{image.shape[0]}; masks must match their image")
        mask = cv2.LUT(raw, value_map)
        unknown = {}
        if (mask == UNKNOWN_COLOR).any():
            counts = np.bincount(raw[mask == UNKNOWN_COLOR], minlength=256)
            unknown = {int(v): int(c) for v, c in enumerate(counts) if c}
            mask[mask == UNKNOWN_COLOR] = 255
        instance = None
        if sample.instance is not None:
            instance = _single_channel(sample.instance, read_image(sample.instance, sample.origin,
                                                                   cv2.IMREAD_UNCHANGED), "instance mask")
            if instance.shape != raw.shape:
                raise BadInputError(f"{sample.instance}: instance mask size differs from its mask {sample.label}")
        return mask, instance, unknown
    return mapper


def value_map_for(classes: list[dict]) -> np.ndarray:
    """256-entry lookup from mask value to class id: listed ids map to themselves, 255 stays ignore,
    any other value to 254 (reported, then ignored)."""
    lut = np.full(256, UNKNOWN_COLOR, np.uint8)
    for c in classes:
        lut[c["id"]] = c["id"]
    lut[255] = 255
    return lut
