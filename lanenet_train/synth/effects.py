"""Camera and weather effects applied to a rendered frame: light bloom, sun glare, rain drops, vignetting,
white balance, exposure and tone curve, resizing, blur, chromatic aberration, sensor noise, a burnt-in
timestamp and JPEG compression."""
from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from lanenet_train.synth.scene import Environment


@lru_cache(maxsize=4)
def _vignette(h: int, w: int) -> np.ndarray:
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((u - w / 2) / (w / 2)) ** 2 + ((v - h / 2) / (w / 2)) ** 2
    return r2


@lru_cache(maxsize=32)
def tone_lut(gamma: float, contrast: float) -> np.ndarray:
    """8-bit tone curve: gamma, then an S-curve of the given contrast around mid grey."""
    x = np.linspace(0, 1, 256) ** gamma
    s = 0.5 + (x - 0.5) * contrast
    s = np.where(contrast > 1, s * 0.7 + 0.3 * (x * x * (3 - 2 * x)), s)
    return np.clip(np.round(s * 255), 0, 255).astype(np.uint8)


def add_glow(img: np.ndarray, glow: np.ndarray, points: list, wet: float) -> None:
    """Bloom around emitting lights, and their streaky reflections on a wet road (in place)."""
    if not points:
        return
    h, w = img.shape[:2]
    if wet > 0:
        for (u, v), color, strength, _ in points:
            length = int(h * 0.25 * wet)
            cv2.ellipse(glow, (int(u), int(v + length * 0.6)), (max(1, w // 300), length), 0, 0, 360,
                        tuple(float(c) * strength * 0.3 * wet for c in color), -1)
    img += cv2.GaussianBlur(glow, (0, 0), max(1.0, w / 400)) * 0.8
    small = cv2.resize(glow, (w // 4, h // 4), interpolation=cv2.INTER_AREA)  # the wide halo, at quarter size
    img += cv2.resize(cv2.GaussianBlur(small, (0, 0), max(0.5, w / 320)), (w, h), interpolation=cv2.INTER_LINEAR) * 0.6


def add_sun_glare(img: np.ndarray, sun_px: tuple[float, float], strength: float, rng: np.random.Generator) -> None:
    """Veiling glare, a bright halo and lens flare ghosts for a low sun (in place)."""
    h, w = img.shape[:2]
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt((u - sun_px[0]) ** 2 + (v - sun_px[1]) ** 2) / w
    img += (strength * (0.6 * np.exp(-r / 0.08) + 0.15 * np.exp(-r / 0.5)))[..., None] * \
        np.array([0.8, 0.92, 1.0], np.float32)
    cx, cy = w / 2, h / 2
    for t in rng.uniform(-1.2, 0.8, 4):
        gx, gy = cx + (cx - sun_px[0]) * t, cy + (cy - sun_px[1]) * t
        rad = int(w * rng.uniform(0.01, 0.05))
        ghost = np.zeros_like(img)
        cv2.circle(ghost, (int(gx), int(gy)), rad, tuple(rng.uniform(0.02, 0.08, 3) * strength), -1, cv2.LINE_AA)
        img += ghost


def add_raindrops(img: np.ndarray, count: int, rng: np.random.Generator) -> None:
    """Out-of-focus drops on the windscreen: blurred, slightly bright discs (in place)."""
    h, w = img.shape[:2]
    blurred = cv2.GaussianBlur(img, (0, 0), max(2.0, w / 120))
    mask = np.zeros((h, w), np.float32)
    for _ in range(count):
        r = int(w * rng.uniform(0.006, 0.03))
        cv2.ellipse(mask, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), (r, int(r * rng.uniform(0.8, 1.3))),
                    0, 0, 360, 1.0, -1, cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
    img *= 1 - mask
    img += mask * blurred


@lru_cache(maxsize=4)
def _vignette3(h: int, w: int, strength: float) -> np.ndarray:
    v = (1.0 - strength * _vignette(h, w) * 0.5).astype(np.float32)
    return cv2.merge([v, v, v])


def color_and_tone(img: np.ndarray, env: Environment) -> np.ndarray:
    """Vignetting, saturation, white balance and auto exposure in float, then the tone curve to uint8."""
    h, w = img.shape[:2]
    if env.vignetting > 0:
        img = cv2.multiply(img, _vignette3(h, w, round(env.vignetting, 2)))
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    img = cv2.addWeighted(img, env.saturation, cv2.merge([gray, gray, gray]), 1.0 - env.saturation, 0.0)
    mean = float(cv2.mean(gray)[0])
    target = (0.16 if env.time == "night" else 0.42) * env.exposure
    gain = float(np.clip(target / max(mean, 1e-3), 0.5, 3.0)) * 255.0
    wb = env.white_balance
    img = cv2.multiply(img, (wb[0] * gain, wb[1] * gain, wb[2] * gain, 0.0))
    out = cv2.convertScaleAbs(img)
    return cv2.LUT(out, tone_lut(round(env.gamma, 3), round(env.contrast, 3)))


def blur(img: np.ndarray, kind: str, amount: float, angle: float) -> np.ndarray:
    """Defocus (Gaussian) or motion blur of the given size in output pixels."""
    if kind == "gauss":
        return cv2.GaussianBlur(img, (0, 0), amount)
    if kind == "motion":
        k = int(max(3, amount)) | 1
        kernel = np.zeros((k, k), np.float32)
        c = k // 2
        dx, dy = math.cos(angle) * c, math.sin(angle) * c
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
        return cv2.filter2D(img, -1, kernel / kernel.sum())
    return img


def sharpen(img: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp masking, as a camera's image processor does (crisper edges with faint halos)."""
    soft = cv2.GaussianBlur(img, (0, 0), 1.2)
    return cv2.addWeighted(img, 1.0 + amount, soft, -amount, 0)


def chromatic_aberration(img: np.ndarray, shift: float) -> np.ndarray:
    """Scale the red and blue channels slightly about the centre (lateral colour)."""
    h, w = img.shape[:2]
    out = img.copy()
    for ch, sign in ((0, -1), (2, 1)):
        scale = 1 + sign * shift / (w / 2)
        m = np.array([[scale, 0, (1 - scale) * w / 2], [0, scale, (1 - scale) * h / 2]], np.float32)
        out[..., ch] = cv2.warpAffine(img[..., ch], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def sensor_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Luminance and weaker colour noise (added at render resolution, so resizing correlates it)."""
    noise = np.empty(img.shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(1, 2**31 - 1)))
    cv2.randn(noise, 0.0, sigma * 0.6)
    noise += noise[..., 1:2] * 1.2
    return cv2.add(img, noise, dtype=cv2.CV_8U)


def overlay_text(img: np.ndarray, rng: np.random.Generator) -> None:
    """A dash-cam's burnt-in date, time and speed (in place)."""
    h, w = img.shape[:2]
    text = (f"20{rng.integers(15, 25)}/{rng.integers(1, 13):02d}/{rng.integers(1, 29):02d} "
            f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}  "
            f"{rng.integers(40, 130)} km/h")
    scale = h / 720 * rng.uniform(0.6, 0.9)
    org = (int(w * rng.uniform(0.01, 0.4)), int(h * (0.97 if rng.random() < 0.6 else 0.05)))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(2, int(4 * scale)), cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), max(1, int(2 * scale)), cv2.LINE_AA)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG of the given quality (block artefacts of a cheap camera)."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img
