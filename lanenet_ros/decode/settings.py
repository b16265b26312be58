"""The decoder's settings: one typed table, and the one place their values are read and judged.

Each field of :class:`DecodeParams` is one setting: its type (the annotation), its default (what the decoder
runs with when neither the model nor the user gives one), its allowed range and a one-line meaning. Every
other form is generated from it and checked by :meth:`Setting.check`: the node's ``decode.*`` parameters
(:mod:`lanenet_ros.node.params`), the ``NAME=VALUE`` strings of a training spec's ``evaluation_config.decode``,
of a model's description (``decode``, docs/model_format.md) and of ``--decode`` on the command lines
(:func:`parse_pairs`), and the table in docs/node.md (``python -m lanenet_ros.decode.settings``).

The ranges keep the node real-time and its output useful: a setting outside them is refused at start-up and
at run time with its name, its range and what it does (a 0.000001-row point step used to exhaust memory, a
1e-9 clustering bandwidth silently found no lanes).
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class SettingError(ValueError):
    """A decoder setting that cannot be used; the message names it, its range and what it does."""


def _setting(default: bool | int | float, doc: str, low: float | None = None, high: float | None = None,
             also: float | None = None) -> Any:
    """A :class:`DecodeParams` field carrying its row of the table (see :class:`Setting`)."""
    return field(default=default, metadata={"doc": doc, "low": low, "high": high, "also": also})


@dataclass
class DecodeParams:
    """Tuning of the decoder (pixel sizes are network-output pixels unless they say camera rows).

    Every field is one setting with its default, range and meaning (:data:`SETTINGS`); ``docs/node.md`` lists
    them. The default of each is what runs when neither the model's description nor the user sets it.
    """

    lane_threshold: float = _setting(
        0.5, "LaneNet: a pixel is lane when the binary branch's lane probability exceeds this (a model trained "
        "with class weights w is calibrated to w_lane / (w_bg + w_lane), not 0.5)", 0.01, 0.99)
    min_lane_pixels: int = _setting(30, "lanes with fewer pixels are dropped", 2, 5000)
    min_lane_rows: int = _setting(8, "lanes spanning fewer distinct network rows are dropped", 2, 500)
    min_span: float = _setting(
        0.0, "lanes covering less than this share of the network's rows are dropped (fragments near the "
        "horizon, where lanes converge and clusters mix)", 0.0, 0.95)
    min_fill: float = _setting(
        0.0, "lanes with pixels on less than this share of the rows between their ends are dropped (0: off); a "
        "LaneNet marks a real line whole, through dash gaps, a bare road edge in patches. Keep 0 for per-class "
        "models, whose dashes leave gaps", 0.0, 1.0)
    extend_far: float = _setting(
        0.0, "each lane's far end is continued along its fit by this share of the camera image's height (the "
        "network's mask fades before a lane's far end)", 0.0, 0.5)
    poly_degree: int = _setting(3, "degree of the lane polynomial x(y) (lowered for short lanes)", 1, 5)
    outlier_px: float = _setting(2.5, "a row further than this from the fit is an outlier", 0.5, 50.0)
    point_step_px: float = _setting(10.0, "camera rows between sampled lane points", 1.0, 200.0)
    cluster_bandwidth: float = _setting(
        1.0, "LaneNet: mean-shift kernel radius in embedding space (about twice the training's pull margin)",
        0.25, 10.0)
    cluster_radius: float = _setting(
        1.5, "LaneNet: embedding distance within which a pixel joins a lane (below the training's push margin)",
        0.25, 10.0)
    chain_px: float = _setting(6.0, "Per-class models: a dash joins a marking within this of its extended line",
                               0.0, 100.0)
    max_lanes: int = _setting(8, "most lanes kept (highest confidence first)", 1, 16)
    max_per_side: int = _setting(
        0, "most lanes kept on each side of the ego centre line, nearest first (0: no limit; 2 keeps the ego and "
        "the next lanes, those TuSimple and CULane label)", 0, 8)
    min_confidence: float = _setting(0.1, "lanes less confident than this are dropped", 0.0, 1.0)
    double_fraction: float = _setting(0.4, "share of near rows with two runs of paint that makes a double line",
                                      0.05, 1.0)
    ego_center: float = _setting(0.5, "vehicle centre line as a share of the image width at the bottom row",
                                 0.0, 1.0)
    camera_height_m: float = _setting(1.5, "camera height assumed when reading paint widths from the image "
                                           "(metres)", 0.2, 10.0)
    hood: float = _setting(
        -1.0, "the ego vehicle's hood at the bottom of the image: -1 takes it from the model's hood_logits "
        "output where the model has one and sees one, else finds it in each image; 0 takes none, a share of the "
        "rows up to 0.45 is a known, fixed hood; lanes end at its edge and the mask is background below it",
        0.0, 0.45, also=-1.0)
    flip_average: bool = _setting(
        False, "LaneNet: run the network on the image and its mirror image and average the binary branch "
        "(lanes still separated by the first run's embedding); a second inference, fewer false lanes on bare "
        "road edges. Not for per-class models, some of whose classes have a side")
    far_end_paint: float = _setting(
        0.0, "with the camera image, a lane's far end moves back to the farthest row where the image shows paint "
        "along it, searched over this share of the image height from the fitted far end (0: off; where no paint "
        "is seen the end stays)", 0.0, 0.5)
    min_painted: float = _setting(
        0.0, "a model with a painted_logits output: lanes it rates a painted line less than this (its probability "
        "averaged along the lane's fit) are dropped before the nearest ones are kept: a bare road edge, a "
        "barrier's base, a shadow's edge (0: off)", 0.0, 1.0)
    learned_markings: bool = _setting(
        True, "a model with a marking_logits output gives each lane's marking type (its softmax averaged along "
        "the lane's fit), and its colour where the camera image is not at hand (with it the paint tells the "
        "colour); false reads both from the paint as for a model without it. Class names that say a marking "
        "still win")

    def validate(self) -> DecodeParams:
        """Check every setting against its row of the table; return self.

        Raises:
            SettingError: naming the first bad setting, its value, its range and what it does.
        """
        for row in SETTINGS:
            row.check(getattr(self, row.name))
        return self

    @classmethod
    def from_pairs(cls, pairs: Sequence[str]) -> DecodeParams:
        """The settings ``NAME=VALUE`` strings give, on the defaults.

        Raises:
            SettingError: an unknown name, a value of the wrong type, or out of range.
        """
        return cls(**parse_pairs(pairs))

    def override(self, given: Mapping[str, Any] | None) -> DecodeParams:
        """These settings with those given (``name -> value``) in their place, checked.

        Raises:
            SettingError: an unknown name or a value out of range.
        """
        given = dict(given or {})
        for name in given:
            setting(name)
        return dataclasses.replace(self, **given).validate()


@dataclass(frozen=True)
class Setting:
    """One row of the decoder's settings table.

    Attributes:
        name: the :class:`DecodeParams` field (``decode.<name>`` on the node).
        kind: ``bool``, ``int`` or ``float``.
        default: the value that runs when neither the model nor the user sets it.
        doc: one line: what it does.
        low: smallest allowed number (None for a bool).
        high: largest allowed number (None for a bool).
        also: one more allowed value outside ``low..high`` (``hood``'s -1: find it), or None.
    """

    name: str
    kind: type
    default: bool | int | float
    doc: str
    low: float | None = None
    high: float | None = None
    also: float | None = None

    @property
    def allowed(self) -> str:
        """The allowed values in words: ``1 to 5``, ``-1, or 0.0 to 0.45``, ``true or false``."""
        if self.kind is bool:
            return "true or false"
        span = f"{self.low} to {self.high}"
        return f"{self.also}, or {span}" if self.also is not None else span

    def check(self, value: Any) -> bool | int | float:
        """The value, when it is of this setting's type and in its range (an int is taken for a float).

        Raises:
            SettingError: naming the setting, the value, what is allowed and what the setting does.
        """
        whole = isinstance(value, int) and not isinstance(value, bool)
        typed = {bool: isinstance(value, bool), int: whole, float: whole or isinstance(value, float)}[self.kind]
        if not typed:
            raise SettingError(f"decode setting {self.name}={value!r} is not a {self.kind.__name__}; allowed "
                               f"{self.allowed}. {self.name}: {self.doc}")
        if self.kind is bool or value == self.also:
            return value
        if not (math.isfinite(value) and self.low <= value <= self.high):
            raise SettingError(f"decode setting {self.name}={value!r} is out of range; allowed {self.allowed}. "
                               f"{self.name}: {self.doc}")
        return float(value) if self.kind is float else value

    def parse(self, text: str) -> bool | int | float:
        """The value a ``VALUE`` string gives (``5``, ``0.8``, ``true``), checked.

        Raises:
            SettingError: a value of the wrong type or out of range.
        """
        text = text.strip()
        if self.kind is bool:
            words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
            if text.lower() not in words:
                raise SettingError(f"decode setting {self.name}: {text!r} is not a bool (true or false)")
            return self.check(words[text.lower()])
        try:
            value = self.kind(text)
        except ValueError:
            raise SettingError(f"decode setting {self.name}: {text!r} is not a {self.kind.__name__} "
                               f"({self.allowed})") from None
        return self.check(value)

    def format(self, value: bool | int | float) -> str:
        """``VALUE`` as written in specs and model descriptions (``true``, ``5``, ``0.8``)."""
        return str(value).lower() if self.kind is bool else repr(value)


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, type(f.default), f.default, f.metadata["doc"], f.metadata["low"], f.metadata["high"],
            f.metadata["also"])
    for f in dataclasses.fields(DecodeParams))
"""Every decoder setting, in the order of :class:`DecodeParams`."""
SETTING: dict[str, Setting] = {row.name: row for row in SETTINGS}
"""The settings by name."""


def setting(name: str) -> Setting:
    """The table row of a setting.

    Raises:
        SettingError: no setting has this name (the closest one is suggested).
    """
    try:
        return SETTING[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(SETTING), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise SettingError(f"unknown decode setting {name!r}; {hint}expected NAME=VALUE with NAME one of "
                           f"{', '.join(SETTING)}") from None


def parse_pairs(pairs: Sequence[str]) -> dict[str, Any]:
    """The settings ``NAME=VALUE`` strings (``max_lanes=5``) give, typed and checked; of two with one name,
    the later wins (in the place of the first).

    Raises:
        SettingError: an unknown name, a missing value, a value of the wrong type or out of range.
    """
    values: dict[str, Any] = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        if not raw.strip():
            raise SettingError(f"decode setting {pair!r}: expected NAME=VALUE, e.g. max_lanes=6")
        try:
            row = setting(name.strip())
        except SettingError as exc:
            raise SettingError(f"{pair!r}: {exc}") from None
        values[row.name] = row.parse(raw)
    return values


def format_pairs(values: Mapping[str, Any]) -> list[str]:
    """``NAME=VALUE`` strings of settings (what specs and model descriptions hold)."""
    return [f"{name}={setting(name).format(value)}" for name, value in values.items()]


@functools.cache
def packaged_settings() -> dict[str, Any]:
    """The settings the packaged model carries: what runs in its place of a default (empty without it)."""
    from lanenet_ros.model_info import read_model_info
    from lanenet_ros.pipeline import DEFAULT_MODEL

    return parse_pairs(read_model_info(DEFAULT_MODEL).decode) if DEFAULT_MODEL.is_file() else {}


def markdown_table() -> str:
    """The settings as a Markdown table (docs/node.md): name, type, default, the packaged model's value,
    range, meaning."""
    packaged = packaged_settings()
    lines = ["| setting | type | default | packaged model | allowed | meaning |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| `{row.name}` | {row.kind.__name__} | `{row.format(row.default)}` | "
              f"{f'`{row.format(packaged[row.name])}`' if row.name in packaged else 'default'} | {row.allowed} | "
              f"{row.doc}. |" for row in SETTINGS]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the settings table (``python -m lanenet_ros.decode.settings``)."""
    argparse.ArgumentParser(description="Print the decoder's settings as the Markdown table of docs/node.md.") \
        .parse_args(argv)
    sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
