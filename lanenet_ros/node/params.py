"""The lanenet node's parameters: one table, frozen into a dataclass, validated in one place (no ROS).

Each field of :class:`NodeParams` is one ROS parameter: its default, type, description, range or choices
and whether a change applies at once (``live``) or at the next configure. The node declares every entry
with a ``ParameterDescriptor`` built from this table (:mod:`lanenet_ros.node.lanenet_node`), ``config/lanenet.yaml``
lists the same keys (a test checks it), and :func:`check` is the single place a value is judged, used at
start-up and by the node's set-parameters callback alike.

The decoder's settings appear as ``decode.<name>``, one row per row of their own table
(:mod:`lanenet_ros.decode.settings`: type, default, range and meaning), each value judged by that table, so the
two never disagree. These are declared without a value: one left unset takes the setting the model carries
(its description's ``decode``), else the table's default; one that is set (parameter file, ``-p``,
``ros2 param set``) overrides it, whatever its value.

Topics are not parameters: the node subscribes to the relative names ``image`` (or ``image/compressed``)
and ``camera_info`` and publishes ``lanes``, ``mask``, ``overlay``, ``markers``; remap them with ``-r``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from lanenet_ros.backends import KINDS as BACKENDS
from lanenet_ros.backends import PRECISIONS
from lanenet_ros.decode.settings import SETTINGS, SettingError, packaged_settings, setting
from lanenet_ros.image_codec import MAX_PIXELS, MAX_SIDE


class ParamError(ValueError):
    """A parameter value the node cannot use; the message names the parameter and what would fix it."""


def _p(default: Any, description: str, *, name: str | None = None, choices: tuple = (),
       low: float | None = None, high: float | None = None, live: bool = False,
       kind: str | None = None) -> Any:
    """A dataclass field carrying one parameter's description (see :class:`ParamSpec`)."""
    kind = kind or {bool: "bool", int: "int", float: "float", str: "str"}[type(default)]
    meta = {"name": name, "description": description, "choices": choices, "low": low, "high": high,
            "live": live, "kind": kind}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class NodeParams:
    """Every parameter of the lanenet node, with its default (the table itself; see each field's metadata)."""

    model: str = _p("", "Model file: a .onnx exported by `lanenet-train export` or a TensorRT engine "
                        "(.engine/.plan with its .json), or a packaged model by name: default (the lane network) "
                        "or default_heads (the same with bonnet and marking-type heads); empty = default_heads "
                        "on a GPU backend, default on the CPU")
    heads_every: int = _p(3, "With the packaged default model on the CPU: run default_heads (bonnet and marking "
                             "type) every this many frames instead, its marking types weighed as many frames; 0 = "
                             "never (other models and backends: ignored)", low=0, high=30)
    backend: str = _p("auto", "Inference backend; auto takes the first that works (TensorRT engine, ONNX "
                              "Runtime TensorRT, CUDA, CPU) and reports which one runs", choices=BACKENDS)
    precision: str = _p("fp16", "Reduced precision allowed on GPU backends (ignored on the CPU)",
                        choices=PRECISIONS)
    threads: int = _p(0, "CPU threads for one inference (ONNX Runtime); 0 = all cores", low=0, high=256)
    input: str = _p("image", "Subscribe to `image` (sensor_msgs/Image) or `image/compressed` "
                             "(sensor_msgs/CompressedImage, JPEG or PNG)", choices=("image", "compressed"))
    max_pixels: int = _p(MAX_PIXELS, "Largest camera image accepted, in pixels (width x height); a bigger one "
                                     "is skipped as bad, a JPEG or PNG before it is decoded",
                         low=1, high=MAX_SIDE * MAX_SIDE, live=True)
    qos_reliability: str = _p("best_effort", "Reliability of the image and camera_info subscriptions; "
                                             "best_effort takes both kinds of publisher",
                              name="qos.reliability", choices=("best_effort", "reliable"))
    qos_depth: int = _p(1, "Queue depth of the image subscription (1 = always the newest frame)",
                        name="qos.depth", low=1, high=100)
    roi_top: float = _p(-1.0, "Fraction of image rows cut from the top (sky) before inference; -1 = the "
                              "model's own value", low=-1.0, high=0.9)
    tracking: bool = _p(True, "Stable track ids and smoothing across frames (false: each frame alone)")
    tracker_smoothing: float = _p(0.7, "Weight of the newest frame in each lane's smoothed shape (1 = "
                                        "no smoothing; lower is steadier and lags more)",
                                   name="tracker.smoothing", low=0.05, high=1.0)
    tracker_max_misses: int = _p(3, "Frames a lane may go undetected before its track ends",
                                  name="tracker.max_misses", low=0, high=30)
    tracker_coast: bool = _p(True, "Keep publishing a confirmed lane through frames that miss it (its "
                                    "confidence halved per miss); false publishes only lanes seen in the frame",
                              name="tracker.coast")
    tracker_coast_after: int = _p(5, "Frames a lane must have been seen before it coasts (a lane seen only briefly, "
                                     "often along a barrier's base or a road edge, is not carried on)",
                                  name="tracker.coast_after", low=1, high=100)
    tracker_ground: bool = _p(True, "Also track the ego lane's two lines in the ground plane (a Kalman filter "
                                    "over c0..c3): a line that a car ahead or a truck's edge pulls off its paint "
                                    "keeps its shape from the frames before; false fits each frame alone",
                              name="tracker.ground")
    tracker_hood: bool = _p(True, "Hold the ego vehicle's bonnet found in earlier frames (the edge it ends lanes "
                                  "at) through frames in which it is not found, unless the lanes show paint below "
                                  "it; false looks for it in each frame alone (decode.hood -1 only)",
                            name="tracker.hood")
    ground_frame_id: str = _p("base_link", "Vehicle frame of ground-plane lanes (x forward, y left, z up) "
                                           "and of ground markers", name="ground.frame_id")
    ground_camera_height: float = _p(0.0, "Camera height above the road in metres; with camera_info it "
                                          "turns on ground-plane lanes (0 = off)",
                                     name="ground.camera_height", low=0.0, high=20.0)
    ground_camera_pitch: float = _p(0.0, "Camera pitch in radians, positive looking down at the road",
                                    name="ground.camera_pitch", low=-0.8, high=0.8)
    ground_camera_yaw: float = _p(0.0, "Camera yaw in radians, the optical axis turned left of the vehicle's x "
                                       "axis (with ground.camera_height)", name="ground.camera_yaw",
                                  low=-0.35, high=0.35)
    ground_camera_roll: float = _p(0.0, "Camera roll in radians about its optical axis, clockwise seen from "
                                        "behind: the horizon tilts up to the right (with ground.camera_height)",
                                   name="ground.camera_roll", low=-0.35, high=0.35)
    ground_homography: tuple = _p((), "Image-to-ground homography, 9 numbers row by row (pixels to metres in "
                                     "ground.frame_id); overrides camera height and pitch; empty = not used",
                                 name="ground.homography", kind="float_array")
    # self-calibration (lanenet_ros.calibrate; docs/node.md "Self-calibration")
    calibration_mode: str = _p("auto", "Self-calibration: auto estimates the camera's height, pitch and yaw from "
                                       "the lanes when ground.camera_height is 0 and no homography is given; "
                                       "pitch_yaw keeps ground.camera_height and estimates pitch and yaw; off "
                                       "uses given values only", name="calibration.mode",
                               choices=("auto", "pitch_yaw", "off"))
    calibration_lane_width: float = _p(3.6, "Lane width in metres assumed by self-calibration; it sets the scale "
                                            "of an estimated camera height", name="calibration.lane_width",
                                       low=2.5, high=5.0)
    calibration_seed: tuple = _p((), "Start self-calibration from [height m, pitch rad, yaw rad] or [height m, "
                                     "pitch rad, yaw rad, roll rad], used at once and adapted slowly; empty = "
                                     "start from nothing",
                                 name="calibration.seed", kind="float_array")
    calibration_roll: bool = _p(False, "Self-calibration also estimates the camera's roll, from the widths of the "
                                       "lanes beside the ego lane (roads whose lanes are one width; lanes 0.2 m "
                                       "apart in width bias it by about 1 deg); false keeps the seed's roll, or 0",
                                name="calibration.roll")
    calibration_freeze: bool = _p(False, "Keep the current self-calibration estimate; new frames do not change it",
                                  name="calibration.freeze", live=True)
    calibration_horizontal_fov: float = _p(0.0, "Without camera_info: self-calibrate with intrinsics from this "
                                                "horizontal field of view in degrees (square pixels, principal "
                                                "point at the centre, no distortion); 0 = wait for camera_info",
                                           name="calibration.horizontal_fov", low=0.0, high=170.0)
    publish_mask: bool = _p(True, "Publish `mask` (mono8 class ids at camera resolution)",
                            name="publish.mask", live=True)
    publish_overlay: bool = _p(True, "Publish `overlay` (bgr8 picture; drawn only while someone subscribes)",
                               name="publish.overlay", live=True)
    publish_markers: bool = _p(True, "Publish `markers` (RViz MarkerArray)", name="publish.markers",
                               live=True)
    markers_lifetime: float = _p(0.5, "Seconds a lane marker stays in RViz without an update (0 = forever)",
                                 name="markers.lifetime", low=0.0, high=60.0, live=True)
    markers_image_depth: float = _p(2.0, "Uncalibrated camera: distance in metres in front of the camera "
                                         "at which image-plane lane markers are drawn",
                                    name="markers.image_depth", low=0.1, high=100.0, live=True)
    autostart: bool = _p(True, "Configure and activate at start-up (false: wait for a lifecycle manager)")
    diagnostics_period: float = _p(1.0, "Seconds between /diagnostics messages", low=0.1, high=60.0)
    warn_period: float = _p(5.0, "Shortest interval in seconds between two warnings about bad input frames",
                            low=0.1, high=3600.0, live=True)
    # rows ``decode.*`` (see _decode_rows): only those that are set, as DecodeParams field -> value
    decode: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> NodeParams:
        """Build from ROS parameter names and values (missing ones keep their defaults), checking all.

        Args:
            values: parameter name (``qos.depth``) to value.

        Returns:
            The frozen parameters.

        Raises:
            ParamError: an unknown name or a value :func:`check` refuses.
        """
        specs = {s.name: s for s in TABLE}
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise ParamError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(specs)}")
        values = {n: v for n, v in values.items() if not (v is None and specs[n].unset)}  # unset decode.*
        for name, value in values.items():
            check(name, value)
        normal = {n: _normalise(specs[n], v) for n, v in values.items()}
        plain = {specs[n].field: v for n, v in normal.items() if not n.startswith("decode.")}
        tuning = {specs[n].field: v for n, v in normal.items() if n.startswith("decode.")}
        return cls(**plain, decode=tuning)

    def value(self, name: str) -> Any:
        """The value of the parameter with this ROS name (``qos.depth``, ``decode.max_lanes``); None for a
        ``decode.*`` parameter that is not set."""
        row = spec(name)
        if name.startswith("decode."):
            return self.decode.get(row.field)
        return getattr(self, row.field)


@dataclass(frozen=True)
class ParamSpec:
    """One row of the parameter table.

    Attributes:
        name: ROS parameter name (dotted for grouped ones, e.g. ``qos.depth``).
        field: the :class:`NodeParams` attribute.
        default: default value.
        kind: ``bool``, ``int``, ``float``, ``str`` or ``float_array``.
        description: what it does, for ``ros2 param describe`` and the YAML file.
        choices: allowed values (strings), or empty.
        low: smallest allowed number, or None.
        high: largest allowed number, or None.
        live: True when a change applies at once; otherwise at the next configure.
        constraints: what is allowed, in words, where ``low``, ``high`` and ``choices`` do not say it.
        unset: declared without a value; left so, the model's own setting applies, else ``default``.
    """

    name: str
    field: str
    default: Any
    kind: str
    description: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    live: bool = False
    constraints: str = ""
    unset: bool = False


def _table() -> tuple[ParamSpec, ...]:
    rows = []
    for f in fields(NodeParams):
        m = f.metadata
        if not m:
            continue
        rows.append(ParamSpec(m["name"] or f.name, f.name, f.default, m["kind"], m["description"],
                              m["choices"], m["low"], m["high"], m["live"]))
    return tuple(rows)


def _decode_rows() -> tuple[ParamSpec, ...]:
    """``decode.<name>`` rows, one per row of the decoder's settings table (:mod:`lanenet_ros.decode.settings`),
    whose check judges them (so their range is words, not a ROS range that rclpy would judge first)."""
    return tuple(ParamSpec(f"decode.{s.name}", s.name, s.default, s.kind.__name__, f"Decoder: {s.doc}",
                           constraints=f"Allowed: {s.allowed}", unset=True)
                 for s in SETTINGS)


TABLE: tuple[ParamSpec, ...] = _table() + _decode_rows()
"""Every parameter, in declaration order."""
_BY_NAME = {s.name: s for s in TABLE}


def spec(name: str) -> ParamSpec:
    """The table row of a parameter.

    Raises:
        ParamError: when no parameter has this name.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ParamError(f"unknown parameter {name!r}; known: {', '.join(_BY_NAME)}") from None


def _normalise(row: ParamSpec, value: Any) -> Any:
    if row.kind == "float":
        return float(value)
    if row.kind == "float_array":
        return tuple(float(v) for v in value)
    return value


_KIND_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a string",
               "float_array": "a list of numbers"}


def _check_type(row: ParamSpec, value: Any) -> None:
    ok = {
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        # a list from YAML or -p, an array('d') from `ros2 param set` (the parameter service)
        "float_array": lambda v: isinstance(v, Sequence) and not isinstance(v, (str, bytes)) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v),
    }[row.kind](value)
    if not ok:
        raise ParamError(f"parameter {row.name!r} needs {_KIND_WORDS[row.kind]}, got {value!r}")


def check(name: str, value: Any) -> None:
    """Judge one parameter value: type, range, choices and the rules particular to it.

    Args:
        name: ROS parameter name.
        value: proposed value.

    Raises:
        ParamError: naming the parameter, the value and what is allowed.
    """
    row = spec(name)
    _check_type(row, value)
    if name.startswith("decode."):  # the decoder's own table judges its settings
        _check_decode(name, value)
        return
    if row.choices and value not in row.choices:
        raise ParamError(f"parameter {name!r} is {value!r}; choose one of {', '.join(row.choices)}")
    if row.kind in ("int", "float"):
        if not math.isfinite(value):
            raise ParamError(f"parameter {name!r} must be a finite number, got {value!r}")
        if (row.low is not None and value < row.low) or (row.high is not None and value > row.high):
            raise ParamError(f"parameter {name!r} is {value!r}, outside its range [{row.low}, {row.high}]")
    rule = _RULES.get(name)
    if rule:
        rule(name, value)


def _check_decode(name: str, value: Any) -> None:
    try:
        setting(name[len("decode."):]).check(value)
    except SettingError as exc:
        raise ParamError(f"parameter {name!r}: {exc}") from None


def _check_roi_top(_: str, value: float) -> None:
    if value < 0.0 and value != -1.0:
        raise ParamError(f"parameter 'roi_top' is {value!r}: use -1 for the model's own value or 0..0.9")


def _check_homography(_: str, value: tuple) -> None:
    if len(value) == 0:
        return
    if len(value) != 9 or not all(math.isfinite(v) for v in value):
        raise ParamError(f"parameter 'ground.homography' needs 9 finite numbers (3x3 row by row) or none, "
                         f"got {len(value)} values")
    a, b, c, d, e, f, g, h, i = value
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    if abs(det) < 1e-12:
        raise ParamError("parameter 'ground.homography' is singular (determinant 0): it cannot map the image "
                         "to the ground")


def _check_model(_: str, value: str) -> None:
    from lanenet_ros.pipeline import PACKAGED_NAMES

    if value and value not in PACKAGED_NAMES and not value.lower().endswith((".onnx", ".engine", ".plan", ".trt")):
        raise ParamError(f"parameter 'model' is {value!r}: give a .onnx model or a TensorRT .engine/.plan, "
                         f"a packaged model by name ({' or '.join(PACKAGED_NAMES)}), or leave it empty for the "
                         "packaged default")


def _check_seed(_: str, value: tuple) -> None:
    if len(value) == 0:
        return
    if len(value) not in (3, 4) or not all(math.isfinite(v) for v in value):
        raise ParamError(f"parameter 'calibration.seed' needs 3 numbers [height m, pitch rad, yaw rad], 4 with the "
                         f"roll in rad, or none, got {len(value)} values")
    height, pitch, yaw, roll = (*value, 0.0)[:4]
    if not (0.0 < height <= 20.0 and abs(pitch) < 0.8 and abs(yaw) < 0.35 and abs(roll) < 0.35):
        raise ParamError(f"parameter 'calibration.seed' is {list(value)}: the height must be within (0, 20] m, the "
                         "pitch within +-0.8 rad and the yaw and roll within +-0.35 rad")


_RULES = {"roi_top": _check_roi_top, "ground.homography": _check_homography, "model": _check_model,
          "calibration.seed": _check_seed}


def _yaml_value(row: ParamSpec, value: Any) -> str:
    if row.kind == "bool":
        return "true" if value else "false"
    if row.kind == "str":
        return json.dumps(value)
    if row.kind == "float_array":
        return "[" + ", ".join(repr(float(v)) for v in value) + "]"
    return repr(float(value)) if row.kind == "float" else str(value)


def _yaml_comment(row: ParamSpec, indent: str) -> list[str]:
    text = row.description + "."
    if row.choices:
        text += f" One of: {', '.join(row.choices)}."
    if row.unset:  # decode.*
        packaged = packaged_settings().get(row.field)
        runs = "" if packaged is None else f" (the packaged model's: {_yaml_value(row, packaged)})"
        text += (f" {row.constraints}. Unset (commented out): the model's own setting{runs}, "
                 f"else {_yaml_value(row, row.default)}; set, it overrides the model's.")
    elif row.low is not None:
        text += f" Range {row.low}..{row.high}."
    text += " Applies at once." if row.live else " Applies at the next configure."
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 104 - len(indent), break_on_hyphens=False)]


def render_yaml() -> str:
    """The node's parameter file: every parameter with its default and a comment (config/lanenet.yaml).

    Returns:
        YAML text for ``--params-file`` (the ``/**`` key applies it to the node in any namespace).
    """
    lines = ["# lanenet node parameters: every key, its default and what it does. Generated from",
             "# lanenet_ros/node/params.py (`python -m lanenet_ros.node.params > config/lanenet.yaml`); the node",
             "# checks every value at start-up and on `ros2 param set`, refusing a bad one with the reason.",
             "# Topics are not parameters: remap image, image/compressed, camera_info, lanes, mask, overlay",
             "# and markers with -r (or the launch file's image_topic argument).",
             "/**:", "  ros__parameters:"]
    group = None
    for row in TABLE:
        head, _, key = row.name.rpartition(".")
        off = "# " if row.unset else ""  # a key left unset is shown commented out, group line and all
        if head != group:
            if head:
                lines.append(f"    {off}{head}:")
            group = head
        indent = "      " if head else "    "
        lines += [*_yaml_comment(row, indent), f"{indent}{off}{key}: {_yaml_value(row, row.default)}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the parameter file (``python -m lanenet_ros.node.params``)."""
    parser = argparse.ArgumentParser(description="Print the lanenet node's parameter YAML with its defaults.")
    parser.parse_args(argv)
    sys.stdout.write(render_yaml())
    return 0


if __name__ == "__main__":
    sys.exit(main())
