"""Models: output shapes, both output strides, and a clean ONNX (opset 17) export run by onnxruntime."""
import io

import numpy as np
import onnxruntime as ort
import pytest
import torch

from lanenet_train.models import build_model
from lanenet_train.spec.schema import ModelConfig


def tiny(arch: str, **kw) -> ModelConfig:
    return ModelConfig(architecture=arch, input_image_width=64, input_image_height=32, width_multiplier=0.25,
                       aspp_channels=16, **kw)


@pytest.mark.parametrize("embedding_dim", [4, 7])
def test_lanenet_outputs_logits_and_embedding_at_input_size(embedding_dim):
    model = build_model(tiny("lanenet", embedding_dim=embedding_dim)).eval()
    out = model(torch.rand(2, 3, 32, 64))
    assert out["binary_logits"].shape == (2, 2, 32, 64)
    assert out["embedding"].shape == (2, embedding_dim, 32, 64)
    assert out["binary_logits"].dtype == torch.float32


@pytest.mark.parametrize("output_stride", [8, 16])
def test_deeplab_output_stride_changes_feature_size_not_output(output_stride):
    model = build_model(tiny("deeplabv3plus", output_stride=output_stride), num_classes=5).eval()
    x = torch.rand(1, 3, 32, 64)
    low, deep = model.backbone(x)
    assert low.shape[-2:] == (8, 16)
    assert deep.shape[-2:] == (32 // output_stride, 64 // output_stride)
    assert model(x)["class_logits"].shape == (1, 5, 32, 64)


def test_deeplab_without_classes_is_refused():
    with pytest.raises(ValueError, match="num_classes"):
        build_model(tiny("deeplabv3plus"))


@pytest.mark.parametrize(("arch", "names"), [("lanenet", ["binary_logits", "embedding"]),
                                             ("deeplabv3plus", ["class_logits"])])
def test_onnx_export_runs_in_onnxruntime_and_matches_torch(arch, names):
    torch.manual_seed(0)
    model = build_model(tiny(arch), num_classes=4).eval()
    x = torch.rand(1, 3, 32, 64)
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=17, input_names=["input"],
                      output_names=names)
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    got = session.run(names, {"input": x.numpy()})
    with torch.no_grad():
        want = model(x)
    for name, value in zip(names, got, strict=True):
        assert value.dtype == np.float32
        np.testing.assert_allclose(value, want[name].numpy(), rtol=1e-3, atol=1e-4)
