"""Things standing on or above the road, as 3D polygons and discs drawn back to front.

A :class:`Prim` is a planar polygon (or a disc seen face-on) in the vehicle frame with a lit colour.
Drawing clips it at the camera's near plane, projects it through the lens, fills it anti-aliased, and
records its depth in a z-buffer that tells which ground-truth lane points are hidden.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from lanenet_train.synth.camera import CameraParams

NEAR_M = 0.4
SHIFT = 3
PIXEL_SCALE = 200.0  # display value 1.0 is stored as 200 in the 8-bit scene buffer (headroom for highlights)
_ONE = 1 << SHIFT


@dataclass
class Prim:
    """One drawable: polygon (``pts`` (K, 3)) or disc (``pts`` (1, 3) centre, ``radius`` metres).

    Attributes:
        depth: sort key, forward distance in metres (drawn far to near).
        pts: vertices in the vehicle frame.
        color: lit BGR colour in [0, 1], before haze.
        radius: (horizontal, vertical) radii of a disc; (0, 0) for a polygon.
        glow: strength of light it emits (night lamps), 0 for none.
        occludes: whether it hides lane points behind it.
        static: part of the scenery (barriers, walls, trees) rather than traffic: lanes are not labelled
            beyond where scenery hides them, while they are labelled through vehicles.
        order: tie-break so parts of one object draw in sequence.
    """

    depth: float
    pts: np.ndarray
    color: np.ndarray
    radius: tuple[float, float] = (0.0, 0.0)
    glow: float = 0.0
    occludes: bool = True
    static: bool = True
    order: int = 0


@dataclass
class Layers:
    """Render-resolution buffers the objects are drawn into."""

    image: np.ndarray
    zbuf: np.ndarray
    glow: np.ndarray
    zstatic: np.ndarray | None = None
    glow_points: list = field(default_factory=list)


def clip_near(cam_pts: np.ndarray, near: float = NEAR_M) -> np.ndarray:
    """Sutherland-Hodgman clip of a camera-frame polygon against the plane z = ``near``."""
    out = []
    n = len(cam_pts)
    for i in range(n):
        a, b = cam_pts[i], cam_pts[(i + 1) % n]
        a_in, b_in = a[2] >= near, b[2] >= near
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if out else np.zeros((0, 3))


def subdivide(poly: np.ndarray, pieces: int) -> np.ndarray:
    """Split every edge of a closed polygon into ``pieces`` segments (lens distortion bends edges)."""
    if pieces <= 1:
        return poly
    nxt = np.roll(poly, -1, axis=0)
    t = np.arange(pieces)[None, :, None] / pieces
    return (poly[:, None, :] + t * (nxt - poly)[:, None, :]).reshape(-1, 3)


def polygon_pixels(cam: CameraParams, pts: np.ndarray) -> np.ndarray | None:
    """Vehicle-frame polygon to fixed-point pixel vertices for cv2 (shift ``SHIFT``), or None if hidden."""
    cp = clip_near(cam.vehicle_to_camera(pts))
    if len(cp) < 3:
        return None
    if cam.k1 or cam.k2:
        span = float(np.ptp(cp, axis=0).max()) / max(float(cp[:, 2].min()), 1.0)
        cp = subdivide(cp, int(np.clip(span * 8, 1, 24)))
    uv = cam.camera_to_pixels(cp)
    lim = 4 * (cam.width + cam.height)
    uv = np.clip(uv, -lim, lim)
    return np.round(uv * _ONE).astype(np.int32)


def _project_all(cam: CameraParams, prims: list[Prim]) -> list[np.ndarray | None]:
    """Fixed-point pixel polygons of every polygon prim, transformed in one batch.

    Polygons wholly in front of the near plane and small enough that the lens does not bend their edges
    are projected together; the rest go through :func:`polygon_pixels` (clipping, subdivision).
    """
    polys = [i for i, p in enumerate(prims) if p.radius[0] <= 0]
    out: list[np.ndarray | None] = [None] * len(prims)
    if not polys:
        return out
    sizes = [len(prims[i].pts) for i in polys]
    cam_pts = cam.vehicle_to_camera(np.concatenate([prims[i].pts for i in polys]))
    uv = cam.camera_to_pixels(cam_pts)
    lens = bool(cam.k1 or cam.k2)
    start = 0
    for i, n in zip(polys, sizes, strict=True):
        cp = cam_pts[start:start + n]
        z_min = cp[:, 2].min()
        if z_min < NEAR_M or (lens and np.ptp(cp, axis=0).max() > 0.125 * max(z_min, 1.0)):
            out[i] = polygon_pixels(cam, prims[i].pts)
        else:
            out[i] = np.round(uv[start:start + n] * _ONE).astype(np.int32)
        start += n
    return out


def draw_prims(layers: Layers, cam: CameraParams, prims: list[Prim], haze: np.ndarray,
               visibility: float) -> None:
    """Draw ``prims`` far to near into the image (uint8 BGR), z-buffer and glow layer."""
    prims = sorted(prims, key=lambda q: (-q.depth, q.order))
    pixels = _project_all(cam, prims)
    haze = np.asarray(haze, float)
    for p, px in zip(prims, pixels, strict=True):
        f = 1.0 - np.exp(-max(p.depth, 0.0) / visibility)
        color = np.clip((p.color * (1 - f) + haze * f) * PIXEL_SCALE, 0, 255)
        bgr = (float(color[0]), float(color[1]), float(color[2]))
        if p.radius[0] > 0:
            _draw_disc(layers, cam, p, bgr)
            continue
        if px is None:
            continue
        cv2.fillPoly(layers.image, [px], bgr, cv2.LINE_AA, SHIFT)
        if p.occludes:
            cv2.fillPoly(layers.zbuf, [px], float(p.depth), cv2.LINE_8, SHIFT)
            if p.static and layers.zstatic is not None:
                cv2.fillPoly(layers.zstatic, [px], float(p.depth), cv2.LINE_8, SHIFT)
        if p.glow > 0:
            cv2.fillPoly(layers.glow, [px], tuple(c * p.glow for c in p.color), cv2.LINE_8, SHIFT)
            centre = px.mean(axis=0) / _ONE
            layers.glow_points.append((centre, p.color, p.glow, p.depth))


def _draw_disc(layers: Layers, cam: CameraParams, p: Prim, bgr: tuple) -> None:
    c = cam.vehicle_to_camera(p.pts[:1])[0]
    if c[2] < NEAR_M:
        return
    uv = cam.camera_to_pixels(c[None])[0]
    if not (-cam.width < uv[0] < 2 * cam.width and -cam.height < uv[1] < 2 * cam.height):
        return
    axes = (max(1, round(cam.fx * p.radius[0] / c[2] * _ONE)), max(1, round(cam.fy * p.radius[1] / c[2] * _ONE)))
    centre = (round(uv[0] * _ONE), round(uv[1] * _ONE))
    cv2.ellipse(layers.image, centre, axes, 0, 0, 360, bgr, -1, cv2.LINE_AA, SHIFT)
    if p.occludes:
        cv2.ellipse(layers.zbuf, centre, axes, 0, 0, 360, float(p.depth), -1, cv2.LINE_8, SHIFT)
        if p.static and layers.zstatic is not None:
            cv2.ellipse(layers.zstatic, centre, axes, 0, 0, 360, float(p.depth), -1, cv2.LINE_8, SHIFT)
    if p.glow > 0:
        cv2.ellipse(layers.glow, centre, axes, 0, 0, 360, tuple(c * p.glow for c in p.color), -1,
                    cv2.LINE_8, SHIFT)
        layers.glow_points.append((uv, p.color, p.glow, float(c[2])))


def draw_ground_polys(target: np.ndarray, row0: int, cam: CameraParams, polys: list[np.ndarray],
                      value: float) -> None:
    """Fill ground-plane polygons ((K, 2) vehicle-frame metres) into a mask covering rows ``row0:``."""
    for poly in polys:
        pts = np.concatenate([poly, np.zeros((len(poly), 1))], axis=1)
        px = polygon_pixels(cam, pts)
        if px is None:
            continue
        px[:, 1] -= row0 * _ONE
        cv2.fillPoly(target, [px], value, cv2.LINE_AA if target.dtype == np.uint8 else cv2.LINE_8, SHIFT)


def face_light(normal: np.ndarray, sun_dir: np.ndarray, sun: float, ambient: float) -> float:
    """Light on a surface with unit ``normal`` (vehicle frame) from the sun and the sky."""
    return ambient * (0.75 + 0.25 * normal[2]) + sun * max(0.0, float(normal @ sun_dir))


def facing_normal(pts: np.ndarray, camera_pos: np.ndarray) -> np.ndarray:
    """Unit normal of a polygon, oriented towards the camera."""
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = pts[0].tolist(), pts[1].tolist(), pts[2].tolist()
    ax, ay, az, bx, by, bz = x1 - x0, y1 - y0, z1 - z0, x2 - x0, y2 - y0, z2 - z0
    nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
    if norm < 1e-9:
        return np.array([0.0, 0.0, 1.0])
    cx, cy, cz = camera_pos.tolist()
    sign = 1.0 if nx * (cx - x0) + ny * (cy - y0) + nz * (cz - z0) >= 0 else -1.0
    return np.array([nx, ny, nz]) * (sign / norm)
