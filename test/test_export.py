"""lanenet-train export: self-describing ONNX, verified against PyTorch, and read back by the runtime."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from model_fixtures import HEIGHT, WIDTH, export_tiny, model_info, tiny_model

from lanenet_ros.backends import create_backend
from lanenet_ros.model_info import ModelError, read_model_info
from lanenet_ros.preprocess import Preprocessor
from lanenet_train.export import ExportError, export_model


def road_image(seed: int = 0) -> np.ndarray:
    """A 1280x720 BGR frame: grey road, dark sky, two white lines converging to the horizon."""
    rng = np.random.default_rng(seed)
    image = np.full((720, 1280, 3), 90, np.uint8)
    image[:300] = (180, 120, 60)
    for x0 in (300, 980):
        xs = np.linspace(x0, 640, 400).astype(int)
        for y, x in zip(range(719, 319, -1), xs, strict=True):
            image[y, x - 4:x + 4] = 250
    return np.clip(image + rng.integers(-8, 8, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def lanenet_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "tiny_lanenet.onnx"
    export_tiny(path, "lanenet", dynamic_batch=True)
    return path


def test_metadata_reads_back_as_exported(lanenet_onnx: Path) -> None:
    info = read_model_info(lanenet_onnx)
    expected = model_info("lanenet")
    assert (info.architecture, info.input_width, info.input_height) == ("lanenet", WIDTH, HEIGHT)
    assert info.outputs == {"binary_logits": "binary_logits", "embedding": "embedding"}
    assert info.class_names == expected["class_names"] and info.spec_fingerprint == expected["spec_fingerprint"]
    assert info.mean == pytest.approx(expected["mean"]) and info.embedding_dim == 4
    assert info.opset == 17 and info.dynamic_batch
    proto = onnx.load(str(lanenet_onnx))
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {17}


def test_onnxruntime_agrees_with_pytorch_on_a_road_image(lanenet_onnx: Path) -> None:
    backend = create_backend(lanenet_onnx, "onnxruntime-cpu")
    batch, _ = Preprocessor.from_info(backend.info)(road_image())
    got = backend.infer(batch)
    with torch.no_grad():
        want = tiny_model("lanenet")(torch.from_numpy(batch.copy()))
    for name in ("binary_logits", "embedding"):
        assert got[name].shape == tuple(want[name].shape)
        np.testing.assert_allclose(got[name], want[name].numpy(), rtol=1e-4, atol=1e-4)


def test_export_report_states_the_agreement(tmp_path: Path) -> None:
    report = export_tiny(tmp_path / "m.onnx", "deeplabv3plus", tolerance=1e-4, verify_images=3)
    assert set(report.max_abs_error) == {"class_logits"}
    assert 0 <= report.max_abs_error["class_logits"] < 1e-4
    assert report.n_inputs == 3 and report.inputs
    info = read_model_info(tmp_path / "m.onnx")
    assert info.architecture == "deeplabv3plus" and info.num_classes == 3 and not info.dynamic_batch


def test_dynamic_batch_runs_several_images_and_static_refuses(lanenet_onnx: Path, tmp_path: Path) -> None:
    batch = np.random.default_rng(1).normal(size=(3, 3, HEIGHT, WIDTH)).astype(np.float32)
    out = create_backend(lanenet_onnx, "onnxruntime-cpu").infer(batch)
    assert out["embedding"].shape == (3, 4, HEIGHT, WIDTH)
    export_tiny(tmp_path / "static.onnx")
    with pytest.raises(ValueError, match="dynamic-batch"):
        create_backend(tmp_path / "static.onnx", "onnxruntime-cpu").infer(batch)


class BranchOnBrightness(torch.nn.Module):
    """Data-dependent Python control flow: tracing records one branch only, so ONNX differs from PyTorch."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = tiny_model("lanenet")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.inner(x)
        if float(x.mean()) > 0.1:  # false for the all-zero tracing input, true for real images
            out = {k: v * 3.0 for k, v in out.items()}
        return out


def test_export_refuses_a_model_that_does_not_verify(tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous model")
    bright = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}  # inputs in [0, 1]
    with pytest.raises(ExportError, match=r"disagree on .*not written"):
        export_model(BranchOnBrightness(), model_info("lanenet", **bright), out)
    assert out.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_export_refuses_incomplete_model_info(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="lane_class_ids"):
        export_tiny(tmp_path / "m.onnx", info_overrides={"lane_class_ids": [7]})
    assert not (tmp_path / "m.onnx").exists()


def _rewrite_metadata(src: Path, dst: Path, edit: Callable[[dict], object]) -> Path:
    proto = onnx.load(str(src))
    data = json.loads(proto.metadata_props[0].value)
    edit(data)
    proto.metadata_props[0].value = json.dumps(data)
    onnx.save(proto, str(dst))
    return dst


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(architecture="yolo"), "unknown architecture 'yolo'"),
    (lambda d: d["outputs"].update(instance_logits="embedding"), r"outputs \['instance_logits'\].*not in the graph"),
    (lambda d: d.update(input_width=512), r"input 'input' has shape .*64.* metadata says \(N, 3, 32, 512\)"),
    (lambda d: d.update(embedding_dim=8), r"output 'embedding' \(embedding\) has shape"),
    (lambda d: d.pop("outputs"), "lacks outputs"),
    (lambda d: d.update(input_height="32"), "'input_height' must be int"),
    (lambda d: d.update(format_version=9), "newer than this runtime"),
])
def test_mismatching_metadata_is_refused_naming_file_and_problem(lanenet_onnx: Path, tmp_path: Path,
                                                                  edit: Callable[[dict], object], message: str) -> None:
    bad = _rewrite_metadata(lanenet_onnx, tmp_path / "bad.onnx", edit)
    with pytest.raises(ModelError, match=message) as err:
        read_model_info(bad)
    assert str(bad) in str(err.value)


def test_onnx_without_lanenet_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.onnx"
    torch.onnx.export(tiny_model(), (torch.zeros(1, 3, HEIGHT, WIDTH),), str(path), dynamo=False,
                      input_names=["input"], output_names=["binary_logits", "embedding"])
    with pytest.raises(ModelError, match=r"plain\.onnx: no 'lanenet' metadata.*lanenet-train export"):
        read_model_info(path)
    with pytest.raises(ModelError, match="no 'lanenet' metadata"):
        create_backend(path, "auto")  # a bad model is not retried on the next backend


@pytest.mark.parametrize(("content", "message"), [
    ("truncate", "truncated or corrupt"),
    (b"PK\x03\x04 zip archive", "zip archive.*PyTorch checkpoint"),
    (b"just some text\n", "is not an ONNX model"),
    (b"", "empty"),
    (None, "does not exist"),
])
def test_broken_files_are_refused_with_the_reason(lanenet_onnx: Path, tmp_path: Path, content: bytes | str | None,
                                                  message: str) -> None:
    path = tmp_path / "broken.onnx"
    if content == "truncate":
        path.write_bytes(lanenet_onnx.read_bytes()[:3000])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message) as err:
        read_model_info(path)
    assert str(path) in str(err.value)


def test_cli_exports_an_encrypted_training_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lanenet_train.checkpoint import make_model_info, save_checkpoint
    from lanenet_train.cli import main
    from lanenet_train.models import build_model
    from lanenet_train.spec import parse_spec, spec_fingerprint, spec_to_dict

    spec = parse_spec("model_config { input_image_width: 128 input_image_height: 64 width_multiplier: 0.25 }")
    model = build_model(spec.model_config).eval()
    info = make_model_info(spec, ["background", "lane"], [(0, 0, 0), (255, 255, 255)], spec_fingerprint(spec))
    save_checkpoint(tmp_path / "model.pth", {"model_state": model.state_dict(), "spec": spec_to_dict(spec),
                                             "model_info": info, "epoch": 1}, key="s3cret")
    out = tmp_path / "out" / "model.onnx"
    assert main(["export", "-m", str(tmp_path / "model.pth"), "-o", str(out), "-k", "wrong"]) == 2
    assert "key" in capsys.readouterr().err and not out.exists()
    assert main(["export", "-m", str(tmp_path / "model.pth"), "-o", str(out), "-k", "s3cret",
                 "--verify-images", "2"]) == 0
    assert "within tolerance 0.001" in capsys.readouterr().out
    exported = read_model_info(out)
    assert exported.spec_fingerprint == spec_fingerprint(spec) and exported.embedding_dim == info["embedding_dim"]
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 128)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x))["binary_logits"].numpy()
    np.testing.assert_allclose(create_backend(out, "onnxruntime-cpu").infer(x)["binary_logits"], want, atol=1e-4)


def test_backend_requests_are_checked(lanenet_onnx: Path) -> None:
    with pytest.raises(ValueError, match="backend 'cuda' is not one of auto, tensorrt"):
        create_backend(lanenet_onnx, "cuda")
    with pytest.raises(ValueError, match="unknown backend option"):
        create_backend(lanenet_onnx, "onnxruntime-cpu", threads=2)
    with pytest.raises(ValueError, match="precision 'int4'"):
        create_backend(lanenet_onnx, "auto", precision="int4")


def test_reused_outputs_are_overwritten_fresh_ones_are_not(lanenet_onnx: Path) -> None:
    a, b = (np.random.default_rng(i).normal(size=(1, 3, HEIGHT, WIDTH)).astype(np.float32) for i in (1, 2))
    reused = create_backend(lanenet_onnx, "onnxruntime-cpu", intra_op_threads=1)
    reused.infer(b)  # the first call learns the output shapes
    first = reused.infer(a)["embedding"]
    kept = first.copy()
    second = reused.infer(b)["embedding"]
    assert second is first and not np.array_equal(first, kept)  # the same buffer, now holding b's result
    fresh = create_backend(lanenet_onnx, "onnxruntime-cpu", reuse_outputs=False)
    x, y = fresh.infer(a)["embedding"], fresh.infer(b)["embedding"]
    np.testing.assert_allclose(x, kept, atol=1e-5)
    np.testing.assert_allclose(y, second, atol=1e-5)


def test_the_node_tests_hand_weighted_model_describes_itself_and_marks_the_stripes(tmp_path):
    import onnxruntime as ort
    from node_fixtures import EMBEDDING_DIM, INPUT_WIDTH, export_stripe_model, stripes_image

    path = export_stripe_model(tmp_path / "stripes.onnx")
    info = read_model_info(path)
    assert (info.architecture, info.input_width, info.embedding_dim) == ("lanenet", INPUT_WIDTH,
                                                                          EMBEDDING_DIM)
    batch, _ = Preprocessor.from_info(info)(stripes_image())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    binary, embedding = session.run(["binary_logits", "embedding"], {info.input_name: batch})
    lane = binary[0, 1] > binary[0, 0]
    columns = np.nonzero(lane.any(axis=0))[0]
    assert columns.min() < INPUT_WIDTH // 2 < columns.max() and lane.mean() < 0.1
    on_left = np.arange(INPUT_WIDTH) < INPUT_WIDTH // 2
    left, right = embedding[0, 0][lane & on_left], embedding[0, 0][lane & ~on_left]
    assert right.min() - left.max() > 3.0  # far apart in embedding space: two instances
