"""The cluster merger: one token per cluster (paper §2.1; SPEC §1.3).

``X_hat_i = PE(X) * M_i + X * M_i`` feeds ``L`` pre-norm transformer blocks whose attention stays inside a cluster;
the token ``u_i`` is the mean of the blocks' output over cluster ``i``.

Hard mode (the paper's best) runs *one* pass over all N patches with a block attention mask built from the hard
assignment: a patch attends only to patches of its own cluster, which is exactly running the blocks on every cluster
separately, with no loop over clusters and no padding of clusters to a common length. Soft mode runs each mask as its
own sequence, weighted by the mask, with a ``log M_i`` attention bias on the keys (as ToMe's size bias).

Shape legend: ``B`` images, ``N = h*w`` patches, ``d`` features, ``K`` clusters (masks), ``H`` heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from setok.clustering import hard_assignment


def sincos_2d(grid_size: tuple[int, int], dim: int, device=None, dtype=torch.float32) -> Tensor:
    """2D sinusoidal position embedding of an ``h x w`` grid in raster order, (h*w, dim).

    Half of the channels encode the row, half the column; each half is ``[sin(pos * w_k), cos(pos * w_k)]`` with
    ``w_k = 10000^(-k / (dim/4))`` (the Transformer's frequencies, as in MAE's 2D variant).
    """
    h, w = grid_size
    if dim % 4 != 0:
        raise ValueError(f"dim must be divisible by 4 for a 2D sin-cos embedding (got dim={dim})")
    quarter = dim // 4
    freq = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter))  # (dim/4,)
    rows = torch.arange(h, device=device, dtype=torch.float32).repeat_interleave(w)  # (N,)
    cols = torch.arange(w, device=device, dtype=torch.float32).repeat(h)  # (N,)
    r, c = rows[:, None] * freq, cols[:, None] * freq  # (N, dim/4)
    return torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=-1).to(dtype)  # (N, dim)


class MergerBlock(nn.Module):
    """Pre-norm transformer block: ``x = x + attn(ln_1(x)); x = x + ffn(ln_2(x))``."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim must be divisible by num_heads (got dim={dim}, num_heads={num_heads})")
        self.num_heads = num_heads
        self.ln_1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.ln_2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, dim))

    def attention(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        """Multi-head self-attention; ``attn_mask`` (B, N, N) is bool (True = may attend), an additive bias, or None."""
        B, N, d = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        # q, k, v: (B, H, N, d/H)
        mask = None if attn_mask is None else attn_mask[:, None]  # (B, 1, N, N), shared by the heads
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, N, d/H)
        return self.out_proj(y.transpose(1, 2).reshape(B, N, d))  # (B, N, d)

    def forward(self, x: Tensor, attn_mask: Tensor | None, keep: Tensor | None = None) -> Tensor:
        """``keep`` (B, N) bool, optional: the FFN runs only on these tokens (no work wasted on padding)."""
        x = x + self.attention(self.ln_1(x), attn_mask)
        if keep is None:
            return x + self.ffn(self.ln_2(x))
        rows = x[keep]  # (n_keep, d)
        return x.index_put((keep,), rows + self.ffn(self.ln_2(rows)))


class ClusterMerger(nn.Module):
    """SPEC §1.3: position-aware cluster merger, ``u_i = mean_{p in cluster i} Blocks(PE(X) M_i + X M_i)_p``.

    Args:
        dim: feature size ``d`` of the patch features and of the tokens.
        num_heads: attention heads (paper: 2).
        num_layers: transformer blocks ``L`` (paper: 2).
        ffn_dim: FFN hidden size (default ``4 * dim``).
        use_pe: add the 2D sinusoidal position embedding inside the merger (Table 8 ablates it).
        mean_only: no blocks at all, a plain mean of ``X`` over each cluster (Table 8's "w/o merger").
    """

    def __init__(self, dim: int, num_heads: int = 2, num_layers: int = 2, ffn_dim: int | None = None,
                 use_pe: bool = True, mean_only: bool = False):
        super().__init__()
        if dim < 1 or num_layers < 0 or num_heads < 1:
            raise ValueError(f"invalid merger sizes (dim={dim}, num_heads={num_heads}, num_layers={num_layers})")
        self.dim, self.use_pe, self.mean_only = dim, use_pe, mean_only
        ffn_dim = ffn_dim or 4 * dim
        self.blocks = nn.ModuleList(
            [] if mean_only else [MergerBlock(dim, num_heads, ffn_dim) for _ in range(num_layers)]
        )
        self.ln_f = nn.Identity() if mean_only else nn.LayerNorm(dim)

    def _check(self, x: Tensor, masks: Tensor, grid_size: tuple[int, int]) -> None:
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (B, N, {self.dim}) (got {tuple(x.shape)})")
        if masks.ndim != 3 or masks.shape[0] != x.shape[0] or masks.shape[2] != x.shape[1]:
            raise ValueError(f"masks must have shape (B, K, N) = ({x.shape[0]}, K, {x.shape[1]}) "
                             f"(got {tuple(masks.shape)})")
        h, w = grid_size
        if h * w != x.shape[1]:
            raise ValueError(f"grid_size {tuple(grid_size)} does not match N={x.shape[1]} tokens")

    def embed(self, x: Tensor, grid_size: tuple[int, int]) -> Tensor:
        """``X + PE(X)``; multiplied by a mask this is ``X_hat_i`` of SPEC §1.3."""
        if not self.use_pe or self.mean_only:
            return x
        return x + sincos_2d(grid_size, self.dim, device=x.device, dtype=x.dtype)[None]

    def forward(self, x: Tensor, masks: Tensor, grid_size: tuple[int, int], hard: bool = True
                ) -> tuple[Tensor, Tensor]:
        """Merge clusters into tokens.

        Args:
            x (Tensor, (B, N, d)): patch features.
            masks (Tensor, (B, K, N)): soft masks (hard mode takes their argmax; a token covered by no mask is
                padding and joins no cluster).
            grid_size: ``(h, w)`` with ``h * w = N``.
            hard: hard clustering (block attention, plain mean) or soft (per-mask sequences, weighted mean).
        Returns:
            tokens (Tensor, (B, K, d)) and token_mask (Tensor, (B, K), bool): True where the cluster is non-empty.
        """
        self._check(x, masks, grid_size)
        if hard:
            return self._forward_hard(x, masks, grid_size)
        return self._forward_soft(x, masks, grid_size)

    def _forward_hard(self, x: Tensor, masks: Tensor, grid_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        B, K, N = masks.shape
        labels = hard_assignment(masks)  # (B, N), -1 = padding
        valid = labels >= 0  # (B, N)
        onehot = (labels[:, None, :] == torch.arange(K, device=x.device)[None, :, None]).to(x.dtype)  # (B, K, N)
        y = self.embed(x, grid_size)  # (B, N, d)
        if self.blocks:
            same = labels[:, :, None] == labels[:, None, :]  # (B, N, N): same cluster (padding: with padding)
            same = same | torch.eye(N, dtype=torch.bool, device=x.device)  # every row attends at least to itself
            keep = None if x.device.type == "meta" or bool(valid.all()) else valid  # FFN skips padding
            for block in self.blocks:
                y = block(y, same, keep)
            y = self.ln_f(y)
        size = onehot.sum(-1)  # (B, K)
        tokens = torch.bmm(onehot, y) / size.clamp_min(1.0)[..., None]  # (B, K, d): mean over each cluster
        return tokens, size > 0

    def _forward_soft(self, x: Tensor, masks: Tensor, grid_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        B, K, N = masks.shape
        d = x.shape[-1]
        y = self.embed(x, grid_size)[:, None] * masks[..., None]  # (B, K, N, d): X_hat_i = (X + PE) * M_i
        weight = masks.reshape(B * K, N)  # (BK, N)
        if self.blocks:
            seq = y.reshape(B * K, N, d)  # (BK, N, d)
            bias = torch.log(weight.clamp_min(1e-6))[:, None, :].expand(B * K, N, N)  # (BK, N, N): log M_i keys
            for block in self.blocks:
                seq = block(seq, bias)
            y = self.ln_f(seq).reshape(B, K, N, d)
        mass = masks.sum(-1)  # (B, K)
        tokens = (y * masks[..., None]).sum(2) / mass.clamp_min(1e-6)[..., None]  # (B, K, d): weighted mean
        return tokens, mass > 1e-6


def merge_reference_loop(merger: ClusterMerger, x: Tensor, labels: Tensor, grid_size: tuple[int, int]
                         ) -> list[Tensor]:
    """Per-image, per-cluster reference of the hard merger (tests and ``setok bench`` compare against it).

    Runs the blocks on each cluster's patches alone and averages. Returns one (K_b, d) tensor per image, clusters in
    label order, empty labels skipped.
    """
    out = []
    pe = merger.embed(torch.zeros_like(x[:1]), grid_size)[0]  # (N, d): PE alone (zeros if disabled)
    for b in range(x.shape[0]):
        toks = []
        for k in range(int(labels[b].max()) + 1 if bool((labels[b] >= 0).any()) else 0):
            idx = (labels[b] == k).nonzero().flatten()
            if idx.numel() == 0:
                continue
            seq = (x[b, idx] + pe[idx])[None]  # (1, n_k, d)
            if merger.blocks:
                full = torch.ones(1, idx.numel(), idx.numel(), dtype=torch.bool, device=x.device)
                for block in merger.blocks:
                    seq = block(seq, full)
                seq = merger.ln_f(seq)
            toks.append(seq[0].mean(0))
        out.append(torch.stack(toks) if toks else x.new_zeros(0, x.shape[-1]))
    return out

