"""The group contrastive loss against a hand computation, and multi-similarity mining."""

from __future__ import annotations

import math

import pytest
import torch

from humdex.training.loss import group_contrastive_loss, multi_similarity_masks


def test_loss_matches_hand_computation() -> None:
    # four unit vectors in 2-D: group 0 = {a, b}, group 1 = {c, d}
    ang = torch.tensor([0.0, 0.3, 2.0, 2.5])
    z = torch.stack([torch.cos(ang), torch.sin(ang)], dim=1)
    tau = 0.5
    s = lambda i, j: math.cos(float(ang[i] - ang[j]))
    groups = [[0, 1], [2, 3]]
    expected = 0.0
    for g, other in ((groups[0], groups[1]), (groups[1], groups[0])):
        for i in g:
            denom = sum(math.exp(s(i, l) / tau) for l in other)  # negatives only
            for j in g:
                if j != i:
                    expected -= math.log(math.exp(s(i, j) / tau) / denom)
    got = group_contrastive_loss(z, torch.tensor([0, 0, 1, 1]), tau=tau)
    assert math.isclose(float(got), expected, rel_tol=1e-5)
    mean = group_contrastive_loss(z, torch.tensor([0, 0, 1, 1]), tau=tau, reduction="mean")
    assert math.isclose(float(mean), expected / 4, rel_tol=1e-5)


def test_loss_is_lower_when_groups_are_separated() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    good = torch.nn.functional.normalize(torch.eye(3).repeat_interleave(2, 0) + 0.01, dim=1)
    bad = torch.nn.functional.normalize(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    assert group_contrastive_loss(good, labels) < group_contrastive_loss(bad, labels)


def test_gradient_flows_and_the_default_is_the_papers_tau() -> None:
    """The default temperature is the paper's 0.05 (DESIGN.md)."""
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1).requires_grad_()
    groups = torch.arange(4).repeat_interleave(2)
    loss = group_contrastive_loss(z, groups)
    loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    with torch.no_grad():
        assert loss.item() == pytest.approx(group_contrastive_loss(z, groups, tau=0.05).item())
        assert loss.item() != pytest.approx(group_contrastive_loss(z, groups, tau=0.1).item())


def _unit(*angles: float) -> torch.Tensor:
    ang = torch.tensor(angles, dtype=torch.float64)
    return torch.stack([torch.cos(ang), torch.sin(ang)], dim=1)


def test_with_one_negative_per_anchor_the_loss_scales_as_one_over_tau() -> None:
    # a, b in group 0, c alone: each anchor's term is (s_anchor,c - s_ab) / tau
    z = _unit(0.0, 0.4, 1.0)
    groups = torch.tensor([0, 0, 1])
    losses = {tau: float(group_contrastive_loss(z, groups, tau=tau)) for tau in (0.5, 0.1, 0.05)}
    assert losses[0.05] < losses[0.1] < losses[0.5] < 0  # c is farther than the positive
    scaled = [tau * loss for tau, loss in losses.items()]
    assert scaled == pytest.approx([scaled[0]] * 3, rel=1e-9)
    confused = _unit(0.0, 1.0, 0.4)  # now c sits between a and b: a negative closer than a positive
    worse = {tau: float(group_contrastive_loss(confused, groups, tau=tau)) for tau in (0.5, 0.05)}
    assert worse[0.05] == pytest.approx(10 * worse[0.5], rel=1e-9) and worse[0.05] > 0


def test_a_lower_tau_puts_the_gradient_on_the_hardest_negative() -> None:
    # a, b in group 0; two negatives alone in their groups: n_hard close to a and b, n_easy far
    def push_on_negatives(tau: float) -> tuple[float, float]:
        z = _unit(0.0, 0.2, 0.9, 2.5).requires_grad_()
        group_contrastive_loss(z, torch.tensor([0, 0, 1, 2]), tau=tau).backward()
        return float(z.grad[2].norm()), float(z.grad[3].norm())

    hard_warm, easy_warm = push_on_negatives(1.0)
    hard_cold, easy_cold = push_on_negatives(0.05)
    assert hard_warm > easy_warm and hard_cold > easy_cold
    assert hard_cold / easy_cold > 100 * (hard_warm / easy_warm)  # softmax weights sharpen as 1/tau
    assert hard_cold > 10 * hard_warm  # and the gradient itself grows about as 1/tau


def test_multi_similarity_mining_keeps_hard_pairs_only() -> None:
    sim = torch.tensor([[1.0, 0.9, 0.1, 0.85],
                        [0.9, 1.0, 0.2, 0.0],
                        [0.1, 0.2, 1.0, 0.5],
                        [0.85, 0.0, 0.5, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    same = labels[:, None] == labels[None, :]
    pos, neg = multi_similarity_masks(sim, same & ~torch.eye(4, dtype=torch.bool), ~same, epsilon=0.1)
    # anchor 0: hardest positive 0.9 -> negatives above 0.8 kept: 0.85 (3), not 0.1 (2)
    assert neg[0].tolist() == [False, False, False, True]
    # anchor 0: hardest negative 0.85 -> positives below 0.95 kept: 0.9 (1)
    assert pos[0].tolist() == [False, True, False, False]
    # anchor 1: hardest positive 0.9, negatives 0.2 / 0.0 are easy -> none kept, and it drops out
    assert not neg[1].any()
    z = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    assert torch.isfinite(group_contrastive_loss(z, labels, mine=True))
