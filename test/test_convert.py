"""`lanenet-train synth` -> real format -> `lanenet-train convert` round trips, checked pixel by pixel
against the generator's geometry; idempotent re-runs."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanenet_train.cli import main
from lanenet_train.data.labels import apollo_train_ids
from lanenet_train.data.layout import load_dataset
from lanenet_train.synth import CameraParams

W, H = 320, 180


def synth(tmp_path: Path, fmt: str, count: int = 6, **kw) -> Path:
    out = tmp_path / f"src_{fmt}"
    args = ["synth", "--format", fmt, "--out", str(out), "--count", str(count), "--width", str(W),
            "--height", str(H), "--nproc", "1", "--seed", "3"]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    assert main(args) == 0
    return out


def convert(fmt: str, src: Path, out: Path, *extra: str) -> int:
    return main(["convert", "--format", fmt, "--input", str(src), "--output", str(out), "--nproc", "1", *extra])


SLOTS = ("SECOND_LEFT", "EGO_LEFT", "EGO_RIGHT", "SECOND_RIGHT")  # the lines TuSimple and CULane label


def generator_lanes(src: Path, all_lanes: bool = False) -> dict[str, list[np.ndarray]]:
    """Exact image polylines of every frame's labelled lanes (the ego lane's and its neighbours' lines, or with
    ``all_lanes`` every line, left to right), projected from the generator's ground points."""
    out = {}
    for line in (src / "camera_params.jsonl").read_text().splitlines():
        entry = json.loads(line)
        cam = CameraParams.from_dict(entry["camera"])
        out[entry["image"]] = [cam.project(np.array(lane["ground"]))[0] for lane in entry["lanes"]
                               if all_lanes or lane["position"] in SLOTS]
    return out


def distance_to(polyline: np.ndarray) -> np.ndarray:
    """Per-pixel distance (px) to a polyline drawn one pixel thin."""
    canvas = np.full((H, W), 255, np.uint8)
    cv2.polylines(canvas, [np.round(polyline * 16).astype(np.int32)], False, 0, 1, cv2.LINE_8, 4)
    return cv2.distanceTransform(canvas, cv2.DIST_L2, 5)


def check_instances_against_geometry(root: Path, record: dict, lanes: list[np.ndarray], rows_of: list,
                                     lane_width: int) -> None:
    """Each instance k covers exactly the k-th expected lane: its pixels lie within half the line width
    (plus the label's rounding) of the geometric curve, and the curve is covered where it is labelled."""
    inst = cv2.imread(str(root / record["instance"]), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(root / record["mask"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask > 0, inst > 0)
    assert set(np.unique(inst)) == set(range(len(lanes) + 1))
    dists = [distance_to(pts) for pts in lanes]
    for k, (pts, (lo, hi)) in enumerate(zip(lanes, rows_of, strict=True), 1):
        dist = dists[k - 1]
        others = np.min([d for j, d in enumerate(dists) if j != k - 1], axis=0) if len(lanes) > 1 else dist + 1e3
        mine = inst == k
        body = mine.copy()
        body[:int(lo) + 20] = False  # near its far end the 10-px label rows cut the curve's bend
        # cv2 draws a thick line up to about half a pixel wider than its nominal width
        assert dist[body].max(initial=0) <= (lane_width + 1) / 2 + 1.6, f"instance {k} strays from its lane"
        assert dist[mine].max() <= lane_width / 2 + 6.0, f"instance {k} strays from its lane near the horizon"
        inside = pts[(pts[:, 1] >= lo + 20) & (pts[:, 1] <= hi) & (pts[:, 0] >= 1) & (pts[:, 0] <= W - 2)]
        xs, ys = np.round(inside[:, 0]).astype(int), np.round(inside[:, 1]).astype(int)
        alone = others[ys, xs] > lane_width + 2  # where lanes converge the later one is drawn on top
        if alone.any():
            assert (inst[ys, xs][alone] == k).mean() > 0.97, f"lane {k} is not covered by instance {k}"


@pytest.mark.parametrize("label_lanes", ["benchmark", "all"])
def test_tusimple_round_trip_matches_generator_geometry(tmp_path, label_lanes):
    src = synth(tmp_path, "tusimple", label_lanes=label_lanes)
    out = tmp_path / "ds"
    assert convert("tusimple", src, out, "--val-fraction", "0") == 0
    meta, samples = load_dataset(out)
    assert meta["source_format"] == "tusimple" and meta["lane_width_px"] == 5
    assert [c["name"] for c in meta["classes"]] == ["background", "lane"]
    geometry = generator_lanes(src, label_lanes == "all")
    labels = {}
    for name in ("label_data_train.json", "label_data_val.json"):
        if (src / name).exists():
            for line in (src / name).read_text().splitlines():
                labels[json.loads(line)["raw_file"]] = json.loads(line)
    assert len(samples) == 6
    n_lanes: dict[str, int] = {}
    for rec in samples:
        raw = rec["meta"]["source"]
        label = labels[raw]
        assert rec["tusimple"] == {"lanes": label["lanes"], "h_samples": label["h_samples"]}
        assert rec["meta"]["camera"]["width"] == W
        h = np.array(label["h_samples"])
        expected, rows = [], []
        for pts in geometry[raw]:  # generator order is left to right; keep lanes the label kept
            xs = [x for x, y in zip(np.interp(h, pts[::-1, 1], pts[::-1, 0]), h, strict=True)
                  if pts[:, 1].min() <= y <= pts[:, 1].max() and 0 <= x <= W - 1]
            if len(xs) >= 2:
                expected.append(pts)
                valid = h[[pts[:, 1].min() <= y <= pts[:, 1].max() for y in h]]
                rows.append((valid.min(), valid.max()))
        check_instances_against_geometry(out, rec, expected, rows, 5)
        assert len(rec["lanes"]) == len(expected)
        n_lanes[label_lanes] = n_lanes.get(label_lanes, 0) + len(expected)
    if label_lanes == "all":  # these six frames have lines beyond the benchmark's four
        assert n_lanes["all"] > sum(map(len, generator_lanes(src).values()))


def test_culane_round_trip_keeps_the_four_slots_left_to_right(tmp_path):
    src = synth(tmp_path, "culane", count=5, val_fraction=0)
    out = tmp_path / "ds"
    assert convert("culane", src, out, "--lane-width", "6", "--val-fraction", "0") == 0
    _, samples = load_dataset(out)
    geometry = generator_lanes(src)
    gt_lines = (src / "list" / "train_gt.txt").read_text().splitlines()
    assert len(gt_lines) == 5
    for rec in samples:
        raw = rec["meta"]["source"]
        lanes = geometry[raw]
        flags = rec["meta"]["culane_flags"]
        lines = (src / raw).with_suffix(".lines.txt").read_text().splitlines()
        assert sum(flags) == len(lines) == len(rec["lanes"])
        rows = [(min(p[1] for p in ln), max(p[1] for p in ln)) for ln in rec["lanes"]]

        def gap(pts: np.ndarray, ln: list) -> float:
            x, y = ln[0]
            if not pts[:, 1].min() - 0.5 <= y <= pts[:, 1].max() + 0.5:
                return float("inf")
            return abs(float(np.interp(y, pts[::-1, 1], pts[::-1, 0])) - x)

        expected = [min(lanes, key=lambda pts, ln=ln: gap(pts, ln)) for ln in rec["lanes"]]
        assert all(gap(pts, ln) < 0.5 for pts, ln in zip(expected, rec["lanes"], strict=True))
        check_instances_against_geometry(out, rec, expected, rows, 6)


def test_apollo_round_trip_maps_every_colour_pixel(tmp_path):
    src = synth(tmp_path, "apollo", count=4)
    labels = sorted(src.glob("Labels_road02/Label/Record*/Camera 5/*_bin.png"))
    images = sorted(src.glob("ColorImage_road02/ColorImage/Record*/Camera 5/*_Camera_5.jpg"))
    assert len(labels) == len(images) == 4
    out = tmp_path / "ds"
    assert convert("apollo", src, out, "--val-fraction", "0") == 0
    meta, samples = load_dataset(out)
    assert len(meta["classes"]) == 36 and meta["classes"][1]["name"] == "s_w_d"
    for rec, label in zip(samples, labels, strict=True):
        mask = cv2.imread(str(out / rec["mask"]), cv2.IMREAD_UNCHANGED)
        rgb = cv2.cvtColor(cv2.imread(str(label)), cv2.COLOR_BGR2RGB)
        expected, unknown = apollo_train_ids(rgb)
        assert not unknown
        assert np.array_equal(mask, expected)
        assert rec["instance"] is None
        assert set(np.unique(mask)) <= set(range(11)), "a road of lane lines holds only dividing/guiding classes"
        assert (mask > 0).sum() > 50


def test_second_run_does_no_work_and_changes_are_picked_up(tmp_path, capsys):
    src = synth(tmp_path, "tusimple", count=5, val_fraction=0)
    out = tmp_path / "ds"
    assert convert("tusimple", src, out, "--val-fraction", "0") == 0
    index = (out / "index.jsonl").read_bytes()
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    capsys.readouterr()
    assert convert("tusimple", src, out, "--val-fraction", "0") == 0
    assert "converted 0, unchanged 5" in capsys.readouterr().out
    assert (out / "index.jsonl").read_bytes() == index
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == mtimes
    label = src / "label_data_train.json"
    lines = label.read_text().splitlines()
    label.write_text("\n".join(lines[:-1]) + "\n")  # one image dropped
    assert convert("tusimple", src, out, "--val-fraction", "0") == 0
    text = capsys.readouterr().out
    assert "4 samples" in text and "removed 3 files" in text
    assert len(list((out / "masks" / "train").iterdir())) == 4
    assert not list(out.glob(".staging-*")) and not list(tmp_path.glob(".ds.partial-*"))


def test_parallel_conversion_equals_serial(tmp_path):
    src = synth(tmp_path, "tusimple", count=6)
    a, b = tmp_path / "a", tmp_path / "b"
    assert convert("tusimple", src, a) == 0
    assert main(["convert", "--format", "tusimple", "--input", str(src), "--output", str(b), "--nproc", "2"]) == 0
    assert (a / "index.jsonl").read_text() == (b / "index.jsonl").read_text()
    for p in a.rglob("*.png"):
        assert np.array_equal(cv2.imread(str(p), -1), cv2.imread(str(b / p.relative_to(a)), -1))


@pytest.mark.parametrize("fmt", ["tusimple", "culane", "apollo"])
def test_synth_sequence_writes_continuous_clips(tmp_path, fmt):
    src = synth(tmp_path, fmt, count=4, sequence=4, val_fraction=0)
    cams = [json.loads(x) for x in (src / "camera_params.jsonl").read_text().splitlines()]
    assert [c["frame"] for c in cams] == [0, 1, 2, 3]
    assert len({Path(c["image"]).parent for c in cams}) == 1, "one drive stays in one clip/video/record"
    assert all(b["scene"]["s"] > a["scene"]["s"] for a, b in itertools.pairwise(cams))


def test_synth_output_does_not_depend_on_the_number_of_workers(tmp_path):
    one = synth(tmp_path / "one", "tusimple", count=4)
    args = ["synth", "--out", str(tmp_path / "two"), "--count", "4", "--width", str(W), "--height", str(H),
            "--nproc", "2", "--seed", "3"]
    assert main(args) == 0
    two = tmp_path / "two"
    assert (one / "label_data_train.json").read_text() == (two / "label_data_train.json").read_text()
    assert (one / "camera_params.jsonl").read_text() == (two / "camera_params.jsonl").read_text()
    for p in one.rglob("*.jpg"):
        assert p.read_bytes() == (two / p.relative_to(one)).read_bytes()


@pytest.mark.parametrize(("prob", "extra"), [(0.0, -1), (1.0, 1)])
def test_edge_line_prob_paints_all_outer_edges_or_none(tmp_path, prob, extra):
    """--edge-line-prob 1: both outer edges carry a line (lanes + 1 lines); 0: neither (lanes - 1)."""
    src = synth(tmp_path, "tusimple", count=4, label_lanes="all", edge_line_prob=prob)
    for cam in (json.loads(x) for x in (src / "camera_params.jsonl").read_text().splitlines()):
        assert len(cam["lanes"]) == cam["scene"]["lanes"] + extra


def test_edge_line_prob_out_of_range_is_refused(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "--edge-line-prob", "1.5"]) == 2
    assert "--edge-line-prob" in capsys.readouterr().err


def test_ignore_worn_moves_worn_lines_to_ignore_lanes_and_their_pixels_to_ignore(tmp_path, capsys):
    """--ignore-worn W: the same images; lines worn by W or more leave ``lanes`` for ``ignore_lanes``; the
    converted mask marks them 255 (neither lane nor background), so lane-or-ignore is the plain mask."""
    plain = synth(tmp_path / "plain", "tusimple", count=8, label_lanes="all", val_fraction=0)
    worn = synth(tmp_path / "worn", "tusimple", count=8, label_lanes="all", val_fraction=0, ignore_worn=0.3)
    for p in plain.rglob("*.jpg"):
        assert p.read_bytes() == (worn / p.relative_to(plain)).read_bytes()
    cams = {c["image"]: c for c in map(json.loads, (plain / "camera_params.jsonl").read_text().splitlines())}
    a = {e["raw_file"]: e for e in map(json.loads, (plain / "label_data_train.json").read_text().splitlines())}
    b = {e["raw_file"]: e for e in map(json.loads, (worn / "label_data_train.json").read_text().splitlines())}
    moved = kept = 0
    for raw, e in a.items():
        assert "ignore_lanes" not in e
        assert sorted(b[raw]["lanes"] + b[raw]["ignore_lanes"]) == sorted(e["lanes"])
        wear = [lane["wear"] for lane in cams[raw]["lanes"]]
        if len(wear) == len(e["lanes"]):  # every line in view: labels and generator lanes pair up in order
            assert b[raw]["ignore_lanes"] == [x for x, w in zip(e["lanes"], wear, strict=True) if w >= 0.3]
        moved, kept = moved + len(b[raw]["ignore_lanes"]), kept + len(b[raw]["lanes"])
    assert moved > 0 and kept > 0, "seed 3 has both worn and fresh paint in 8 frames"
    assert convert("tusimple", plain, tmp_path / "a", "--val-fraction", "0") == 0
    assert convert("tusimple", worn, tmp_path / "b", "--val-fraction", "0") == 0
    recs = {r["id"]: r for r in load_dataset(tmp_path / "b")[1]}
    n_ignore = 0
    for rec in load_dataset(tmp_path / "a")[1]:
        m_a = cv2.imread(str(tmp_path / "a" / rec["mask"]), cv2.IMREAD_UNCHANGED)
        m_b = cv2.imread(str(tmp_path / "b" / recs[rec["id"]]["mask"]), cv2.IMREAD_UNCHANGED)
        i_b = cv2.imread(str(tmp_path / "b" / recs[rec["id"]]["instance"]), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(m_a > 0, m_b > 0) and np.array_equal(m_b == 1, i_b > 0)
        n_ignore += int((m_b == 255).sum())
    assert n_ignore > 0
    for bad in (["--ignore-worn", "0"], ["--ignore-worn", "1.5"], ["--format", "culane", "--ignore-worn", "0.5"]):
        assert main(["synth", "--out", str(tmp_path / "x"), *bad]) == 2
        assert "--ignore-worn" in capsys.readouterr().err


def test_camera_height_and_low_end_camera_reach_the_frames(tmp_path, capsys):
    src = tmp_path / "high"
    assert main(["synth", "--out", str(src), "--count", "4", "--width", str(W), "--height", str(H), "--nproc", "1",
                 "--camera-height", "2.4", "3.0", "--low-end-camera-prob", "0.5"]) == 0
    for cam in (json.loads(x) for x in (src / "camera_params.jsonl").read_text().splitlines()):
        assert 2.4 <= cam["camera"]["height_m"] <= 3.0
    assert main(["synth", "--out", str(tmp_path / "x"), "--camera-height", "3", "2"]) == 2
    assert "camera_height_m" in capsys.readouterr().err


def test_low_end_camera_noise_compression_and_exposure():
    from lanenet_train.synth import SynthConfig
    from lanenet_train.synth.scene import sample_environment

    envs = [sample_environment(SynthConfig(low_end_camera_prob=1.0), np.random.default_rng(i)) for i in range(20)]
    assert all(8 <= e.noise_sigma <= 20 and 10 <= e.jpeg_quality <= 30 and 1.2 <= e.gamma <= 2.0 for e in envs)
    plain = [sample_environment(SynthConfig(), np.random.default_rng(i)) for i in range(20)]
    assert max(e.noise_sigma for e in plain) <= 10 and all(e.gamma <= 1.15 for e in plain)


def test_small_apollo_set_keeps_the_generators_split_through_convert_and_the_example_spec(tmp_path, capsys):
    """Apollo folders have no split: the generator's split travels in splits/<split>.txt, so a set of a few
    frames (one record) still has a val split after `convert`, and the spec's example path trains on it."""
    src = synth(tmp_path, "apollo", count=10)
    assert "train 9, val 1" in capsys.readouterr().out
    assert len((src / "splits" / "val.txt").read_text().splitlines()) == 1
    data = tmp_path / "data" / "apollo_synth"
    assert convert("apollo", src, data) == 0  # default --val-fraction: the lists win, nothing is carved
    meta, _ = load_dataset(data)
    assert meta["splits"] == {"train": 9, "val": 1}
    assert main(["stats", "--dataset", str(data)]) == 0
    spec = Path(__file__).resolve().parent.parent / "config" / "specs" / "deeplabv3plus_apollo.txt"
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "lanenet_train.cli", "train", "-e", str(spec), "-r", "results/deeplab",
                           "train_config.epochs=1", "train_config.max_steps_per_epoch=1",
                           "model_config.input_image_width=128", "model_config.input_image_height=64",
                           "augmentation_config.output_width=128", "augmentation_config.output_height=64"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"val_loss"' in (tmp_path / "results" / "deeplab" / "metrics.jsonl").read_text()


def test_tiny_sets_get_one_val_frame_and_apollo_split_lists_are_checked(tmp_path, capsys):
    from lanenet_train.synth.cli import plan_tasks

    splits = [k.split for _, keys in plan_tasks(4, 0, 0.1) for k in keys]
    assert splits == ["train", "train", "train", "val"]
    assert [k.split for _, keys in plan_tasks(1, 0, 0.1) for k in keys] == ["train"]
    assert [k.split for _, keys in plan_tasks(4, 0, 0.0) for k in keys] == ["train"] * 4
    src = synth(tmp_path, "apollo", count=3)
    with open(src / "splits" / "val.txt", "a") as f:
        f.write("ColorImage_road02/ColorImage/Record009/Camera 5/x.jpg\n")
    assert convert("apollo", src, tmp_path / "ds") == 1
    assert f"{src / 'splits' / 'val.txt'}:2: ColorImage_road02/ColorImage/Record009/Camera 5/x.jpg is listed, but " \
        "there is no such image" in capsys.readouterr().err
