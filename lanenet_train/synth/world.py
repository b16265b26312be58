"""A world to render: one road with its scene, the ego vehicle's state, traffic, and how they move."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from lanenet_train.synth.camera import CameraParams
from lanenet_train.synth.config import SynthConfig
from lanenet_train.synth.markings import build_boundaries
from lanenet_train.synth.road import Road, build_centreline, curvature_profile
from lanenet_train.synth.scene import (
    Scene,
    Vehicle,
    marking_style,
    sample_camera,
    sample_environment,
    sample_scenery,
    sample_surface,
    sample_vehicle,
)
from lanenet_train.synth.textures import RoadTextures, hash01


@dataclass
class EgoState:
    """Where the ego vehicle is and how it moves.

    Attributes:
        s: arc length along the road (metres).
        d: lateral offset (metres, + left).
        rel_yaw: heading relative to the road (radians).
        speed: forward speed (m/s).
        camera: the camera of the current frame (pitch shakes during a drive).
        base_pitch: the camera's mounting pitch.
        lane: index of the lane driven in (0 = leftmost).
        target_d: lateral offset being steered to (lane changes).
        t: seconds since the start.
    """

    s: float
    d: float
    rel_yaw: float
    speed: float
    camera: CameraParams
    base_pitch: float
    lane: int
    target_d: float
    t: float = 0.0


@dataclass
class World:
    """A road with everything on and around it."""

    scene: Scene
    road: Road
    tex: RoadTextures
    salt: int
    vehicles: list[Vehicle] = field(default_factory=list)

    def lane_centre(self, lane: int) -> float:
        """Lateral offset of a lane's centre (lane 0 is the leftmost)."""
        return float(self.road.lane_centres()[lane])

    def start_state(self, rng: np.random.Generator, s: float, speed: float = 25.0) -> EgoState:
        """The ego vehicle in its lane at arc length ``s``, slightly off centre and askew."""
        lane = self.scene.ego_lane
        width = self.road.boundaries[lane].offset - self.road.boundaries[lane + 1].offset
        d = self.lane_centre(lane) + rng.uniform(-0.35, 0.35) * max(width - 1.8, 0.2)
        yaw = float(rng.normal(0, 0.015))
        if rng.random() < 0.08:  # caught changing lanes: astride a boundary, heading across
            side = int(rng.integers(2))
            d = self.road.boundaries[lane + side].offset + (1 - 2 * side) * rng.uniform(-0.9, 0.3)
            yaw = float((1 - 2 * side) * rng.uniform(0.01, 0.05))
        cam = self.scene.camera
        target = self.lane_centre(lane) + rng.uniform(-0.2, 0.2)  # a drive settles back into its lane
        return EgoState(s=float(s), d=float(d), rel_yaw=yaw, speed=float(speed), camera=cam,
                        base_pitch=cam.pitch_rad, lane=lane, target_d=float(target))

    def step(self, ego: EgoState, dt: float, rng: np.random.Generator) -> None:
        """Advance the ego vehicle (lane keeping, occasional lane changes, camera shake) and the traffic."""
        ego.t += dt
        lo = self.road.oncoming_lanes
        n = len(self.road.boundaries) - 1
        if abs(ego.target_d - ego.d) < 0.05 and rng.random() < 0.02 * dt * 10 and n - lo > 1:
            ego.lane = int(np.clip(ego.lane + rng.choice([-1, 1]), lo, n - 1))
            ego.target_d = self.lane_centre(ego.lane) + rng.uniform(-0.2, 0.2)
        lateral = float(np.clip(ego.target_d - ego.d, -0.9 * dt, 0.9 * dt))
        ego.rel_yaw = 0.8 * ego.rel_yaw + 0.2 * math.atan2(lateral, max(ego.speed * dt, 0.1))
        ego.rel_yaw += float(rng.normal(0, 0.0006))
        ego.d += lateral + float(rng.normal(0, 0.004))
        ego.s += ego.speed * dt
        shake = 0.0025 * math.sin(2 * math.pi * 1.3 * ego.t) + 0.0012 * math.sin(2 * math.pi * 3.7 * ego.t + 1.0)
        ego.camera = replace(ego.camera, pitch_rad=ego.base_pitch + shake)
        for v in self.vehicles:
            v.s += v.speed * dt
        self._respawn(ego, rng)

    def _respawn(self, ego: EgoState, rng: np.random.Generator) -> None:
        for i, v in enumerate(self.vehicles):
            if ego.s - 40 < v.s < ego.s + 320:
                continue
            ahead = v.s < ego.s
            s_new = ego.s + (rng.uniform(180, 300) if ahead or v.oncoming else -rng.uniform(20, 35))
            if not _free(self.vehicles, v.d, s_new, v.length, skip=i):
                continue
            v.s = s_new

    def sign_positions(self, s_ego: float) -> list[float]:
        """Arc lengths of roadside signs within sight."""
        cells = np.arange(int(s_ego // 150), int((s_ego + 250) // 150) + 1)
        h = hash01(cells, self.salt + 99)
        return [float(c * 150 + 150 * hash01(np.array([c]), self.salt + 98)[0]) for c, x in zip(cells, h, strict=True)
                if x < 0.3 and c * 150 > s_ego]

    def describe(self, ego: EgoState) -> dict:
        """JSON-able summary of the scene (goes into the dataset's per-frame metadata)."""
        env, road = self.scene.env, self.road
        k = np.interp(ego.s, road.s0 + np.arange(len(road.heading) - 1) + 0.5, np.diff(road.heading))
        return {"time": env.time, "weather": env.weather, "style": self.scene.style,
                "lanes": len(road.boundaries) - 1, "oncoming_lanes": road.oncoming_lanes,
                "ego_lane": ego.lane, "curvature": round(float(k), 6), "vehicles": len(self.vehicles),
                "s": round(ego.s, 3), "d": round(ego.d, 3), "rel_yaw": round(ego.rel_yaw, 5)}


def _free(vehicles: list[Vehicle], d: float, s: float, length: float, skip: int = -1) -> bool:
    return all(i == skip or abs(o.d - d) > 1.5 or not (s - o.length - 4 < o.s < s + length + 4)
               for i, o in enumerate(vehicles))


def build_world(config: SynthConfig, rng: np.random.Generator, length_m: float) -> World:
    """Draw a complete world: camera, lighting, road layout and markings, surface, scenery.

    Args:
        config: generator configuration.
        rng: random generator (the seed fixes the world).
        length_m: road length to lay out (metres).

    Returns:
        The world (without traffic; see :func:`sample_traffic`).
    """
    camera = sample_camera(config, rng)
    env = sample_environment(config, rng)
    style, opts = marking_style(rng, config.style_probs)
    opts["dots_prob"] = config.botts_dots_prob
    opts["faded_yellow_prob"] = config.faded_yellow_prob
    n_lanes = int(rng.integers(config.lanes[0], config.lanes[1] + 1))
    two_way = n_lanes >= 2 and rng.random() < config.two_way_prob
    oncoming = int(np.clip(round(n_lanes / 2 + rng.uniform(-0.6, 0.6)), 1, n_lanes - 1)) if two_way else 0
    worn, concrete = rng.random() < config.worn_prob, rng.random() < config.concrete_prob
    boundaries, lines, edges = build_boundaries(rng, n_lanes, config.lane_width_m, oncoming, style, opts, worn,
                                                config.edge_line_prob)
    x, y, heading = build_centreline(curvature_profile(rng, length_m, config.max_curvature, config.straight_prob,
                                                       config.curve_ramp_m, config.curve_hold_m))
    surface = sample_surface(rng, n_lanes, (worn, concrete), config.tar_snake_prob)
    scenery = sample_scenery(rng, two_way, (0.0, length_m), config.overpass_prob)
    edges = close_roadside(config, rng, scenery, two_way, boundaries, edges)
    road = Road(0.0, x, y, heading, boundaries, lines, edges[0], edges[1], oncoming)
    scene = Scene(camera=camera, env=env, surface=surface, scenery=scenery,
                  ego_lane=int(rng.integers(oncoming, n_lanes)),
                  label_distance=float(rng.uniform(*config.label_distance_m)), style=style)
    tex = RoadTextures.from_bank(int(rng.integers(16)))
    return World(scene=scene, road=road, tex=tex, salt=int(rng.integers(1, 2**31 - 1)))


def close_roadside(config: SynthConfig, rng: np.random.Generator, scenery, two_way: bool, boundaries: list,
                   edges: tuple[float, float]) -> tuple[float, float]:
    """With ``median_barrier_prob`` / ``roadside_barrier_prob`` (nothing drawn at 0): a New Jersey median
    barrier on the left of a one-way road, a guard rail, wall or kerb on the right, close to the edge line.

    Returns:
        The asphalt edges (left, right), moved in to the barrier where one was placed.
    """
    left, right = edges
    if config.median_barrier_prob > 0 and rng.random() < config.median_barrier_prob and not two_way:
        scenery.left = "nj_barrier"
        left = boundaries[0].offset + rng.uniform(0.3, 1.2)
    if config.roadside_barrier_prob > 0 and rng.random() < config.roadside_barrier_prob:
        scenery.right = str(rng.choice(["guardrail", "wall", "kerb"]))
        right = boundaries[-1].offset - rng.uniform(0.25, 1.0)
    return float(left), float(right)


def sample_traffic(rng: np.random.Generator, world: World, ego: EgoState, count: int) -> list[Vehicle]:
    """Place ``count`` vehicles ahead of the ego vehicle, in lanes, without overlaps.

    Args:
        rng: random generator.
        world: the world (road and lanes).
        ego: the ego state (vehicles keep clear of it).
        count: how many to try to place.

    Returns:
        The vehicles (fewer than ``count`` when the road is full).
    """
    out: list[Vehicle] = []
    n = len(world.road.boundaries) - 1
    for _ in range(count * 3):
        if len(out) >= count:
            break
        lane = int(rng.integers(n))
        oncoming = lane < world.road.oncoming_lanes
        s = ego.s + 4.0 + float(rng.exponential(45.0))
        d = world.lane_centre(lane) + float(rng.uniform(-0.3, 0.3))
        if abs(d - ego.d) < 2.0 and s < ego.s + 9.0:
            continue
        speed = -ego.speed - rng.uniform(-3, 5) if oncoming else ego.speed + rng.normal(0, 3)
        v = sample_vehicle(rng, s, d, oncoming, speed)
        if _free(out, d, s, v.length):
            out.append(v)
    return out
