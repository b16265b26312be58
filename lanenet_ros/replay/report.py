"""Per-frame records of a replay, and the report, plots and summary made from them (no rclpy, no torch)."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lanenet_ros.decode import hood
from lanenet_ros.decode.fitting import bottom_x
from lanenet_ros.fileio import atomic_write_text
from lanenet_ros.lanes import LaneFrame
from lanenet_ros.metrics import TuSimpleAccumulator, lanes_to_tusimple


@dataclass
class FrameRecord:
    """What one replayed frame gave."""

    index: int
    stamp_ns: int
    lanes: int
    ego_left: bool
    ego_right: bool
    ego_width_px: float | None  # distance between the ego boundaries at the bottom row
    latency_ms: float  # pipeline time (offline) or publish-to-receive time (live)
    stages_ms: dict[str, float] = field(default_factory=dict)
    accuracy: float | None = None
    fp: float | None = None
    fn: float | None = None
    hood_row: float | None = None  # the bonnet's edge row at the centre column, -1 none found; None: not known


def ego_width(frame: LaneFrame) -> float | None:
    """Ego-lane width in pixels at the bottom image row, or None without both ego boundaries.

    Lanes that end above the bottom row are extended straight from their nearest point (as for ordering
    them), not along their polynomial, which can swing far off outside the rows it was fitted on.
    """
    if frame.ego_left_index < 0 or frame.ego_right_index < 0:
        return None
    left, right = frame.lanes[frame.ego_left_index], frame.lanes[frame.ego_right_index]
    return float(bottom_x(right, frame.height) - bottom_x(left, frame.height))


class ReplayLog:
    """Collects FrameRecords, scores them against labels, and writes the report.

    Args:
        labels: TuSimple-format label rows (``lanes``, ``h_samples`` and ``timestamp_ns`` or ``raw_file``), or None.
    """

    def __init__(self, labels: list[dict] | None = None):
        self.records: list[FrameRecord] = []
        self.by_stamp = {int(row["timestamp_ns"]): row for row in labels or [] if "timestamp_ns" in row}
        self.by_file = {str(row["raw_file"]): row for row in labels or [] if "raw_file" in row}
        self.tusimple = TuSimpleAccumulator() if labels else None
        self.calibration: dict | None = None  # self-calibration's result (replay.camera.calibration_summary)
        self.hood_setting: float | None = None  # the decoder's ``hood`` where the frames' bonnet rows are known
        self.image_height = 0

    def label_for(self, stamp_ns: int, index: int) -> dict | None:
        """The label of a frame: by timestamp, else by position in the bag (``raw_file`` = frame index)."""
        return self.by_stamp.get(stamp_ns) or self.by_file.get(str(index))

    def add(self, index: int, stamp_ns: int, frame: LaneFrame, latency_ms: float) -> FrameRecord:
        """Record one frame, scoring it when it has a label."""
        record = FrameRecord(
            index=index, stamp_ns=stamp_ns, lanes=len(frame.lanes), ego_left=frame.ego_left_index >= 0,
            ego_right=frame.ego_right_index >= 0, ego_width_px=ego_width(frame), latency_ms=latency_ms,
            stages_ms={k: v * 1000.0 for k, v in frame.timings.items()},
            hood_row=None if self.hood_setting is None else frame.hood_row)
        self.image_height = frame.height
        label = self.label_for(stamp_ns, index) if self.tusimple is not None else None
        if label is not None:
            h_samples = label["h_samples"]
            pred = lanes_to_tusimple(frame.lanes, h_samples)
            record.accuracy, record.fp, record.fn = self.tusimple.add(pred, label["lanes"], h_samples)
        self.records.append(record)
        return record

    def summary(self, published: int | None = None) -> dict:
        """Overall numbers: frames, lanes, ego availability, width stability, latency, metric, drops."""
        recs = self.records
        latencies = np.array([r.latency_ms for r in recs]) if recs else np.zeros(1)
        widths = np.array([r.ego_width_px for r in recs if r.ego_width_px is not None])
        out = {
            "frames": len(recs),
            "mean_lanes_per_frame": float(np.mean([r.lanes for r in recs])) if recs else 0.0,
            "frames_with_ego_lane": sum(r.ego_left and r.ego_right for r in recs),
            "ego_lane_availability": (sum(r.ego_left and r.ego_right for r in recs) / len(recs)) if recs else 0.0,
            "ego_width_px_mean": float(widths.mean()) if widths.size else None,
            "ego_width_px_std": float(widths.std()) if widths.size else None,
            "latency_ms": {"mean": float(latencies.mean()), "p50": float(np.percentile(latencies, 50)),
                           "p95": float(np.percentile(latencies, 95)), "max": float(latencies.max())},
        }
        if published is not None:
            out["published"] = published
            out["dropped"] = max(0, published - len(recs))
        if self.tusimple is not None and self.tusimple.per_frame:
            out["tusimple"] = self.tusimple.result()
        if self.calibration is not None:
            out["calibration"] = self.calibration
        rows = [r.hood_row for r in recs if r.hood_row is not None]
        if rows and self.hood_setting is not None:
            found = [row for row in rows if row >= 0]
            median = float(np.median(found)) if found else -1.0
            out["bonnet"] = {"frames_found": len(found), "share_of_frames": len(found) / len(rows),
                             "row_median": median if found else None, "image_height": self.image_height,
                             "decode_hood": self.hood_setting,
                             "text": hood.describe(median, self.image_height, self.hood_setting)}
        return out

    def write(self, out_dir: Path, published: int | None = None, notes: dict | None = None) -> dict:
        """Write ``report.json`` and the plots into ``out_dir``; returns the summary (with ``notes`` added)."""
        summary = {**self.summary(published), **(notes or {})}
        report = {"summary": summary, "frames": [asdict(r) for r in self.records]}
        atomic_write_text(out_dir / "report.json", json.dumps(report, indent=1, default=_json_default))
        self.plot(out_dir)
        return summary

    def plot(self, out_dir: Path) -> None:
        """Latency histogram, and metric and lane count over time, as PNG files."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        latencies = [r.latency_ms for r in self.records]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(latencies, bins=30, color="#4477aa")
        ax.set(xlabel="latency (ms)", ylabel="frames", title="Latency per frame")
        fig.tight_layout()
        fig.savefig(out_dir / "latency.png", dpi=100)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(8, 3.5))
        t = [(r.stamp_ns - self.records[0].stamp_ns) / 1e9 for r in self.records] if self.records else []
        ax.step(t, [r.lanes for r in self.records], where="post", label="lanes found")
        if any(r.accuracy is not None for r in self.records):
            acc = [r.accuracy if r.accuracy is not None else math.nan for r in self.records]
            ax2 = ax.twinx()
            ax2.plot(t, acc, color="#cc6677", label="TuSimple accuracy")
            ax2.set(ylabel="accuracy", ylim=(0, 1.05))
        ax.set(xlabel="time (s)", ylabel="lanes", title="Lanes and accuracy over the drive")
        fig.tight_layout()
        fig.savefig(out_dir / "timeline.png", dpi=100)
        plt.close(fig)


def format_summary(summary: dict) -> str:
    """The summary as a few human-readable lines."""
    lat = summary["latency_ms"]
    lines = [
        f"frames: {summary['frames']}" + (f" of {summary['published']} published ({summary['dropped']} dropped)"
                                          if "published" in summary else ""),
        f"lanes per frame: {summary['mean_lanes_per_frame']:.2f}; ego lane found in "
        f"{summary['ego_lane_availability'] * 100:.1f}% of frames",
        f"latency: mean {lat['mean']:.1f} ms, p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms",
    ]
    if summary.get("ego_width_px_mean") is not None:
        lines.append(f"ego lane width: {summary['ego_width_px_mean']:.1f} px "
                     f"(std {summary['ego_width_px_std']:.1f} px)")
    if "tusimple" in summary:
        m = summary["tusimple"]
        lines.append(f"TuSimple: accuracy {m['accuracy']:.4f}, FP {m['fp']:.4f}, FN {m['fn']:.4f}")
    if "bonnet" in summary:
        b = summary["bonnet"]
        seen = f"found in {100 * b['share_of_frames']:.1f} % of frames, " if b["frames_found"] else ""
        lines.append(f"bonnet: {seen}{b['text']}")
    return "\n".join(lines)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
