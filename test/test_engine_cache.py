"""Engine cache decisions on real files: hit, missing, stale, corrupt; sidecar; atomic writes; one build.

TensorRT cannot run here, so ``build`` and ``deserialize`` are small stand-ins with the same contract
(bytes out; an engine object or None / an exception back); everything else is the real cache code.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from model_fixtures import export_tiny

from lanenet_ros.backends.engine_cache import (
    CacheStatus,
    EngineFingerprint,
    atomic_write_bytes,
    cached_engine_path,
    check_engine,
    default_cache_dir,
    file_sha256,
    load_or_build,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from lanenet_ros.model_info import ModelError, read_model_info

MAGIC = b"TRTENGINE"


class Builder:
    """Stands in for the TensorRT builder: counts builds, returns engine bytes tagged with the count."""

    def __init__(self, delay: float = 0.0) -> None:
        self.builds, self.delay = 0, delay

    def __call__(self) -> bytes:
        self.builds += 1
        time.sleep(self.delay)
        return MAGIC + f" build {self.builds}".encode()


def deserialize(data: bytes) -> str | None:
    """Stands in for trt.Runtime.deserialize_cuda_engine: None for bytes that are not an engine."""
    return data.decode() if data.startswith(MAGIC) else None


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    export_tiny(root / "a.onnx", verify_images=1)
    export_tiny(root / "b.onnx", "deeplabv3plus", verify_images=1)
    return root / "a.onnx", root / "b.onnx"


def fingerprint(onnx: Path, **changes: object) -> EngineFingerprint:
    base = EngineFingerprint(file_sha256(onnx), "10.3.0", "NVIDIA Orin", "8.7", "fp16", (1, 3, 32, 64))
    return replace(base, **changes)


def test_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LANENET_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "lanenet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "lanenet"
    monkeypatch.setenv("LANENET_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_engine_names_separate_models_and_precisions(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a, b = tmp_path / "x" / "model.onnx", tmp_path / "y" / "model.onnx"
    assert cached_engine_path(a, "fp16", tmp_path) == cached_engine_path(a, "fp16", tmp_path)
    assert cached_engine_path(a, "fp16", tmp_path) != cached_engine_path(b, "fp16", tmp_path)
    assert cached_engine_path(a, "fp16", tmp_path) != cached_engine_path(a, "int8", tmp_path)
    assert cached_engine_path(a, "fp16", tmp_path).parent == tmp_path / "engines"


def test_fingerprint_hashes_the_onnx_bytes(models: tuple[Path, Path]) -> None:
    a, b = models
    assert file_sha256(a) == hashlib.sha256(a.read_bytes()).hexdigest()
    assert fingerprint(a).differences(fingerprint(b)) == [f"onnx_sha256: {file_sha256(a)} -> {file_sha256(b)}"]


def test_missing_then_built_then_hit(models: tuple[Path, Path], tmp_path: Path) -> None:
    onnx = models[0]
    engine_path, info, fp, build = tmp_path / "a.engine", read_model_info(onnx), fingerprint(onnx), Builder()
    assert check_engine(engine_path, fp).status is CacheStatus.MISSING
    engine, check = load_or_build(engine_path, fp, info, build, deserialize)
    assert (check.status, engine, build.builds) == (CacheStatus.MISSING, "TRTENGINE build 1", 1)
    stored_info, stored_fp = read_sidecar(engine_path)
    assert stored_info == info and stored_fp == fp
    assert read_model_info(engine_path) == info  # the engine describes itself through its sidecar
    engine, check = load_or_build(engine_path, fp, info, build, deserialize)
    assert (check.status, engine, build.builds) == (CacheStatus.HIT, "TRTENGINE build 1", 1)


@pytest.mark.parametrize(("change", "field"), [
    ({"tensorrt_version": "10.5.0"}, "tensorrt_version: 10.3.0 -> 10.5.0"),
    ({"gpu_name": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9"}, "compute_capability: 8.7 -> 8.9"),
    ({"precision": "int8"}, "precision: fp16 -> int8"),
    ({"input_shape": (4, 3, 32, 64)}, "input_shape: [1, 3, 32, 64] -> [4, 3, 32, 64]"),
])
def test_any_fingerprint_change_makes_the_engine_stale(models: tuple[Path, Path], tmp_path: Path,
                                                       change: dict, field: str) -> None:
    onnx = models[0]
    engine_path, info, build = tmp_path / "a.engine", read_model_info(onnx), Builder()
    load_or_build(engine_path, fingerprint(onnx), info, build, deserialize)
    check = check_engine(engine_path, fingerprint(onnx, **change))
    assert check.status is CacheStatus.STALE and field in check.reason
    engine, check = load_or_build(engine_path, fingerprint(onnx, **change), info, build, deserialize)
    assert (check.status, engine, build.builds) == (CacheStatus.STALE, "TRTENGINE build 2", 2)
    assert read_sidecar(engine_path)[1] == fingerprint(onnx, **change)


def test_retrained_model_at_same_path_is_stale(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = models
    engine_path = tmp_path / "m.engine"
    load_or_build(engine_path, fingerprint(a), read_model_info(a), Builder(), deserialize)
    check = check_engine(engine_path, fingerprint(b))
    assert check.status is CacheStatus.STALE and "onnx_sha256" in check.reason


@pytest.mark.parametrize("damage", ["sidecar_garbage", "sidecar_missing", "sidecar_no_fingerprint",
                                    "engine_empty", "engine_undeserialisable"])
def test_corrupt_entries_are_rebuilt(models: tuple[Path, Path], tmp_path: Path, damage: str) -> None:
    onnx = models[0]
    engine_path, info, fp, build = tmp_path / "a.engine", read_model_info(onnx), fingerprint(onnx), Builder()
    load_or_build(engine_path, fp, info, build, deserialize)
    side = sidecar_path(engine_path)
    if damage == "sidecar_garbage":
        side.write_bytes(b"\x00{not json")
    elif damage == "sidecar_missing":
        side.unlink()
    elif damage == "sidecar_no_fingerprint":
        side.write_text(json.dumps({"lanenet": info.to_dict()}))
    elif damage == "engine_empty":
        engine_path.write_bytes(b"")
    else:
        engine_path.write_bytes(b"half-written engine from a crash")
    engine, check = load_or_build(engine_path, fp, info, build, deserialize)
    assert check.status is CacheStatus.CORRUPT and check.reason
    assert (engine, build.builds) == ("TRTENGINE build 2", 2)
    assert check_engine(engine_path, fp).status is CacheStatus.HIT


def test_force_rebuilds_a_valid_engine(models: tuple[Path, Path], tmp_path: Path) -> None:
    onnx, build = models[0], Builder()
    load_or_build(tmp_path / "a.engine", fingerprint(onnx), read_model_info(onnx), build, deserialize)
    _, check = load_or_build(tmp_path / "a.engine", fingerprint(onnx), read_model_info(onnx), build, deserialize,
                             force=True)
    assert build.builds == 2 and "rebuild requested" in check.reason


def test_failed_build_leaves_the_old_engine(models: tuple[Path, Path], tmp_path: Path) -> None:
    onnx, engine_path = models[0], tmp_path / "a.engine"
    load_or_build(engine_path, fingerprint(onnx), read_model_info(onnx), Builder(), deserialize)
    before = engine_path.read_bytes(), sidecar_path(engine_path).read_bytes()

    def broken_build() -> bytes:
        raise RuntimeError("out of memory during tactic selection")

    with pytest.raises(RuntimeError, match="out of memory"):
        load_or_build(engine_path, fingerprint(onnx, tensorrt_version="10.9.0"), read_model_info(onnx),
                      broken_build, deserialize)
    assert (engine_path.read_bytes(), sidecar_path(engine_path).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.engine", "a.engine.json", "a.engine.lock"]


def test_engine_that_never_deserialises_is_an_error(models: tuple[Path, Path], tmp_path: Path) -> None:
    onnx = models[0]
    with pytest.raises(RuntimeError, match="just built cannot be deserialised"):
        load_or_build(tmp_path / "a.engine", fingerprint(onnx), read_model_info(onnx), lambda: b"junk", deserialize)


def test_two_processes_starting_together_build_once(models: tuple[Path, Path], tmp_path: Path) -> None:
    onnx, build = models[0], Builder(delay=0.3)
    results: list[str] = []

    def start() -> None:
        results.append(load_or_build(tmp_path / "a.engine", fingerprint(onnx), read_model_info(onnx), build,
                                     deserialize)[1].status.value)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert build.builds == 1 and sorted(results) == ["hit", "missing"]


def test_atomic_write_keeps_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "engine.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["engine.bin"]


def test_engine_without_sidecar_is_refused_by_the_reader(models: tuple[Path, Path], tmp_path: Path) -> None:
    engine = tmp_path / "lonely.engine"
    engine.write_bytes(MAGIC)
    with pytest.raises(ModelError, match=r"lonely\.engine: no sidecar lonely\.engine\.json"):
        read_model_info(engine)
    write_sidecar(engine, read_model_info(models[1]), fingerprint(models[1]))
    assert read_model_info(engine).architecture == "deeplabv3plus"
