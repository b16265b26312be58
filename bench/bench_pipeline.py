"""LanePipeline per-stage latency at 1280x720, and the pipeline's own cost against inference (CPU backend).

Model: ``--model PATH`` (a trained, exported model), else a stand-in with the real cost and real lanes: the
project's LaneNet (``lanenet_train.models``, 512x256, random weights) runs in full inside the ONNX graph, and
its outputs are added, multiplied by zero, to those of a hand-set line detector (test/model_fixtures.py), so
inference costs what LaneNet costs while the decoder sees masks and embeddings of real painted lines.
Frames: 1280x720 roads with 2-4 straight lines (same vanishing point as the stand-in expects); with
``--model``, a 1280x720 drive from the synthetic generator.

Everything is measured in this one run: median and p90 per stage over the frames, then the ratio
"everything except inference" / "inference". Goal (issue 6): at most 15% on the CPU backend.
The second table compares ONNX Runtime with output buffers reused (io_binding) against fresh outputs, the
third a LaneNet with and without ``decode.flip_average`` (a second inference on the mirror image); with
``--versus OTHER.onnx`` a fourth, the model against another on the same frames (a model with a bonnet and
marking heads against the shipped one, say). With the packaged default model (``--model
lanenet_ros/models/default.onnx``) a last one: its heads never, every third frame (``heads_every``, the CPU's
default) and every frame, by the mean time a frame (the throughput).

    .venv/bin/python bench/bench_pipeline.py [--frames 40] [--threads 0] [--model model.onnx] [--versus other.onnx]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))

from lanenet_ros.backends import create_backend  # noqa: E402
from lanenet_ros.pipeline import STAGES, LanePipeline  # noqa: E402

WIDTH, HEIGHT, ROI_TOP, HORIZON = 512, 256, 0.4, 0.4


def stand_in_model(path: Path) -> Path:
    """Export LaneNet (real cost) summed with zero times a hand-set line detector (real lanes)."""
    import torch
    from model_fixtures import BrightLineNet, model_info

    from lanenet_train.export import export_model
    from lanenet_train.models import build_model
    from lanenet_train.spec import parse_spec

    class CostlyLines(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            spec = parse_spec(f"model_config {{ input_image_width: {WIDTH} input_image_height: {HEIGHT} }}")
            self.lanenet = build_model(spec.model_config)
            info = model_info("lanenet", input_width=WIDTH, input_height=HEIGHT, roi_top=ROI_TOP)
            vanish_y = (HORIZON - ROI_TOP) / (1 - ROI_TOP) * HEIGHT
            self.lines = BrightLineNet(WIDTH, HEIGHT, (WIDTH / 2, vanish_y), info["mean"], info["std"])

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            real, lines = self.lanenet(x), self.lines(x)
            return {k: lines[k] + 0.0 * real[k] for k in lines}

    torch.manual_seed(0)
    info = model_info("lanenet", input_width=WIDTH, input_height=HEIGHT, roi_top=ROI_TOP)
    export_model(CostlyLines().eval(), info, path, verify_images=1, tolerance=1e-2)
    return path


def frames(n: int, drive: bool = False) -> list[np.ndarray]:
    """1280x720 test frames: simple painted roads for the stand-in, or (``drive``, for a trained model) a
    drive from the synthetic generator, so that decoding sees what a trained model makes of real scenes."""
    if drive:
        from lanenet_train.synth import SynthConfig, iter_drive

        return [f.image for f in iter_drive(SynthConfig(width=1280, height=720), 11, n, 10.0)]
    from model_fixtures import draw_road

    rng = np.random.default_rng(0)
    return [draw_road(tuple(np.sort(rng.uniform(0.05, 0.95, int(rng.integers(2, 5))))), horizon=HORIZON, seed=i)
            for i in range(n)]


def stage_table(pipe: LanePipeline, images: list[np.ndarray]) -> dict[str, np.ndarray]:
    for image in images[:3]:  # warm-up: first-run allocations and lazy initialisation
        pipe.process(image)
    rows = [pipe.process(image).timings for image in images]
    return {stage: np.array([r[stage] for r in rows]) * 1e3 for stage in (*STAGES, "total")}


def report_stages(times: dict[str, np.ndarray], lanes: float) -> float:
    print(f"\n{'stage':<11}{'median ms':>10}{'p90 ms':>10}")
    for stage, t in times.items():
        print(f"{stage:<11}{np.median(t):>10.2f}{np.percentile(t, 90):>10.2f}")
    own = sum(np.median(times[s]) for s in STAGES if s != "infer")
    ratio = own / np.median(times["infer"])
    print(f"lanes per frame: {lanes:.1f}")
    print(f"pipeline's own cost / inference (medians): {own:.2f} / {np.median(times['infer']):.2f} ms = "
          f"{100 * ratio:.1f}%  (goal <= 15%)")
    return ratio


def report_reuse(model: Path, images: list[np.ndarray], threads: int) -> None:
    pipe = LanePipeline(model, backend="onnxruntime-cpu", tracking=False, intra_op_threads=threads)
    batch = pipe.preprocessor(images[0])[0].copy()
    print(f"\n{'ONNX Runtime outputs':<24}{'median infer ms':>16}")
    for reuse in (True, False):
        backend = create_backend(model, "onnxruntime-cpu", reuse_outputs=reuse, intra_op_threads=threads)
        backend.infer(batch)
        t = []
        for _ in range(len(images)):
            start = time.perf_counter()
            backend.infer(batch)
            t.append(time.perf_counter() - start)
        print(f"{'reused (io_binding)' if reuse else 'fresh arrays':<24}{np.median(t) * 1e3:>16.2f}")


def compare(title: str, pipes: dict[str, LanePipeline], images: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Median inference, decode and whole-pipeline times of several pipelines on the same frames, taking turns
    frame by frame (so that all see the same machine load); printed as a table, returned by name."""
    times: dict[str, list[dict[str, float]]] = {name: [] for name in pipes}
    for image in images[:3]:
        for pipe in pipes.values():
            pipe.process(image)
    for image in images:
        for name, pipe in pipes.items():
            times[name].append(pipe.process(image).timings)
    print(f"\n{title:<32}{'median infer ms':>16}{'median decode ms':>17}{'median total ms':>16}"
          f"{'mean total ms':>14}")
    med = {name: {k: np.median([t[k] for t in times[name]]) * 1e3 for k in ("infer", "decode", "total")}
           for name in pipes}
    for name in pipes:
        med[name]["mean total"] = np.mean([t["total"] for t in times[name]]) * 1e3
        print(f"{name:<32}{med[name]['infer']:>16.2f}{med[name]['decode']:>17.2f}{med[name]['total']:>16.2f}"
              f"{med[name]['mean total']:>14.2f}")
    return med


def report_flip(model: Path, images: list[np.ndarray], threads: int) -> None:
    """Inference and whole-pipeline medians with ``decode.flip_average`` off and on, frames interleaved."""
    pipes = {str(on).lower(): LanePipeline(model, backend="onnxruntime-cpu", tracking=False,
                                           intra_op_threads=threads, decode_params={"flip_average": on})
             for on in (False, True)}
    med = compare("decode.flip_average", pipes, images)
    print(f"flip_average on / off: inference x{med['true']['infer'] / med['false']['infer']:.2f}, "
          f"whole pipeline x{med['true']['total'] / med['false']['total']:.2f}")


def report_versus(model: Path, other: Path, images: list[np.ndarray], threads: int) -> None:
    """``--versus``: the model against another (e.g. one with more outputs), frames interleaved."""
    pipes = {path.name: LanePipeline(path, backend="onnxruntime-cpu", tracking=False, intra_op_threads=threads)
             for path in (other, model)}
    med = compare("model", pipes, images)
    a, b = med[model.name], med[other.name]
    print(f"{model.name} / {other.name}: inference x{a['infer'] / b['infer']:.2f}, decode x"
          f"{a['decode'] / b['decode']:.2f}, whole pipeline x{a['total'] / b['total']:.2f}")


def report_heads_every(model: Path, images: list[np.ndarray], threads: int, every: int) -> None:
    """The packaged model on the CPU without its heads, with them every ``every`` frames (the node's default
    ``heads_every``) and every frame (``default_heads``), frames interleaved; the mean, which the frames with the
    heads weigh into as often as they come, is the throughput."""
    pipes = {f"heads_every {n}": LanePipeline(model, backend="onnxruntime-cpu", tracking=True, heads_every=n,
                                              intra_op_threads=threads) for n in (0, every, 1)}
    med = compare("packaged model on the CPU", pipes, images)
    lean = med["heads_every 0"]["mean total"]
    print("mean whole pipeline against no heads: " + ", ".join(
        f"{name} x{m['mean total'] / lean:.3f}" for name, m in med.items() if name != "heads_every 0"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40, help="timed frames (default %(default)s)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: all cores)")
    parser.add_argument("--model", type=Path, default=None, help="exported model (default: the stand-in)")
    parser.add_argument("--no-tracking", action="store_true", help="leave the tracking stage out")
    parser.add_argument("--versus", type=Path, default=None, metavar="MODEL",
                        help="also time --model against this model, frames interleaved (e.g. the shipped model "
                             "against one with more outputs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or stand_in_model(Path(tmp) / "stand_in.onnx")
        pipe = LanePipeline(model, backend="onnxruntime-cpu", tracking=not args.no_tracking,
                            intra_op_threads=args.threads)
        images = frames(args.frames, drive=args.model is not None)
        print(f"model {model.name}: {pipe.info.architecture} {pipe.info.input_width}x{pipe.info.input_height}, "
              f"backend {pipe.backend_name}, {args.frames} frames of 1280x720")
        lanes = float(np.mean([len(pipe.process(image).lanes) for image in images[:10]]))
        ratio = report_stages(stage_table(pipe, images), lanes)
        report_reuse(model, images, args.threads)
        if pipe.info.output_for("binary_logits") is not None:
            report_flip(model, images, args.threads)
        if args.versus is not None:
            report_versus(model, args.versus, images, args.threads)
        if pipe.heads_every:
            report_heads_every(model, images, args.threads, pipe.heads_every)
    return 0 if ratio <= 0.15 else 1


if __name__ == "__main__":
    sys.exit(main())
