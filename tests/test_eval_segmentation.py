"""setok.eval.segmentation against scikit-learn and hand-worked examples (SPEC §5.4)."""

import doctest

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

import setok.eval.segmentation as segmentation
from setok.eval.segmentation import (
    ari,
    fg_ari,
    iou_matrix,
    mbo,
    miou,
    segmentation_scores,
    upsample_labels,
)

TRUE = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
PRED = np.array([[0, 0, 0, 1], [0, 0, 0, 1]])


def test_module_worked_example_runs():
    assert doctest.testmod(segmentation).failed == 0


@pytest.mark.parametrize("seed", range(6))
def test_ari_matches_sklearn_on_random_partitions(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    t = rng.integers(0, int(rng.integers(1, 6)), size=n)
    p = rng.integers(0, int(rng.integers(1, 8)), size=n) + 7  # label values need not match
    assert ari(p, t) == pytest.approx(adjusted_rand_score(t, p), abs=1e-12)


def test_ari_edge_cases_match_sklearn():
    one = np.zeros(5, dtype=int)
    singletons = np.arange(5)
    for p, t in [(one, one), (singletons, singletons), (one, singletons), (singletons, one), ([3], [4])]:
        assert ari(p, t) == pytest.approx(adjusted_rand_score(t, p))


def test_ari_hand_worked_and_torch_input():
    # n_ij = [[4, 0], [2, 2]]: index 8, true pairs 12, pred pairs 16, expected 12*16/28, max 14
    expected = (8 - 12 * 16 / 28) / (14 - 12 * 16 / 28)
    assert ari(PRED, TRUE) == pytest.approx(expected)
    assert ari(torch.from_numpy(PRED), torch.from_numpy(TRUE)) == pytest.approx(expected)
    assert ari(PRED + 5, TRUE) == pytest.approx(expected)  # relabelling invariance


def test_ari_ignores_padding():
    p = np.array([0, 0, 1, 1, -1, -1])
    t = np.array([5, 5, 6, 6, 5, 6])
    assert ari(p, t) == pytest.approx(1.0)


def test_fg_ari_by_hand():
    # background 0 is split across two clusters; the two objects are recovered exactly
    t = np.array([0, 0, 0, 1, 1, 2, 2])
    p = np.array([7, 8, 9, 3, 3, 4, 4])
    assert fg_ari(p, t) == pytest.approx(1.0)
    assert ari(p, t) < 1.0
    # merge the two objects: on fg pixels true = [1,1,2,2], pred = [3,3,3,3] -> ARI 0
    p2 = np.array([7, 8, 9, 3, 3, 3, 3])
    assert fg_ari(p2, t) == pytest.approx(0.0)
    assert fg_ari(p2, t, background=1) == pytest.approx(adjusted_rand_score([0, 0, 0, 2, 2], [7, 8, 9, 3, 3]))


def test_mbo_and_miou_hand_worked():
    # object 1 (4 px) vs segment 0 (6 px): IoU 4/6; object 2 vs segment 1: 2/4, vs segment 0: 2/8
    iou, ids = iou_matrix(PRED, TRUE, background=None)
    np.testing.assert_allclose(iou, [[4 / 6, 0.0], [2 / 8, 2 / 4]])
    assert list(ids) == [1, 2]
    assert mbo(PRED, TRUE, background=None) == pytest.approx((4 / 6 + 2 / 4) / 2)
    assert miou(PRED, TRUE, background=None) == pytest.approx((4 / 6 + 2 / 4) / 2)


def test_miou_is_one_to_one_but_mbo_is_not():
    # one segment covers both objects best: mBO reuses it, Hungarian cannot
    t = np.array([1, 1, 1, 2, 2, 2])
    p = np.array([0, 0, 0, 0, 0, 1])  # seg0 = 5 px, seg1 = 1 px
    # obj1: seg0 3/5, seg1 0; obj2: seg0 2/6, seg1 1/3
    assert mbo(p, t) == pytest.approx((3 / 5 + 1 / 3) / 2)
    assert miou(p, t) == pytest.approx((3 / 5 + 1 / 3) / 2)
    p_one = np.zeros(6, dtype=int)  # a single segment: mBO 0.5 each, mIoU matches only one object
    assert mbo(p_one, t) == pytest.approx(0.5)
    assert miou(p_one, t) == pytest.approx(0.25)


def test_background_is_excluded_by_default():
    t = np.array([0, 0, 1, 1])
    p = np.array([0, 1, 2, 2])
    assert mbo(p, t) == pytest.approx(1.0)
    assert mbo(p, t, background=None) == pytest.approx((0.5 + 1.0) / 2)


def test_masks_input_equals_label_input():
    masks = np.stack([PRED == 0, PRED == 1])  # (K, H, W)
    assert mbo(masks, TRUE, background=None) == pytest.approx(mbo(PRED, TRUE, background=None))
    assert miou(masks.astype(np.float32), TRUE, background=None) == pytest.approx(
        miou(PRED, TRUE, background=None))


@pytest.mark.parametrize("seed", range(3))
def test_permutation_invariance(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 4, size=(6, 6))
    p = rng.integers(0, 5, size=(6, 6))
    perm = rng.permutation(5)
    pixels = rng.permutation(36)
    for fn in (ari, fg_ari, mbo, miou):
        v = fn(p, t)
        assert fn(perm[p], t) == pytest.approx(v)  # relabel the clusters
        assert fn(p.reshape(-1)[pixels], t.reshape(-1)[pixels]) == pytest.approx(v)  # reorder the pixels


def test_upsample_labels_nearest():
    labels = np.array([0, 1, 2, 3])  # 2x2 grid
    up = upsample_labels(labels, grid=(2, 2), size=(4, 6))
    np.testing.assert_array_equal(up, [[0, 0, 0, 1, 1, 1]] * 2 + [[2, 2, 2, 3, 3, 3]] * 2)
    batched = upsample_labels(torch.tensor([[0, 1, 2, 3], [3, 2, 1, -1]]), grid=(2, 2), size=(2, 2))
    assert isinstance(batched, torch.Tensor) and batched.shape == (2, 2, 2)
    assert batched[1].tolist() == [[3, 2], [1, -1]]
    # agrees with torch's nearest-exact interpolation
    g = torch.arange(12).reshape(1, 1, 3, 4).float()
    ref = torch.nn.functional.interpolate(g, size=(7, 9), mode="nearest-exact")[0, 0].long()
    np.testing.assert_array_equal(upsample_labels(np.arange(12), (3, 4), (7, 9)), ref.numpy())


def test_segmentation_scores_batch_mean_and_grid():
    tok = np.array([[0, 0, 1, 1], [0, 1, 0, 1]])  # (B, N) on a 2x2 grid
    true = np.stack([np.array([[1, 1], [2, 2]]).repeat(2, 0).repeat(2, 1), np.zeros((4, 4), dtype=int)])
    table = segmentation_scores(tok, true, grid=(2, 2), reduce=False)
    assert table.shape[0] == 2
    assert table.loc[0, "ari"] == pytest.approx(1.0) and table.loc[0, "mbo"] == pytest.approx(1.0)
    assert np.isnan(table.loc[1, "fg_ari"])  # no object in image 1
    means = segmentation_scores(tok, true, grid=(2, 2))
    assert means["ari"] == pytest.approx(table["ari"].mean())
    assert means["fg_ari"] == pytest.approx(1.0)
    assert means["num_images"] == 2 and means["num_images_with_objects"] == 1


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        ari(np.zeros(4, int), np.zeros(5, int))
    with pytest.raises(ValueError, match="empty"):
        ari(np.zeros(0, int), np.zeros(0, int))
    with pytest.raises(ValueError, match="padding"):
        ari(-np.ones(3, int), np.zeros(3, int))
    with pytest.raises(ValueError, match="integer labels"):
        ari(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="integer label map"):
        ari(np.array([True, False]), np.array([0, 1]))
    with pytest.raises(ValueError, match="no foreground"):
        fg_ari(np.array([0, 1]), np.array([0, 0]))
    with pytest.raises(ValueError, match="no object"):
        mbo(np.array([0, 1]), np.array([0, 0]))
    with pytest.raises(ValueError, match="binary"):
        miou(np.full((2, 2, 4), 0.3), TRUE)
    with pytest.raises(ValueError, match="label map of shape"):
        mbo(np.zeros((3, 3), int), TRUE)
    with pytest.raises(ValueError, match="N = h\\*w"):
        upsample_labels(np.arange(5), grid=(2, 2), size=(4, 4))
    with pytest.raises(ValueError, match="positive"):
        upsample_labels(np.arange(4), grid=(2, 2), size=(0, 4))
    with pytest.raises(ValueError, match="same number of images"):
        segmentation_scores(np.zeros((2, 4, 4), int), np.zeros((3, 4, 4), int))
    with pytest.raises(ValueError, match="no images"):
        segmentation_scores([], [])
