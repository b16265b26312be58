"""Synthetic data speed: images per second of `lanenet-train synth`, side by side in one run.

Compares, on the same seeds: rendering only at the default render scale (0.5) and at full scale, and the
whole command (render + JPEG + labels) with one worker and with every core.

    .venv/bin/python bench/bench_synth.py [--count 60] [--width 1280 --height 720]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lanenet_train.cli import main as cli_main
from lanenet_train.synth import SynthConfig, render_frame


def render_rate(config: SynthConfig, count: int) -> float:
    """Frames per second of render_frame alone (one process)."""
    render_frame(config, 10_000)  # warm caches (texture bank, camera grids)
    start = time.perf_counter()
    for seed in range(count):
        render_frame(config, seed)
    return count / (time.perf_counter() - start)


def command_rate(fmt: str, count: int, nproc: int, width: int, height: int) -> float:
    """Frames per second of the whole `lanenet-train synth` command."""
    out = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        start = time.perf_counter()
        code = cli_main(["synth", "--format", fmt, "--out", str(out), "--count", str(count), "--nproc", str(nproc),
                         "--width", str(width), "--height", str(height)])
        elapsed = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"synth failed with exit code {code}")
        return count / elapsed
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    half = render_rate(SynthConfig(width=args.width, height=args.height, render_scale=0.5), args.count)
    full = render_rate(SynthConfig(width=args.width, height=args.height, render_scale=1.0), args.count // 2)
    one = command_rate("tusimple", args.count, 1, args.width, args.height)
    many = command_rate("tusimple", args.count, cores, args.width, args.height)
    print(f"\n{args.width}x{args.height}, {args.count} frames, {cores} cores")
    print(f"  render only, render scale 0.5 : {half:7.2f} img/s")
    print(f"  render only, render scale 1.0 : {full:7.2f} img/s   (0.5 is {half / full:.2f}x faster)")
    print(f"  synth tusimple, 1 worker      : {one:7.2f} img/s")
    print(f"  synth tusimple, {cores} workers     : {many:7.2f} img/s   ({many / one:.2f}x one worker)")
    print(f"  -> 1000 frames in {1000 / many / 60:.1f} min on this machine")


if __name__ == "__main__":
    main()
