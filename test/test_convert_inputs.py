"""`lanenet-train convert` on small hand-written fixtures in each real format: exact pixels, lane order,
bad input (named by file and line, nothing half-written), --skip-bad, unknown colours and values."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanenet_train.cli import main
from lanenet_train.data.layout import load_dataset

W, H = 64, 36


def image(path: Path, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((H, W, 3), value, np.uint8))
    return path


def tusimple(root: Path, entries: list) -> Path:
    """A TuSimple folder: one image per entry and label_data_0313.json (entries may be raw text lines)."""
    lines = []
    for k, e in enumerate(entries):
        if isinstance(e, dict):
            image(root / e["raw_file"], 60 + k)
            lines.append(json.dumps(e))
        else:
            lines.append(e)
    (root / "label_data_0313.json").write_text("\n".join(lines) + "\n")
    return root / "label_data_0313.json"


def entry(name: str, lanes: list, h: tuple = (10, 20, 30)) -> dict:
    return {"raw_file": f"clips/0313-1/{name}/20.jpg", "lanes": lanes, "h_samples": list(h)}


def convert(fmt: str, src: Path, out: Path, *extra: str) -> int:
    return main(["convert", "--format", fmt, "--input", str(src), "--output", str(out), "--nproc", "1",
                 "--val-fraction", "0", *extra])


def test_tusimple_lanes_are_drawn_left_to_right_at_the_given_width(tmp_path):
    src = tmp_path / "tu"
    tusimple(src, [entry("a", [[40, 45, 50], [-2, 10, 5]])])  # listed right lane first
    out = tmp_path / "ds"
    assert convert("tusimple", src, out, "--lane-width", "3") == 0
    meta, samples = load_dataset(out)
    rec = samples[0]
    assert rec["tusimple"]["lanes"] == [[40, 45, 50], [-2, 10, 5]]  # exactly as in the label file
    assert rec["lanes"] == [[[10.0, 20.0], [5.0, 30.0]], [[40.0, 10.0], [45.0, 20.0], [50.0, 30.0]]]
    inst = cv2.imread(str(out / rec["instance"]), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(out / rec["mask"]), cv2.IMREAD_UNCHANGED)
    assert inst[20, 10] == 1 and inst[30, 5] == 1 and inst[25, 7] == 1
    assert inst[10, 40] == 2 and inst[20, 45] == 2 and inst[30, 50] == 2
    assert inst[20, 12] == 1 and inst[20, 13] == 0, "3 px wide: one pixel either side of the centre"
    assert inst[5, 40] == 0 and inst[20, 30] == 0 and inst[33, 20] == 0
    assert np.array_equal(mask, (inst > 0).astype(np.uint8))
    assert meta["lane_width_px"] == 3 and meta["splits"] == {"train": 1}
    assert (out / rec["image"]).read_bytes() == (src / "clips/0313-1/a/20.jpg").read_bytes()


def test_tusimple_ignore_lanes_become_ignore_where_no_lane_is(tmp_path):
    """The generator's worn-out lines (``ignore_lanes``): 255 in the mask, no instance, not a lane; where
    one crosses a lane the lane wins."""
    src = tmp_path / "tu"
    tusimple(src, [entry("a", [[40, 45, 50]]) | {"ignore_lanes": [[10, 20, 30], [-2, 44, -2]]}])
    out = tmp_path / "ds"
    assert convert("tusimple", src, out, "--lane-width", "3") == 0
    _, samples = load_dataset(out)
    rec = samples[0]
    assert rec["tusimple"]["lanes"] == [[40, 45, 50]] and len(rec["lanes"]) == 1
    inst = cv2.imread(str(out / rec["instance"]), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(out / rec["mask"]), cv2.IMREAD_UNCHANGED)
    assert mask[10, 10] == 255 and mask[20, 20] == 255 and mask[30, 30] == 255 and inst[20, 20] == 0
    assert mask[20, 45] == 1 and inst[20, 45] == 1, "a one-point ignore lane on the lane leaves the lane alone"
    assert set(np.unique(mask)) == {0, 1, 255} and np.array_equal(mask == 1, inst > 0)


def test_test_label_file_becomes_the_test_split(tmp_path):
    src = tmp_path / "tu"
    tusimple(src, [entry("a", [[40, 45, 50]])])
    image(src / "clips/0601/b/20.jpg")
    (src / "test_label.json").write_text(json.dumps(entry("b", [[20, 21, 22]]) | {"raw_file": "clips/0601/b/20.jpg"}))
    out = tmp_path / "ds"
    assert convert("tusimple", src, out) == 0
    meta, samples = load_dataset(out)
    assert meta["splits"] == {"train": 1, "test": 1}
    assert {s["split"] for s in samples} == {"train", "test"}


@pytest.mark.parametrize("bad_line, message", [
    ('{"raw_file": "clips/x/20.jpg", "lanes": [[1, 2, 3]], ', "malformed JSON"),
    (json.dumps(entry("c", [[40, 45]])), "lanes[0] has 2 x values but h_samples has 3"),
    (json.dumps(entry("c", [[40, 45, 50]]) | {"ignore_lanes": [[1, 2, 3], [4, "x", 6]]}),
     "ignore_lanes[1] must be a list of x values"),
    (json.dumps({"raw_file": "clips/y/20.jpg", "lanes": []}), "missing h_samples"),
])
def test_bad_tusimple_line_is_named_and_nothing_is_written(tmp_path, capsys, bad_line, message):
    src = tmp_path / "tu"
    label = tusimple(src, [entry("a", [[40, 45, 50]]), bad_line])
    out = tmp_path / "ds"
    assert convert("tusimple", src, out) == 1
    err = capsys.readouterr().err
    assert f"{label}:2" in err and message in err and "--skip-bad" in err
    assert not out.exists() and not list(tmp_path.glob(".ds.partial-*"))


def test_missing_and_corrupt_images_are_named(tmp_path, capsys):
    src = tmp_path / "tu"
    label = tusimple(src, [entry("a", [[40, 45, 50]]), entry("b", [[4, 5, 6]]), entry("c", [[7, 8, 9]])])
    (src / "clips/0313-1/b/20.jpg").unlink()
    (src / "clips/0313-1/c/20.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "ds"
    assert convert("tusimple", src, out) == 1
    err = capsys.readouterr().err
    assert "clips/0313-1/b/20.jpg" in err and f"{label}:2" in err
    assert not out.exists()
    assert convert("tusimple", src, out, "--skip-bad") == 0
    text = capsys.readouterr().out
    assert "skipped 2" in text and "clips/0313-1/b/20.jpg" in text and "clips/0313-1/c/20.jpg" in text
    _, samples = load_dataset(out)
    assert [s["meta"]["source"] for s in samples] == ["clips/0313-1/a/20.jpg"]


def test_failed_rerun_leaves_the_existing_dataset_unchanged(tmp_path, capsys):
    src = tmp_path / "tu"
    tusimple(src, [entry("a", [[40, 45, 50]]), entry("b", [[4, 5, 6]])])
    out = tmp_path / "ds"
    assert convert("tusimple", src, out) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    tusimple(src, [entry("a", [[41, 46, 51]]), entry("b", [[4, 5, 6]]), entry("c", [[7, 8, 9]])])
    (src / "clips/0313-1/c/20.jpg").write_bytes(b"garbage")
    assert convert("tusimple", src, out) == 1
    assert "is unchanged" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_output_folder_that_is_not_a_dataset_is_refused(tmp_path, capsys):
    src = tmp_path / "tu"
    tusimple(src, [entry("a", [[40, 45, 50]])])
    out = tmp_path / "ds"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"x")
    assert convert("tusimple", src, out) == 1
    assert "not a lanenet dataset" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["holiday.jpg"]


# -- CULane ---------------------------------------------------------------------------------------
def culane(root: Path, lanes: dict[str, str], gt_lines: list[str]) -> Path:
    for rel, text in lanes.items():
        image(root / rel)
        if text is not None:
            (root / rel).with_suffix(".lines.txt").write_text(text)
    (root / "list").mkdir(parents=True, exist_ok=True)
    (root / "list" / "train_gt.txt").write_text("\n".join(gt_lines) + "\n")
    return root / "list" / "train_gt.txt"


def test_culane_lines_and_flags(tmp_path):
    src = tmp_path / "cu"
    rel = "driver_23_30frame/05151649_0422.MP4/00000.jpg"
    culane(src, {rel: "50.5 35 45.25 25 40 15 \n10 35 20 25 30 15 \n"},
           [f"/{rel} /laneseg_label_w16/{rel[:-3]}png 0 1 1 0"])
    out = tmp_path / "ds"
    assert convert("culane", src, out, "--lane-width", "1") == 0
    meta, samples = load_dataset(out)
    rec = samples[0]
    assert meta["lane_width_px"] == 1
    assert rec["meta"]["culane_flags"] == [0, 1, 1, 0]
    assert rec["lanes"][0][0] == [10.0, 35.0] and rec["lanes"][1][0] == [50.5, 35.0]
    inst = cv2.imread(str(out / rec["instance"]), cv2.IMREAD_UNCHANGED)
    assert inst[25, 20] == 1 and inst[25, 45] == 2 and inst[15, 40] == 2 and (inst > 0).sum() < 70


@pytest.mark.parametrize("lines_text, gt_line, message", [
    ("10 35 20 25 30\n", None, ".lines.txt:1: odd number of values"),
    ("10 35 abc 25\n", None, ".lines.txt:1: not a number"),
    (None, None, "cannot read the lane file"),
    ("10 35 20 25\n", "/{rel} /seg.png 1 1 0", "train_gt.txt:1: expected"),
])
def test_bad_culane_input_is_named(tmp_path, capsys, lines_text, gt_line, message):
    src = tmp_path / "cu"
    rel = "driver_00_30frame/a.MP4/00030.jpg"
    culane(src, {rel: lines_text}, [(gt_line or "/{rel} /seg.png 0 1 0 0").format(rel=rel)])
    out = tmp_path / "ds"
    assert convert("culane", src, out) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


# -- Apollo ---------------------------------------------------------------------------------------
def apollo(root: Path, name: str, label_rgb: np.ndarray, size: tuple[int, int] = (W, H)) -> Path:
    folder = "Record001/Camera 5"
    image(root / f"ColorImage_road02/ColorImage/{folder}/{name}_Camera_5.jpg")
    label = root / f"Labels_road02/Label/{folder}/{name}_Camera_5_bin.png"
    label.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(label), cv2.cvtColor(cv2.resize(label_rgb, size, interpolation=cv2.INTER_NEAREST),
                                         cv2.COLOR_RGB2BGR))
    return label


def test_apollo_colours_unknown_colours_and_noise(tmp_path, capsys):
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[5:10] = (70, 130, 180)      # s_w_d -> 1
    rgb[10:12] = (220, 20, 60)      # s_y_d -> 2
    rgb[12:14] = (102, 0, 204)      # om_n_n -> 35
    rgb[14:16] = (0, 153, 153)      # noise -> 255
    rgb[20:22, :10] = (1, 2, 3)     # in no table entry -> 255, reported
    src = tmp_path / "ap"
    apollo(src, "171206_025742296", rgb)
    out = tmp_path / "ds"
    assert convert("apollo", src, out) == 0
    assert "20 pixels in 1 colours not in the class table" in capsys.readouterr().out
    _, samples = load_dataset(out)
    mask = cv2.imread(str(out / samples[0]["mask"]), cv2.IMREAD_UNCHANGED)
    assert (mask[5:10] == 1).all() and (mask[10:12] == 2).all() and (mask[12:14] == 35).all()
    assert (mask[14:16] == 255).all() and (mask[20:22, :10] == 255).all() and (mask[20:22, 10:] == 0).all()
    source = "ColorImage_road02/ColorImage/Record001/Camera 5/171206_025742296_Camera_5.jpg"
    assert samples[0]["meta"]["source"] == source


def test_apollo_label_of_another_size_and_unpaired_files(tmp_path, capsys):
    src = tmp_path / "ap"
    label = apollo(src, "171206_025742296", np.zeros((H, W, 3), np.uint8), size=(W // 2, H // 2))
    out = tmp_path / "ds"
    assert convert("apollo", src, out) == 1
    err = capsys.readouterr().err
    assert str(label) in err and "32x18" in err and "64x36" in err
    label.unlink()
    assert convert("apollo", src, out) == 1
    assert "no colour label" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "setuid"), reason="needs POSIX users")
def test_unreadable_apollo_folder_is_named():
    """A folder the converter may not read. Root reads every folder, so as root the converter process
    drops to user nobody after loading its modules."""
    base = Path(tempfile.mkdtemp(prefix="lanenet-unreadable-"))
    try:
        base.chmod(0o777)
        src = base / "ap"
        apollo(src, "171206_025742296", np.zeros((H, W, 3), np.uint8))
        locked = src / "Labels_road02/Label/Record001"
        locked.chmod(0o000)
        code = ("import os, sys; import lanenet_train.data.convert; from lanenet_train.cli import main\n"
                "if os.getuid() == 0: os.setuid(65534)\n"
                f"sys.exit(main(['convert', '--format', 'apollo', '--input', {str(src)!r}, "
                f"'--output', {str(base / 'ds')!r}, '--nproc', '1']))")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(base),
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        locked.chmod(0o755)
        assert run.returncode == 1, run.stderr
        assert f"{locked}: cannot read folder" in run.stderr
        assert not (base / "ds").exists()
    finally:
        for p in base.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


# -- image/mask folders ---------------------------------------------------------------------------
def folder(root: Path, masks: dict[str, np.ndarray], classes: str = "0 background\n1 lane 255 255 255\n2 curb\n"):
    for name, m in masks.items():
        image(root / "images" / name)
        path = (root / "masks" / name).with_suffix(".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), m)
    (root / "classes.txt").write_text(classes)


def test_folder_masks_map_through_the_class_table(tmp_path, capsys):
    m = np.zeros((H, W), np.uint8)
    m[:5], m[5:10], m[10:12], m[12:14] = 1, 2, 7, 255
    src = tmp_path / "fo"
    folder(src, {"train/a.jpg": m, "val/b.png": m})
    out = tmp_path / "ds"
    assert convert("folder", src, out) == 0
    assert "mask values not in the class table" in capsys.readouterr().out
    meta, samples = load_dataset(out)
    assert [c["name"] for c in meta["classes"]] == ["background", "lane", "curb"]
    assert meta["classes"][1]["color"] == [255, 255, 255] and meta["splits"] == {"train": 1, "val": 1}
    got = cv2.imread(str(out / samples[0]["mask"]), cv2.IMREAD_UNCHANGED)
    want = m.copy()
    want[10:12] = 255
    assert np.array_equal(got, want)


@pytest.mark.parametrize("case, message", [
    ("colour", "has colour channels"),
    ("missing", "no mask"),
    ("table", "classes.txt:2: expected 'id name'"),
    ("size", "masks must match their image"),
])
def test_bad_folder_input_is_named(tmp_path, capsys, case, message):
    src = tmp_path / "fo"
    m = np.zeros((H, W), np.uint8)
    folder(src, {"train/a.jpg": m}, "0 background\n1 lane 255 255\n" if case == "table" else
           "0 background\n1 lane\n")
    if case == "colour":
        c = np.zeros((H, W, 3), np.uint8)
        c[..., 2] = 1
        cv2.imwrite(str(src / "masks/train/a.png"), c)
    elif case == "missing":
        (src / "masks/train/a.png").unlink()
    elif case == "size":
        cv2.imwrite(str(src / "masks/train/a.png"), np.zeros((H + 1, W), np.uint8))
    out = tmp_path / "ds"
    assert convert("folder", src, out) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_skip_bad_drops_a_sample_that_went_bad_and_refuses_an_all_bad_source(tmp_path, capsys):
    src = tmp_path / "tu"
    tusimple(src, [entry("a", [[40, 45, 50]]), entry("b", [[4, 5, 6]])])
    out = tmp_path / "ds"
    assert convert("tusimple", src, out) == 0
    (src / "clips/0313-1/b/20.jpg").write_bytes(b"broken now")
    assert convert("tusimple", src, out, "--skip-bad") == 0
    _, samples = load_dataset(out)
    assert [s["meta"]["source"] for s in samples] == ["clips/0313-1/a/20.jpg"]
    assert not (out / "images/train/clips_0313-1_b_20.jpg").exists()
    (src / "clips/0313-1/a/20.jpg").write_bytes(b"broken too")
    fresh = tmp_path / "fresh"
    assert convert("tusimple", src, fresh, "--skip-bad") == 1
    assert "every sample was bad" in capsys.readouterr().err
    assert not fresh.exists()


def test_labels_made_for_a_larger_image_are_refused_naming_the_files(tmp_path, capsys):
    """A 640x360 image with TuSimple's 720-row labels would become a nearly empty mask: refused instead."""
    src = tmp_path / "tu"
    rows = list(range(160, 720, 10))
    label = tusimple(src, [entry("a", [[40, 45, 50]]),
                           entry("b", [[300 + r // 4 for r in rows]], h=tuple(rows))])
    cv2.imwrite(str(src / "clips/0313-1/b/20.jpg"), np.full((360, 640, 3), 80, np.uint8))
    out = tmp_path / "ds"
    assert convert("tusimple", src, out) == 1
    err = capsys.readouterr().err
    assert f"{label}:2" in err and "clips/0313-1/b/20.jpg is 640x360" in err and "reach row 710" in err
    assert not out.exists()
    assert convert("tusimple", src, out, "--skip-bad") == 0  # the one that fits converts
    assert [s["meta"]["source"] for s in load_dataset(out)[1]] == ["clips/0313-1/a/20.jpg"]
