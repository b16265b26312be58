"""`lanenet-train train -e SPEC -r RESULTS_DIR [-k KEY] [--resume] [--from-default] [--gpus N] [key=value ...]`.

Writes into RESULTS_DIR: ``spec.txt`` (the resolved spec), ``model_epoch_NNN.pth`` and ``latest.pth``
(atomic checkpoints with model, optimizer, schedule, scaler, epoch, step, RNG, spec and model info),
``metrics.jsonl`` (one line per logged step and per epoch) and ``tensorboard/``. Several processes:
``torchrun --nproc_per_node N -m lanenet_train.cli train ...`` (gloo on CPU, NCCL on CUDA).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from lanenet_ros.fileio import atomic_write_text
from lanenet_train.checkpoint import (
    DEFAULT_WEIGHTS,
    CheckpointError,
    load_checkpoint,
    make_model_info,
    save_checkpoint,
    state_differences,
)
from lanenet_train.data.layout import DatasetError
from lanenet_train.datasets import build_dataset, class_weights_for
from lanenet_train.distributed import (
    DeviceError,
    World,
    check_device,
    close_world,
    init_world,
    sync_batchnorm,
    torchrun_command,
)
from lanenet_train.engine import LossSettings, train_step, validation_loss
from lanenet_train.models import build_model
from lanenet_train.schedules import build_scheduler, peak_learning_rate
from lanenet_train.spec import SpecError, load_spec, spec_fingerprint, spec_to_dict, spec_to_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lanenet-train train``."""
    parser.add_argument("-e", "--experiment_spec", required=True, help="training spec file (protobuf text)")
    parser.add_argument("-r", "--results_dir", required=True, help="folder for checkpoints, logs and spec")
    parser.add_argument("-k", "--key", default=None, help="encrypt checkpoints with this passphrase")
    parser.add_argument("--resume", action="store_true", help="continue from RESULTS_DIR/latest.pth")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: CUDA if present")
    parser.add_argument("--from-default", action="store_true",
                        help="fine-tune from the shipped default model's weights (sets "
                             "train_config.pretrained_model_path to lanenet_ros/models/default.pth)")
    parser.add_argument("--gpus", type=int, default=None, metavar="N",
                        help="TAO spelling: train on N GPUs; starts the torchrun command of docs/training.md "
                             "(with --device cpu: N CPU processes)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="spec overrides, e.g. train_config.epochs=5 model_config.width_multiplier=0.5")


def run(args: argparse.Namespace) -> int:
    """Train; returns the process exit code (2 for a bad spec, data or checkpoint)."""
    if args.gpus is not None and "WORLD_SIZE" not in os.environ:
        return launch_processes(args)
    overrides = list(args.overrides)
    if args.from_default:
        if not DEFAULT_WEIGHTS.is_file():
            print(f"error: --from-default: {DEFAULT_WEIGHTS} is missing from this installation", file=sys.stderr)
            return 2
        overrides.append(f"train_config.pretrained_model_path={DEFAULT_WEIGHTS}")
    try:
        spec = load_spec(args.experiment_spec, overrides)
        world = init_world(args.device)
    except (SpecError, DeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        Trainer(spec, Path(args.results_dir), world, args.key).fit(resume=args.resume)
    except (DatasetError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        close_world(world)
    return 0


def resolved_spec(spec: Any, num_classes: int, class_weights: list[float] | None) -> Any:
    """A copy of ``spec`` with what the training data resolves: the class count (after the class mapping) and
    the class weights of the loss (given, from the dataset, or none); what checkpoints store."""
    return dataclasses.replace(
        spec, model_config=dataclasses.replace(spec.model_config, num_classes=num_classes),
        loss_config=dataclasses.replace(spec.loss_config, class_weights=list(class_weights) if class_weights else []))


def freeze(model: torch.nn.Module, train_only: list[str]) -> list[torch.nn.Module]:
    """``train_config.train_only``: stop the gradients of every parameter outside the named modules (and what
    they hold); returns the frozen modules that hold no trained one (to be kept in evaluation mode). Nothing
    is frozen when ``train_only`` is empty.

    Raises:
        ValueError: a name is not a module of the network (the message lists the top-level ones).
    """
    if not train_only:
        return []
    modules = dict(model.named_modules())
    unknown = [name for name in train_only if not name or name not in modules]
    if unknown:
        raise ValueError(f"train_config.train_only: {unknown[0]!r} is not a module of this network; its modules "
                         f"are {', '.join(name for name, _ in model.named_children())} (and their parts, "
                         "e.g. binary_decoder.head)")

    def trained(name: str) -> bool:
        return any(name == t or name.startswith(t + ".") for t in train_only)

    for name, param in model.named_parameters():
        param.requires_grad_(trained(name))
    return [m for name, m in modules.items()
            if not trained(name) and not any(p.requires_grad for p in m.parameters())]


def launch_processes(args: argparse.Namespace) -> int:
    """``--gpus N``: check the machine has N GPUs (or that ``--device cpu`` asks for N CPU processes), then run
    the torchrun command in place of this process; 2 with one line when it cannot."""
    import shlex

    n = args.gpus
    if n < 1:
        print(f"error: --gpus {n}: give at least 1", file=sys.stderr)
        return 2
    typed = getattr(args, "_argv", sys.argv[1:])
    argv = typed[typed.index("train") + 1:] if "train" in typed else []
    command = torchrun_command(argv, n)
    if args.device != "cpu":
        try:
            check_device(f"cuda:{n - 1}")
        except DeviceError as exc:
            reason = str(exc).removeprefix(f"--device cuda:{n - 1}: ")
            print(f"error: --gpus {n}: {reason}; to run {n} processes on the CPU instead: "
                  f"{shlex.join([*command, '--device', 'cpu'])}", file=sys.stderr)
            return 2
    if n == 1:  # one process: no torchrun needed
        args.gpus = None
        return run(args)
    print(f"starting {n} processes: {shlex.join(command)}", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class Trainer:
    """Builds data, model and optimizer from a spec and runs the epochs (see module docstring)."""

    def __init__(self, spec: Any, results: Path, world: World, key: str | None = None) -> None:
        """Build data, model and optimizer.

        Args:
            spec: the training spec; not changed (``self.spec`` is a copy with what the data resolves: the
                class count and the class weights).
            results: the run's folder.
            world: the process group.
            key: passphrase of the checkpoints, or None.
        """
        self.results, self.world, self.key = results, world, key
        tc, ds = spec.train_config, spec.dataset_config
        torch.manual_seed(tc.seed)
        self.train_set, table = build_dataset(ds.data_sources, spec, train=True)
        self.val_set = build_dataset(ds.validation_data_sources, spec, train=False)[0] \
            if ds.validation_data_sources else None
        if tc.batch_size % world.size:
            raise ValueError(f"train_config.batch_size {tc.batch_size} is not divisible by the {world.size} "
                             "processes; the global batch is split evenly")
        self.local_batch = tc.batch_size // world.size
        if spec.model_config.hood_output and spec.loss_config.hood_weight > 0 and \
                all(i is None for i in self.train_set.hood_ids):
            raise ValueError("model_config.hood_output: no training source labels the bonnet (class 'hood'), so "
                             "the bonnet head would learn nothing; make the data with `synth --label-hood` or set "
                             "hood_output: false")
        if spec.model_config.marking_output and spec.loss_config.marking_weight > 0 and \
                not any(s.get("markings") is not None for s in self.train_set.samples):
            raise ValueError("model_config.marking_output: no training sample labels its lanes' marking types and "
                             "colours, so the marking head would learn nothing; make the data with `synth "
                             "--format tusimple` (it labels them) or set marking_output: false")
        if len(self.train_set) < tc.batch_size:
            raise ValueError(f"train_config.batch_size {tc.batch_size} exceeds the {len(self.train_set)} training "
                             "samples; lower it")
        weights = class_weights_for(spec.loss_config, table)
        self.spec = resolved_spec(spec, num_classes=len(table.names), class_weights=weights)
        self.settings = LossSettings.from_spec(self.spec, weights)
        self.model_info = make_model_info(self.spec, table.names, table.colors, spec_fingerprint(self.spec))
        self._build_model()

    def _check_instances(self, spec: Any) -> None:
        """LaneNet's embedding learns only from instance masks: refuse a run where no sample has one (unless
        ``loss_config.embedding_weight`` is 0) and say how many have none otherwise.

        Raises:
            ValueError: no training sample has an instance mask and the embedding loss is on.
        """
        if spec.model_config.architecture != "lanenet" or spec.loss_config.embedding_weight <= 0:
            return
        without = sum(1 for s in self.train_set.samples if not s.get("instance"))
        if without == len(self.train_set.samples):
            raise ValueError("no training sample has instance labels (lane ids), so the embedding branch would "
                             "learn nothing: give instance_directory_path (PNG masks, 0 = none, 1..N left to "
                             "right) or convert TuSimple or CULane labels (which gives them), or set "
                             "loss_config.embedding_weight=0 to train the binary branch alone")
        if without and self.world.main:
            print(f"warning: {without} of {len(self.train_set.samples)} training samples have no instance labels; "
                  "the embedding loss skips them", file=sys.stderr)

    def _build_model(self) -> None:
        tc, world = self.spec.train_config, self.world
        model = sync_batchnorm(build_model(self.spec.model_config), world).to(world.device)
        self.raw_model = model
        self.model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[world.device.index] if world.device.type == "cuda" else None) \
            if world.size > 1 else model
        self.frozen = freeze(model, tc.train_only)
        trained = [p for p in model.parameters() if p.requires_grad]
        lr = peak_learning_rate(tc.learning_rate)
        if tc.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(trained, lr, momentum=tc.momentum, nesterov=tc.nesterov,
                                             weight_decay=tc.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(trained, lr, betas=(tc.momentum, 0.999), weight_decay=tc.weight_decay)
        self.steps_per_epoch = len(self.train_set) // tc.batch_size
        if tc.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, tc.max_steps_per_epoch)
        self.scheduler = build_scheduler(self.optimizer, tc.learning_rate, self.steps_per_epoch * tc.epochs)
        self.amp = tc.amp and world.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.epoch, self.step = 0, 0

    def loader(self, dataset: Any, train: bool) -> DataLoader:
        """A loader giving this rank its part of each global batch (same order for any process count)."""
        sampler = DistributedSampler(dataset, self.world.size, self.world.rank, shuffle=train,
                                     seed=self.spec.train_config.seed, drop_last=train)
        sampler.set_epoch(self.epoch)
        return DataLoader(dataset, self.local_batch if train else self.spec.evaluation_config.batch_size,
                          sampler=sampler, num_workers=self.spec.dataset_config.num_workers, drop_last=train,
                          pin_memory=self.world.device.type == "cuda")

    def fit(self, resume: bool = False) -> None:
        """Run the remaining epochs, checkpointing every ``checkpoint_interval`` epochs and at the end."""
        tc = self.spec.train_config
        self._check_instances(self.spec)
        if resume:
            self.restore(self.results / "latest.pth")
            if self.epoch >= tc.epochs:
                if self.world.main:
                    print(f"{self.results}: this run already finished its {tc.epochs} epochs (step {self.step}); "
                          f"nothing to resume. To train on, resume with a larger train_config.epochs=N")
                return
        elif tc.pretrained_model_path:
            self.load_pretrained(Path(tc.pretrained_model_path))
        if self.world.main:
            self.results.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.results / "spec.txt", spec_to_text(self.spec))
            if resume:
                self._trim_metrics()
        writer = self._writer()
        while self.epoch < tc.epochs:
            started = time.time()
            loss = self.train_epoch(writer)
            self.epoch += 1
            record = {"epoch": self.epoch, "train_loss": loss, "seconds": round(time.time() - started, 2)}
            if self.val_set is not None and tc.validation_interval and self.epoch % tc.validation_interval == 0:
                record["val_loss"] = validation_loss(self.model, self.loader(self.val_set, False), self.settings,
                                                     self.world, lambda b: _to_device(b, self.world.device))
            self._log(writer, record, self.step)
            if self.epoch % tc.checkpoint_interval == 0 or self.epoch == tc.epochs:
                self.save()
        if writer is not None:
            writer.close()

    def train_epoch(self, writer: Any) -> float:
        """One epoch; returns the mean global loss of its steps."""
        from tqdm import tqdm

        self.model.train()
        for module in self.frozen:  # frozen parts compute as in evaluation (no batch statistics, no dropout)
            module.eval()
        losses = []
        self.train_set.epoch = self.epoch  # augmentation draws from (seed, epoch, index): set before workers fork
        batches = iter(self.loader(self.train_set, True))
        bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {self.epoch + 1}/{self.spec.train_config.epochs}",
                   disable=not self.world.main, leave=False, dynamic_ncols=True)
        for _ in bar:
            batch = _to_device(next(batches), self.world.device)
            result = train_step(self.model, batch, self.optimizer, self.scaler, self.settings, self.world,
                                self.amp, self.raw_model)
            self.scheduler.step()
            self.step += 1
            losses.append(result.loss)
            bar.set_postfix(loss=f"{result.loss:.4f}", lr=f"{result.lr:.2e}")
            if not math.isfinite(result.loss):
                raise ValueError(f"loss became {result.loss} at step {self.step}; lower the learning rate")
            if self.step % self.spec.train_config.log_interval == 0 or self.step == 1:
                self._log(writer, {"step": self.step, "loss": result.loss, "lr": result.lr, **result.terms},
                          self.step)
        return sum(losses) / max(len(losses), 1)

    def _writer(self) -> Any:
        if not self.world.main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.results / "tensorboard"))

    def _trim_metrics(self) -> None:
        """Drop the records a killed run logged after its last checkpoint, which the resumed run logs again."""
        path = self.results / "metrics.jsonl"
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill
            later = record.get("epoch", 0) > self.epoch if "epoch" in record else record.get("step", 0) > self.step
            if not later:
                kept.append(line + "\n")
        atomic_write_text(path, "".join(kept))

    def _log(self, writer: Any, record: dict, step: int) -> None:
        if not self.world.main:
            return
        with open(self.results / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in record.items():
            if name not in ("step", "epoch") and writer is not None:
                writer.add_scalar(("epoch/" if "epoch" in record else "step/") + name, value, step)

    def payload(self) -> dict[str, Any]:
        """Everything a resumed run and the exporter need (plain data and tensors only)."""
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"format": "lanenet-checkpoint", "format_version": 1,
                "model_state": self.raw_model.state_dict(), "optimizer_state": self.optimizer.state_dict(),
                "scheduler_state": self.scheduler.state_dict(),
                "scaler_state": self.scaler.state_dict() if self.scaler else {},
                "epoch": self.epoch, "step": self.step, "rng": rng, "spec": spec_to_dict(self.spec),
                "model_info": self.model_info, "world_size": self.world.size}

    def save(self) -> None:
        """Write ``model_epoch_NNN.pth`` and ``latest.pth`` (rank 0 only)."""
        if self.world.main:
            payload = self.payload()
            save_checkpoint(self.results / f"model_epoch_{self.epoch:03d}.pth", payload, self.key)
            save_checkpoint(self.results / "latest.pth", payload, self.key)

    def load_pretrained(self, path: Path) -> None:
        """Start from the network weights of another run's checkpoint (``train_config.pretrained_model_path``).

        The file may be unencrypted even when this run has a key (``-k`` then encrypts this run's checkpoints and
        opens an encrypted pretrained file); the default model's weights (``--from-default``) are unencrypted.

        Raises:
            CheckpointError: the file is not a readable checkpoint (an ONNX model is refused, naming what to use).
            ValueError: its network does not match ``model_config`` (the message names the first tensor).
        """
        ckpt = load_checkpoint(path, self.key, allow_plain=True)
        state = ckpt["model_state"]
        own = self.raw_model.state_dict()
        # a bonnet or marking head (model_config.hood_output, marking_output) may start afresh on a network
        # trained without one
        heads = "heads."
        new_head = [k for k in own if k.startswith(heads) and k not in state]
        # and a head the checkpoint has but this model_config does not ask for is left out (the default
        # model's bonnet and marking heads, fine-tuning a network without them)
        dropped = sorted({k.split(".")[1] for k in state if k.startswith(heads) and k not in own})
        state = {**{k: v for k, v in state.items() if not (k.startswith(heads) and k not in own)},
                 **{k: own[k] for k in new_head}}
        missing, extra, wrong = state_differences(own, state)
        if missing:
            what = f"has no {missing[0]!r}"
        elif extra:
            what = f"has an extra {extra[0]!r}"
        elif wrong:
            what = f"has {wrong[0]!r} of shape {tuple(state[wrong[0]].shape)} where this model_config needs " \
                f"{tuple(own[wrong[0]].shape)}"
        else:
            self.raw_model.load_state_dict(state)
            theirs = ckpt.get("model_info", {})
            differ = [k for k in ("channel_order", "mean", "std", "roi_top")
                      if k in theirs and theirs[k] != self.model_info[k]]
            if differ and self.world.main:
                print(f"warning: {path} was trained with other input settings ("
                      + ", ".join(f"{k} {theirs[k]} here {self.model_info[k]}" for k in differ)
                      + "); fine-tuning starts from images it has not seen so", file=sys.stderr)
            if new_head and self.world.main:
                fresh = sorted({k.split(".")[1] for k in new_head})
                print(f"note: {path} has no heads.{' or heads.'.join(fresh)}; they start from fresh weights",
                      file=sys.stderr)
            if dropped and self.world.main:
                print(f"note: {path} has heads.{' and heads.'.join(dropped)}, which this model_config does not ask "
                      "for (hood_output, marking_output, painted_output); left out", file=sys.stderr)
            return
        trained = ckpt.get("spec", {}).get("model_config", {})
        made = ", ".join(f"{k} {trained[k]}" for k in ("architecture", "width_multiplier", "embedding_dim")
                         if k in trained)
        raise ValueError(f"train_config.pretrained_model_path {path}: its network does not match "
                         f"model_config (it {what})" + (f"; it was trained with {made}" if made else ""))

    def restore(self, path: Path) -> None:
        """Load model, optimizer, schedule, scaler, counters and RNG from a checkpoint of this run."""
        ckpt = load_checkpoint(path, self.key)
        missing = [k for k in ("optimizer_state", "scheduler_state", "epoch", "step", "rng") if k not in ckpt]
        if missing:
            raise CheckpointError(f"{path}: holds network weights only (no {missing[0]}), not a training run to "
                                  "resume; start a new run from it with train_config.pretrained_model_path")
        if ckpt["model_info"]["spec_fingerprint"] != self.model_info["spec_fingerprint"] and self.world.main:
            print(f"warning: {path} was trained with a different spec; resuming with the one given",
                  file=sys.stderr)
        self.raw_model.load_state_dict(ckpt["model_state"])
        self.optimizer.load_state_dict(ckpt["optimizer_state"])
        self.scheduler.load_state_dict(ckpt["scheduler_state"])
        if self.scaler and ckpt.get("scaler_state"):
            self.scaler.load_state_dict(ckpt["scaler_state"])
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if torch.cuda.is_available() and "cuda" in ckpt["rng"]:
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
