"""Losses against direct formulas on tiny tensors."""
import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from lanenet_train.distributed import World
from lanenet_train.engine import LossSettings, compute_loss
from lanenet_train.losses import discriminative_loss, hard_negative_loss, weighted_cross_entropy


def direct_weighted_ce(logits, target, weights, ignore):
    num = den = 0.0
    n, c, h, w = logits.shape
    for b, y, x in itertools.product(range(n), range(h), range(w)):
        label = int(target[b, y, x])
        if label == ignore:
            continue
        scores = [float(logits[b, k, y, x]) for k in range(c)]
        log_p = scores[label] - math.log(sum(math.exp(s) for s in scores))
        weight = 1.0 if weights is None else weights[label]
        num += -weight * log_p
        den += weight
    return num / den


@pytest.mark.parametrize("weights", [None, [1.0, 1.0, 1.0], [0.5, 4.0, 10.0], [1.46, 24.3, 0.0]])
@pytest.mark.parametrize("ignore", [255, 1])
def test_weighted_ce_matches_torch_and_direct_formula(weights, ignore):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 4, 5, generator=g)
    target = torch.randint(0, 3, (2, 4, 5), generator=g)
    target[0, 0, :] = ignore
    got = weighted_cross_entropy(logits, target, weights, ignore_index=ignore)
    want = F.cross_entropy(logits, target, weight=None if weights is None else torch.tensor(weights),
                           ignore_index=ignore)
    torch.testing.assert_close(got, want)
    if weights is None or weights[1] > 0 or ignore == 1:
        assert got.item() == pytest.approx(direct_weighted_ce(logits, target, weights, ignore), rel=1e-5)


def test_weighted_ce_rare_class_weight_changes_the_loss_and_all_ignored_gives_zero():
    logits = torch.zeros(1, 2, 2, 2, requires_grad=True)
    target = torch.tensor([[[0, 1], [255, 255]]])
    logits.data[0, 1, 0, 1] = 3.0  # the lane pixel is right, the background pixel is not
    uniform = weighted_cross_entropy(logits, target, None)
    lane_heavy = weighted_cross_entropy(logits, target, [1.0, 10.0])
    assert lane_heavy < uniform
    empty = weighted_cross_entropy(logits, torch.full((1, 2, 2), 255), [1.0, 2.0])
    assert empty.item() == 0.0
    empty.backward()
    assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match="one weight per class"):
        weighted_cross_entropy(logits, target, [1.0, 2.0, 3.0])


def direct_discriminative(emb, ids, dv, dd, a, b, g, ignore=255):
    totals = []
    for n in range(emb.shape[0]):
        lanes = sorted({int(v) for v in ids[n].flatten()} - {0, ignore})
        if not lanes:
            continue
        mus, pulls = {}, []
        for lane in lanes:
            pts = [emb[n, :, y, x] for y in range(ids.shape[1]) for x in range(ids.shape[2]) if ids[n, y, x] == lane]
            mus[lane] = sum(pts) / len(pts)
            pulls.append(sum(max(0.0, float((mus[lane] - p).norm()) - dv) ** 2 for p in pts) / len(pts))
        pushes = [max(0.0, 2 * dd - float((mus[p] - mus[q]).norm())) ** 2 for p in lanes for q in lanes if p != q]
        reg = sum(float(m.norm()) for m in mus.values()) / len(lanes)
        totals.append(a * sum(pulls) / len(pulls) + b * (sum(pushes) / len(pushes) if pushes else 0.0) + g * reg)
    return sum(totals) / len(totals) if totals else 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("dv", "dd", "weights"), [(0.5, 3.0, (1, 1, 0.001)), (0.1, 0.5, (2.0, 0.5, 0.1))])
def test_discriminative_loss_matches_direct_loops(seed, dv, dd, weights):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(3, 4, 5, 6, generator=g) * 2
    ids = torch.randint(0, 4, (3, 5, 6), generator=g)
    ids[1] = torch.where(ids[1] == 2, torch.tensor(255), ids[1])
    ids[2] = 0  # an image without lanes does not count
    got, parts = discriminative_loss(emb, ids, dv, dd, *weights)
    assert got.item() == pytest.approx(direct_discriminative(emb, ids, dv, dd, *weights), rel=1e-5)
    assert set(parts) == {"pull", "push", "reg"}


def test_discriminative_loss_is_zero_for_tight_far_apart_clusters_and_has_gradients():
    emb = torch.zeros(1, 2, 2, 2)
    emb[0, 0, :, 0], emb[0, 0, :, 1] = -5.0, 5.0  # two lanes, 10 apart (> 2 * delta_d)
    ids = torch.tensor([[[1, 2], [1, 2]]])
    loss, parts = discriminative_loss(emb, ids, gamma=0.0)
    assert loss.item() == 0.0
    close = torch.zeros(1, 2, 2, 2, requires_grad=True)
    loss, parts = discriminative_loss(close, ids)
    assert parts["push"].item() == pytest.approx(36.0)  # (2 * 3 - 0) ** 2
    loss.backward()
    assert close.grad is not None


def background_nll(logits):
    return -F.log_softmax(logits, dim=1)[:, 0]


def test_hard_negative_loss_is_the_mean_of_the_hardest_eligible_background_pixels():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 2, 6, 8, generator=g)
    target = torch.zeros(2, 6, 8, dtype=torch.long)
    target[0, :, 1] = 1  # a lane
    target[1, 0, :] = 255  # ignored
    logits[0, 1, 2, 2] = 9.0  # a very lane-like background pixel right beside the lane
    for margin, fraction in [(0, 0.1), (0, 1.0), (1, 0.25), (2, 0.05)]:
        got, k = hard_negative_loss(logits, target, fraction, margin)
        eligible = torch.ones_like(target, dtype=torch.bool)
        for n, y, x in itertools.product(range(2), range(6), range(8)):
            near = [(yy, xx) for yy in range(y - margin, y + margin + 1) for xx in range(x - margin, x + margin + 1)
                    if 0 <= yy < 6 and 0 <= xx < 8]
            eligible[n, y, x] = target[n, y, x] == 0 and all(target[n, yy, xx] in (0, 255) for yy, xx in near)
        values = sorted(background_nll(logits)[eligible].tolist(), reverse=True)
        assert k == math.ceil(fraction * len(values))
        assert got.item() == pytest.approx(sum(values[:k]) / k, rel=1e-5)
        assert (margin == 0) == (background_nll(logits)[0, 2, 2].item() in values)


def test_hard_negative_loss_without_eligible_pixels_and_bad_fraction():
    logits = torch.zeros(1, 2, 3, 3, requires_grad=True)
    lanes = torch.ones(1, 3, 3, dtype=torch.long)
    value, k = hard_negative_loss(logits, lanes, 0.5)
    assert (value.item(), k) == (0.0, 0)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match="fraction"):
        hard_negative_loss(logits, lanes, 0.0)


def test_compute_loss_adds_the_hard_negative_term_only_when_weighted():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 2, 8, 8, generator=g, requires_grad=True)
    batch = {"mask": torch.zeros(2, 8, 8, dtype=torch.long), "instance": torch.zeros(2, 8, 8, dtype=torch.long)}
    batch["mask"][:, :, 3] = 1
    off = compute_loss({"binary_logits": logits}, batch, LossSettings([1.0, 5.0]), World())
    assert set(off) == {"segmentation"}
    on = compute_loss({"binary_logits": logits}, batch, LossSettings(
        [1.0, 5.0], hard_negative_weight=0.5, hard_negative_fraction=0.2, hard_negative_margin=1), World())
    want, _ = hard_negative_loss(logits, batch["mask"], 0.2, 1)
    torch.testing.assert_close(on["hard_negative"], 0.5 * want)
    torch.testing.assert_close(on["segmentation"], off["segmentation"])
    on["hard_negative"].backward()
    assert logits.grad[:, :, :, 3].abs().sum() == 0 and logits.grad.abs().sum() > 0
