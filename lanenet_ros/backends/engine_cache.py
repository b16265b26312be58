"""TensorRT engine cache: fingerprints, sidecar files and the hit / stale / corrupt decisions.

An engine only runs on the TensorRT version and GPU it was built for, with the ONNX file it was built
from. Each engine therefore has a sidecar JSON beside it (``<engine>.json``) holding the model's
description (docs/model_format.md) and an :class:`EngineFingerprint`. Before an engine is used, the
fingerprint of "here and now" is compared with the stored one; an engine that is missing, stale (any
difference) or corrupt (unreadable sidecar, or TensorRT refuses to deserialise it) is rebuilt and written
atomically. Everything here except the ``build`` / ``deserialize`` callables is plain Python, so the
decisions are tested on files without a GPU.

The cache lives in ``$LANENET_CACHE_DIR``, else ``$XDG_CACHE_HOME/lanenet``, else ``~/.cache/lanenet``.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from lanenet_ros.fileio import atomic_write_bytes
from lanenet_ros.model_info import METADATA_KEY, ModelError, ModelInfo

T = TypeVar("T")


def default_cache_dir() -> Path:
    """The user's lanenet cache directory (not created here)."""
    if os.environ.get("LANENET_CACHE_DIR"):
        return Path(os.environ["LANENET_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lanenet"


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class EngineFingerprint:
    """Everything an engine depends on; any difference means the engine must be rebuilt."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineFingerprint:
        """Inverse of :meth:`to_dict`; KeyError / TypeError when fields are missing."""
        fields = {k: data[k] for k in cls.__dataclass_fields__}
        fields["input_shape"] = tuple(int(v) for v in fields["input_shape"])
        return cls(**fields)

    def differences(self, other: EngineFingerprint) -> list[str]:
        """Human-readable ``field: stored -> current`` lines for every field that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine[k]} -> {theirs[k]}" for k in mine if mine[k] != theirs[k]]


def sidecar_path(engine_path: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def write_sidecar(engine_path: str | Path, info: ModelInfo, fingerprint: EngineFingerprint) -> None:
    """Atomically write the model description and fingerprint beside the engine."""
    data = {METADATA_KEY: info.to_dict(), "fingerprint": fingerprint.to_dict()}
    atomic_write_bytes(sidecar_path(engine_path), json.dumps(data, indent=2, sort_keys=True).encode())


def read_sidecar(engine_path: str | Path) -> tuple[ModelInfo, EngineFingerprint]:
    """Read the sidecar of an engine.

    Args:
        engine_path: the engine file (the sidecar is ``<engine>.json``).

    Returns:
        (model description, fingerprint).

    Raises:
        ModelError: the sidecar is missing, not JSON, or lacks a valid description or fingerprint.
    """
    side = sidecar_path(engine_path)
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{engine_path}: no sidecar {side.name} beside the engine, so its model is unknown; "
                         "rebuild it with `lanenet-train gen-engine`") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{side}: unreadable sidecar ({exc}); rebuild the engine") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{side}: sidecar must be a JSON object; rebuild the engine")
    info = ModelInfo.from_dict(data.get(METADATA_KEY), str(side))
    try:
        return info, EngineFingerprint.from_dict(data["fingerprint"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{side}: missing or malformed engine fingerprint ({exc!r}); rebuild the engine") from exc


class CacheStatus(str, Enum):
    """What the cache found for an engine."""

    HIT = "hit"
    MISSING = "missing"
    STALE = "stale"
    CORRUPT = "corrupt"


@dataclass
class CacheCheck:
    """A cache decision and the reason a user would want to read."""

    status: CacheStatus
    reason: str


def check_engine(engine_path: str | Path, current: EngineFingerprint) -> CacheCheck:
    """Decide, from the files alone, whether a cached engine can be used.

    Args:
        engine_path: the engine file.
        current: the fingerprint of the ONNX model, TensorRT and GPU in use now.

    Returns:
        HIT when engine and sidecar exist and the fingerprints match; otherwise MISSING, STALE or CORRUPT
        with the reason (for STALE, every field that changed).
    """
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        return CacheCheck(CacheStatus.MISSING, f"no engine at {engine_path}")
    if engine_path.stat().st_size == 0:
        return CacheCheck(CacheStatus.CORRUPT, f"{engine_path} is empty")
    try:
        _, stored = read_sidecar(engine_path)
    except ModelError as exc:
        return CacheCheck(CacheStatus.CORRUPT, str(exc))
    changed = stored.differences(current)
    if changed:
        return CacheCheck(CacheStatus.STALE, f"{engine_path} was built for another setup ({'; '.join(changed)})")
    return CacheCheck(CacheStatus.HIT, f"{engine_path} matches this model, TensorRT and GPU")


def cached_engine_path(onnx_path: str | Path, precision: str, cache_dir: str | Path | None = None) -> Path:
    """Where the cache keeps the engine of one model file at one precision.

    The name holds the model's stem and a hash of its absolute path, so two models with the same file
    name do not overwrite each other, while a retrained model at the same path replaces its old engine.
    """
    onnx_path = Path(onnx_path).resolve()
    tag = hashlib.sha1(str(onnx_path).encode()).hexdigest()[:10]
    return Path(cache_dir or default_cache_dir()) / "engines" / f"{onnx_path.stem}-{tag}-{precision}.engine"


@contextlib.contextmanager
def build_lock(engine_path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock for one engine, so two nodes starting together build it once."""
    lock = Path(engine_path).with_name(Path(engine_path).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_or_build(engine_path: str | Path, current: EngineFingerprint, info: ModelInfo,
                  build: Callable[[], bytes], deserialize: Callable[[bytes], T | None],
                  force: bool = False) -> tuple[T, CacheCheck]:
    """Use the cached engine when it is valid; otherwise build, store and use a new one.

    Args:
        engine_path: where the engine lives (its sidecar beside it).
        current: fingerprint of the model, TensorRT and GPU in use now.
        info: the model's description, stored in the sidecar of a new engine.
        build: returns serialised engine bytes (TensorRT builder).
        deserialize: turns bytes into a usable engine; returns None or raises when they are not one.
        force: rebuild even on a hit.

    Returns:
        (the deserialised engine, the decision taken; a rebuilt corrupt engine reports CORRUPT).

    Raises:
        RuntimeError: a freshly built engine cannot be deserialised either.
    """
    with build_lock(engine_path):
        check = check_engine(engine_path, current)
        if force and check.status is CacheStatus.HIT:
            check = CacheCheck(CacheStatus.STALE, "rebuild requested (--force)")
        if check.status is CacheStatus.HIT:
            engine, error = _try_deserialize(deserialize, Path(engine_path).read_bytes())
            if engine is not None:
                return engine, check
            check = CacheCheck(CacheStatus.CORRUPT, f"{engine_path} could not be deserialised ({error})")
        data = build()
        atomic_write_bytes(engine_path, data)
        write_sidecar(engine_path, info, current)
    engine, error = _try_deserialize(deserialize, data)
    if engine is None:
        raise RuntimeError(f"{engine_path}: the engine just built cannot be deserialised ({error})")
    return engine, check


def _try_deserialize(deserialize: Callable[[bytes], T | None], data: bytes) -> tuple[T | None, str]:
    try:
        engine = deserialize(data)
    except Exception as exc:  # TensorRT raises assorted runtime errors for foreign or damaged engines
        return None, f"{type(exc).__name__}: {exc}"
    return engine, "" if engine is not None else "the runtime returned no engine"
