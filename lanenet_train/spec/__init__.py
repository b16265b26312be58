"""The training spec: TAO's protobuf-text format, typed and validated.

``load_spec(path, overrides)`` reads a spec file, applies ``key=value`` overrides, checks every field
(unknown names get the nearest valid one suggested; values are checked against their range), and
returns a :class:`Spec`. ``spec_to_dict`` / ``spec_from_dict`` round-trip it through the plain dict stored
in checkpoints, ``spec_to_text`` writes it back in the spec format, ``spec_fingerprint`` hashes it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lanenet_ros.decode.settings import SettingError, parse_pairs
from lanenet_train.spec.bind import apply_override, bind, field_types
from lanenet_train.spec.schema import (
    DataSource,
    LearningRate,
    ModelConfig,
    PolySchedule,
    SoftStartAnnealingSchedule,
    Spec,
)
from lanenet_train.spec.textformat import Entry, Scalar, SpecError, parse_text

__all__ = ["Spec", "SpecError", "load_spec", "parse_spec", "spec_fingerprint", "spec_from_dict",
           "spec_to_dict", "spec_to_text"]


def load_spec(path: str | os.PathLike, overrides: Sequence[str] = (), check_paths: bool = True) -> Spec:
    """Read, override and validate a spec file.

    Args:
        path: spec file in protobuf text format.
        overrides: ``dotted.path=value`` strings applied after reading.
        check_paths: require the data-source folders to exist (inference and export do not need them).

    Returns:
        The validated spec, with data paths made absolute.

    Raises:
        SpecError: the file is missing, unreadable or invalid; the message names the line.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found; pass an existing file to -e")
    return parse_spec(path.read_text(encoding="utf-8"), str(path), overrides, check_paths)


def parse_spec(text: str, source: str = "<spec>", overrides: Sequence[str] = (),
               check_paths: bool = True) -> Spec:
    """Like :func:`load_spec`, from the file's text."""
    entries = parse_text(text, source)
    for override in overrides:
        apply_override(entries, override, Spec)
    lines: dict[str, str] = {}
    spec = bind(entries, Spec, lines)
    _validate(spec, lines, check_paths)
    return spec


def _validate(spec: Spec, lines: dict[str, str], check_paths: bool) -> None:
    def where(key: str) -> str:
        return lines.get(key, "spec")

    m, aug, lr = spec.model_config, spec.augmentation_config, spec.train_config.learning_rate
    for side in ("width", "height"):
        size = getattr(m, f"input_image_{side}")
        if size % 16:
            raise SpecError(f"{where(f'model_config.input_image_{side}')}: model_config.input_image_{side} "
                            f"{size} must be a multiple of 16 (e.g. {size // 16 * 16 or 16})")
        out = getattr(aug, f"output_{side}")
        if out not in (0, size):
            raise SpecError(f"{where(f'augmentation_config.output_{side}')}: augmentation_config.output_{side} "
                            f"{out} differs from model_config.input_image_{side} {size}; set it to {size} or 0")
    if aug.zoom_min > aug.zoom_max:
        raise SpecError(f"{where('augmentation_config.zoom_min')}: zoom_min {aug.zoom_min} > zoom_max "
                        f"{aug.zoom_max}; swap them")
    for name in ("mean", "std"):
        if len(getattr(m, name)) != m.input_image_channels:
            raise SpecError(f"{where('model_config.' + name)}: model_config.{name} needs "
                            f"{m.input_image_channels} values (one per channel)")
    if lr.soft_start_annealing_schedule and lr.poly_schedule:
        raise SpecError(f"{where('train_config.learning_rate.poly_schedule')}: give one learning-rate "
                        "schedule, not both soft_start_annealing_schedule and poly_schedule")
    if not lr.poly_schedule and not lr.soft_start_annealing_schedule:
        lr.soft_start_annealing_schedule = SoftStartAnnealingSchedule()
    sched = lr.soft_start_annealing_schedule
    if sched and sched.soft_start > sched.annealing:
        raise SpecError(f"{where('train_config.learning_rate.soft_start_annealing_schedule')}: soft_start "
                        f"{sched.soft_start} must not exceed annealing {sched.annealing}")
    try:
        parse_pairs(spec.evaluation_config.decode)
    except SettingError as exc:
        raise SpecError(f"{where('evaluation_config.decode')}: evaluation_config.decode: {exc}") from None
    _validate_sources(spec, where, check_paths)


def _validate_sources(spec: Spec, where: Any, check_paths: bool) -> None:
    ds = spec.dataset_config
    for group, default_split in (("data_sources", "train"), ("validation_data_sources", "val")):
        for i, src in enumerate(getattr(ds, group)):
            key = f"dataset_config.{group}[{i}]"
            src.split = src.split or default_split
            if bool(src.dataset_root) == bool(src.image_directory_path or src.label_directory_path):
                raise SpecError(f"{where(f'dataset_config.{group}')}: {key} needs either dataset_root or "
                                "image_directory_path + label_directory_path")
            if not src.dataset_root and not (src.image_directory_path and src.label_directory_path):
                raise SpecError(f"{where(f'dataset_config.{group}')}: {key} needs both image_directory_path "
                                "and label_directory_path")
            for name in ("dataset_root", "image_directory_path", "label_directory_path",
                         "instance_directory_path"):
                value = getattr(src, name)
                if value:
                    setattr(src, name, os.path.abspath(value))
                    if check_paths and not os.path.isdir(value):
                        raise SpecError(f"{where(f'{key}.{name}')}: {key}.{name}: folder {value!r} does not "
                                        "exist; create it (lanenet-train convert / synth) or fix the path")


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    """The spec as plain JSON-able data (what checkpoints store)."""
    return dataclasses.asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> Spec:
    """Rebuild a :class:`Spec` from :func:`spec_to_dict` output (no path checks)."""
    return _from_dict(data, Spec)


def _from_dict(data: dict[str, Any], cls: type) -> Any:
    kwargs = {}
    for name, (tp, repeated) in field_types(cls).items():
        if name not in data or data[name] is None:
            continue
        value = data[name]
        if dataclasses.is_dataclass(tp):
            value = [_from_dict(v, tp) for v in value] if repeated else _from_dict(value, tp)
        kwargs[name] = value
    return cls(**kwargs)


def spec_fingerprint(spec: Spec) -> str:
    """sha256 of the spec's canonical JSON."""
    return hashlib.sha256(json.dumps(spec_to_dict(spec), sort_keys=True).encode()).hexdigest()


def spec_to_text(spec: Any, indent: int = 0) -> str:
    """Write a spec (or one of its messages) in the protobuf text format it was read from."""
    pad, out = "  " * indent, []
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if dataclasses.is_dataclass(item):
                out.append(f"{pad}{f.name} {{\n{spec_to_text(item, indent + 1)}{pad}}}\n")
            elif isinstance(item, bool):
                out.append(f"{pad}{f.name}: {str(item).lower()}\n")
            elif isinstance(item, str):
                out.append(f"{pad}{f.name}: {json.dumps(item)}\n")
            else:
                out.append(f"{pad}{f.name}: {item!r}\n")
    return "".join(out)


# re-exported for callers that build specs in code
_ = (DataSource, Entry, LearningRate, ModelConfig, PolySchedule, Scalar)
