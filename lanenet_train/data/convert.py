"""`lanenet-train convert`: TuSimple, CULane, Apollo lane marks or image/mask folders -> the canonical layout.

The conversion is all-or-nothing: new files are written into a staging folder and moved into place only
when every sample converted (or, with ``--skip-bad``, every bad one was set aside). Re-running skips samples
whose inputs and options are unchanged, and removes outputs of samples that are gone.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import cv2
from tqdm import tqdm

from lanenet_train.data import formats
from lanenet_train.data.apollo_labels import train_classes
from lanenet_train.data.labels import apollo_mapper, folder_mapper, value_map_for
from lanenet_train.data.layout import (
    META_FILE,
    DatasetError,
    default_meta,
    load_dataset,
    write_dataset_meta,
    write_index,
)
from lanenet_train.data.sources import (
    HOOD_CLASS,
    LANE_CLASSES,
    BadInputError,
    ConvertOptions,
    SourceSample,
    convert_one,
    fingerprint,
)

DEFAULT_LANE_WIDTH = {"tusimple": 5, "culane": 16}
SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}
_STATE: dict = {}
DISCOVER = {"tusimple": formats.discover_tusimple, "culane": formats.discover_culane,
            "apollo": formats.discover_apollo, "folder": formats.discover_folder}
"""Each input format's reader: folder -> (samples, what was skipped and why)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `lanenet-train convert`."""
    parser.add_argument("--format", required=True, choices=tuple(DISCOVER),
                        help="source dataset format")
    parser.add_argument("--input", required=True, type=Path, help="source dataset folder")
    parser.add_argument("--output", required=True, type=Path, help="canonical dataset folder to write")
    parser.add_argument("--lane-width", type=int, default=None,
                        help="lane line width in pixels for TuSimple/CULane (default 5 and 16)")
    parser.add_argument("--classes", type=Path, default=None,
                        help="class table of a folder dataset (JSON or 'id name r g b' lines; "
                             "default <input>/classes.json or classes.txt)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="when the source has no val split, move this share of train clips to val (default 0.1)")
    parser.add_argument("--name", default=None, help="dataset name (default: the output folder's name)")
    parser.add_argument("--nproc", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="set bad inputs aside and report them at the end instead of stopping")


def carve_val(samples: list[SourceSample], fraction: float) -> int:
    """Move whole groups (clips, videos, records) from train to val when the source has no val split.

    Returns:
        The number of samples moved.
    """
    if fraction <= 0 or any(s.split == "val" for s in samples):
        return 0
    moved = 0
    for s in samples:
        if s.split == "train" and int(hashlib.sha1(s.group.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction:
            s.split = "val"
            moved += 1
    return moved


def _options(args: argparse.Namespace) -> tuple[ConvertOptions, list[dict]]:
    if args.format == "folder":
        path = args.classes or next((args.input / n for n in ("classes.json", "classes.txt")
                                     if (args.input / n).is_file()), None)
        if path is None:
            raise BadInputError(f"{args.input}: no class table; pass --classes FILE "
                                "(JSON list or 'id name r g b' lines)")
        classes = formats.read_class_table(path)
        return ConvertOptions("folder", 0, value_map=value_map_for(classes)), classes
    if args.format == "apollo":
        return ConvertOptions("apollo", 0), train_classes()
    width = args.lane_width or DEFAULT_LANE_WIDTH[args.format]
    if width < 1:
        raise BadInputError(f"--lane-width must be at least 1 pixel, got {width}")
    return ConvertOptions(args.format, width), LANE_CLASSES


def _init(state: dict) -> None:
    cv2.setNumThreads(1)  # one worker per core
    _STATE.update(state)


def _convert(sample: SourceSample) -> tuple[str, dict | str]:
    options: ConvertOptions = _STATE["options"]
    mapper = None
    if options.fmt == "apollo":
        mapper = apollo_mapper
    elif options.fmt == "folder":
        mapper = folder_mapper(options.value_map)
    try:
        result = convert_one(sample, options, _STATE["staging"], mapper)
    except BadInputError as exc:
        return "bad", str(exc)
    result["record"]["meta"]["fingerprint"] = _STATE["fingerprints"][sample.name, sample.split]
    return "ok", result


def _previous(output: Path) -> tuple[dict | None, dict[str, dict]]:
    if not output.exists():
        return None, {}
    if not (output / META_FILE).is_file():
        if any(output.iterdir()):
            raise BadInputError(f"{output}: exists and is not a lanenet dataset (no {META_FILE}); "
                                "choose another --output")
        return None, {}
    try:
        meta, samples = load_dataset(output)
    except DatasetError as exc:
        raise BadInputError(f"{exc}; remove {output} or choose another --output") from exc
    return meta, {s["id"]: s for s in samples}


def _up_to_date(output: Path, old: dict | None, fp: str) -> bool:
    if old is None or old.get("meta", {}).get("fingerprint") != fp:
        return False
    return all((output / old[k]).is_file() for k in ("image", "mask", "instance") if old.get(k))


def _run_workers(todo: list[SourceSample], state: dict, nproc: int, skip_bad: bool) -> tuple[list, list[str]]:
    results, bad = [], []
    with tqdm(total=len(todo), unit="img", desc="convert", disable=not todo) as bar:
        if nproc == 1 or len(todo) < 4:
            _init(state)
            outcomes = map(_convert, todo)
            pool = None
        else:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            pool = ctx.Pool(nproc, initializer=_init, initargs=(state,))
            outcomes = pool.imap(_convert, todo, chunksize=4)
        try:
            for status, payload in outcomes:
                bar.update(1)
                if status == "bad":
                    bad.append(payload)
                    if not skip_bad:
                        break
                else:
                    results.append(payload)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    return results, bad


def _commit(output: Path, staging: Path, new_output: bool, stale: list[str]) -> None:
    if new_output:
        os.replace(staging, output)
        return
    for dirpath, _, files in os.walk(staging):
        for f in files:
            src = Path(dirpath) / f
            dst = output / src.relative_to(staging)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    shutil.rmtree(staging, ignore_errors=True)
    for rel in stale:
        (output / rel).unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    """Convert ``--input`` into ``--output``; returns 0 on success, 1 on bad input, 2 on bad options."""
    if args.nproc < 1 or not 0 <= args.val_fraction < 1:
        print("lanenet-train convert: --nproc must be >= 1 and --val-fraction in [0, 1)", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except BadInputError as exc:
        print(f"lanenet-train convert: {exc}", file=sys.stderr)
        return 1


def _discover(args: argparse.Namespace) -> tuple[list[SourceSample], list[BadInputError]]:
    if not args.input.is_dir():
        raise BadInputError(f"{args.input}: not a folder; --input must be the {args.format} dataset folder")
    return DISCOVER[args.format](args.input)


def _run(args: argparse.Namespace) -> int:
    options, classes = _options(args)
    samples, bad = _discover(args)
    if any(s.hood is not None for s in samples):  # bonnets labelled (synth --label-hood): a class of their own
        classes = [*classes, HOOD_CLASS]
    bad_msgs = [str(b) for b in bad]
    if bad_msgs and not args.skip_bad:
        return _fail(bad_msgs, "nothing was written")
    moved = carve_val(samples, args.val_fraction)
    output = args.output
    old_meta, old = _previous(output)
    fps = {(s.name, s.split): fingerprint(s, options) for s in samples}
    todo = [s for s in samples if not _up_to_date(output, old.get(f"{s.split}/{s.name}"), fps[s.name, s.split])]
    new_output = old_meta is None
    staging = (output.parent / f".{output.name}.partial-{os.getpid()}" if new_output
               else output / f".staging-{os.getpid()}")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        state = {"options": options, "staging": staging, "fingerprints": fps}
        results, worker_bad = _run_workers(todo, state, args.nproc, args.skip_bad)
        bad_msgs += worker_bad
        if worker_bad and not args.skip_bad:
            unchanged = "" if new_output else f"; {output} is unchanged"
            return _fail(bad_msgs, "nothing was written" + unchanged)
        attempted = {f"{s.split}/{s.name}" for s in todo}
        return _finish(args, output, staging, new_output, classes, samples, old, old_meta, results, bad_msgs, moved,
                       attempted)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _finish(args, output: Path, staging: Path, new_output: bool, classes: list[dict], samples: list[SourceSample],
            old: dict, old_meta: dict | None, results: list[dict], bad_msgs: list[str], moved: int,
            attempted: set[str]) -> int:
    fresh = {r["record"]["id"]: r["record"] for r in results}
    records, unchanged = [], 0
    for s in sorted(samples, key=lambda s: (SPLIT_ORDER.get(s.split, 9), s.name)):
        sid = f"{s.split}/{s.name}"
        if sid in fresh:
            records.append(fresh[sid])
        elif sid in old and sid not in attempted:  # up to date: keep it as it is
            records.append(old[sid])
            unchanged += 1
    if not records and bad_msgs:
        return _fail(bad_msgs, "every sample was bad; nothing was written")
    keep_ids = {r["id"] for r in records}
    stale = [o[k] for sid, o in old.items() if sid not in keep_ids for k in ("image", "mask", "instance") if o.get(k)]
    lane_width = None if args.format in ("apollo", "folder") else (args.lane_width or DEFAULT_LANE_WIDTH[args.format])
    meta = default_meta(args.name or output.resolve().name, args.format, classes, lane_width)
    meta["splits"] = dict(Counter(r["split"] for r in records))
    if old_meta and not fresh and not stale:
        for k in ("pixel_counts", "class_weights", "class_weights_method"):
            meta[k] = old_meta.get(k)
    target = staging if new_output else output
    write_index(target, records)
    write_dataset_meta(target, meta)
    _commit(output, staging, new_output, stale)
    _summary(args, records, fresh, unchanged, stale, bad_msgs, moved, results)
    return 0


def _summary(args, records, fresh, unchanged, stale, bad_msgs, moved, results) -> None:
    splits = Counter(r["split"] for r in records)
    print(f"{args.output}: {len(records)} samples ({', '.join(f'{k} {v}' for k, v in sorted(splits.items()))}); "
          f"converted {len(fresh)}, unchanged {unchanged}, skipped {len(bad_msgs)}, removed {len(set(stale))} files")
    if moved:
        print(f"  moved {moved} train samples to val (--val-fraction {args.val_fraction}, whole clips)")
    unknown: Counter = Counter()
    for r in results:
        unknown.update(r["unknown"])
    if unknown:
        what = "colours" if args.format == "apollo" else "mask values"
        top = ", ".join(f"{k}: {v} px" for k, v in unknown.most_common(8))
        print(f"  {sum(unknown.values())} pixels in {len(unknown)} {what} not in the class table were set to "
              f"ignore (255): {top}")
    if bad_msgs:
        print("  skipped (bad input):")
        for msg in bad_msgs:
            print(f"    {msg}")


def _fail(bad_msgs: list[str], consequence: str) -> int:
    for msg in bad_msgs[:50]:
        print(f"bad input: {msg}", file=sys.stderr)
    if len(bad_msgs) > 50:
        print(f"... and {len(bad_msgs) - 50} more", file=sys.stderr)
    print(f"lanenet-train convert: stopped on bad input ({consequence}); fix it or pass --skip-bad",
          file=sys.stderr)
    return 1
