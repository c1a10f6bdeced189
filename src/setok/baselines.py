"""One interface over SeTok's clustering and the training-free baselines of the ablations (SPEC §0, §5.2).

``cluster(z, cfg)`` returns the same :class:`~setok.clustering.StickBreaking` record (masks (B, K, N), num_masks,
seeds) whatever ``cfg.method`` is, so no caller branches on the method:

- ``setok``: density-peak scores (Eq. 1-2) + density-seeded stick breaking (Algorithm 1). The paper's method.
- ``threshold``: DPC-KNN as in the authors' public code: centres where ``rho * delta > threshold`` (the densest
  token always), hard nearest-centre assignment. Table 5's "Threshold" row.
- ``fixed``: the ``num_fixed`` highest-scoring density peaks as centres, nearest-centre assignment (Table 5 "Fixed").
- ``patch``: no clustering; every patch is its own token.
- ``random_seed``: stick breaking with uniformly random seed scores, GENESIS-V2's IC-SBP (seeded by a Generator).
- ``tome``: ToMe-style bipartite soft matching of patch features, merged to a budget of ``num_fixed`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from setok.clustering import (
    DensityPeaks,
    StickBreaking,
    check_features,
    density_peak_scores,
    density_peak_stick_breaking,
    one_hot_masks,
    pairwise_sqdist,
    stick_breaking,
)

METHODS = ("setok", "threshold", "fixed", "patch", "random_seed", "tome")


@dataclass
class ClusteringConfig:
    """Clustering settings (SPEC §1.1-1.2). Defaults are the paper-scale choices."""

    method: str = "setok"  # one of METHODS
    knn_k: int = 5  # SPEC §1.1 default K for the local density
    kernel_scale: float = 4.0  # kappa: affinity halves at squared distance 1/kappa (section 5.4 of the book)
    learn_kernel_scale: bool = True  # log-parametrised, trained by the mask-consistency loss (SPEC §3.1)
    learn_projection: bool = True  # identity-initialised linear map before L2 normalisation (SPEC §1.1)
    max_clusters: int = 64  # SPEC §1.2, counts the final scope
    min_scope: float = 0.02  # SPEC §1.2
    min_mask: float = 1.0  # SPEC §1.2, in tokens
    mode: str = "hard"  # hard (Table 5's best) or soft
    threshold: float = 0.55  # the authors' DPC-KNN cut on rho * delta ("threshold" method)
    num_fixed: int = 64  # centres for "fixed", token budget for "tome"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"clustering method must be one of {METHODS} (got {self.method!r})")
        if self.mode not in ("hard", "soft"):
            raise ValueError(f"clustering mode must be 'hard' or 'soft' (got {self.mode!r})")
        if self.knn_k < 1:
            raise ValueError(f"knn_k must be >= 1 (got {self.knn_k})")
        if not self.kernel_scale > 0:
            raise ValueError(f"kernel_scale must be > 0 (got {self.kernel_scale})")
        if self.max_clusters < 1:
            raise ValueError(f"max_clusters must be >= 1 (got {self.max_clusters})")
        if self.num_fixed < 1:
            raise ValueError(f"num_fixed must be >= 1 (got {self.num_fixed})")


def nearest_centre(dist: Tensor, centres: Tensor, centre_valid: Tensor, valid: Tensor) -> StickBreaking:
    """Hard assignment of every valid token to its nearest centre, as one-hot masks in centre order.

    Args:
        dist (Tensor, (B, N, N)): squared distances.
        centres (Tensor, (B, C), long): centre token indices; centre_valid (B, C) bool marks real centres.
        valid (Tensor, (B, N), bool): valid tokens.
    """
    B, N, _ = dist.shape
    to_centre = dist.gather(2, centres[:, None, :].expand(B, N, centres.shape[1]))  # (B, N, C)
    to_centre = to_centre.masked_fill(~centre_valid[:, None, :], float("inf"))
    labels = to_centre.argmin(-1).masked_fill(~valid, -1)  # (B, N); ties -> earlier (higher-scoring) centre
    masks = one_hot_masks(labels, centres.shape[1]).to(dist.dtype)  # (B, C, N)
    seeds = centres.masked_fill(~centre_valid, -1)
    return StickBreaking(masks=masks, num_masks=centre_valid.sum(1), seeds=seeds)


def _top_centres(score: Tensor, valid: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` highest-scoring valid tokens per image, (B, k) indices and (B, k) validity."""
    k = min(k, score.shape[1])
    ranked = score.masked_fill(~valid, float("-inf"))
    top = ranked.topk(k, dim=-1)
    return top.indices, torch.isfinite(top.values)


def threshold_centres(peaks: DensityPeaks, valid: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Centres where ``rho * delta > threshold`` (the top-scoring token always), sorted by descending score."""
    order = peaks.score.masked_fill(~valid, float("-inf")).argsort(dim=-1, descending=True, stable=True)  # (B, N)
    sorted_score = peaks.score.gather(1, order)
    is_centre = (sorted_score > threshold) & valid.gather(1, order)
    is_centre[:, 0] = True  # the top-scoring (densest) token is always a centre
    C = int(is_centre.sum(1).max())
    return order[:, :C], is_centre[:, :C]


def tome_merge(x: Tensor, budget: int) -> Tensor:
    """ToMe-style bipartite soft matching (Bolya et al., 2023) of (B, N, d) features down to ``budget`` groups.

    Each round splits the current groups alternately into sets A and B, links every group of A to its most similar
    (cosine) group of B, and merges the ``r`` strongest links (size-weighted means), ``r`` at most half the groups.
    Returns labels (B, N) with values in ``[0, budget)``.
    """
    B, N, d = x.shape
    labels = torch.arange(N, device=x.device).expand(B, N).clone()  # (B, N)
    feats, size = x.clone(), x.new_ones(B, N)  # (B, G, d), (B, G)
    while feats.shape[1] > budget:
        G = feats.shape[1]
        a_idx, b_idx = torch.arange(0, G, 2, device=x.device), torch.arange(1, G, 2, device=x.device)
        a, b = feats[:, a_idx], feats[:, b_idx]  # (B, Ga, d), (B, Gb, d)
        sim = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(1, 2)  # (B, Ga, Gb)
        best, best_b = sim.max(-1)  # (B, Ga)
        r = min(G - budget, a.shape[1])
        order = best.argsort(dim=-1, descending=True, stable=True)  # (B, Ga)
        merged, kept = order[:, :r], order[:, r:].sort(-1).values  # merged A groups, kept A groups (in order)
        Ga_kept = kept.shape[1]
        # new index of every old group: kept A groups first, then all B groups
        new_of_a = torch.empty_like(best_b)
        new_of_a.scatter_(1, kept, torch.arange(Ga_kept, device=x.device).expand(B, Ga_kept).contiguous())
        new_of_a.scatter_(1, merged, Ga_kept + best_b.gather(1, merged))
        new_of_old = torch.empty(B, G, dtype=torch.long, device=x.device)
        new_of_old[:, a_idx] = new_of_a
        new_of_old[:, b_idx] = Ga_kept + torch.arange(b.shape[1], device=x.device)
        # size-weighted means of the merged groups
        new_feats = x.new_zeros(B, Ga_kept + b.shape[1], d).scatter_add_(
            1, new_of_old[..., None].expand(B, G, d), feats * size[..., None])
        new_size = x.new_zeros(B, Ga_kept + b.shape[1]).scatter_add_(1, new_of_old, size)
        feats, size = new_feats / new_size[..., None], new_size
        labels = new_of_old.gather(1, labels)
    return labels


def cluster(
    z: Tensor,
    cfg: ClusteringConfig,
    padding_mask: Tensor | None = None,
    kernel_scale: Tensor | float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[StickBreaking, DensityPeaks | None]:
    """Cluster clustering-space features ``z`` (B, N, D) with ``cfg.method``; returns (masks record, peaks or None).

    ``kernel_scale`` overrides ``cfg.kernel_scale`` (the tokenizer passes its learnable ``kappa``).
    """
    valid = check_features(z, padding_mask)
    kappa = cfg.kernel_scale if kernel_scale is None else kernel_scale
    B, N, _ = z.shape
    if cfg.method == "setok":
        return density_peak_stick_breaking(z, cfg.knn_k, kappa, cfg.max_clusters, cfg.min_scope, cfg.min_mask,
                                           padding_mask)
    if cfg.method == "random_seed":
        noise = torch.rand(B, N, generator=generator, device="cpu").to(z.device, z.dtype)  # GENESIS-V2 IC-SBP
        return stick_breaking(z, noise, kappa, cfg.max_clusters, cfg.min_scope, cfg.min_mask, padding_mask), None
    if cfg.method == "patch":
        eye = torch.eye(N, dtype=z.dtype, device=z.device).expand(B, N, N) * valid[:, None, :]  # (B, N, N)
        seeds = torch.arange(N, device=z.device).expand(B, N).masked_fill(~valid, -1)
        return StickBreaking(masks=eye.clone(), num_masks=valid.sum(1), seeds=seeds), None
    if cfg.method == "tome":
        if padding_mask is not None and bool(padding_mask.any()):
            raise ValueError("the tome baseline does not support padding tokens")
        budget = min(cfg.num_fixed, N)
        labels = tome_merge(z, budget)  # (B, N)
        masks = one_hot_masks(labels, budget).to(z.dtype)  # (B, budget, N)
        first = torch.full((B, budget), N, dtype=torch.long, device=z.device).scatter_reduce(
            1, labels, torch.arange(N, device=z.device).expand(B, N), reduce="amin")  # (B, budget): first patch
        return StickBreaking(masks=masks, num_masks=(masks.sum(-1) > 0).sum(1), seeds=first), None
    peaks = density_peak_scores(z, cfg.knn_k, padding_mask)
    dist = pairwise_sqdist(z)
    if cfg.method == "threshold":
        centres, centre_valid = threshold_centres(peaks, valid, cfg.threshold)
    else:  # fixed
        centres, centre_valid = _top_centres(peaks.score, valid, cfg.num_fixed)
    return nearest_centre(dist, centres, centre_valid, valid), peaks
