"""Eq. 1, Eq. 2 and Algorithm 1 against plain per-token loops, plus the invariants SPEC §1.1-1.2 promises."""

import math

import numpy as np
import pytest
import torch

from setok.baselines import ClusteringConfig, cluster, tome_merge
from setok.clustering import density_peak_scores, hard_assignment, stick_breaking


# ------------------------------------------------------------------------------ naive references (one image)
def naive_scores(z: np.ndarray, k: int):
    """Eq. 1-2 with explicit loops over tokens, in float64."""
    n = len(z)
    d = np.array([[float(((z[a] - z[b]) ** 2).sum()) for b in range(n)] for a in range(n)])
    rho = np.zeros(n)
    for i in range(n):
        others = sorted(d[i, j] for j in range(n) if j != i)
        rho[i] = math.exp(-sum(others[:k]) / k)
    delta = np.zeros(n)
    for i in range(n):
        denser = [j for j in range(n) if rho[j] > rho[i] or (rho[j] == rho[i] and j < i)]
        delta[i] = min(d[i, j] for j in denser) if denser else max(d[i])
    return rho, delta, rho * delta, d


def naive_stick_breaking(z, score, kappa, max_clusters, min_scope=0.02, min_mask=1.0):
    """Algorithm 1 for one image, one token at a time."""
    n = len(z)
    _, _, _, d = naive_scores(z, 1)
    scope = [1.0] * n
    masks, seeds = [], []
    while len(masks) < max_clusters - 1:
        if sum(scope) < min_scope * n:
            break
        best, seed = -float("inf"), 0
        for i in range(n):
            if score[i] * scope[i] > best:
                best, seed = score[i] * scope[i], i
        alpha = [math.exp(-d[seed, i] * kappa * math.log(2)) for i in range(n)]
        mask = [scope[i] * alpha[i] for i in range(n)]
        if sum(mask) < min_mask:
            break
        masks.append(mask)
        seeds.append(seed)
        scope = [scope[i] * (1 - alpha[i]) for i in range(n)]
    masks.append(scope)
    return np.array(masks), seeds


def blobs(B=3, N=36, D=8, k=4, noise=0.15, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(B, k, D, generator=g)
    lab = torch.randint(0, k, (B, N), generator=g)
    z = centres.gather(1, lab[..., None].expand(B, N, D)) + noise * torch.randn(B, N, D, generator=g)
    return torch.nn.functional.normalize(z, dim=-1).double(), lab


# ---------------------------------------------------------------------------------------------- Eq. 1 and 2
def test_eq1_eq2_hand_worked_three_points():
    # points on a line at 0, 1, 3: squared distances 1, 9, 4; K = 1
    z = torch.tensor([[[0.0], [1.0], [3.0]]], dtype=torch.float64)
    out = density_peak_scores(z, knn_k=1)
    rho = [math.exp(-1), math.exp(-1), math.exp(-4)]
    # 0 and 1 tie in density -> index 0 is denser; delta(0) = max distance 9, delta(1) = 1, delta(2) = min(9, 4)
    delta = [9.0, 1.0, 4.0]
    assert torch.allclose(out.rho[0], torch.tensor(rho, dtype=torch.float64))
    assert torch.allclose(out.delta[0], torch.tensor(delta, dtype=torch.float64))
    assert torch.allclose(out.score, out.rho * out.delta)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_scores_match_naive_loop(k):
    z = torch.randn(4, 20, 5, dtype=torch.float64)
    out = density_peak_scores(z, knn_k=k)
    for b in range(4):
        rho, delta, score, _ = naive_scores(z[b].numpy(), k)
        np.testing.assert_allclose(out.rho[b].numpy(), rho, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(out.delta[b].numpy(), delta, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(out.score[b].numpy(), score, rtol=1e-9, atol=1e-12)


def test_scores_batched_equal_per_image():
    z = torch.randn(5, 30, 6)
    full = density_peak_scores(z, 4)
    for b in range(5):
        one = density_peak_scores(z[b : b + 1], 4)
        assert torch.allclose(full.score[b], one.score[0], atol=1e-6)


def test_scores_permutation_equivariant():
    z = torch.randn(2, 25, 4, dtype=torch.float64)
    perm = torch.randperm(25)
    a, b = density_peak_scores(z, 3), density_peak_scores(z[:, perm], 3)
    assert torch.allclose(a.rho[:, perm], b.rho) and torch.allclose(a.delta[:, perm], b.delta)


def test_padding_changes_nothing_for_valid_tokens():
    z = torch.randn(2, 20, 4, dtype=torch.float64)
    junk = torch.randn(2, 7, 4, dtype=torch.float64) * 5
    padded = torch.cat([z, junk], 1)
    pm = torch.zeros(2, 27, dtype=torch.bool)
    pm[:, 20:] = True
    a, b = density_peak_scores(z, 3), density_peak_scores(padded, 3, padding_mask=pm)
    assert torch.allclose(a.score, b.score[:, :20])
    assert (b.score[:, 20:] == 0).all()
    sa = stick_breaking(z, a.score, 3.0, 8)
    sb = stick_breaking(padded, b.score, 3.0, 8, padding_mask=pm)
    assert torch.allclose(sa.masks, sb.masks[:, :, :20])
    assert (sb.masks[:, :, 20:] == 0).all() and torch.equal(sa.seeds, sb.seeds)


# -------------------------------------------------------------------------------------------------- Alg. 1
@pytest.mark.parametrize("kappa,max_clusters,min_mask", [(2.0, 10, 1.0), (0.5, 4, 0.5), (8.0, 30, 2.0)])
def test_stick_breaking_matches_naive_loop(kappa, max_clusters, min_mask):
    z, _ = blobs(B=3, N=30)
    peaks = density_peak_scores(z, 3)
    out = stick_breaking(z, peaks.score, kappa, max_clusters, min_mask=min_mask)
    for b in range(3):
        masks, seeds = naive_stick_breaking(z[b].numpy(), peaks.score[b].numpy(), kappa, max_clusters,
                                            min_mask=min_mask)
        n = int(out.num_masks[b])
        assert n == len(masks)
        np.testing.assert_allclose(out.masks[b, :n].numpy(), masks, atol=1e-9)
        assert (out.masks[b, n:] == 0).all()
        assert out.seeds[b, : n - 1].tolist() == seeds and out.seeds[b, n - 1 :].eq(-1).all()


def test_masks_sum_to_one_and_hard_is_partition():
    z, _ = blobs(B=4, N=49, k=5)
    peaks = density_peak_scores(z, 5)
    out = stick_breaking(z, peaks.score, 4.0, 16)
    assert torch.allclose(out.masks.sum(1), torch.ones(4, 49, dtype=z.dtype))
    labels = hard_assignment(out.masks)
    onehot = torch.nn.functional.one_hot(labels, out.masks.shape[1])
    assert (onehot.sum(-1) == 1).all()  # each token in exactly one cluster


def test_max_clusters_counts_final_scope_and_one_means_scope_only():
    z = torch.randn(2, 40, 6)
    peaks = density_peak_scores(z, 3)
    out = stick_breaking(z, peaks.score, 50.0, 5, min_mask=0.0, min_scope=0.0)
    assert out.num_masks.max() <= 5
    one = stick_breaking(z, peaks.score, 2.0, 1)
    assert one.masks.shape[1] == 1 and torch.allclose(one.masks[:, 0], torch.ones(2, 40))


def test_identical_features_give_one_cluster():
    z = torch.ones(2, 16, 3) / math.sqrt(3)
    cfg = ClusteringConfig(knn_k=3, max_clusters=8)
    out, _ = cluster(z, cfg)
    labels = hard_assignment(out.masks)
    assert (labels == 0).all()
    assert int((out.masks.sum(-1) > 0).sum(1).max()) == 1  # the final scope is empty


def test_stick_breaking_permutation_and_determinism():
    z, _ = blobs(B=2, N=36)
    peaks = density_peak_scores(z, 3)
    a = stick_breaking(z, peaks.score, 3.0, 12)
    again = stick_breaking(z, peaks.score, 3.0, 12)
    assert torch.equal(a.masks, again.masks) and torch.equal(a.seeds, again.seeds)
    perm = torch.randperm(36)
    zp = z[:, perm]
    pp = density_peak_scores(zp, 3)
    b = stick_breaking(zp, pp.score, 3.0, 12)
    assert torch.allclose(a.masks[:, :, perm], b.masks)


def test_tight_blobs_recover_their_clusters():
    z, lab = blobs(B=3, N=64, k=4, noise=0.02)
    out, _ = cluster(z.float(), ClusteringConfig(knn_k=4, kernel_scale=4.0, max_clusters=16))
    labels = hard_assignment(out.masks)
    for b in range(3):
        # the partition equals the ground truth up to renaming
        pairs = set(zip(labels[b].tolist(), lab[b].tolist(), strict=True))
        assert len(pairs) == len(set(lab[b].tolist())) == len(set(labels[b].tolist()))


def test_masks_are_differentiable_in_z_and_kappa():
    z = torch.randn(2, 20, 4, requires_grad=True)
    kappa = torch.tensor(2.0, requires_grad=True)
    peaks = density_peak_scores(z.detach(), 3)
    out = stick_breaking(z, peaks.score, kappa, 6)
    (out.masks[:, 0] ** 2).sum().backward()
    assert z.grad is not None and kappa.grad is not None and kappa.grad != 0


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "z,k,match",
    [
        (torch.randn(10, 4), 3, "shape"),
        (torch.randn(1, 10, 4), 0, "knn_k"),
        (torch.randn(1, 10, 4), 10, "knn_k"),
        (torch.randn(1, 1, 4), 1, "knn_k"),
        (torch.tensor([[[float("nan")], [0.0], [1.0]]]), 1, "NaN"),
        (torch.tensor([[[float("inf")], [0.0], [1.0]]]), 1, "NaN or inf"),
        (torch.zeros(1, 5, 2, dtype=torch.long), 1, "floating"),
    ],
)
def test_scores_bad_input(z, k, match):
    with pytest.raises(ValueError, match=match):
        density_peak_scores(z, k)


def test_bad_padding_mask():
    with pytest.raises(ValueError, match="padding_mask"):
        density_peak_scores(torch.randn(1, 5, 2), 1, padding_mask=torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        density_peak_scores(torch.randn(1, 5, 2), 1, padding_mask=torch.zeros(1, 5))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(kernel_scale=0.0, max_clusters=4), "kernel_scale"),
        (dict(kernel_scale=-1.0, max_clusters=4), "kernel_scale"),
        (dict(kernel_scale=float("nan"), max_clusters=4), "kernel_scale"),
        (dict(kernel_scale=1.0, max_clusters=0), "max_clusters"),
        (dict(kernel_scale=1.0, max_clusters=4, min_scope=1.5), "min_scope"),
        (dict(kernel_scale=1.0, max_clusters=4, min_mask=-1), "min_mask"),
    ],
)
def test_stick_breaking_bad_input(kwargs, match):
    z = torch.randn(1, 8, 3)
    with pytest.raises(ValueError, match=match):
        stick_breaking(z, torch.rand(1, 8), **kwargs)
    with pytest.raises(ValueError, match="score"):
        stick_breaking(z, torch.rand(1, 7), 1.0, 4)


# ------------------------------------------------------------------------------------------------ baselines
@pytest.mark.parametrize("method", ["setok", "threshold", "fixed", "patch", "random_seed", "tome"])
def test_every_method_returns_a_partition(method):
    z, _ = blobs(B=2, N=36, k=3)
    cfg = ClusteringConfig(method=method, knn_k=3, max_clusters=10, num_fixed=6, threshold=0.1)
    out, _ = cluster(z.float(), cfg, generator=torch.Generator().manual_seed(0))
    labels = hard_assignment(out.masks)
    assert labels.shape == (2, 36) and (labels >= 0).all()
    if method == "patch":
        assert torch.equal(labels, torch.arange(36).expand(2, 36))
    if method in ("fixed", "tome"):
        assert len(set(labels[0].tolist())) <= 6


def test_fixed_uses_top_score_centres_and_nearest_assignment():
    z = torch.randn(1, 30, 4, dtype=torch.float64)
    cfg = ClusteringConfig(method="fixed", knn_k=3, num_fixed=4)
    out, peaks = cluster(z, cfg)
    centres = peaks.score[0].argsort(descending=True)[:4]
    assert out.seeds[0].tolist() == centres.tolist()
    d = torch.cdist(z[0], z[0][centres])
    assert torch.equal(hard_assignment(out.masks)[0], d.argmin(-1))


def test_threshold_centres_follow_the_cut():
    z = torch.randn(1, 30, 4, dtype=torch.float64)
    _, peaks = cluster(z, ClusteringConfig(method="setok", knn_k=3))
    t = float(peaks.score[0].median())
    out, _ = cluster(z, ClusteringConfig(method="threshold", knn_k=3, threshold=t))
    assert int(out.num_masks[0]) == int((peaks.score[0] > t).sum())


def test_random_seed_is_seeded():
    z = torch.randn(2, 25, 4)
    cfg = ClusteringConfig(method="random_seed", max_clusters=6)
    a, _ = cluster(z, cfg, generator=torch.Generator().manual_seed(1))
    b, _ = cluster(z, cfg, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.masks, b.masks)


def test_tome_merges_to_budget_and_groups_duplicates():
    base = torch.randn(1, 4, 8)
    x = base.repeat_interleave(4, dim=1)  # 16 tokens, 4 distinct
    labels = tome_merge(x, 4)
    groups = {tuple((labels[0] == g).nonzero().flatten().tolist()) for g in labels[0].unique().tolist()}
    assert groups == {(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15)}


@pytest.mark.parametrize("bad", [dict(method="kmeans"), dict(mode="fuzzy"), dict(knn_k=0), dict(kernel_scale=0),
                                 dict(max_clusters=0), dict(num_fixed=0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        ClusteringConfig(**bad)


def test_fused_scores_and_stick_breaking_equal_the_two_calls():
    from setok.clustering import density_peak_stick_breaking

    z, _ = blobs(B=2, N=30)
    pm = torch.zeros(2, 30, dtype=torch.bool)
    pm[1, 25:] = True
    peaks = density_peak_scores(z, 3, padding_mask=pm)
    two = stick_breaking(z, peaks.score, 3.0, 10, padding_mask=pm)
    fused, fused_peaks = density_peak_stick_breaking(z, 3, 3.0, 10, padding_mask=pm)
    assert torch.equal(two.masks, fused.masks) and torch.equal(fused_peaks.score, peaks.score)
    with pytest.raises(ValueError, match="knn_k"):
        density_peak_stick_breaking(z, 0, 3.0, 10)
