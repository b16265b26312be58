"""`lanenet-train average`: weighted means of checkpoints of one network (WiSE-FT), refusals, encryption."""
import re

import pytest
import torch

from lanenet_train.checkpoint import load_checkpoint, load_model, make_model_info, save_checkpoint
from lanenet_train.cli import main
from lanenet_train.models import build_model
from lanenet_train.spec import parse_spec, spec_fingerprint, spec_to_dict


def payload(seed, width=0.25, epoch=0, hood="false"):
    spec = parse_spec(f"model_config {{ input_image_width: 64 input_image_height: 32 width_multiplier: {width} "
                      f"hood_output: {hood} }} train_config {{ epochs: {epoch + 1} }}")
    torch.manual_seed(seed)
    model = build_model(spec.model_config)
    model.train()
    model(torch.rand(2, 3, 32, 64))  # batch-norm statistics and counters move away from their initial values
    info = make_model_info(spec, ["background", "lane"], [(0, 0, 0), (255, 255, 255)], spec_fingerprint(spec))
    return {"model_state": model.state_dict(), "spec": spec_to_dict(spec), "model_info": info, "epoch": epoch}


def test_the_weighted_mean_of_every_float_tensor_and_the_last_ones_counters_and_spec(tmp_path, capsys):
    a, b = payload(0), payload(1, epoch=5)
    b["model_state"] = {k: v + 1 if not v.is_floating_point() else v for k, v in b["model_state"].items()}
    save_checkpoint(tmp_path / "a.pth", a)
    save_checkpoint(tmp_path / "b.pth", b)
    out = tmp_path / "avg.pth"
    assert main(["average", str(tmp_path / "a.pth"), str(tmp_path / "b.pth"), "-w", "1", "3", "-o", str(out)]) == 0
    assert "0.25 x a.pth, 0.75 x b.pth" in capsys.readouterr().out
    got = load_checkpoint(out)
    floats = 0
    for key, value in got["model_state"].items():
        if value.is_floating_point():
            floats += 1
            torch.testing.assert_close(value, 0.25 * a["model_state"][key] + 0.75 * b["model_state"][key])
        else:
            assert torch.equal(value, b["model_state"][key])
    assert floats > 10
    assert got["spec"] == b["spec"] and got["model_info"] == b["model_info"]
    assert [s["weight"] for s in got["source"]["averaged"]] == [0.25, 0.75]
    model, _ = load_model(out)  # a network export and evaluate can rebuild
    assert model(torch.rand(1, 3, 32, 64))["binary_logits"].shape[-2:] == (32, 64)


def test_a_weight_of_one_gives_that_checkpoint_exactly(tmp_path):
    a, b = payload(0), payload(1)
    save_checkpoint(tmp_path / "a.pth", a)
    save_checkpoint(tmp_path / "b.pth", b)
    assert main(["average", str(tmp_path / "a.pth"), str(tmp_path / "b.pth"), "-w", "1", "0",
                 "-o", str(tmp_path / "o.pth")]) == 0
    got = load_checkpoint(tmp_path / "o.pth")["model_state"]
    for key, value in a["model_state"].items():
        if value.is_floating_point():
            assert torch.equal(got[key], value), key


@pytest.mark.parametrize("args, message", [
    (["a.pth", "wide.pth"], "wide.pth: .* has shape"),
    (["a.pth", "hood.pth"], r"hood.pth: not the network of .*a.pth \(has \S+ that .*a.pth lacks; 0 missing"),
    (["hood.pth", "a.pth"], r"a.pth: not the network of .*hood.pth \(lacks "),
    (["a.pth"], "at least two"),
    (["a.pth", "b.pth", "-w", "1"], "1 weights for 2 checkpoints"),
    (["a.pth", "b.pth", "-w", "1", "-1"], "weights must be >= 0"),
    (["a.pth", "missing.pth"], "missing.pth: checkpoint not found"),
])
def test_refusals_name_the_file_and_write_nothing(tmp_path, capsys, args, message):
    save_checkpoint(tmp_path / "a.pth", payload(0))
    save_checkpoint(tmp_path / "b.pth", payload(1))
    save_checkpoint(tmp_path / "wide.pth", payload(1, width=0.5))
    save_checkpoint(tmp_path / "hood.pth", payload(1, hood="true"))
    paths = [str(tmp_path / a) if a.endswith(".pth") else a for a in args]
    argv = ["average", *paths, "-o", str(tmp_path / "o.pth")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(message, err), err
    assert not (tmp_path / "o.pth").exists()


def test_encrypted_runs_average_with_a_plain_start_and_stay_encrypted(tmp_path):
    save_checkpoint(tmp_path / "start.pth", payload(0))  # plain, as lanenet_ros/models/default.pth
    save_checkpoint(tmp_path / "run.pth", payload(1), "k3y")
    out = tmp_path / "o.pth"
    assert main(["average", str(tmp_path / "start.pth"), str(tmp_path / "run.pth"), "-k", "k3y", "-o", str(out)]) == 0
    assert b"model_state" not in out.read_bytes()
    assert load_checkpoint(out, "k3y")["source"]["averaged"][1]["weight"] == 0.5
