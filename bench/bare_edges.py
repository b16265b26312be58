"""TuSimple accuracy / FP / FN of a model in frames with and without a bare road edge (an outer edge with no
painted line) among the lines TuSimple labels, on a synthetic benchmark-labelled set. The figures in
docs/default_model.md (FP 0.20 against 0.065 on the seed-2 set) come from here.

    .venv/bin/python bench/bare_edges.py [--model lanenet_ros/models/default.onnx] [--dataset data/tusimple_tune]

The seed-2 set is made by tools/train_default_model.sh (or: lanenet-train synth --format tusimple --out
data/raw_tune --count 200 --seed 2 --val-fraction 0, then lanenet-train convert --format tusimple --input
data/raw_tune --output data/tusimple_tune --lane-width 12 --val-fraction 0). Not a timing: not run by make bench.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lanenet_ros.metrics import TuSimpleAccumulator, lanes_to_tusimple
from lanenet_ros.pipeline import LanePipeline
from lanenet_train.data.layout import load_dataset

BENCHMARK_LINES = {"SECOND_LEFT", "EGO_LEFT", "EGO_RIGHT", "SECOND_RIGHT"}


def has_bare_edge(meta: dict) -> bool:
    """Whether an outer road edge without paint lies among the (up to) two lines on each side of the ego lane.

    Inner lane lines are always painted, so the labelled lines fall short of the ones there are exactly when
    an outer edge within reach is bare.
    """
    scene = meta["scene"]
    lanes, ego = scene["lanes"], scene["ego_lane"]  # lanes counted from the left, oncoming ones included
    there = min(ego + 1, 2) + min(lanes - ego, 2)
    painted = sum(lane["position"] in BENCHMARK_LINES for lane in meta["synth_lanes"])
    return painted < there


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: the embedded default model)")
    parser.add_argument("--dataset", default="data/tusimple_tune", help="converted synthetic TuSimple set")
    args = parser.parse_args()
    root = Path(args.dataset)
    _, samples = load_dataset(root)
    pipe = LanePipeline(args.model, backend="onnxruntime-cpu", tracking=False)
    groups = {True: TuSimpleAccumulator(), False: TuSimpleAccumulator()}
    for s in tqdm(samples, unit="frame"):
        frame = pipe.process(cv2.imread(str(root / s["image"])))
        h = s["tusimple"]["h_samples"]
        groups[has_bare_edge(s["meta"])].add(lanes_to_tusimple(frame.lanes, h, frame.width), s["tusimple"]["lanes"], h)
    for bare, acc in groups.items():
        r = acc.result()
        print(f"{'bare edge among the labelled lines' if bare else 'every labelled line painted':36s} "
              f"{r['frames']:4d} frames: accuracy {r['accuracy']:.3f}, FP {r['fp']:.3f}, FN {r['fn']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
