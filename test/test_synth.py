"""The synthetic road-scene generator: determinism, exact ground truth, drives, camera model."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from lanenet_ros.lanes import MarkingType, Position
from lanenet_train.synth import CameraParams, SynthConfig, iter_drive, render_frame
from lanenet_train.synth.render import drive_segment

SMALL = {"width": 320, "height": 180}


def clean_config(**kw) -> SynthConfig:
    """Daylight, no vehicles, no blur or overlays: paint is visible where the ground truth says."""
    base = dict(SMALL, render_scale=1.0, vehicles=(0, 0), night_prob=0, dusk_prob=0, rain_prob=0, fog_prob=0,
                overcast_prob=0, hood_prob=0, overlay_text_prob=0, blur_prob=0, jpeg_prob=0, worn_prob=0,
                glare_prob=0, tree_shadow_prob=0, overpass_prob=0, edge_line_prob=1.0, botts_dots_prob=0)
    base.update(kw)
    return SynthConfig(**base)


def test_same_seed_same_frame_and_other_seed_differs():
    cfg = SynthConfig(**SMALL)
    a, b, c = render_frame(cfg, 7), render_frame(cfg, 7), render_frame(cfg, 8)
    assert a.image.shape == (180, 320, 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image)
    assert len(a.lanes) == len(b.lanes)
    for la, lb in zip(a.lanes, b.lanes, strict=True):
        assert np.array_equal(la.points, lb.points)
    assert not np.array_equal(a.image, c.image)


def test_lane_points_are_the_projection_of_their_ground_points():
    cfg = SynthConfig(**SMALL)
    for seed in range(4):
        frame = render_frame(cfg, seed)
        for lane in frame.lanes:
            uv, valid = frame.camera.project(lane.ground)
            assert valid.all()
            assert np.abs(uv - lane.points).max() < 1e-6
            assert (lane.points[:, 0] >= -1e-6).all() and (lane.points[:, 0] <= 319 + 1e-6).all()
            assert (np.diff(lane.points[:, 1]) < 0).all(), "points run near (bottom) to far (top)"
            assert len(lane.visible) == len(lane.points)


def test_lanes_are_ordered_left_to_right_with_one_ego_pair():
    cfg = SynthConfig(**SMALL)
    for seed in range(6):
        lanes = render_frame(cfg, seed).lanes
        lateral = [lane.ground[0, 1] for lane in lanes]  # y left is positive: decreasing means left to right
        assert lateral == sorted(lateral, reverse=True)
        positions = [lane.position for lane in lanes if lane.position != Position.UNKNOWN]
        assert len(positions) == len(set(positions))
        if Position.EGO_LEFT in positions and Position.EGO_RIGHT in positions:
            left = next(ln for ln in lanes if ln.position == Position.EGO_LEFT)
            right = next(ln for ln in lanes if ln.position == Position.EGO_RIGHT)
            assert left.ground[0, 1] > 0 > right.ground[0, 1]


def test_paint_is_rendered_where_the_ground_truth_lies():
    """Apollo label pixels (visible paint) lie on the road within a stripe's width of an exact lane, and
    solid lines stand out in colour from the road beside them."""
    cfg = clean_config()
    checked = 0
    for seed in range(6):
        frame = render_frame(cfg, seed)
        X, Y, ok = frame.camera.ground_rays()
        label = frame.apollo_label.any(axis=2) & ok & (X < 40)
        ground = np.stack([X[label], Y[label]], axis=1)
        if len(ground):  # lateral distance to the nearest lane at the pixel's forward distance
            dist = np.min([np.abs(ground[:, 1] - np.interp(ground[:, 0], lane.ground[:, 0], lane.ground[:, 1]))
                           + 1e3 * (ground[:, 0] > lane.ground[-1, 0]) for lane in frame.lanes], axis=0)
            footprint = X[label] / frame.camera.fx  # metres per pixel across the road
            assert np.percentile(dist - footprint, 99) < 0.45  # widest: a double line, 0.35 m from its centre
        img = frame.image.astype(float)
        for lane in frame.lanes:
            if lane.marking_type != MarkingType.SOLID:
                continue
            near = lane.points[(lane.points[:, 1] > 120) & (lane.points[:, 0] > 12) & (lane.points[:, 0] < 308)]
            if len(near) < 5:
                continue
            x, y = np.round(near[:, 0]).astype(int), np.round(near[:, 1]).astype(int)
            contrast = np.minimum(np.linalg.norm(img[y, x] - img[y, x - 10], axis=1),
                                  np.linalg.norm(img[y, x] - img[y, x + 10], axis=1))
            assert np.median(contrast) > 15, f"seed {seed}: solid line does not stand out from the road beside it"
            checked += 1
    assert checked >= 3


def test_apollo_label_uses_only_apollo_lane_colours():
    from lanenet_train.data.apollo_labels import APOLLO_LABELS

    table = {lab.color for lab in APOLLO_LABELS}
    frame = render_frame(SynthConfig(**SMALL), 3)
    colours = {tuple(int(v) for v in c) for c in np.unique(frame.apollo_label.reshape(-1, 3), axis=0)}
    assert colours <= table
    assert len(colours) >= 2


def test_vehicles_hide_lane_points_behind_them():
    def hidden(vehicles: int) -> int:
        cfg = SynthConfig(**SMALL, vehicles=(vehicles, vehicles))
        return sum(int((~lane.visible).sum()) for seed in range(6) for lane in render_frame(cfg, seed).lanes)

    assert hidden(9) > 2 * hidden(0) + 10  # poles and trees hide a few points too


def test_drive_is_continuous_and_pieces_match_one_pass():
    cfg = SynthConfig(**SMALL)
    frames = list(iter_drive(cfg, 5, 6, fps=10.0))
    assert [f.index for f in frames] == list(range(6))
    assert frames[-1].timestamp == pytest.approx(0.5)
    for a, b in itertools.pairwise(frames):
        assert a.info["s"] < b.info["s"] < a.info["s"] + 4.0  # 15-33 m/s at 10 fps
        assert a.info["lanes"] == b.info["lanes"]
    tail = list(drive_segment(cfg, 5, 6, fps=10.0, first=4))
    assert [f.index for f in tail] == [4, 5]
    assert np.array_equal(tail[0].image, frames[4].image)


def test_config_rejects_bad_values_naming_the_parameter():
    with pytest.raises(ValueError, match="rain_prob"):
        SynthConfig(rain_prob=1.5)
    with pytest.raises(ValueError, match="lane_width_m"):
        SynthConfig(lane_width_m=(4.0, 3.0))
    with pytest.raises(ValueError, match="width"):
        SynthConfig(width=8)
    with pytest.raises(ValueError, match="n_frames"):
        next(iter_drive(SynthConfig(**SMALL), 0, -1))


def test_camera_projection_and_undistortion_round_trip():
    cam = CameraParams(fx=700, fy=702, cx=640, cy=350, height_m=1.4, pitch_rad=0.06, k1=-0.2, k2=0.03)
    assert CameraParams.from_dict(cam.to_dict()) == cam
    pts = np.random.default_rng(0).uniform([4, -12, 0], [80, 12, 0], (500, 3))
    uv, valid = cam.project(pts)
    xu, _ = cam.undistort_normalised(uv[valid, 0], uv[valid, 1])
    c = cam.vehicle_to_camera(pts[valid])
    assert np.abs(xu - c[:, 0] / c[:, 2]).max() < 1e-9
    X, Y, ok = cam.scaled(0.25).ground_rays()
    v, u = 120, 160  # a pixel below the horizon at quarter size
    assert ok[v, u]
    back, _ = cam.scaled(0.25).project(np.array([[X[v, u], Y[v, u], 0.0]]))
    assert np.abs(back[0] - [u, v]).max() < 0.05


def test_lanes_stop_where_scenery_hides_them_but_run_on_behind_traffic():
    from lanenet_train.synth.markings import lane_ground_truth
    from lanenet_train.synth.road import Pose, RoadWindow
    from lanenet_train.synth.world import build_world

    cfg = SynthConfig(**SMALL)
    rng = np.random.default_rng(11)
    world = build_world(cfg, rng, 600.0)
    ego = world.start_state(rng, s=100.0)
    window = RoadWindow(world.road, Pose.on_road(world.road, ego.s, ego.d, ego.rel_yaw), ego.s - 6, ego.s + 400)

    def no_bonnet(u):
        return np.full(np.shape(u), float(cfg.height))

    def beyond(metres):
        return lambda uv, depth: depth > metres

    def nothing(uv, depth):
        return np.zeros(len(depth), bool)

    args = (world.road.boundaries, window, ego.s, ego.d, ego.camera, 150.0)
    free = lane_ground_truth(*args, nothing, no_bonnet, nothing)
    walled = lane_ground_truth(*args, nothing, no_bonnet, beyond(30.0))
    traffic = lane_ground_truth(*args, beyond(30.0), no_bonnet, nothing)
    assert max(lane.ground[:, 0].max() for lane in free) > 60
    assert max(lane.ground[:, 0].max() for lane in walled) < 31
    assert [len(a.points) for a in traffic] == [len(b.points) for b in free]
    assert all((~lane.visible).any() for lane in traffic if lane.ground[:, 0].max() > 31)
