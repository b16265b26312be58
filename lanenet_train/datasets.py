"""Training data: samples from canonical datasets (docs/dataset_layout.md) or TAO image + mask folders.

``build_samples`` turns the spec's data sources into flat sample records with absolute paths,
``resolve_classes`` applies ``target_class_mapping`` (a look-up table from dataset class ids to training
class ids), and :class:`LaneDataset` reads, crops the ROI, resizes, augments and normalises one sample.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from lanenet_ros.lanes import LEARNED_COLORS, LEARNED_TYPES, MarkingType
from lanenet_train.augment import IGNORE, Augmenter
from lanenet_train.data.layout import DatasetError, load_dataset, samples_in_split
from lanenet_train.data.stats import enet_weights

HOOD = "hood"  # the bonnet class of converted data (synth --label-hood): not a lane; LaneNet's hood_logits target
DEFAULT_COLORS = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
                  (255, 0, 255), (0, 255, 255)]


@dataclass
class SourceData:
    """The samples of one data source and its class table (``meta`` is dataset.json, or None for folders)."""

    samples: list[dict[str, Any]]
    classes: list[dict[str, Any]]
    meta: dict[str, Any] | None = None
    root: str | None = None


@dataclass
class ClassTable:
    """Training classes and the LUT from source ids; ``pixel_counts`` per training class when known."""

    names: list[str]
    colors: list[tuple[int, int, int]]
    luts: list[np.ndarray] = field(default_factory=list)  # one (256,) uint8 per source
    hood_ids: list[int | None] = field(default_factory=list)  # per source: its class id of the bonnet, if any
    pixel_counts: list[float] | None = None
    dataset_weights: list[float] | None = None
    uncounted: list[str] = field(default_factory=list)  # dataset roots without pixel counts (no `stats` run)


def read_source(src: Any, image_extension: str, mapping_keys: Sequence[str]) -> SourceData:
    """Samples of one ``DataSource`` (canonical dataset split, or image + label folders).

    Args:
        src: ``spec.DataSource``.
        image_extension: extension of folder images.
        mapping_keys: keys of ``target_class_mapping``; folder masks hold id k for the k-th key.

    Returns:
        The source's samples (absolute paths) and class table.

    Raises:
        DatasetError: missing files, an empty split or an image without its mask.
    """
    if src.dataset_root:
        meta, samples = load_dataset(src.dataset_root)
        chosen = samples_in_split(samples, src.split)
        if not chosen:
            raise DatasetError(f"{src.dataset_root}: split {src.split!r} is empty; splits are "
                               f"{sorted({s['split'] for s in samples})}")
        root = Path(src.dataset_root)
        for s in chosen:
            s.update({k: str(root / s[k]) if s.get(k) else None for k in ("image", "mask", "instance")})
        return SourceData(chosen, meta["classes"], meta, str(src.dataset_root))
    return _read_folders(src, image_extension, mapping_keys)


def _read_folders(src: Any, ext: str, keys: Sequence[str]) -> SourceData:
    images = sorted(Path(src.image_directory_path).glob(f"*.{ext}"))
    if not images:
        raise DatasetError(f"{src.image_directory_path}: no *.{ext} images; check image_extension")
    samples = []
    for img in images:
        mask = Path(src.label_directory_path) / f"{img.stem}.png"
        if not mask.is_file():
            raise DatasetError(f"{mask}: label for {img.name} not found; masks are PNGs named like the images")
        inst = Path(src.instance_directory_path) / f"{img.stem}.png" if src.instance_directory_path else None
        samples.append({"id": img.stem, "image": str(img), "mask": str(mask),
                        "instance": str(inst) if inst and inst.is_file() else None})
    names = ["background", *(keys or ["lane"])]
    return SourceData(samples, [{"id": i, "name": n} for i, n in enumerate(names)])


def resolve_classes(sources: Sequence[SourceData], mapping: Sequence[Any], binary: bool) -> ClassTable:
    """Training class table and one id look-up table per source.

    Without a mapping the first source's classes are kept (LaneNet merges every non-background class into
    ``lane``); with one, the training classes are background + the mapping's values in order, and dataset
    classes not named by a key become background.

    Args:
        sources: the data sources (training first).
        mapping: ``spec.ClassMapping`` items.
        binary: LaneNet (two classes) rather than multi-class.

    Returns:
        The class table; pixel counts are merged through the LUTs when every source has them.
    """
    first = sources[0].classes
    if mapping:
        names = ["background", *dict.fromkeys(m.value for m in mapping)]
    elif binary:
        names = ["background", "lane"]
    else:
        names = [c["name"] for c in sorted(first, key=lambda c: c["id"])]
    colors = [_color(first, n, i) for i, n in enumerate(names)]
    table = ClassTable(names, colors)
    for src in sources:
        table.luts.append(class_lut(src.classes, mapping, names, binary))
        table.hood_ids.append(next((c["id"] for c in src.classes if c["name"] == HOOD), None))
    table.pixel_counts = _merged_counts(sources, table, len(names))
    if sources[0].meta and not mapping and not binary:
        table.dataset_weights = sources[0].meta.get("class_weights")
    return table


def _color(classes: list[dict], name: str, index: int) -> tuple[int, int, int]:
    found = [c.get("color") for c in classes if c["name"] == name and c.get("color")]
    return tuple(found[0]) if found else DEFAULT_COLORS[index % len(DEFAULT_COLORS)]


def class_lut(classes: list[dict], mapping: Sequence[Any], names: list[str], binary: bool) -> np.ndarray:
    """(256,) uint8 table from a source's class ids to training class ids (255 stays ignore)."""
    lut = np.zeros(256, np.uint8)
    lut[IGNORE] = IGNORE
    target = {m.key: names.index(m.value) for m in mapping}
    for c in classes:
        if mapping:
            lut[c["id"]] = target.get(c["name"], 0)
        elif binary:
            lut[c["id"]] = 1 if c["id"] and c["name"] != HOOD else 0
        else:
            lut[c["id"]] = names.index(c["name"]) if c["name"] in names else 0
    return lut


def _merged_counts(sources: Sequence[SourceData], table: ClassTable, n: int) -> list[float] | None:
    """Pixel counts per training class over the sources, or None when one has none (its roots are noted)."""
    counts = np.zeros(n)
    complete = True
    for src, lut in zip(sources, table.luts, strict=True):
        given = (src.meta or {}).get("pixel_counts")
        if not given:
            complete = False
            table.uncounted += [src.root] if src.root else []
            continue
        for cls in src.classes:
            if cls["id"] < len(given):
                counts[lut[cls["id"]]] += given[cls["id"]]
    return counts.tolist() if complete else None


def class_weights_for(loss_config: Any, table: ClassTable) -> list[float] | None:
    """Cross-entropy class weights: given in the spec, else from the dataset (``stats``), else uniform (None).

    Raises:
        ValueError: ``loss_config.class_weights`` has the wrong length, or weights are to come from the data and
            a dataset has no pixel counts (``lanenet-train stats`` was not run on it).
    """
    n = len(table.names)
    if loss_config.class_weights:
        if len(loss_config.class_weights) != n:
            raise ValueError(f"loss_config.class_weights: {len(loss_config.class_weights)} values for {n} "
                             f"classes ({', '.join(table.names)}); give one per class")
        return list(loss_config.class_weights)
    if not loss_config.class_weights_from_dataset:
        return None
    if table.uncounted:  # uniform weights, or weights from part of the data, would change the loss unseen
        root = table.uncounted[0]
        raise ValueError(f"loss_config.class_weights_from_dataset: {root} has no pixel counts; run "
                         f"`lanenet-train stats --dataset {root}`, or give loss_config.class_weights")
    if table.dataset_weights and len(table.dataset_weights) == n:
        return list(table.dataset_weights)
    return enet_weights(table.pixel_counts).tolist() if table.pixel_counts else None


@dataclass
class InputFormat:
    """How images become network input (the ``model_config`` fields the runtime preprocessor also uses)."""

    width: int
    height: int
    roi_top: float = 0.0
    channel_order: str = "rgb"
    mean: Sequence[float] = (0.485, 0.456, 0.406)
    std: Sequence[float] = (0.229, 0.224, 0.225)

    @classmethod
    def from_model_config(cls, m: Any) -> InputFormat:
        """Build from ``spec.ModelConfig``."""
        return cls(m.input_image_width, m.input_image_height, m.roi_top, m.channel_order, m.mean, m.std)

    def normalise(self, image_bgr: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 BGR -> (3, H, W) float32 in the network's channel order and normalisation."""
        img = image_bgr[..., ::-1] if self.channel_order == "rgb" else image_bgr
        img = (img.astype(np.float32) / 255.0 - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(img.transpose(2, 0, 1))


def read_resized(path: str, fmt: InputFormat, interpolation: int, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Read an image or mask, cut the ROI rows from the top and resize to the network input.

    Raises:
        DatasetError: the file cannot be read.
    """
    img = cv2.imread(path, flags)
    if img is None:
        raise DatasetError(f"{path}: cannot read this image (missing or corrupt)")
    if img.ndim == 3 and flags == cv2.IMREAD_UNCHANGED:  # masks are single-channel; take the first
        img = img[..., 0]
    top = round(img.shape[0] * fmt.roi_top)  # as lanenet_ros.preprocess cuts it
    return cv2.resize(img[top:], (fmt.width, fmt.height), interpolation=interpolation)


def marking_targets(instance: np.ndarray | None, markings: Sequence[Sequence[int]] | None,
                    shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel targets of the marking output from the lane ids and each lane's (type, colour) values (lane
    ``k`` has ``markings[k - 1]``): the index in ``LEARNED_TYPES`` and in ``LEARNED_COLORS``, 255 off the
    lanes, on a lane whose type or colour is not learned, and everywhere (``shape``) in a sample without lane
    ids or markings."""
    if instance is None or markings is None:
        return np.full(shape, IGNORE, np.uint8), np.full(shape, IGNORE, np.uint8)
    types = np.full(256, IGNORE, np.uint8)
    colors = np.full(256, IGNORE, np.uint8)
    for k, (kind, color) in enumerate(markings[:254], 1):
        types[k] = _TYPE_INDEX.get(int(kind), IGNORE)
        colors[k] = _COLOR_INDEX.get(int(color), IGNORE)
    return types[instance], colors[instance]


_TYPE_INDEX = {int(t): i for i, t in enumerate(LEARNED_TYPES)}
_COLOR_INDEX = {int(c): i for i, c in enumerate(LEARNED_COLORS)}
# a mirrored image turns a solid-dashed line (solid on the left) into a dashed-solid one
_IDENTITY = np.arange(256, dtype=np.uint8)
_MIRROR_TYPES = _IDENTITY.copy()
_MIRROR_TYPES[[_TYPE_INDEX[MarkingType.SOLID_DASHED], _TYPE_INDEX[MarkingType.DASHED_SOLID]]] = \
    [_TYPE_INDEX[MarkingType.DASHED_SOLID], _TYPE_INDEX[MarkingType.SOLID_DASHED]]
_MIRROR_STACK = np.stack([_IDENTITY, _IDENTITY, _MIRROR_TYPES, _IDENTITY])  # mask, hood, types, colours


class LaneDataset(Dataset):
    """Samples as network tensors: ``image`` (3,H,W) float32, ``mask``, ``instance``, ``hood``, ``marking_type``
    and ``marking_color`` (H,W) int64, ``index``. ``hood`` is 1 on the bonnet, 0 elsewhere, 255 (ignore)
    everywhere for a source that does not label bonnets; ``marking_type`` / ``marking_color`` are each lane
    pixel's index in ``LEARNED_TYPES`` / ``LEARNED_COLORS`` (:func:`marking_targets`), 255 elsewhere and in
    samples without markings.

    Augmentation draws from ``np.random.default_rng((seed, epoch, index))``, so a sample is augmented the
    same way whichever worker or DDP rank loads it, and a resumed run sees the same data.

    Args:
        samples: records with absolute ``image``, ``mask``, ``instance`` (or None) paths and ``lut`` index.
        luts: one (256,) class LUT per source.
        fmt: input format.
        augmenter: None for evaluation.
        seed: base seed of the augmentation.
        hood_ids: per source, its class id of the bonnet (None: bonnets not labelled).
    """

    def __init__(self, samples: list[dict], luts: list[np.ndarray], fmt: InputFormat,
                 augmenter: Augmenter | None = None, seed: int = 0, hood_ids: Sequence[int | None] = ()) -> None:
        self.samples, self.luts, self.fmt, self.augmenter, self.seed = samples, luts, fmt, augmenter, seed
        self.hood_ids = list(hood_ids) or [None] * len(luts)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The sample at input size, before augmentation: (BGR uint8 image, class ids, lane ids or None)."""
        image, mask, instance, _ = self.load_with_hood(index)
        return image, mask, instance

    def load_with_hood(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """:meth:`load` and the bonnet target (1 bonnet, 0 not, 255 where bonnets are not labelled)."""
        s = self.samples[index]
        source = s.get("source", 0)
        image = read_resized(s["image"], self.fmt, cv2.INTER_LINEAR, cv2.IMREAD_COLOR)
        raw = read_resized(s["mask"], self.fmt, cv2.INTER_NEAREST)
        hood_id = self.hood_ids[source]
        hood = np.full_like(raw, IGNORE) if hood_id is None else np.where(raw == IGNORE, IGNORE, raw == hood_id)
        instance = read_resized(s["instance"], self.fmt, cv2.INTER_NEAREST) if s.get("instance") else None
        return image, self.luts[source][raw], instance, hood.astype(np.uint8)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask, instance, hood = self.load_with_hood(index)
        kinds, colors = marking_targets(instance, self.samples[index].get("markings"), mask.shape)
        if self.augmenter is not None:  # the bonnet and the markings ride along as more mask channels
            rng = np.random.default_rng((self.seed, self.epoch, index))
            image, stack, instance = self.augmenter(rng, image, np.dstack([mask, hood, kinds, colors]), instance,
                                                    _MIRROR_STACK)
            mask, hood, kinds, colors = (stack[..., i] for i in range(4))
        if instance is None:
            instance = np.full_like(mask, IGNORE)
        tensor = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
        return {"image": torch.from_numpy(self.fmt.normalise(image)), "mask": tensor(mask),
                "instance": tensor(instance), "hood": tensor(hood), "marking_type": tensor(kinds),
                "marking_color": tensor(colors), "index": index}


def build_dataset(sources: Sequence[Any], spec: Any, train: bool) -> tuple[LaneDataset, ClassTable]:
    """The dataset of the spec's training (``train``) or validation sources, with its class table.

    The class table always comes from the training sources (plus these), so ids agree between the two.

    Raises:
        DatasetError: no sources, or a problem in a source.
    """
    ds = spec.dataset_config
    keys = [m.key for m in ds.target_class_mapping]
    if not sources:
        raise DatasetError("dataset_config: no data sources given; add data_sources { dataset_root: ... }")
    read = [read_source(src, ds.image_extension, keys) for src in sources]
    train_read = read if train else [read_source(s, ds.image_extension, keys) for s in ds.data_sources[:1]] + read
    table = resolve_classes(train_read, ds.target_class_mapping, spec.model_config.architecture == "lanenet")
    luts = table.luts if train else table.luts[1:]
    samples = [dict(s, source=i) for i, src in enumerate(read) for s in src.samples]
    augmenter = Augmenter.from_config(spec.augmentation_config) if train else None
    fmt = InputFormat.from_model_config(spec.model_config)
    hood_ids = table.hood_ids if train else table.hood_ids[1:]
    return LaneDataset(samples, luts, fmt, augmenter, spec.train_config.seed, hood_ids), table
