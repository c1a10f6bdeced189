"""Forward FLOPs of SeTokim, split into vision encoder, tokenizer and LLM prefill (SPEC §5.2; Tables 5 and 9).

The counter is ``torch.utils.flop_counter.FlopCounterMode``: it counts matmuls, convolutions and attention kernels
(2 FLOPs per multiply-add) and nothing else. Two details make its numbers right:

- Attention runs in eager form. PyTorch's fused SDPA kernel on CPU is not in the counter's table and counts 0;
  :func:`eager_attention` swaps ``F.scaled_dot_product_attention`` for its plain math (``q k^T``, softmax, ``a v``)
  while counting, and HF models are switched to ``attn_implementation="eager"``.
- Paper-scale models are built on ``torch.device("meta")``: shapes without memory, so SigLIP-so400m plus Vicuna-7B
  or 13B count in seconds on a laptop.

What the counter cannot see is added analytically and labelled so (:func:`clustering_analytic_flops`): the
density-peak clustering (Eq. 1-2) and the stick-breaking loop (Algorithm 1) are mostly element-wise work, top-k,
argmax and comparisons, which the counter skips; we count one FLOP per element-wise operation or comparison. Only
the pairwise-distance matmul (2 N^2 D, computed twice: once for the densities, once for the kernel) is counted by
the counter. The hard merger (SPEC §1.3) runs its blocks over all N patches with a block-diagonal attention mask,
so its cost does not depend on the number of clusters except for the final mean; the LLM prefill grows with the
number of visual tokens, which is the effect Table 5 and Table 9 of arXiv 2406.05127v1 report.

Worked example (a 2-layer MLP on 10 tokens: 2 * 10 * (8*16 + 16*4) = 3840 FLOPs)::

    >>> import torch
    >>> from setok.eval.flops import count_flops, attention_flops
    >>> mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))
    >>> count_flops(mlp, torch.zeros(1, 10, 8)).total
    3840
    >>> q = torch.zeros(1, 2, 10, 4)                         # 2 heads, 10 tokens, 4 dims per head
    >>> attend = lambda q: torch.nn.functional.scaled_dot_product_attention(q, q, q)  # looked up at call time
    >>> count_flops(attend, q).total == attention_flops(10, 10, 8) == 3200
    True
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

# Vicuna-v1.5 (LLaMA-2 architecture, SPEC §2): public config.json values of lmsys/vicuna-{7b,13b}-v1.5.
LLM_CONFIGS: dict[str, dict[str, int]] = {
    "vicuna-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000),
    "vicuna-13b": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
                       num_key_value_heads=40, vocab_size=32000),
}
# Stand-in LLMs for the small profiles until the MLLM config section lands (small LLaMA shapes, stated as such).
STANDIN_LLM: dict[str, dict[str, int]] = {
    "smoke": dict(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=2, vocab_size=1024),
    "mini": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=4, vocab_size=4096),
}
TABLE5_TOKENS = (8, 19, 25, 64, 256, 576)  # Table 5: Fixed 8/64/256/576, Threshold 19*, Hard 25* (averages)
DEFAULT_LLM = {"paper": "vicuna-7b", "mini": "mini-standin", "smoke": "smoke-standin"}


# ------------------------------------------------------------------------------------------- counting
def _sdpa_math(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
               dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
               enable_gqa: bool = False) -> Tensor:
    """Plain-math scaled dot-product attention (what SDPA computes), so that the counter sees its matmuls."""
    L, S = query.shape[-2], key.shape[-2]
    if enable_gqa and key.shape[-3] != query.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(rep, -3), value.repeat_interleave(rep, -3)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query * scale) @ key.transpose(-2, -1)  # (..., L, S)
    if is_causal:
        causal = torch.ones(L, S, dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool \
            else scores + attn_mask
    weights = scores.softmax(-1)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ value  # (..., L, Ev)


@contextlib.contextmanager
def eager_attention() -> Iterator[None]:
    """Within this block ``F.scaled_dot_product_attention`` runs as plain math (counted by FlopCounterMode)."""
    with mock.patch.object(torch.nn.functional, "scaled_dot_product_attention", _sdpa_math):
        yield


@dataclass(frozen=True)
class FlopCount:
    """Forward FLOPs: ``total``, per module (fully qualified names, ``"Global"`` = total) and per aten op."""

    total: int
    by_module: dict[str, int]
    by_op: dict[str, int]


def count_flops(fn: Callable, *args: Any, **kwargs: Any) -> FlopCount:
    """FLOPs of one call ``fn(*args, **kwargs)``, counted with FlopCounterMode under :func:`eager_attention`."""
    if not callable(fn):
        raise ValueError(f"fn must be callable (got {type(fn).__name__})")
    with eager_attention(), torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    counts = counter.get_flop_counts()
    by_module = {name: int(sum(ops.values())) for name, ops in counts.items()}
    by_op = {str(op): int(n) for op, n in counts.get("Global", {}).items()}
    return FlopCount(total=int(counter.get_total_flops()), by_module=by_module, by_op=by_op)


# ------------------------------------------------------------------------------------------- hand formulas
def linear_flops(num_tokens: int, d_in: int, d_out: int) -> int:
    """A dense layer on ``num_tokens`` rows: 2 * n * d_in * d_out (bias adds are not counted)."""
    return 2 * num_tokens * d_in * d_out


def attention_flops(num_queries: int, num_keys: int, dim: int) -> int:
    """Attention scores and weighted sum over all heads (head dims summing to ``dim``): 2 * 2 * Lq * Lk * dim."""
    return 4 * num_queries * num_keys * dim


def vit_flops(num_patches: int, hidden: int, layers: int, mlp: int, patch_size: int, channels: int = 3) -> int:
    """A ViT encoder by hand: patch embedding + ``layers`` x (QKV + out projections, attention, 2-layer MLP)."""
    per_layer = linear_flops(num_patches, hidden, 4 * hidden) + attention_flops(num_patches, num_patches, hidden) \
        + 2 * linear_flops(num_patches, hidden, mlp)
    return linear_flops(num_patches, channels * patch_size**2, hidden) + layers * per_layer


def llama_prefill_flops(num_tokens: int, hidden: int, layers: int, intermediate: int, vocab: int,
                        kv_hidden: int | None = None, logits: int = 1) -> int:
    """A LLaMA prefill by hand: per layer Q/O (+ K/V at ``kv_hidden``), full T x T eager attention, SwiGLU MLP;
    then the LM head on the last ``logits`` positions."""
    kv = hidden if kv_hidden is None else kv_hidden
    per_layer = 2 * linear_flops(num_tokens, hidden, hidden) + 2 * linear_flops(num_tokens, hidden, kv) \
        + attention_flops(num_tokens, num_tokens, hidden) + 3 * linear_flops(num_tokens, hidden, intermediate)
    return layers * per_layer + linear_flops(logits, hidden, vocab)


def clustering_analytic_flops(num_patches: int, dim: int, knn_k: int, num_clusters: int) -> int:
    """SPEC §1.1-1.2, the work FlopCounterMode does not see, one FLOP per element-wise op or comparison.

    - pairwise distances (twice): ``|a|^2 + |b|^2 - 2 a.b``: 2 N D squares/sums + 4 N^2 combines, per pass
    - Eq. 1: top-k selection N^2 comparisons, mean over K neighbours N K, exp N
    - Eq. 2: denser-than test N^2, masked min N^2, masked max N^2, seed score N
    - Algorithm 1, per seeded mask (num_clusters - 1 of them): s*c N, argmax N, kernel 3 N, mask N, mass N,
      scope update N, stop test N (9 N)
    - hard assignment: argmax over the masks, num_clusters * N
    The matmul ``a.b`` (2 N^2 D per pass) is counted by the counter, not here.
    """
    N, D, K = num_patches, dim, num_clusters
    distances = 2 * (2 * N * D + 4 * N * N)
    density = N * N + N * knn_k + N
    denser = 3 * N * N + N
    stick = 9 * N * max(K - 1, 0)
    return distances + density + denser + stick + K * N


# ------------------------------------------------------------------------------------------- model parts
def build_llm(llm: str | dict | Any, device: str | torch.device = "meta") -> nn.Module:
    """A ``LlamaForCausalLM`` with eager attention on ``device`` from a name in :data:`LLM_CONFIGS` (or
    ``"<profile>-standin"``), a dict of LlamaConfig fields, or a LlamaConfig."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if isinstance(llm, str):
        table = {**LLM_CONFIGS, **{f"{k}-standin": v for k, v in STANDIN_LLM.items()}}
        if llm not in table:
            raise ValueError(f"unknown llm {llm!r}; choose one of {sorted(table)} or pass a LlamaConfig")
        llm = table[llm]
    config = llm if isinstance(llm, LlamaConfig) else LlamaConfig(**dict(llm))
    config._attn_implementation = "eager"  # counted matmuls (SDPA on CPU counts 0)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    return model.eval()


def build_tokenizer(profile: str, device: str | torch.device = "meta", overrides: list[str] | None = None):
    """``SeTok.from_profile`` on ``device`` without loading weights (meta: paper scale costs no memory)."""
    from setok.tokenizer import SeTok

    with torch.device(device):
        model = SeTok.from_profile(profile, overrides, load_encoder=False)
    model.encoder.set_attn_implementation("eager")
    return model.eval()


def _merger_hard_meta(merger: nn.Module, x: Tensor, num_tokens: int, grid: tuple[int, int]) -> Tensor:
    """The hard merger's compute (``ClusterMerger._forward_hard``) on meta tensors, where its data-dependent
    ``bool(valid.all())`` cannot run: embed, blocks under a block mask over all N patches, final norm, mean."""
    B, N, _ = x.shape
    labels = torch.zeros(B, N, dtype=torch.long, device=x.device)  # (B, N) values do not change the count
    same = labels[:, :, None] == labels[:, None, :]  # (B, N, N)
    y = merger.embed(x, grid)
    for block in merger.blocks:
        y = block(y, same, None)
    y = merger.ln_f(y)
    onehot = x.new_zeros(B, num_tokens, N)  # (B, K, N)
    return torch.bmm(onehot, y)  # (B, K, d)


def tokenizer_flops(setok: nn.Module, num_tokens: int, batch_size: int = 1) -> dict[str, int]:
    """Tokenizer FLOPs for ``num_tokens`` clusters: clustering projection + pairwise matmuls (counted), the
    element-wise clustering work (analytic) and the merger (counted). Keys: ``clustering_counted``,
    ``clustering_analytic``, ``merger``."""
    cfg = setok.config
    N, d = cfg.grid_size[0] * cfg.grid_size[1], cfg.hidden_size
    if not 1 <= num_tokens <= N:
        raise ValueError(f"num_tokens must be in [1, N={N}] (got {num_tokens})")
    ccfg = cfg.clustering_config
    device = next(setok.parameters()).device
    x = torch.zeros(batch_size, N, d, device=device)  # (B, N, d) encoder features

    def clustering(features: Tensor) -> None:
        from setok.clustering import density_peak_scores, stick_breaking

        z = setok.clustering_space(features)  # (B, N, d)
        peaks = density_peak_scores(z, ccfg.knn_k)
        stick_breaking(z, peaks.score, setok.kappa, num_tokens, ccfg.min_scope, ccfg.min_mask)

    counted = count_flops(clustering, x).total
    hard = ccfg.mode == "hard"
    if hard and device.type == "meta":
        merger = count_flops(_merger_hard_meta, setok.merger, x, num_tokens, cfg.grid_size).total
    else:
        masks = torch.zeros(batch_size, num_tokens, N, device=device)
        masks[:, 0] = 1.0  # any partition: the dense hard pass costs the same
        merger = count_flops(setok.merger, x, masks, cfg.grid_size, hard=hard).total
    analytic = batch_size * clustering_analytic_flops(N, d, ccfg.knn_k, num_tokens)
    return {"clustering_counted": counted, "clustering_analytic": analytic, "merger": merger}


def projector(d_vision: int, d_llm: int) -> nn.Sequential:
    """SPEC §2 input projector: a 2-layer MLP with GELU (vision width -> LLM width)."""
    return nn.Sequential(nn.Linear(d_vision, d_llm), nn.GELU(), nn.Linear(d_llm, d_llm))


def llm_prefill_flops(llm: nn.Module, num_tokens: int, batch_size: int = 1) -> int:
    """Prefill FLOPs of ``num_tokens`` embeddings through the LLM, logits for the last position only (as in
    generation)."""
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be >= 1 (got {num_tokens})")
    device = next(llm.parameters()).device
    d = llm.config.hidden_size
    embeds = torch.zeros(batch_size, num_tokens, d, device=device)  # (B, T, d)
    mask = torch.ones(batch_size, num_tokens, dtype=torch.long, device=device)  # explicit: no meta .item()
    return count_flops(llm, inputs_embeds=embeds, attention_mask=mask, logits_to_keep=1, use_cache=False).total


# ------------------------------------------------------------------------------------------- the table
def flops_table(profile: str, num_visual_tokens: Sequence[int] | None = None,
                num_text_tokens: int = 64, llm: str | dict | Any | None = None,
                patch_baseline: bool = True, overrides: list[str] | None = None) -> pd.DataFrame:
    """Forward FLOPs per image for each visual-token count: vision encoder, tokenizer, projector, LLM prefill.

    Everything is built on the meta device (paper scale costs no memory). ``llm`` defaults to Vicuna-7B at
    paper scale and a small stated stand-in at smoke/mini (:data:`DEFAULT_LLM`). ``patch_baseline`` adds a row
    with all N patch tokens and no tokenizer (a LLaVA-style MLLM), the reference of Table 9. The prefill holds
    ``[Img] u_1..u_K [/Img]`` plus ``num_text_tokens`` text tokens. Columns are FLOPs; ``total_tflops`` is
    the sum in TFLOPs (the unit of Table 5). ``num_visual_tokens`` defaults to Table 5's counts
    (:data:`TABLE5_TOKENS`) that fit the profile's N patches.
    """
    from setok.config import check_profile

    check_profile(profile)
    if num_text_tokens < 0:
        raise ValueError(f"num_text_tokens must be >= 0 (got {num_text_tokens})")
    setok = build_tokenizer(profile, overrides=overrides)
    llm_name = llm if isinstance(llm, str) else ("custom" if llm is not None else DEFAULT_LLM[profile])
    model = build_llm(llm if llm is not None else DEFAULT_LLM[profile])
    cfg = setok.config
    N, d_vis, d_llm = cfg.grid_size[0] * cfg.grid_size[1], cfg.hidden_size, model.config.hidden_size
    size = cfg.image_size
    if num_visual_tokens is None:
        num_visual_tokens = [k for k in TABLE5_TOKENS if k <= N]
    if len(num_visual_tokens) == 0:
        raise ValueError("num_visual_tokens is empty")
    encoder = count_flops(setok.encode, torch.zeros(1, 3, size, size, device="meta")).total
    with torch.device("meta"):
        proj = projector(d_vis, d_llm)
    rows = []
    plan = [("setok", int(k)) for k in num_visual_tokens] + ([("patch", N)] if patch_baseline else [])
    for method, k in plan:
        if method == "setok":
            tok = tokenizer_flops(setok, k)
        else:
            tok = {"clustering_counted": 0, "clustering_analytic": 0, "merger": 0}
        prefill = llm_prefill_flops(model, k + 2 + num_text_tokens)  # + [Img], [/Img]
        proj_flops = count_flops(proj, torch.zeros(1, k, d_vis, device="meta")).total
        row = {"profile": profile, "method": method, "num_visual_tokens": k, "num_text_tokens": num_text_tokens,
               "llm": llm_name, "vision_encoder": encoder, **tok,
               "tokenizer": sum(tok.values()), "projector": proj_flops, "llm_prefill": prefill}
        row["total"] = encoder + row["tokenizer"] + proj_flops + prefill
        row["total_tflops"] = row["total"] / 1e12
        rows.append(row)
    return pd.DataFrame(rows)
