"""Figures of the mini world for the chapter (SPEC §6): scene gallery with instance masks, edit triplets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from setok.data.miniworld.render import make_example


def label_overlay(labels: np.ndarray, max_objects: int = 8) -> np.ndarray:
    """An (H, W, 3) picture of an instance label map: background black, object i a fixed tab10 colour."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    palette = np.array([(0, 0, 0)] + [cmap(i)[:3] for i in range(max_objects)], dtype=np.float32)
    return palette[np.clip(labels, 0, max_objects)]


def gallery(split: str, indices: list[int], resolution: int, seed: int = 0, cols: int = 4) -> Any:
    """A grid of scenes: each image next to its instance masks (labels in depth order)."""
    import matplotlib.pyplot as plt

    rows = -(-len(indices) // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.0 * cols * 2, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, index in enumerate(indices):
        scene, r = make_example(split, index, seed, resolution)
        a, b = axes[k // cols, 2 * (k % cols)], axes[k // cols, 2 * (k % cols) + 1]
        a.imshow(r.image, interpolation="nearest")
        a.set_title(f"#{index}: {len(scene['objects'])} obj., {scene['background']['kind']}", fontsize=8)
        b.imshow(label_overlay(r.labels), interpolation="nearest")
        b.set_title("instance masks", fontsize=8)
    fig.tight_layout()
    return fig


def edit_triplets(root: str | Path, split: str, k: int = 5) -> Any:
    """The first ``k`` InstructPix2Pix triplets written under ``root``: input, edited, with the instruction."""
    import json

    import matplotlib.pyplot as plt
    from PIL import Image

    root = Path(root) / "instructpix2pix" / split
    seeds = json.loads((root / "seeds.json").read_text())[:k]
    fig, axes = plt.subplots(2, len(seeds), figsize=(2.3 * len(seeds), 5), squeeze=False)
    for j, (folder, (seed,)) in enumerate(seeds):
        prompt = json.loads((root / folder / "prompt.json").read_text())
        for row in range(2):
            axes[row, j].imshow(Image.open(root / folder / f"{seed}_{row}.png"), interpolation="nearest")
            axes[row, j].axis("off")
        axes[0, j].set_title(f"{prompt['kind']}", fontsize=9)
        axes[1, j].set_title(prompt["edit"], fontsize=7, wrap=True)
    fig.tight_layout()
    return fig
