"""The Resampler baseline of Table 5 (arXiv 2406.05127v1; SPEC §5.2): a fixed set of learned queries cross-attends
the patch features and becomes the visual tokens, with the same output fields as SeTok (tokens, token_mask).

Shape legend: B images, N = h*w patches, d width, Q queries (64 in Table 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


@dataclass
class ResamplerOutput:
    """tokens (B, Q, d); token_mask (B, Q) all True; num_tokens (B,); masks (B, Q, N): the last layer's attention of
    each query over the patches (head-averaged, rows sum to 1), the Resampler's analogue of cluster masks;
    labels (B, N): argmax query per patch."""

    tokens: torch.Tensor
    token_mask: torch.Tensor
    num_tokens: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor


class ResamplerBlock(nn.Module):
    """Pre-norm cross-attention (queries -> patches), then a pre-norm FFN; both residual."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ffn = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, dim))

    def forward(self, queries: torch.Tensor, features: torch.Tensor,
                padding_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        kv = self.norm_kv(features)
        out, weights = self.attn(self.norm_q(queries), kv, kv, key_padding_mask=padding_mask,
                                 need_weights=True, average_attn_weights=True)  # (B, Q, d), (B, Q, N)
        queries = queries + out
        return queries + self.ffn(self.norm_ffn(queries)), weights


class Resampler(ModelMixin, ConfigMixin):
    """Table 5 "Resampler": Q learned queries, L cross-attention blocks over the patch features."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, hidden_size: int = 1152, num_queries: int = 64, num_layers: int = 2, num_heads: int = 2,
                 ffn_dim: int | None = None):
        super().__init__()
        if num_queries < 1 or num_layers < 1:
            raise ValueError(f"num_queries and num_layers must be >= 1 (got {num_queries}, {num_layers})")
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size must be divisible by num_heads (got {hidden_size}, {num_heads})")
        self.queries = nn.Parameter(torch.randn(1, num_queries, hidden_size) * 0.02)  # (1, Q, d)
        self.blocks = nn.ModuleList(
            ResamplerBlock(hidden_size, num_heads, ffn_dim or 4 * hidden_size) for _ in range(num_layers))
        self.norm_out = nn.LayerNorm(hidden_size)

    def forward(self, features: torch.Tensor, padding_mask: torch.Tensor | None = None) -> ResamplerOutput:
        """features (B, N, d) (padding_mask (B, N) True = padding) -> Q tokens per image."""
        if features.ndim != 3 or features.shape[-1] != self.config.hidden_size:
            raise ValueError(f"features must be (B, N, {self.config.hidden_size}) (got {tuple(features.shape)})")
        batch = features.shape[0]
        queries = self.queries.expand(batch, -1, -1)  # (B, Q, d)
        for block in self.blocks:
            queries, weights = block(queries, features, padding_mask)
        num_q = self.config.num_queries
        return ResamplerOutput(
            tokens=self.norm_out(queries),
            token_mask=torch.ones(batch, num_q, dtype=torch.bool, device=features.device),
            num_tokens=torch.full((batch,), num_q, dtype=torch.long, device=features.device),
            masks=weights, labels=weights.argmax(dim=1),
        )
