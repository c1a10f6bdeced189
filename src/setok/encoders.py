"""Vision encoders besides SigLIP: a ConvNeXt-style CNN with the same output contract as ``SiglipVisionModel``
(``last_hidden_state`` (B, N, d) on an h x w grid), for the ViT vs ConvNeXt comparison of Fig. 7
(arXiv 2406.05127v1, appendix E; SPEC §5.3). Footnote 3 of the paper: for a CNN, h and w are the feature-map sizes.

At smoke/mini it is built from config with random weights (trained in Stage I); at paper scale it loads an HF
``ConvNextModel`` checkpoint from a local path.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from transformers import ConvNextConfig, ConvNextModel
from transformers.modeling_outputs import BaseModelOutputWithPooling


def convnext_config(image_size: int, patch_size: int, hidden_size: int, num_stages: int = 2,
                    depths: tuple[int, ...] | None = None) -> ConvNextConfig:
    """A small ConvNeXt whose total stride equals ``patch_size`` and whose last stage has width ``hidden_size``.

    The stem downsamples by ``patch_size / 2^(num_stages-1)``, each later stage by 2; widths double per stage up to
    ``hidden_size``.
    """
    if num_stages < 1:
        raise ValueError(f"num_stages must be >= 1 (got num_stages={num_stages})")
    stem = patch_size / 2 ** (num_stages - 1)
    if stem < 1 or stem != int(stem):
        raise ValueError(f"patch_size must be a multiple of 2^(num_stages-1) (got patch_size={patch_size}, "
                         f"num_stages={num_stages})")
    if image_size % patch_size:
        raise ValueError(f"image_size must be divisible by patch_size (got {image_size}, {patch_size})")
    hidden_sizes = [max(hidden_size // 2 ** (num_stages - 1 - i), 8) for i in range(num_stages)]
    hidden_sizes[-1] = hidden_size
    depths = tuple(depths or [2] * num_stages)
    if len(depths) != num_stages:
        raise ValueError(f"depths must have num_stages={num_stages} entries (got {depths})")
    return ConvNextConfig(num_channels=3, patch_size=int(stem), num_stages=num_stages, hidden_sizes=hidden_sizes,
                          depths=list(depths), image_size=image_size)


class ConvNextPatchEncoder(ConvNextModel):
    """HF ``ConvNextModel`` whose output is flattened to patch features: ``last_hidden_state`` (B, h*w, d)."""

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:  # type: ignore[override]
        out = super().forward(pixel_values=pixel_values)
        fmap = out.last_hidden_state  # (B, d, h, w)
        return BaseModelOutputWithPooling(last_hidden_state=fmap.flatten(2).transpose(1, 2),  # (B, N, d)
                                          pooler_output=out.pooler_output)

    def grid_size(self, image_size: int) -> tuple[int, int]:
        """The feature-map size (h, w) for a square input of ``image_size`` pixels."""
        stride = self.config.patch_size * 2 ** (self.config.num_stages - 1)
        side = math.ceil(image_size / stride)
        return side, side


def build_convnext_encoder(image_size: int, patch_size: int, hidden_size: int, num_stages: int = 2,
                           depths: tuple[int, ...] | None = None, path: str | None = None) -> ConvNextPatchEncoder:
    """A ConvNeXt patch encoder: from a local checkpoint folder (``path``) or randomly initialised from config."""
    if path is not None:
        if not Path(path).exists():
            raise FileNotFoundError(f"checkpoint not found: {path!r} (set config key tokenizer.encoder_path)")
        return ConvNextPatchEncoder.from_pretrained(path)
    return ConvNextPatchEncoder(convnext_config(image_size, patch_size, hidden_size, num_stages, depths))
