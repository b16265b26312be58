"""Memory over a long run: the pipeline's resident set size (RSS) after warm-up and at the end (issue 21).

A ``LanePipeline`` (the packaged default model unless ``--model``, CPU backend, tracking on, the ground
plane of the generator's camera, decode settings as the model carries them) processes ``--frames`` 1280x720
frames stamped at 30 Hz: a drive of the synthetic generator played over and over. RSS is read from
/proc/self/statm after the warm-up frames and then every 100 frames; the bench prints RSS after warm-up, at
the end, the highest seen, and the growth in percent. Goal (issue 21): growth under 5% over 20,000 frames.
No ROS needed. The default of 2,000 frames takes about 2 minutes on a 2-core CPU; ``--frames 20000`` is the
issue's full run (about 20 minutes).

    .venv/bin/python bench/bench_memory.py [--frames 2000] [--warmup 200] [--model model.onnx]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lanenet_ros.pipeline import LanePipeline, default_model_path

RATE_HZ = 30.0
POOL = 40  # distinct frames of the drive played over and over


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000, help="frames processed after warm-up (%(default)s)")
    parser.add_argument("--warmup", type=int, default=200, help="frames before the first reading (%(default)s)")
    parser.add_argument("--model", type=Path, default=None, help="exported model (default: the packaged one)")
    args = parser.parse_args()
    if args.frames < 100 or args.warmup < 0:
        parser.error("--frames must be at least 100 and --warmup at least 0")
    from lanenet_train.synth import SynthConfig, iter_drive

    drive = list(iter_drive(SynthConfig(width=1280, height=720), 11, POOL, RATE_HZ))
    camera = drive[0].camera
    pipe = LanePipeline(args.model or default_model_path(), backend="onnxruntime-cpu", camera={
        "fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy, "height_m": camera.height_m,
        "pitch_rad": camera.pitch_rad})
    print(f"model {args.model or default_model_path()} on {pipe.backend_name}, {args.warmup} warm-up frames "
          f"then {args.frames} frames of 1280x720 ({POOL} distinct, stamped at {RATE_HZ:.0f} Hz), "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    start = time.perf_counter()
    readings: list[tuple[int, float]] = []
    for i in range(args.warmup + args.frames):
        n = i - args.warmup
        if n >= 0 and n % 100 == 0:
            readings.append((n, rss_mb()))
        pipe.process(drive[i % POOL].image, stamp=i / RATE_HZ)
    readings.append((args.frames, rss_mb()))
    seconds = time.perf_counter() - start
    first, last = readings[0][1], readings[-1][1]
    growth = 100 * (last - first) / first
    print(f"{'frames after warm-up':>22}{'RSS MiB':>10}")
    step = max(1, len(readings) // 10)
    for n, mb in readings[::step] + ([readings[-1]] if (len(readings) - 1) % step else []):
        print(f"{n:>22}{mb:>10.1f}")
    print(f"RSS after warm-up {first:.1f} MiB, at the end {last:.1f} MiB, highest {max(r[1] for r in readings):.1f}"
          f" MiB: growth {growth:+.2f}% over {args.frames} frames ({seconds:.0f} s, "
          f"{(args.warmup + args.frames) / seconds:.1f} frames/s)")
    print(f"goal (issue 21): growth under 5% over 20,000 frames: {growth:+.2f}% over {args.frames} -> "
          f"{'met' if growth < 5 else 'NOT met'}{'' if args.frames >= 20000 else ' so far (run --frames 20000)'}")
    return 0 if growth < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
