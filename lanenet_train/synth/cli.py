"""`lanenet-train synth`: render synthetic dash-cam data straight into TuSimple, CULane or Apollo format."""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from lanenet_ros.replay.bags import add_bag_options
from lanenet_train.synth.config import SynthConfig
from lanenet_train.synth.render import drive_segment, render_frame
from lanenet_train.synth.writers import (
    FORMATS,
    PARTS_DIR,
    FrameKey,
    ensure_dir,
    finish_dataset,
    stash_camera_lines,
    write_frame,
)

_STATE: dict = {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `lanenet-train synth`."""
    parser.add_argument("--format", choices=FORMATS, default="tusimple",
                        help="label format to write (default tusimple)")
    parser.add_argument("--out", required=True, type=Path, help="output dataset folder")
    parser.add_argument("--count", type=int, default=100, help="number of frames (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same data")
    parser.add_argument("--sequence", type=int, default=0, metavar="N",
                        help="render continuous drives of N frames each instead of independent frames")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of drives (default 10)")
    parser.add_argument("--width", type=int, default=1280, help="image width (default 1280)")
    parser.add_argument("--height", type=int, default=720, help="image height (default 720)")
    parser.add_argument("--render-scale", type=float, default=0.5,
                        help="render the scene at this fraction of the size, then finish at full size (default 0.5)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of frames (of drives, with --sequence) written to the val split (default 0.1)")
    parser.add_argument("--label-lanes", choices=("benchmark", "all"), default="benchmark",
                        help="tusimple: label the four lines the benchmark scores (ego lane and its neighbours, "
                             "default) or every painted line (for training; decode with max_per_side=2)")
    parser.add_argument("--edge-line-prob", type=float, default=SynthConfig.edge_line_prob, metavar="P",
                        help="probability that an outer road edge carries a painted edge line; the others are "
                             f"unpainted asphalt edges, not lanes (default {SynthConfig.edge_line_prob})")
    parser.add_argument("--camera-height", type=float, nargs=2, default=SynthConfig.camera_height_m,
                        metavar=("LOW", "HIGH"), help="camera height above the road in metres, drawn per frame "
                        "or drive (default %(default)s; a truck's camera sits higher)")
    parser.add_argument("--low-end-camera-prob", type=float, default=SynthConfig.low_end_camera_prob, metavar="P",
                        help="probability of a low-end camera: heavy noise, JPEG quality 10-30, under-exposure "
                             "(default %(default)s)")
    parser.add_argument("--ignore-worn", type=float, default=None, metavar="W",
                        help="tusimple: lines whose paint is worn by W (0-1) or more are written to the label's "
                             "ignore_lanes, which training neither learns as lane nor as background (default: "
                             "none; paint is worn by at most 0.9)")
    parser.add_argument("--label-hood", action="store_true",
                        help="tusimple: label the ego vehicle's bonnet too (the label's 'hood' edge; convert draws "
                             "it as class 'hood', for model_config.hood_output)")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=VALUE",
                        help="any SynthConfig field (docs/data.md), e.g. real_hood_prob=0.5 or "
                             "curve_hold_m=10,50 (pairs comma-separated); repeatable, applied last")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    parser.add_argument("--nproc", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    bag = parser.add_argument_group("--bag: one drive as a rosbag2 bag (make demo, lanenet-replay)")
    bag.add_argument("--bag", action="store_true",
                     help="write one continuous drive of --count frames at --fps as a rosbag2 bag of camera "
                          "images at --out, its TuSimple-format ground truth beside it (OUT.labels.json, by "
                          "timestamp); --seed, --width, --height apply")
    add_bag_options(bag)


def config_overrides(pairs: list[str]) -> dict:
    """``SynthConfig`` fields from ``NAME=VALUE`` pairs, typed by each field's default (pairs and triples
    comma-separated).

    Raises:
        ValueError: an unknown name or a value that does not parse (the message names it).
    """
    defaults = SynthConfig()
    out: dict = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        name = name.strip()
        if not hasattr(defaults, name) or name in ("width", "height", "render_scale") or not raw:
            raise ValueError(f"--config {pair!r}: expected NAME=VALUE with NAME a SynthConfig field "
                             "(docs/data.md; width, height and render_scale have their own options)")
        default = getattr(defaults, name)
        try:
            if isinstance(default, tuple):
                kind = type(default[0])
                out[name] = tuple(kind(float(v)) if kind is int else kind(v) for v in raw.split(","))
            else:
                out[name] = type(default)(float(raw)) if isinstance(default, int) else type(default)(raw)
        except ValueError:
            raise ValueError(f"--config {name}: {raw!r} is not a {type(default).__name__} like "
                             f"{default!r}") from None
    return out


def split_of(unit: int, val_fraction: float) -> str:
    """Deterministic split of a frame (or drive) number: every k-th goes to val, k = 1 / val_fraction."""
    if val_fraction <= 0:
        return "train"
    k = max(1, round(1.0 / val_fraction))
    return "val" if unit % k == k - 1 else "train"


def plan_tasks(count: int, sequence: int, val_fraction: float, chunk: int = 10) -> list[tuple]:
    """Work units: ``("frames", [keys])`` or ``("drive", drive, n_frames, first, [keys])``."""
    tasks = []
    units = count if sequence <= 0 else (count + sequence - 1) // sequence
    # a set too small for one val unit in 1 / val_fraction still gets one: its last frame (or drive)
    small = val_fraction > 0 and units >= 2 and all(split_of(u, val_fraction) == "train" for u in range(units))

    def split(unit: int) -> str:
        return "val" if small and unit == units - 1 else split_of(unit, val_fraction)

    if sequence <= 0:
        keys = [FrameKey(i, split(i), 0, i) for i in range(count)]
        return [("frames", keys[i:i + chunk]) for i in range(0, count, chunk)]
    index = 0
    for drive in range(units):
        n = min(sequence, count - drive * sequence)
        keys = [FrameKey(index + k, split(drive), drive, k) for k in range(n)]
        index += n
        tasks += [("drive", drive, n, first, keys[first:first + 20]) for first in range(0, n, 20)]
    return tasks


def _init(state: dict) -> None:
    cv2.setNumThreads(1)  # one worker per core: OpenCV's own threads would only fight over the cores
    _STATE.update(state)


def _work(task: tuple) -> list[dict]:
    cfg, out, fmt, seed = _STATE["config"], _STATE["out"], _STATE["format"], _STATE["seed"]
    if task[0] == "frames":
        records = [write_frame(out, fmt, render_frame(cfg, seed * 1_000_003 + k.index), k, False, _STATE["quality"],
                               _STATE["all_lanes"], _STATE["ignore_worn"],
                               _STATE["label_hood"]) for k in task[1]]
    else:
        _, drive, _, first, keys = task
        frames = drive_segment(cfg, seed * 1_000_003 + drive, first + len(keys), _STATE["fps"], first=first)
        records = [write_frame(out, fmt, f, k, True, _STATE["quality"], _STATE["all_lanes"], _STATE["ignore_worn"],
                               _STATE["label_hood"])
                   for f, k in zip(frames, keys, strict=True)]
    stash_camera_lines(out, records)
    return records


def run(args: argparse.Namespace) -> int:
    """Render ``--count`` frames into ``--out``; returns the exit code."""
    if (args.count < 1 or args.sequence < 0 or args.nproc < 1 or not 0 <= args.val_fraction < 1
            or not 0 <= args.edge_line_prob <= 1):
        print("lanenet-train synth: --count and --nproc must be >= 1, --sequence >= 0, "
              "--val-fraction in [0, 1), --edge-line-prob in [0, 1]", file=sys.stderr)
        return 2
    if args.ignore_worn is not None and (args.format != "tusimple" or not 0 < args.ignore_worn <= 1):
        print("lanenet-train synth: --ignore-worn needs --format tusimple and a share in (0, 1]", file=sys.stderr)
        return 2
    if args.label_hood and args.format != "tusimple":
        print("lanenet-train synth: --label-hood needs --format tusimple", file=sys.stderr)
        return 2
    try:
        config = SynthConfig(width=args.width, height=args.height, render_scale=args.render_scale,
                             edge_line_prob=args.edge_line_prob, camera_height_m=tuple(args.camera_height),
                             low_end_camera_prob=args.low_end_camera_prob, **config_overrides(args.config))
        if not args.bag:
            ensure_dir(args.out)
    except (ValueError, OSError) as exc:
        print(f"lanenet-train synth: {exc}", file=sys.stderr)
        return 2
    if args.bag:
        return _bag(args, config)
    shutil.rmtree(args.out / PARTS_DIR, ignore_errors=True)  # left over from an interrupted run
    state = {"config": config, "out": args.out, "format": args.format, "seed": args.seed, "fps": args.fps,
             "quality": args.quality, "all_lanes": args.label_lanes == "all",
             "ignore_worn": args.ignore_worn, "label_hood": args.label_hood}
    tasks = plan_tasks(args.count, args.sequence, args.val_fraction)
    records: list[dict] = []
    with tqdm(total=args.count, unit="img", desc=f"synth {args.format}") as bar:
        if args.nproc == 1:
            _init(state)
            results = map(_work, tasks)
            for recs in results:
                records += recs
                bar.update(len(recs))
        else:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(args.nproc, initializer=_init, initargs=(state,)) as pool:
                for recs in pool.imap_unordered(_work, tasks):
                    records += recs
                    bar.update(len(recs))
    splits = finish_dataset(args.out, args.format, records)
    print(f"wrote {len(records)} frames ({', '.join(f'{k} {v}' for k, v in sorted(splits.items()))}) "
          f"in {args.format} format to {args.out}")
    return 0


def _bag(args: argparse.Namespace, config: SynthConfig) -> int:
    """``--bag``: the drive as a rosbag2 bag; returns the exit code."""
    from lanenet_ros.replay.bags import labels_path
    from lanenet_train.synth.bag import write_drive_bag

    try:
        count = write_drive_bag(args, config)
    except (ValueError, FileExistsError, OSError) as exc:
        print(f"lanenet-train synth: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} frames to {args.out} ({args.storage}, {args.topic})\nground truth: {labels_path(args.out)}")
    return 0
