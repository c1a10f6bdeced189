"""Stage I decoders and losses (SPEC §2, §3.1): Hungarian matching vs brute force, BCE/Dice and the Eq. 4 KL by hand,
save/load round trips, BERT -> Q-Former weight mapping, and bad inputs."""

import itertools
import math

import pytest
import torch
from transformers import BertConfig, BertModel

from setok.decoders import MaskDecoder, Resampler, VisualDecoder, dice_loss, hungarian_match, mask_consistency_kl
from setok.decoders.mask import (
    grid_object_labels,
    mask_losses,
    normalised_over_tokens,
    pairwise_affinity_loss,
    pairwise_cost,
    sigmoid_bce_loss,
)
from setok.decoders.visual import bert_to_qformer_state
from setok.encoders import build_convnext_encoder, convnext_config

TINY_UNET = dict(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                 norm_num_groups=4, attention_head_dim=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))


def tiny_visual(**kw) -> VisualDecoder:
    base = dict(token_dim=12, num_queries=3, qformer_hidden_size=16, qformer_layers=2, qformer_heads=2,
                qformer_intermediate_size=32, space="pixel", unet_config=TINY_UNET, unet_trainable="all",
                beta_schedule="squaredcos_cap_v2")
    base.update(kw)
    return VisualDecoder(**base)


# -- losses by hand ------------------------------------------------------------------------------------------------
def test_bce_and_dice_by_hand():
    logits = torch.tensor([[0.0, 2.0, -1.0]])
    target = torch.tensor([[1.0, 1.0, 0.0]])
    p = [0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))]
    bce = -(math.log(p[0]) + math.log(p[1]) + math.log(1 - p[2])) / 3
    assert sigmoid_bce_loss(logits, target).item() == pytest.approx(bce, rel=1e-6)
    dice = 1 - (2 * (p[0] + p[1]) + 1) / (sum(p) + 2 + 1)
    assert dice_loss(logits, target).item() == pytest.approx(dice, rel=1e-6)


def test_pairwise_cost_matches_per_pair_losses():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(3, 10, generator=g), (torch.rand(4, 10, generator=g) > 0.5).float()
    cost = pairwise_cost(logits, targets)
    for i in range(3):
        for j in range(4):
            ref = sigmoid_bce_loss(logits[i], targets[j]) + dice_loss(logits[i], targets[j])
            assert cost[i, j].item() == pytest.approx(ref.item(), rel=1e-5)


@pytest.mark.parametrize("k,m", [(4, 3), (3, 3), (2, 4)])
def test_hungarian_matches_brute_force(k, m):
    g = torch.Generator().manual_seed(k * 10 + m)
    logits, targets = torch.randn(k, 12, generator=g) * 3, (torch.rand(m, 12, generator=g) > 0.5).float()
    rows, cols = hungarian_match(logits, targets)
    cost = pairwise_cost(logits, targets)
    got = sum(cost[r, c].item() for r, c in zip(rows, cols, strict=True))
    n = min(k, m)
    best = min(sum(cost[r, c].item() for r, c in zip(rs, cs, strict=True))
               for rs in itertools.permutations(range(k), n) for cs in [tuple(range(m))[:n]]
               for cs in itertools.permutations(range(m), n))
    assert len(rows) == n and got == pytest.approx(best, rel=1e-6)
    with pytest.raises(ValueError, match="must share P"):
        hungarian_match(logits, targets[:, :5])


def test_kl_consistency_by_hand():
    # one image, 2 tokens, 2 locations; token 3 is padding and must not count
    masks = torch.tensor([[[0.75, 0.2], [0.25, 0.8], [0.0, 0.0]]])
    pi = torch.tensor([[[0.5, 0.5], [0.5, 0.5], [0.3, 0.1]]])
    token_mask = torch.tensor([[True, True, False]])
    kl0 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    kl1 = 0.2 * math.log(0.2 / 0.5) + 0.8 * math.log(0.8 / 0.5)
    got = mask_consistency_kl(masks, pi, token_mask, eps=1e-12)
    assert got.item() == pytest.approx((kl0 + kl1) / 2, rel=1e-6)
    padded = mask_consistency_kl(masks, pi, token_mask, padding_mask=torch.tensor([[False, True]]), eps=1e-12)
    assert padded.item() == pytest.approx(kl0, rel=1e-6)
    # gradient reaches M only (pi is stop-gradient)
    m = masks.clone().requires_grad_(True)
    p = pi.clone().requires_grad_(True)
    mask_consistency_kl(m, p, token_mask).sum().backward()
    assert m.grad is not None and m.grad.abs().sum() > 0 and p.grad is None
    with pytest.raises(ValueError, match="same shape"):
        mask_consistency_kl(masks, pi[:, :2], token_mask)


def test_pairwise_affinity_loss_matches_naive_loop():
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(2, 6, 3), dim=-1)
    labels = torch.tensor([[0, 0, 1, 1, 2, -1], [1, 1, 1, 1, 0, 0]])
    kappa = 2.5
    got = pairwise_affinity_loss(z, torch.tensor(kappa), labels)
    for b in range(2):
        segs = sorted({int(v) for v in labels[b] if v >= 0})
        pos, neg = [], []  # one mean per segment (pairs inside it) / per ordered pair of segments
        for s in segs:
            for t in segs:
                terms = []
                for i in range(6):
                    for j in range(6):
                        if i == j or labels[b, i] != s or labels[b, j] != t:
                            continue
                        phi = math.exp(-float(((z[b, i] - z[b, j]) ** 2).sum()) * kappa * math.log(2))
                        terms.append(-math.log(phi) if s == t else -math.log(1 - phi))
                if terms:
                    (pos if s == t else neg).append(sum(terms) / len(terms))
        # image 0: segment 2 has one patch (no pair inside it), so pos averages segments 0 and 1 only
        assert len(pos) == (2 if b == 0 else 2) and len(neg) == (6 if b == 0 else 2)
        assert got[b].item() == pytest.approx(0.5 * (sum(pos) / len(pos) + sum(neg) / len(neg)), rel=1e-4)
    # a one-segment image has no negative pairs: only the positive half counts
    one = pairwise_affinity_loss(z[:1], kappa, torch.zeros(1, 6, dtype=torch.long))
    assert one.item() > 0 and torch.isfinite(one).all()
    # features that separate the segments score lower than shuffled ones
    sep = torch.nn.functional.one_hot(labels.clamp_min(0), 3).float()
    assert pairwise_affinity_loss(sep, kappa, labels).mean() < pairwise_affinity_loss(sep.flip(1), kappa, labels).mean()
    with pytest.raises(ValueError, match="must agree"):
        pairwise_affinity_loss(z, kappa, labels[:, :5])


def test_grid_object_labels_majority_per_cell():
    masks = torch.zeros(1, 2, 4, 4, dtype=torch.bool)
    masks[0, 0, :2, :2] = True  # object 0 fills the top-left cell
    masks[0, 1, 2:, 2:] = True
    masks[0, 1, 2, 0] = True  # one pixel of object 1 in the bottom-left cell: background wins there
    labels = grid_object_labels(masks, torch.tensor([[True, True]]), (2, 2))
    assert labels.tolist() == [[1, 0, 0, 2]]
    assert grid_object_labels(masks, torch.tensor([[True, False]]), (2, 2)).tolist() == [[1, 0, 0, 0]]


def test_pi_is_normalised_over_valid_tokens():
    logits = torch.randn(2, 4, 8, 8)
    token_mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    pi = normalised_over_tokens(logits, token_mask, (4, 4))
    assert pi.shape == (2, 4, 16)
    torch.testing.assert_close(pi.sum(1), torch.ones(2, 16))
    assert pi[0, 3].abs().max() == 0 and torch.allclose(pi[1, 0], torch.ones(16))


def test_mask_losses_prefers_correct_masks():
    gt = torch.zeros(1, 2, 8, 8, dtype=torch.bool)
    gt[0, 0, :4] = True
    gt[0, 1, 4:, :4] = True
    valid = torch.tensor([[True, True]])
    background = ~(gt[0, 0] | gt[0, 1])
    good = torch.stack([gt[0, 1], background, gt[0, 0]]).float()[None] * 20 - 10  # any order: matching finds it
    bad = torch.zeros_like(good)
    token_mask = torch.ones(1, 3, dtype=torch.bool)
    cluster = torch.full((1, 3, 16), 1 / 3)
    lg, lb = (mask_losses(x, token_mask, gt, valid, cluster, (4, 4)) for x in (good, bad))
    assert lg.num_matched.item() == 3
    assert lg.bce.item() < 1e-3 and lg.dice.item() < 1e-2
    assert lb.bce.item() > 0.6 and lb.dice.item() > 0.3


# -- modules -------------------------------------------------------------------------------------------------------
def test_visual_decoder_loss_save_load(tmp_path):
    torch.manual_seed(0)
    dec = tiny_visual().eval()
    tokens, mask = torch.randn(2, 5, 12), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    x0, noise, t = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8), torch.tensor([10, 500])
    loss = dec.diffusion_loss(x0, tokens, mask, noise, t)
    assert loss.shape == (2,)
    # padded tokens do not influence the conditioning
    changed = tokens.clone()
    changed[0, 3:] = 100.0
    torch.testing.assert_close(dec.condition(changed, mask)[0], dec.condition(tokens, mask)[0])
    dec.save_pretrained(tmp_path / "vd")
    again = VisualDecoder.from_pretrained(tmp_path / "vd").eval()
    torch.testing.assert_close(again.diffusion_loss(x0, tokens, mask, noise, t), loss)
    rec = again.reconstruct(tokens, mask, (3, 8, 8), num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert rec.shape == (2, 3, 8, 8) and torch.isfinite(rec).all()
    with pytest.raises(ValueError, match="tokens must be"):
        dec.condition(torch.randn(2, 5, 7), mask)
    with pytest.raises(ValueError, match="space must be"):
        tiny_visual(space="voxels")
    with pytest.raises(ValueError, match="unet_trainable"):
        tiny_visual(unet_trainable="some")


def test_unet_kv_only_trainable():
    dec = tiny_visual(unet_trainable="kv")
    trainable = {n for n, p in dec.unet.named_parameters() if p.requires_grad}
    assert trainable and all(".attn2.to_k." in n or ".attn2.to_v." in n for n in trainable)
    assert all(p.requires_grad for p in dec.qformer.parameters()) and dec.query_tokens.requires_grad


def test_missing_checkpoint_names_path_and_key():
    with pytest.raises(FileNotFoundError, match="stage1.decoder.qformer_path"):
        tiny_visual().load_pretrained_parts("/nonexistent/bert", None)


def test_bert_weights_map_into_qformer():
    torch.manual_seed(0)
    bert = BertModel(BertConfig(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32))
    dec = tiny_visual()
    state = bert_to_qformer_state(bert.state_dict(), num_layers=2)
    missing, unexpected = dec.qformer.load_state_dict(state, strict=False)
    assert not unexpected and all("crossattention" in k for k in missing)
    q = dec.qformer.state_dict()
    torch.testing.assert_close(q["encoder.layer.1.attention.attention.key.weight"],
                               bert.state_dict()["encoder.layer.1.attention.self.key.weight"])
    torch.testing.assert_close(q["encoder.layer.0.output_query.dense.weight"],
                               bert.state_dict()["encoder.layer.0.output.dense.weight"])
    torch.testing.assert_close(q["encoder.layer.0.attention.output.dense.weight"],
                               bert.state_dict()["encoder.layer.0.attention.output.dense.weight"])
    torch.testing.assert_close(q["layernorm.weight"], bert.state_dict()["embeddings.LayerNorm.weight"])


def test_mask_decoder_shapes_and_save_load(tmp_path):
    torch.manual_seed(0)
    md = MaskDecoder(token_dim=12, feature_dim=12, mask_dim=8, upsample=4, mlp_layers=2).eval()
    tokens, feats = torch.randn(2, 3, 12), torch.randn(2, 16, 12)
    logits = md(tokens, feats, (4, 4))
    assert logits.shape == (2, 3, 16, 16)
    md.save_pretrained(tmp_path / "md")
    torch.testing.assert_close(MaskDecoder.from_pretrained(tmp_path / "md")(tokens, feats, (4, 4)), logits)
    with pytest.raises(ValueError, match="grid_size"):
        md(tokens, feats, (3, 4))
    with pytest.raises(ValueError, match="power of two"):
        MaskDecoder(token_dim=12, feature_dim=12, upsample=3)


def test_resampler_contract_and_save_load(tmp_path):
    torch.manual_seed(0)
    rs = Resampler(hidden_size=12, num_queries=5, num_layers=2, num_heads=2).eval()
    feats = torch.randn(2, 16, 12)
    out = rs(feats)
    assert out.tokens.shape == (2, 5, 12) and out.token_mask.all() and out.num_tokens.tolist() == [5, 5]
    torch.testing.assert_close(out.masks.sum(-1), torch.ones(2, 5))
    assert out.labels.shape == (2, 16)
    rs.save_pretrained(tmp_path / "rs")
    torch.testing.assert_close(Resampler.from_pretrained(tmp_path / "rs")(feats).tokens, out.tokens)
    with pytest.raises(ValueError, match="divisible"):
        Resampler(hidden_size=12, num_heads=5)
    with pytest.raises(ValueError, match="features must be"):
        rs(torch.randn(2, 16, 7))


def test_convnext_encoder_contract(tmp_path):
    torch.manual_seed(0)
    enc = build_convnext_encoder(image_size=32, patch_size=4, hidden_size=16, num_stages=2).eval()
    pixels = torch.randn(2, 3, 32, 32)
    feats = enc(pixels).last_hidden_state
    assert feats.shape == (2, 64, 16) and enc.grid_size(32) == (8, 8)
    enc.save_pretrained(tmp_path / "cnx")
    again = build_convnext_encoder(32, 4, 16, path=str(tmp_path / "cnx")).eval()
    torch.testing.assert_close(again(pixels).last_hidden_state, feats)
    with pytest.raises(ValueError, match="multiple of 2"):
        convnext_config(32, 6, 16, num_stages=3)
    with pytest.raises(FileNotFoundError, match="tokenizer.encoder_path"):
        build_convnext_encoder(32, 4, 16, path="/nonexistent/convnext")
