"""setok.eval.flops: counted FLOPs against hand counts, at toy and paper scale (SPEC §5.2)."""

import doctest

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import setok.eval.flops as flops
from setok.eval.flops import (
    _merger_hard_meta,
    attention_flops,
    build_llm,
    build_tokenizer,
    count_flops,
    flops_table,
    linear_flops,
    llama_prefill_flops,
    llm_prefill_flops,
    tokenizer_flops,
    vit_flops,
)
from setok.merger import MergerBlock


def test_module_worked_example_runs():
    assert doctest.testmod(flops).failed == 0


def test_linear_stack_by_hand():
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8), nn.Linear(8, 3))
    x = torch.zeros(2, 5, 16)  # 10 rows
    assert count_flops(net, x).total == 2 * 10 * (16 * 32 + 32 * 8 + 8 * 3)
    assert count_flops(net, x).total == sum(linear_flops(10, a, b) for a, b in [(16, 32), (32, 8), (8, 3)])


def test_sdpa_counts_zero_on_cpu_without_the_eager_patch():
    q = torch.zeros(1, 2, 12, 4)
    with FlopCounterMode(display=False) as counter:
        F.scaled_dot_product_attention(q, q, q)
    assert counter.get_total_flops() == 0  # the pitfall eager_attention() exists for
    assert count_flops(lambda t: F.scaled_dot_product_attention(t, t, t), q).total == attention_flops(12, 12, 8)


def test_merger_block_by_hand():
    N, d, ffn = 9, 8, 24
    block = MergerBlock(d, num_heads=2, ffn_dim=ffn)
    mask = torch.ones(1, N, N, dtype=torch.bool)
    counted = count_flops(block, torch.zeros(1, N, d), mask).total
    hand = linear_flops(N, d, 3 * d) + linear_flops(N, d, d) + attention_flops(N, N, d) \
        + linear_flops(N, d, ffn) + linear_flops(N, ffn, d)
    assert counted == hand


def test_small_siglip_and_llama_match_hand_formulas():
    from transformers import SiglipVisionConfig, SiglipVisionModel

    cfg = SiglipVisionConfig(hidden_size=16, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2,
                             image_size=24, patch_size=4, vision_use_head=False)
    enc = SiglipVisionModel(cfg).eval()
    counted = count_flops(enc, pixel_values=torch.zeros(1, 3, 24, 24)).total
    assert counted == vit_flops(36, 16, 2, 40, 4)
    llm = build_llm({"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "vocab_size": 50}, device="cpu")
    assert llm_prefill_flops(llm, 7) == llama_prefill_flops(7, 32, 2, 48, 50, kv_hidden=16)


def test_paper_scale_on_meta_is_in_the_expected_range():
    setok = build_tokenizer("paper")  # SigLIP-so400m at 384, on the meta device
    assert next(setok.parameters()).device.type == "meta"
    enc = count_flops(setok.encode, torch.zeros(1, 3, 384, 384, device="meta"))
    # hand: 729 patches, d 1152, 27 layers, MLP 4304, patch 14 -> 0.6665 TFLOPs, plus the unused MAP head
    hand = vit_flops(729, 1152, 27, 4304, 14)
    assert hand == pytest.approx(0.6665e12, rel=1e-3)
    head = enc.by_module.get("SiglipVisionModel.head", 0)
    assert enc.total - head == hand
    assert 0.6e12 < enc.total < 0.7e12
    llm = build_llm("vicuna-7b")
    T = 100  # ~13 GFLOPs per token for 6.5B non-embedding parameters
    assert llm_prefill_flops(llm, T) == llama_prefill_flops(T, 4096, 32, 11008, 32000)
    assert 1.2e12 < llm_prefill_flops(llm, T) < 1.4e12


def test_tokenizer_counts_on_meta_match_cpu_and_hand():
    cpu = build_tokenizer("smoke", device="cpu")
    meta = build_tokenizer("smoke")
    N, d = 64, 32
    K = 6
    x = torch.zeros(1, N, d)
    masks = torch.zeros(1, K, N)
    masks[0, torch.arange(N) % K, torch.arange(N)] = 1.0
    direct = count_flops(cpu.merger, x, masks, cpu.config.grid_size, hard=True).total
    replicated = count_flops(_merger_hard_meta, meta.merger, x.to("meta"), K, meta.config.grid_size).total
    assert direct == replicated
    parts = tokenizer_flops(meta, K)
    assert parts["merger"] == direct
    # projection d x d, then the pairwise-distance matmul twice (densities, kernel)
    assert parts["clustering_counted"] == linear_flops(N, d, d) + 2 * 2 * N * N * d
    assert tokenizer_flops(cpu, K) == parts


def test_flops_table_smoke():
    df = flops_table("smoke", num_visual_tokens=[4, 16], num_text_tokens=8)
    assert list(df["method"]) == ["setok", "setok", "patch"]
    assert list(df["num_visual_tokens"]) == [4, 16, 64]
    assert df["llm_prefill"].is_monotonic_increasing and df.loc[2, "tokenizer"] == 0
    assert (df["total"] == df[["vision_encoder", "tokenizer", "projector", "llm_prefill"]].sum(axis=1)).all()
    assert df["total_tflops"].iloc[0] == pytest.approx(df["total"].iloc[0] / 1e12)
    assert df.loc[0, "llm"] == "smoke-standin"


def test_bad_inputs():
    with pytest.raises(ValueError, match="callable"):
        count_flops(3)
    with pytest.raises(ValueError, match="unknown llm"):
        build_llm("vicuna-70b")
    meta = build_tokenizer("smoke")
    with pytest.raises(ValueError, match="num_tokens must be in"):
        tokenizer_flops(meta, 65)
    with pytest.raises(ValueError, match="num_tokens must be >= 1"):
        llm_prefill_flops(build_llm("smoke-standin"), 0)
    with pytest.raises(ValueError, match="num_text_tokens"):
        flops_table("smoke", num_text_tokens=-1)
    with pytest.raises(ValueError, match="empty"):
        flops_table("smoke", num_visual_tokens=[])
    with pytest.raises(ValueError, match="unknown profile"):
        flops_table("huge")
