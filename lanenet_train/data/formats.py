"""Readers of the source datasets' label files: TuSimple, CULane, Apollo lane marks and image/mask folders.

Each ``discover_*`` function walks an input folder, parses what it can in the main process and returns
the samples found and the bad inputs met (as :class:`BadInputError`, each naming file and line).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lanenet_ros.lanes import MarkingColor, MarkingType
from lanenet_train.data.sources import BadInputError, SourceSample, safe_name

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
CAMERA_FILE = "camera_params.jsonl"


def split_from_name(name: str) -> str:
    """Split implied by a label or list file name: ``test`` and ``val`` if named so, else ``train``."""
    low = name.lower()
    return "test" if "test" in low else "val" if "val" in low else "train"


def load_camera_params(root: Path) -> dict[str, dict]:
    """``camera_params.jsonl`` written by `lanenet-train synth`, by image path (empty when absent)."""
    path = root / CAMERA_FILE
    out: dict[str, dict] = {}
    if path.is_file():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                out[entry["image"]] = entry
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise BadInputError(f"{path}:{lineno}: not a camera entry ({exc}); "
                                    "re-run `lanenet-train synth`") from exc
    return out


def _synth_meta(cams: dict[str, dict], rel: str) -> dict:
    entry = cams.get(rel)
    if entry is None:
        return {}
    lanes = [{k: lane.get(k) for k in ("type", "color", "position")} for lane in entry.get("lanes") or []]
    return {"camera": entry.get("camera"), "scene": entry.get("scene"), "synth_lanes": lanes}


# -- TuSimple -------------------------------------------------------------------------------------
def _tusimple_line(path: Path, lineno: int, line: str) -> dict:
    where = f"{path}:{lineno}"
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno}); "
                            "one JSON object per line") from exc
    if not isinstance(entry, dict):
        raise BadInputError(f"{where}: expected a JSON object with raw_file, lanes, h_samples")
    missing = [k for k in ("raw_file", "lanes", "h_samples") if k not in entry]
    if missing:
        raise BadInputError(f"{where}: missing {', '.join(missing)}; every line needs raw_file, lanes and h_samples")
    h = entry["h_samples"]
    if not isinstance(h, list) or not all(isinstance(v, (int, float)) for v in h):
        raise BadInputError(f"{where}: h_samples must be a list of row numbers")
    for key in ("lanes", "ignore_lanes"):  # ignore_lanes (optional): the generator's worn-out lines
        lanes = entry.get(key, [])
        if not isinstance(lanes, list):
            raise BadInputError(f"{where}: {key} must be a list of lanes")
        for k, lane in enumerate(lanes):
            if not isinstance(lane, list) or not all(isinstance(v, (int, float)) for v in lane):
                raise BadInputError(f"{where}: {key}[{k}] must be a list of x values (-2 where absent)")
            if len(lane) != len(h):
                raise BadInputError(f"{where}: {key}[{k}] has {len(lane)} x values but h_samples has {len(h)}; "
                                    "give one x (or -2) per h_sample")
    hood = entry.get("hood", [])  # optional: the generator's bonnet edge, [x, y] points ([] = no bonnet)
    if not isinstance(hood, list) or not all(isinstance(p, list) and len(p) == 2
                                             and all(isinstance(v, (int, float)) for v in p) for p in hood):
        raise BadInputError(f"{where}: hood must be a list of [x, y] points (the bonnet's edge), or []")
    markings = entry.get("markings")  # optional: the generator's [type, colour] names per lane
    if markings is not None:
        if not isinstance(markings, list) or len(markings) != len(entry["lanes"]):
            raise BadInputError(f"{where}: markings must be a list of [type, colour] names, one per lane "
                                f"({len(entry['lanes'])})")
        for k, pair in enumerate(markings):
            if not (isinstance(pair, list) and len(pair) == 2 and pair[0] in MarkingType.__members__
                    and pair[1] in MarkingColor.__members__):
                raise BadInputError(f"{where}: markings[{k}] must be [type, colour] with a type of "
                                    f"{', '.join(MarkingType.__members__)} and a colour of "
                                    f"{', '.join(MarkingColor.__members__)}; got {pair!r}")
    if not isinstance(entry["raw_file"], str) or not entry["raw_file"]:
        raise BadInputError(f"{where}: raw_file must be the image path relative to the label file")
    return entry


def discover_tusimple(root: Path) -> tuple[list[SourceSample], list[BadInputError]]:
    """TuSimple: every ``label_data_*.json`` and ``test_label*.json`` under ``root``.

    Images are found relative to the label file's folder (``raw_file``); the split comes from the file
    name (``test_label`` -> test, a name with ``val`` -> val, else train).
    """
    files = sorted(p for p in _walk_files(root) if p.suffix == ".json"
                   and (p.name.startswith("label_data") or p.name.startswith("test_label")))
    if not files:
        return [], [BadInputError(f"{root}: no label_data_*.json or test_label*.json found; "
                                  "is this a TuSimple folder?")]
    samples, bad, seen = [], [], {}
    cams = load_camera_params(root)
    for path in files:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        samples.append(_tusimple_sample(root, path, lineno, line, seen, cams))
                    except BadInputError as exc:
                        bad.append(exc)
    return samples, bad


def _tusimple_sample(root: Path, path: Path, lineno: int, line: str, seen: dict, cams: dict) -> SourceSample:
    entry = _tusimple_line(path, lineno, line)
    image = path.parent / entry["raw_file"]
    rel = os.path.relpath(image, root).replace(os.sep, "/")
    name = safe_name(rel)
    if name in seen:
        raise BadInputError(f"{path}:{lineno}: {entry['raw_file']} is labelled again (first at {seen[name]}); "
                            "keep one line per image")
    seen[name] = f"{path}:{lineno}"
    h = entry["h_samples"]

    def points(key: str) -> list:
        return [[(float(x), float(y)) for x, y in zip(lane, h, strict=True) if x >= 0] for lane in entry.get(key, [])]

    return SourceSample(name=name, split=split_from_name(path.stem), group=os.path.dirname(rel), image=image,
                        origin=f"{path}:{lineno}", lanes=points("lanes"), ignore_lanes=points("ignore_lanes"),
                        tusimple={"lanes": entry["lanes"], "h_samples": h},
                        hood=[(float(x), float(y)) for x, y in entry["hood"]] if "hood" in entry else None,
                        markings=[(int(MarkingType[t]), int(MarkingColor[c])) for t, c in entry["markings"]]
                        if "markings" in entry else None,
                        meta={"source": rel, **_synth_meta(cams, rel)})


# -- CULane ---------------------------------------------------------------------------------------
def _culane_lists(root: Path) -> dict[str, Path]:
    """The list file of each split, preferring ``<split>_gt.txt`` (with lane flags) to ``<split>.txt``."""
    chosen: dict[str, Path] = {}
    for split in ("train", "val", "test"):
        for name in (f"{split}_gt.txt", f"{split}.txt"):
            if (root / "list" / name).is_file():
                chosen[split] = root / "list" / name
                break
    return chosen


def discover_culane(root: Path) -> tuple[list[SourceSample], list[BadInputError]]:
    """CULane: ``list/{train,val,test}[_gt].txt`` under ``root``, lanes in ``<image>.lines.txt``."""
    chosen = _culane_lists(root)
    if not chosen:
        return [], [BadInputError(f"{root / 'list'}: no train/val/test list found (list/train_gt.txt, "
                                  "list/val.txt, ...); is this a CULane folder?")]
    samples, bad, seen = [], [], set()
    cams = load_camera_params(root)
    for split, path in chosen.items():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            tokens = line.split()
            if not tokens or tokens[0].lstrip("/") in seen:
                continue
            try:
                samples.append(_culane_sample(root, split, f"{path}:{lineno}", tokens, path.stem.endswith("_gt"),
                                              cams))
                seen.add(tokens[0].lstrip("/"))
            except BadInputError as exc:
                bad.append(exc)
    return samples, bad


def _culane_sample(root: Path, split: str, where: str, tokens: list[str], gt: bool, cams: dict) -> SourceSample:
    if gt and (len(tokens) != 6 or any(t not in ("0", "1") for t in tokens[2:])):
        raise BadInputError(f"{where}: expected '/image.jpg /label.png f1 f2 f3 f4' with four 0/1 lane flags, "
                            f"got {len(tokens)} fields")
    rel = tokens[0].lstrip("/")
    image = root / rel
    meta = {"source": rel, **_synth_meta(cams, rel)}
    if gt:
        meta["culane_flags"] = [int(t) for t in tokens[2:]]
    return SourceSample(name=safe_name(rel), split=split, group=os.path.dirname(rel), image=image, origin=where,
                        lines_file=image.with_suffix(".lines.txt"), meta=meta)


# -- Apollo lane marks ----------------------------------------------------------------------------
def _apollo_key(parts: tuple[str, ...], kind: str) -> tuple[str, str, str, str] | None:
    """(road, record, camera, stem) of a ColorImage or Labels file path (parts relative to the root)."""
    if len(parts) < 5 or not parts[0].startswith(kind + "_"):
        return None
    road = parts[0][len(kind) + 1:]
    stem = os.path.splitext(parts[-1])[0]
    if kind == "Labels":
        if not stem.endswith("_bin"):
            return None
        stem = stem[:-4]
    return road, parts[-3], parts[-2], stem


def discover_apollo(root: Path) -> tuple[list[SourceSample], list[BadInputError]]:
    """Apollo lane marks: ``ColorImage_roadXX/ColorImage/RecordNNN/Camera N/*.jpg`` paired with
    ``Labels_roadXX/Label/RecordNNN/Camera N/*_bin.png`` colour labels."""
    images, labels, bad = {}, {}, []
    for path in _walk_files(root, bad):
        parts = path.relative_to(root).parts
        if path.suffix.lower() in IMAGE_EXTS and (key := _apollo_key(parts, "ColorImage")):
            images[key] = path
        elif path.suffix.lower() == ".png" and (key := _apollo_key(parts, "Labels")):
            labels[key] = path
    if not images and not labels:
        bad.append(BadInputError(f"{root}: no ColorImage_roadXX/ or Labels_roadXX/ folders found; "
                                 "is this Apollo data?"))
    listed = _apollo_split_lists(root, bad)
    samples = []
    for key in sorted(set(images) | set(labels)):
        if key not in labels:
            bad.append(BadInputError(f"{images[key]}: no colour label (expected Labels_{key[0]}/Label/{key[1]}/"
                                f"{key[2]}/{key[3]}_bin.png)"))
            continue
        if key not in images:
            bad.append(BadInputError(f"{labels[key]}: label without its image (expected ColorImage_{key[0]}/"
                                f"ColorImage/{key[1]}/{key[2]}/{key[3]}.jpg)"))
            continue
        rel = os.path.relpath(images[key], root).replace(os.sep, "/")
        samples.append(SourceSample(name=safe_name("_".join(key)), split=listed.pop(rel, ("train",))[0],
                                    group=f"{key[0]}/{key[1]}",
                                    image=images[key], origin=str(labels[key]), label=labels[key],
                                    meta={"source": rel}))
    bad += [BadInputError(f"{where}: {rel} is listed, but there is no such image")
            for rel, (_, where) in listed.items() if not (root / rel).is_file()]
    return samples, bad


def _apollo_split_lists(root: Path, bad: list) -> dict:
    """``splits/{train,val,test}.txt`` (ColorImage paths relative to the root, one a line; the generator
    writes them): image path -> (split, file:line). Apollo's own folders carry no split."""
    listed: dict = {}
    for split in ("train", "val", "test"):
        path = root / "splits" / f"{split}.txt"
        if path.is_file():
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                rel = line.strip().lstrip("/")
                if rel and rel in listed:
                    bad.append(BadInputError(f"{path}:{lineno}: {rel} is listed again (first at {listed[rel][1]})"))
                elif rel:
                    listed[rel] = (split, f"{path}:{lineno}")
    return listed


# -- image/mask folders ---------------------------------------------------------------------------
def read_class_table(path: Path) -> list[dict]:
    """Class table of a folder dataset: JSON ``[{"id", "name", "color"}]`` or text lines ``id name [r g b]``.

    Raises:
        BadInputError: the file is unreadable or an entry is malformed (names file and line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read the class table ({exc})") from exc
    if path.suffix == ".json":
        try:
            table = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from exc
        entries = [(k + 1, e) for k, e in enumerate(table if isinstance(table, list) else [])]
    else:
        entries = []
        for lineno, line in enumerate(text.splitlines(), 1):
            tok = line.split("#")[0].split()
            if tok:
                if len(tok) not in (2, 5) or not all(t.isdigit() for t in [tok[0], *tok[2:]]):
                    raise BadInputError(f"{path}:{lineno}: expected 'id name' or 'id name r g b', got {line.strip()!r}")
                entries.append((lineno, {"id": int(tok[0]), "name": tok[1],
                                         "color": [int(t) for t in tok[2:]] or None}))
    return _check_classes(path, entries)


def _check_classes(path: Path, entries: list) -> list[dict]:
    classes, ids = [], set()
    for lineno, e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("id"), int) or not isinstance(e.get("name"), str):
            raise BadInputError(f"{path}:{lineno}: each class needs an integer 'id' and a 'name'")
        if not 0 <= e["id"] < 254 or e["id"] in ids:
            raise BadInputError(f"{path}:{lineno}: class id {e['id']} is out of 0..253 or repeated (255 is ignore)")
        ids.add(e["id"])
        rng = np.random.default_rng(e["id"])
        color = e.get("color") or ([0, 0, 0] if e["id"] == 0 else rng.integers(40, 256, 3).tolist())
        classes.append({"id": e["id"], "name": e["name"], "color": [int(c) for c in color]})
    if not classes:
        raise BadInputError(f"{path}: the class table is empty")
    return sorted(classes, key=lambda c: c["id"])


def discover_folder(root: Path) -> tuple[list[SourceSample], list[BadInputError]]:
    """Image/mask folders (TAO UNet layout): ``images/[split/]*.jpg|png`` with ``masks/[split/]<stem>.png``
    and optional ``instances/[split/]<stem>.png``."""
    bad: list[BadInputError] = []
    img_root, mask_root = root / "images", root / "masks"
    for d in (img_root, mask_root):
        if not d.is_dir():
            return [], [BadInputError(f"{d}: folder missing; expected images/ and masks/ (optionally with "
                                 "train/ val/ test/ inside)")]
    samples = []
    for path in sorted(_walk_files(img_root, bad)):
        if path.suffix.lower() not in IMAGE_EXTS:
            continue
        rel = path.relative_to(img_root)
        split = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in ("train", "val", "test") else "train"
        mask = (mask_root / rel).with_suffix(".png")
        if not mask.is_file():
            bad.append(BadInputError(f"{path}: no mask {mask} (masks need the image's name with .png)"))
            continue
        inst = (root / "instances" / rel).with_suffix(".png")
        samples.append(SourceSample(name=safe_name(str(rel)), split=split, group=str(rel.parent), image=path,
                                    origin=str(mask), label=mask, instance=inst if inst.is_file() else None,
                                    meta={"source": f"images/{rel.as_posix()}"}))
    return samples, bad


def _walk_files(root: Path, bad: list | None = None) -> list[Path]:
    """Every file under ``root`` (sorted); unreadable folders become :class:`BadInputError` in ``bad``."""
    out = []

    def onerror(exc: OSError) -> None:
        err = BadInputError(f"{exc.filename}: cannot read folder ({exc.strerror}); check its permissions")
        if bad is None:
            raise err
        bad.append(err)

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        dirnames.sort()
        out += [Path(dirpath) / f for f in sorted(filenames)]
    return out
