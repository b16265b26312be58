"""The lanenet node's own cost against inference, at 1280x720 on the CPU backend (issue 6: at most 15%).

A real ``LaneNetNode`` (rclpy, its own DDS domain) processes real ``sensor_msgs/Image`` messages through its
own frame path (``_process``: message -> BGR, pipeline, LaneArray / mask / markers / overlay messages,
publish to a subscribed watcher), measured per stage by the node's own counters. Three set-ups take turns
frame by frame in this one run, so that they see the same machine load: ``lanes`` (LaneArray only),
``+mask+markers``, and ``+overlay`` (everything, as while someone watches in RViz). Medians per stage.
Taking the message off the wire is timed apart (rclpy deserialisation of the same image).

"Own cost" is everything except the backend's inference. Model: ``--model PATH``, else the stand-in of
bench/bench_pipeline.py (LaneNet 512x256 at its real cost, with outputs that hold real painted lines).

    .venv/bin/python bench/bench_node.py [--frames 30] [--model model.onnx]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import frames, stand_in_model

from lanenet_ros.node.convert import bgr8_msg
from lanenet_ros.node.lanenet_node import LaneNetNode

CAMERA = CameraInfo(width=1280, height=720, distortion_model="plumb_bob", d=[0.0] * 5,
                    k=[1000.0, 0.0, 640.0, 0.0, 1000.0, 360.0, 0.0, 0.0, 1.0])
INFER = "infer"
NOT_NODE = ("wait", "total", INFER)  # queueing time and the sum are not work the node adds
# set-up -> (publish.mask, publish.overlay, publish.markers)
SETUPS = {"lanes": (False, False, False), "+mask+markers": (True, False, True),
          "+overlay": (True, True, True)}


def run_frames(node: LaneNetNode, messages: list[Image]) -> dict[str, dict[str, float]]:
    """Median milliseconds per stage for each set-up, the set-ups taking turns frame by frame."""
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in SETUPS}
    for i, msg in enumerate(messages[:2] + messages):
        for name, switches in SETUPS.items():
            outputs = zip(("mask", "overlay", "markers"), switches, strict=True)
            node.set_parameters([Parameter(f"publish.{output}", value=on) for output, on in outputs])
            node.stats.roll()
            node._process(msg, time.perf_counter())
            period = node.stats.roll()
            if period.processed != 1:
                raise RuntimeError("the node did not process the frame (see its log above)")
            if i >= 2:  # two warm-up frames
                rows[name].append(period.stage_ms)
    return {name: {stage: float(np.median([r.get(stage, 0.0) for r in frames_])) for stage in frames_[0]}
            for name, frames_ in rows.items()}


def deserialize_ms(msg: Image, repeats: int = 10) -> float:
    """Milliseconds rclpy takes to turn the wire bytes of ``msg`` back into a message."""
    raw = serialize_message(msg)
    start = time.perf_counter()
    for _ in range(repeats):
        deserialize_message(raw, Image)
    return (time.perf_counter() - start) / repeats * 1e3


def watch_everything(context: rclpy.Context, node: LaneNetNode) -> rclpy.node.Node:
    """A node subscribed to mask, overlay and markers, once the lanenet node sees its subscriptions."""
    watcher = rclpy.create_node("bench_watcher", context=context)
    for kind, topic in ((Image, "mask"), (Image, "overlay"), (MarkerArray, "markers")):
        watcher.create_subscription(kind, topic, lambda _msg: None, 5)
    deadline = time.monotonic() + 10.0
    while any(node._pubs[t].get_subscription_count() == 0 for t in ("mask", "overlay", "markers")):
        if time.monotonic() > deadline:
            raise TimeoutError("the watcher's subscriptions were not discovered within 10 s")
        time.sleep(0.05)
    return watcher


ADAPTER = ("convert_in", "publish")  # what lanenet_ros/node/lanenet_node.py adds around the pipeline


def report(columns: dict[str, dict[str, float]], wire_ms: float) -> float:
    """Print the stage table and the own-cost ratios; return the ratio of the ``lanes`` set-up."""
    stages = sorted({s for c in columns.values() for s in c if s not in NOT_NODE}, key=_stage_order)
    print(f"\n{'stage (median ms)':<22}" + "".join(f"{name:>14}" for name in columns))
    for stage in [*stages, INFER]:
        print(f"{stage:<22}" + "".join(f"{c.get(stage, 0.0):>14.2f}" for c in columns.values()))
    print(f"{'(deserialise, rclpy)':<22}" + "".join(f"{wire_ms:>14.2f}" for _ in columns))
    print("\nown cost = everything but inference; adapter = message conversion in and out + deserialisation")
    for name, c in columns.items():
        own = sum(c.get(s, 0.0) for s in stages) + wire_ms
        adapter = sum(c.get(s, 0.0) for s in ADAPTER) + wire_ms
        print(f"{name:<14} own / inference = {own:6.2f} / {c[INFER]:6.2f} ms = {100 * own / c[INFER]:5.1f}%"
              f"   (adapter {100 * adapter / c[INFER]:4.1f}%, pipeline stages "
              f"{100 * (own - adapter) / c[INFER]:4.1f}%)")
    ratio = (sum(columns["lanes"].get(s, 0.0) for s in stages) + wire_ms) / columns["lanes"][INFER]
    print(f"goal (issue 6): own cost <= 15% of inference with lanes published: {100 * ratio:.1f}% -> "
          f"{'met' if ratio <= 0.15 else 'NOT met'}")
    return ratio


def _stage_order(stage: str) -> int:
    order = ["convert_in", "preprocess", "decode", "ground", "track", "publish"]
    return order.index(stage) if stage in order else len(order)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20, help="timed frames per set-up (%(default)s)")
    parser.add_argument("--model", type=Path, default=None, help="exported model (default: the stand-in)")
    args = parser.parse_args()
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=os.getpid() % 200 + 20)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or stand_in_model(Path(tmp) / "stand_in.onnx")
        params = [Parameter("model", value=str(model)), Parameter("backend", value="onnxruntime-cpu"),
                  Parameter("ground.camera_height", value=1.5), Parameter("ground.camera_pitch", value=0.072)]
        node = LaneNetNode(context=context, parameter_overrides=params)
        assert node.start(), "the node did not start"
        node._on_camera_info(CAMERA)  # horizon at 40% of the height, as in the frames: lanes on the ground
        images = frames(args.frames, drive=args.model is not None)
        messages = [bgr8_msg(image, Header(frame_id="camera")) for image in images]
        print(f"model {Path(model).name} on {node.pipeline.backend_name}, "
              f"{args.frames} frames of 1280x720 bgr8 per set-up")
        watcher = watch_everything(context, node)
        ratio = report(run_frames(node, messages), deserialize_ms(messages[0]))
        watcher.destroy_node()
        node.close()
        node.destroy_node()
    context.try_shutdown()
    return 0 if ratio <= 0.15 else 1


if __name__ == "__main__":
    sys.exit(main())
