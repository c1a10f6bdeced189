"""setok.eval.referring: Acc@0.5 and gIoU/cIoU against hand-worked cases and pycocotools (SPEC §5.1)."""

import doctest

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

import setok.eval.referring as referring
from setok.eval.referring import box_iou, mask_iou_terms, mask_to_box, reasonseg_iou, rec_accuracy


def test_module_worked_example_runs():
    assert doctest.testmod(referring).failed == 0


def test_box_iou_by_hand():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == pytest.approx(1.0)
    assert box_iou([0, 0, 10, 10], [5, 5, 10, 10]) == pytest.approx(25 / 175)
    assert box_iou([0, 0, 10, 10], [10, 0, 5, 5]) == 0.0  # touching edges
    assert box_iou([0, 0, 0, 5], [0, 0, 10, 10]) == 0.0  # zero-area prediction


def test_box_iou_matches_pycocotools():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 20, size=(20, 4))
    b = rng.uniform(0, 20, size=(20, 4))
    ref = mask_utils.iou(a.tolist(), b.tolist(), [0] * len(b))
    ours = np.array([[box_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_mask_to_box_matches_pycocotools():
    rng = np.random.default_rng(1)
    for _ in range(5):
        m = np.zeros((9, 11), dtype=np.uint8)
        y0, x0 = rng.integers(0, 5, size=2)
        m[y0:y0 + rng.integers(1, 4), x0:x0 + rng.integers(1, 6)] = 1
        m[rng.integers(0, 9), rng.integers(0, 11)] = 1
        ref = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m))).tolist()
        assert mask_to_box(m) == ref
    assert mask_to_box(torch.zeros(3, 3, dtype=torch.bool)) is None


def test_rec_accuracy_boxes_masks_and_threshold_boundary():
    refs = {1: [0, 0, 10, 10], 2: [0, 0, 10, 10], 3: [0, 0, 4, 4], 4: [0, 0, 10, 10]}
    empty = np.zeros((12, 12), dtype=bool)
    mask = np.zeros((12, 12), dtype=bool)
    mask[0:4, 0:2] = True  # tight box [0, 0, 2, 4]: IoU 8/16 = 0.5 exactly -> a hit (>=)
    preds = {1: [0, 0, 10, 10], 2: [5, 0, 10, 10], 3: mask, 4: empty}
    out = rec_accuracy(preds, refs)
    assert out["acc@0.5"] == pytest.approx(100 * 2 / 4)  # 1 hit, 2 miss (1/3), 3 hit (0.5), 4 empty -> miss
    assert out["mean_iou"] == pytest.approx(100 * (1 + 1 / 3 + 0.5 + 0) / 4)
    assert out["num"] == 4 and out["num_empty_masks"] == 1
    assert rec_accuracy(preds, refs, threshold=0.3)["acc@0.3"] == pytest.approx(75.0)


def test_rec_accuracy_per_split():
    refs = {"a": [0, 0, 2, 2], "b": [0, 0, 2, 2], "c": [0, 0, 2, 2]}
    preds = {"a": [0, 0, 2, 2], "b": [5, 5, 2, 2], "c": [0, 0, 2, 2]}
    out = rec_accuracy(preds, refs, splits={"a": "testA", "b": "testA", "c": "testB"})
    assert out["acc@0.5/testA"] == pytest.approx(50.0) and out["acc@0.5/testB"] == pytest.approx(100.0)


def test_reasonseg_giou_ciou_by_hand():
    gt = {
        "a": np.array([[1, 1, 1, 1]]),  # pred covers 2 of 4 -> IoU 2/4
        "b": np.array([[1, 0, 0, 0]]),  # pred covers it plus 3 more -> IoU 1/4
        "c": np.array([[0, 0, 0, 0]]),  # both empty -> 1 in gIoU, nothing in cIoU
        "d": np.array([[0, 1, 0, 0]]),  # empty prediction -> 0
    }
    pr = {"a": np.array([[1, 1, 0, 0]]), "b": np.array([[1, 1, 1, 1]]), "c": np.zeros((1, 4)),
          "d": torch.zeros(1, 4)}
    out = reasonseg_iou(pr, gt)
    assert out["giou"] == pytest.approx(100 * (2 / 4 + 1 / 4 + 1 + 0) / 4)
    assert out["ciou"] == pytest.approx(100 * (2 + 1 + 0 + 0) / (4 + 4 + 0 + 1))
    assert out["num"] == 4 and out["num_both_empty"] == 1


def test_reasonseg_all_empty_and_ignore_index():
    out = reasonseg_iou({0: np.zeros((2, 2))}, {0: np.zeros((2, 2))})
    assert out["giou"] == 100.0 and np.isnan(out["ciou"])
    # the 255 pixel is ignored on both sides: IoU = 1/1 instead of 1/2
    gt = np.array([[1, 255], [0, 0]])
    pr = np.array([[1, 1], [0, 0]])
    assert mask_iou_terms(pr, gt) == (1, 1)
    assert mask_iou_terms(pr, gt == 1, ignore_index=None) == (1, 2)


def test_bad_inputs():
    with pytest.raises(ValueError, match="have no prediction"):
        rec_accuracy({}, {1: [0, 0, 1, 1]})
    with pytest.raises(ValueError, match="not in the references"):
        rec_accuracy({1: [0, 0, 1, 1], 2: [0, 0, 1, 1]}, {1: [0, 0, 1, 1]})
    with pytest.raises(ValueError, match="refs is empty"):
        rec_accuracy({}, {})
    with pytest.raises(ValueError, match="mappings"):
        rec_accuracy([[0, 0, 1, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="zero area"):
        rec_accuracy({1: [0, 0, 1, 1]}, {1: [0, 0, 0, 1]})
    with pytest.raises(ValueError, match="negative width"):
        box_iou([0, 0, -1, 1], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="4 values|box"):
        rec_accuracy({1: [0, 0, 1]}, {1: [0, 0, 1, 1]})
    with pytest.raises(ValueError, match="non-finite"):
        box_iou([0, 0, np.nan, 1], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="threshold"):
        rec_accuracy({1: [0, 0, 1, 1]}, {1: [0, 0, 1, 1]}, threshold=0)
    with pytest.raises(ValueError, match="have no split"):
        rec_accuracy({1: [0, 0, 1, 1]}, {1: [0, 0, 1, 1]}, splits={})
    with pytest.raises(ValueError, match="same shape"):
        reasonseg_iou({0: np.zeros((2, 2))}, {0: np.zeros((3, 3))})
    with pytest.raises(ValueError, match="binary"):
        reasonseg_iou({0: np.full((2, 2), 0.4)}, {0: np.zeros((2, 2))})
    with pytest.raises(ValueError, match="2-D"):
        mask_to_box(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="have no prediction"):
        reasonseg_iou({}, {0: np.zeros((2, 2))})
