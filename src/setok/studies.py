"""Studies of the clustering on its own (book chapter 1; SPEC §5.4): traces, sweeps and method comparisons.

Everything here works on patch features (B, N, D) and a :class:`~setok.baselines.ClusteringConfig`; the tokenizer's
clustering space (identity projection + L2 normalisation, SPEC §1.1) is applied first, exactly as in
:meth:`setok.tokenizer.SeTok.clustering_space` at initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from setok.baselines import ClusteringConfig, cluster
from setok.clustering import DensityPeaks, hard_assignment, one_hot_masks
from setok.tokenizer import order_tokens


@dataclass(frozen=True)
class ClusterResult:
    """Clustering of a batch in token order: masks (B, K, N), labels (B, N), num_tokens (B,), seeds (B, K)."""

    z: Tensor
    peaks: DensityPeaks | None
    masks: Tensor
    labels: Tensor
    num_tokens: Tensor
    seeds: Tensor
    creation_masks: Tensor  # (B, K0, N) the masks in creation order (Algorithm 1's own order)
    creation_seeds: Tensor  # (B, K0) their seeds


def cluster_features(features: Tensor, cfg: ClusteringConfig, generator: torch.Generator | None = None
                     ) -> ClusterResult:
    """Cluster patch features with ``cfg`` and put the clusters in SeTok's token order (SPEC §1.2)."""
    z = F.normalize(features, dim=-1)  # (B, N, D), SPEC §1.1 with the identity projection
    out, peaks = cluster(z, cfg, generator=generator)
    hard = cfg.mode == "hard"
    order, keep = order_tokens(out.masks, out.seeds, hard)  # (B, K)
    B, _, N = out.masks.shape
    masks = out.masks.gather(1, order[..., None].expand(B, order.shape[1], N)) * keep[..., None]
    if hard:
        ranks = torch.arange(order.shape[1]).expand_as(order).contiguous()
        rank = torch.full(out.seeds.shape, -1, dtype=torch.long).scatter_(1, order, ranks)
        created = hard_assignment(out.masks)
        labels = torch.where(created >= 0, rank.gather(1, created.clamp_min(0)), -1)
    else:
        labels = hard_assignment(masks)
    return ClusterResult(z=z, peaks=peaks, masks=masks, labels=labels, num_tokens=keep.sum(1),
                         seeds=out.seeds.gather(1, order).masked_fill(~keep, -1), creation_masks=out.masks,
                         creation_seeds=out.seeds)


def scope_trace(creation_masks: Tensor) -> Tensor:
    """Algorithm 1's scope after each iteration for one image: ``c_t = 1 - sum_{s<=t} M_s``, (K, N)."""
    if creation_masks.ndim != 2:
        raise ValueError(f"creation_masks must be (K, N) for one image (got {tuple(creation_masks.shape)})")
    return (1.0 - creation_masks.cumsum(0)).clamp_min(0.0)


def explained_variance(features: Tensor, labels: Tensor) -> float:
    """Share of the feature variance explained by the clusters (1 - within / total), averaged over images."""
    scores = []
    for f, lab in zip(features, labels, strict=True):  # a handful of images: an analysis, not the model path
        keep = lab >= 0
        f, lab = f[keep].double(), lab[keep]
        onehot = one_hot_masks(lab[None], int(lab.max()) + 1)[0].double()  # (K, N)
        means = onehot @ f / onehot.sum(1, keepdim=True).clamp_min(1)
        within = ((f - means[lab]) ** 2).sum()
        total = ((f - f.mean(0)) ** 2).sum()
        scores.append(float(1 - within / total) if total > 0 else 1.0)
    return float(np.mean(scores))


def sensitivity(features: Tensor, base: ClusteringConfig, kernel_scales: list[float], knn_ks: list[int]
                ) -> pd.DataFrame:
    """Token count and explained variance over a grid of ``kernel_scale`` x ``knn_k`` (SPEC §5.4)."""
    rows = []
    for kappa in tqdm(kernel_scales, desc="kernel_scale sweep", leave=False):
        for k in knn_ks:
            res = cluster_features(features, replace(base, kernel_scale=kappa, knn_k=k))
            rows.append({"kernel_scale": kappa, "knn_k": k,
                         "mean_tokens": float(res.num_tokens.float().mean()),
                         "std_tokens": float(res.num_tokens.float().std()) if len(res.num_tokens) > 1 else 0.0,
                         "explained_variance": explained_variance(features, res.labels)})
    return pd.DataFrame(rows)


def complexity_study(names: list[str], complexity: list[float], features: Tensor, cfg: ClusteringConfig
                     ) -> tuple[pd.DataFrame, float]:
    """Tokens per image against an image-complexity proxy; returns the table and Spearman's rank correlation."""
    from scipy.stats import spearmanr

    res = cluster_features(features, cfg)
    table = pd.DataFrame({"image": names, "complexity": complexity,
                          "num_tokens": res.num_tokens.tolist()})
    rho = float(spearmanr(table["complexity"], table["num_tokens"]).statistic) if len(table) > 2 else float("nan")
    return table, rho


def compare_methods(features: Tensor, base: ClusteringConfig, methods: list[str], seed: int = 0
                    ) -> tuple[pd.DataFrame, dict[str, Tensor]]:
    """Run each clustering method on the same features: token counts, explained variance and the label maps."""
    rows, labels = [], {}
    for method in methods:
        res = cluster_features(features, replace(base, method=method),
                               generator=torch.Generator().manual_seed(seed))
        labels[method] = res.labels
        rows.append({"method": method, "mean_tokens": float(res.num_tokens.float().mean()),
                     "min_tokens": int(res.num_tokens.min()), "max_tokens": int(res.num_tokens.max()),
                     "explained_variance": explained_variance(features, res.labels)})
    return pd.DataFrame(rows), labels


def synthetic_points(centres: list[tuple[float, float]], counts: list[int], spread: float, seed: int = 0) -> Tensor:
    """2D Gaussian blobs as one 'image' of N points (1, N, 2), for drawing the decision graph by hand."""
    if len(centres) != len(counts) or not centres:
        raise ValueError("centres and counts must be non-empty and of equal length")
    g = torch.Generator().manual_seed(seed)
    pts = [torch.tensor(c) + spread * torch.randn(n, 2, generator=g) for c, n in zip(centres, counts, strict=True)]
    return torch.cat(pts)[None].float()


@dataclass(frozen=True)
class ChapterInputs:
    """What the clustering chapter clusters: images, their patch features (B, N, D) and the grid."""

    names: list[str]
    images: list[np.ndarray]
    features: Tensor
    grid: tuple[int, int]
    source: str  # a sentence saying where the features come from


def chapter_inputs(profile: str, photos: list[str] | None = None, image_size: int = 256, grid: int = 16,
                   photos_dir: str | None = None, batch_size: int = 8) -> ChapterInputs:
    """Images and patch features for the clustering chapter at a profile.

    smoke / mini: photos that ship offline with hand-made colour and texture features (:mod:`setok.handcrafted`).
    paper: the images of ``photos_dir`` through the paper's vision tower (``tokenizer.encoder_path`` of the paper
    profile, a local SigLIP checkpoint); a missing folder or checkpoint is a FileNotFoundError naming it.
    """
    from setok.handcrafted import PHOTOS, load_folder, photo_batch

    if profile != "paper":
        names = list(photos or PHOTOS)
        images, feats = photo_batch(names, image_size, grid)
        return ChapterInputs(names, images, feats, (grid, grid),
                             "hand-made colour and texture statistics of each patch (paper scale: SigLIP features)")
    from setok.tokenizer import SeTok

    if not photos_dir:
        raise FileNotFoundError("the paper profile needs a local image folder (chapter parameter photos_dir)")
    model = SeTok.from_profile("paper").eval()
    size = model.config.image_size
    names, images = load_folder(photos_dir, size)
    feats = []
    with torch.no_grad():
        for i in tqdm(range(0, len(images), batch_size), desc="SigLIP features"):
            x = torch.tensor(np.stack(images[i : i + batch_size]), dtype=torch.float32).permute(0, 3, 1, 2)
            feats.append(model.encode(x * 2 - 1))  # SigLIP normalisation: mean 0.5, std 0.5
    return ChapterInputs(names, images, torch.cat(feats), model.grid_size,
                         f"SigLIP patch features from {model.config.encoder_path}")
