"""`make demo`: a synthetic drive bag, the lanenet node on it live, an overlay video and a report.

1. make ``demo_out/drive`` (a synthetic 1280x720 drive at 10 Hz, ground truth beside it), once;
2. start ``lanenet-node`` with the embedded default model on ONNX Runtime (CPU), in namespace /lanenet;
3. replay the bag live into it, collect its LaneArrays, score them against the ground truth;
4. write ``demo_out/overlay.mp4``, ``report.json`` and plots, and print the summary.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from lanenet_ros.replay.cli import add_arguments as replay_arguments
from lanenet_ros.replay.cli import run as replay_run


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lanenet-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output directory (default %(default)s)")
    parser.add_argument("--frames", type=int, default=120, help="frames in the synthetic drive (default %(default)s)")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the synthetic drive (default %(default)s)")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second (default %(default)s)")
    parser.add_argument("--model", type=Path, default=None, help="model (default: the embedded default model)")
    parser.add_argument("--backend", default="onnxruntime-cpu", help="node back end (default %(default)s)")
    parser.add_argument("--decode", action="append", default=[], metavar="NAME=VALUE",
                        help="node decoder setting (its decode.* parameters); by default the node decodes as the "
                             "model was evaluated (the settings its description carries)")
    return parser.parse_args(argv)


def ensure_bag(args: argparse.Namespace) -> Path:
    """The demo bag, made on the first run only, by the training toolkit's generator in its own process
    (``lanenet-train synth --bag``: the runtime does not import ``lanenet_train``).

    Raises:
        DemoError: the training toolkit is not installed, or it failed (its own message is printed above).
    """
    bag = args.out / "drive"
    if bag.exists():
        return bag
    if importlib.util.find_spec("lanenet_train") is None:
        raise DemoError("the demo's synthetic drive is drawn by the training toolkit (lanenet-train synth --bag), "
                        "which is not installed here; install the package with pip (README, Install)")
    command = [sys.executable, "-m", "lanenet_train.cli", "synth", "--bag", "--count", str(args.frames),
               "--seed", str(args.seed), "--fps", str(args.rate), "--out", str(bag)]
    if subprocess.run(command, check=False).returncode != 0:
        raise DemoError(f"making the drive failed: {' '.join(command[2:])}")
    return bag


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why."""


def start_node(args: argparse.Namespace) -> subprocess.Popen:
    """The lanenet node, in its own process, as a user would start it."""
    # Reliable input: a bag replay should lose no frame in transport (a camera driver would be best effort).
    ros_args = ["--ros-args", "-r", "__ns:=/lanenet", "-p", f"backend:={args.backend}", "-p", "autostart:=true",
                "-p", "qos.reliability:=reliable"]
    if args.model is not None:
        ros_args += ["-p", f"model:={args.model.resolve()}"]
    for setting in args.decode:
        ros_args += ["-p", f"decode.{setting.replace('=', ':=', 1)}"]
    return subprocess.Popen([sys.executable, "-m", "lanenet_ros.node.lanenet_node", *ros_args])


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns an exit code."""
    args = parse(argv)
    from lanenet_ros.decode.settings import parse_pairs
    from lanenet_ros.pipeline import DEFAULT_MODEL

    try:
        parse_pairs(args.decode)
    except ValueError as exc:
        print(f"lanenet-demo: error: {exc}", file=sys.stderr)
        return 2

    model = args.model or DEFAULT_MODEL
    if not model.is_file():
        print(f"lanenet-demo: error: {model}: no such model file. Make the embedded default model with "
              "tools/train_default_model.sh, or pass --model MODEL.onnx.",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        bag = ensure_bag(args)
    except DemoError as exc:
        print(f"lanenet-demo: error: {exc}", file=sys.stderr)
        return 2
    node = start_node(args)
    try:
        replay_args = argparse.ArgumentParser()
        replay_arguments(replay_args)
        code = replay_run(replay_args.parse_args([str(bag), "--live", "--node-namespace", "/lanenet",
                                                  "--out", str(args.out), "--fps", str(args.rate), "--wait", "60"]))
    finally:
        node.terminate()
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
