"""The self-description every lanenet model carries (docs/model_format.md), and reading it back.

An ONNX model stores a JSON object under the metadata key ``lanenet``; a TensorRT engine keeps the
same JSON in a sidecar file beside it (``<engine>.json``, see :mod:`lanenet_ros.backends.engine_cache`).
Reading needs only ONNX Runtime (no ``onnx``, no torch), so the car can check a model it was given.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lanenet_ros.lanes import LEARNED_COLORS, LEARNED_TYPES

METADATA_KEY = "lanenet"
FORMAT_VERSION = 1
ARCHITECTURES = {
    "lanenet": ("binary_logits", "embedding"),
    "deeplabv3plus": ("class_logits",),
}
OUTPUT_MEANINGS = ("binary_logits", "embedding", "class_logits", "hood_logits", "marking_logits", "painted_logits")
MARKING_CHANNELS = len(LEARNED_TYPES) + len(LEARNED_COLORS)
"""Channels of a ``marking_logits`` output: the types of ``LEARNED_TYPES``, then the colours of ``LEARNED_COLORS``."""
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


class ModelError(Exception):
    """A model file that cannot be used; the message names the file and what is wrong."""


@dataclass
class ModelInfo:
    """What a model is and how to feed it (one JSON object, see docs/model_format.md)."""

    architecture: str
    input_width: int
    input_height: int
    outputs: dict[str, str]
    input_name: str = "input"
    input_channels: int = 3
    channel_order: str = "rgb"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    roi_top: float = 0.0
    class_names: list[str] = field(default_factory=lambda: ["background", "lane"])
    class_colors: list[tuple[int, int, int]] = field(default_factory=lambda: [(0, 0, 0), (255, 255, 255)])
    lane_class_ids: list[int] = field(default_factory=lambda: [1])
    embedding_dim: int = 0
    spec_fingerprint: str = ""
    dynamic_batch: bool = False
    opset: int = 0
    decode: list[str] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    @property
    def num_classes(self) -> int:
        """Number of classes in the class table (background included)."""
        return len(self.class_names)

    def output_for(self, meaning: str) -> str | None:
        """Name of the output tensor with the given meaning (``embedding``, ...), or None."""
        return next((name for name, m in self.outputs.items() if m == meaning), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        data["class_colors"] = [list(c) for c in self.class_colors]
        return data

    def to_json(self) -> str:
        """The metadata value written into the ONNX file."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> ModelInfo:
        """Build and validate from the decoded JSON.

        Args:
            data: the decoded ``lanenet`` metadata object.
            source: file name used in error messages.

        Returns:
            A validated ModelInfo.

        Raises:
            ModelError: a field is missing, has the wrong type, or contradicts another.
        """
        if not isinstance(data, dict):
            raise ModelError(f"{source}: '{METADATA_KEY}' metadata must be a JSON object, got {type(data).__name__}")
        missing = [k for k in ("architecture", "input_width", "input_height", "outputs") if k not in data]
        if missing:
            raise ModelError(f"{source}: '{METADATA_KEY}' metadata lacks {', '.join(missing)}; re-export the model "
                             "with `lanenet-train export`")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        _check_types(known, source)
        try:
            info = cls(**known)
            info.mean, info.std = tuple(float(v) for v in info.mean), tuple(float(v) for v in info.std)
            info.class_colors = [tuple(int(c) for c in rgb) for rgb in info.class_colors]
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source}: malformed '{METADATA_KEY}' metadata: {exc}") from exc
        info.validate(source)
        return info

    def validate(self, source: str = "model") -> None:
        """Check the fields agree with each other.

        Raises:
            ModelError: naming ``source`` and the first problem found.
        """
        for problem in _problems(self):
            raise ModelError(f"{source}: {problem}")


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "architecture": (str,), "input_name": (str,), "channel_order": (str,), "spec_fingerprint": (str,),
    "input_width": (int,), "input_height": (int,), "input_channels": (int,), "embedding_dim": (int,),
    "opset": (int,), "format_version": (int,), "roi_top": (int, float), "dynamic_batch": (bool,),
    "mean": (list, tuple), "std": (list, tuple), "class_names": (list,), "class_colors": (list,),
    "lane_class_ids": (list,), "outputs": (dict,), "decode": (list,),
}


def _check_types(data: dict[str, Any], source: str) -> None:
    for name, value in data.items():
        types = _FIELD_TYPES[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ModelError(f"{source}: '{METADATA_KEY}' metadata field {name!r} must be "
                             f"{' or '.join(t.__name__ for t in types)}, got {value!r}")


def _problems(info: ModelInfo) -> list[str]:
    """Every inconsistency in ``info``, each one sentence saying what is wrong."""
    out = []
    if info.format_version > FORMAT_VERSION:
        out.append(f"format_version {info.format_version!r} is newer than this runtime reads ({FORMAT_VERSION}); "
                   "update lanenet_ros")
    return out + _output_problems(info) + _input_problems(info) + _class_table_problems(info)


def _output_problems(info: ModelInfo) -> list[str]:
    out = []
    if info.architecture not in ARCHITECTURES:
        out.append(f"unknown architecture {info.architecture!r}; expected one of {sorted(ARCHITECTURES)}")
    else:
        meanings = set(info.outputs.values())
        absent = [m for m in ARCHITECTURES[info.architecture] if m not in meanings]
        if absent:
            out.append(f"architecture {info.architecture!r} needs outputs {absent} but 'outputs' maps only "
                       f"{sorted(meanings)}")
    bad = {n: m for n, m in info.outputs.items() if m not in OUTPUT_MEANINGS}
    if bad:
        out.append(f"outputs {bad} have unknown meanings; expected one of {list(OUTPUT_MEANINGS)}")
    return out


def _input_problems(info: ModelInfo) -> list[str]:
    out = [f"{name} must be a positive integer, got {getattr(info, name)!r}"
           for name in ("input_width", "input_height", "input_channels") if not 0 < getattr(info, name) <= 8192]
    if info.channel_order not in ("rgb", "bgr"):
        out.append(f"channel_order must be 'rgb' or 'bgr', got {info.channel_order!r}")
    if len(info.mean) != info.input_channels or len(info.std) != info.input_channels:
        out.append(f"mean {list(info.mean)} and std {list(info.std)} need {info.input_channels} values each")
    if any(s <= 0 for s in info.std):
        out.append(f"std values must be positive, got {list(info.std)}")
    if not 0.0 <= float(info.roi_top) < 1.0:
        out.append(f"roi_top must be in [0, 1), got {info.roi_top!r}")
    return out


def _class_table_problems(info: ModelInfo) -> list[str]:
    out = []
    if len(info.class_names) < 2:
        out.append(f"class_names needs background and at least one lane class, got {info.class_names}")
    if len(info.class_colors) != len(info.class_names):
        out.append(f"{len(info.class_names)} class_names but {len(info.class_colors)} class_colors")
    if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in info.class_colors):
        out.append(f"class_colors must be RGB triples in 0..255, got {info.class_colors}")
    wrong = [i for i in info.lane_class_ids if not 0 < i < len(info.class_names)]
    if wrong or not info.lane_class_ids:
        out.append(f"lane_class_ids {info.lane_class_ids} must be non-empty ids in 1..{len(info.class_names) - 1}")
    if info.output_for("embedding") is not None and info.embedding_dim <= 0:
        out.append(f"an 'embedding' output needs embedding_dim > 0, got {info.embedding_dim}")
    return out


def check_graph(info: ModelInfo, inputs: dict[str, list], outputs: dict[str, list], source: str) -> None:
    """Check the description against the graph's real tensors.

    Args:
        info: the model's description.
        inputs: input tensor name -> shape (ints, or strings / None for dynamic dims).
        outputs: output tensor name -> shape.
        source: file name for error messages.

    Raises:
        ModelError: the input or an output named in the metadata is absent, or shapes disagree.
    """
    if info.input_name not in inputs:
        raise ModelError(f"{source}: metadata names input {info.input_name!r} but the graph's inputs are "
                         f"{sorted(inputs)}")
    absent = [name for name in info.outputs if name not in outputs]
    if absent:
        raise ModelError(f"{source}: outputs {absent} named in the metadata are not in the graph, whose outputs "
                         f"are {sorted(outputs)}")
    shape = list(inputs[info.input_name])
    expected = [info.input_channels, info.input_height, info.input_width]
    if len(shape) != 4 or list(shape[1:]) != expected:
        raise ModelError(f"{source}: input {info.input_name!r} has shape {shape} but the metadata says "
                         f"(N, {', '.join(map(str, expected))}); the metadata does not describe this graph")
    _check_output_channels(info, outputs, source)


def _check_output_channels(info: ModelInfo, outputs: dict[str, list], source: str) -> None:
    expected = {"binary_logits": 2, "embedding": info.embedding_dim, "class_logits": info.num_classes,
                "hood_logits": 1, "marking_logits": MARKING_CHANNELS, "painted_logits": 1}
    for name, meaning in info.outputs.items():
        shape = list(outputs[name])
        channels = shape[1] if len(shape) == 4 else None
        if len(shape) != 4 or (isinstance(channels, int) and channels != expected[meaning]):
            raise ModelError(f"{source}: output {name!r} ({meaning}) has shape {shape}; expected "
                             f"(N, {expected[meaning]}, H, W)")


def info_from_session(session: Any, source: str) -> ModelInfo:
    """Read and check the description of an open ``onnxruntime.InferenceSession``.

    Args:
        session: the session of the model.
        source: file name for error messages.

    Returns:
        The validated ModelInfo, checked against the session's inputs and outputs.

    Raises:
        ModelError: missing or invalid metadata, or metadata that does not fit the graph.
    """
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise ModelError(f"{source}: no '{METADATA_KEY}' metadata, so the runtime cannot tell what this model is; "
                         "export it with `lanenet-train export` (see docs/model_format.md)")
    info = parse_info_json(meta[METADATA_KEY], source)
    check_graph(info, {i.name: i.shape for i in session.get_inputs()},
                {o.name: o.shape for o in session.get_outputs()}, source)
    return info


def parse_info_json(text: str, source: str) -> ModelInfo:
    """Decode the ``lanenet`` JSON text; ModelError when it is not JSON or not valid."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{source}: '{METADATA_KEY}' metadata is not valid JSON ({exc})") from exc
    return ModelInfo.from_dict(data, source)


def open_onnx_session(path: str | Path, providers: list | None = None, options: Any = None) -> Any:
    """Open an ONNX Runtime session, turning load failures into a ModelError that says why.

    Args:
        path: the .onnx file.
        providers: ONNX Runtime providers (CPU when None).
        options: an ``onnxruntime.SessionOptions``, or None.

    Returns:
        The ``onnxruntime.InferenceSession``.

    Raises:
        ModelError: the file is missing, empty, not ONNX, or truncated / corrupt.
    """
    import onnxruntime as ort

    path = Path(path)
    _check_readable(path)
    try:
        return ort.InferenceSession(str(path), sess_options=options,
                                    providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types per failure; all mean "cannot load"
        raise ModelError(f"{path}: {_describe_load_failure(path)} ({str(exc).strip()[:200]})") from exc


def _check_readable(path: Path) -> None:
    if not path.is_file():
        raise ModelError(f"{path}: model file does not exist; check the path (or the `model` parameter)")
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: model file is empty; copy or export it again")


def _describe_load_failure(path: Path) -> str:
    """Guess from the first bytes why a file is not a loadable ONNX model."""
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        return ("is a zip archive, not an ONNX model (a PyTorch checkpoint?); convert it with "
                "`lanenet-train export -m CHECKPOINT -o model.onnx`")
    if head[:1] == b"\x08":
        return (f"looks like ONNX but cannot be parsed: the file is truncated or corrupt "
                f"({path.stat().st_size} bytes); export or copy it again")
    return "is not an ONNX model; give the .onnx file written by `lanenet-train export`"


def read_model_info(path: str | Path) -> ModelInfo:
    """Read a model's description: ONNX metadata, or the sidecar JSON of a TensorRT engine.

    Args:
        path: a ``.onnx`` model, or an engine (``.engine`` / ``.plan`` / ``.trt``) with ``<engine>.json``.

    Returns:
        The validated ModelInfo (for ONNX, also checked against the graph's tensors).

    Raises:
        ModelError: the file is missing, unreadable, not a model, or its description is missing or wrong.
    """
    path = Path(path)
    if path.suffix.lower() in ENGINE_SUFFIXES:
        from lanenet_ros.backends.engine_cache import read_sidecar

        _check_readable(path)
        return read_sidecar(path)[0]
    return info_from_session(open_onnx_session(path), str(path))
