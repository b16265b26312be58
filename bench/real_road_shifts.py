"""The issue "Real roads" measures of a model, per kind of synthetic scene made to look like the real footage
the default model failed on: concrete median barriers, guard rails, walls and kerbs beside the edge lines,
real bonnets, tight bends and S-bends, two-way roads with double and solid/dashed yellow centre lines, faded
yellow on pale concrete, tar seams, bridge shadows and glare, and two mixes like the issue's clips. A stand-in
for footage the project does not have: synthetic frames are not real ones. Not a timing: `make bench` does not
run it.

    .venv/bin/python bench/real_road_shifts.py [--model M.onnx] [--frames 30] [--decode NAME=VALUE ...]
                                               [--kinds NAME,NAME] [--json OUT.json]
                                               [--variant NAME=VALUE,NAME=VALUE ...] [--dataset DIR]
                                               [--first-frame N] [--drives N [--no-hood-memory]
                                               [--heads-every N] [--drive-seed S] [--tracker NAME=VALUE ...]]

``--variant`` adds a decoder variant (settings over the model's own and ``--decode``), decoded from the same
network outputs, so variants are compared on the same frames for the price of one inference. ``--dataset``
scores the variants on a converted TuSimple set too (TuSimple's metric on every labelled lane, as
``lanenet-train evaluate`` scores it: the held-out drives' README figures), so that a change can be checked
on both in one run. ``--first-frame`` moves every kind to other frames (frame N on), to check a change that
was tuned on the first frames on frames it has not seen. ``--drives N`` scores N continuous drives of
``--frames`` frames per kind instead of independent frames (10 Hz, seeds from 80000), each variant twice: frame
by frame, and as the node publishes it with ``tracking`` on (its default: lanes smoothed over frames, marking
type and colour the most frequent of a track's recent frames, and the bonnet found in earlier frames held
through the frames in which it is not found: ``tracker.hood``, which ``--no-hood-memory`` turns off; with the
packaged default model the heads' model every third frame, the node's ``heads_every`` on the CPU, which
``--heads-every`` changes; ``--tracker alpha=0.5`` sets a :class:`LaneTracker` argument, here the node's
``tracker.smoothing``).

Per kind, independent frames (seeds from 60000, one set per kind) at 1280x720, scored on the ego pair only:
TuSimple accuracy / FP / FN of the two ego lines (the frame's ego-left and ego-right lanes against the labelled
ego lines); "both ego" is the share of frames with both ego lines labelled in which each is found on its own
side (TuSimple's 85 % of rows within 20 px); "phantom" the share of frames with a lane where no line is
painted (under half of its rows within 20 px of any painted line, every line counted, outer ones too); "type"
and "colour" the share of found ego lines whose marking type and colour are right; "bonnet" the share of frames
with the ego vehicle's bonnet in which the decoder's bonnet edge (from the model's ``hood_logits``, else the
image search) lies within 2 % of the image height of the true edge at the centre column, "false bonnet" the
share of frames without one in which it reports one ("-": no such frames). "error" is the mean distance in
pixels of the found ego lines from their painted lines at TuSimple's rows (rows within 60 px: a line on the
wrong paint is left to the other measures), "jitter", for tracked rows, the mean change of that distance from
one frame to the next along a track: what a controller downstream feels of the lane shaking.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lanenet_ros.decode.decoder import LaneDecoder
from lanenet_ros.decode.hood import HoodMemory
from lanenet_ros.decode.settings import SettingError, parse_pairs
from lanenet_ros.lanes import Position
from lanenet_ros.metrics import (
    TUSIMPLE_PIXEL_THRESH,
    TUSIMPLE_POINT_THRESH,
    TuSimpleAccumulator,
    lanes_to_tusimple,
    tusimple_lane_angle,
    tusimple_line_accuracy,
)
from lanenet_ros.pipeline import HEADS_EVERY, LanePipeline, run_model
from lanenet_ros.tracking import LaneTracker
from lanenet_train.data.layout import load_dataset
from lanenet_train.synth import SynthConfig
from lanenet_train.synth.render import iter_drive, render_frame
from lanenet_train.synth.writers import lane_x_at_rows, tusimple_h_samples

FIRST_SEED = 60_000  # away from the training, tuning, held-out and camera_shifts seeds
DRIVE_SEED = 80_000  # the drives of --drives
BENDS = {"max_curvature": 1 / 70, "straight_prob": 0.05, "curve_ramp_m": (15.0, 40.0), "curve_hold_m": (10.0, 50.0)}
BONNET = {"hood_prob": 1.0, "real_hood_prob": 1.0}
SCENES: dict[str, dict] = {
    "the generator's defaults": {},
    "median barrier beside the left edge line": {"median_barrier_prob": 1.0, "two_way_prob": 0.0},
    "guard rail, wall or kerb beside the right edge": {"roadside_barrier_prob": 1.0},
    "real bonnet (glossy, 5-12 %, mount/wiper)": BONNET,
    "tight bends and S-bends": BENDS,
    "two-way: double / solid-dashed yellow centre": {"two_way_prob": 1.0, "lanes": (2, 3),
                                                     "style_probs": (1.0, 0.0, 0.0)},
    "faded yellow on pale concrete": {"concrete_prob": 1.0, "faded_yellow_prob": 1.0, "two_way_prob": 0.5,
                                      "style_probs": (1.0, 0.0, 0.0)},
    "tar seams, bridge shadows, glare": {"tar_snake_prob": 1.0, "overpass_prob": 1.0, "glare_prob": 1.0,
                                         "overcast_prob": 0.1, "rain_prob": 0.0, "fog_prob": 0.0},
    "mix: highway (barrier, bridges, bonnet)": {**BONNET, "median_barrier_prob": 1.0, "two_way_prob": 0.0,
                                                "overpass_prob": 1.0, "concrete_prob": 0.5, "tar_snake_prob": 0.8},
    "mix: winding two-way road (rails, glare)": {**BONNET, **BENDS, "two_way_prob": 1.0, "lanes": (2, 2),
                                                 "style_probs": (1.0, 0.0, 0.0), "roadside_barrier_prob": 1.0,
                                                 "glare_prob": 0.6},
}
EGO = (Position.EGO_LEFT, Position.EGO_RIGHT)
BONNET_TOLERANCE = 0.02  # a bonnet edge found within 2 % of the image height (14 rows at 720) of the truth


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _threshold(xs: np.ndarray, rows: np.ndarray) -> float:
    return TUSIMPLE_PIXEL_THRESH / np.cos(tusimple_lane_angle(xs, rows))


def on_paint(pred: np.ndarray, painted: list[np.ndarray], rows: np.ndarray) -> bool:
    """Whether a predicted lane (x per row, -2 absent) lies on a painted line for at least half its rows."""
    mine = pred >= 0
    if not mine.any():
        return True
    for gt in painted:
        both = mine & (gt >= 0)
        if np.count_nonzero(np.abs(pred[both] - gt[both]) < _threshold(gt, rows)) >= 0.5 * mine.sum():
            return True
    return False


@dataclasses.dataclass
class Tally:
    """The measures of one kind of scene."""

    tusimple: TuSimpleAccumulator = dataclasses.field(default_factory=TuSimpleAccumulator)
    both_frames: int = 0
    both_right: int = 0
    phantom: int = 0
    frames: int = 0
    found: int = 0
    type_right: int = 0
    color_right: int = 0
    bonnet_frames: int = 0
    bonnet_right: int = 0
    bonnet_false: int = 0
    error_sum: float = 0.0
    error_rows: int = 0
    jitter_sum: float = 0.0
    jitter_rows: int = 0
    last_errors: dict = dataclasses.field(default_factory=dict)  # (position, track id) -> the last frame's errors

    def add(self, frame, out, rows: np.ndarray) -> None:
        """Score one frame (``frame``: the generator's, ``out``: the pipeline's LaneFrame)."""
        self.frames += 1
        w = frame.image.shape[1]
        painted = {lane.position: lane for lane in frame.lanes}
        gt_xs = {p: np.nan_to_num(lane_x_at_rows(painted[p].points, rows, w), nan=-2.0) for p in EGO
                 if p in painted and (lane_x_at_rows(painted[p].points, rows, w) >= 0).any()}
        preds = np.asarray(lanes_to_tusimple(out.lanes, rows, out.width), float).reshape(len(out.lanes), len(rows))
        ego_idx = {Position.EGO_LEFT: out.ego_left_index, Position.EGO_RIGHT: out.ego_right_index}
        ego_pred = {p: preds[i] for p, i in ego_idx.items() if i >= 0}
        self.tusimple.add([x.tolist() for x in ego_pred.values()], [x.tolist() for x in gt_xs.values()], rows)
        right = {}
        if frame.index == 0:  # a drive's first frame: its trackers are new, their ids too
            self.last_errors = {}
        errors = {}
        for p, gt in gt_xs.items():
            if p in ego_pred:
                err = np.abs(ego_pred[p] - gt)
                err[(ego_pred[p] < 0) | (gt < 0) | (err >= 60)] = np.nan
                self.error_sum += np.nansum(err)
                self.error_rows += np.count_nonzero(~np.isnan(err))
                key = (p, out.lanes[ego_idx[p]].track_id)
                if key[1] > 0:
                    errors[key] = err
                    if key in self.last_errors:
                        change = np.abs(err - self.last_errors[key])
                        self.jitter_sum += np.nansum(change)
                        self.jitter_rows += np.count_nonzero(~np.isnan(change))
        self.last_errors = errors
        for p, gt in gt_xs.items():
            acc = tusimple_line_accuracy(ego_pred[p], gt, _threshold(gt, rows)) if p in ego_pred else 0.0
            ok = acc >= TUSIMPLE_POINT_THRESH
            right[p] = ok
            if ok:
                lane, truth = out.lanes[ego_idx[p]], painted[p]
                self.found += 1
                self.type_right += int(lane.marking_type == truth.marking_type)
                self.color_right += int(lane.color == truth.color)
        if len(gt_xs) == 2:
            self.both_frames += 1
            self.both_right += int(all(right.values()))
        all_painted = [np.nan_to_num(lane_x_at_rows(lane.points, rows, w), nan=-2.0) for lane in frame.lanes]
        self.phantom += int(any(not on_paint(x, all_painted, rows) for x in preds))
        if frame.hood_edge:
            edge = np.asarray(frame.hood_edge, float)
            self.bonnet_frames += 1
            truth = float(np.interp(w / 2, edge[:, 0], edge[:, 1]))
            self.bonnet_right += int(out.hood_row >= 0 and abs(out.hood_row - truth) <= BONNET_TOLERANCE * out.height)
        else:
            self.bonnet_false += int(out.hood_row >= 0)

    def result(self) -> dict:
        """The measures as plain numbers."""
        r = self.tusimple.result()
        return {"frames": self.frames, "accuracy": r["accuracy"], "fp": r["fp"], "fn": r["fn"],
                "both_ego": self.both_right / max(self.both_frames, 1), "phantom": self.phantom / max(self.frames, 1),
                "type": self.type_right / max(self.found, 1), "color": self.color_right / max(self.found, 1),
                "bonnet": self.bonnet_right / self.bonnet_frames if self.bonnet_frames else None,
                "false_bonnet": self.bonnet_false / (self.frames - self.bonnet_frames)
                if self.frames > self.bonnet_frames else None,
                "error_px": self.error_sum / max(self.error_rows, 1),
                "jitter_px": self.jitter_sum / self.jitter_rows if self.jitter_rows else None}


class Variants:
    """One network, several decoders: each image runs through the network once and every decoder decodes it."""

    def __init__(self, pipe: LanePipeline, variants: dict[str, dict]) -> None:
        self.pipe = pipe
        params = {name: pipe.decoder.params.override(v) for name, v in variants.items()}  # over --decode
        flips = {p.flip_average for p in params.values()}
        if len(flips) > 1:
            raise ValueError("--variant: every variant must keep the same flip_average (one inference for all)")
        self.flip = flips.pop()
        self.decoders = {name: LaneDecoder(pipe.info, p) for name, p in params.items()}

    def __call__(self, image: np.ndarray, node: dict[str, HoodMemory | None] | None = None,
                 learned: bool = False) -> dict:
        """The LaneFrame of every variant for one camera image; for each variant in ``node`` also the frame as a
        pipeline with tracking decodes it (``"<variant>, as the node"``): with that bonnet memory (None: none)
        and, with ``learned``, from the heads' model (the pipeline's ``heads_every``)."""
        batch, geometry = self.pipe.preprocessor(image)
        outputs = run_model(self.pipe.backend.infer, batch, self.pipe.info, self.flip)
        heads = self.pipe.heads_backend
        node_outputs = run_model(heads.infer, batch, heads.info, self.flip) if learned and node else outputs
        out = {}
        for name, d in self.decoders.items():
            extracted = d.extract(outputs, geometry)
            out[name] = d.finish(extracted, image)
            if node and name in node:
                if node_outputs is not outputs:
                    extracted = d.extract(node_outputs, geometry)
                out[f"{name}, as the node"] = d.finish(extracted, image, node[name])
        return out


def run(decode: Variants, kinds: list[str], frames: int, first: int = 0) -> dict[str, dict[str, dict]]:
    """Per variant: the measures per kind of scene, and over all of them (``all``), on frames first..first+frames-1
    of each kind."""
    def sequences(k: int, config: SynthConfig):  # independent frames: one sequence, nothing tracked
        yield (render_frame(config, FIRST_SEED + 1000 * k + i) for i in range(first, first + frames)), frames

    return _score(decode, kinds, sequences, tracked=False)


def run_drives(decode: Variants, kinds: list[str], drives: int, frames: int, hood_memory: bool = True,
               seed: int = DRIVE_SEED, tracker: dict | None = None) -> dict[str, dict[str, dict]]:
    """As :func:`run`, on ``drives`` continuous drives of ``frames`` frames per kind, and every variant also as
    tracked (``"<variant>, tracked"``: through a :class:`LaneTracker` per drive and, with ``hood_memory``, decoded
    with a :class:`HoodMemory` per drive, as the node runs it, ``tracker`` its arguments over the node's defaults);
    kind k's drive d has seed ``seed + 1000 k + d``."""
    def sequences(k: int, config: SynthConfig):
        for d in range(drives):
            yield iter_drive(config, seed + 1000 * k + d, frames), frames

    return _score(decode, kinds, sequences, tracked=True, hood_memory=hood_memory, tracker=tracker or {})


def _score(decode: Variants, kinds: list[str], sequences, tracked: bool, hood_memory: bool = False,
           tracker: dict | None = None) -> dict[str, dict[str, dict]]:
    """The measures per variant (and per variant tracked, with ``tracked``) and kind, over the frames
    ``sequences(kind index, config)`` gives as (frames, count) pairs; each sequence gets fresh trackers (and
    bonnet memories, with ``hood_memory``)."""
    rows = np.asarray(tusimple_h_samples(720))
    names = [n for v in decode.decoders for n in ((v, f"{v}, tracked") if tracked else (v,))]
    tallies = {v: {name: Tally() for name in [*kinds, "all"]} for v in names}
    for name in kinds:
        k = list(SCENES).index(name)  # a kind's frames do not depend on which kinds are run
        config = dataclasses.replace(SynthConfig(), **SCENES[name])
        for frames, count in sequences(k, config):
            trackers = {v: LaneTracker.for_decoder(dec.params, **(tracker or {}))
                        for v, dec in decode.decoders.items() if tracked}
            node = {v: HoodMemory() if hood_memory else None for v in trackers}
            every = decode.pipe.heads_every
            for i, frame in enumerate(tqdm(frames, total=count, desc=name[:28], unit="frame", leave=False)):
                learned = every > 0 and i % every == 0
                outs = decode(frame.image, node, learned)
                outs |= {f"{v}, tracked": t.update(outs.pop(f"{v}, as the node"), frame.timestamp,
                                                   type_votes=every if learned else 1)
                         for v, t in trackers.items()}
                for v, out in outs.items():
                    tallies[v][name].add(frame, out, rows)
                    tallies[v]["all"].add(frame, out, rows)
    return {v: {name: t.result() for name, t in by_kind.items()} for v, by_kind in tallies.items()}


def run_dataset(decode: Variants, root: Path) -> dict[str, dict]:
    """Per variant: TuSimple accuracy / FP / FN on a converted TuSimple set (every labelled lane)."""
    _, samples = load_dataset(root)
    accs = {v: TuSimpleAccumulator() for v in decode.decoders}
    for s in tqdm(samples, desc=root.name, unit="frame", leave=False):
        h = s["tusimple"]["h_samples"]
        for v, out in decode(cv2.imread(str(root / s["image"]))).items():
            accs[v].add(lanes_to_tusimple(out.lanes, h, out.width), s["tusimple"]["lanes"], h)
    return {v: acc.result() for v, acc in accs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: the embedded default model)")
    parser.add_argument("--frames", type=int, default=30, help="frames per kind of scene (default %(default)s)")
    parser.add_argument("--first-frame", type=int, default=0, metavar="N",
                        help="start at each kind's frame N (default 0): frames a change was not tuned on")
    parser.add_argument("--drives", type=int, default=0, metavar="N",
                        help="score N continuous drives of --frames frames per kind instead of independent frames, "
                             "each variant frame by frame and tracked (default 0: independent frames)")
    parser.add_argument("--heads-every", type=int, default=HEADS_EVERY, metavar="N",
                        help="with --drives and the packaged default model: the tracked rows run default_heads every "
                             "N frames, as the node on the CPU does (default %(default)s; 0: never)")
    parser.add_argument("--drive-seed", type=int, default=DRIVE_SEED, metavar="S",
                        help="with --drives: first seed of the drives (default %(default)s; another, e.g. 80500, gives "
                             "drives a change was not tuned on)")
    parser.add_argument("--tracker", action="append", default=[], metavar="NAME=VALUE",
                        help="with --drives: a LaneTracker argument for the tracked rows, e.g. alpha=0.5 (the node's "
                             "tracker.smoothing) or coast_after=8 (repeatable)")
    parser.add_argument("--no-hood-memory", action="store_true",
                        help="with --drives: track without the bonnet memory (the node's tracker.hood false)")
    parser.add_argument("--decode", action="append", default=[], metavar="NAME=VALUE",
                        help="decoder setting over the model's own (repeatable)")
    parser.add_argument("--kinds", default="", help="comma-separated leading words of the kinds to run (default all)")
    parser.add_argument("--json", default="", help="also write the figures to this JSON file")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE,...",
                        help="a decoder variant to compare with the model's own settings (repeatable)")
    parser.add_argument("--dataset", default="", help="also score every variant on this converted TuSimple set")
    args = parser.parse_args()
    try:
        overrides = parse_pairs(args.decode)
        variants = {"as given": {}} | {v: parse_pairs([p for p in v.split(",") if p]) for v in args.variant}
        tracker = {name: float(value) if "." in value else int(value)
                   for name, value in (pair.split("=", 1) for pair in args.tracker)}
        LaneTracker(**tracker)
    except SettingError as exc:
        parser.error(str(exc))
    except (ValueError, TypeError) as exc:
        parser.error(f"--tracker {' '.join(args.tracker)}: {exc}")
    wanted = [w.strip() for w in args.kinds.split(",") if w.strip()]
    kinds = [k for k in SCENES if not wanted or any(k.startswith(w) for w in wanted)]
    if not kinds:
        parser.error(f"--kinds {args.kinds!r} names none of: {'; '.join(SCENES)}")
    pipe = LanePipeline(args.model, backend="onnxruntime-cpu", tracking=False, decode_params=overrides,
                        heads_every=args.heads_every if args.drives > 0 else 0)
    try:
        decode = Variants(pipe, variants)
    except ValueError as exc:
        parser.error(str(exc))
    held = run_dataset(decode, Path(args.dataset)) if args.dataset else {}
    if args.frames <= 0:
        results = {v: {} for v in variants}
    elif args.drives > 0:
        results = run_drives(decode, kinds, args.drives, args.frames, hood_memory=not args.no_hood_memory,
                             seed=args.drive_seed, tracker=tracker)
    else:
        results = run(decode, kinds, args.frames, args.first_frame)
    for v, by_kind in results.items():
        print(f"\n# decoder: {v}" + (f" (on {', '.join(args.decode)})" if args.decode else ""))
        if v in held:
            r = held[v]
            print(f"{args.dataset}: {r['frames']} frames, accuracy {r['accuracy']:.4f}, FP {r['fp']:.4f}, "
                  f"FN {r['fn']:.4f} (every labelled lane)")
        if not by_kind:
            continue
        print(f"{'scene (ego pair)':48s} frames  accuracy     FP     FN  both ego  phantom   type  colour  "
              "bonnet  false bonnet  error px  jitter px")
        for name, r in by_kind.items():
            print(f"{name:48s} {r['frames']:6d} {r['accuracy']:9.3f} {r['fp']:6.3f} {r['fn']:6.3f} "
                  f"{r['both_ego']:9.2f} {r['phantom']:8.2f} {r['type']:6.2f} {r['color']:7.2f} "
                  f"{_share(r['bonnet']):>7s} {_share(r['false_bonnet']):>13s} {r['error_px']:9.2f} "
                  f"{_share(r['jitter_px']):>10s}")
    if args.json:
        Path(args.json).write_text(json.dumps({"decode": args.decode, "dataset": args.dataset, "held_out": held,
                                               "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
