"""Random scene description: camera, road layout and markings, surface, lighting, weather, scenery.

Everything random about a frame (or a whole drive) is drawn here from one ``numpy`` generator, so a
seed fixes the scene. Colours are BGR in [0, 1] (display values, not linear light).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from lanenet_ros.lanes import MarkingColor, MarkingType
from lanenet_train.synth.camera import CameraParams
from lanenet_train.synth.config import SynthConfig

Color = tuple[float, float, float]


def rgb(r: float, g: float, b: float) -> Color:
    """A BGR colour tuple from RGB components in [0, 1]."""
    return (float(b), float(g), float(r))


def jitter(rng: np.random.Generator, color: Color, amount: float) -> Color:
    """``color`` with every channel scaled by an independent factor in [1 - amount, 1 + amount]."""
    return tuple(float(np.clip(c * rng.uniform(1 - amount, 1 + amount), 0, 1)) for c in color)


@dataclass
class Environment:
    """Lighting, weather and camera response for a frame or a drive."""

    time: str
    weather: str
    sun_azimuth: float
    sun_elevation: float
    sun: float
    ambient: float
    sun_tint: Color
    ambient_tint: Color
    sky_top: Color
    sky_horizon: Color
    haze: Color
    visibility_m: float
    wet: float
    clouds: float
    headlights: bool
    streetlights: bool
    glare: bool
    exposure: float
    gamma: float
    contrast: float
    saturation: float
    white_balance: Color
    noise_sigma: float
    blur: tuple[str, float, float]
    jpeg_quality: int
    vignetting: float
    chroma_shift: float
    hood: dict | None
    overlay_text: bool
    raindrops: int
    sheen: float = 0.0
    sharpen: float = 0.0


@dataclass
class Surface:
    """Road surface appearance."""

    asphalt: Color
    concrete: bool
    lane_tone: np.ndarray
    track_darkening: float
    patch_density: float
    tar_snakes: float
    seam_density: float
    shoulder_tone: float
    roadside: Color
    roadside_kind: str
    median: Color
    roadside2: Color = (0.4, 0.5, 0.5)
    verge: Color = (0.45, 0.48, 0.5)
    oil: float = 0.0
    rumble: bool = False
    arrow_density: float = 0.0
    arrow_wear: float = 0.0
    ghosts: tuple[tuple[float, float, float], ...] = ()  # (lane fraction, dash length or 0, tone) of old lines


@dataclass
class Vehicle:
    """Another road user, as a box following the road."""

    s: float
    d: float
    length: float
    width: float
    height: float
    kind: str
    color: Color
    oncoming: bool
    speed: float


@dataclass
class Scenery:
    """What stands beside and above the road."""

    left: str
    right: str
    tree_density: tuple[float, float]
    tree_offset: tuple[float, float]
    poles: tuple[str, float] | None
    overpasses: list[tuple[float, float, float]]
    hills: tuple[float, float, Color] | None
    treeline: Color | None
    buildings: bool
    salt: int = 0
    tree_color: Color = (0.12, 0.27, 0.17)
    conifer_share: float = 0.0


@dataclass
class Scene:
    """Everything fixed about a frame or a drive, apart from the ego pose and time."""

    camera: CameraParams
    env: Environment
    surface: Surface
    scenery: Scenery
    vehicles: list[Vehicle] = field(default_factory=list)
    ego_lane: int = 0
    label_distance: float = 120.0
    style: str = "us"


def sample_camera(cfg: SynthConfig, rng: np.random.Generator) -> CameraParams:
    """Draw intrinsics, height, pitch and distortion within the configured ranges."""
    w, h = cfg.width, cfg.height
    fx = w * rng.uniform(*cfg.focal_range)
    fy = fx * rng.uniform(0.98, 1.02)
    cx = (w - 1) / 2 + rng.uniform(-1, 1) * cfg.principal_jitter * w
    cy = (h - 1) / 2 + rng.uniform(-1, 1) * cfg.principal_jitter * h
    pitch = math.radians(rng.uniform(*cfg.pitch_deg))
    lo, hi = cfg.horizon_frac
    horizon = np.clip(cy - fy * math.tan(pitch), lo * h, hi * h)
    pitch = math.atan((cy - horizon) / fy)
    k1 = k2 = 0.0
    if rng.random() < cfg.distortion_prob:
        k1, k2 = rng.uniform(*cfg.k1_range), rng.uniform(*cfg.k2_range)
    cam = CameraParams(fx=fx, fy=fy, cx=cx, cy=cy, height_m=rng.uniform(*cfg.camera_height_m),
                       pitch_rad=pitch, k1=k1, k2=k2, width=w, height=h)
    while not cam.lens_is_tame():  # a wide lens with strong k1 folds over before the corners
        cam = replace(cam, k1=cam.k1 * 0.7, k2=cam.k2 * 0.7)
    return cam


def _sky(rng: np.random.Generator, time: str, weather: str) -> tuple[Color, Color]:
    if time == "night":
        glow = rng.uniform(0.03, 0.14)
        return rgb(0.01, 0.012, 0.03), rgb(glow * 1.3, glow, glow * 0.8)
    if weather in ("overcast", "rain", "fog"):
        g = rng.uniform(0.55, 0.92)
        blue = rng.uniform(0.0, 0.08)
        return rgb(g * (1 - blue), g * (1 - blue / 2), g), rgb(g, g, g * (1 + blue / 3))
    if time == "dusk":
        return rgb(0.2, 0.25, 0.45), jitter(rng, rgb(0.98, 0.65, 0.38), 0.1)
    return (jitter(rng, rgb(0.3, 0.5, 0.86), 0.15), jitter(rng, rgb(0.8, 0.87, 0.95), 0.05))


def _white_balance(rng: np.random.Generator) -> Color:
    """Per-channel gains of the camera's white balance: warm or cool, rarely green or magenta."""
    temp = rng.normal(0.0, 0.035)
    tint = rng.normal(0.0, 0.012)
    return (1.0 - temp, 1.0 + tint, 1.0 + temp)


def sample_environment(cfg: SynthConfig, rng: np.random.Generator) -> Environment:
    """Draw time of day, weather, light and the camera's response."""
    u = rng.random()
    time = "night" if u < cfg.night_prob else "dusk" if u < cfg.night_prob + cfg.dusk_prob else "day"
    u = rng.random()
    weather = ("rain" if u < cfg.rain_prob else "fog" if u < cfg.rain_prob + cfg.fog_prob
               else "overcast" if u < cfg.rain_prob + cfg.fog_prob + cfg.overcast_prob else "clear")
    return Environment(time=time, weather=weather, **_lighting(cfg, rng, time, weather),
                       **_camera_response(cfg, rng, time, weather))


def _lighting(cfg: SynthConfig, rng: np.random.Generator, time: str, weather: str) -> dict:
    """Sun, sky light, sky colours, haze and wetness for a time of day and weather."""
    sky_top, sky_horizon = _sky(rng, time, weather)
    clear = weather == "clear"
    sun = (rng.uniform(0.55, 1.0) if clear else rng.uniform(0.0, 0.2)) * (0.0 if time == "night" else 1.0)
    ambient = {"day": rng.uniform(0.35, 0.55), "dusk": rng.uniform(0.25, 0.4), "night": rng.uniform(0.02, 0.06)}[time]
    if not clear and time != "night":
        ambient = rng.uniform(0.6, 0.9)
    elevation = math.radians(rng.uniform(3, 12) if time == "dusk" else rng.uniform(12, 70))
    glare = clear and time != "night" and rng.random() < cfg.glare_prob
    if glare:
        elevation = math.radians(rng.uniform(2, 14))
    visibility = {"clear": rng.uniform(700, 4000), "overcast": rng.uniform(300, 1500),
                  "rain": rng.uniform(120, 600), "fog": rng.uniform(35, 140)}[weather]
    return dict(
        sun_azimuth=rng.uniform(-math.pi, math.pi), sun_elevation=elevation, sun=sun, ambient=ambient,
        sun_tint=rgb(1.0, 0.8, 0.6) if time == "dusk" else rgb(1.0, 0.97, 0.92),
        ambient_tint=jitter(rng, rgb(0.92, 0.96, 1.05), 0.04), sky_top=sky_top, sky_horizon=sky_horizon,
        haze=sky_horizon if time != "night" else tuple(c * 0.6 for c in sky_horizon), visibility_m=visibility,
        wet=rng.uniform(0.5, 1.0) if weather == "rain" else 0.0,
        clouds=rng.uniform(0, 1) if clear else rng.uniform(0, 0.4), glare=glare,
        headlights=time == "night" or (time == "dusk" and weather != "clear" and rng.random() < 0.5),
        streetlights=time == "night" and rng.random() < 0.5,
        sheen=rng.uniform(0.03, 0.3) if time != "night" else rng.uniform(0.0, 0.05))


def _camera_response(cfg: SynthConfig, rng: np.random.Generator, time: str, weather: str) -> dict:
    """Exposure, colour, noise, blur, compression and what sits in front of the lens."""
    blur = ("none", 0.0, 0.0)
    if rng.random() < cfg.blur_prob:
        blur = ("gauss", rng.uniform(0.5, 1.6), 0.0) if rng.random() < 0.6 else \
            ("motion", rng.uniform(3, 11), rng.normal(math.pi / 2, 0.5))
    hood = None
    if rng.random() < cfg.hood_prob:
        hood = {"height": rng.uniform(0.04, 0.13), "bulge": rng.uniform(0.0, 0.05),
                "color": jitter(rng, rgb(*[rng.choice([0.05, 0.15, 0.5, 0.85])] * 3), 0.2),
                "shine": rng.uniform(0.05, 0.3)}
        if cfg.real_hood_prob > 0 and rng.random() < cfg.real_hood_prob:
            hood.update(_real_hood(rng))
    out = dict(
        exposure=float(np.exp(rng.normal(0.0, 0.2))), gamma=rng.uniform(0.85, 1.15),
        contrast=rng.uniform(0.85, 1.2), saturation=rng.uniform(0.55, 1.2), white_balance=_white_balance(rng),
        noise_sigma=rng.uniform(4, 10) if time == "night" else rng.uniform(0.8, 4.0), blur=blur,
        jpeg_quality=int(rng.uniform(25, 75)) if rng.random() < cfg.jpeg_prob else 0,
        vignetting=rng.uniform(0, 0.4), chroma_shift=rng.uniform(0, 1.5) if rng.random() < 0.3 else 0.0,
        hood=hood, overlay_text=rng.random() < cfg.overlay_text_prob,
        raindrops=int(rng.integers(5, 40)) if weather == "rain" and rng.random() < 0.7 else 0,
        sharpen=rng.uniform(0.3, 1.2) if rng.random() < 0.5 else 0.0)
    if cfg.low_end_camera_prob > 0 and rng.random() < cfg.low_end_camera_prob:
        out.update(noise_sigma=rng.uniform(8, 20), jpeg_quality=int(rng.uniform(10, 30)), gamma=rng.uniform(1.2, 2.0))
    return out


HOOD_PAINTS = [rgb(0.03, 0.03, 0.035), rgb(0.08, 0.08, 0.09), rgb(0.25, 0.26, 0.28), rgb(0.45, 0.05, 0.05),
               rgb(0.05, 0.1, 0.3), rgb(0.55, 0.56, 0.58), rgb(0.85, 0.85, 0.84), rgb(0.1, 0.2, 0.12)]


def _real_hood(rng: np.random.Generator) -> dict:
    """A real car's bonnet: mostly dark or coloured paint, glossy (mirroring the sky and the road ahead),
    a clearly curved edge at 5-12 % of the height, at times a dash-cam mount or a wiper in view."""
    paint = HOOD_PAINTS[int(rng.choice(len(HOOD_PAINTS), p=[0.25, 0.2, 0.1, 0.1, 0.1, 0.1, 0.08, 0.07]))]
    return {"height": rng.uniform(0.05, 0.12), "bulge": rng.uniform(0.01, 0.045), "color": jitter(rng, paint, 0.15),
            "shine": rng.uniform(0.2, 0.5), "gloss": rng.uniform(0.35, 0.8), "tilt": rng.uniform(-0.01, 0.01),
            "mount": rng.random() < 0.3, "wiper": rng.random() < 0.2, "mount_x": rng.uniform(0.35, 0.65)}


ROADSIDE = {"grass": rgb(0.36, 0.42, 0.24), "dry": rgb(0.62, 0.56, 0.4), "dirt": rgb(0.5, 0.42, 0.32),
            "gravel": rgb(0.5, 0.49, 0.46), "green": rgb(0.25, 0.35, 0.17), "scrub": rgb(0.42, 0.43, 0.3)}
TREE_COLORS = [rgb(0.17, 0.27, 0.12), rgb(0.24, 0.3, 0.16), rgb(0.12, 0.2, 0.12), rgb(0.3, 0.33, 0.2),
               rgb(0.2, 0.24, 0.13)]


def sample_surface(rng: np.random.Generator, n_lanes: int, worn_or_concrete: tuple[bool, bool],
                   tar_snake_prob: float = 0.45) -> Surface:
    """Draw the road surface: asphalt or concrete tone, repaved lanes, wheel tracks, tar, roadside."""
    worn, concrete = worn_or_concrete
    v = rng.uniform(0.55, 0.72) if concrete else rng.uniform(0.2, 0.52) ** 0.9
    tint = rng.uniform(-0.04, 0.07)
    tone = rng.uniform(0.94, 1.06, n_lanes)
    if rng.random() < 0.25:
        tone[rng.integers(n_lanes)] *= rng.uniform(0.65, 0.88)
    kind = str(rng.choice(list(ROADSIDE)))
    return Surface(
        asphalt=rgb(v * (1 + tint), v, v * (1 - tint)), concrete=concrete, lane_tone=tone,
        track_darkening=rng.uniform(-0.1, 0.2) if concrete else rng.uniform(0.0, 0.22),
        patch_density=rng.uniform(0, 0.5) if worn else rng.uniform(0, 0.15),
        tar_snakes=rng.uniform(0.2, 1.0) if rng.random() < tar_snake_prob else 0.0,
        seam_density=rng.uniform(0.0, 1.0), shoulder_tone=rng.uniform(0.8, 1.2),
        roadside=jitter(rng, ROADSIDE[kind], 0.15), roadside_kind=kind,
        roadside2=jitter(rng, ROADSIDE[str(rng.choice(list(ROADSIDE)))], 0.15),
        verge=jitter(rng, rgb(0.5, 0.47, 0.42) if rng.random() < 0.6 else ROADSIDE["gravel"], 0.12),
        oil=rng.uniform(0.0, 0.16) if rng.random() < 0.6 else 0.0, rumble=rng.random() < 0.3,
        arrow_density=rng.uniform(0.1, 0.6) if rng.random() < 0.25 else 0.0, arrow_wear=rng.uniform(0, 1),
        ghosts=tuple((rng.uniform(0.15, 0.85), float(rng.choice([0.0, 3.0, 6.0])),
                      rng.choice([0.75, 1.25]) * rng.uniform(0.9, 1.1))
                     for _ in range(int(rng.integers(1, 3)) if rng.random() < 0.15 else 0)),
        median=jitter(rng, ROADSIDE[str(rng.choice(["grass", "dry", "gravel"]))], 0.12),
    )


def sample_scenery(rng: np.random.Generator, two_way: bool, s_range: tuple[float, float],
                   overpass_prob: float) -> Scenery:
    """Draw barriers, trees, poles, overpasses and the far landscape."""
    left = "edge" if two_way else str(rng.choice(["barrier", "guardrail", "median", "wall", "edge"],
                                                 p=[0.42, 0.2, 0.2, 0.06, 0.12]))
    right = str(rng.choice(["edge", "guardrail", "wall", "barrier", "trees"], p=[0.38, 0.25, 0.1, 0.1, 0.17]))
    overpasses = []
    s, end = s_range
    while True:
        s += rng.uniform(30, 260) if not overpasses else rng.uniform(400, 2000)
        if s > end or rng.random() > overpass_prob:
            break
        overpasses.append((s, rng.uniform(8, 25), rng.uniform(4.8, 6.5)))
    hills = None
    if rng.random() < 0.65:
        hills = (rng.uniform(0.5, 5.0), rng.uniform(0, 1000), jitter(rng, rgb(0.45, 0.5, 0.55), 0.2))
    treeline = jitter(rng, rgb(0.16, 0.24, 0.12), 0.3) if rng.random() < 0.5 else None
    poles = None
    if rng.random() < 0.5:
        poles = (str(rng.choice(["left", "right", "both"])), rng.uniform(30, 70))
    return Scenery(left=left, right=right, tree_density=(rng.uniform(0, 0.7), rng.uniform(0, 0.9)),
                   tree_offset=(rng.uniform(2, 8), rng.uniform(10, 30)), poles=poles, overpasses=overpasses,
                   hills=hills, treeline=treeline, buildings=rng.random() < 0.15,
                   salt=int(rng.integers(1, 2**31 - 1)),
                   tree_color=jitter(rng, TREE_COLORS[rng.integers(len(TREE_COLORS))], 0.15),
                   conifer_share=float(rng.choice([0.0, 0.0, 0.3, 0.8])))


VEHICLE_KINDS = {  # kind: (probability, length, width, height) ranges
    "car": (0.55, (4.1, 4.9), (1.72, 1.9), (1.38, 1.55)),
    "suv": (0.22, (4.5, 5.2), (1.85, 2.05), (1.65, 1.9)),
    "van": (0.08, (5.0, 6.2), (1.95, 2.15), (1.95, 2.6)),
    "truck": (0.15, (11.0, 17.0), (2.45, 2.6), (3.5, 4.1)),
}
VEHICLE_COLORS = [rgb(0.92, 0.92, 0.92), rgb(0.72, 0.73, 0.75), rgb(0.42, 0.43, 0.45), rgb(0.06, 0.06, 0.07),
                  rgb(0.1, 0.16, 0.35), rgb(0.55, 0.07, 0.06), rgb(0.7, 0.66, 0.55), rgb(0.12, 0.25, 0.16)]


def sample_vehicle(rng: np.random.Generator, s: float, d: float, oncoming: bool, speed: float) -> Vehicle:
    """One vehicle of a random kind and colour at road coordinates (s, d)."""
    kinds = list(VEHICLE_KINDS)
    kind = str(rng.choice(kinds, p=[VEHICLE_KINDS[k][0] for k in kinds]))
    _, lr, wr, hr = VEHICLE_KINDS[kind]
    color = VEHICLE_COLORS[rng.integers(len(VEHICLE_COLORS))]
    if kind == "truck":
        color = rgb(*[rng.uniform(0.75, 0.95)] * 3) if rng.random() < 0.7 else color
    return Vehicle(s=s, d=d, length=rng.uniform(*lr), width=rng.uniform(*wr), height=rng.uniform(*hr),
                   kind=kind, color=jitter(rng, color, 0.08), oncoming=oncoming, speed=speed)


def marking_style(rng: np.random.Generator, probs: tuple[float, float, float] = (0.55, 0.2, 0.25)
                  ) -> tuple[str, dict]:
    """Regional marking conventions (US, EU, CN with ``probs``): colours, dash lengths, stripe widths."""
    style = str(rng.choice(["us", "eu", "cn"], p=list(probs)))
    dash = {"us": (3.05, 9.15), "eu": (rng.choice([3.0, 6.0]), 0.0), "cn": (rng.choice([4.0, 6.0]), 9.0)}[style]
    dash_len = float(dash[0]) * rng.uniform(0.9, 1.1)
    gap = float(dash[1]) * rng.uniform(0.9, 1.1) if dash[1] else dash_len * 2.0
    return style, {"dash": dash_len, "gap": gap, "width": rng.uniform(0.1, 0.2),
                   "edge_width": rng.uniform(0.12, 0.3) if style == "eu" else rng.uniform(0.1, 0.2),
                   "yellow_left": (style == "us" and rng.random() < 0.85) or (style == "cn" and rng.random() < 0.3)}


APOLLO_IDS = {  # (marking type, yellow?) -> Apollo trainId
    (MarkingType.SOLID, False): 1, (MarkingType.SOLID, True): 2,
    (MarkingType.DOUBLE_SOLID, False): 3, (MarkingType.DOUBLE_SOLID, True): 4,
    (MarkingType.SOLID_DASHED, False): 5, (MarkingType.SOLID_DASHED, True): 6,
    (MarkingType.DASHED_SOLID, False): 5, (MarkingType.DASHED_SOLID, True): 6,
    (MarkingType.DASHED, False): 7, (MarkingType.DASHED, True): 8,
    (MarkingType.BOTTS_DOTS, False): 7, (MarkingType.BOTTS_DOTS, True): 8,
    (MarkingType.DOUBLE_DASHED, False): 9, (MarkingType.DOUBLE_DASHED, True): 10,
}


def paint_color(rng: np.random.Generator, color: MarkingColor, faded_yellow_prob: float = 0.0) -> Color:
    """Display colour of fresh or aged paint; yellow faded towards a pale grey with ``faded_yellow_prob``
    (nothing drawn at 0)."""
    if color == MarkingColor.YELLOW:
        paint = jitter(rng, rgb(0.92, 0.74, 0.18) if rng.random() < 0.7 else rgb(0.85, 0.75, 0.45), 0.06)
        if faded_yellow_prob > 0 and rng.random() < faded_yellow_prob:
            fade = rng.uniform(0.35, 0.7)
            paint = tuple(float(c * (1 - fade) + 0.8 * fade) for c in paint)
        return paint
    return jitter(rng, rgb(0.93, 0.93, 0.92), 0.04)
