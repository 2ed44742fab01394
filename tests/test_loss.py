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


def test_gradient_flows_and_default_tau() -> None:
    """The default temperature is the paper's 0.05 (DESIGN.md), and it shapes the loss."""
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1).requires_grad_()
    groups = torch.arange(4).repeat_interleave(2)
    loss = group_contrastive_loss(z, groups)
    loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    with torch.no_grad():
        assert loss.item() == pytest.approx(group_contrastive_loss(z, groups, tau=0.05).item())
        assert loss.item() != pytest.approx(group_contrastive_loss(z, groups, tau=0.1).item())


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
