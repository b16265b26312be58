"""Data-parallel helpers: process-group set-up from ``torchrun``'s environment, global sums, synced BN.

``torchrun --nproc_per_node N -m lanenet_train.cli train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; a plain ``lanenet-train train`` runs as a world of one. NCCL is used on CUDA, gloo on CPU.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class World:
    """This process's place in the run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        """Whether this process writes logs and checkpoints."""
        return self.rank == 0


class DeviceError(ValueError):
    """The requested torch device does not exist on this machine (the message says what is missing)."""


def check_device(name: str, local_rank: int = 0) -> str:
    """The device ``name`` resolves to on this machine (``auto``: CUDA when present), or a one-line reason.

    Args:
        name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (any torch device string).
        local_rank: this process's GPU index when ``name`` is a bare ``cuda`` (torchrun's ``LOCAL_RANK``).

    Returns:
        ``cpu``, or ``cuda:N``, or ``name`` itself for other torch devices.

    Raises:
        DeviceError: a CUDA device without a CUDA build of torch, without a visible GPU, or beyond the
            GPUs present; or not a device name at all.
    """
    if name == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"--device {name}: not a torch device; use cpu, cuda or cuda:N") from None
    if device.type != "cuda":
        return str(device)
    if not torch.backends.cuda.is_built():
        raise DeviceError(f"--device {name}: this PyTorch ({torch.__version__}) is a CPU-only build with no CUDA "
                          "support; install a CUDA build of torch, or use --device cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = device.index if device.index is not None else local_rank
    if count == 0:
        raise DeviceError(f"--device {name}: no CUDA GPU is visible to PyTorch (no NVIDIA GPU or driver, or "
                          "CUDA_VISIBLE_DEVICES hides them); use --device cpu")
    if index >= count:
        raise DeviceError(f"--device {name}: GPU {index} asked for, but this machine shows {count} "
                          f"(cuda:0{f'..cuda:{count - 1}' if count > 1 else ''})")
    return f"cuda:{index}"


def init_world(device: str = "auto") -> World:
    """Join the process group that ``torchrun`` describes (or run alone).

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.

    Returns:
        The world description; the default device is set for CUDA ranks.

    Raises:
        DeviceError: CUDA asked for where there is none (see :func:`check_device`).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(check_device(device, local))
    use_cuda = dev.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(dev)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank, size, local, dev)


def torchrun_command(argv: list[str], processes: int) -> list[str]:
    """The ``torchrun`` command line (as ``python -m torch.distributed.run``) that runs ``lanenet-train train
    ARGV`` in ``processes`` processes on this machine; ``--gpus`` is dropped from ``argv``."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--gpus":
            skip = True
        elif not arg.startswith("--gpus="):
            rest.append(arg)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "lanenet_train.cli", "train", *rest]


def close_world(world: World) -> None:
    """Leave the process group, if one was joined."""
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


class SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) with a gradient: the gradient of a sum over ranks is the sum of the gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out, group=_bn_group())
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad, group=_bn_group())
        return grad


_BN_GROUP: list = []


def _bn_group() -> dist.ProcessGroup:
    """A process group of its own for BN statistics, kept apart from DDP's gradient all-reduces."""
    if not _BN_GROUP:
        _BN_GROUP.append(dist.new_group(backend="gloo"))
    return _BN_GROUP[0]


class DistributedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose batch statistics cover every rank's part of the global batch (CPU and gloo too).

    ``torch.nn.SyncBatchNorm`` needs CUDA; this one sums per-channel counts, sums and squared sums with an
    autograd-aware all-reduce, so N processes compute exactly what one process does on the whole batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        # float64 sums, two passes (mean, then squared deviations), as torch's own CPU batch norm
        # accumulates: float32 sums drift by 1e-7 per layer and a deep net amplifies that
        wide = x.double()
        count = wide.new_full((1,), x.numel() / x.shape[1])
        stats = SumOverRanks.apply(torch.cat([wide.sum((0, 2, 3)), count]))
        total = stats[-1]
        mean = stats[:-1] / total
        var = SumOverRanks.apply(((wide - mean[None, :, None, None]) ** 2).sum((0, 2, 3))) / total
        with torch.no_grad():
            m = self.momentum if self.momentum is not None else 0.1
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * total / (total - 1).clamp_min(1), alpha=m)
            self.num_batches_tracked.add_(1)
        y = ((wide - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]).to(x.dtype)
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None] if self.affine else y


def sync_batchnorm(model: nn.Module, world: World) -> nn.Module:
    """Replace BatchNorm2d by a synchronised one when running on several ranks (weights kept)."""
    if world.size == 1:
        return model
    if world.device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            synced = DistributedBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine)
            synced.load_state_dict(child.state_dict())
            setattr(model, name, synced)
        else:
            sync_batchnorm(child, world)
    return model


