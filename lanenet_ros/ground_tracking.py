"""The ego lane's two lines tracked in the ground plane: a Kalman filter over their ``c0..c3``.

Each frame's ground points of the ego-left and ego-right line are measurements of that line's cubic
``y(x) = c0 + c1 x + c2 x^2 + c3 x^3`` (metres, x forward, y left). The filter predicts each line from the last
frames (a random walk: the lane changes slowly in the vehicle frame), keeps the points that lie near that
prediction, and updates the line with them; the two lines share their heading ``c1`` softly where their own fits
agree (as :func:`lanenet_ros.ground.fit_ego_pair` does in one frame), and so does a line seen alone with the line
one lane out that stands in for the hidden one (:func:`lanenet_ros.ground.name_ego_lines`).

What it is for: a detection that is pulled off the paint for a few frames, which a fit of each frame alone
follows at once. A car closing in ahead hides the far part of both lines and the network draws them on up its
sides; a truck's lower edge in the next lane is taken for the ego line. Each frame moves the tracked line only as
far as the frame's points outweigh the frames before (``points_worth``), and points far from the predicted line are
left out (the prediction's spread grows with distance, so this judges the near points most). A line whose near
points leave the prediction (another line taken for it) is held at the prediction for up to ``max_coast_s``, then
started afresh from the frame's own fit; one that now matches the other line's prediction (the decoder renamed the
lines as the car crossed one) takes that line's state with it.

Measured on the default model's rendered drives (bench/calibration.py; docs/node.md "Measured").
"""
from __future__ import annotations

import numpy as np

_SCALE = 50.0  # x is used in units of 50 m inside the filter, so that c0..c3 have similar magnitudes
_POWERS = np.append(_SCALE ** np.arange(4), 1.0)  # c0..c3 scaled, then c0's rate (m/s)
_N = 5  # state per line: c0, c1, c2, c3 (scaled) and how fast c0 changes
_FRAME_S = 0.1  # the time between frames assumed without stamps (10 Hz)


class EgoLaneFilter:
    """Tracks the ego lane's left (side 0) and right (side 1) line in the ground plane."""

    def __init__(self, process_noise: tuple[float, float, float, float] = (0.15, 0.02, 1e-3, 5e-6),
                 point_sigma_m: float = 0.15, points_worth: float = 6.0, gate_sigmas: float = 4.0,
                 near_m: float = 15.0, min_inliers: float = 0.5, max_jump_m: float = 1.0, max_coast_s: float = 0.4,
                 heading_sigma: float = 0.002, lateral_accel: float = 1.0, max_gap_s: float = 1.0) -> None:
        """Configure the filter.

        Args:
            process_noise: how far ``c0`` (m), ``c1`` (rad), ``c2`` (1/m), ``c3`` (1/m^2) may drift between
                frames 0.1 s apart (one standard deviation; it grows with the square root of the time). ``c3``
                is a road's rate of curvature change over 6 (a tight clothoid's 1.7e-5): a looser one lets a
                detection's far end bend the near heading (docs/node.md, "Measured").
            point_sigma_m: lateral scatter of one ground point of a detected line (one standard deviation).
            points_worth: a line's points in one frame count as at most this many independent points (the
                scatter of neighbouring points of one mask is not independent): lower is steadier and lags more.
            gate_sigmas: a point is kept when it lies within this many standard deviations of the predicted
                line (the prediction's and the point's own).
            near_m: the line is taken as the same line when at least ``min_inliers`` of its points within this
                many metres of its nearest one are kept.
            min_inliers: see ``near_m``.
            max_jump_m: nor is it when its near points lie this far from the predicted line (median), however
                uncertain the prediction has become: lane lines are 2.5 m apart or more.
            max_coast_s: a line whose near points leave its prediction is held at the prediction this long, then
                started afresh from the frame's own fit.
            heading_sigma: how closely the two lines' headings are tied when both are seen (rad).
            lateral_accel: how fast the car's sideways speed changes (m/s per second, one standard deviation):
                each line's ``c0`` moves on at the speed of the last frames (a lane change does not lag behind).
            max_gap_s: with stamps, a jump back in time or a gap longer than this starts afresh.

        Raises:
            ValueError: a parameter out of range (named in the message).
        """
        if len(process_noise) != 4 or min(process_noise) <= 0:
            raise ValueError(f"process_noise must be 4 positive numbers, got {process_noise}")
        for name, value in (("point_sigma_m", point_sigma_m), ("points_worth", points_worth),
                            ("gate_sigmas", gate_sigmas), ("near_m", near_m), ("heading_sigma", heading_sigma),
                            ("max_jump_m", max_jump_m), ("lateral_accel", lateral_accel)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not 0 < min_inliers <= 1 or max_coast_s < 0:
            raise ValueError(f"min_inliers must be in (0, 1] and max_coast_s >= 0, got {min_inliers}, {max_coast_s}")
        # per second, in the scaled coefficients
        self._q = np.append((np.asarray(process_noise, np.float64) * _POWERS[:4]) ** 2 / _FRAME_S, lateral_accel**2)
        # a new line's spread about its own fit, and about its rate (the other line's, or 0), 1 m/s
        self._init = (np.array([0.3, 0.02, 1e-3, 2e-5, 1.0]) * _POWERS) ** 2
        self.point_sigma_m, self.points_worth, self.gate_sigmas = point_sigma_m, points_worth, gate_sigmas
        self.near_m, self.min_inliers, self.max_coast_s = near_m, min_inliers, max_coast_s
        self.max_jump_m = max_jump_m
        self.heading_sigma, self.max_gap_s = heading_sigma, max_gap_s
        self._last_stamp: float | None = None
        self.reset()

    def reset(self) -> None:
        """Forget both lines (a new drive, a new camera or calibration)."""
        self._x: list[np.ndarray | None] = [None, None]  # scaled coefficients per side
        self._p: list[np.ndarray | None] = [None, None]  # their covariance
        self._held = [0.0, 0.0]  # seconds each line has been held at its prediction (or unseen)
        self._range: list[tuple[float, float]] = [(0.0, 0.0), (0.0, 0.0)]

    def update(self, lines: dict[int, tuple[np.ndarray, np.ndarray, tuple[float, float]]], share_heading: bool,
               stamp: float | None = None, partner: tuple[np.ndarray, np.ndarray] | None = None,
               ) -> dict[int, tuple[np.ndarray, tuple[float, float]]]:
        """Take one frame's ego lines and return them as tracked.

        Args:
            lines: side (0 left, 1 right) -> (ground points (N, 2), finite and ahead; the frame's own fit
                ``[c0, c1, c2, c3]``; its x range). Sides not seen this frame are left out.
            share_heading: the two lines' own fits agree on their heading (tie them).
            stamp: the frame's time in seconds; None: 0.1 s after the last.
            partner: with one side in ``lines``, the line one lane out on the other side (a car ahead hides that
                side's ego line) as (ground points, its frame fit): with ``share_heading``, the side seen shares
                its heading with it, as it would with the hidden line (it is parallel at the car). Not tracked.

        Returns:
            side -> (coefficients ``[c0, c1, c2, c3]``, x range) for each side in ``lines``.
        """
        dt = self._elapsed(stamp)
        for s in (0, 1):
            if self._x[s] is not None:
                move = np.eye(_N)
                move[0, 4] = dt
                self._x[s] = move @ self._x[s]
                self._p[s] = move @ self._p[s] @ move.T + np.diag(self._q * dt)
                self._held[s] += dt
        matched = {s: self._match(pts) for s, (pts, _, _) in lines.items()}
        if any(m is not None and m[0] != s for s, m in matched.items()):
            self._rename(matched)
        used: dict[int, np.ndarray] = {}
        out = {}
        for s, (pts, coeffs, x_range) in lines.items():
            m = matched[s]
            if m is None and self._x[s] is not None and self._held[s] <= self.max_coast_s + 1e-9:
                out[s] = self._x[s][:4] / _POWERS[:4], self._range[s]  # held at the prediction
                continue
            if m is None:  # new, or held too long: start from the frame's own fit
                # its c0 moves as the other line's does (the car moves sideways), else starts at rest
                other = self._x[1 - s]
                speed = 0.0 if other is None else float(other[4])
                self._x[s], self._p[s] = np.append(coeffs, speed) * _POWERS, np.diag(self._init)
                used[s], self._range[s] = pts, x_range
            else:
                used[s] = pts[m[1]]
                self._range[s] = float(used[s][:, 0].min()), float(used[s][:, 0].max())
            self._held[s] = 0.0
        for s in (0, 1):
            if s not in lines and self._x[s] is not None and self._held[s] > self.max_coast_s + 1e-9:
                self._x[s] = self._p[s] = None
        if used:
            self._correct(used, share_heading and (len(used) == 2 or partner is not None), partner)
            for s in used:
                out[s] = self._x[s][:4] / _POWERS[:4], self._range[s]
        return out

    def _elapsed(self, stamp: float | None) -> float:
        if stamp is None:
            return _FRAME_S
        last, self._last_stamp = self._last_stamp, float(stamp)
        if last is None:
            return _FRAME_S
        dt = float(stamp) - last
        if not 0 <= dt <= self.max_gap_s:
            self.reset()
            return _FRAME_S
        return max(dt, 1e-3)

    def _match(self, pts: np.ndarray) -> tuple[int, np.ndarray] | None:
        """The side whose prediction these points follow (most near points kept) and the points kept, or None."""
        best, best_share = None, 0.0
        near = pts[:, 0] <= pts[:, 0].min() + self.near_m
        basis = _basis(pts[:, 0])
        for t in (0, 1):
            if self._x[t] is None:
                continue
            spread = np.einsum("ij,jk,ik->i", basis, self._p[t], basis) + self.point_sigma_m**2
            off = np.abs(pts[:, 1] - basis @ self._x[t])
            kept = off <= self.gate_sigmas * np.sqrt(spread)
            share = float(kept[near].mean())
            if (share >= self.min_inliers and kept.sum() >= min(4, len(pts)) and share > best_share
                    and np.median(off[near]) <= self.max_jump_m):
                best, best_share = (t, kept), share
        return best

    def _rename(self, matched: dict) -> None:
        """The decoder renamed the lines (the car crossed one): each side takes the state its points follow."""
        x, p = [None, None], [None, None]
        for s, m in matched.items():
            if m is not None:
                x[s], p[s] = self._x[m[0]], self._p[m[0]]
                matched[s] = (s, m[1])
        self._x, self._p, self._held = x, p, [0.0, 0.0]

    def _correct(self, used: dict[int, np.ndarray], share_heading: bool,
                 partner: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """The Kalman update (information form) of the sides in ``used`` with their kept points; with one side
        and a ``partner`` (points, frame fit), that line is a second block, started from its fit as a new line
        is, whose heading the tie shares and whose state is then dropped."""
        sides = sorted(used)
        blocks = [(self._x[s], self._p[s], used[s]) for s in sides]
        if share_heading and len(sides) == 1 and partner is not None:
            blocks.append((np.append(partner[1], 0.0) * _POWERS, np.diag(self._init), partner[0]))
        n = _N * len(blocks)
        info, vec = np.zeros((n, n)), np.zeros(n)
        for j, (x, p, pts) in enumerate(blocks):
            block = slice(_N * j, _N * j + _N)
            prior = np.linalg.inv(p)
            basis = _basis(pts[:, 0])
            weight = 1.0 / (self.point_sigma_m**2 * max(1.0, len(pts) / self.points_worth))
            info[block, block] = prior + weight * basis.T @ basis
            vec[block] = prior @ x + weight * basis.T @ pts[:, 1]
        if share_heading and len(blocks) == 2:
            tie = np.zeros(n)
            tie[1], tie[_N + 1] = 1.0 / _SCALE, -1.0 / _SCALE
            info += np.outer(tie, tie) / self.heading_sigma**2
        cov = np.linalg.inv(info)
        x = cov @ vec
        for j, s in enumerate(sides):
            block = slice(_N * j, _N * j + _N)
            self._x[s], self._p[s] = x[block], cov[block, block]


def _basis(x: np.ndarray) -> np.ndarray:
    u = np.asarray(x, np.float64) / _SCALE
    return np.stack([np.ones_like(u), u, u * u, u * u * u, np.zeros_like(u)], axis=1)
