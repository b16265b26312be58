"""The lanenet node's speed against ONNX Runtime inference of the same model, at 1280x720 (issue 21).

Part 1, own cost: real ``LaneNetNode`` s (rclpy, their own DDS domain) process real ``sensor_msgs/Image``
messages, serialized as the node's raw subscription receives them, through their own frame path (``_process``:
bytes -> fields -> BGR, pipeline, LaneArray (and with ``--watch`` mask / markers / overlay) messages,
published; the node's two workers' steps one after the other in one thread), measured per stage by the node's
own counters. Two frame sets from the synthetic generator: ``lanes`` (its defaults: real-looking roads with
lanes) and ``edges`` (many lane-like edges: no edge lines, so bare asphalt edges, tree shadows, tar snakes,
worn paint, concrete seams, barriers). Each set goes through a node with ``decode.flip_average`` true (two
inferences a frame, opt-in) and one with it false (the packaged model's setting), taking turns frame by frame
so that all see the same machine load. Medians per stage. "Own cost" is everything except the backend's
inference (conversion in, preprocess, decode, ground, tracking, message building, plus rclpy's hand-over of
the received bytes, timed apart as one copy of them); it is given as a share of ONE inference (the median
``infer`` of the ``flip_average`` false node on the same frames). Goal (issue 21): at most 15%.

Part 2, end to end: 1280x720 JPEG ``CompressedImage`` s published at 30 Hz by another process (this script
with ``--publish``) into a node spinning here, for ``--seconds`` each with ``flip_average`` true and false:
LaneArrays received per second, p50 / p95 latency (publish to receipt of the LaneArray), frames replaced in
the node's mailbox (one worker infers frame N+1 while the other decodes frame N); and bare ONNX Runtime
inference throughput of the same model (one inference after another on one preprocessed frame), measured in
between, as a ratio. Goal (issue 21): at least 25 frames a second with the model's own ``flip_average``.

Model: ``--model PATH``, else the packaged default model. ``--versus OTHER.onnx`` adds part 3: the end-to-end run
of part 2 with each model's own ``flip_average``, the two models taking turns (``--rounds`` runs each, A B A B ...),
so that both see the same machine load over the same minutes: frames per second per run, the median per model,
and their ratio (a model with more outputs against the shipped one).

    .venv/bin/python bench/bench_node.py [--frames 20] [--seconds 20] [--model model.onnx] [--watch]
                                         [--versus other.onnx --rounds 3]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from lanenet_ros.msg import LaneArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from lanenet_ros.backends import create_backend
from lanenet_ros.decode.settings import DecodeParams
from lanenet_ros.model_info import read_model_info
from lanenet_ros.node.convert import bgr8_msg, compressed_msg_to_bgr
from lanenet_ros.node.lanenet_node import LaneNetNode
from lanenet_ros.pipeline import default_model_path, run_model

CAMERA = CameraInfo(width=1280, height=720, distortion_model="plumb_bob", d=[0.0] * 5,
                    k=[1000.0, 0.0, 640.0, 0.0, 1000.0, 360.0, 0.0, 0.0, 1.0])
INFER = "infer"
NOT_NODE = ("wait", "total", INFER)  # queueing time and the sum are not work the node adds
RATE_HZ = 30.0
# frame set -> generator settings beside 1280x720 (``edges``: many lane-like edges that are not lanes)
FRAME_SETS = {
    "lanes": {},
    "edges": {"edge_line_prob": 0.0, "tree_shadow_prob": 1.0, "tar_snake_prob": 1.0, "worn_prob": 1.0,
              "concrete_prob": 0.5, "roadside_barrier_prob": 1.0, "median_barrier_prob": 1.0,
              "lanes": (4, 6)},
}


def drive(name: str, n: int) -> list[np.ndarray]:
    """``n`` 1280x720 frames of one drive of the generator with the settings of frame set ``name``."""
    from lanenet_train.synth import SynthConfig, iter_drive

    config = SynthConfig(width=1280, height=720, **FRAME_SETS[name])
    return [f.image for f in iter_drive(config, 11, n, 10.0)]


def make_node(context: rclpy.Context, model: Path, flip: bool, name: str, jpeg: bool = False) -> LaneNetNode:
    """A started node on the CPU backend with a 1280x720 camera (its ground plane set up)."""
    params = [Parameter("input", value="compressed" if jpeg else "image"),
              Parameter("model", value=str(model)), Parameter("backend", value="onnxruntime-cpu"),
              Parameter("decode.flip_average", value=flip),
              Parameter("ground.camera_height", value=1.5), Parameter("ground.camera_pitch", value=0.072)]
    node = LaneNetNode(name, context=context, parameter_overrides=params)
    if not node.start():
        raise RuntimeError("the node did not start (see its log above)")
    node._on_camera_info(CAMERA)
    return node


# ---- part 1: own cost ---------------------------------------------------------------------------------
def run_frames(nodes: dict[bool, LaneNetNode], messages: list[bytes]) -> dict[bool, dict[str, float]]:
    """Median milliseconds per stage for each node (by ``flip_average``), taking turns frame by frame."""
    rows: dict[bool, list[dict[str, float]]] = {flip: [] for flip in nodes}
    for i, msg in enumerate(messages[:2] + messages):
        for flip, node in nodes.items():
            node.stats.roll()
            node._process(msg, time.perf_counter())
            period = node.stats.roll()
            if period.processed != 1:
                raise RuntimeError("the node did not process the frame (see its log above)")
            if i >= 2:  # two warm-up frames
                rows[flip].append(period.stage_ms)
    return {flip: {stage: float(np.median([r.get(stage, 0.0) for r in frames_])) for stage in frames_[0]}
            for flip, frames_ in rows.items()}


def take_ms(raw: bytes, repeats: int = 50) -> float:
    """Milliseconds of what rclpy does to hand a raw subscription its message: one copy of the received bytes
    into a Python ``bytes`` (median of ``repeats``)."""
    buffer = bytearray(raw)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        bytes(buffer)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def deserialize_ms(msg: Image, repeats: int = 10) -> float:
    """Milliseconds rclpy takes to turn the wire bytes of ``msg`` back into a message."""
    raw = serialize_message(msg)
    start = time.perf_counter()
    for _ in range(repeats):
        deserialize_message(raw, Image)
    return (time.perf_counter() - start) / repeats * 1e3


def jpeg_decode_ms(messages: list[CompressedImage]) -> float:
    """Median milliseconds of the node's conversion of a JPEG CompressedImage to BGR."""
    times = []
    for msg in messages:
        start = time.perf_counter()
        compressed_msg_to_bgr(msg)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def watch_everything(context: rclpy.Context, nodes: list[LaneNetNode]) -> rclpy.node.Node:
    """A node subscribed to every node's mask, overlay and markers, once the nodes see the subscriptions."""
    watcher = rclpy.create_node("bench_watcher", context=context)
    for node in nodes:
        for kind, topic in ((Image, "mask"), (Image, "overlay"), (MarkerArray, "markers")):
            watcher.create_subscription(kind, node._pubs[topic].topic_name, lambda _msg: None, 5)
    deadline = time.monotonic() + 10.0
    while any(n._pubs[t].get_subscription_count() == 0 for n in nodes for t in ("mask", "overlay", "markers")):
        if time.monotonic() > deadline:
            raise TimeoutError("the watcher's subscriptions were not discovered within 10 s")
        time.sleep(0.05)
    return watcher


def _stage_order(stage: str) -> int:
    order = ["convert_in", "preprocess", "decode", "ground", "track", "publish"]
    return order.index(stage) if stage in order else len(order)


def report_own_cost(columns: dict[str, dict[bool, dict[str, float]]], wire_ms: float, jpeg_ms: float) -> float:
    """Print the stage table and the own cost against one inference; return the worst share."""
    flat = {f"{name} flip={str(flip).lower()}": c for name, by_flip in columns.items() for flip, c in by_flip.items()}
    stages = sorted({s for c in flat.values() for s in c if s not in NOT_NODE}, key=_stage_order)
    print(f"\n{'stage (median ms)':<22}" + "".join(f"{name:>20}" for name in flat))
    for stage in [*stages, INFER]:
        print(f"{stage:<22}" + "".join(f"{c.get(stage, 0.0):>20.2f}" for c in flat.values()))
    print(f"{'(take, rclpy raw)':<22}" + "".join(f"{wire_ms:>20.2f}" for _ in flat))
    print(f"\nJPEG CompressedImage instead of bgr8: convert_in {jpeg_ms:.2f} ms (median, these frames)")
    print("own cost = every stage above but infer, plus the take; one inference = infer of the "
          "flip=false node on the same frames")
    worst = 0.0
    for name, by_flip in columns.items():
        one = by_flip[False][INFER]
        for flip, c in by_flip.items():
            own = sum(c.get(s, 0.0) for s in stages) + wire_ms
            share = own / one
            worst = max(worst, share)
            print(f"{name:<6} flip={str(flip).lower():<5} own / one inference = {own:6.2f} / {one:6.2f} ms = "
                  f"{100 * share:5.1f}%  (largest: {max(stages, key=lambda s: c.get(s, 0.0))}; "
                  f"with JPEG input {100 * (own - c.get('convert_in', 0.0) + jpeg_ms) / one:5.1f}%)")
    print(f"goal (issue 21): own cost <= 15% of one inference: worst {100 * worst:.1f}% -> "
          f"{'met' if worst <= 0.15 else 'NOT met'}")
    return worst


# decode's steps: (label, function name) as cProfile names them
DECODE_STEPS = (("threshold + clustering", "_clustered_pixels"), ("row segments", "row_segments"),
                ("fits", "_fit_all"), ("selection", "_select"), ("type + colour from paint", "_typed"),
                ("far end at paint", "end_at_paint"), ("mask to camera size", "mask_to_camera"),
                ("hood", "_hood"), ("ordering", "order_lanes"))


def report_decode_steps(node: LaneNetNode, images: dict[str, list[np.ndarray]]) -> None:
    """Decode's time by step (cProfile, cumulative, so only the shares are meant), per frame set."""
    pipe = node.pipeline
    print("\ndecode by step (cProfile; the profiler slows Python, so read the shares; flip=false outputs)")
    print(f"{'step':<26}" + "".join(f"{name + ' ms':>12}{'share':>8}" for name in images))
    columns = []
    for pictures in images.values():
        work = []
        for image in pictures:
            batch, geometry = pipe.preprocessor(image)
            work.append((dict(run_model(pipe.backend.infer, batch, pipe.info)), geometry, image))
        profile = cProfile.Profile()
        profile.enable()
        for outputs, geometry, image in work:
            pipe.decoder.decode(outputs, geometry, image)
        profile.disable()
        cumulative: dict[str, float] = {}
        for (_file, _line, function), (*_, seconds, _callers) in pstats.Stats(profile).stats.items():
            cumulative[function] = cumulative.get(function, 0.0) + seconds
        columns.append({k: v * 1e3 / len(work) for k, v in cumulative.items()})
    for label, function in (*DECODE_STEPS, ("decode (all)", "decode")):
        print(f"{label:<26}" + "".join(f"{c.get(function, 0.0):>12.2f}{100 * c.get(function, 0.0) / c['decode']:>7.0f}%"
                                       for c in columns))


# ---- part 2: end to end -------------------------------------------------------------------------------
def publish(folder: Path, seconds: float) -> int:
    """The publisher process: the JPEGs in ``folder`` in turn at 30 Hz on ``image/compressed`` (stamped with
    the wall clock at publishing), once the node subscribes, for ``seconds``."""
    data = [p.read_bytes() for p in sorted(folder.glob("*.jpg"))]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ["LANENET_BENCH_DOMAIN"]))
    node = rclpy.create_node("bench_camera", context=context)
    pub = node.create_publisher(CompressedImage, "image/compressed", QoSProfile(depth=1,
                                reliability=ReliabilityPolicy.BEST_EFFORT))
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        stamp = time.time()
        header = Header(frame_id="camera")
        header.stamp.sec, header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
        pub.publish(CompressedImage(header=header, format="jpeg", data=data[i % len(data)]))
        i += 1
        time.sleep(max(0.0, start + i / RATE_HZ - time.perf_counter()))
    node.destroy_node()
    context.try_shutdown()
    return 0


def end_to_end(context: rclpy.Context, domain: int, model: Path, flip: bool, folder: Path,
               seconds: float) -> dict[str, float]:
    """Run the publisher process against a fresh node; LaneArrays per second and latencies."""
    node = make_node(context, model, flip, f"lanenet_e2e_{str(flip).lower()}", jpeg=True)
    listener = rclpy.create_node(f"bench_listener_{str(flip).lower()}", context=context)
    received: list[tuple[float, float]] = []  # (stamp, latency)

    def on_lanes(msg: LaneArray) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        received.append((stamp, time.time() - stamp))

    listener.create_subscription(LaneArray, "lanes", on_lanes, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(listener)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    env = {**os.environ, "LANENET_BENCH_DOMAIN": str(domain)}
    subprocess.run([sys.executable, __file__, "--publish", str(folder), "--seconds", str(seconds)],
                   env=env, check=True)
    time.sleep(1.0)  # the last frames' answers
    totals = dict(node.stats.totals)
    executor.shutdown()
    node.close()
    node.destroy_node()
    listener.destroy_node()
    if len(received) < 10:
        raise RuntimeError(f"only {len(received)} LaneArrays came back")
    first = received[0][0] + 2.0  # two seconds of warm-up left out
    kept = [r for r in received if r[0] >= first]
    span = kept[-1][0] - kept[0][0]
    latency = np.array([r[1] for r in kept]) * 1e3
    return {"fps": (len(kept) - 1) / span, "p50": float(np.percentile(latency, 50)),
            "p95": float(np.percentile(latency, 95)), "received": totals["received"],
            "processed": totals["processed"], "replaced": totals["replaced"]}


def bare_throughput(model: Path, image: np.ndarray, threads: int = 0, seconds: float = 5.0) -> float:
    """Inferences per second of ONNX Runtime alone (``threads`` intra-op threads, 0: all cores), one after
    another on one preprocessed frame."""
    from lanenet_ros.pipeline import LanePipeline

    batch = LanePipeline(model, backend="onnxruntime-cpu", tracking=False).preprocessor(image)[0].copy()
    backend = create_backend(model, "onnxruntime-cpu", intra_op_threads=threads)
    for _ in range(3):
        backend.infer(batch)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        backend.infer(batch)
        n += 1
    return n / (time.perf_counter() - start)


def report_end_to_end(runs: dict[bool, dict[str, float]], bare: float, bare_one: float, default_flip: bool) -> bool:
    print(f"\nend to end: 1280x720 JPEG CompressedImage at {RATE_HZ:.0f} Hz from another process")
    print(f"{'decode.flip_average':<22}{'frames/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'received':>10}"
          f"{'processed':>11}{'replaced':>10}{'/ bare ORT':>12}")
    for flip, r in runs.items():
        print(f"{str(flip).lower():<22}{r['fps']:>10.1f}{r['p50']:>9.1f}{r['p95']:>9.1f}{r['received']:>10}"
              f"{r['processed']:>11}{r['replaced']:>10}{r['fps'] / bare:>12.2f}")
    print(f"bare ONNX Runtime, same model, same run: {bare:.1f} inferences/s ({1e3 / bare:.1f} ms each) on all "
          f"cores (the node's setting), {bare_one:.1f} on one thread ({1e3 / bare_one:.1f} ms each)")
    default = runs[default_flip]["fps"]
    print(f"goal (issue 21): >= 25 frames/s with the default configuration (the model's flip_average: "
          f"{str(default_flip).lower()}): {default:.1f} -> "
          f"{'met' if default >= 25 else 'NOT met'}")
    return default >= 25


def own_flip_average(model: Path) -> bool:
    """The model's own ``flip_average`` (its description's decode settings, else the default)."""
    return DecodeParams.from_pairs(read_model_info(model).decode).flip_average


def versus(context: rclpy.Context, domain: int, models: list[Path], folder: Path, seconds: float,
           rounds: int) -> dict[Path, list[float]]:
    """Part 3: end-to-end runs of each model with its own flip_average, taking turns; frames/s per run."""
    flips = {m: own_flip_average(m) for m in models}
    fps: dict[Path, list[float]] = {m: [] for m in models}
    for _ in range(rounds):
        for m in models:
            fps[m].append(end_to_end(context, domain, m, flips[m], folder, seconds)["fps"])
    print(f"\nend to end, models taking turns ({rounds} runs of {seconds:.0f} s each, each model's own flip_average)")
    print(f"{'model':<40}{'median frames/s':>17}  runs")
    for m, runs in fps.items():
        print(f"{m!s:<40}{np.median(runs):>17.1f}  {' '.join(f'{r:.1f}' for r in runs)}")
    a, b = (np.median(fps[m]) for m in models)
    print(f"{models[0].name} / {models[1].name}: x{a / b:.3f} frames/s; goal (issue 21) >= 25 frames/s for "
          f"{models[0].name}: {a:.1f} -> {'met' if a >= 25 else 'NOT met'}")
    return fps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20, help="timed frames per frame set (%(default)s)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="end-to-end run per configuration, seconds (%(default)s; 0 leaves part 2 out)")
    parser.add_argument("--model", type=Path, default=None, help="exported model (default: the packaged one)")
    parser.add_argument("--watch", action="store_true",
                        help="part 1 with mask, markers and overlay subscribed too (as RViz would)")
    parser.add_argument("--versus", type=Path, default=None, metavar="MODEL",
                        help="part 3: end-to-end runs of --model and this model taking turns (e.g. a model with "
                             "more outputs against the packaged one)")
    parser.add_argument("--rounds", type=int, default=3, help="part 3: runs of each model (%(default)s)")
    parser.add_argument("--publish", type=Path, default=None, help=argparse.SUPPRESS)  # the publisher process
    args = parser.parse_args()
    if args.publish is not None:
        return publish(args.publish, args.seconds)
    model = args.model or default_model_path()
    domain = os.getpid() % 200 + 20
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    print(f"model {model}, CPU backend (ONNX Runtime), {args.frames} frames of 1280x720 per frame set, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    images = {name: drive(name, args.frames) for name in FRAME_SETS}
    nodes = {flip: make_node(context, model, flip, f"lanenet_flip_{str(flip).lower()}") for flip in (True, False)}
    watcher = watch_everything(context, list(nodes.values())) if args.watch else None
    columns, jpegs = {}, []
    for name, pictures in images.items():
        messages = [serialize_message(bgr8_msg(image, Header(frame_id="camera"))) for image in pictures]
        columns[name] = run_frames(nodes, messages)
        jpegs += [CompressedImage(format="jpeg", data=cv2.imencode(".jpg", image)[1].tobytes())
                  for image in pictures]
    wire_ms = take_ms(messages[0])
    print(f"\nrclpy's full deserialisation of one frame (what the node no longer does): "
          f"{deserialize_ms(deserialize_message(messages[0], Image)):.2f} ms")
    worst = report_own_cost(columns, wire_ms, jpeg_decode_ms(jpegs))
    report_decode_steps(nodes[False], images)
    if watcher is not None:
        watcher.destroy_node()
    for node in nodes.values():
        node.close()
        node.destroy_node()
    fast = False
    if args.seconds > 0:
        with tempfile.TemporaryDirectory() as tmp:
            for i, msg in enumerate(jpegs[:len(images["lanes"])]):
                (Path(tmp) / f"{i:04d}.jpg").write_bytes(bytes(msg.data))
            runs = {True: end_to_end(context, domain, model, True, Path(tmp), args.seconds)}
            bare = bare_throughput(model, images["lanes"][0])
            bare_one = bare_throughput(model, images["lanes"][0], threads=1)
            runs[False] = end_to_end(context, domain, model, False, Path(tmp), args.seconds)
            fast = report_end_to_end(runs, bare, bare_one, own_flip_average(model))
            if args.versus is not None:
                turns = versus(context, domain, [Path(model), args.versus], Path(tmp), args.seconds, args.rounds)
                fast = fast and float(np.median(turns[Path(model)])) >= 25
    context.try_shutdown()
    return 0 if worst <= 0.15 and fast else 1


if __name__ == "__main__":
    sys.exit(main())
