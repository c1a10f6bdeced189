"""The mask decoder of Stage I sub-phase 2 and its losses (Eq. 4, arXiv 2406.05127v1; SPEC §2, §3.1).

MaskFormer-style: each token goes through an MLP to a mask embedding, which is dotted with per-pixel embeddings
upsampled from the patch features, giving one mask logit map per token. Predictions are Hungarian-matched to the
ground-truth object masks (cost = BCE + Dice) and trained with BCE + Dice; the consistency loss
KL(M || stopgrad(pi)) pulls the clustering's soft masks M towards the decoder's masks pi normalised over tokens.

Shape legend: B images, K max tokens, d width, N = h*w patches, M max ground-truth masks, P = Hm*Wm mask pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from scipy.optimize import linear_sum_assignment
from torch import nn


# -- losses on matched pairs ---------------------------------------------------------------------------------------
def sigmoid_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L_bce of Eq. 4 (MaskFormer): mean binary cross-entropy over pixels, per mask. (..., P) -> (...)."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(-1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """L_dice of Eq. 4 (MaskFormer): 1 - (2 sum(p t) + 1) / (sum p + sum t + 1), per mask. (..., P) -> (...)."""
    probs = logits.sigmoid()
    inter = (probs * targets).sum(-1)
    return 1 - (2 * inter + smooth) / (probs.sum(-1) + targets.sum(-1) + smooth)


def pairwise_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Matching cost BCE + Dice between every prediction and every target: (K, P), (M, P) -> (K, M)."""
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")  # (K, P)
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    bce = (pos @ targets.T + neg @ (1 - targets).T) / logits.shape[-1]  # (K, M)
    probs = logits.sigmoid()
    dice = 1 - (2 * probs @ targets.T + 1) / (probs.sum(-1)[:, None] + targets.sum(-1)[None, :] + 1)  # (K, M)
    return bce + dice


@torch.no_grad()
def hungarian_match(logits: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching of K predicted masks to M targets (scipy ``linear_sum_assignment``).

    Returns (pred_index, target_index), each of length min(K, M), sorted by prediction index.
    """
    if logits.ndim != 2 or targets.ndim != 2 or logits.shape[1] != targets.shape[1]:
        raise ValueError(f"logits (K, P) and targets (M, P) must share P (got {tuple(logits.shape)}, "
                         f"{tuple(targets.shape)})")
    cost = pairwise_cost(logits.float(), targets.float()).cpu().numpy()
    rows, cols = linear_sum_assignment(cost)
    return rows, cols


def mask_consistency_kl(masks: torch.Tensor, pi: torch.Tensor, token_mask: torch.Tensor,
                        padding_mask: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 4, arXiv 2406.05127v1; SPEC §3.1: KL(M || stopgrad(pi)) per image, averaged over valid locations.

    masks (B, K, N): the clustering's soft masks (sum over k = 1 at each valid location); pi (B, K, N): the mask
    decoder's masks normalised over tokens per location. Invalid tokens are excluded; padded locations
    (``padding_mask`` True = padding) are ignored. Returns (B,).
    """
    if masks.shape != pi.shape:
        raise ValueError(f"masks and pi must have the same shape (got {tuple(masks.shape)}, {tuple(pi.shape)})")
    pi = pi.detach()  # Eq. 4: nograd(pi)
    valid = token_mask[:, :, None].to(masks.dtype)  # (B, K, 1)
    m = masks.clamp_min(0) * valid
    kl = (m * (torch.log(m + eps) - torch.log(pi.clamp_min(0) + eps))).sum(1)  # (B, N)
    keep = torch.ones_like(kl) if padding_mask is None else (~padding_mask).to(kl.dtype)
    return (kl * keep).sum(1) / keep.sum(1).clamp_min(1)  # (B,)


def grid_object_labels(gt_masks: torch.Tensor, mask_valid: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """The majority ground-truth segment of each patch cell: gt_masks (B, M, H, W), mask_valid (B, M) -> (B, h*w)
    long, 0 for the background (pixels outside every object) and 1 + m for object m."""
    pooled = F.interpolate(gt_masks.float(), size=tuple(grid_size), mode="area")  # (B, M, h, w)
    pooled = pooled * mask_valid[:, :, None, None].to(pooled.dtype)
    background = (1 - pooled.sum(1, keepdim=True)).clamp_min(0)  # (B, 1, h, w)
    return torch.cat([background, pooled], 1).argmax(1).flatten(1)  # (B, N)


def pairwise_affinity_loss(z: torch.Tensor, kappa: torch.Tensor | float, labels: torch.Tensor,
                           eps: float = 1e-6) -> torch.Tensor:
    """Deviation (mini only, ``stage1.loss_weights.affinity``; not in the paper): the pairwise form of Eq. 4's mask
    consistency. The stick-breaking kernel phi(z_a, z_b) = exp(-||z_a - z_b||^2 kappa ln 2) (SPEC §1.2) between every
    two patches a != b is trained by binary cross-entropy towards "same ground-truth segment" (background included).

    Balanced by segment, so that a 3-patch object weighs as much as the background: the positive term averages, over
    the segments with at least two patches, the mean -log phi within a segment; the negative term averages, over the
    ordered pairs of distinct segments, the mean -log(1 - phi) between them. loss = (positive + negative) / 2.

    z (B, N, D) clustering space, labels (B, N) segment per patch (-1 = ignore) -> (B,).
    """
    from setok.clustering import pairwise_sqdist

    if z.shape[:2] != labels.shape:
        raise ValueError(f"z (B, N, D) and labels (B, N) must agree (got {tuple(z.shape)}, {tuple(labels.shape)})")
    n = labels.shape[1]
    dist = pairwise_sqdist(z.float())  # (B, N, N)
    log_phi = -dist * kappa * math.log(2.0)  # log of the kernel, exact
    log_not_phi = torch.log((-torch.expm1(log_phi)).clamp_min(eps))  # log(1 - phi)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=labels.device)
    segments = int(labels.max()) + 1 if labels.numel() and labels.max() >= 0 else 1
    one_hot = F.one_hot(labels.clamp_min(0).long(), segments).to(dist.dtype)  # (B, N, S)
    one_hot = one_hot * (labels >= 0)[..., None].to(dist.dtype)  # ignored patches belong to no segment
    size = one_hot.sum(1)  # (B, S) patches per segment

    def per_segment_pair(values: torch.Tensor) -> torch.Tensor:  # (B, N, N) -> sums over segment pairs (B, S, S)
        return torch.einsum("nas,nab,nbt->nst", one_hot, values * off_diagonal, one_hot)

    pairs = size[:, :, None] * size[:, None, :] - torch.diag_embed(size)  # (B, S, S) ordered pairs a != b
    same = torch.eye(segments, dtype=torch.bool, device=labels.device)[None]  # (1, S, S)
    pos_pairs = same & (pairs > 0)  # segments with at least two patches
    neg_pairs = ~same & (pairs > 0)  # two distinct present segments
    pos_mean = -per_segment_pair(log_phi) / pairs.clamp_min(1)  # (B, S, S)
    neg_mean = -per_segment_pair(log_not_phi) / pairs.clamp_min(1)
    pos = (pos_mean * pos_pairs).sum((1, 2)) / pos_pairs.sum((1, 2)).clamp_min(1)
    neg = (neg_mean * neg_pairs).sum((1, 2)) / neg_pairs.sum((1, 2)).clamp_min(1)
    return 0.5 * (pos + neg)  # (B,)


# -- the decoder ---------------------------------------------------------------------------------------------------
class MaskDecoder(ModelMixin, ConfigMixin):
    """Token -> MLP mask embedding, dotted with per-pixel embeddings upsampled from the patch features."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, token_dim: int = 1152, feature_dim: int = 1152, mask_dim: int = 256, upsample: int = 4,
                 mlp_layers: int = 3):
        super().__init__()
        if upsample < 1 or upsample & (upsample - 1):
            raise ValueError(f"upsample must be a power of two >= 1 (got upsample={upsample})")
        if mlp_layers < 1:
            raise ValueError(f"mlp_layers must be >= 1 (got mlp_layers={mlp_layers})")
        groups = math.gcd(32, mask_dim)
        self.input_proj = nn.Conv2d(feature_dim, mask_dim, kernel_size=1)
        stages = []
        for _ in range(int(math.log2(upsample))):  # each stage: x2 bilinear, 3x3 conv, GroupNorm, GELU
            stages += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(mask_dim, mask_dim, 3, padding=1), nn.GroupNorm(groups, mask_dim), nn.GELU()]
        stages.append(nn.Conv2d(mask_dim, mask_dim, kernel_size=1))
        self.pixel_decoder = nn.Sequential(*stages)
        layers: list[nn.Module] = []
        width = token_dim
        for i in range(mlp_layers):
            layers.append(nn.Linear(width, mask_dim))
            width = mask_dim
            if i < mlp_layers - 1:
                layers.append(nn.ReLU())
        self.mask_embed = nn.Sequential(*layers)

    def forward(self, tokens: torch.Tensor, features: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        """tokens (B, K, d), features (B, N, d) on an h x w grid -> mask logits (B, K, h*up, w*up)."""
        h, w = grid_size
        batch, n, dim = features.shape
        if n != h * w:
            raise ValueError(f"features have N={n} patches but grid_size={grid_size} gives {h * w}")
        pixel = features.transpose(1, 2).reshape(batch, dim, h, w)  # (B, d, h, w)
        pixel = self.pixel_decoder(self.input_proj(pixel))  # (B, c, Hm, Wm)
        embed = self.mask_embed(tokens)  # (B, K, c)
        return torch.einsum("bkc,bchw->bkhw", embed, pixel)  # (B, K, Hm, Wm)


def normalised_over_tokens(logits: torch.Tensor, token_mask: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """pi of Eq. 4: softmax of the mask logits over the valid tokens at each pixel, average-pooled to the token grid.

    logits (B, K, Hm, Wm), token_mask (B, K) -> pi (B, K, N) with sum over valid k = 1 at each location.
    """
    logits = logits.float().masked_fill(~token_mask[:, :, None, None], float("-inf"))
    probs = logits.softmax(dim=1).nan_to_num(0.0)  # (B, K, Hm, Wm); an image with no valid token gives zeros
    pooled = F.adaptive_avg_pool2d(probs, grid_size)  # (B, K, h, w)
    return pooled.flatten(2)  # (B, K, N)


@dataclass(frozen=True)
class MaskLosses:
    """Per-image losses (B,) of sub-phase 2: matched BCE, matched Dice, and the consistency KL."""

    bce: torch.Tensor
    dice: torch.Tensor
    kl: torch.Tensor
    num_matched: torch.Tensor  # (B,) long


def mask_losses(logits: torch.Tensor, token_mask: torch.Tensor, gt_masks: torch.Tensor, mask_valid: torch.Tensor,
                cluster_masks: torch.Tensor, grid_size: tuple[int, int], add_background: bool = True) -> MaskLosses:
    """Eq. 4 (L_mask = KL + L_bce + L_dice) per image, with Hungarian matching done image by image.

    logits (B, K, Hm, Wm) from :class:`MaskDecoder`; gt_masks (B, M, H, W) bool with mask_valid (B, M);
    cluster_masks (B, K, N) the tokenizer's soft masks in token order. With ``add_background`` the pixels outside
    every object form one more target mask (the background is a segment, too).
    """
    batch, _, hm, wm = logits.shape
    targets = F.interpolate(gt_masks.float(), size=(hm, wm), mode="area")  # (B, M, Hm, Wm) soft targets
    targets = targets * mask_valid[:, :, None, None].to(targets.dtype)
    if add_background:
        background = (1 - targets.sum(1, keepdim=True)).clamp(0, 1)  # (B, 1, Hm, Wm)
        targets = torch.cat([targets, background], dim=1)
        mask_valid = torch.cat([mask_valid, background.flatten(1).sum(1, keepdim=True) > 0], dim=1)
    flat_logits, flat_targets = logits.flatten(2), targets.flatten(2)  # (B, K, P), (B, M', P)
    bce, dice, matched = [], [], []
    for b in range(batch):  # matching is per image (scipy); the losses stay on the device
        k_idx = torch.nonzero(token_mask[b]).squeeze(1)
        m_idx = torch.nonzero(mask_valid[b]).squeeze(1)
        if len(k_idx) == 0 or len(m_idx) == 0:
            zero = flat_logits[b].sum() * 0.0
            bce.append(zero)
            dice.append(zero)
            matched.append(0)
            continue
        pred, tgt = flat_logits[b, k_idx], flat_targets[b, m_idx]  # (K', P), (M', P)
        rows, cols = hungarian_match(pred, tgt)
        rows_t, cols_t = torch.as_tensor(rows, device=pred.device), torch.as_tensor(cols, device=pred.device)
        bce.append(sigmoid_bce_loss(pred[rows_t].float(), tgt[cols_t]).mean())
        dice.append(dice_loss(pred[rows_t].float(), tgt[cols_t]).mean())
        matched.append(len(rows))
    pi = normalised_over_tokens(logits, token_mask, grid_size)  # (B, K, N)
    kl = mask_consistency_kl(cluster_masks, pi, token_mask)
    return MaskLosses(bce=torch.stack(bce), dice=torch.stack(dice), kl=kl,
                      num_matched=torch.tensor(matched, device=logits.device))
