"""The node's parameter table: defaults, one validation for every value, config/lanenet.yaml in step."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lanenet_ros.node.params import TABLE, NodeParams, ParamError, check, spec

ROOT = Path(__file__).resolve().parents[1]


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def yaml_parameters() -> dict:
    doc = yaml.safe_load((ROOT / "config" / "lanenet.yaml").read_text(encoding="utf-8"))
    return flatten(doc["/**"]["ros__parameters"])


def test_defaults_build_without_arguments_and_pass_their_own_checks():
    params = NodeParams()
    for row in TABLE:
        check(row.name, row.default)
        assert params.value(row.name) == (None if row.unset else row.default)  # decode.*: unset
    assert params.input == "image" and params.qos_reliability == "best_effort" and params.qos_depth == 1
    assert params.autostart is True


def test_every_row_is_described():
    names = [row.name for row in TABLE]
    assert len(names) == len(set(names))
    for row in TABLE:
        assert len(row.description) > 20, row.name
        assert row.kind in ("bool", "int", "float", "str", "float_array")


@pytest.mark.parametrize("name, value, reason", [
    ("backend", "cuda", "choose one of auto, tensorrt"),
    ("input", "video", "choose one of image, compressed"),
    ("qos.depth", 0, r"outside its range \[1, 100\]"),
    ("qos.depth", 1.5, "needs a whole number"),
    ("qos.reliability", "sometimes", "choose one of best_effort, reliable"),
    ("roi_top", 0.95, "outside its range"),
    ("roi_top", -0.5, "use -1 for the model's own value"),
    ("ground.camera_height", float("nan"), "finite"),
    ("ground.camera_pitch", 2.0, "outside its range"),
    ("ground.homography", [1.0, 2.0, 3.0], "needs 9 finite numbers"),
    ("ground.homography", [1, 2, 3, 2, 4, 6, 0, 0, 1], "singular"),
    ("model", "weights.pth", "give a .onnx model"),
    ("tracking", "yes", "needs true or false"),
    ("diagnostics_period", 0.0, "outside its range"),
    ("no_such_parameter", 1, "unknown parameter 'no_such_parameter'"),
    ("decode.poly_degree", 9, "poly_degree=9 is out of range"),
    ("decode.max_lanes", 2.5, "needs a whole number"),
    ("decode.min_span", 1.0, "min_span=1.0 is out of range"),
])
def test_invalid_values_are_refused_with_the_reason(name, value, reason):
    with pytest.raises(ParamError, match=reason):
        check(name, value)


def test_a_packaged_model_is_given_by_name():
    for value in ("default", "default_heads", "", "/models/lane.onnx", "lane.engine"):
        check("model", value)
    with pytest.raises(ParamError, match="a packaged model by name \\(default or default_heads\\)"):
        check("model", "default_head")


def test_from_values_normalises_and_freezes():
    values = {"ground.camera_height": 1, "input": "compressed", "publish.overlay": False,
              "ground.homography": [1, 0, 0, 0, 1, 0, 0, 0, 1]}
    params = NodeParams.from_values(values)
    assert params.ground_camera_height == 1.0 and isinstance(params.ground_camera_height, float)
    assert params.ground_homography == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert params.input == "compressed" and params.publish_overlay is False and params.publish_mask is True
    with pytest.raises(AttributeError):
        params.input = "image"  # frozen
    with pytest.raises(ParamError, match="unknown parameter"):
        NodeParams.from_values({"qos_depth": 2})


def test_live_parameters_are_only_output_switches_and_cosmetics():
    live = {row.name for row in TABLE if row.live}
    assert "publish.overlay" in live and "model" not in live and "backend" not in live
    assert spec("publish.markers").live


def uncommented(text: str) -> str:
    """config/lanenet.yaml with the keys shown commented out (``# key: value``, ``# decode:``) switched on."""
    keys = {row.name.split(".")[-1] for row in TABLE if row.unset} | {"decode"}
    pattern = re.compile(rf"^(\s*)# ((?:{'|'.join(keys)}):(?: \S+)?)$")
    return "\n".join(pattern.sub(r"\1\2", line) for line in text.splitlines())


def test_config_yaml_lists_every_parameter_with_its_default():
    values = yaml_parameters()
    assert set(values) == {row.name for row in TABLE if not row.unset}  # decode.*: unset, commented out
    text = (ROOT / "config" / "lanenet.yaml").read_text(encoding="utf-8")
    shown = flatten(yaml.safe_load(uncommented(text))["/**"]["ros__parameters"])
    assert set(shown) == {row.name for row in TABLE}
    for row in TABLE:
        assert NodeParams.from_values({row.name: shown[row.name]}).value(row.name) == row.default, row.name


def test_config_yaml_documents_every_parameter():
    lines = (ROOT / "config" / "lanenet.yaml").read_text(encoding="utf-8").splitlines()
    for row in TABLE:
        key = row.name.split(".")[-1]
        shown = f"# {key}:" if row.unset else f"{key}:"
        line = next(i for i, ln in enumerate(lines) if ln.strip().startswith(shown))
        previous = lines[line - 1].strip()
        assert previous.startswith("#") and previous != lines[line].strip(), \
            f"{row.name} has no comment above it in config/lanenet.yaml"


def test_config_yaml_is_the_rendering_of_the_table():
    from lanenet_ros.node.params import render_yaml

    assert (ROOT / "config" / "lanenet.yaml").read_text(encoding="utf-8") == render_yaml(), (
        "config/lanenet.yaml is stale: run `python -m lanenet_ros.node.params > config/lanenet.yaml`")


def test_decoder_tuning_rows_follow_decode_params():
    from dataclasses import fields

    from lanenet_ros.decode.settings import DecodeParams

    rows = {row.name: row for row in TABLE if row.name.startswith("decode.")}
    assert set(rows) == {f"decode.{f.name}" for f in fields(DecodeParams)}
    assert all(row.default == getattr(DecodeParams(), row.field) for row in rows.values())
    params = NodeParams.from_values({"decode.max_lanes": 3, "decode.cluster_radius": 2,
                                     "decode.min_span": None})  # None: declared, not set
    assert params.decode == {"max_lanes": 3, "cluster_radius": 2.0}  # only what is set
    assert params.value("decode.max_lanes") == 3 and params.value("decode.min_span") is None
    # set to the generic default, a setting still overrides the model's (tested on a real node in test_node)
    assert NodeParams.from_values({"decode.lane_threshold": 0.5}).decode == {"lane_threshold": 0.5}


def test_docs_list_every_parameter():
    docs = (ROOT / "docs" / "node.md").read_text(encoding="utf-8")
    own = [row.name for row in TABLE if not row.name.startswith("decode.")]
    missing = [name for name in own if f"`{name}`" not in docs]
    assert "`decode.*`" in docs  # the decoder's rows as a group; config/lanenet.yaml lists each
    assert not missing, f"docs/node.md does not describe {missing}"
