"""Configuration of the synthetic road-scene generator: image size, camera ranges and scene options.

Every range is ``(low, high)`` and sampled uniformly per frame (per drive for a sequence); every
``*_prob`` is the probability that a frame (drive) shows that condition.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

Range = tuple[float, float]


@dataclass
class SynthConfig:
    """What the generator may produce.

    Attributes:
        width: output image width (pixels).
        height: output image height (pixels).
        render_scale: the scene is rendered at this fraction of the output size, then resized and
            finished (noise, blur, compression) at full size; ground truth is always exact.
        focal_range: horizontal focal length as a fraction of the width (0.5 ~ 90 deg field of view).
        camera_height_m: camera height above the road (metres).
        pitch_deg: downward pitch (degrees).
        horizon_frac: allowed horizon row as a fraction of the height (pitch is clamped to it).
        distortion_prob: probability of lens distortion; otherwise k1 = k2 = 0.
        k1_range: radial distortion k1 when distorted (negative = barrel, dash cams).
        k2_range: radial distortion k2 when distorted.
        principal_jitter: principal point offset as a fraction of the size.
        lanes: number of lanes (inclusive range).
        lane_width_m: lane width (metres).
        max_curvature: largest road curvature (1/m); 1/200 is a tight highway curve.
        straight_prob: probability that a road section is straight.
        two_way_prob: probability of a road with oncoming lanes (centre line).
        edge_line_prob: probability that an outer road edge carries an edge line.
        botts_dots_prob: probability that dashed boundaries are raised dots (California).
        worn_prob: probability that a road's paint is visibly worn.
        concrete_prob: probability of a concrete road surface (joints, lighter).
        vehicles: number of other vehicles (inclusive range).
        label_distance_m: how far ahead lanes are labelled (metres).
        night_prob, dusk_prob, overcast_prob, rain_prob, fog_prob: lighting and weather.
        tree_shadow_prob, overpass_prob, glare_prob: shadows, bridges, low sun.
        hood_prob: probability that the ego vehicle's bonnet shows at the bottom.
        overlay_text_prob: probability of a burnt-in dash-cam timestamp.
        blur_prob: probability of defocus or motion blur.
        jpeg_prob: probability of an extra low-quality compression pass.
        low_end_camera_prob: probability of a low-end camera: heavy sensor noise (sigma 8-20 grey levels),
            hard compression (JPEG quality 10-30) and under-exposure (gamma 1.2-2.0). 0 (the default) draws
            nothing, so the other frames of a seed stay as they were.
        curve_ramp_m: length of the clothoid between two road sections (metres).
        curve_hold_m: length of a straight or arc section (metres); short ones with a large
            ``max_curvature`` make winding roads and S-bends.
        tar_snake_prob: probability of tar-sealed cracks (tar seams) on the road.
        style_probs: probabilities of the US, European and Chinese marking conventions.
        median_barrier_prob, roadside_barrier_prob, real_hood_prob, faded_yellow_prob: scenes of real roads
            the default model failed on (issue "Real roads"); each is 0 by default and then draws nothing, so
            a seed gives the same frames as before they existed.
        median_barrier_prob: probability that the left side of a one-way road is a concrete median barrier
            of New Jersey profile close to the edge line (its sloped, pale base meets the asphalt in a hard
            straight edge: a line that is not a lane).
        roadside_barrier_prob: probability that the right side is a guard rail, a wall or a kerb close to
            the edge line.
        real_hood_prob: probability that the bonnet, when one shows (``hood_prob``), is a real car's: dark
            or coloured, glossy (reflecting the sky and the road ahead, lane paint included), its edge curved,
            5-12 % of the image height, sometimes with a dash-cam mount or a wiper in view.
        faded_yellow_prob: probability that a road's yellow paint is faded towards the road's own tone
            (pale yellow on pale concrete is easily called white).
    """

    width: int = 1280
    height: int = 720
    render_scale: float = 0.5
    focal_range: Range = (0.5, 1.0)
    camera_height_m: Range = (1.15, 2.1)
    pitch_deg: Range = (0.5, 7.0)
    horizon_frac: Range = (0.28, 0.55)
    distortion_prob: float = 0.6
    k1_range: Range = (-0.3, 0.02)
    k2_range: Range = (-0.01, 0.06)
    principal_jitter: float = 0.02
    lanes: tuple[int, int] = (2, 6)
    lane_width_m: Range = (2.8, 4.0)
    max_curvature: float = 1.0 / 220.0
    straight_prob: float = 0.4
    two_way_prob: float = 0.25
    edge_line_prob: float = 0.85
    botts_dots_prob: float = 0.08
    worn_prob: float = 0.4
    concrete_prob: float = 0.2
    vehicles: tuple[int, int] = (0, 9)
    label_distance_m: Range = (70.0, 160.0)
    night_prob: float = 0.12
    dusk_prob: float = 0.1
    overcast_prob: float = 0.3
    rain_prob: float = 0.12
    fog_prob: float = 0.06
    tree_shadow_prob: float = 0.4
    overpass_prob: float = 0.15
    glare_prob: float = 0.2
    hood_prob: float = 0.2
    overlay_text_prob: float = 0.15
    blur_prob: float = 0.4
    jpeg_prob: float = 0.3
    low_end_camera_prob: float = 0.0
    curve_ramp_m: Range = (40.0, 160.0)
    curve_hold_m: Range = (80.0, 450.0)
    tar_snake_prob: float = 0.45
    style_probs: tuple[float, float, float] = (0.55, 0.2, 0.25)
    median_barrier_prob: float = 0.0
    roadside_barrier_prob: float = 0.0
    real_hood_prob: float = 0.0
    faded_yellow_prob: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check sizes, ranges and probabilities.

        Raises:
            ValueError: naming the offending parameter and its allowed values.
        """
        if self.width < 32 or self.height < 32:
            raise ValueError(f"width/height must be at least 32 pixels, got {self.width}x{self.height}")
        if not 0.1 <= self.render_scale <= 1.0:
            raise ValueError(f"render_scale must be in [0.1, 1], got {self.render_scale}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_prob") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be a probability in [0, 1], got {value}")
            if isinstance(value, tuple) and f.name != "style_probs" and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(f"{f.name} must be a (low, high) pair with low <= high, got {value}")
        if self.lanes[0] < 1 or self.lanes[1] > 8:
            raise ValueError(f"lanes must lie in 1..8, got {self.lanes}")
        if self.camera_height_m[0] < 0.3:
            raise ValueError(f"camera_height_m must be at least 0.3 m, got {self.camera_height_m}")
        if len(self.style_probs) != 3 or min(self.style_probs) < 0 or abs(sum(self.style_probs) - 1) > 1e-6:
            raise ValueError(f"style_probs must be three probabilities (US, EU, CN) summing to 1, "
                             f"got {self.style_probs}")
        if self.curve_ramp_m[0] < 1.0 or self.curve_hold_m[0] < 1.0:
            raise ValueError(f"curve_ramp_m and curve_hold_m must be at least 1 m, got {self.curve_ramp_m}, "
                             f"{self.curve_hold_m}")
        if self.lane_width_m[0] <= 1.0:
            raise ValueError(f"lane_width_m must be above 1 m, got {self.lane_width_m}")
