"""Density-peak seeds and density-seeded stick breaking: SeTok's clustering (paper §2.1, appendix C; SPEC §1.1-1.2).

Shape legend: ``B`` images, ``N = h*w`` patch tokens, ``D`` clustering-space features, ``K`` masks (the batch's
largest number, zero-padded). Every function is batched over images; there is no Python loop over images, and the
only loop over clusters is Algorithm 1's own sequential recurrence, which runs without a host synchronisation per
step. Padding tokens (``padding_mask`` True) get scope 0 and affinity 0 and never become seeds.

Decide, then apply: this module only produces masks; :mod:`setok.merger` turns masks into tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

# How often (in iterations of Algorithm 1) we ask the device whether any image is still active. Between checks the
# loop runs with no host synchronisation; finished images simply stay inactive (SPEC §1.2).
_SYNC_EVERY = 8


@dataclass(frozen=True)
class DensityPeaks:
    """Per-token density-peak statistics, each (B, N); padding tokens hold 0."""

    rho: Tensor  # local density, Eq. 1
    delta: Tensor  # squared distance to the nearest denser token, Eq. 2
    score: Tensor  # seed score rho * delta


@dataclass(frozen=True)
class StickBreaking:
    """Output of Algorithm 1.

    masks: (B, K, N) soft masks in creation order with each image's final scope last, zero-padded to the batch's K.
    num_masks: (B,) number of masks per image, the final scope included.
    seeds: (B, K) token index of each mask's seed; -1 for the final scope and for padding masks.
    """

    masks: Tensor
    num_masks: Tensor
    seeds: Tensor


# --------------------------------------------------------------------------------------------------- input checks


def check_features(z: Tensor, padding_mask: Tensor | None) -> Tensor:
    """Check ``z`` and ``padding_mask``; return the (B, N) bool mask of valid tokens."""
    if not isinstance(z, Tensor):
        raise TypeError(f"z must be a torch.Tensor (got {type(z).__name__})")
    if z.ndim != 3:
        raise ValueError(f"z must have shape (B, N, D) (got {tuple(z.shape)})")
    B, N, D = z.shape
    if B == 0 or N == 0 or D == 0:
        raise ValueError(f"z must be non-empty (got shape {tuple(z.shape)})")
    if not z.is_floating_point():
        raise ValueError(f"z must be a floating-point tensor (got dtype {z.dtype})")
    if padding_mask is None:
        valid = torch.ones(B, N, dtype=torch.bool, device=z.device)
    else:
        if padding_mask.shape != (B, N):
            raise ValueError(f"padding_mask must have shape (B, N) = {(B, N)} (got {tuple(padding_mask.shape)})")
        if padding_mask.dtype != torch.bool:
            raise ValueError(f"padding_mask must be a bool tensor, True marking padding (got {padding_mask.dtype})")
        valid = ~padding_mask
    if z.device.type != "meta" and not bool(torch.isfinite(z).all()):  # fast path: no copy of the valid tokens
        if not bool(torch.isfinite(z).all(-1)[valid].all()):
            raise ValueError("z contains NaN or inf at valid (non-padding) tokens")
    return valid


def _check_knn(knn_k: int, valid: Tensor) -> None:
    if isinstance(knn_k, bool) or not isinstance(knn_k, int):
        raise ValueError(f"knn_k must be an int (got {knn_k!r})")
    n_valid = int(valid.sum(-1).min()) if valid.device.type != "meta" else valid.shape[1]
    if knn_k < 1 or knn_k >= n_valid:
        raise ValueError(f"knn_k must satisfy 1 <= knn_k < N (got knn_k={knn_k}, N={n_valid} valid tokens"
                         f"{' in the smallest image' if n_valid != valid.shape[1] else ''})")


# ------------------------------------------------------------------------------------------- distances and Eq. 1/2


def pairwise_sqdist(z: Tensor) -> Tensor:
    """Squared Euclidean distances ``||z_a - z_b||^2`` between all tokens of each image, (B, N, N).

    Uses ``|a|^2 + |b|^2 - 2 a.b`` (one batched matmul), clamped at 0, with an exact zero diagonal.
    """
    sq = (z * z).sum(-1)  # (B, N)
    dist = sq[:, :, None] + sq[:, None, :] - 2.0 * torch.bmm(z, z.transpose(1, 2))  # (B, N, N)
    dist = dist.clamp_min(0.0)
    return dist * (1.0 - torch.eye(z.shape[1], dtype=z.dtype, device=z.device))


def local_density(dist: Tensor, knn_k: int, valid: Tensor) -> Tensor:
    """Eq. 1, arXiv 2406.05127v1; SPEC §1.1: ``rho = exp(-(1/K) sum_{KNN} ||z_mn - z_ij||^2)``, (B, N).

    The K nearest neighbours exclude the token itself and all padding tokens.
    """
    N = dist.shape[-1]
    excluded = ~valid[:, None, :] | torch.eye(N, dtype=torch.bool, device=dist.device)  # (B, N, N)
    knn = dist.masked_fill(excluded, float("inf")).topk(knn_k, dim=-1, largest=False).values  # (B, N, K)
    rho = torch.exp(-knn.mean(-1))  # (B, N)
    return rho * valid


def distance_to_denser(dist: Tensor, rho: Tensor, valid: Tensor) -> Tensor:
    """Eq. 2, arXiv 2406.05127v1; SPEC §1.1: ``delta = min_{rho_mn > rho_ij} ||z_mn - z_ij||^2``, (B, N).

    Density ties go to the lower index (token ``m`` counts as denser than ``i`` if ``rho_m == rho_i`` and ``m < i``);
    the densest token takes its largest distance to any valid token instead.
    """
    N = dist.shape[-1]
    idx = torch.arange(N, device=dist.device)
    denser = (rho[:, None, :] > rho[:, :, None]) | (
        (rho[:, None, :] == rho[:, :, None]) & (idx[None, None, :] < idx[None, :, None])
    )  # (B, N, N): denser[b, i, m] is True when token m is denser than token i
    denser = denser & valid[:, None, :]
    nearest = dist.masked_fill(~denser, float("inf")).amin(-1)  # (B, N)
    farthest = dist.masked_fill(~valid[:, None, :], 0.0).amax(-1)  # (B, N)
    delta = torch.where(denser.any(-1), nearest, farthest)
    return delta * valid


def density_peak_scores(z: Tensor, knn_k: int = 5, padding_mask: Tensor | None = None) -> DensityPeaks:
    """Eq. 1-2, arXiv 2406.05127v1; SPEC §1.1: density ``rho``, distance ``delta`` and seed score ``rho * delta``.

    Args:
        z (Tensor, (B, N, D)): clustering-space features, used as given (no normalisation inside).
        knn_k: neighbours in the local density, ``1 <= knn_k < N``.
        padding_mask (Tensor, (B, N), bool, optional): True marks padding tokens.
    """
    valid = check_features(z, padding_mask)
    _check_knn(knn_k, valid)
    return _density_peaks_core(pairwise_sqdist(z), knn_k, valid)


def _density_peaks_core(dist: Tensor, knn_k: int, valid: Tensor) -> DensityPeaks:
    """Eq. 1-2 on checked inputs with precomputed squared distances ``dist`` (B, N, N)."""
    rho = local_density(dist, knn_k, valid)
    delta = distance_to_denser(dist, rho, valid)
    return DensityPeaks(rho=rho, delta=delta, score=rho * delta)


# ------------------------------------------------------------------------------------------------- Algorithm 1


def affinity(dist_to_seed: Tensor, kappa: Tensor | float) -> Tensor:
    """SPEC §1.2 kernel: ``phi(u, v) = exp(-||u - v||^2 * kappa * ln 2)``; halves at squared distance ``1/kappa``."""
    return torch.exp(-dist_to_seed * kappa * math.log(2.0))


def _check_stick_args(kernel_scale: Tensor | float, max_clusters: int, min_scope: float, min_mask: float) -> None:
    if isinstance(max_clusters, bool) or not isinstance(max_clusters, int) or max_clusters < 1:
        raise ValueError(f"max_clusters must be an int >= 1 (got {max_clusters!r})")
    kappa = kernel_scale.detach() if isinstance(kernel_scale, Tensor) else torch.tensor(float(kernel_scale))
    if kappa.numel() != 1 and kappa.device.type != "meta":
        raise ValueError(f"kernel_scale must be a scalar (got shape {tuple(kappa.shape)})")
    if kappa.device.type != "meta" and not (torch.isfinite(kappa).all() and (kappa > 0).all()):
        raise ValueError(f"kernel_scale must be a positive finite number (got {kappa.flatten()[0].item()})")
    if not (0.0 <= min_scope < 1.0):
        raise ValueError(f"min_scope must be in [0, 1) (got {min_scope})")
    if min_mask < 0:
        raise ValueError(f"min_mask must be >= 0 (got {min_mask})")


def stick_breaking(
    z: Tensor,
    score: Tensor,
    kernel_scale: Tensor | float,
    max_clusters: int,
    min_scope: float = 0.02,
    min_mask: float = 1.0,
    padding_mask: Tensor | None = None,
) -> StickBreaking:
    """Algorithm 1, arXiv 2406.05127v1 (appendix C); SPEC §1.2: density-seeded stick breaking.

    Args:
        z (Tensor, (B, N, D)): clustering-space features.
        score (Tensor, (B, N)): seed scores ``rho * delta`` (or any score: the ``random_seed`` baseline passes noise).
        kernel_scale: ``kappa`` of the kernel, a positive scalar (a tensor keeps the masks differentiable in it).
        max_clusters: most masks per image, the final scope included (so at most ``max_clusters - 1`` seeds).
        min_scope: stop once the unexplained mass ``sum(scope) < min_scope * N``.
        min_mask: stop (and discard the mask) once a new mask's mass is below ``min_mask`` tokens.
        padding_mask (Tensor, (B, N), bool, optional): True marks padding.
    """
    valid = check_features(z, padding_mask)
    _check_stick_args(kernel_scale, max_clusters, min_scope, min_mask)
    B, N, _ = z.shape
    if score.shape != (B, N):
        raise ValueError(f"score must have shape (B, N) = {(B, N)} (got {tuple(score.shape)})")
    if score.device.type != "meta" and not torch.isfinite(score[valid]).all():
        raise ValueError("score contains NaN or inf at valid tokens")

    return _stick_breaking_core(z, pairwise_sqdist(z), score, valid, kernel_scale, max_clusters, min_scope,
                                min_mask)


def _stick_breaking_core(z: Tensor, dist: Tensor, score: Tensor, valid: Tensor, kernel_scale: Tensor | float,
                         max_clusters: int, min_scope: float, min_mask: float) -> StickBreaking:
    """Algorithm 1 on checked inputs with precomputed squared distances ``dist`` (B, N, N)."""
    B, N, _ = z.shape
    validf = valid.to(z.dtype)  # (B, N)
    n_valid = validf.sum(-1)  # (B,)
    scope = validf.clone()  # (B, N): c = 1 on valid tokens
    active = torch.ones(B, dtype=torch.bool, device=z.device)  # (B,)
    masks, seeds, made = [], [], []
    batch = torch.arange(B, device=z.device)
    for step in range(max_clusters - 1):
        # 1. stop once what is left to explain is small (SPEC §1.2: sum(c) < min_scope * N)
        active = active & (scope.sum(-1) >= min_scope * n_valid)
        # 2. seed = argmax(s * c) over valid tokens; torch.argmax returns the first maximum (ties -> lower index)
        seed = torch.where(valid, score * scope, float("-inf")).argmax(-1)  # (B,)
        # 3. alpha = phi(z, z_seed); the new mask is c * alpha
        alpha = affinity(dist[batch, seed], kernel_scale) * validf  # (B, N)
        mask = scope * alpha  # (B, N)
        # 4. a mask lighter than min_mask tokens is discarded and ends that image's loop
        active = active & (mask.sum(-1) >= min_mask)
        mask = mask * active[:, None]
        scope = scope - mask  # c <- c * (1 - alpha) where the mask was kept
        masks.append(mask)
        seeds.append(torch.where(active, seed, -1))
        made.append(active)
        if (step + 1) % _SYNC_EVERY == 0 and z.device.type != "meta" and not bool(active.any()):
            break

    # 5. assemble: seeded masks in creation order, then the final scope (so every valid token's masks sum to 1)
    if masks:
        seeded = torch.stack(masks, 1)  # (B, S, N)
        seed_idx = torch.stack(seeds, 1)  # (B, S)
        num_seeded = torch.stack(made, 1).sum(1)  # (B,): a prefix, since an image that stops stays stopped
    else:
        seeded = z.new_zeros(B, 0, N)
        seed_idx = torch.full((B, 0), -1, dtype=torch.long, device=z.device)
        num_seeded = torch.zeros(B, dtype=torch.long, device=z.device)
    K = int(num_seeded.max()) + 1 if z.device.type != "meta" else max_clusters
    out = z.new_zeros(B, K, N)
    out[:, : K - 1] = seeded[:, : K - 1]
    out = out.scatter(1, num_seeded[:, None, None].expand(B, 1, N), scope[:, None, :])  # final scope at its slot
    out_seeds = torch.full((B, K), -1, dtype=torch.long, device=z.device)
    out_seeds[:, : K - 1] = seed_idx[:, : K - 1]
    return StickBreaking(masks=out, num_masks=num_seeded + 1, seeds=out_seeds)


def hard_assignment(masks: Tensor) -> Tensor:
    """SPEC §1.2 hard clustering: each token joins the mask with the largest weight (ties to the earlier mask).

    Args:
        masks (Tensor, (B, K, N)): soft (or one-hot) masks.
    Returns:
        labels (Tensor, (B, N), long): mask index per token; -1 for tokens no mask covers (padding).
    """
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape (B, K, N) (got {tuple(masks.shape)})")
    labels = masks.argmax(1)  # (B, N); torch.argmax returns the first maximum
    covered = masks.sum(1) > 0
    return torch.where(covered, labels, -1)


def one_hot_masks(labels: Tensor, num_masks: int) -> Tensor:
    """Hard masks (B, K, N) from labels (B, N); label -1 (padding) belongs to no mask."""
    B, N = labels.shape
    k = torch.arange(num_masks, device=labels.device)
    return (labels[:, None, :] == k[None, :, None]).float()  # (B, K, N)


def density_peak_stick_breaking(z: Tensor, knn_k: int, kernel_scale: Tensor | float, max_clusters: int,
                                min_scope: float = 0.02, min_mask: float = 1.0, padding_mask: Tensor | None = None
                                ) -> tuple[StickBreaking, DensityPeaks]:
    """Eq. 1-2 then Algorithm 1 (SPEC §1.1-1.2), checking the inputs and computing the distances once."""
    valid = check_features(z, padding_mask)
    _check_knn(knn_k, valid)
    _check_stick_args(kernel_scale, max_clusters, min_scope, min_mask)
    dist = pairwise_sqdist(z)  # (B, N, N), shared by both steps
    peaks = _density_peaks_core(dist, knn_k, valid)
    return _stick_breaking_core(z, dist, peaks.score, valid, kernel_scale, max_clusters, min_scope, min_mask), peaks
