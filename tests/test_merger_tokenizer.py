"""The cluster merger (SPEC §1.3) against a per-cluster loop, and the SeTok model end to end (SPEC §1)."""

import math

import pytest
import torch

from setok.clustering import one_hot_masks
from setok.merger import ClusterMerger, merge_reference_loop, sincos_2d
from setok.tokenizer import SeTok, SeTokConfig, order_tokens


def tiny_config(**kw) -> SeTokConfig:
    base = dict(image_size=16, patch_size=4, hidden_size=16, encoder_layers=1, encoder_heads=2,
                clustering=dict(knn_k=3, max_clusters=6), merger=dict(num_layers=1, ffn_dim=32))
    base.update(kw)
    return SeTokConfig(**base)


def random_labels(B, N, K, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, K, (B, N), generator=g)


# ------------------------------------------------------------------------------------------------- merger
def test_sincos_2d_values():
    pe = sincos_2d((2, 3), 8)
    assert pe.shape == (6, 8)
    # token 4 is row 1, column 1; first frequency is 1
    assert math.isclose(pe[4, 0].item(), math.sin(1.0), rel_tol=1e-6)
    assert math.isclose(pe[4, 4].item(), math.sin(1.0), rel_tol=1e-6)
    assert math.isclose(pe[2, 5].item(), math.sin(2.0 * 10000 ** (-1 / 2)), rel_tol=1e-6)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d((2, 2), 6)


@pytest.mark.parametrize("use_pe", [True, False])
def test_hard_merger_equals_per_cluster_loop(use_pe):
    torch.manual_seed(0)
    merger = ClusterMerger(16, num_heads=2, num_layers=2, ffn_dim=24, use_pe=use_pe).eval()
    x = torch.randn(3, 20, 16)
    labels = random_labels(3, 20, 5)
    tokens, tmask = merger(x, one_hot_masks(labels, 5), (4, 5))
    ref = merge_reference_loop(merger, x, labels, (4, 5))
    for b in range(3):
        assert torch.allclose(tokens[b][tmask[b]], ref[b], atol=1e-5)


def test_changing_one_cluster_leaves_the_others_unchanged():
    torch.manual_seed(1)
    merger = ClusterMerger(16, ffn_dim=32).eval()
    x = torch.randn(2, 16, 16)
    labels = random_labels(2, 16, 4, seed=3)
    masks = one_hot_masks(labels, 4)
    a, _ = merger(x, masks, (4, 4))
    x2 = x.clone()
    x2[labels == 2] += torch.randn_like(x2[labels == 2])
    b, _ = merger(x2, masks, (4, 4))
    others = [0, 1, 3]
    assert torch.allclose(a[:, others], b[:, others], atol=1e-6)
    assert not torch.allclose(a[:, 2], b[:, 2])


def test_mean_only_is_the_plain_cluster_mean():
    merger = ClusterMerger(8, mean_only=True)
    x = torch.randn(1, 6, 8)
    labels = torch.tensor([[0, 0, 1, 1, 1, 2]])
    tokens, tmask = merger(x, one_hot_masks(labels, 4), (2, 3))
    assert torch.allclose(tokens[0, 1], x[0, 2:5].mean(0))
    assert tmask.tolist() == [[True, True, True, False]] and (tokens[0, 3] == 0).all()


def test_padding_tokens_do_not_change_valid_tokens():
    torch.manual_seed(2)
    merger = ClusterMerger(16, ffn_dim=32).eval()
    x = torch.randn(1, 16, 16)
    labels = random_labels(1, 16, 3)
    masks = one_hot_masks(labels, 3)
    a, _ = merger(x, masks, (4, 4))
    masks_pad = masks.clone()
    masks_pad[:, :, -4:] = 0  # the last 4 patches are padding now
    x_junk = x.clone()
    x_junk[:, -4:] = 1e3
    b, _ = merger(x_junk, masks_pad, (4, 4))
    ref = merge_reference_loop(merger, x, labels.masked_fill(torch.arange(16) >= 12, -1), (4, 4))
    assert torch.allclose(b[0][(masks_pad.sum(-1) > 0)[0]], ref[0], atol=1e-5)
    assert not torch.allclose(a, b)


def test_soft_merger_with_one_hot_masks_equals_hard():
    torch.manual_seed(3)
    merger = ClusterMerger(16, ffn_dim=32).eval()
    x = torch.randn(2, 12, 16)
    masks = one_hot_masks(random_labels(2, 12, 3), 3)
    hard, _ = merger(x, masks, (3, 4), hard=True)
    soft, _ = merger(x, masks, (3, 4), hard=False)
    assert torch.allclose(hard, soft, atol=1e-4)


def test_merger_bad_input():
    merger = ClusterMerger(8)
    with pytest.raises(ValueError, match="x must have shape"):
        merger(torch.randn(1, 4, 6), torch.ones(1, 1, 4), (2, 2))
    with pytest.raises(ValueError, match="masks must have shape"):
        merger(torch.randn(1, 4, 8), torch.ones(1, 1, 5), (2, 2))
    with pytest.raises(ValueError, match="grid_size"):
        merger(torch.randn(1, 4, 8), torch.ones(1, 1, 4), (3, 2))
    with pytest.raises(ValueError, match="divisible"):
        ClusterMerger(9, num_heads=2)


# ---------------------------------------------------------------------------------------------- tokenizer
def test_order_tokens_raster_order_remainder_last_empty_dropped():
    # creation order: seed 7, seed 2, an empty mask with seed 5, the remainder (seed -1)
    masks = torch.tensor([[[1.0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0, 0, 0],
                           [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]]])
    seeds = torch.tensor([[7, 2, 5, -1]])
    order, kept = order_tokens(masks, seeds, hard=True)
    assert order.tolist() == [[1, 0, 3]] and kept.all()


def test_setok_tokens_follow_seed_raster_order_and_partition():
    torch.manual_seed(0)
    model = SeTok(tiny_config()).eval()
    out = model(pixel_values=torch.rand(3, 3, 16, 16) * 2 - 1)
    assert out.tokens.shape[0] == 3 and out.tokens.shape[2] == 16
    for b in range(3):
        k = int(out.num_tokens[b])
        assert out.token_mask[b, :k].all() and not out.token_mask[b, k:].any()
        seeds = out.seeds[b, :k].tolist()
        real = [s for s in seeds if s >= 0]
        assert real == sorted(real) and (-1 not in seeds or seeds.index(-1) == len(real))
        assert set(out.labels[b].tolist()) == set(range(k))  # every kept token owns a patch
    assert torch.allclose(out.masks.sum(1), torch.ones(3, 16), atol=1e-5)


def test_setok_batched_equals_per_image():
    torch.manual_seed(0)
    model = SeTok(tiny_config()).eval()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    full = model(pixel_values=x)
    for b in range(3):
        one = model(pixel_values=x[b : b + 1])
        k = int(one.num_tokens[0])
        assert int(full.num_tokens[b]) == k
        assert torch.allclose(full.tokens[b, :k], one.tokens[0, :k], atol=1e-5)
        assert torch.equal(full.labels[b], one.labels[0])


def test_setok_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SeTok(tiny_config(merger=dict(num_layers=1, ffn_dim=32, use_pe=False))).eval()
    with torch.no_grad():
        model.log_kappa.fill_(0.3)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    again = SeTok.from_pretrained(tmp_path).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    a, b = model(pixel_values=x), again(pixel_values=x)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.labels, b.labels)
    assert again.config.merger["use_pe"] is False and math.isclose(again.kappa.item(), math.exp(0.3), rel_tol=1e-6)


def test_projection_is_identity_initialised_and_trainable():
    model = SeTok(tiny_config())
    assert torch.equal(model.cluster_proj.weight, torch.eye(16))
    out = model(features=torch.randn(2, 16, 16))
    loss = (out.masks[:, 0] ** 2).sum()
    loss.backward()
    assert model.log_kappa.grad is not None and model.cluster_proj.weight.grad is not None


@pytest.mark.parametrize("encoder_type,extra", [("siglip", 0), ("clip", 1)])
def test_sincos_position_init_lays_the_2d_table(encoder_type, extra):
    model = SeTok(tiny_config(encoder_type=encoder_type, encoder_position_init="sincos"))
    table = model.encoder.embeddings.position_embedding.weight  # (extra + 16, 16)
    # row 4 * r + c of the table encodes (row r, column c): compare with a hand-written entry
    r, c, dim = 2, 3, 16
    freq = [1.0 / 10000 ** (k / 4) for k in range(4)]
    expected = [math.sin(r * f) for f in freq] + [math.cos(r * f) for f in freq] + \
        [math.sin(c * f) for f in freq] + [math.cos(c * f) for f in freq]
    assert table.shape == (extra + 16, dim)
    assert table[extra + 4 * r + c].tolist() == pytest.approx(expected, abs=1e-6)
    assert (table[:extra] == 0).all()
    random = SeTok(tiny_config(encoder_type=encoder_type))  # the default keeps HF's random table
    assert not torch.allclose(random.encoder.embeddings.position_embedding.weight[extra:], table[extra:])


def test_sincos_position_init_survives_save_load_and_skips_cnns(tmp_path):
    model = SeTok(tiny_config(encoder_position_init="sincos"))
    with torch.no_grad():
        model.encoder.embeddings.position_embedding.weight.add_(0.5)  # as if trained
    model.save_pretrained(tmp_path)
    again = SeTok.from_pretrained(tmp_path)
    assert torch.equal(again.encoder.embeddings.position_embedding.weight,
                       model.encoder.embeddings.position_embedding.weight)
    SeTok(tiny_config(encoder_type="convnext", encoder_position_init="sincos"))  # no table: nothing to do
    with pytest.raises(ValueError, match="encoder_position_init"):
        tiny_config(encoder_position_init="learned")
    from setok.tokenizer import init_sincos_positions

    wrong = torch.nn.Module()
    wrong.position_embedding = torch.nn.Embedding(20, 16)  # 20 rows cannot hold a 4x4 grid (+ at most a CLS row)
    with pytest.raises(ValueError, match="cannot lay a sin-cos table"):
        init_sincos_positions(wrong, (4, 4))


@pytest.mark.parametrize("mode", ["hard", "soft"])
@pytest.mark.parametrize("method", ["setok", "threshold", "fixed", "patch", "random_seed", "tome"])
def test_setok_runs_every_method_and_mode(method, mode):
    model = SeTok(tiny_config(clustering=dict(method=method, mode=mode, knn_k=3, max_clusters=6, num_fixed=4)))
    out = model(features=torch.randn(2, 16, 16), generator=torch.Generator().manual_seed(0))
    assert out.tokens.shape[:2] == out.token_mask.shape and out.num_tokens.min() >= 1


def test_profiles_build_and_paper_builds_on_meta():
    smoke = SeTok.from_profile("smoke")
    assert smoke.grid_size == (8, 8)
    with torch.device("meta"):
        paper = SeTok.from_profile("paper", load_encoder=False)
    assert paper.grid_size == (27, 27) and paper.config.hidden_size == 1152
    n_encoder = sum(p.numel() for p in paper.encoder.parameters())
    assert 380e6 < n_encoder < 460e6  # SigLIP-so400m's vision tower is ~0.43B parameters


def test_setok_bad_input(tmp_path):
    model = SeTok(tiny_config())
    with pytest.raises(ValueError, match="exactly one"):
        model()
    with pytest.raises(ValueError, match="16x16"):
        model(pixel_values=torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="features must have shape"):
        model(features=torch.randn(1, 15, 16))
    with pytest.raises(ValueError, match="unknown config key"):
        tiny_config(clustering=dict(knn=3))
    with pytest.raises(ValueError, match="patch_size"):
        tiny_config(image_size=2)
    with pytest.raises(FileNotFoundError, match="tokenizer.encoder_path"):
        SeTok.from_section(dict(encoder_path=str(tmp_path / "missing")))
    with pytest.raises(ValueError, match="unknown key"):
        SeTok.from_section(dict(bogus=1))


def test_convnext_encoder_gives_the_same_contract():
    model = SeTok(tiny_config(encoder_type="convnext")).eval()
    out = model(pixel_values=torch.rand(2, 3, 16, 16) * 2 - 1)
    assert out.features.shape == (2, 16, 16) and out.labels.shape == (2, 16)
