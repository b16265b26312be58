"""The embedded default model: present, small, documented, and finding lanes on a synthetic drive."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lanenet_ros.decode.settings import DecodeParams
from lanenet_ros.metrics import TuSimpleAccumulator, lanes_to_tusimple
from lanenet_ros.pipeline import DEFAULT_HEADS_MODEL, DEFAULT_MODEL, LanePipeline
from lanenet_train.spec import load_spec
from lanenet_train.synth import SynthConfig, iter_drive
from lanenet_train.synth.render import render_frame
from lanenet_train.synth.writers import tusimple_h_samples, tusimple_lane_xs

BESIDE = ("default.spec.txt", "default.train.log", "default.metrics.jsonl", "default.eval.json")


def test_default_model_is_small_and_has_its_records_beside_it() -> None:
    assert DEFAULT_MODEL.is_file() and DEFAULT_MODEL.stat().st_size < 5 * 2**20
    for name in BESIDE:
        assert (DEFAULT_MODEL.parent / name).stat().st_size > 0, name
    load_spec(DEFAULT_MODEL.parent / "default.spec.txt", check_paths=False)
    report = json.loads((DEFAULT_MODEL.parent / "default.eval.json").read_text())
    assert report["model"]["architecture"] == "lanenet" and report["tusimple"]["frames"] == 300


def test_pipeline_without_a_model_finds_the_lanes_of_a_synthetic_drive() -> None:
    spec = load_spec(DEFAULT_MODEL.parent / "default.spec.txt", check_paths=False)
    pipe = LanePipeline(backend="onnxruntime-cpu")  # decodes as the model was evaluated: its own settings
    assert pipe.model_path == DEFAULT_MODEL and pipe.info.architecture == "lanenet"
    assert pipe.decoder.params == DecodeParams.from_pairs(spec.evaluation_config.decode)
    recipe = load_spec(Path(__file__).resolve().parents[1] / "config" / "specs" / "lanenet_tusimple.txt",
                       check_paths=False)
    assert pipe.info.decode == list(recipe.evaluation_config.decode)  # the recipe's spec is in step
    h = tusimple_h_samples(720)
    score = TuSimpleAccumulator()
    for frame in iter_drive(SynthConfig(width=1280, height=720), 4242, 10, 10.0):
        out = pipe.process(frame.image, frame.timestamp)
        truth = [x.tolist() for x in tusimple_lane_xs(frame, np.asarray(h))]
        score.add(lanes_to_tusimple(out.lanes, h, out.width), truth, h)
    # a floor far below the model's recorded held-out accuracy: a broken export or decoder scores near 0
    assert score.result()["accuracy"] > 0.5, score.result()


def test_the_heads_model_is_the_same_lane_network_with_a_bonnet_and_marking_heads() -> None:
    """The model GPU backends get (docs/default_model.md): the lanes exactly the CPU's model's, plus its heads."""
    assert DEFAULT_HEADS_MODEL.is_file() and DEFAULT_HEADS_MODEL.stat().st_size < 5 * 2**20
    heads_spec = load_spec(DEFAULT_HEADS_MODEL.with_suffix(".spec.txt"), check_paths=False)  # its records beside it
    assert heads_spec.model_config.hood_output and heads_spec.train_config.train_only == ["heads"]
    for suffix in (".train.log", ".metrics.jsonl"):
        assert DEFAULT_HEADS_MODEL.with_suffix(suffix).stat().st_size > 0, suffix
    scored = json.loads(DEFAULT_HEADS_MODEL.with_suffix(".realroads.json").read_text())
    assert scored["held_out"]["as given"]["frames"] == 300 and scored["results"]["as given"]["all"]["frames"] == 300
    lean = LanePipeline(DEFAULT_MODEL, backend="onnxruntime-cpu", tracking=False)
    full = LanePipeline(DEFAULT_HEADS_MODEL, backend="onnxruntime-cpu", tracking=False)
    assert full.info.decode == lean.info.decode and full.decoder.params == lean.decoder.params
    assert set(full.info.outputs.values()) == set(lean.info.outputs.values()) | {"hood_logits", "marking_logits"}
    frame = render_frame(SynthConfig(hood_prob=1.0, real_hood_prob=1.0), 60_300)
    batch, _ = lean.preprocessor(frame.image)
    want = {k: v.copy() for k, v in lean.backend.infer(batch).items()}
    got = full.backend.infer(batch)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, atol=1e-4, err_msg=name)
    assert got["hood_logits"].shape[-2:] == got["marking_logits"].shape[-2:] == (64, 128)  # stride 4


def test_on_the_cpu_the_heads_run_every_third_frame_beside_the_lean_model() -> None:
    """The node's ``heads_every`` (docs/training.md, "The heads every third frame on the CPU")."""
    pipe = LanePipeline(backend="onnxruntime-cpu")
    assert (pipe.model_path, pipe.heads_every, pipe.heads_backend.info.architecture) == (DEFAULT_MODEL, 3, "lanenet")
    frame = render_frame(SynthConfig(hood_prob=1.0, real_hood_prob=1.0), 60_300)
    begun = [pipe.infer(frame.image) for _ in range(7)]
    assert [b.learned for b in begun] == [True, False, False, True, False, False, True]
    # the heads' frames carry the learned marking types, the others are the lean model's alone
    assert [b.extracted.markings is not None for b in begun] == [b.learned for b in begun]
    out = pipe.finish(begun[0], frame.image)
    assert out.lanes and out.timings["infer"] > 0
    assert pipe.describe() == "lanenet 512x256 on onnxruntime-cpu, with default_heads every 3 frames"
    lean = LanePipeline(backend="onnxruntime-cpu", heads_every=0)
    assert lean.heads_backend is None and lean.describe() == "lanenet 512x256 on onnxruntime-cpu"
    # a model given by path or name other than the lean default, or heads_every 0: one model every frame
    for model in (DEFAULT_HEADS_MODEL, "default_heads"):
        assert LanePipeline(model, backend="onnxruntime-cpu").heads_every == 0
    assert LanePipeline("default", backend="onnxruntime-cpu").heads_every == 3
    with pytest.raises(ValueError, match="heads_every must be >= 0"):
        LanePipeline(backend="onnxruntime-cpu", heads_every=-1)
