"""One training step and one pass over the data; losses normalised over the global batch.

Every loss term is a weighted mean over the whole global batch: each rank scales its local mean by its
share of the global denominator (all-reduced), so the gradient that DDP averages, and the loss that is
logged, equal those of one process holding the whole batch.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from lanenet_ros.lanes import LEARNED_TYPES
from lanenet_train.distributed import World
from lanenet_train.losses import discriminative_loss, hard_negative_loss, painted_loss, weighted_cross_entropy
from lanenet_train.models.layers import resize_to


@dataclass
class LossSettings:
    """The loss terms and their weights (``spec.LossConfig`` plus the resolved class weights)."""

    class_weights: Sequence[float] | None = None
    ignore_index: int = 255
    segmentation_weight: float = 1.0
    embedding_weight: float = 1.0
    delta_v: float = 0.5
    delta_d: float = 3.0
    variance_weight: float = 1.0
    distance_weight: float = 1.0
    regularization_weight: float = 0.001
    regularizer: str = "NO_REG"
    regularizer_weight: float = 0.0
    hard_negative_weight: float = 0.0
    hard_negative_fraction: float = 0.01
    hard_negative_margin: int = 4
    hood_weight: float = 1.0
    marking_weight: float = 1.0
    painted_weight: float = 1.0
    painted_margin: int = 6

    @classmethod
    def from_spec(cls, spec: Any, class_weights: Sequence[float] | None) -> LossSettings:
        """Settings from ``spec.loss_config`` (fields of the same names) and ``spec.train_config.regularizer``."""
        lc, reg = spec.loss_config, spec.train_config.regularizer
        return cls(class_weights=class_weights, ignore_index=lc.ignore_index,
                   segmentation_weight=lc.segmentation_weight, embedding_weight=lc.embedding_weight,
                   delta_v=lc.delta_v, delta_d=lc.delta_d, variance_weight=lc.variance_weight,
                   distance_weight=lc.distance_weight, regularization_weight=lc.regularization_weight,
                   regularizer=reg.type, regularizer_weight=reg.weight,
                   hard_negative_weight=lc.hard_negative_weight, hard_negative_fraction=lc.hard_negative_fraction,
                   hard_negative_margin=lc.hard_negative_margin, hood_weight=lc.hood_weight,
                   marking_weight=lc.marking_weight, painted_weight=lc.painted_weight,
                   painted_margin=lc.painted_margin)


def _global_constant(value: torch.Tensor, world: World) -> torch.Tensor:
    if world.size > 1:
        value = value.clone()
        dist.all_reduce(value)
    return value


def _share(local_mean: torch.Tensor, local_den: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's part of the global weighted mean (the parts sum to the global mean)."""
    total = _global_constant(local_den.detach().float(), world)
    if float(total) == 0.0:
        return local_mean * 0.0
    return local_mean * (local_den / total)


def compute_loss(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], settings: LossSettings,
                 world: World) -> dict[str, torch.Tensor]:
    """Loss terms of a batch, as this rank's share of the global-batch loss.

    Args:
        outputs: the model's output dict.
        batch: ``mask`` (N,H,W) and ``instance`` (N,H,W) on the model's device.
        settings: loss weights.
        world: the process group.

    Returns:
        ``{"segmentation", "embedding"?}`` tensors (with gradients); their sum over terms and ranks is the
        global loss before the weight penalty.
    """
    logits = outputs.get("binary_logits", outputs.get("class_logits"))
    mask = batch["mask"]
    valid = mask != settings.ignore_index
    if settings.class_weights:
        weight = logits.new_tensor(settings.class_weights)[mask.clamp(0, logits.shape[1] - 1)]
        den = (weight * valid).sum()
    else:
        den = valid.sum().float()
    ce = weighted_cross_entropy(logits, mask, settings.class_weights, settings.ignore_index)
    terms = {"segmentation": settings.segmentation_weight * _share(ce, den, world)}
    if settings.hard_negative_weight > 0:
        hard, chosen = hard_negative_loss(logits, mask, settings.hard_negative_fraction,
                                          settings.hard_negative_margin, settings.ignore_index)
        terms["hard_negative"] = settings.hard_negative_weight * _share(hard, logits.new_tensor(chosen), world)
    if "embedding" in outputs and settings.embedding_weight > 0:
        inst = batch["instance"]
        has_lanes = ((inst != 0) & (inst != settings.ignore_index)).flatten(1).any(1).sum().float()
        emb, _ = discriminative_loss(outputs["embedding"], inst, delta_v=settings.delta_v, delta_d=settings.delta_d,
                                     alpha=settings.variance_weight, beta=settings.distance_weight,
                                     gamma=settings.regularization_weight, ignore_index=settings.ignore_index)
        terms["embedding"] = settings.embedding_weight * _share(emb, has_lanes, world)
    if "hood_logits" in outputs and "hood" in batch and settings.hood_weight > 0:
        target = batch["hood"]
        labelled = target != settings.ignore_index
        n = labelled.sum().float()
        hood_logits = resize_to(outputs["hood_logits"], target)[:, 0]  # the heads give stride-4 maps
        bce = nn.functional.binary_cross_entropy_with_logits(hood_logits[labelled],
                                                             target[labelled].float(), reduction="sum")
        terms["hood"] = settings.hood_weight * _share(bce / n.clamp(min=1.0), n, world)
    if "marking_logits" in outputs and "marking_type" in batch and settings.marking_weight > 0:
        split = len(LEARNED_TYPES)
        marking = resize_to(outputs["marking_logits"], batch["marking_type"])
        for name, logits_, target in (("marking_type", marking[:, :split], batch["marking_type"]),
                                      ("marking_color", marking[:, split:], batch["marking_color"])):
            n = (target != settings.ignore_index).sum().float()
            ce = nn.functional.cross_entropy(logits_.float(), target, ignore_index=settings.ignore_index,
                                             reduction="sum")
            terms[name] = settings.marking_weight * _share(ce / n.clamp(min=1.0), n, world)
    if "painted_logits" in outputs and "binary_logits" in outputs and settings.painted_weight > 0:
        loss, seen = painted_loss(outputs["painted_logits"], outputs["binary_logits"], mask, settings.painted_margin,
                                  settings.ignore_index)
        terms["painted"] = settings.painted_weight * _share(loss, loss.new_tensor(float(seen)), world)
    return terms


def weight_penalty(model: nn.Module, kind: str, weight: float) -> torch.Tensor | None:
    """L1 or L2 penalty on the trained convolution and linear weights (not biases or norms), times ``weight``."""
    if kind == "NO_REG" or weight == 0:
        return None
    params = [m.weight for m in model.modules()
              if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear) and m.weight.requires_grad]
    if kind == "L1":
        return weight * sum(p.abs().sum() for p in params)
    return weight * sum((p * p).sum() for p in params)


@dataclass
class StepResult:
    """What one optimizer step reports (global-batch values, identical on every rank)."""

    loss: float
    terms: dict[str, float]
    lr: float


def train_step(model: nn.Module, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler | None, settings: LossSettings, world: World,
               amp: bool, raw_model: nn.Module | None = None) -> StepResult:
    """Forward, loss, backward and optimizer step on one (local part of a) batch.

    Args:
        model: the (possibly DDP-wrapped) network in training mode.
        batch: tensors already on ``world.device``.
        optimizer: its ``lr`` is reported.
        scaler: gradient scaler for CUDA AMP, or None.
        settings: loss settings.
        world: the process group.
        amp: run the forward pass in float16 autocast (CUDA).
        raw_model: the unwrapped network for the weight penalty (default ``model``).

    Returns:
        The global loss and its terms.

    Raises:
        ValueError: no loss term depends on a trained parameter.
    """
    with torch.autocast(world.device.type, dtype=torch.float16, enabled=amp):
        outputs = model(batch["image"])
    terms = compute_loss(outputs, batch, settings, world)
    penalty = weight_penalty(raw_model or model, settings.regularizer, settings.regularizer_weight)
    local = sum(terms.values())
    loss = local * world.size + (penalty if penalty is not None else 0.0)
    if not loss.requires_grad:  # e.g. train_config.train_only: a part no loss term reads
        raise ValueError(f"no loss term of this batch ({', '.join(terms)}) reaches the trained parameters "
                         "(train_config.train_only)")
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    report = _global_constant(torch.stack([t.detach().float() for t in terms.values()]), world).tolist()
    named = dict(zip(terms, report, strict=True))
    if penalty is not None:
        named["weight_penalty"] = float(penalty.detach())
    return StepResult(sum(named.values()), named, optimizer.param_groups[0]["lr"])


@torch.no_grad()
def validation_loss(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], settings: LossSettings,
                    world: World, to_device: Callable[[dict], dict]) -> float:
    """Mean loss over the validation batches (each batch's global loss, averaged over batches)."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = to_device(batch)
        terms = compute_loss(model(batch["image"]), batch, settings, world)
        total += float(_global_constant(sum(terms.values()).detach().float(), world))
        count += 1
    model.train()
    return total / max(count, 1)
