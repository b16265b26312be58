"""Sky, sun, clouds and the far landscape (hills, tree lines), drawn per pixel from each pixel's ray."""
from __future__ import annotations

import math

import numpy as np

from lanenet_train.synth.ground import CameraGrid
from lanenet_train.synth.scene import Environment, Scenery
from lanenet_train.synth.textures import RoadTextures, smoothstep


def _profile(az: np.ndarray, salt: int, freqs: tuple[int, ...]) -> np.ndarray:
    """A periodic ridge profile in [0, 1] over world azimuth (same hills whichever way one turns)."""
    rng = np.random.default_rng(salt)
    out = np.zeros_like(az)
    for f in freqs:
        out += rng.uniform(0.3, 1.0) / math.sqrt(f) * np.sin(f * az + rng.uniform(0, 2 * math.pi))
    return np.clip(0.5 + 0.5 * out / len(freqs) * 2.0, 0.0, 1.0)


def sun_direction(env: Environment, yaw: float) -> np.ndarray:
    """Unit vector towards the sun in the vehicle frame."""
    az, el = env.sun_azimuth - yaw, env.sun_elevation
    return np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])


def _ridge_band(ray: np.ndarray, max_angle: float) -> tuple[int, int]:
    """Rows that may hold landscape below an elevation of ``max_angle`` radians."""
    z = ray[..., 2]
    rows = np.nonzero(((z > -0.05) & (z < np.sin(max_angle) + 0.01)).any(axis=1))[0]
    return (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)


def _landscape(sky: np.ndarray, rays: np.ndarray, yaw: float, max_angle: float,
               ridge_fn, color: np.ndarray) -> None:
    r0, r1 = _ridge_band(rays, max_angle)
    if r1 <= r0:
        return
    ray = rays[r0:r1]
    az = np.arctan2(ray[..., 1], ray[..., 0]) + np.float32(yaw)
    mask = (ray[..., 2] < ridge_fn(az)) & (ray[..., 2] > -0.05)
    sky[r0:r1][mask] = color


def render_sky(grid: CameraGrid, env: Environment, scenery: Scenery, yaw: float,
               tex: RoadTextures) -> np.ndarray:
    """The background of a frame: sky gradient, clouds, sun glow, hills and a tree line.

    Args:
        grid: the render camera's grid (pixel rays).
        env: lighting and weather.
        scenery: far landscape options.
        yaw: vehicle heading in the world (radians), so the landscape turns with the road.
        tex: noise textures (clouds).

    Returns:
        (height, width, 3) float32 BGR display colour.
    """
    full = grid.ray.shape[:2]
    covered = np.zeros(full, bool)
    covered[grid.r0:] = grid.valid
    open_rows = np.nonzero(~covered.all(axis=1))[0]
    r_end = int(open_rows[-1]) + 1 if open_rows.size else 0
    sky = np.zeros((*full, 3), np.float32)
    if r_end:
        sky[:r_end] = _sky_rows(grid, env, scenery, yaw, tex, r_end)
    return sky


def _sky_rows(grid: CameraGrid, env: Environment, scenery: Scenery, yaw: float, tex: RoadTextures,
              r_end: int) -> np.ndarray:
    ray = grid.ray[:r_end]
    z = ray[..., 2]
    top, horizon = np.asarray(env.sky_top, np.float32), np.asarray(env.sky_horizon, np.float32)
    t = np.clip(z * (1 / 0.5), 0.0, 1.0) ** 0.6
    sky = horizon + t[..., None] * (top - horizon)
    if env.clouds > 0.02:
        zc = np.maximum(z, 0.02)
        cx, cy = ray[..., 0] / zc, ray[..., 1] / zc
        c, s = np.float32(np.cos(yaw)), np.float32(np.sin(yaw))
        n = tex.lookup(tex.coarse, (c * cx - s * cy) * 12.0, (s * cx + c * cy) * 3.0, tex.COARSE_RES)
        amount = smoothstep(0.05, 0.55, n) * env.clouds * np.clip(z * 10, 0, 1)
        cloud = horizon * 0.55 + 0.5 if env.time != "night" else horizon
        sky += amount[..., None] * (np.minimum(cloud, 1.0) - sky) * 0.85
    if env.sun > 0 and env.time != "night":
        sd = sun_direction(env, yaw).astype(np.float32)
        cosang = ray[..., 0] * sd[0] + ray[..., 1] * sd[1] + ray[..., 2] * sd[2]
        ang = np.sqrt(np.maximum(2.0 * (1.0 - cosang), 0.0))
        glow = env.sun * (0.35 * np.exp(-ang * (1 / 0.25)) + 3.0 * np.exp(-np.square(ang * (1 / 0.012))))
        sky += glow[..., None] * np.asarray(env.sun_tint, np.float32)
    haze = np.asarray(env.haze, np.float32)
    if scenery.hills is not None:
        amp_deg, salt, color = scenery.hills
        amp = np.radians(amp_deg)
        mix = 0.45 + 0.5 * (1 - math.exp(-1500.0 / env.visibility_m * 0.3))
        c = np.asarray(color, np.float32) * (env.ambient + 0.5 * env.sun) * (1 - mix) + haze * mix
        _landscape(sky, ray, yaw, amp, lambda az: amp * _profile(az, int(salt) + 1, (2, 3, 5, 9, 17)), c)
    if scenery.treeline is not None:
        mix = 1 - math.exp(-250.0 / env.visibility_m)
        c = np.asarray(scenery.treeline, np.float32) * (env.ambient + 0.6 * env.sun) * (1 - mix) + haze * mix
        _landscape(sky, ray, yaw, np.radians(1.35),
                   lambda az: np.radians(0.25 + 1.1 * _profile(az, scenery.salt, (7, 13, 29, 61, 97))), c)
    return sky
