"""The mini world as a torch Dataset for Stage I (SPEC §6): scenes rendered on the fly, deterministically.

Shape legend: ``B`` images, ``M`` objects (max over the batch after padding), ``H x W`` pixels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from setok.data.miniworld.language import captions
from setok.data.miniworld.render import check_resolution, make_example
from setok.data.miniworld.scene import MAX_OBJECTS, check_split, rng_for


class MiniWorldDataset(Dataset):
    """``n`` mini-world images of ``split`` at ``resolution`` px, rendered in ``__getitem__`` (no files).

    Item: ``pixel_values`` float (3, H, W) in [0, 1]; ``masks`` bool (M, H, W) visible region per object in
    depth order (far to near); ``labels`` long (H, W), 0 = background, i = object i; ``caption`` str (the first
    of the five COCO-style captions); ``index`` int; ``scene`` the scene graph dict (with boxes and areas).
    """

    def __init__(self, split: str = "train", n: int = 1000, resolution: int = 64, seed: int = 0,
                 max_objects: int = MAX_OBJECTS) -> None:
        self.split = check_split(split)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1 (got n={n!r})")
        if not 1 <= max_objects <= MAX_OBJECTS:
            raise ValueError(f"max_objects must be in [1, {MAX_OBJECTS}] (got max_objects={max_objects})")
        self.n, self.resolution, self.seed = n, check_resolution(resolution), int(seed)
        self.max_objects = max_objects

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for a MiniWorldDataset of n={self.n}")
        index = index % self.n
        scene, r = make_example(self.split, index, self.seed, self.resolution, self.max_objects)
        caption = captions(scene, rng_for(self.seed, self.split, index, 1))[0]
        return {
            "pixel_values": torch.from_numpy(r.image).permute(2, 0, 1).contiguous(),  # (3, H, W)
            "masks": torch.from_numpy(r.masks),  # (M, H, W)
            "labels": torch.from_numpy(r.labels),  # (H, W)
            "caption": caption,
            "index": index,
            "scene": scene,
        }


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack ``pixel_values`` (B, 3, H, W) and ``labels`` (B, H, W); pad ``masks`` to (B, M, H, W) with
    ``mask_valid`` (B, M) marking real objects; ``index`` (B,) long; ``caption`` and ``scene`` stay lists."""
    if not batch:
        raise ValueError("collate needs a non-empty batch")
    pixel_values = torch.stack([b["pixel_values"] for b in batch])  # (B, 3, H, W)
    labels = torch.stack([b["labels"] for b in batch])  # (B, H, W)
    m = max(b["masks"].shape[0] for b in batch)
    h, w = labels.shape[-2:]
    masks = torch.zeros(len(batch), m, h, w, dtype=torch.bool)  # (B, M, H, W)
    mask_valid = torch.zeros(len(batch), m, dtype=torch.bool)  # (B, M)
    for k, b in enumerate(batch):
        masks[k, : b["masks"].shape[0]] = b["masks"]
        mask_valid[k, : b["masks"].shape[0]] = True
    return {"pixel_values": pixel_values, "labels": labels, "masks": masks, "mask_valid": mask_valid,
            "index": torch.tensor([b["index"] for b in batch], dtype=torch.long),
            "caption": [b["caption"] for b in batch], "scene": [b["scene"] for b in batch]}
