"""Shading of the road plane: asphalt or concrete, roadside, paint, wear, tar, light, wetness, haze.

Every ground pixel is mapped to road coordinates (s, d) once per frame; features are evaluated there
with a box filter as wide as the pixel's footprint on the road, so far markings and joints fade to their
average instead of flickering.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from lanenet_train.synth.arrows import arrow_cover
from lanenet_train.synth.camera import CameraParams
from lanenet_train.synth.road import Road, RoadWindow
from lanenet_train.synth.scene import Environment, Surface
from lanenet_train.synth.textures import RoadTextures, hash01, smoothstep


@dataclass
class CameraGrid:
    """Per-camera constants: where each render pixel meets the road, and the pixel's footprint there.

    Attributes:
        r0: first image row that holds ground pixels; the arrays below cover rows ``r0:``.
        X: forward ground distance (metres).
        Y: left ground offset (metres).
        valid: pixels whose ray hits the road plane.
        fp_lat: lateral footprint of a pixel on the road (metres).
        fp_lon: longitudinal footprint (metres).
        ray: (full height, width, 3) unit ray of each pixel in the vehicle frame (x fwd, y left, z up).
    """

    r0: int
    X: np.ndarray
    Y: np.ndarray
    valid: np.ndarray
    fp_lat: np.ndarray
    fp_lon: np.ndarray
    ray: np.ndarray
    _az: np.ndarray | None = None

    @property
    def ray_z(self) -> np.ndarray:
        """Upward component of each unit pixel ray (sine of its elevation)."""
        return self.ray[..., 2]

    @property
    def ray_az(self) -> np.ndarray:
        """Azimuth of each pixel ray in the vehicle frame (radians, + left), computed once."""
        if self._az is None:
            object.__setattr__(self, "_az", np.arctan2(self.ray[..., 1], self.ray[..., 0]).astype(np.float32))
        return self._az


@lru_cache(maxsize=4)
def camera_grid(cam: CameraParams) -> CameraGrid:
    """The :class:`CameraGrid` of a render camera (cached: a drive keeps its camera)."""
    rays = cam.pixel_rays()
    X, Y, valid = cam.ground_rays(rays)
    rows = np.nonzero(valid.any(axis=1))[0]
    r0 = int(rows[0]) if rows.size else cam.height - 1
    X, Y, valid = X[r0:], Y[r0:], valid[r0:]
    Xs = np.where(valid, X, 1e4).astype(np.float32)
    fp_lat = Xs / cam.fx
    fp_lon = np.maximum(Xs * Xs / (cam.fy * cam.height_m), fp_lat)
    a, b = rays
    s, c = np.float32(np.sin(cam.pitch_rad)), np.float32(np.cos(cam.pitch_rad))
    dx, dy, dz = c - b * s, -a, -b * c - s
    inv = 1.0 / np.sqrt(dx * dx + dy * dy + dz * dz)
    ray = cv2.merge([(dx * inv).astype(np.float32), (dy * inv).astype(np.float32), (dz * inv).astype(np.float32)])
    return CameraGrid(r0, Xs, Y, valid, fp_lat.astype(np.float32), fp_lon.astype(np.float32), ray)

@dataclass
class GroundLight:
    """Light falling on the road in this frame.

    Attributes:
        shadow: (rows, width) float32, 1 where the sun reaches the road, 0 in full shadow.
        occlusion: (rows, width) float32 ambient occlusion under vehicles (1 = none).
        lamps: ``(spacing, phase, lateral offsets)`` of street lamps lit at night, or None.
    """

    shadow: np.ndarray
    occlusion: np.ndarray
    lamps: tuple[float, float, tuple[float, ...]] | None = None


def footprints(s: np.ndarray, d: np.ndarray, grid: CameraGrid) -> tuple[np.ndarray, np.ndarray]:
    """Extent of each pixel on the road across (d) and along (s) the lanes, from the maps' differences.

    A pixel sees a range of d that depends on how a lane crosses it, not only on its width, so thin lines
    seen at a grazing angle are box-filtered correctly instead of breaking into dots.
    """
    def extent(m: np.ndarray) -> np.ndarray:
        du = np.abs(np.diff(m, axis=1))
        dv = np.abs(np.diff(m, axis=0))
        out = np.empty_like(m)
        out[:, :-1] = du
        out[:, -1] = du[:, -1]
        out[:-1] += dv
        out[-1] += dv[-1]
        return out
    return np.maximum(extent(d), grid.fp_lat), np.maximum(extent(s), grid.fp_lon)


def _box(lo: np.ndarray, hi: np.ndarray, a: float | np.ndarray, b: float | np.ndarray,
         fp: np.ndarray) -> np.ndarray:
    """Fraction of the footprint [lo, hi] (width fp) covered by the interval [a, b]."""
    return np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None) / fp


def _dash_cover(s: np.ndarray, fp: np.ndarray, dash: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Box-filtered coverage of a periodic dash pattern (dash then gap) over [s - fp/2, s + fp/2]."""
    def integral(x: np.ndarray) -> np.ndarray:
        return np.floor(x / period) * dash + np.minimum(np.mod(x, period), dash)
    return np.clip((integral(s + fp / 2) - integral(s - fp / 2)) / fp, 0.0, 1.0)


def _lane_geometry(road: Road, d: np.ndarray, surface: Surface, streaks: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel lane tone, wear (wheel tracks, oil drips down the lane centre) and lane index.

    Returns:
        ``(tone, wear factor, lane)``; lane counts from the left, -1 outside the lanes.
    """
    offs = np.array([b.offset for b in road.boundaries], np.float32)[::-1]
    k = np.searchsorted(offs, d)
    tone = np.concatenate([[surface.shoulder_tone], surface.lane_tone[::-1], [surface.shoulder_tone]])
    centres = np.concatenate([[-1e3], 0.5 * (offs[1:] + offs[:-1]), [1e3]]).astype(np.float32)
    dc = np.abs(d - np.take(centres, k))
    wear = 1.0 - surface.track_darkening * np.exp(-np.square((dc - 0.85) * (1.0 / 0.32)))
    if surface.oil > 0:
        wear -= surface.oil * np.exp(-np.square(dc * (1.0 / 0.3))) * (0.6 + 0.4 * streaks)
    n = len(offs) - 1
    lane = np.where((k >= 1) & (k <= n), n - k, -1)
    return np.take(tone.astype(np.float32), k), wear, lane


def _patches(s: np.ndarray, d: np.ndarray, fp_lat: np.ndarray, fp_lon: np.ndarray, road: Road,
             surface: Surface, salt: int) -> np.ndarray:
    """Multiplicative tone of repaired asphalt patches (1 outside patches)."""
    cell = np.floor(s * (1 / 30.0)).astype(np.int64)
    present = hash01(cell, salt) < surface.patch_density
    start = cell * 30.0 + hash01(cell, salt + 1) * 12
    length = 3 + hash01(cell, salt + 2) * 14
    width_road = road.edge_left - road.edge_right
    a = road.edge_right + hash01(cell, salt + 3) * width_road * 0.8
    b = a + 1.5 + hash01(cell, salt + 4) * 6
    cover = _box(s - fp_lon / 2, s + fp_lon / 2, start, start + length, fp_lon) * \
        _box(d - fp_lat / 2, d + fp_lat / 2, a, b, fp_lat)
    tone = 0.72 + 0.5 * hash01(cell, salt + 5)
    return np.where(present, 1.0 + cover * (tone - 1.0), 1.0).astype(np.float32)


def _crack_seals(s, d, fp_lat, fp_lon, road: Road) -> np.ndarray:
    """Coverage of tar-sealed cracks: wavy lines along the lanes and across them, placed per road cell."""
    seal = np.zeros_like(s)
    width = 0.035
    offs = np.array([b.offset for b in road.boundaries], np.float32)
    cell = np.floor(s * (1 / 25.0)).astype(np.int64)
    for k in range(3):  # longitudinal cracks beside boundaries, wandering
        base = np.take(offs, np.minimum((hash01(cell, 300 + k) * len(offs)).astype(np.int64), len(offs) - 1))
        curve = base + 0.25 + 0.6 * hash01(cell, 310 + k) + 0.12 * np.sin(s * 0.41 + 7 * k) + 0.05 * np.sin(s * 1.7)
        on = hash01(cell, 320 + k) < 0.5
        seal = np.maximum(seal, on * _box(d - fp_lat / 2, d + fp_lat / 2, curve - width, curve + width, fp_lat))
    tcell = np.floor(s * (1 / 9.0)).astype(np.int64)  # transverse cracks across part of the road
    pos = tcell * 9.0 + 9.0 * hash01(tcell, 330) + 0.15 * np.sin(d * 1.9 + tcell)
    lo = road.edge_right + (road.edge_left - road.edge_right) * 0.7 * hash01(tcell, 331)
    span = (d > lo) & (d < lo + 2.0 + 8.0 * hash01(tcell, 332)) & (hash01(tcell, 333) < 0.5)
    seal = np.maximum(seal, span * _box(s - fp_lon / 2, s + fp_lon / 2, pos - width, pos + width, fp_lon))
    return np.minimum(seal, 1.0) * np.clip(0.06 / fp_lat, 0.0, 1.0)


def _surface_marks(s, d, fp_lat, fp_lon, road: Road, surface: Surface, tex: RoadTextures) -> np.ndarray:
    """Darkening by tar snakes, longitudinal seams and concrete joints (1 = none)."""
    out = np.ones_like(s)
    if surface.tar_snakes > 0:
        out -= 0.4 * surface.tar_snakes * _crack_seals(s, d, fp_lat, fp_lon, road)
    if surface.seam_density > 0.3 or surface.concrete:
        offs = np.array([b.offset for b in road.boundaries], np.float32)
        keep = hash01(np.arange(len(offs)), 41) < (1.0 if surface.concrete else surface.seam_density - 0.3)
        seam_offs = np.sort(offs[keep] + 0.2)
        if seam_offs.size:
            j = np.clip(np.searchsorted(seam_offs, d), 1, max(len(seam_offs) - 1, 1))
            dist = np.minimum(np.abs(d - np.take(seam_offs, j % len(seam_offs))),
                              np.abs(d - np.take(seam_offs, j - 1)))
            out -= 0.3 * np.clip((0.01 - dist + fp_lat / 2) / fp_lat, 0, 1) * np.clip(0.025 / fp_lat, 0, 1)
    if surface.concrete:
        out -= 0.4 * (1.0 - _dash_cover(s + 0.01, fp_lon, np.float32(4.98), np.float32(5.0)))
    for frac, dash, tone in surface.ghosts:  # removed old lines: ground-off (dark) or faded paint (light)
        offs = np.array([b.offset for b in road.boundaries], np.float32)
        centre = float(offs[-1] + frac * (offs[0] - offs[-1]))
        cov = np.minimum(_box(d - fp_lat / 2, d + fp_lat / 2, centre - 0.1, centre + 0.1, fp_lat), 1.0)
        if dash:
            cov = cov * _dash_cover(s, fp_lon, np.float32(dash), np.float32(dash * 2.5))
        out += (tone - 1.0) * 0.8 * cov
    return out


def _rumble_strips(s, d, fp_lat, fp_lon, road: Road, tone: np.ndarray) -> None:
    """Milled grooves across the shoulders just outside the edge lines (in place)."""
    for b, sign in ((road.boundaries[0], 1.0), (road.boundaries[-1], -1.0)):
        lo, hi = sorted((b.offset + sign * 0.25, b.offset + sign * 0.65))
        band = np.nonzero((d > lo - 0.2) & (d < hi + 0.2))
        if band[0].size == 0:
            continue
        fl, fo = fp_lat[band], fp_lon[band]
        across = _box(d[band] - fl / 2, d[band] + fl / 2, lo, hi, fl)
        grooves = _dash_cover(s[band], fo, np.float32(0.18), np.float32(0.3))
        tone[band] *= 1.0 - 0.3 * np.minimum(across, 1.0) * grooves


def _paint(s, d, fp_lat, fp_lon, road: Road, tex: RoadTextures, cover_out: np.ndarray,
           cls_out: np.ndarray) -> tuple | None:
    """Stripe paint: fills the label coverage and class, returns ``(pixels, alpha, colours)`` to blend."""
    arr = road.arrays()
    if len(arr["offset"]) == 0:
        return None
    L = arr["offset"]
    j = np.searchsorted(L, d)
    j0, j1 = np.clip(j - 1, 0, len(L) - 1), np.clip(j, 0, len(L) - 1)
    pick = np.where(np.abs(d - L[j1]) < np.abs(d - L[j0]), j1, j0)
    near = np.abs(d - L[pick]) < arr["half_width"][pick] + fp_lat
    idx = np.nonzero(near)
    pk, ss, dd, fl, fo = pick[idx], s[idx], d[idx], fp_lat[idx], fp_lon[idx]
    delta, hw = dd - L[pk], arr["half_width"][pk]
    cov = np.minimum(_box(delta - fl / 2, delta + fl / 2, -hw, hw, fl), 1.0)
    dash, period = arr["dash"][pk], arr["period"][pk]
    dashed = dash > 0
    x = ss + arr["phase"][pk]
    cov = np.where(dashed, cov * _dash_cover(x, fo, np.maximum(dash, 1e-3), np.maximum(period, 1e-3)), cov)
    wear = arr["wear"][pk]
    noise = 0.5 * (tex.lookup(tex.mid, ss, dd, tex.MID_RES) + 1.0)
    keep = smoothstep(wear - 0.18, wear + 0.18, noise)
    far = np.clip(fo * 2.0, 0.0, 1.0)
    keep = keep * (1 - far) + (1 - wear) * far
    dash_id = np.floor(x / np.maximum(period, 1e-3)).astype(np.int64) + pk * 100003
    keep *= np.where(dashed, 0.75 + 0.25 * hash01(dash_id, 7), 1.0)
    alpha = (cov * keep).astype(np.float32)
    cover_out[idx] = cov
    cls_out[idx] = arr["train_id"][pk]
    return idx, alpha, arr["color"][pk]


def _arrows(s, d, lane, road: Road, surface: Surface, cover, cls, salt: int) -> tuple | None:
    """Direction arrows in the lanes: fills the label, returns ``(pixels, alpha, colours)`` to blend."""
    if surface.arrow_density <= 0:
        return None
    found = arrow_cover(s.ravel(), d.ravel(), road.lane_centres().astype(np.float32), lane.ravel(),
                        road.oncoming_lanes, surface.arrow_density, salt + 77)
    if found is None:
        return None
    idx, cov, ids = found
    idx = np.unravel_index(idx, s.shape)
    cover[idx] = np.maximum(cover[idx], cov)
    cls[idx] = np.where(cov >= 0.5, ids, cls[idx])
    alpha = (cov * (1.0 - 0.4 * surface.arrow_wear)).astype(np.float32)
    return idx, alpha, np.full((len(alpha), 3), 0.9, np.float32)


def _headlights(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    beam = np.exp(-np.square(Y / (X + 4.0) * (1 / 0.32)))
    return (beam * 1.6 / (1.0 + np.square(X * (1 / 22.0))) * np.clip(X * 0.3, 0, 1)).astype(np.float32)


def _lamps(s: np.ndarray, d: np.ndarray, lamps: tuple) -> np.ndarray:
    spacing, phase, laterals = lamps
    ds = np.mod(s - phase + spacing / 2, spacing) - spacing / 2
    out = np.zeros_like(s)
    for lat in laterals:
        out += np.exp(-(np.square(ds) + np.square(d - lat)) * (1 / (2 * 8.0**2)))
    return 0.9 * out


def shade_ground(grid: CameraGrid, road: Road, window: RoadWindow, surface: Surface, env: Environment,
                 tex: RoadTextures, light: GroundLight, salt: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour of every ground pixel, and the paint label.

    Args:
        grid: the render camera's grid.
        road: the road.
        window: the road ahead in the vehicle frame.
        surface: surface appearance.
        env: lighting and weather.
        tex: noise textures.
        light: shadows and lamps of this frame.
        salt: seed of hashed road features.

    Returns:
        ``(color, cover, cls)``: (rows, width, 3) float32 BGR display colour with haze, the (rows, width)
        float32 geometric paint coverage and uint8 Apollo trainId of the paint.
    """
    s, d, inside = window.to_road(grid.X, grid.Y)
    fl, fo = footprints(s, d, grid)
    n_lat = tex.lookup(tex.coarse, s, d, tex.COARSE_RES)
    n_mid = tex.lookup(tex.mid, s + 37.0, d + 11.0, tex.MID_RES)
    w_mid = np.clip(1.0 - fo * (1 / 0.8), 0.0, 1.0)
    tone, wear, lane = _lane_geometry(road, d, surface, n_mid)
    grain = 1.0 + 0.12 * n_lat + 0.08 * n_mid * w_mid
    near = fl < 0.03
    if near.any():
        grain[near] += 0.13 * tex.lookup(tex.fine, s[near], d[near], tex.FINE_RES) * (1.0 - fl[near] * (1 / 0.03))
    road_tone = tone * wear * grain * _patches(s, d, fl, fo, road, surface, salt) * \
        _surface_marks(s, d, fl, fo, road, surface, tex)
    if surface.rumble:
        _rumble_strips(s, d, fl, fo, road, road_tone)
    on_road = np.clip(np.minimum(road.edge_left - d, d - road.edge_right) / fl + 0.5, 0, 1) * inside
    albedo = _albedo(s, d, road_tone, on_road, n_lat, n_mid * w_mid, road, surface, tex)
    cover = np.zeros(s.shape, np.float32)
    cls = np.zeros(s.shape, np.uint8)
    paint = np.zeros_like(s)
    for layer in (_paint(s, d, fl, fo, road, tex, cover, cls), _arrows(s, d, lane, road, surface, cover, cls, salt)):
        if layer is not None:
            idx, alpha, colors = layer
            for c in range(3):
                albedo[c][idx] += alpha * (colors[:, c] - albedo[c][idx])
            paint[idx] = np.maximum(paint[idx], alpha)
    paint *= on_road
    cover *= on_road
    return _light(albedo, grid, s, d, on_road, paint, env, light), cover, cls


def _albedo(s, d, road_tone, on_road, n_lat, n_mid, road: Road, surface: Surface, tex: RoadTextures) -> list:
    """Reflectance per channel (B, G, R planes): asphalt on the road, grass/dirt/gravel beside it."""
    n_side = tex.lookup(tex.coarse, s * 0.37 + 91.0, d * 0.61, tex.COARSE_RES)
    mix = smoothstep(-0.3, 0.4, n_side)
    verge = np.clip(np.minimum(d - road.edge_left, road.edge_right - d) * (1 / 0.8), 0, 1)
    median = (d > road.edge_left) if road.oncoming_lanes == 0 else None
    road_w = road_tone * on_road
    side_w = (1.0 + 0.3 * n_lat + 0.22 * n_mid) * (1 - on_road)
    planes = []
    for c in range(3):
        a, b = np.float32(surface.roadside[c]), np.float32(surface.roadside2[c])
        side = a + mix * (b - a)
        if median is not None:
            side = np.where(median, np.float32(surface.median[c]), side)
        side = surface.verge[c] + verge * (side - np.float32(surface.verge[c]))
        planes.append(np.float32(surface.asphalt[c]) * road_w + side * side_w)
    return planes


def _light(albedo: list, grid: CameraGrid, s, d, on_road, paint, env: Environment, light: GroundLight
           ) -> np.ndarray:
    """Sun, sky, headlights and street lamps on the albedo, then sheen and haze; (rows, width, 3) BGR."""
    X = grid.X
    dry = np.float32(1.0 - 0.32 * env.wet)
    sun_gain = env.sun * (0.45 + 0.55 * np.sin(env.sun_elevation))
    lit = light.occlusion * (env.ambient + sun_gain * light.shadow) * dry
    warm = light.occlusion * (sun_gain * 0.08) * light.shadow * dry if sun_gain > 0 else None
    extra = None
    if env.headlights:
        extra = _headlights(X, grid.Y) * (1.0 + 2.0 * paint)
    if env.streetlights and light.lamps:
        extra = _lamps(s, d, light.lamps) + (0 if extra is None else extra)
    if extra is not None:
        extra *= light.occlusion * dry
    fog = 1.0 - np.exp(-X * (1.0 / env.visibility_m))
    keep = 1.0 - fog
    sheen = 0.55 * env.wet + env.sheen * (1 - env.wet)
    gloss = None
    if sheen:
        far = np.clip((X - 4.0) * (1 / 110.0), 0, 1)
        gloss = far * np.sqrt(far) * (sheen * on_road) * (1 - paint) * keep
    planes = []
    for c in range(3):
        L = lit * np.float32(env.ambient_tint[c])
        if warm is not None:
            L += warm
        if extra is not None:
            L += extra * np.float32((0.8, 0.9, 1.0)[c])
        p = albedo[c] * L * keep + fog * np.float32(env.haze[c])
        if gloss is not None:
            p += gloss * np.float32(env.sky_horizon[c])
        planes.append(p.astype(np.float32))
    return cv2.merge(planes)
