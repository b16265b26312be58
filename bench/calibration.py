"""Self-calibration bench: the MountingEstimator against the synthetic generator's known cameras.

Two sources of lanes, reported apart:

- ``truth``: the generator's exact lane geometry (ground curves of a drive: bends, lane changes, the car's
  heading, camera shake), seen through a camera with the drive's intrinsics, distortion, height and pitch plus
  a mounting yaw the bench draws (the generator's own camera has none), with 0.5 px of noise. This tests the
  estimator itself; no rendering, so it is quick.
- ``model``: rendered drives (mounting yaw 0) through the default model on ONNX Runtime (CPU), i.e. what the
  node would estimate from its own detections. Slow (rendering): few, short drives.

For every drive: frames until ``converged`` (goal: at most 100 = 10 s at 10 Hz), then over the frames after
convergence the share within the goals: pitch and yaw within 0.3 deg, height within 5 %, lane width within
0.15 m, and c0 of the ego lines within 0.15 m, c1 within 0.01 rad (goal: 90 %). The scale comes from the
lane-width prior (a monocular camera sees height / lane width, not each): the bench runs the estimator with
the drive's true ego lane width as the prior (``prior=truth``), with the default prior 3.6 m, and with the
height given (lane width measured). ``bend`` and ``lane-change`` drives start from the converged estimate of
a straight drive with the same camera and report how far the estimate moves.

The truth part ends with cameras mounted with a roll (``bench_roll``): the estimate with the roll taken as zero
and with ``estimate_roll``, and what estimating it costs an upright camera.

Run: ``.venv/bin/python bench/calibration.py`` (truth: 8 drives of 20 s, about 4 minutes) and ``--model`` (adds
4 rendered drives of 12 s + 8 s, 10-25 minutes on two shared cores). ``--drives N --frames N`` change the amount,
``--model-file M.onnx`` the model; ``--model-roll DEG`` adds the rendered straight drives seen by a camera rolled
DEG degrees and upright, the roll taken as 0 and estimated (``--skip-truth --model-roll 2.5 --model-drives 6``
alone: about 7 minutes).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, replace

import cv2
import numpy as np

from lanenet_ros.calibrate import Intrinsics, MountingEstimator
from lanenet_ros.ground import GroundProjector, _degree, add_ground_lanes, fit_ground_lane, undistort_normalised
from lanenet_ros.ground_tracking import EgoLaneFilter
from lanenet_ros.lanes import DetectedLane, LaneFrame, Position
from lanenet_train.synth import SynthConfig
from lanenet_train.synth.markings import lane_ground_truth
from lanenet_train.synth.road import Pose, RoadWindow
from lanenet_train.synth.world import build_world, sample_traffic

FPS = 10.0
GOALS = {"pitch": 0.3, "yaw": 0.3, "height": 0.05, "width": 0.15, "c0": 0.15, "c1": 0.01}


@dataclass
class Truth:
    """What the generator knows about one frame."""

    camera: object  # synth CameraParams (pitch includes the shake)
    base_pitch: float
    yaw: float  # mounting yaw drawn by the bench
    lane_width: float  # ego lane
    ego_ground: dict  # Position -> (N, 2) ground points of the ego lines
    outer_ground: dict | None = None  # Position -> ground points of the second lines (truth drives only)


def geometry_drive(config: SynthConfig, seed: int, n_frames: int, mount_yaw: float, *,
                   lane_changes: float | None = None,
                   braking: bool = False, noise_px: float = 0.5, mount_roll: float = 0.0):
    """Yield (LaneFrame of exact image lanes, Truth) for a drive, without rendering.

    Args:
        config: generator ranges (camera, road).
        seed: drive seed.
        n_frames: frames at 10 Hz.
        mount_yaw: camera mounting yaw (rad, left).
        lane_changes: None: keep the lane (no lane changes); 0: the generator's own (one every 5 s or so on a
            road with more than one lane); > 0: also start one every this many seconds.
        braking: pitch the camera 1.5 deg down for 2 s every 8 s (a car nosing down under braking).
        noise_px: Gaussian noise added to the image points.
        mount_roll: camera mounting roll (rad, clockwise seen from behind).
    """
    rng = np.random.default_rng([int(seed), 0xD71E])
    noise = np.random.default_rng([int(seed), 7])
    speed = rng.uniform(15, 33)
    world = build_world(config, rng, length_m=speed * n_frames / FPS + 800.0)
    ego = world.start_state(rng, s=60.0, speed=speed)
    world.vehicles = sample_traffic(rng, world, ego, 0)
    road = world.road
    n_lanes = len(road.boundaries) - 1
    for k in range(n_frames):
        cam = ego.camera
        pitch = cam.pitch_rad + (math.radians(1.5) if braking and (k / FPS) % 8.0 > 6.0 else 0.0)
        proj = GroundProjector.from_camera(cam.fx, cam.fy, cam.cx, cam.cy, cam.height_m, pitch, k1=cam.k1,
                                           k2=cam.k2, yaw_rad=mount_yaw, roll_rad=mount_roll)
        pose = Pose.on_road(road, ego.s, ego.d, ego.rel_yaw)
        window = RoadWindow(road, pose, ego.s - 6.0, ego.s + 450.0)
        bottom = float(cam.height)
        gt = lane_ground_truth(road.boundaries, window, ego.s, ego.d, cam, 80.0,
                               lambda uv, d: np.zeros(len(uv), bool), lambda u, b=bottom: np.full(np.shape(u), b))
        lanes, ego_ground, outer_ground = [], {}, {}
        for lane in gt:
            uv = proj.ground_to_image(lane.ground)
            ok = (np.all(np.isfinite(uv), axis=1) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width)
                  & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height))
            if ok.sum() < 5:
                continue
            pts = (uv[ok] + noise.normal(0, noise_px, (ok.sum(), 2))).astype(np.float32)
            lanes.append(DetectedLane(np.zeros(2), 0.0, 0.0, pts, position=lane.position))
            if lane.position in (Position.EGO_LEFT, Position.EGO_RIGHT):
                ego_ground[lane.position] = lane.ground
            elif lane.position in (Position.SECOND_LEFT, Position.SECOND_RIGHT):
                outer_ground[lane.position] = lane.ground
        frame = _frame(lanes, cam.width, cam.height)
        yield frame, Truth(cam, ego.base_pitch, mount_yaw, ego_width(ego_ground), ego_ground, outer_ground)
        if lane_changes and k and k % int(lane_changes * FPS) == 0 and n_lanes > 1:
            ego.lane = ego.lane + 1 if ego.lane + 1 < n_lanes else ego.lane - 1
            ego.target_d = world.lane_centre(ego.lane)
        lane, target = ego.lane, ego.target_d
        world.step(ego, 1.0 / FPS, rng)
        if lane_changes is None:  # lane keeping: undo a lane change the generator started
            ego.lane, ego.target_d = lane, target


def ego_width(ego_ground: dict) -> float:
    """The ego lane's width (m) from its two lines' ground points, NaN without both."""
    if Position.EGO_LEFT not in ego_ground or Position.EGO_RIGHT not in ego_ground:
        return math.nan
    left, right = (fit_ground_lane(ego_ground[p])[0] for p in (Position.EGO_LEFT, Position.EGO_RIGHT))
    return float((left[0] - right[0]) * math.cos(math.atan(0.5 * (left[1] + right[1]))))


def _frame(lanes: list[DetectedLane], width: int, height: int) -> LaneFrame:
    lanes = sorted(lanes, key=lambda ln: float(ln.points[0, 0]))
    frame = LaneFrame(width, height, np.zeros((1, 1), np.uint8), lanes)
    for i, lane in enumerate(lanes):
        if lane.position == Position.EGO_LEFT:
            frame.ego_left_index = i
        elif lane.position == Position.EGO_RIGHT:
            frame.ego_right_index = i
    return frame


def errors(est: MountingEstimator, frame: LaneFrame, truth: Truth,
           ego_filter: EgoLaneFilter | None = None) -> dict[str, float] | None:
    """Absolute errors of the estimate (and of the ego lines' c0, c1) in one frame; None before a mounting.
    ``ego_filter``: the ground-plane tracking of the ego lines, fed the frames in order as the node does."""
    st = est.status
    m = st.mounting
    if m is None:
        return None
    out = {"pitch": abs(math.degrees(m.pitch_rad - truth.base_pitch)),
           "yaw": abs(math.degrees(m.yaw_rad - truth.yaw)),
           "height": abs(m.height_m / truth.camera.height_m - 1.0),
           "width": abs((st.lane_width_m or math.nan) - truth.lane_width)}
    frame = frame.replace(lanes=[lane.replace() for lane in frame.lanes])  # the drive's frames are scored again
    add_ground_lanes(frame, est.projector(), ego_filter=ego_filter,  # the fields the node publishes with it
                     lane_width_m=st.lane_width_m)
    wants = true_fits(truth)
    c0, c1 = [], []
    for lane in frame.lanes:
        want = wants.get(lane.position)
        if want is None or lane.ground_coeffs is None:
            continue
        got = lane.ground_coeffs
        c0.append(abs(got[0] - want[0]))
        c1.append(abs(got[1] - want[1]))
    out["c0"] = max(c0) if c0 else math.nan
    out["c1"] = max(c1) if c1 else math.nan
    return out


def true_fits(truth: Truth) -> dict:
    """Position -> the ground fit (c0..c3) of the true ego line within 80 m, the fit the detections are scored
    against."""
    return {pos: fit_ground_lane(g[g[:, 0] <= 80.0])[0] for pos, g in truth.ego_ground.items()}


def run_drive(est: MountingEstimator, frames, published: list[LaneFrame] | None = None,
              ground_tracking: bool = True) -> dict:
    """Feed a drive to the estimator; frames until converged and the share of later frames within each goal.

    ``published``: the frames as the node publishes them (tracked), one per frame, to score c0/c1 on instead of
    the detections, their ground fields tracked too (``tracker.ground``, unless ``ground_tracking`` is off) from
    the first frame with a mounting; the estimator is fed the detections either way, as in the node."""
    converged_at, rows = None, []
    ego_filter = EgoLaneFilter() if published is not None and ground_tracking else None
    for k, (frame, truth) in enumerate(frames):
        est.update(frame)
        if converged_at is None and est.status.state == "converged":
            converged_at = k + 1
        if est.status.state in ("converged", "seeded"):
            err = errors(est, frame if published is None else published[k], truth, ego_filter)
            if err is not None:
                rows.append(err)
    share = {}
    for key, goal in GOALS.items():
        vals = np.array([r[key] for r in rows if not math.isnan(r[key])])
        share[key] = float(np.mean(vals <= goal)) if len(vals) else math.nan
    worst = {key: float(np.nanmax([r[key] for r in rows])) if rows else math.nan for key in GOALS}
    return {"converged_at": converged_at, "frames": len(rows), "share": share, "worst": worst}


def draw_yaw(seed: int) -> float:
    """The mounting yaw (rad, within +-3 deg) the bench gives a drive's camera."""
    return float(np.random.default_rng([seed, 11]).uniform(-math.radians(3), math.radians(3)))


def first_truth(config: SynthConfig, seed: int, n_frames: int, mount_yaw: float) -> Truth:
    """The first frame's truth with a steady lane width (the world depends on the drive's length)."""
    return next(t for _, t in geometry_drive(config, seed, n_frames, mount_yaw) if not math.isnan(t.lane_width))


def make_estimator(truth: Truth, prior: str, estimate_roll: bool = False) -> MountingEstimator:
    cam = truth.camera
    intr = Intrinsics(cam.fx, cam.fy, cam.cx, cam.cy, cam.k1, cam.k2)
    if prior == "height":
        return MountingEstimator(intr, height_m=cam.height_m, estimate_roll=estimate_roll)
    width = truth.lane_width if prior == "truth" else 3.6
    return MountingEstimator(intr, lane_width_m=float(np.clip(width, 2.5, 5.0)), estimate_roll=estimate_roll)


def fmt(result: dict) -> str:
    conv = result["converged_at"]
    share = " ".join(f"{k} {100 * v:5.1f}%" for k, v in result["share"].items())
    return f"converged at {str(conv) if conv else 'never':>5} frames  within goal: {share}"


def bench_truth(drives: int, n_frames: int) -> None:
    straight = SynthConfig(camera_height_m=(1.15, 3.0), straight_prob=1.0)
    mixed = SynthConfig(camera_height_m=(1.15, 3.0))
    bends = SynthConfig(camera_height_m=(1.15, 3.0), straight_prob=0.0)
    print(f"== truth lanes (exact geometry + 0.5 px noise), {drives} drives x {n_frames} frames at 10 Hz ==")
    totals: dict[str, list] = {}
    fits: list[dict] = []
    for d in range(drives):
        seed = 1000 + d
        yaw = draw_yaw(seed)
        t0 = first_truth(straight, seed, n_frames, yaw)
        c = t0.camera
        print(f"drive {seed}: height {c.height_m:.2f} m, pitch {math.degrees(t0.base_pitch):.2f} deg, yaw "
              f"{math.degrees(yaw):+.2f} deg, fx {c.fx:.0f} px, k1 {c.k1:+.3f}, lane {t0.lane_width:.2f} m")
        for prior in ("truth", "height", "default"):
            est = make_estimator(t0, prior)
            r = run_drive(est, geometry_drive(straight, seed, n_frames, yaw))
            totals.setdefault(f"straight prior={prior}", []).append(r)
            print(f"  straight   prior={prior:7s} {fmt(r)}")
            if prior != "truth":
                continue
            for name, cfg, kw in (("mixed", mixed, {}), ("bends", bends, {}),
                                  ("lane-chg", straight, {"lane_changes": 0.0}),
                                  ("braking", straight, {"braking": True})):
                fresh = make_estimator(first_truth(cfg, seed, n_frames, yaw) if name == "mixed" else t0, prior)
                if name != "mixed":  # start from the converged estimate, see whether the drive pushes it off
                    fresh._mounting, fresh._state = est.status.mounting, "converged"
                    fresh._history = est._history.copy()
                drive = list(geometry_drive(cfg, seed, n_frames, yaw, **kw))
                rr = run_drive(fresh, drive)
                if name == "bends":
                    fits.append(compare_fits(drive))
                totals.setdefault(f"{name} prior=truth", []).append(rr)
                print(f"  {name:10s} prior=truth   {fmt(rr)}  worst pitch {rr['worst']['pitch']:.2f} "
                      f"yaw {rr['worst']['yaw']:.2f} deg, height {100 * rr['worst']['height']:.1f}%")
    summary(totals)
    print_fits("exact lanes of the bend drives", fits)


def roll_result(est: MountingEstimator, frames, mount_roll: float) -> tuple[float, float, float]:
    """Feed a drive to the estimator: (its roll's error in degrees at the end, the share of frames after
    convergence with the ego lines' c0 within 0.15 m, the same for the second lines), each frame's lanes as
    detected (not tracked)."""
    ego, outer = [], []
    for frame, truth in frames:
        est.update(frame)
        if est.status.state != "converged":
            continue
        frame = add_ground_lanes(frame.replace(lanes=[lane.replace() for lane in frame.lanes]), est.projector())
        wants = {**truth.ego_ground, **(truth.outer_ground or {})}
        for lane in frame.lanes:
            want = wants.get(lane.position)
            if want is not None and lane.ground_coeffs is not None:
                err = abs(lane.ground_coeffs[0] - fit_ground_lane(want[want[:, 0] <= 80.0])[0][0])
                (ego if lane.position in (Position.EGO_LEFT, Position.EGO_RIGHT) else outer).append(err)
    m = est.status.mounting
    return (math.nan if m is None else abs(math.degrees(m.roll_rad - mount_roll)),
            float(np.mean(np.array(ego) <= 0.15)) if ego else math.nan,
            float(np.mean(np.array(outer) <= 0.15)) if outer else math.nan)


def add_roll_row(rows: dict[str, list], mount: float, estimate: bool, result: tuple[float, float, float]) -> str:
    """File a drive's :func:`roll_result` under its row (rolled or upright, roll estimated or not); its cell."""
    name = f"{'rolled' if mount else 'upright'}, roll {'estimated' if estimate else 'taken as 0'}"
    rows.setdefault(name, []).append(result)
    return f"{result[0]:4.2f} {100 * result[1]:5.1f}% {100 * result[2]:5.1f}%"


def print_roll_rows(rows: dict[str, list]) -> None:
    for name, results in rows.items():
        r = np.array(results, float)
        print(f"{name:32s} roll error mean {np.nanmean(r[:, 0]):.2f} deg (max {np.nanmax(r[:, 0]):.2f})  c0 ego "
              f"{100 * np.nanmean(r[:, 1]):5.1f}%  c0 second lines {100 * np.nanmean(r[:, 2]):5.1f}%")


def bench_roll(drives: int, n_frames: int) -> None:
    """Cameras mounted askew (roll 1.5-3 deg, either way) and upright, the estimate without and with
    ``estimate_roll`` (the drives' lanes differ in width by up to 0.24 m, which biases the roll measured)."""
    straight = SynthConfig(camera_height_m=(1.15, 3.0), straight_prob=1.0)
    print(f"\n== a rolled camera (exact lanes), {drives} straight drives x {n_frames} frames: roll error (deg), "
          "share of frames after convergence with the ego lines' c0 / the second lines' c0 within 0.15 m ==")
    rows: dict[str, list] = {}
    for d in range(drives):
        seed = 1000 + d
        yaw = draw_yaw(seed)
        roll = math.radians(np.random.default_rng([seed, 12]).uniform(1.5, 3.0)) * (1 if d % 2 else -1)
        t0 = first_truth(straight, seed, n_frames, yaw)
        cells = []
        for mount, estimate in ((roll, False), (roll, True), (0.0, False), (0.0, True)):
            cells.append(add_roll_row(rows, mount, estimate, roll_result(
                make_estimator(t0, "truth", estimate), geometry_drive(straight, seed, n_frames, yaw, mount_roll=mount),
                mount)))
        print(f"drive {seed}: roll {math.degrees(roll):+.2f} deg, height {t0.camera.height_m:.2f} m   "
              + "   ".join(cells))
    print_roll_rows(rows)


def bench_model_roll(drives: int, n_frames: int, roll_deg: float, model: str | None = None) -> None:
    """The rendered straight drives as a camera turned ``roll_deg`` about its optical axis would see them (every
    other drive the other way) and upright, through the model: the roll taken as 0 and estimated."""
    from lanenet_ros.pipeline import LanePipeline

    pipeline = LanePipeline(model, backend="onnxruntime-cpu", tracking=False)
    config = SynthConfig(camera_height_m=(1.15, 3.0), straight_prob=1.0, night_prob=0.0, fog_prob=0.0)
    print(f"\n== {model or 'default model'} detections, {drives} rendered drives x {n_frames} frames, the camera "
          f"rolled {roll_deg:g} deg: roll error (deg), share of frames after convergence with the ego lines' c0 / "
          "the second lines' c0 within 0.15 m (each frame's detections) ==")
    rows: dict[str, list] = {}
    for d in range(drives):
        seed = 2000 + d
        roll = math.radians(roll_deg) * (1 if d % 2 else -1)
        cells = []
        for mount in (roll, 0.0):
            frames = list(model_drive(config, seed, n_frames, pipeline, roll=mount))
            t0 = next(t for _, t in frames if not math.isnan(t.lane_width))
            for estimate in (False, True):
                cells.append(add_roll_row(rows, mount, estimate,
                                          roll_result(make_estimator(t0, "truth", estimate), frames, mount)))
        print(f"drive {seed}: roll {math.degrees(roll):+.2f} deg, height {t0.camera.height_m:.2f} m   "
              + "   ".join(cells))
    print_roll_rows(rows)


def print_fits(what: str, fits: list[dict]) -> None:
    print(f"\n== ground-plane fits of the ego lines ({what}) with the true mounting: share of frames with c0 "
          "within 0.15 m / c1 within 0.01 rad ==")
    for name in fits[0]:
        cells = " ".join(f"{f[name][0]:.2f}/{f[name][1]:.2f}" for f in fits)
        mean = np.mean([f[name] for f in fits], axis=0)
        print(f"{name:28s} {cells}  mean {mean[0]:.2f}/{mean[1]:.2f}")


def summary(totals: dict[str, list]) -> None:
    print("\n== summary: drives converged within 100 frames; mean share of frames within each goal ==")
    for name, rs in totals.items():
        conv = sum(1 for r in rs if r["converged_at"] and r["converged_at"] <= 100)
        share = {k: np.nanmean([r["share"][k] for r in rs]) for k in GOALS}
        low = {k: np.nanmin([r["share"][k] for r in rs]) for k in GOALS}
        cells = " ".join(f"{k} {100 * share[k]:5.1f}% (min {100 * low[k]:5.1f})" for k in GOALS)
        print(f"{name:24s} converged {conv}/{len(rs)}  {cells}")


def model_drive(config: SynthConfig, seed: int, n_frames: int, pipeline, roll: float = 0.0):
    """Yield (detected LaneFrame, Truth) for a rendered lane-keeping drive through the default model.

    The loop of ``lanenet_train.synth.render.drive_segment``, with the generator's lane changes undone (as in
    :func:`geometry_drive`), so that the estimator has steady driving to measure. ``roll``: each picture as the
    camera turned so about its optical axis would see it (:func:`rolled_picture`).
    """
    from lanenet_train.synth.render import _render, start_drive

    world, ego, rng = start_drive(config, seed, n_frames, FPS)
    maps = None
    for k in range(n_frames):
        f = _render(config, world, ego, np.random.default_rng([int(seed), 2, k]))
        image = f.image
        if roll:
            maps = maps or roll_maps(f.camera, roll)
            image = cv2.remap(image, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        frame = pipeline.process(image)
        ego_ground = {lane.position: lane.ground for lane in f.lanes
                      if lane.position in (Position.EGO_LEFT, Position.EGO_RIGHT)}
        outer = {lane.position: lane.ground for lane in f.lanes
                 if lane.position in (Position.SECOND_LEFT, Position.SECOND_RIGHT)}
        # the detections carry the decoder's positions; the truth lines are matched to them by position
        yield frame, Truth(f.camera, ego.base_pitch, 0.0, ego_width(ego_ground), ego_ground, outer)
        lane, target = ego.lane, ego.target_d
        world.step(ego, 1.0 / FPS, rng)
        ego.lane, ego.target_d = lane, target


def roll_maps(camera, roll: float) -> tuple[np.ndarray, np.ndarray]:
    """``cv2.remap`` maps that turn an upright camera's picture into what the same camera turned ``roll`` (rad,
    clockwise seen from behind) about its optical axis sees: each pixel undistorted, turned, distorted again."""
    c = camera
    uu, vv = np.meshgrid(np.arange(c.width, dtype=np.float64), np.arange(c.height, dtype=np.float64))
    xr, yr = undistort_normalised(((uu - c.cx) / c.fx).ravel(), ((vv - c.cy) / c.fy).ravel(), c.k1, c.k2)
    cos, sin = math.cos(roll), math.sin(roll)
    xu, yu = cos * xr - sin * yr, sin * xr + cos * yr
    r2 = xu * xu + yu * yu
    factor = 1.0 + c.k1 * r2 + c.k2 * r2 * r2
    return ((c.fx * xu * factor + c.cx).reshape(c.height, c.width).astype(np.float32),
            (c.fy * yu * factor + c.cy).reshape(c.height, c.width).astype(np.float32))


def bench_model(drives: int, n_frames: int, model: str | None = None) -> None:
    from lanenet_ros.pipeline import LanePipeline

    pipeline = LanePipeline(model, backend="onnxruntime-cpu", tracking=False)
    config = SynthConfig(camera_height_m=(1.15, 3.0), straight_prob=1.0, night_prob=0.0, fog_prob=0.0)
    bends = replace(config, straight_prob=0.0)  # same seed, same camera (it is drawn first), only bends
    print(f"\n== {model or 'default model'} detections ({pipeline.backend_name}), {drives} rendered lane-keeping "
          f"drives x {n_frames} frames straight, then {n_frames * 2 // 3} frames of bends with the same camera ==")
    totals: dict[str, list] = {}
    fits: list[dict] = []
    for d in range(drives):
        seed = 2000 + d
        t_start = time.perf_counter()
        frames = list(model_drive(config, seed, n_frames, pipeline))
        curved = list(model_drive(bends, seed, n_frames * 2 // 3, pipeline))
        t0 = next(t for _, t in frames if not math.isnan(t.lane_width))
        c = t0.camera
        print(f"drive {seed}: height {c.height_m:.2f} m, pitch {math.degrees(c.pitch_rad):.2f} deg, fx {c.fx:.0f} px,"
              f" k1 {c.k1:+.3f}, lane {t0.lane_width:.2f} m ({time.perf_counter() - t_start:.0f} s to render+detect)")
        # as the node publishes them (tracking on); the bends are another drive, so another tracker
        published = tracked_frames(pipeline, frames), tracked_frames(pipeline, curved)
        for prior in ("truth", "height", "default"):
            est = make_estimator(t0, prior)
            r = run_drive(est, frames)
            totals.setdefault(f"model prior={prior}", []).append(r)
            print(f"  straight prior={prior:7s} {fmt(r)}")
            if prior != "truth":
                continue
            if r["converged_at"]:
                rb = run_drive(est, curved)
                totals.setdefault("model bends (after)", []).append(rb)
                print(f"  bends    prior=truth   {fmt(rb)}  worst pitch {rb['worst']['pitch']:.2f} yaw "
                      f"{rb['worst']['yaw']:.2f} deg")
            # c0/c1 of the lanes the node publishes with tracking on, its default (the estimator sees the same),
            # with and without the ego lines tracked in the ground plane (tracker.ground)
            for ground, label in ((True, "tracked"), (False, "tracked, tracker.ground off")):
                est = make_estimator(t0, prior)
                r = run_drive(est, frames, published[0], ground)
                totals.setdefault(f"model prior=truth, {label}", []).append(r)
                print(f"  {label:28s} {fmt(r)}")
                if r["converged_at"]:
                    rb = run_drive(est, curved, published[1], ground)
                    totals.setdefault(f"model bends (after), {label}", []).append(rb)
                    print(f"  bends, {label:21s} {fmt(rb)}")
        fits.append(compare_fits(frames + curved))
    summary(totals)
    print_fits("detected, straight and bends", fits)


def tracked_frames(pipeline, frames) -> list[LaneFrame]:
    """The detections of a drive as the node publishes them with ``tracking`` on: through a fresh tracker set up
    as the pipeline's is, in order."""
    from lanenet_ros.tracking import LaneTracker

    tracker = LaneTracker.for_decoder(pipeline.decoder.params)
    return [tracker.update(frame, k / FPS) for k, (frame, _) in enumerate(frames)]


def compare_fits(frames) -> dict[str, tuple[float, float]]:
    """c0/c1 of the detected ego lines by the ground fits, through the true mounting: as the node publishes them
    (``add_ground_lanes``: per lane, the ego pair sharing its heading c1 where their own fits agree), per lane
    (``fit_ground_lane``, unweighted), per lane with each point weighted by its distance (every metre of road alike),
    and all lanes of a frame sharing c1..c3 (the neighbours' shape as a prior), weighted by distance."""
    t0 = frames[0][1]
    c = t0.camera
    proj = GroundProjector.from_camera(c.fx, c.fy, c.cx, c.cy, c.height_m, t0.base_pitch, k1=c.k1, k2=c.k2,
                                       yaw_rad=t0.yaw)
    published = "published (ego pair c1)"
    errors: dict[str, list] = {published: [], "per lane (fit_ground_lane)": [], "per lane, by distance": [],
                               "joint, shared shape": []}
    for frame, truth in frames:
        add_ground_lanes(frame, proj)  # as the node fits them
        truths = true_fits(truth)
        for lane in frame.lanes:
            want = truths.get(lane.position)
            if want is not None and lane.ground_coeffs is not None:
                errors[published].append((abs(lane.ground_coeffs[0] - want[0]), abs(lane.ground_coeffs[1] - want[1])))
        grounds, wants = [], []
        for lane in frame.lanes:
            g = proj.image_to_ground(lane.points)
            g = g[np.all(np.isfinite(g), axis=1) & (g[:, 0] > 0) & (g[:, 0] <= 80.0)]
            if len(g) < 6:
                continue
            grounds.append(g)
            wants.append(truths.get(lane.position))
        if not grounds:
            continue
        got = {"per lane (fit_ground_lane)": [fit_ground_lane(g)[0] for g in grounds],
               "per lane, by distance": [_poly(g, weighted=True) for g in grounds],
               "joint, shared shape": _joint(grounds)}
        for name, coeffs in got.items():
            errors[name] += [(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(coeffs, wants, strict=True)
                             if b is not None]
    return {name: (float(np.mean(np.array(e)[:, 0] <= GOALS["c0"])), float(np.mean(np.array(e)[:, 1] <= GOALS["c1"])))
            for name, e in errors.items()}


def _poly(g: np.ndarray, weighted: bool) -> np.ndarray:
    coeffs = np.zeros(4)
    d = _degree(np.sort(g[:, 0]), 3)  # the degree add_ground_lanes gives the same points
    coeffs[: d + 1] = np.polynomial.polynomial.polyfit(g[:, 0], g[:, 1], d, w=g[:, 0] if weighted else None)
    return coeffs


def _joint(grounds: list[np.ndarray]) -> list[np.ndarray]:
    """Own c0 per lane, c1..c3 shared, residuals weighted by distance."""
    d, n = max(_degree(np.sort(g[:, 0]), 3) for g in grounds), len(grounds)
    rows, rhs = [], []
    for i, g in enumerate(grounds):
        x = g[:, 0]
        a = np.zeros((len(x), n + d))
        a[:, i] = 1.0
        for p in range(1, d + 1):
            a[:, n + p - 1] = x**p
        rows.append(a * x[:, None])
        rhs.append(g[:, 1] * x)
    sol = np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)[0]
    out = []
    for i in range(n):
        coeffs = np.zeros(4)
        coeffs[0], coeffs[1: d + 1] = sol[i], sol[n:]
        out.append(coeffs)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drives", type=int, default=8, help="truth drives (default 8)")
    parser.add_argument("--frames", type=int, default=200, help="frames per truth drive (default 200 = 20 s)")
    parser.add_argument("--model", action="store_true", help="also rendered drives through the default model")
    parser.add_argument("--model-file", default=None, metavar="M.onnx",
                        help="ONNX model for the rendered drives (default: the embedded default model)")
    parser.add_argument("--model-drives", type=int, default=4, help="rendered drives (default 4)")
    parser.add_argument("--model-frames", type=int, default=120,
                        help="frames per rendered straight drive (default 120; bends: two thirds of it)")
    parser.add_argument("--skip-truth", action="store_true", help="only the model drives")
    parser.add_argument("--model-roll", type=float, default=0.0, metavar="DEG",
                        help="rendered straight drives (--model-drives) seen by a camera rolled DEG degrees and "
                             "upright, the roll taken as 0 and estimated (about a minute a drive; with "
                             "--skip-truth and without --model, only these)")
    args = parser.parse_args(argv)
    if not args.skip_truth:
        bench_truth(args.drives, args.frames)
        bench_roll(args.drives, args.frames)
    if args.model:
        bench_model(args.model_drives, args.model_frames, args.model_file)
    if args.model_roll:
        bench_model_roll(args.model_drives, args.model_frames, args.model_roll, args.model_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
