"""Render synthetic dash-cam frames with exact lane ground truth: independent frames and drives."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from lanenet_train.data.apollo_labels import train_id_colors
from lanenet_train.synth import effects
from lanenet_train.synth.camera import CameraParams
from lanenet_train.synth.config import SynthConfig
from lanenet_train.synth.ground import GroundLight, camera_grid, shade_ground
from lanenet_train.synth.markings import SynthLane, lane_ground_truth
from lanenet_train.synth.objects import PIXEL_SCALE, Layers, draw_ground_polys, draw_prims
from lanenet_train.synth.props import PropBuilder
from lanenet_train.synth.road import Pose, RoadWindow
from lanenet_train.synth.sky import render_sky, sun_direction
from lanenet_train.synth.world import EgoState, World, build_world, sample_traffic

_TRAIN_COLORS = train_id_colors()


@dataclass
class SynthFrame:
    """One rendered frame.

    Attributes:
        image: (H, W, 3) uint8 BGR camera image.
        lanes: ground-truth lane boundaries, left to right.
        camera: the camera that took the image.
        index: frame number within its drive (0 for an independent frame).
        timestamp: seconds since the start of the drive.
        info: scene description (time of day, weather, lanes, ...), JSON-able.
        hood_edge: the bonnet's top edge, (x, y) image points left to right; empty when none shows.
    """

    image: np.ndarray
    lanes: list[SynthLane]
    camera: CameraParams
    index: int = 0
    timestamp: float = 0.0
    info: dict = field(default_factory=dict)
    hood_edge: list[list[float]] = field(default_factory=list)
    _cover: np.ndarray | None = field(default=None, repr=False)
    _cls: np.ndarray | None = field(default=None, repr=False)
    _apollo: np.ndarray | None = field(default=None, repr=False)

    @property
    def apollo_label(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB Apollo lane-mark colour label of the visible painted markings."""
        if self._apollo is None:
            h, w = self.image.shape[:2]
            cover, cls = self._cover, self._cls
            if cover.shape != (h, w):
                cover = cv2.resize(cover, (w, h), interpolation=cv2.INTER_LINEAR)
                cls = cv2.resize(cls, (w, h), interpolation=cv2.INTER_NEAREST)
            ids = np.where(cover >= 0.5, cls, 0).astype(np.uint8)
            self._apollo = _TRAIN_COLORS[ids]
        return self._apollo


def render_frame(config: SynthConfig, seed: int) -> SynthFrame:
    """Render one independent frame.

    Args:
        config: what the generator may produce.
        seed: the same seed gives the same frame.

    Returns:
        The frame, its lanes and its camera.
    """
    rng = np.random.default_rng([int(seed), 0x5EED])
    world = build_world(config, rng, length_m=700.0)
    ego = world.start_state(rng, s=rng.uniform(40, 200))
    world.vehicles = sample_traffic(rng, world, ego, int(rng.integers(config.vehicles[0], config.vehicles[1] + 1)))
    return _render(config, world, ego, np.random.default_rng([int(seed), 1]))


def iter_drive(config: SynthConfig, seed: int, n_frames: int, fps: float = 10.0) -> Iterator[SynthFrame]:
    """Render a continuous drive: one road, traffic moving, lane changes, camera shake.

    Args:
        config: what the generator may produce.
        seed: the same seed gives the same drive.
        n_frames: number of frames.
        fps: frame rate (the ego vehicle drives 15-33 m/s).

    Yields:
        Frames in time order (``index`` and ``timestamp`` set).

    Raises:
        ValueError: ``n_frames`` is negative or ``fps`` not positive.
    """
    return drive_segment(config, seed, n_frames, fps, first=0)


def drive_segment(config: SynthConfig, seed: int, n_frames: int, fps: float = 10.0,
                  first: int = 0) -> Iterator[SynthFrame]:
    """Frames ``first`` .. ``n_frames - 1`` of the drive :func:`iter_drive` renders for ``seed``.

    The drive is simulated from its start (cheap) and only the requested frames are rendered, so
    several workers can render one long drive in pieces that match a single pass exactly.
    """
    if n_frames < 0 or fps <= 0:
        raise ValueError(f"n_frames must be >= 0 and fps > 0, got n_frames={n_frames}, fps={fps}")
    world, ego, rng = start_drive(config, seed, n_frames, fps)
    for k in range(n_frames):
        if k >= first:
            frame = _render(config, world, ego, np.random.default_rng([int(seed), 2, k]))
            frame.index, frame.timestamp = k, k / fps
            yield frame
        world.step(ego, 1.0 / fps, rng)


def start_drive(config: SynthConfig, seed: int, n_frames: int, fps: float) -> tuple[World, EgoState,
                                                                                 np.random.Generator]:
    """The world, the ego vehicle at its start and the random stream that moves them, of the drive
    :func:`iter_drive` renders for ``seed``: frame k is ``_render(config, world, ego, rng_k)`` with
    ``rng_k = np.random.default_rng([seed, 2, k])``, then ``world.step(ego, 1 / fps, rng)``."""
    rng = np.random.default_rng([int(seed), 0xD71E])
    speed = rng.uniform(15, 33)
    world = build_world(config, rng, length_m=speed * n_frames / fps + 800.0)
    ego = world.start_state(rng, s=60.0, speed=speed)
    world.vehicles = sample_traffic(rng, world, ego, int(rng.integers(config.vehicles[0], config.vehicles[1] + 1)))
    return world, ego, rng


def _hood_row(config: SynthConfig, hood: dict | None) -> Callable[[np.ndarray], np.ndarray]:
    w, h = config.width, config.height
    if hood is None:
        return lambda u: np.full(np.shape(u), float(h))

    def row(u: np.ndarray) -> np.ndarray:
        x = (np.asarray(u, float) - w / 2) / (w / 2)
        top = h * (1 - hood["height"]) - h * hood["bulge"] * np.clip(1 - x * x, 0, 1) + h * hood.get("tilt", 0.0) * x
        if hood.get("wiper"):  # a parked wiper blade lies along the edge over the left part, a little above it
            top = top - h * 0.012 * ((x > -0.8) & (x < 0.1))
        return top
    return row


def hood_edge_points(config: SynthConfig, hood: dict | None, count: int = 65) -> list[list[float]]:
    """The bonnet's top edge as ``count`` image points (x, y) across the width; empty without a bonnet."""
    if hood is None:
        return []
    xs = np.linspace(0, config.width - 1, count)
    return [[round(float(x), 2), round(float(y), 2)] for x, y in zip(xs, _hood_row(config, hood)(xs), strict=True)]


def _draw_hood(layers: Layers, config: SynthConfig, hood: dict, env, scale: float) -> None:
    hr, wr = layers.image.shape[:2]
    xs = np.linspace(0, config.width - 1, 33)
    top = _hood_row(config, hood)(xs)
    pts = np.stack([(xs + 0.5) * scale - 0.5, (top + 0.5) * scale - 0.5], 1)
    poly = np.vstack([pts, [[wr + 2, hr + 2], [-2, hr + 2]]])
    light = env.ambient + 0.4 * env.sun + (0.3 if env.headlights else 0)
    color = np.asarray(hood["color"]) * light
    cv2.fillPoly(layers.image, [np.round(poly * 8).astype(np.int32)],
                 tuple(float(c) for c in np.clip(color * PIXEL_SCALE, 0, 255)), cv2.LINE_AA, 3)
    band = np.vstack([pts + np.array([0.0, 1.0]), (pts + np.array([0.0, hr * hood["height"] * 0.35]))[::-1]])
    shine = np.clip((color + hood["shine"] * np.asarray(env.sky_horizon)) * PIXEL_SCALE, 0, 255)
    cv2.fillPoly(layers.image, [np.round(band * 8).astype(np.int32)], tuple(float(c) for c in shine), cv2.LINE_AA, 3)
    mask = np.zeros((hr, wr), np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    if "gloss" in hood:
        _gloss(layers.image, mask, top * scale, hood, color)
    layers.zbuf[mask > 0] = 0.0


def _gloss(image: np.ndarray, mask: np.ndarray, top: np.ndarray, hood: dict, color: np.ndarray) -> None:
    """A glossy bonnet (in place): a convex mirror of the scene above its edge, the road ahead (lane paint
    included) just below the edge, then the horizon and the sky further down, strongest near the edge
    (grazing view); a dash-cam mount or a wiper blade in dark plastic."""
    hr, wr = mask.shape
    edge = np.interp(np.arange(wr), np.linspace(0, wr - 1, len(top)), top).astype(np.float32)
    v, u = np.mgrid[0:hr, 0:wr].astype(np.float32)
    depth = np.maximum(v - edge[None, :], 0)
    span = max(float(hr - edge.min()), 1.0)
    squeeze = 0.9 * float(edge.min()) / span  # the bonnet's rows mirror nearly the whole image above it
    mirror = cv2.remap(image, u, np.clip(edge[None, :] - squeeze * depth - 1, 0, hr - 1), cv2.INTER_LINEAR)
    mirror = cv2.GaussianBlur(mirror, (0, 0), max(0.6, wr / 1000)).astype(np.float32)
    weight = hood["gloss"] * np.exp(-depth / (0.6 * span))[..., None]
    base = np.clip(color * PIXEL_SCALE, 0, 255).astype(np.float32)
    out = base * (1 - 0.5 * weight) + weight * mirror
    inside = mask > 0
    image[inside] = np.clip(out[inside], 0, 255).astype(np.uint8)
    plastic = (np.array([0.04, 0.04, 0.045]) * PIXEL_SCALE).tolist()
    if hood.get("mount"):
        cx, bw = hood["mount_x"] * wr, 0.05 * wr
        cv2.rectangle(image, (int(cx - bw / 2), int(hr - 0.5 * span)), (int(cx + bw / 2), hr), plastic, -1)
    if hood.get("wiper"):
        xs = np.arange(int(0.1 * wr), int(0.55 * wr))
        pts = np.stack([xs, edge[xs] - 0.004 * hr], 1)
        cv2.polylines(image, [np.round(pts).astype(np.int32)], False, plastic, max(2, int(0.01 * hr)), cv2.LINE_AA)


def _build_props(world: World, window: RoadWindow, ego: EgoState, pose: Pose) -> PropBuilder:
    scene, road = world.scene, world.road
    b = PropBuilder(scene, window, ego.s, ego.d, scene.env.sun_azimuth - pose.yaw,
                    (road.edge_left, road.edge_right), world.salt)
    sc = scene.scenery
    for side, kind in (("left", sc.left), ("right", sc.right)):
        if kind in ("barrier", "guardrail", "wall", "nj_barrier", "kerb"):
            b.barrier(side, kind)
    b.trees("left", sc.tree_density[0] * (0.3 if sc.left in ("barrier", "wall", "nj_barrier") else 1.0),
            sc.tree_offset)
    right_density = 0.9 if sc.right == "trees" else sc.tree_density[1]
    b.trees("right", right_density, (sc.tree_offset[0] * (0.5 if sc.right == "trees" else 1.0), sc.tree_offset[1]))
    if sc.poles:
        b.poles(*sc.poles)
    for s_b, length, clearance in sc.overpasses:
        b.overpass(s_b, length, clearance)
    for s_sign in world.sign_positions(ego.s):
        b.sign(s_sign)
    if sc.buildings:
        b.buildings("left")
        b.buildings("right")
    if scene.env.sun > 0:
        b.ego_shadow()
    for v in world.vehicles:
        b.vehicle(v)
    return b


def _render(config: SynthConfig, world: World, ego: EgoState, rng: np.random.Generator) -> SynthFrame:
    scene, road, env = world.scene, world.road, world.scene.env
    cam = ego.camera
    scale = config.render_scale
    cam_r = cam.scaled(scale) if scale != 1.0 else cam
    grid = camera_grid(cam_r)
    pose = Pose.on_road(road, ego.s, ego.d, ego.rel_yaw)
    window = RoadWindow(road, pose, ego.s - 6.0, ego.s + 450.0)
    props = _build_props(world, window, ego, pose)
    light = _ground_light(props, grid, cam_r)
    ground, cover, cls = shade_ground(grid, road, window, scene.surface, env, world.tex, light, world.salt)
    image = render_sky(grid, env, scene.scenery, pose.yaw, world.tex)
    below = image[grid.r0:]
    below[grid.valid] = ground[grid.valid]
    layers = Layers(np.clip(image * PIXEL_SCALE, 0, 255).astype(np.uint8),
                    np.full(image.shape[:2], np.inf, np.float32), np.zeros_like(image),
                    zstatic=np.full(image.shape[:2], np.inf, np.float32))
    draw_prims(layers, cam_r, props.prims, np.asarray(env.haze), env.visibility_m)
    if env.hood:
        _draw_hood(layers, config, env.hood, env, scale)
    out = _finish(config, layers, env, cam_r, pose, rng)
    lanes = lane_ground_truth(road.boundaries, window, ego.s, ego.d, cam, scene.label_distance,
                              _occlusion_test(layers.zbuf, scale), _hood_row(config, env.hood),
                              _occlusion_test(layers.zstatic, scale))
    cover_full, cls_full = _paint_label(grid, cover, cls, layers.zbuf)
    return SynthFrame(image=out, lanes=lanes, camera=cam, info=world.describe(ego),
                      hood_edge=hood_edge_points(config, env.hood), _cover=cover_full, _cls=cls_full)


def _ground_light(props: PropBuilder, grid, cam_r: CameraParams) -> GroundLight:
    """Shadow and occlusion maps of the road from the props' ground polygons."""
    rows = cam_r.height - grid.r0
    shadow = np.ones((rows, cam_r.width), np.float32)
    draw_ground_polys(shadow, grid.r0, cam_r, props.shadows, 0.0)
    leafy = np.ones_like(shadow)
    draw_ground_polys(leafy, grid.r0, cam_r, props.tree_shadows, 0.3)
    shadow = np.minimum(cv2.GaussianBlur(shadow, (0, 0), 0.8), cv2.GaussianBlur(leafy, (0, 0), 1.6))
    occlusion = np.ones_like(shadow)
    draw_ground_polys(occlusion, grid.r0, cam_r, props.occlusion, 0.3)
    return GroundLight(shadow, cv2.GaussianBlur(occlusion, (0, 0), 1.5), props.lamps)


def _paint_label(grid, cover: np.ndarray, cls: np.ndarray, zbuf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full-frame paint coverage and class at render size; nothing where an object hides the road."""
    cover_full = np.zeros(zbuf.shape, np.float32)
    cls_full = np.zeros(zbuf.shape, np.uint8)
    cover_full[grid.r0:] = np.where(grid.valid, cover, 0)
    cls_full[grid.r0:] = cls
    cover_full[np.isfinite(zbuf)] = 0.0
    return cover_full, cls_full


def _occlusion_test(zbuf: np.ndarray, scale: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    h, w = zbuf.shape

    def occluded(uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        u = np.clip(np.round((uv[:, 0] + 0.5) * scale - 0.5), 0, w - 1).astype(int)
        v = np.clip(np.round((uv[:, 1] + 0.5) * scale - 0.5), 0, h - 1).astype(int)
        return zbuf[v, u] < depth - 0.5
    return occluded


def _finish(config: SynthConfig, layers: Layers, env, cam_r: CameraParams, pose: Pose,
            rng: np.random.Generator) -> np.ndarray:
    scale = config.render_scale
    img = layers.image.astype(np.float32) * (1.0 / PIXEL_SCALE)
    effects.add_glow(img, layers.glow, layers.glow_points, env.wet)
    if env.glare:
        sd = sun_direction(env, pose.yaw)
        uv, ok = cam_r.project(np.array([[sd[0] * 1e4, sd[1] * 1e4, sd[2] * 1e4 + cam_r.height_m]]))
        if ok[0]:
            effects.add_sun_glare(img, (float(uv[0, 0]), float(uv[0, 1])), env.sun * 0.9, rng)
    if env.raindrops:
        effects.add_raindrops(img, env.raindrops, rng)
    out = effects.sensor_noise(effects.color_and_tone(img, env), env.noise_sigma / max(scale, 0.5), rng)
    if out.shape[:2] != (config.height, config.width):
        out = cv2.resize(out, (config.width, config.height), interpolation=cv2.INTER_LINEAR)
    kind, amount, angle = env.blur
    if kind != "none":
        out = effects.blur(out, kind, amount * config.width / 1280, angle)
    if env.sharpen > 0 and kind == "none":
        out = effects.sharpen(out, env.sharpen)
    if env.chroma_shift > 0:
        out = effects.chromatic_aberration(out, env.chroma_shift * config.width / 1280)
    if env.overlay_text:
        effects.overlay_text(out, rng)
    if env.jpeg_quality:
        out = effects.jpeg_roundtrip(out, env.jpeg_quality)
    return out


def describe_lanes(frame: SynthFrame) -> list[dict]:
    """JSON-able attributes and ground points of a frame's lanes (for camera_params.jsonl)."""
    return [{"type": lane.marking_type.name, "color": lane.color.name, "position": lane.position.name,
             "ground": np.round(lane.ground, 3).tolist(), "visible": lane.visible.astype(int).tolist(),
             "wear": round(lane.wear, 3)}
            for lane in frame.lanes]

