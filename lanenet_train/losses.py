"""Losses: class-weighted cross-entropy with an ignore label, hard-negative mining of background look-alikes,
and LaneNet's discriminative embedding loss.

Both are small functions of tensors; every constant tensor is made on the input's device
(``logits.new_tensor``), so the same code runs on CPU, one GPU or under DDP.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

from lanenet_train.models.layers import resize_to


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                           class_weights: Sequence[float] | torch.Tensor | None = None,
                           ignore_index: int = 255) -> torch.Tensor:
    """Class-weighted cross-entropy averaged over the pixels that are not ignored.

    ``sum_i w[y_i] * -log p_i(y_i) / sum_i w[y_i]`` over pixels with ``y_i != ignore_index``,
    the same normalisation as ``F.cross_entropy(weight=...)``. A batch with every pixel ignored gives 0
    (not NaN), so that a crop without labels does not poison the weights.

    Args:
        logits: (N, C, H, W) raw scores (float16 under autocast is promoted to float32).
        target: (N, H, W) integer class ids.
        class_weights: C weights; None for uniform.
        ignore_index: label value that contributes nothing.

    Returns:
        Scalar loss tensor.
    """
    logits = logits.float()
    weight = None
    if class_weights is not None and len(class_weights):
        weight = logits.new_tensor(class_weights) if not torch.is_tensor(class_weights) else \
            class_weights.to(logits)
        if weight.numel() != logits.shape[1]:
            raise ValueError(f"class_weights: {weight.numel()} weights for {logits.shape[1]} classes; "
                             "give one weight per class (loss_config.class_weights)")
    valid = target != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target.long(), weight=weight, ignore_index=ignore_index)


def hard_negative_loss(logits: torch.Tensor, target: torch.Tensor, fraction: float, margin: int = 0,
                       ignore_index: int = 255) -> tuple[torch.Tensor, int]:
    """Online hard-negative mining: mean cross-entropy of the hardest background pixels away from lanes.

    The class-weighted loss makes a false lane pixel cheap next to a missed one, so look-alikes that no lane
    label covers (unpainted road edges, the rim of a guard-rail shadow) cost little. This term picks the
    ``fraction`` of background pixels (class 0) with the highest cross-entropy, leaving out those within
    ``margin`` pixels of a labelled pixel (a label's own fuzzy rim is not a look-alike), and averages them.

    Args:
        logits: (N, C, H, W) raw scores.
        target: (N, H, W) integer class ids; 0 is background.
        fraction: share of the eligible background pixels to keep, in (0, 1].
        margin: pixels around labelled (non-background, not ignored) pixels that are not eligible.
        ignore_index: label value that is neither background nor a lane.

    Returns:
        ``(mean over the chosen pixels, how many were chosen)``; ``(0, 0)`` when no pixel is eligible.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"hard-negative fraction {fraction} is not in (0, 1]")
    eligible = _away_from_lanes(target, margin, ignore_index)
    count = int(eligible.sum())
    if count == 0:
        return logits.float().sum() * 0.0, 0
    nll = -F.log_softmax(logits.float(), dim=1)[:, 0]
    k = max(1, math.ceil(fraction * count))
    return torch.topk(nll[eligible], k, sorted=False).values.mean(), k


def _away_from_lanes(target: torch.Tensor, margin: int, ignore_index: int) -> torch.Tensor:
    """(N, H, W) bool: background pixels (class 0) more than ``margin`` pixels from any labelled lane pixel."""
    labelled = ((target != 0) & (target != ignore_index)).unsqueeze(1).float()
    if margin > 0:
        labelled = F.max_pool2d(labelled, 2 * margin + 1, stride=1, padding=margin)
    return (target == 0) & (labelled[:, 0] == 0)


def painted_loss(painted_logits: torch.Tensor, lane_logits: torch.Tensor, target: torch.Tensor, margin: int = 6,
                 ignore_index: int = 255) -> tuple[torch.Tensor, int]:
    """Whether what the lane branch marks is a painted line: binary cross-entropy of ``painted_logits``, 1 on
    labelled lane pixels, 0 on the pixels the lane branch marks (``lane_logits``: lane more likely than
    background) more than ``margin`` pixels from any labelled one (a bare road edge, a barrier's base, a shadow's
    edge: the lanes a decoder would draw where no line is painted). The two kinds weigh the same, however few
    the marked ones are. Meant for a frozen lane branch (``train_config.train_only: heads``): it learns what that
    branch gets wrong.

    Args:
        painted_logits: (N, 1, h, w) raw scores, resized to the target's size here.
        lane_logits: (N, 2, H, W) the lane branch's scores (no gradient flows into them).
        target: (N, H, W) integer class ids; 0 is background.
        margin: pixels around labelled pixels where a mark is not taught as unpainted.
        ignore_index: label value that is neither background nor a lane.

    Returns:
        ``(loss, how many pixels it saw)``; ``(0, 0)`` with none.
    """
    logits = resize_to(painted_logits, target)[:, 0].float()
    painted = (target != 0) & (target != ignore_index)
    marked = lane_logits.detach().argmax(1) == 1
    unpainted = marked & _away_from_lanes(target, margin, ignore_index)
    loss, seen = logits.sum() * 0.0, 0
    for pixels, value in ((painted, 1.0), (unpainted, 0.0)):
        if pixels.any():
            chosen = logits[pixels]
            loss = loss + 0.5 * F.binary_cross_entropy_with_logits(chosen, torch.full_like(chosen, value))
            seen += int(pixels.sum())
    return loss, seen


def discriminative_loss(embedding: torch.Tensor, instances: torch.Tensor, delta_v: float = 0.5,
                        delta_d: float = 3.0, alpha: float = 1.0, beta: float = 1.0, gamma: float = 0.001,
                        ignore_index: int = 255) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Discriminative embedding loss of De Brabandere et al. (2017), as LaneNet uses it.

    For each image with lanes ``c = 1..K`` (instance id 0 is background, ``ignore_index`` is skipped),
    with ``mu_c`` the mean embedding of lane c:
    pull = mean_c mean_{i in c} max(0, |mu_c - x_i| - delta_v)^2,
    push = mean_{c != c'} max(0, 2 delta_d - |mu_c - mu_c'|)^2,
    reg = mean_c |mu_c|; the loss is ``alpha pull + beta push + gamma reg`` averaged over images with lanes.

    Args:
        embedding: (N, E, H, W).
        instances: (N, H, W) integer lane ids.
        delta_v: pull margin.
        delta_d: push margin.
        alpha: pull weight.
        beta: push weight.
        gamma: mean-norm regulariser weight.
        ignore_index: id that is neither background nor a lane.

    Returns:
        (total, {"pull", "push", "reg"}) scalar tensors.
    """
    embedding = embedding.float()
    terms = [_image_terms(embedding[n], instances[n], delta_v, delta_d, ignore_index)
             for n in range(embedding.shape[0])]
    terms = [t for t in terms if t is not None]
    if not terms:
        zero = embedding.sum() * 0.0
        return zero, {"pull": zero, "push": zero, "reg": zero}
    parts = {k: torch.stack([t[i] for t in terms]).mean() for i, k in enumerate(("pull", "push", "reg"))}
    return alpha * parts["pull"] + beta * parts["push"] + gamma * parts["reg"], parts


def _image_terms(emb: torch.Tensor, ids: torch.Tensor, delta_v: float, delta_d: float,
                 ignore_index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    flat_ids = ids.reshape(-1).long()
    keep = (flat_ids != 0) & (flat_ids != ignore_index)
    if not bool(keep.any()):
        return None
    pixels = emb.reshape(emb.shape[0], -1).t()[keep]  # (P, E)
    lanes, inverse = torch.unique(flat_ids[keep], return_inverse=True)
    k = lanes.numel()
    counts = torch.zeros(k, device=emb.device, dtype=emb.dtype).index_add_(0, inverse, pixels.new_ones(len(inverse)))
    means = torch.zeros(k, emb.shape[0], device=emb.device, dtype=emb.dtype).index_add_(0, inverse, pixels)
    means = means / counts[:, None]
    dist = torch.clamp(torch.linalg.vector_norm(pixels - means[inverse], dim=1) - delta_v, min=0) ** 2
    pull = (torch.zeros_like(counts).index_add_(0, inverse, dist) / counts).mean()
    push = pull.new_zeros(())
    if k > 1:
        gaps = torch.linalg.vector_norm(means[:, None, :] - means[None, :, :], dim=2)
        off_diagonal = ~torch.eye(k, dtype=torch.bool, device=emb.device)
        push = (torch.clamp(2 * delta_d - gaps[off_diagonal], min=0) ** 2).mean()
    reg = torch.linalg.vector_norm(means, dim=1).mean()
    return pull, push, reg
