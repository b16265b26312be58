"""Checkpoints: round trip, atomic overwrite, encryption (wrong key / modified file), no unpickling."""
import pickle

import pytest
import torch

from lanenet_train.checkpoint import (
    CheckpointError,
    is_lane_class,
    load_checkpoint,
    load_model,
    make_model_info,
    save_checkpoint,
)
from lanenet_train.models import build_model
from lanenet_train.spec import parse_spec, spec_fingerprint, spec_to_dict


def tiny_payload():
    spec = parse_spec("model_config { input_image_width: 64 input_image_height: 32 width_multiplier: 0.25 }")
    model = build_model(spec.model_config)
    info = make_model_info(spec, ["background", "lane"], [(0, 0, 0), (255, 255, 255)], spec_fingerprint(spec))
    return model, {"model_state": model.state_dict(), "spec": spec_to_dict(spec), "model_info": info, "epoch": 3}


@pytest.mark.parametrize("key", [None, "s3cret"])
def test_round_trip_rebuilds_the_same_network(tmp_path, key):
    model, payload = tiny_payload()
    save_checkpoint(tmp_path / "m.pth", payload, key)
    loaded, ckpt = load_model(tmp_path / "m.pth", key)
    assert ckpt["epoch"] == 3 and ckpt["model_info"]["lane_class_ids"] == [1]
    x = torch.rand(1, 3, 32, 64)
    model.eval()
    torch.testing.assert_close(loaded(x)["embedding"], model(x)["embedding"])
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_encrypted_checkpoint_errors_without_key_with_wrong_key_and_when_modified(tmp_path):
    _, payload = tiny_payload()
    path = tmp_path / "m.pth"
    save_checkpoint(path, payload, "right")
    assert b"model_state" not in path.read_bytes()
    with pytest.raises(CheckpointError, match="encrypted; pass its key with -k"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="wrong key"):
        load_checkpoint(path, "wrong")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="modified"):
        load_checkpoint(path, "right")


class Boom:
    def __reduce__(self):
        return (print, ("code ran",))


def test_a_pickle_with_code_is_refused_not_run(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"model_state": {}, "payload": Boom()}, path)
    with pytest.raises(CheckpointError, match="not a readable lanenet checkpoint"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps({"model_state": Boom()}))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


def test_overwrite_keeps_old_file_until_new_one_is_complete(tmp_path):
    _, payload = tiny_payload()
    path = tmp_path / "m.pth"
    save_checkpoint(path, payload)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):  # a lambda cannot be saved
        save_checkpoint(path, dict(payload, model_state=lambda: 0, epoch=4))
    assert load_checkpoint(path)["epoch"] == 3


def test_lane_classes_are_lane_boundaries_only():
    lanes = ["lane", "solid_white", "s_w_d", "ds_y_dn", "sb_w_do", "b_w_g", "db_y_g"]
    others = ["background", "void", "s_w_s", "s_w_c", "s_w_p", "c_wy_z", "a_w_tl", "r_wy_np", "om_n_n", "zebra"]
    assert all(is_lane_class(n) for n in lanes)
    assert not any(is_lane_class(n) for n in others)
