"""Clusters against object masks: ARI, FG-ARI, mBO and Hungarian mIoU (SPEC §5.4).

SeTok's clusters are a partition of the token grid; the mini world (and COCO) give instance masks. These
scores say how well the partition matches the objects:

- ``ari(pred, true)``: adjusted Rand index (Hubert & Arabie 1985) over all pixels, 1 = identical partitions,
  0 = chance level. Computed from the contingency table, checked against scikit-learn in the tests.
- ``fg_ari(pred, true, background=0)``: ARI over the pixels whose true label is not ``background``, the
  object-centric convention (IODINE, Slot Attention, GENESIS-V2): splitting the background costs nothing.
- ``mbo(pred, true, background=0)``: mean best overlap; for each true object, the best IoU over the predicted
  segments, averaged over objects (Pont-Tuset et al. 2016; DINOSAUR).
- ``miou(pred, true, background=0)``: one-to-one Hungarian matching of true objects to predicted segments by
  IoU (``scipy.optimize.linear_sum_assignment``), averaged over true objects; an unmatched object scores 0.
- ``upsample_labels(labels, grid, size)``: nearest-neighbour from the token grid (h, w) to pixels (H, W).
- ``segmentation_scores(pred, true, ...)``: all four over a batch of images, averaged (or one row per image).

Label maps are integer arrays (numpy or torch) of any shape, e.g. (H, W) or (N,); ``pred`` may hold -1 for
padding tokens, and those positions are dropped from every score. ``mbo`` and ``miou`` also accept predicted
binary masks (K, *shape) in place of a label map.

Worked example (a 2x4 image; object 1 is the left half, object 2 the right half, no background)::

    >>> import numpy as np
    >>> from setok.eval.segmentation import ari, fg_ari, mbo, miou, upsample_labels
    >>> true = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    >>> pred = np.array([[0, 0, 0, 1], [0, 0, 0, 1]])   # the split is one column too far right
    >>> round(ari(pred, true), 4)
    0.16
    >>> round(mbo(pred, true, background=None), 4)       # object 1: IoU 4/6; object 2: best IoU 2/4
    0.5833
    >>> round(miou(pred, true, background=None), 4)      # Hungarian: 1<->0, 2<->1, same as mBO here
    0.5833
    >>> t = np.array([0, 0, 1, 1, 2, 2]); p = np.array([5, 6, 1, 1, 2, 2])   # background (0) split in two
    >>> round(ari(p, t), 4), fg_ari(p, t)                # FG-ARI ignores the background split
    (0.7619, 1.0)
    >>> upsample_labels(np.array([0, 1, 2, 3]), grid=(2, 2), size=(4, 4))[0]
    array([0, 0, 1, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

PADDING = -1  # label of padding tokens in ``setok.clustering.hard_assignment`` (SPEC §1.2)


# ----------------------------------------------------------------------------------------------- helpers
def _to_numpy(x: Any, name: str) -> np.ndarray:
    """A numpy view of an array-like or torch tensor (detached, on CPU)."""
    if hasattr(x, "detach"):  # torch.Tensor without importing torch
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise ValueError(f"{name} must be a numeric array (got a ragged/object array of shape {arr.shape})")
    return arr


def _labels(x: Any, name: str) -> np.ndarray:
    """An integer label map; float arrays are accepted only when they hold whole numbers."""
    arr = _to_numpy(x, name)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be an integer label map (got dtype {arr.dtype})")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer labels (got non-integer values of dtype {arr.dtype})")
    return arr.astype(np.int64)


def _pair(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flatten two label maps of the same shape and drop padding (pred == -1) positions."""
    p, t = _labels(pred, "pred"), _labels(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"pred and true must have the same shape (got pred {p.shape}, true {t.shape}); "
                         "use upsample_labels to bring token labels to the mask size")
    if p.size == 0:
        raise ValueError("pred and true are empty (0 pixels)")
    p, t = p.reshape(-1), t.reshape(-1)
    keep = p != PADDING
    if not keep.any():
        raise ValueError("every pred position is padding (-1); nothing to score")
    return p[keep], t[keep]


def _comb2(x: np.ndarray | float) -> np.ndarray | float:
    """Number of unordered pairs, n choose 2."""
    return x * (x - 1) / 2.0


def _contingency(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Counts n_ij of positions with true label i and predicted label j; shape (#true, #pred labels)."""
    _, t_idx = np.unique(t, return_inverse=True)
    _, p_idx = np.unique(p, return_inverse=True)
    table = np.zeros((t_idx.max() + 1, p_idx.max() + 1), dtype=np.int64)
    np.add.at(table, (t_idx, p_idx), 1)
    return table


def _ari_from_labels(p: np.ndarray, t: np.ndarray) -> float:
    """ARI of two flat label arrays (Hubert & Arabie 1985, the 'max index' form used by scikit-learn)."""
    table = _contingency(p, t).astype(np.float64)
    n = table.sum()
    index = _comb2(table).sum()  # pairs together in both
    sum_true = _comb2(table.sum(axis=1)).sum()  # pairs together in true
    sum_pred = _comb2(table.sum(axis=0)).sum()  # pairs together in pred
    expected = sum_true * sum_pred / _comb2(n) if n > 1 else 0.0
    maximum = (sum_true + sum_pred) / 2.0
    if maximum == expected:  # both partitions trivial (one cluster each, or all singletons): identical
        return 1.0
    return float((index - expected) / (maximum - expected))


# ------------------------------------------------------------------------------------------- public scores
def ari(pred: Any, true: Any) -> float:
    """Adjusted Rand index between two label maps of one image (SPEC §5.4); pred == -1 is ignored."""
    p, t = _pair(pred, true)
    return _ari_from_labels(p, t)


def fg_ari(pred: Any, true: Any, background: int = 0) -> float:
    """Foreground ARI: ARI over pixels whose true label is not ``background`` (SPEC §5.4).

    Raises a ValueError when the image has no foreground pixel (the score is undefined there);
    :func:`segmentation_scores` skips such images and reports how many it scored.
    """
    p, t = _pair(pred, true)
    fg = t != background
    if not fg.any():
        raise ValueError(f"fg_ari: true has no foreground pixel (every label equals background={background})")
    return _ari_from_labels(p[fg], t[fg])


def _pred_masks(pred: Any, true_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted segments as boolean masks (K, P) plus the kept-position mask (P,), from labels or masks."""
    arr = _to_numpy(pred, "pred")
    if arr.shape == true_shape:  # a label map
        labels = _labels(arr, "pred").reshape(-1)
        keep = labels != PADDING
        ids = np.unique(labels[keep])
        return labels[None, :] == ids[:, None], keep
    if arr.ndim == len(true_shape) + 1 and arr.shape[1:] == true_shape:  # masks (K, *shape)
        if arr.dtype != bool:
            if not np.all((arr == 0) | (arr == 1)):
                raise ValueError("pred masks must be binary (bool or 0/1); threshold soft masks or take the "
                                 "argmax labels (setok.clustering.hard_assignment) first")
            arr = arr.astype(bool)
        if arr.shape[0] == 0:
            raise ValueError("pred holds 0 masks")
        masks = arr.reshape(arr.shape[0], -1)
        return masks, np.ones(masks.shape[1], dtype=bool)
    dims = ", ".join(map(str, true_shape))
    raise ValueError(f"pred must be a label map of shape {true_shape} or masks (K, {dims}) (got {arr.shape})")


def iou_matrix(pred: Any, true: Any, background: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """IoU between every true object (rows) and every predicted segment (columns), plus the object ids.

    Args:
        pred: label map of ``true``'s shape (-1 = padding, dropped) or binary masks (K, *shape).
        true: integer label map; label ``background`` is not an object (None: every label is one).
    Returns:
        (iou (num_objects, K), object_ids (num_objects,)).
    """
    t = _labels(true, "true")
    if t.size == 0:
        raise ValueError("true is empty (0 pixels)")
    masks, keep = _pred_masks(pred, t.shape)  # (K, P), (P,)
    t = t.reshape(-1)[keep]
    masks = masks[:, keep]
    if t.size == 0:
        raise ValueError("every pred position is padding (-1); nothing to score")
    ids = np.unique(t)
    if background is not None:
        ids = ids[ids != background]
    if ids.size == 0:
        raise ValueError(f"true has no object (every label equals background={background})")
    objects = t[None, :] == ids[:, None]  # (M, P)
    inter = objects.astype(np.int64) @ masks.T.astype(np.int64)  # (M, K)
    union = objects.sum(1)[:, None] + masks.sum(1)[None, :] - inter
    return inter / np.maximum(union, 1), ids


def mbo(pred: Any, true: Any, background: int | None = 0) -> float:
    """Mean best overlap: per true object, the best IoU over predicted segments, averaged (SPEC §5.4)."""
    iou, _ = iou_matrix(pred, true, background)
    return float(iou.max(axis=1).mean())


def miou(pred: Any, true: Any, background: int | None = 0) -> float:
    """Hungarian-matched mean IoU over true objects; unmatched objects (K < #objects) count 0 (SPEC §5.4)."""
    iou, _ = iou_matrix(pred, true, background)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum() / iou.shape[0])


def upsample_labels(labels: Any, grid: tuple[int, int], size: tuple[int, int]) -> Any:
    """Nearest-neighbour upsampling of token labels (N,) or (B, N) on an (h, w) grid to (H, W) or (B, H, W).

    Pixel (y, x) takes the token whose cell contains the pixel centre: row ``floor((y + 0.5) * h / H)``
    (torch's "nearest-exact"); for H a multiple of h every token covers an (H/h) x (W/w) block.
    Returns the same kind (numpy or torch) as the input.
    """
    h, w = (int(v) for v in grid)
    H, W = (int(v) for v in size)
    if min(h, w, H, W) <= 0:
        raise ValueError(f"grid and size must be positive (got grid={grid}, size={size})")
    is_torch = hasattr(labels, "detach")
    arr = _labels(labels, "labels")
    if arr.ndim not in (1, 2) or arr.shape[-1] != h * w:
        raise ValueError(f"labels must be (N,) or (B, N) with N = h*w = {h * w} (got shape {arr.shape})")
    rows = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)  # (H,)
    cols = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)  # (W,)
    index = rows[:, None] * w + cols[None, :]  # (H, W) token index of each pixel
    out = arr[..., index]  # (H, W) or (B, H, W)
    if is_torch:
        import torch

        return torch.from_numpy(np.ascontiguousarray(out)).to(labels.device)
    return out


def segmentation_scores(pred: Any, true: Any, background: int = 0, grid: tuple[int, int] | None = None,
                        reduce: bool = True) -> dict[str, float] | pd.DataFrame:
    """ARI, FG-ARI, mBO and mIoU over a batch of images, averaged over images (SPEC §5.4).

    Args:
        pred: (B, H, W) label maps, or (B, N) token labels with ``grid=(h, w)`` (upsampled to ``true``'s
            size), or a list of per-image label maps.
        true: (B, H, W) ground-truth label maps (``background`` = not an object) or a list of them.
        reduce: True -> dict of means plus counts; False -> a DataFrame with one row per image.
    Images without any object get NaN for fg_ari/mbo/miou and are left out of those means.
    """
    if not isinstance(pred, Sequence):
        pred = list(_to_numpy(pred, "pred"))
    if not isinstance(true, Sequence):
        true = list(_to_numpy(true, "true"))
    if len(pred) != len(true):
        raise ValueError(f"pred and true must hold the same number of images (got {len(pred)}, {len(true)})")
    if len(pred) == 0:
        raise ValueError("no images to score (pred and true are empty)")
    rows = []
    for i, (p, t) in enumerate(zip(pred, true, strict=True)):
        t = _labels(t, f"true[{i}]")
        if grid is not None:
            if t.ndim != 2:
                raise ValueError(f"true[{i}] must be (H, W) when grid is given (got {t.shape})")
            p = upsample_labels(p, grid, t.shape)
        row = {"image": i, "ari": ari(p, t)}
        has_fg = bool((_labels(p, "pred").reshape(-1) != PADDING)[(t.reshape(-1) != background)].any())
        row["fg_ari"] = fg_ari(p, t, background) if has_fg else float("nan")
        row["mbo"] = mbo(p, t, background) if has_fg else float("nan")
        row["miou"] = miou(p, t, background) if has_fg else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    if not reduce:
        return table
    out = {k: float(table[k].mean()) for k in ("ari", "fg_ari", "mbo", "miou")}  # pandas skips NaN
    out["num_images"] = len(table)
    out["num_images_with_objects"] = int(table["fg_ari"].notna().sum())
    return out
