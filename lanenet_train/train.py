"""`lanenet-train train -e SPEC -r RESULTS_DIR [-k KEY] [--resume] [key=value ...]`.

Writes into RESULTS_DIR: ``spec.txt`` (the resolved spec), ``model_epoch_NNN.pth`` and ``latest.pth``
(atomic checkpoints with model, optimizer, schedule, scaler, epoch, step, RNG, spec and model info),
``metrics.jsonl`` (one line per logged step and per epoch) and ``tensorboard/``. Several processes:
``torchrun --nproc_per_node N -m lanenet_train.cli train ...`` (gloo on CPU, NCCL on CUDA).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from lanenet_ros.fileio import atomic_write_text
from lanenet_train.checkpoint import CheckpointError, load_checkpoint, make_model_info, save_checkpoint
from lanenet_train.data.layout import DatasetError
from lanenet_train.datasets import build_dataset, class_weights_for
from lanenet_train.distributed import World, close_world, init_world, sync_batchnorm
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
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="spec overrides, e.g. train_config.epochs=5 model_config.width_multiplier=0.5")


def run(args: argparse.Namespace) -> int:
    """Train; returns the process exit code (2 for a bad spec, data or checkpoint)."""
    try:
        spec = load_spec(args.experiment_spec, args.overrides)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    world = init_world(args.device)
    try:
        Trainer(spec, Path(args.results_dir), world, args.key).fit(resume=args.resume)
    except (DatasetError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        close_world(world)
    return 0


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class Trainer:
    """Builds data, model and optimizer from a spec and runs the epochs (see module docstring)."""

    def __init__(self, spec: Any, results: Path, world: World, key: str | None = None) -> None:
        self.spec, self.results, self.world, self.key = spec, results, world, key
        tc, ds = spec.train_config, spec.dataset_config
        torch.manual_seed(tc.seed)
        self.train_set, table = build_dataset(ds.data_sources, spec, train=True)
        self.val_set = build_dataset(ds.validation_data_sources, spec, train=False)[0] \
            if ds.validation_data_sources else None
        if tc.batch_size % world.size:
            raise ValueError(f"train_config.batch_size {tc.batch_size} is not divisible by the {world.size} "
                             "processes; the global batch is split evenly")
        self.local_batch = tc.batch_size // world.size
        if len(self.train_set) < tc.batch_size:
            raise ValueError(f"train_config.batch_size {tc.batch_size} exceeds the {len(self.train_set)} training "
                             "samples; lower it")
        weights = class_weights_for(spec.loss_config, table)
        spec.model_config.num_classes = len(table.names)
        spec.loss_config.class_weights = list(weights) if weights else []
        self.settings = LossSettings.from_spec(spec, weights)
        self.model_info = make_model_info(spec, table.names, table.colors, spec_fingerprint(spec))
        self._build_model()

    def _build_model(self) -> None:
        tc, world = self.spec.train_config, self.world
        model = sync_batchnorm(build_model(self.spec.model_config), world).to(world.device)
        self.raw_model = model
        self.model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[world.device.index] if world.device.type == "cuda" else None) \
            if world.size > 1 else model
        lr = peak_learning_rate(tc.learning_rate)
        if tc.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(model.parameters(), lr, momentum=tc.momentum, nesterov=tc.nesterov,
                                             weight_decay=tc.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(model.parameters(), lr, betas=(tc.momentum, 0.999),
                                               weight_decay=tc.weight_decay)
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
        dataset.epoch = self.epoch
        return DataLoader(dataset, self.local_batch if train else self.spec.evaluation_config.batch_size,
                          sampler=sampler, num_workers=self.spec.dataset_config.num_workers, drop_last=train,
                          pin_memory=self.world.device.type == "cuda")

    def fit(self, resume: bool = False) -> None:
        """Run the remaining epochs, checkpointing every ``checkpoint_interval`` epochs and at the end."""
        tc = self.spec.train_config
        if resume:
            self.restore(self.results / "latest.pth")
        elif tc.pretrained_model_path:
            self.load_pretrained(Path(tc.pretrained_model_path))
        if self.world.main:
            self.results.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.results / "spec.txt", spec_to_text(self.spec))
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
        losses = []
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

        Raises:
            CheckpointError: the file is not a readable checkpoint.
            ValueError: its network does not match ``model_config`` (the message names the first tensor).
        """
        state = load_checkpoint(path, self.key)["model_state"]
        own = self.raw_model.state_dict()
        # a bonnet head (model_config.hood_output) may start afresh on a network trained without one
        new_head = [k for k in own if k.startswith("hood_head.") and k not in state]
        state = {**state, **{k: own[k] for k in new_head}}
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing:
            what = f"has no {missing[0]!r}"
        elif extra:
            what = f"has an extra {extra[0]!r}"
        elif wrong:
            what = f"has {wrong[0]!r} of shape {tuple(state[wrong[0]].shape)} where this model_config needs " \
                f"{tuple(own[wrong[0]].shape)}"
        else:
            self.raw_model.load_state_dict(state)
            if new_head and self.world.main:
                print(f"note: {path} has no bonnet head; hood_head starts from fresh weights", file=sys.stderr)
            return
        raise ValueError(f"train_config.pretrained_model_path {path}: its network does not match "
                         f"model_config (it {what})")

    def restore(self, path: Path) -> None:
        """Load model, optimizer, schedule, scaler, counters and RNG from a checkpoint of this run."""
        ckpt = load_checkpoint(path, self.key)
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
