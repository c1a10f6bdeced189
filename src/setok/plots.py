"""Plots shared by the chapters: token maps over images, density-peak maps, the decision graph, Algorithm 1's steps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor


def upsample_grid(values: Tensor | np.ndarray, grid: tuple[int, int], size: int) -> np.ndarray:
    """Nearest-neighbour upsampling of per-patch values (N,) on an ``h x w`` grid to a ``size x size`` map."""
    v = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values).reshape(grid)
    reps = (size // grid[0], size // grid[1])
    return np.kron(v, np.ones(reps, dtype=v.dtype)) if v.dtype != bool else np.kron(v, np.ones(reps)) > 0


def token_map(image: np.ndarray, labels: Tensor, grid: tuple[int, int], alpha: float = 0.45) -> np.ndarray:
    """The image with each token's patches tinted in one colour and cluster boundaries drawn."""
    from skimage.segmentation import mark_boundaries

    size = image.shape[0]
    lab = upsample_grid(labels, grid, size)
    rng = np.random.default_rng(7)
    palette = rng.uniform(0.1, 1.0, size=(int(lab.max()) + 2, 3))
    tint = palette[lab.clip(min=0)]
    out = (1 - alpha) * image + alpha * tint
    return mark_boundaries(out, lab, color=(1, 1, 1), mode="inner")


def show_images(images: list[np.ndarray], titles: list[str], size: float = 2.6) -> Figure:
    """A row of images with titles."""
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size), squeeze=False)
    for ax, img, title in zip(axes[0], images, titles, strict=True):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def show_token_maps(images: list[np.ndarray], labels: Tensor, grid: tuple[int, int], titles: list[str],
                    ncols: int = 4, size: float = 2.6) -> Figure:
    """A grid of token maps, one per image."""
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (img, title) in enumerate(zip(images, titles, strict=True)):
        ax = axes.flat[i]
        ax.imshow(token_map(img, labels[i], grid))
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def score_maps(image: np.ndarray, rho: Tensor, delta: Tensor, score: Tensor, grid: tuple[int, int],
               seeds: Tensor | None = None) -> Figure:
    """The image and its rho, delta and rho*delta maps (Eq. 1-2), seeds marked on the score map."""
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    axes[0].imshow(image)
    axes[0].set_title("image")
    for ax, values, title in zip(axes[1:], (rho, delta, score),
                                 (r"density $\rho$ (Eq. 1)", r"distance $\delta$ (Eq. 2)",
                                  r"seed score $\rho\,\delta$"), strict=True):
        im = ax.imshow(values.reshape(grid).cpu(), cmap="magma")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046)
    if seeds is not None:
        s = seeds[seeds >= 0].cpu()
        axes[3].scatter(s % grid[1], s // grid[1], marker="x", c="cyan", s=30, label="seeds")
        axes[3].legend(loc="lower right", fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def decision_graph(ax: Axes, rho: Tensor, delta: Tensor, seeds: Tensor | None = None, title: str = "") -> Axes:
    """Rodriguez & Laio's decision graph: delta against rho, seeds highlighted in creation order."""
    ax.scatter(rho.cpu(), delta.cpu(), s=10, c="0.5", alpha=0.7)
    if seeds is not None:
        s = seeds[seeds >= 0].cpu()
        ax.scatter(rho[s].cpu(), delta[s].cpu(), s=40, c=np.arange(len(s)), cmap="viridis", edgecolor="k",
                   label="seeds (colour = order)")
        for i, idx in enumerate(s.tolist()[:12]):
            ax.annotate(str(i + 1), (rho[idx].item(), delta[idx].item()), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.legend(fontsize=7)
    ax.set_xlabel(r"density $\rho$")
    ax.set_ylabel(r"distance to denser $\delta$")
    ax.set_title(title)
    return ax


def iterations(image: np.ndarray | None, creation_masks: Tensor, scopes: Tensor, seeds: Tensor,
               grid: tuple[int, int], steps: int = 4) -> Figure:
    """Algorithm 1 step by step: for each iteration the new soft mask (top) and the scope left after it (bottom)."""
    steps = min(steps, creation_masks.shape[0])
    fig, axes = plt.subplots(2, steps + 1, figsize=(2.5 * (steps + 1), 5.2))
    if image is not None:
        axes[0, 0].imshow(image)
    axes[0, 0].set_title("image")
    axes[1, 0].imshow(torch.ones(grid), vmin=0, vmax=1, cmap="gray")
    axes[1, 0].set_title("scope $c$ at start = 1")
    for t in range(steps):
        axes[0, t + 1].imshow(creation_masks[t].reshape(grid), vmin=0, vmax=1, cmap="viridis")
        seed = int(seeds[t]) if t < len(seeds) else -1
        label = f"mask {t + 1}" + (f" (seed {seed})" if seed >= 0 else " (final scope)")
        if seed >= 0:
            axes[0, t + 1].scatter([seed % grid[1]], [seed // grid[1]], marker="x", c="red", s=40)
        axes[0, t + 1].set_title(label, fontsize=9)
        axes[1, t + 1].imshow(scopes[t].reshape(grid), vmin=0, vmax=1, cmap="gray")
        axes[1, t + 1].set_title(f"scope after step {t + 1}: {float(scopes[t].sum()):.1f}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def points_clusters(ax: Axes, points: Tensor, labels: Tensor, seeds: Tensor | None = None, title: str = "") -> Axes:
    """2D points coloured by cluster, seeds marked."""
    p = points.cpu()
    ax.scatter(p[:, 0], p[:, 1], c=labels.cpu(), cmap="tab10", s=12)
    if seeds is not None:
        s = seeds[seeds >= 0].cpu()
        ax.scatter(p[s, 0], p[s, 1], marker="*", s=160, c="k", label="seeds")
        ax.legend(fontsize=7)
    ax.set_title(title)
    ax.set_aspect("equal")
    return ax
