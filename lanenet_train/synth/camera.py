"""Pinhole camera with radial distortion (OpenCV's k1, k2) looking at a flat road.

Frames: the vehicle frame has x forward, y left, z up, origin on the ground below the camera.
The camera sits at height ``height_m`` and is pitched down by ``pitch_rad``; image x goes right and
image y goes down (OpenCV). Distortion follows OpenCV: ``x_d = x_u (1 + k1 r^2 + k2 r^4)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import cv2
import numpy as np


@lru_cache(maxsize=64)
def _max_valid_radius(k1: float, k2: float) -> float:
    r = np.linspace(0.0, 3.0, 601)
    slope = 1.0 + 3.0 * k1 * r**2 + 5.0 * k2 * r**4
    bad = np.nonzero(slope <= 0.05)[0]
    return float(r[bad[0] - 1]) if bad.size else 3.0


@dataclass(frozen=True)
class CameraParams:
    """Intrinsics and mounting of the synthetic camera, in output-image pixels.

    Attributes:
        fx: focal length along image x (pixels).
        fy: focal length along image y (pixels).
        cx: principal point x (pixels, pixel centres at integers).
        cy: principal point y (pixels).
        height_m: camera height above the road (metres).
        pitch_rad: downward pitch (radians, positive looks down).
        k1: radial distortion coefficient (OpenCV).
        k2: radial distortion coefficient (OpenCV).
        width: image width (pixels).
        height: image height (pixels).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    height_m: float
    pitch_rad: float
    k1: float = 0.0
    k2: float = 0.0
    width: int = 1280
    height: int = 720

    def to_dict(self) -> dict:
        """Plain JSON-able dictionary (floats and ints) of every field."""
        return {k: (int(v) if k in ("width", "height") else float(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> CameraParams:
        """Inverse of :meth:`to_dict` (extra keys are ignored)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    def scaled(self, scale: float) -> CameraParams:
        """The same camera for an image resized by ``scale`` (pixel-centre convention of cv2.resize)."""
        return CameraParams(
            fx=self.fx * scale, fy=self.fy * scale,
            cx=(self.cx + 0.5) * scale - 0.5, cy=(self.cy + 0.5) * scale - 0.5,
            height_m=self.height_m, pitch_rad=self.pitch_rad, k1=self.k1, k2=self.k2,
            width=round(self.width * scale), height=round(self.height * scale),
        )

    def max_valid_radius(self) -> float:
        """Largest undistorted normalised radius for which the distortion stays monotonic (capped at 3)."""
        return _max_valid_radius(self.k1, self.k2)

    def lens_is_tame(self, min_slope: float = 0.4) -> bool:
        """Whether the distortion stays comfortably monotonic out to the image corners.

        Args:
            min_slope: least allowed d(r_distorted)/d(r_undistorted) at the corners.

        Returns:
            True when every corner's ray lies where the lens model has at least that slope.
        """
        corners_u = np.array([0.0, self.width - 1.0, 0.0, self.width - 1.0])
        corners_v = np.array([0.0, 0.0, self.height - 1.0, self.height - 1.0])
        xu, yu = self.undistort_normalised(corners_u, corners_v, iterations=20)
        r2 = xu * xu + yu * yu
        if r2.max() >= self.max_valid_radius() ** 2:
            return False
        slope = 1.0 + 3.0 * self.k1 * r2 + 5.0 * self.k2 * r2 * r2
        return bool(slope.min() >= min_slope)

    def vehicle_to_camera(self, pts: np.ndarray) -> np.ndarray:
        """Vehicle-frame points (N, 3) (x fwd, y left, z up) to camera-frame points (N, 3) (OpenCV axes)."""
        pts = np.asarray(pts, dtype=np.float64)
        s, c = np.sin(self.pitch_rad), np.cos(self.pitch_rad)
        x, y, z = pts[:, 0], pts[:, 1], pts[:, 2] - self.height_m
        return np.stack([-y, -x * s - z * c, x * c - z * s], axis=1)

    def _distortion(self, r2: np.ndarray) -> np.ndarray:
        """Radial factor, held constant beyond the monotonic radius so far points never fold back."""
        r2 = np.minimum(r2, self.max_valid_radius() ** 2)
        return 1.0 + self.k1 * r2 + self.k2 * r2 * r2

    def camera_to_pixels(self, cam: np.ndarray) -> np.ndarray:
        """Camera-frame points (N, 3) with z > 0 to distorted pixels (N, 2)."""
        zc = np.maximum(cam[:, 2], 1e-6)
        xu, yu = cam[:, 0] / zc, cam[:, 1] / zc
        factor = self._distortion(xu * xu + yu * yu)
        return np.stack([self.fx * xu * factor + self.cx, self.fy * yu * factor + self.cy], axis=1)

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project vehicle-frame points to distorted image pixels.

        Args:
            pts: (N, 3) points, or (N, 2) ground points (z = 0), in metres.

        Returns:
            ``(uv, valid)``: (N, 2) float64 pixel coordinates and a (N,) bool mask of points in front of
            the camera and inside the radius where the distortion model is monotonic.
        """
        pts = np.asarray(pts, dtype=np.float64)
        if pts.shape[1] == 2:
            pts = np.concatenate([pts, np.zeros((len(pts), 1))], axis=1)
        cam = self.vehicle_to_camera(pts)
        uv = self.camera_to_pixels(cam)
        zc = np.maximum(cam[:, 2], 1e-6)
        r2 = (cam[:, 0] / zc) ** 2 + (cam[:, 1] / zc) ** 2
        valid = (cam[:, 2] > 1e-3) & (r2 < self.max_valid_radius() ** 2)
        return uv, valid

    def undistort_normalised(self, u: np.ndarray, v: np.ndarray, iterations: int = 8) -> tuple:
        """Pixel coordinates to undistorted normalised coordinates (Newton steps on the radius).

        Args:
            u: pixel x (any shape).
            v: pixel y (same shape).
            iterations: Newton steps (a handful reach 1e-9 for dash-cam lenses).

        Returns:
            ``(xu, yu)`` arrays of the input shape.
        """
        xd = (np.asarray(u, dtype=np.float64) - self.cx) / self.fx
        yd = (np.asarray(v, dtype=np.float64) - self.cy) / self.fy
        if self.k1 == 0.0 and self.k2 == 0.0:
            return xd, yd
        rd = np.sqrt(xd * xd + yd * yd)
        rv = self.max_valid_radius()
        r = rd.copy()
        for _ in range(iterations):
            rc = np.minimum(r, rv)
            f = 1.0 + self.k1 * rc**2 + self.k2 * rc**4
            slope = np.where(r < rv, 1.0 + 3.0 * self.k1 * rc**2 + 5.0 * self.k2 * rc**4, f)
            r = np.maximum(r - (r * f - rd) / slope, 0.0)
        scale = np.divide(r, rd, out=np.ones_like(rd), where=rd > 1e-12)
        return xd * scale, yd * scale

    def pixel_rays(self, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Undistorted normalised coordinates of every pixel centre.

        The lens model is smooth, so it is inverted exactly on a grid every ``step`` pixels and
        interpolated bilinearly in between (error far below 0.01 pixel for dash-cam lenses).

        Returns:
            ``(a, b)``: (height, width) float32 arrays, x/z and y/z of each pixel's ray.
        """
        if self.k1 == 0.0 and self.k2 == 0.0:
            u = ((np.arange(self.width) - self.cx) / self.fx).astype(np.float32)
            v = ((np.arange(self.height) - self.cy) / self.fy).astype(np.float32)
            return np.broadcast_to(u, (self.height, self.width)).copy(), \
                np.broadcast_to(v[:, None], (self.height, self.width)).copy()
        mw = max(2, int(np.ceil((self.width - 1) / step)) + 1)
        mh = max(2, int(np.ceil((self.height - 1) / step)) + 1)
        a, b = self.undistort_normalised(*np.meshgrid(np.linspace(0, self.width - 1, mw),
                                                      np.linspace(0, self.height - 1, mh)))
        # bilinear interpolation of the coarse grid at every pixel (cv2.remap, no BLAS threads)
        mx = np.broadcast_to(np.arange(self.width, dtype=np.float32) * ((mw - 1) / (self.width - 1)),
                             (self.height, self.width))
        my = np.broadcast_to((np.arange(self.height, dtype=np.float32) * ((mh - 1) / (self.height - 1)))[:, None],
                             (self.height, self.width))
        mx, my = np.ascontiguousarray(mx), np.ascontiguousarray(my)
        return tuple(cv2.remap(g.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                     for g in (a, b))

    def ground_rays(self, rays: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Intersect every pixel's ray with the road plane.

        Args:
            rays: the output of :meth:`pixel_rays`, when already computed.

        Returns:
            ``(X, Y, valid)``: (height, width) float32 forward and left ground coordinates in metres,
            and a bool mask of pixels whose ray hits the ground ahead (below the horizon).
        """
        a, b = self.pixel_rays() if rays is None else rays
        s, c = np.float32(np.sin(self.pitch_rad)), np.float32(np.cos(self.pitch_rad))
        down = b * c + s
        valid = down > 1e-4
        t = np.float32(self.height_m) / np.where(valid, down, np.float32(1.0))
        X = np.where(valid, t * (c - b * s), 0.0).astype(np.float32)
        Y = np.where(valid, -t * a, 0.0).astype(np.float32)
        valid &= (X > 0.3) & (a * a + b * b < self.max_valid_radius() ** 2)
        return X, Y, valid

    def horizon_row(self) -> float:
        """Image row of the horizon at the principal point column (pixels)."""
        yu = -np.tan(self.pitch_rad)
        return float(self.cy + self.fy * yu * (1.0 + self.k1 * yu**2 + self.k2 * yu**4))
