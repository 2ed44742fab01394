"""The paper's group contrastive loss (negatives-only denominator) with optional multi-similarity mining."""

from __future__ import annotations

import torch

TAU = 0.05
MS_EPSILON = 0.1


def multi_similarity_masks(sim: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                           epsilon: float = MS_EPSILON) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-similarity miner (Wang et al. 2019): keep the informative pairs only.

    A negative (i, l) is kept when sim_il > min_j sim_ij - epsilon over i's positives j; a
    positive (i, j) is kept when sim_ij < max_l sim_il + epsilon over i's negatives l.
    sim, pos, neg: (N, N); returns the mined (pos, neg) boolean masks.
    """
    inf = torch.tensor(float("inf"), device=sim.device, dtype=sim.dtype)
    hardest_pos = torch.where(pos, sim, inf).amin(dim=1, keepdim=True)  # (N, 1)
    hardest_neg = torch.where(neg, sim, -inf).amax(dim=1, keepdim=True)
    return pos & (sim < hardest_neg + epsilon), neg & (sim > hardest_pos - epsilon)


def group_contrastive_loss(z: torch.Tensor, groups: torch.Tensor, tau: float = TAU,
                           mine: bool = False, reduction: str = "sum") -> torch.Tensor:
    """l = - sum_k sum_{z_i, z_j in Z_k, i != j} log( exp(s_ij / tau) / sum_{z_l not in Z_k} exp(s_il / tau) ).

    z: (N, D) L2-normalised fingerprints, so s = z z^T is the cosine similarity; groups: (N,)
    integer group of each row (rows of one group must match). The denominator holds only the
    anchor's negatives, as in the paper. Ordered pairs (i, j) and (j, i) both count; i = j does
    not. With `mine`, positives and negatives are restricted to those the multi-similarity miner
    keeps, and anchors left without negatives drop out. reduction: "sum" (the formula) or
    "mean" (divided by the number of pairs counted).
    """
    sim = z @ z.T
    same = groups[:, None] == groups[None, :]
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    pos, neg = same & ~eye, ~same
    if mine:
        pos, neg = multi_similarity_masks(sim.detach(), pos, neg)
    logits = sim / tau
    log_denominator = torch.logsumexp(logits.masked_fill(~neg, float("-inf")), dim=1)  # (N,)
    has_neg = neg.any(dim=1)
    pos = pos & has_neg[:, None]
    terms = (logits - log_denominator.masked_fill(~has_neg, 0.0)[:, None])[pos]
    total = -terms.sum()
    if reduction == "mean":
        return total / max(1, int(pos.sum()))
    if reduction != "sum":
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    return total
