"""Learning-rate schedules of the spec, as multipliers of the optimizer's base rate per step.

TAO's soft-start annealing: log-linear warm-up from ``min`` to ``max`` during the first ``soft_start``
fraction of the steps, a plateau, then log-linear decay back to ``min`` from ``annealing`` to the end.
DeepLab's poly: ``base * (1 - step / total) ** power``, never below ``min_learning_rate``.
"""
from __future__ import annotations

import math
from typing import Any

import torch


def soft_start_annealing(progress: float, min_lr: float, max_lr: float, soft_start: float,
                         annealing: float) -> float:
    """Learning rate at ``progress`` in [0, 1] of training (TAO ``soft_start_annealing_schedule``)."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < soft_start:
        return _between(min_lr, max_lr, progress / soft_start)
    if progress < annealing or annealing >= 1.0:
        return max_lr
    return _between(max_lr, min_lr, (progress - annealing) / (1.0 - annealing))


def _between(a: float, b: float, t: float) -> float:
    """Geometric interpolation from a to b (linear when either is 0)."""
    if a <= 0 or b <= 0:
        return a + (b - a) * t
    return math.exp(math.log(a) + (math.log(b) - math.log(a)) * t)


def poly(progress: float, base_lr: float, power: float, min_lr: float = 0.0) -> float:
    """Learning rate at ``progress`` in [0, 1] of training (DeepLab ``poly`` policy)."""
    return max(min_lr, base_lr * (1.0 - min(max(progress, 0.0), 1.0)) ** power)


def peak_learning_rate(learning_rate: Any) -> float:
    """The base rate the optimizer is created with (the schedule's maximum)."""
    if learning_rate.poly_schedule:
        return learning_rate.poly_schedule.base_learning_rate
    return learning_rate.soft_start_annealing_schedule.max_learning_rate


def build_scheduler(optimizer: torch.optim.Optimizer, learning_rate: Any,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A step-wise scheduler for the spec's ``train_config.learning_rate``.

    Args:
        optimizer: created with ``lr=peak_learning_rate(learning_rate)``.
        learning_rate: ``spec.LearningRate``.
        total_steps: optimizer steps in the whole run.

    Returns:
        A ``LambdaLR`` to ``step()`` once per optimizer step; its ``state_dict`` is plain data.
    """
    peak, total = peak_learning_rate(learning_rate), max(1, total_steps)
    if learning_rate.poly_schedule:
        p = learning_rate.poly_schedule
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: poly(step / total, p.base_learning_rate, p.power, p.min_learning_rate) / peak)
    s = learning_rate.soft_start_annealing_schedule
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: soft_start_annealing(
        step / total, s.min_learning_rate, s.max_learning_rate, s.soft_start, s.annealing) / peak)
