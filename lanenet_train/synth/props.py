"""Builders of the scene's solid objects: vehicles, barriers, guard rails, walls, trees, poles, signs and
overpasses, with the shadows they cast on the road."""
from __future__ import annotations

import math

import numpy as np

from lanenet_train.synth.objects import Prim, face_light, facing_normal
from lanenet_train.synth.road import RoadWindow
from lanenet_train.synth.scene import Scene, Vehicle
from lanenet_train.synth.textures import hash01

_CROWNS = np.random.default_rng(0xC0FFEE).uniform([-0.55, -0.55, -0.55, 0.45, 0.85], [0.55, 0.55, 0.55, 0.7, 1.15],
                                                  (32, 6, 5))  # tree crown blobs: offset x y z, size, squash
_FACADES = [np.array(c) for c in ((0.6, 0.62, 0.64), (0.45, 0.55, 0.7), (0.35, 0.4, 0.55), (0.75, 0.75, 0.72),
                                   (0.5, 0.47, 0.45))]
WINDOW_LIT = np.array([0.35, 0.6, 0.8])
GLASS = np.array([0.09, 0.08, 0.07])
DARK = np.array([0.03, 0.03, 0.03])
TAIL = np.array([0.08, 0.08, 0.85])
HEAD = np.array([0.85, 0.95, 1.0])


class PropBuilder:
    """Collects :class:`Prim` objects and ground shadows for one frame."""

    def __init__(self, scene: Scene, window: RoadWindow, s_ego: float, d_ego: float, rel_sun_az: float,
                 edges: tuple[float, float], salt: int):
        self.scene, self.window, self.s_ego, self.d_ego = scene, window, s_ego, d_ego
        self.edges, self.salt = edges, salt
        env = scene.env
        el = env.sun_elevation
        self.sun_dir = np.array([math.cos(rel_sun_az) * math.cos(el), math.sin(rel_sun_az) * math.cos(el),
                                 math.sin(el)])
        self.shadow_vec = -self.sun_dir[:2] / max(math.tan(el), 0.12)
        self.cam_pos = np.array([0.0, 0.0, scene.camera.height_m])
        self.s_max = float(window.s[-1]) - 1.0
        self.prims: list[Prim] = []
        self.shadows: list[np.ndarray] = []
        self.tree_shadows: list[np.ndarray] = []  # leaves let some light through
        self.occlusion: list[np.ndarray] = []
        self.lamps: tuple | None = None
        self._static = True

    def pt(self, s, d, z) -> np.ndarray:
        """Vehicle-frame 3D points of road coordinates (s, d) at heights z (broadcast)."""
        s, d, z = np.broadcast_arrays(np.asarray(s, float), np.asarray(d, float), np.asarray(z, float))
        x, y = self.window.point(s.ravel(), d.ravel())
        return np.stack([x, y, z.ravel()], axis=1)

    def local(self, s0: float, d0: float):
        """A rigid frame at road point (s0, d0): ``f(s, d, z)`` gives vehicle-frame points for offsets along
        and across the road there (two road look-ups instead of one per polygon)."""
        ends = self.pt([s0, s0 + 1.0], d0, 0)
        origin, tangent = ends[0], ends[1] - ends[0]
        tangent /= max(float(np.linalg.norm(tangent)), 1e-9)
        normal = np.array([-tangent[1], tangent[0], 0.0])
        up = np.array([0.0, 0.0, 1.0])

        def f(s, d, z) -> np.ndarray:
            s, d, z = np.broadcast_arrays(np.asarray(s, float) - s0, np.asarray(d, float) - d0, np.asarray(z, float))
            return origin + s.ravel()[:, None] * tangent + d.ravel()[:, None] * normal + z.ravel()[:, None] * up
        return f

    def face(self, pts: np.ndarray, color, depth: float | None = None, order: int = 0, glow: float = 0.0,
             lit: bool = True, occludes: bool = True) -> None:
        """Add a lit polygon."""
        env = self.scene.env
        base = np.asarray(color, float)
        if lit:
            n = facing_normal(pts, self.cam_pos)
            light = face_light(n, self.sun_dir, env.sun, env.ambient) * np.asarray(env.ambient_tint)
            if env.headlights:
                x = max(float(pts[:, 0].mean()), 1.0)
                light = light + 1.3 / (1 + (x / 25) ** 2) * math.exp(-(float(pts[:, 1].mean()) / (x + 4) / 0.35) ** 2)
            base = base * light
        d = float(pts[:, 0].min()) if depth is None else depth
        self.prims.append(Prim(d, pts, np.clip(base, 0, 1.5), glow=glow, occludes=occludes, order=order,
                               static=self._static))

    def disc(self, centre: np.ndarray, radius: tuple[float, float], color, depth: float, order: int = 0) -> None:
        """Add a disc seen face-on (tree crowns, wheels)."""
        self.prims.append(Prim(depth, centre[None], np.asarray(color, float), radius=radius, order=order))

    def ground_shadow(self, base: np.ndarray, height: float) -> None:
        """Shadow of a vertical prism with ground outline ``base`` (K, 2) and ``height``."""
        tip = base + self.shadow_vec[None] * height
        pts = np.concatenate([base, tip])
        centre = pts.mean(axis=0)
        ang = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
        hull = pts[np.argsort(ang)]
        self.shadows.append(hull)

    # -- vehicles --------------------------------------------------------------------------------
    def vehicle(self, v: Vehicle) -> None:
        """A car, SUV, van or truck as lit faces, lights and wheels, with its shadows."""
        self._static = False
        try:
            self._vehicle(v)
        finally:
            self._static = True

    def _vehicle(self, v: Vehicle) -> None:
        s_r, s_f = v.s, v.s + v.length
        if s_r > self.s_max - 2 or s_f < self.s_ego + 1.0 or s_r < self.window.s[0]:
            return
        dl, dr, H = v.d + v.width / 2, v.d - v.width / 2, v.height
        pt = self.local(s_r, v.d)
        depth = float(pt(s_r, v.d, 0)[0, 0])
        foot = pt([s_r, s_r, s_f, s_f], [dl, dr, dr, dl], 0)[:, :2]
        self.ground_shadow(foot, H * 0.9)
        grow = foot + np.sign(foot - foot.mean(axis=0)) * 0.25
        self.occlusion.append(grow)
        col = np.asarray(v.color)
        truck = v.kind == "truck"
        z_body = 1.0 if truck else 0.3
        if self.d_ego > dl or self.d_ego < dr:
            side = dl if self.d_ego > dl else dr
            self.face(pt([s_r, s_f, s_f, s_r], side, [z_body, z_body, H, H]), col, depth, order=-3)
            self.face(pt([s_r, s_f, s_f, s_r], side, [0, 0, z_body, z_body]), DARK, depth, order=-4, lit=False)
            if not truck:
                self.face(pt([s_r + 0.6, s_f - 1.4, s_f - 1.6, s_r + 0.8], side,
                                 [0.62 * H, 0.62 * H, 0.92 * H, 0.92 * H]), GLASS, depth, order=-2)
            ang = np.linspace(0, 2 * np.pi, 10, endpoint=False)
            for sw in ((s_r + 0.8, s_f - 0.9) if not truck else (s_r + 1.0, s_r + 2.3, s_f - 3.0)):
                wheel = pt(sw + 0.36 * np.cos(ang), side + np.sign(side - v.d) * 0.02, 0.36 + 0.36 * np.sin(ang))
                self.face(wheel, DARK * 2, depth, order=-1, lit=False)
        if self.cam_pos[2] > H:
            top = H if truck else 0.95 * H
            inset = 0.0 if truck else 0.3
            self.face(pt([s_r + (0 if truck else 0.8)] * 2 + [s_f - (0 if truck else 1.6)] * 2,
                         [dl - inset, dr + inset, dr + inset, dl - inset], top), col * 0.9, depth, order=-2)
        self._vehicle_face(v, pt, s_r, dl, dr, H, z_body, col, depth)

    def _vehicle_face(self, v: Vehicle, pt, s: float, dl: float, dr: float, H: float, z_body: float,
                      col: np.ndarray, depth: float) -> None:
        night = self.scene.env.headlights
        lamp = HEAD if v.oncoming else TAIL
        glow = (2.5 if v.oncoming else 1.4) if night else (0.6 if hash01(np.array([int(v.s)]), 3)[0] < 0.15 else 0)
        self.face(pt(s, [dl, dr, dr, dl], [0, 0, z_body, z_body]), DARK, depth, order=0, lit=False)
        if v.kind == "truck":
            self.face(pt(s, [dl, dr, dr, dl], [z_body, z_body, H, H]), col, depth, order=1)
            self.face(pt(s, [v.d + 0.03, v.d - 0.03, v.d - 0.03, v.d + 0.03], [z_body, z_body, H, H]),
                      col * 0.4, depth, order=2)
            self.face(pt(s, [dl - 0.1, dr + 0.1, dr + 0.1, dl - 0.1], [0.45, 0.45, 0.6, 0.6]),
                      np.array([0.35, 0.35, 0.35]), depth, order=2)
            lz = (z_body + 0.05, z_body + 0.22)
        else:
            lo, hi = 0.62 * H, 0.95 * H
            slope = 0.5 if v.kind == "car" else 0.15  # sedans have a sloping rear window, SUVs and vans do not
            self.face(pt(s, [dl, dr, dr, dl], [z_body, z_body, lo, lo]), col, depth, order=1)
            back = [s + 0.3, s + 0.3, s + 0.3 + slope, s + 0.3 + slope]
            cabin = pt(back, [dl - 0.08, dr + 0.08, dr + 0.2, dl - 0.2], [lo, lo, hi, hi])
            self.face(cabin, col * 0.95, depth, order=2)
            self.face(pt([s + 0.32, s + 0.32, s + 0.3 + slope * 0.9, s + 0.3 + slope * 0.9],
                         [dl - 0.2, dr + 0.2, dr + 0.3, dl - 0.3], [lo + 0.04, lo + 0.04, hi - 0.06, hi - 0.06]),
                      GLASS + 0.12 * np.asarray(self.scene.env.sky_horizon), depth, order=3)
            self.face(pt(s + 0.01, [dl, dr, dr, dl], [lo - 0.03, lo - 0.03, lo, lo]), col * 1.25, depth, order=2)
            self.face(pt(s, [dl, dr, dr, dl], [z_body, z_body, z_body + 0.16, z_body + 0.16]),
                      col * 0.55, depth, order=2)
            self.face(pt(s, [v.d + 0.26, v.d - 0.26, v.d - 0.26, v.d + 0.26], [0.36, 0.36, 0.48, 0.48]),
                      np.array([0.8, 0.82, 0.85]), depth, order=4)
            lz = (0.5 * H, 0.6 * H)
        for a, b in ((dl - 0.04, dl - 0.34), (dr + 0.34, dr + 0.04)):
            self.face(pt(s - 0.01, [a, b, b, a], [lz[0], lz[0], lz[1], lz[1]]), lamp * (1.0 + glow), depth,
                      order=5, glow=glow, lit=not night)

    # -- roadside --------------------------------------------------------------------------------
    def _distances(self, start: float, stop: float) -> np.ndarray:
        r, out = start, []
        while r < stop:
            out.append(r)
            r += max(1.0, 0.07 * abs(r))
        return np.array([*out, stop])

    def barrier(self, side: str, kind: str) -> None:
        """A concrete barrier, guard rail or sound wall along one road edge; ``nj_barrier`` (a New Jersey
        median barrier) and ``kerb`` stand right on the asphalt edge."""
        sign = 1.0 if side == "left" else -1.0
        flush = kind in ("nj_barrier", "kerb")
        d_b = self.edges[0 if side == "left" else 1] + sign * (0.0 if flush else 0.25)
        rng = np.random.default_rng(self.salt + (1 if side == "left" else 2))
        if kind == "nj_barrier":
            self._nj_barrier(rng, sign, d_b)
            return
        if kind == "kerb":
            height, color = rng.uniform(0.1, 0.2), np.array([0.7, 0.7, 0.68]) * rng.uniform(0.8, 1.2)
        else:  # (every value of these tables is drawn, as it always was: a seed keeps its frames)
            height = {"barrier": rng.uniform(0.8, 1.07), "guardrail": 0.78, "wall": rng.uniform(3.0, 5.0)}[kind]
            color = {"barrier": np.array([0.66, 0.68, 0.68]) * rng.uniform(0.8, 1.15),
                     "guardrail": np.array([0.62, 0.62, 0.6]) * rng.uniform(0.85, 1.1),
                     "wall": np.array([0.55, 0.62, 0.66]) * rng.uniform(0.8, 1.2)}[kind]
        s = self.s_ego + self._distances(-3.0, min(self.s_max - self.s_ego, 300.0))
        z_lo = 0.5 if kind == "guardrail" else 0.0
        face = self.pt(s, d_b, 0)  # foot of the face along the whole strip, then offsets from it
        back = self.pt(s, d_b + sign * 0.22, 0)
        up = np.array([0.0, 0.0, 1.0])
        tones = 0.9 + 0.2 * hash01((s * 7).astype(np.int64), self.salt)
        for k in range(0, len(s) - 1, 6):
            f, bk = face[k:k + 7], back[k:k + 7]
            depth, tone = float(f[0, 0]), float(tones[k])
            self.face(np.concatenate([f + up * height, f[::-1] + up * z_lo]), color * tone, depth)
            if kind == "barrier":
                self.face(np.concatenate([f + up * 0.14, f[::-1]]), color * tone * 0.55, depth, order=1)
            if kind in ("barrier", "kerb") and self.cam_pos[2] > height:
                self.face(np.concatenate([f + up * height, bk[::-1] + up * height]), color * tone * 1.1, depth,
                          order=1)
            if kind != "guardrail":
                self.shadows.append(np.concatenate([f[:, :2], f[::-1, :2] + self.shadow_vec * height]))
        if kind == "guardrail":
            for sp in np.arange(np.ceil(self.s_ego / 3.8) * 3.8, min(self.s_ego + 60, self.s_max), 3.8):
                pt = self.local(sp, d_b)
                depth = float(pt(sp, d_b, 0)[0, 0]) + 0.1
                self.face(pt(sp, [d_b + sign * 0.05, d_b + sign * 0.2, d_b + sign * 0.2, d_b + sign * 0.05],
                             [0, 0, 0.75, 0.75]), color * 0.45, depth, order=-1)

    def _nj_barrier(self, rng: np.random.Generator, sign: float, d_b: float) -> None:
        """A New Jersey concrete barrier: a short upright foot, a pale sloped face (lit from above, brighter
        than the road) and a steep upper face, 0.8-1.07 m high; its foot on the asphalt is a hard straight
        edge that is not a lane."""
        height = rng.uniform(0.8, 1.07)
        color = np.array([0.72, 0.72, 0.7]) * rng.uniform(0.85, 1.15)
        # cross-section (lateral offset from the foot, height): foot, slope break, top, top's far side
        profile = [(0.0, 0.0), (0.0, 0.075), (0.18, 0.33), (0.25, height), (0.35, height)]
        tones = [0.8, 1.15, 0.95]
        s = self.s_ego + self._distances(-3.0, min(self.s_max - self.s_ego, 300.0))
        up = np.array([0.0, 0.0, 1.0])
        rows = [self.pt(s, d_b + sign * off, 0) + up * z for off, z in profile]
        shade = 0.92 + 0.16 * hash01((s * 7).astype(np.int64), self.salt)
        for k in range(0, len(s) - 1, 6):
            depth = float(rows[0][k, 0])
            for j, tone in enumerate(tones):
                lo, hi = rows[j][k:k + 7], rows[j + 1][k:k + 7]
                self.face(np.concatenate([hi, lo[::-1]]), color * tone * float(shade[k]), depth, order=j)
            if self.cam_pos[2] > height:
                top, back = rows[3][k:k + 7], rows[4][k:k + 7]
                self.face(np.concatenate([top, back[::-1]]), color * 1.05, depth, order=3)
            foot = rows[0][k:k + 7]
            self.shadows.append(np.concatenate([foot[:, :2], foot[::-1, :2] + self.shadow_vec * height]))

    def trees(self, side: str, density: float, offsets: tuple[float, float]) -> None:
        """Trees along one side of the road, placed by a hash of 8 m road cells."""
        if density <= 0:
            return
        sign = 1.0 if side == "left" else -1.0
        edge = self.edges[0 if side == "left" else 1]
        cells = np.arange(int(self.s_ego // 8) - 2, int(min(self.s_max, self.s_ego + 250) // 8))
        salt = self.salt + (11 if side == "left" else 23)
        keep = cells[hash01(cells, salt) < density]
        for c in keep:
            h = hash01(np.array([c, c + 1, c + 2, c + 3, c + 4]), salt + 1)
            s_t = c * 8.0 + h[0] * 8.0
            if s_t > self.s_max:
                continue
            d_t = edge + sign * (offsets[0] + h[1] * (offsets[1] - offsets[0]))
            height, r = 4.0 + h[2] * 10.0, 1.2 + h[3] * 2.4
            pt = self.local(s_t, d_t)
            base = pt(s_t, d_t, 0)[0]
            if base[0] < 0.5:
                continue
            self._tree(pt, s_t, d_t, height, r, base, h)

    def _tree(self, pt, s_t: float, d_t: float, height: float, r: float, base: np.ndarray, h: np.ndarray) -> None:
        sc, env = self.scene.scenery, self.scene.env
        depth = float(base[0])
        color = np.asarray(sc.tree_color) * (0.8 + 0.4 * h[4])
        light = env.ambient + env.sun * (0.45 + 0.4 * self.sun_dir[2])
        conifer = h[3] < sc.conifer_share
        trunk_top = height * (0.25 if conifer else 0.55)
        self.face(pt(s_t, [d_t - 0.15, d_t + 0.15, d_t + 0.15, d_t - 0.15], [0, 0, trunk_top, trunk_top]),
                  np.array([0.1, 0.13, 0.17]), depth, order=0)
        if conifer:
            w = r * 0.8
            for k, (lo, top) in enumerate(((0.2, 0.75), (0.45, 1.0))):
                pts = pt(s_t, [d_t - w, d_t + w, d_t], [height * lo, height * lo, height * top])
                self.face(pts, color * light * (0.7 + 0.2 * k), depth, order=1 + k, lit=False)
            shadow_r = w
        else:
            centre = base + np.array([0, 0, height - r])
            blobs = _CROWNS[int(h[0] * len(_CROWNS)) % len(_CROWNS)]
            sun_side = float(np.sign(self.sun_dir[1]))
            ang = np.linspace(0, 2 * np.pi, 10, endpoint=False)
            ring = np.stack([np.cos(ang), np.sin(ang)], 1)
            for k, (ox, oy, oz, size, squash) in enumerate(blobs):
                shade = 0.7 + 0.5 * (oz + 0.55) / 1.1 + 0.15 * oy * sun_side
                rr = r * size
                blob = centre + np.array([ox, oy, oz]) * r
                self.disc(blob, (rr, rr * squash), color * light * shade, depth, order=1 + k)
                self.tree_shadows.append(ring * rr * 0.85 + blob[:2] + self.shadow_vec * blob[2])
            return
        ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
        ring = np.stack([np.cos(ang), np.sin(ang)], 1) * shadow_r + base[:2] + self.shadow_vec * (height - shadow_r)
        self.tree_shadows.append(ring)

    def poles(self, where: str, spacing: float) -> None:
        """Street lamps (lit at night) along one or both edges."""
        sides = ["left", "right"] if where == "both" else [where]
        phase = float(hash01(np.array([1]), self.salt)[0]) * spacing
        laterals = []
        for side in sides:
            sign = 1.0 if side == "left" else -1.0
            d_p = self.edges[0 if side == "left" else 1] + sign * 0.9
            laterals.append(d_p - sign * 2.6)
            first = math.ceil((self.s_ego - phase) / spacing) * spacing + phase
            for sp in np.arange(first, min(self.s_ego + 250, self.s_max), spacing):
                depth = float(self.pt(sp, d_p, 0)[0, 0])
                if depth < 1.0:
                    continue
                self.face(self.pt(sp, [d_p - 0.11, d_p + 0.11, d_p + 0.11, d_p - 0.11], [0, 0, 10, 10]),
                          np.array([0.5, 0.5, 0.52]), depth)
                self.face(self.pt(sp, [d_p, d_p - sign * 2.6, d_p - sign * 2.6, d_p], [9.85, 9.85, 10, 10]),
                          np.array([0.45, 0.45, 0.47]), depth, order=1)
                glow = 3.0 if self.scene.env.streetlights else 0.0
                self.face(self.pt(sp, [d_p - sign * 2.1, d_p - sign * 2.7, d_p - sign * 2.7, d_p - sign * 2.1],
                                 [9.7, 9.7, 9.85, 9.85]), np.array([0.5, 0.8, 1.0]), depth, order=2,
                          glow=glow, lit=not glow)
                base = self.pt(sp, [d_p - 0.11, d_p + 0.11], 0)[:, :2]
                self.shadows.append(np.concatenate([base, base[::-1] + self.shadow_vec * 10.0]))
        self.lamps = (spacing, phase, tuple(laterals))

    def overpass(self, s_b: float, length: float, clearance: float) -> None:
        """A bridge across the road: deck face, underside, pillars, and its shadow band."""
        if s_b + length < self.s_ego - 1 or s_b > self.s_max - length - 1:
            return
        span = np.linspace(-80, 80, 9)
        depth = float(self.pt(s_b, 0, 0)[0, 0])
        concrete = np.array([0.6, 0.62, 0.62])
        self.face(np.concatenate([self.pt(s_b, span, clearance + 1.4), self.pt(s_b, span[::-1], clearance)]),
                  concrete, depth, order=2)
        self.face(np.concatenate([self.pt(s_b, span, clearance + 1.4), self.pt(s_b, span[::-1], clearance + 2.3)]),
                  concrete * 0.8, depth, order=3)
        under = np.concatenate([self.pt(s_b, span, clearance), self.pt(s_b + length, span[::-1], clearance)])
        self.face(under, concrete * 0.25, depth + length / 2, order=1, lit=False)
        for d_p in (self.edges[0] + 1.2, self.edges[1] - 1.2):
            pd = float(self.pt(s_b + length / 2, d_p, 0)[0, 0])
            self.face(self.pt(s_b + length / 2, [d_p - 0.6, d_p + 0.6, d_p + 0.6, d_p - 0.6],
                             [0, 0, clearance, clearance]), concrete * 0.8, pd, order=0)
        shift = self.shadow_vec * clearance
        band = np.concatenate([self.pt(s_b, span, 0)[:, :2], self.pt(s_b + length, span[::-1], 0)[:, :2]])
        self.shadows.append(band + shift)

    def ego_shadow(self) -> None:
        """The ego vehicle's own shadow, seen at the bottom of the image when the sun is behind."""
        foot = np.array([[-2.6, 0.9], [2.0, 0.9], [2.0, -0.9], [-2.6, -0.9]])
        self.ground_shadow(foot, self.scene.camera.height_m * 0.95)

    def buildings(self, side: str) -> None:
        """Blocks of buildings set back from one side of the road, with floors of windows."""
        sign = 1.0 if side == "left" else -1.0
        edge = self.edges[0 if side == "left" else 1]
        salt = self.salt + (41 if side == "left" else 43)
        cells = np.arange(int(self.s_ego // 45) - 1, int(min(self.s_max, self.s_ego + 260) // 45))
        for c in cells[hash01(cells, salt) < 0.6]:
            h = hash01(np.array([c * 5 + k for k in range(5)]), salt + 1)
            s0, length = c * 45.0 + 5 * h[0], 15.0 + 22.0 * h[1]
            if s0 + length > self.s_max or s0 + length < self.s_ego + 2:
                continue
            near, far, height = edge + sign * (11 + 20 * h[2]), edge + sign * (23 + 20 * h[2]), 6 + 22 * h[3]
            pt = self.local(s0, near)
            depth = float(pt(s0, near, 0)[0, 0])
            wall = _FACADES[int(h[4] * len(_FACADES)) % len(_FACADES)]
            self.face(pt([s0, s0 + length, s0 + length, s0], near, [0, 0, height, height]), wall, depth)
            self.face(pt(s0, [near, far, far, near], [0, 0, height, height]), wall * 0.9, depth, order=1)
            night = self.scene.env.time == "night"
            for k in range(min(int(height // 3.2), 8)):
                z0 = 1.0 + 3.2 * k
                lit = night and hash01(np.array([c * 16 + k]), salt + 2)[0] < 0.35
                self.face(pt([s0 + 1, s0 + length - 1, s0 + length - 1, s0 + 1], near - sign * 0.02,
                             [z0, z0, z0 + 1.4, z0 + 1.4]), WINDOW_LIT if lit else GLASS * 2.0, depth, order=2 + k,
                          lit=not lit)

    def sign(self, s_sign: float) -> None:
        """A green roadside direction sign on two posts."""
        d_s = self.edges[1] - 3.0
        depth = float(self.pt(s_sign, d_s, 0)[0, 0])
        for off in (-1.2, 1.2):
            self.face(self.pt(s_sign, [d_s + off - 0.08, d_s + off + 0.08] * 1 + [d_s + off + 0.08, d_s + off - 0.08],
                             [0, 0, 3.5, 3.5]), np.array([0.45, 0.45, 0.45]), depth + 0.05)
        self.face(self.pt(s_sign, [d_s - 2.0, d_s + 2.0, d_s + 2.0, d_s - 2.0], [2.3, 2.3, 4.6, 4.6]),
                  np.array([0.3, 0.45, 0.05]), depth, order=1)
