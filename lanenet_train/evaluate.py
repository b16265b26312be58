"""`lanenet-train evaluate -e SPEC -m MODEL [-k KEY]`: benchmark metrics, a JSON report and pictures.

MODEL is a training checkpoint or an exported ONNX model (then run by the runtime's ONNX Runtime backend).

Each validation image goes through the runtime's preprocessing, the trained network and the runtime's
decoder; then TuSimple accuracy / FP / FN (samples with TuSimple labels), CULane precision / recall / F1
(samples with lane polylines) and the confusion matrix (mIoU, per-class IoU) at camera resolution, all
from ``lanenet_ros.metrics``. Writes ``report.json``, ``per_class_iou.png``, ``confusion_matrix.png`` and
``worst_frames.png`` into the output folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lanenet_ros.fileio import atomic_write_text
from lanenet_ros.lanes import LaneFrame
from lanenet_ros.metrics import ConfusionMatrix, CULaneAccumulator, TuSimpleAccumulator, lanes_to_tusimple
from lanenet_ros.overlay import draw_overlay
from lanenet_train import eval_report
from lanenet_train.checkpoint import CheckpointError
from lanenet_train.data.layout import DatasetError
from lanenet_train.datasets import class_lut, read_source
from lanenet_train.distributed import check_device
from lanenet_train.spec import SpecError, load_spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lanenet-train evaluate``."""
    parser.add_argument("-e", "--experiment_spec", required=True, help="spec file (its validation_data_sources)")
    parser.add_argument("-m", "--model", required=True, help="training checkpoint or exported .onnx")
    parser.add_argument("-k", "--key", default=None, help="passphrase of an encrypted checkpoint")
    parser.add_argument("-o", "--output_dir", default=None, help="report folder (default: MODEL's folder/evaluation)")
    parser.add_argument("--split", choices=("val", "train"), default="val",
                        help="evaluate the validation sources (default) or the training sources")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--decode", action="append", default=[], metavar="NAME=VALUE",
                        help="decoder setting (after evaluation_config.decode), e.g. --decode max_lanes=5")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="spec overrides")


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the report; returns the exit code (2 for bad inputs)."""
    from lanenet_ros.decode.settings import parse_pairs
    from lanenet_train.predict import Predictor

    try:
        spec = load_spec(args.experiment_spec, args.overrides)
        params = parse_pairs([*spec.evaluation_config.decode, *args.decode])
        predictor = Predictor(args.model, args.key, check_device(args.device), params)
        out = Path(args.output_dir) if args.output_dir else Path(args.model).resolve().parent / "evaluation"
        report = evaluate(predictor, spec, out, args.split)
    except (SpecError, CheckpointError, DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(report)))
    print(f"full report: {out / 'report.json'}")
    return 0


def summary_lines(report: dict[str, Any], worst_classes: int = 3) -> list[str]:
    """The headline figures of a report, a few lines for the terminal (the rest is in report.json)."""
    lines = [f"frames: {report['frames']}"]
    if "tusimple" in report:
        t = report["tusimple"]
        lines.append(f"TuSimple: accuracy {t['accuracy']:.4f}, FP {t['fp']:.4f}, FN {t['fn']:.4f}")
    for key, split in report.get("tusimple_by_condition", {}).items():
        lines.append(f"TuSimple by {key}: " + "; ".join(f"{value} {r['accuracy']:.3f} / FP {r['fp']:.3f} / "
                                                         f"FN {r['fn']:.3f} ({r['frames']})"
                                                         for value, r in split.items()))
    if "culane" in report:
        c = report["culane"]
        lines.append(f"CULane: precision {c['precision']:.4f}, recall {c['recall']:.4f}, F1 {c['f1']:.4f}")
    if "segmentation" in report:
        seg = report["segmentation"]
        scored = sorted((v, k) for k, v in seg["per_class_iou"].items() if v is not None)
        line = (f"segmentation: mIoU {seg['miou']:.4f} over {len(scored)} classes present (a constant guess "
                f"{seg['constant_baseline_miou']:.4f}), pixel accuracy {seg['pixel_accuracy']:.4f}")
        lanes = [(v, k) for v, k in scored if k != "background"]
        if len(lanes) == 1:  # LaneNet: background and lane
            line += f"; {lanes[0][1]} IoU {lanes[0][0]:.4f}"
        elif scored:
            line += "; lowest: " + ", ".join(f"{k} {v:.3f}" for v, k in scored[:worst_classes])
        lines.append(line)
    return lines


def evaluation_samples(spec: Any, class_names: list[str], split: str) -> list[dict[str, Any]]:
    """Samples of the chosen sources, each with the LUT to the model's class ids.

    Raises:
        DatasetError: no sources of that kind in the spec, or a problem reading one.
    """
    ds = spec.dataset_config
    sources = ds.validation_data_sources if split == "val" else ds.data_sources
    if not sources:
        raise DatasetError(f"dataset_config has no {'validation_' if split == 'val' else ''}data_sources to "
                           "evaluate; add one or pass --split train")
    keys = [m.key for m in ds.target_class_mapping]
    binary = spec.model_config.architecture == "lanenet"
    samples = []
    for src in sources:
        data = read_source(src, ds.image_extension, keys)
        lut = class_lut(data.classes, ds.target_class_mapping, class_names, binary)
        # Apollo labels (and folder masks) have no lane polylines: no CULane score for them
        polylines = bool(data.meta) and data.meta.get("source_format") not in ("apollo", "folder")
        samples += [dict(s, lut=lut, lanes=s.get("lanes") if polylines else None) for s in data.samples]
    return samples


CONDITIONS = ("time", "weather")  # scene fields of synthetic samples (meta.scene) the TuSimple score is split by


class Scorer:
    """Accumulates every metric over frames and remembers a score per frame (to find the worst)."""

    def __init__(self, class_names: list[str], config: Any) -> None:
        self.names, self.config = class_names, config
        self.tusimple, self.culane = TuSimpleAccumulator(), CULaneAccumulator()
        self.confusion = ConfusionMatrix(len(class_names))
        self.frame_scores: list[tuple[float, str]] = []
        self.per_frame: list[dict[str, Any]] = []
        self.tusimple_lane_counts: list[int] = []
        self.by_condition: dict[str, dict[str, TuSimpleAccumulator]] = {}

    def add(self, sample: dict[str, Any], frame: LaneFrame) -> float:
        """Score one frame against its sample's labels; returns the frame's score (higher is better)."""
        size = (frame.width, frame.height)
        scores = []
        record: dict[str, Any] = {"id": sample["id"], "lanes": len(frame.lanes)}
        if sample.get("tusimple"):
            h = sample["tusimple"]["h_samples"]
            acc, fp, fn = self.tusimple.add(lanes_to_tusimple(frame.lanes, h, frame.width),
                                            sample["tusimple"]["lanes"], h)
            self.tusimple_lane_counts.append(len(sample["tusimple"]["lanes"]))
            scores.append(("TuSimple acc", acc))
            record["tusimple"] = {"accuracy": float(acc), "fp": float(fp), "fn": float(fn)}
            scene = (sample.get("meta") or {}).get("scene") or {}
            for key in CONDITIONS:
                if key in scene:
                    split = self.by_condition.setdefault(key, {})
                    split.setdefault(str(scene[key]), TuSimpleAccumulator()).per_frame.append((acc, fp, fn))
        if sample.get("lanes") is not None:
            gt = [np.asarray(lane, dtype=np.float64) for lane in sample["lanes"] if len(lane) > 1]
            tp, fp, fn = self.culane.add([lane.points for lane in frame.lanes], gt, size,
                                         lane_width=self.config.culane_lane_width,
                                         iou_threshold=self.config.culane_iou_threshold)
            scores.append(("CULane F1", 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0))
            record["culane"] = {"tp": int(tp), "fp": int(fp), "fn": int(fn)}
        if sample.get("mask"):
            gt_mask = _read_mask(sample["mask"], sample["lut"], frame.class_mask.shape)
            before = self.confusion.matrix.copy()
            self.confusion.update(frame.class_mask, gt_mask)
            frame_matrix = self.confusion.matrix - before
            scores.append(("lane IoU", _lane_iou(frame_matrix)))
            record["lane_iou"] = float(scores[-1][1])
        name, score = scores[0] if scores else ("none", 0.0)
        self.per_frame.append(record)
        self.frame_scores.append((score, f"{sample['id']}: {name} {score:.3f}"))
        return score

    def report(self) -> dict[str, Any]:
        """Everything measured, as plain data."""
        iou = self.confusion.iou()
        report: dict[str, Any] = {"frames": len(self.frame_scores)}
        if self.tusimple.per_frame:
            report["tusimple"] = self.tusimple.result() | _tusimple_lane_check(self.tusimple.per_frame,
                                                                                self.tusimple_lane_counts)
        if self.by_condition:  # synthetic data: the score by time of day and by weather
            report["tusimple_by_condition"] = {key: {value: acc.result() for value, acc in sorted(split.items())}
                                               for key, split in self.by_condition.items()}
        if self.culane.tp + self.culane.fp + self.culane.fn:
            report["culane"] = self.culane.result()
        if self.confusion.matrix.sum():
            report["segmentation"] = {
                "miou": self.confusion.miou(), "pixel_accuracy": self.confusion.pixel_accuracy(),
                "constant_baseline_miou": constant_baseline_miou(self.confusion.matrix),
                "per_class_iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(self.names, iou, strict=True)},
                "confusion_matrix": self.confusion.matrix.tolist()}
        report["per_frame"] = self.per_frame
        return report


def _tusimple_lane_check(per_frame: list[tuple[float, float, float]], lane_counts: list[int]) -> dict:
    """TuSimple's formula assumes at most 5 labelled lanes (real TuSimple has no more): with 6 or more, one
    frame can score above 1. Report how many frames have more and the accuracy over the others."""
    valid = [acc for (acc, _, _), n in zip(per_frame, lane_counts, strict=True) if n <= 5]
    return {"frames_over_5_lanes": len(per_frame) - len(valid),
            "accuracy_frames_up_to_5_lanes": float(np.mean(valid)) if valid else None}


def constant_baseline_miou(matrix: np.ndarray) -> float:
    """The best mIoU a model predicting one class everywhere would score on the same pixels.

    Predicting class k everywhere gives IoU ``n_k / N`` for k and 0 for every other class present.
    """
    counts = matrix.sum(1).astype(np.float64)
    total, present = counts.sum(), counts > 0
    if not total:
        return float("nan")
    return float(max(counts[k] / total / (present.sum() + (not present[k])) for k in range(len(counts))))


def _read_mask(path: str, lut: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DatasetError(f"{path}: cannot read this mask")
    mask = lut[mask[..., 0] if mask.ndim == 3 else mask]
    if mask.shape != shape:
        mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return mask


def _lane_iou(matrix: np.ndarray) -> float:
    """IoU of "any lane class" against background in one frame (1 when neither has lanes)."""
    lane_gt, lane_pred = matrix[1:].sum(), matrix[:, 1:].sum()
    both = matrix[1:, 1:].trace() if matrix.shape[0] > 1 else 0
    union = lane_gt + lane_pred - both
    return float(both / union) if union else 1.0


def evaluate(predictor: Any, spec: Any, out: Path, split: str = "val") -> dict[str, Any]:
    """Run the whole evaluation and write the report and pictures into ``out``.

    Returns:
        The report dict (also written to ``out/report.json``).
    """
    from tqdm import tqdm

    names = predictor.info.class_names
    samples = evaluation_samples(spec, names, split)
    scorer, cfg = Scorer(names, spec.evaluation_config), spec.evaluation_config
    started = time.time()
    for i in tqdm(range(0, len(samples), cfg.batch_size), desc="evaluate", unit="batch"):
        batch = samples[i:i + cfg.batch_size]
        images = [_read_image(s["image"]) for s in batch]
        for sample, frame in zip(batch, predictor(images), strict=True):
            scorer.add(sample, frame)
    report = scorer.report()
    report.update({"model": predictor.info.to_dict(), "split": split, "seconds": round(time.time() - started, 2)})
    eval_report.ensure_dir(out)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    if "segmentation" in report:
        eval_report.plot_class_iou(scorer.confusion.iou(), names, out / "per_class_iou.png")
        eval_report.plot_confusion(scorer.confusion.matrix, names, out / "confusion_matrix.png")
    _worst_frames(predictor, samples, scorer, cfg.num_worst_frames, out / "worst_frames.png")
    return report


def _read_image(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{path}: cannot read this image")
    return image


def _worst_frames(predictor: Any, samples: list[dict], scorer: Scorer, count: int, path: Path) -> None:
    order = sorted(range(len(samples)), key=lambda i: scorer.frame_scores[i][0])[:count]
    if not order:
        return
    images = [_read_image(samples[i]["image"]) for i in order]
    overlays = []
    for i, image, frame in zip(order, images, predictor(images), strict=True):
        overlay = draw_overlay(image, frame, predictor.info.class_colors)
        overlays.append(eval_report.draw_ground_truth(overlay, samples[i].get("lanes") or []))
    eval_report.plot_worst_frames(overlays, [scorer.frame_scores[i][1] for i in order], path)
