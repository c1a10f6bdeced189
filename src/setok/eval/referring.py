"""Referring expression scores: RefCOCO/+/g Acc@0.5 on boxes, ReasonSeg gIoU and cIoU on masks (SPEC §5.1).

- ``rec_accuracy(preds, refs)``: the fraction of expressions whose predicted box overlaps the ground-truth
  box with IoU >= 0.5 (the REC convention of MAttNet, MDETR, Shikra; Table 3 of arXiv 2406.05127v1). Boxes are
  COCO ``[x, y, w, h]`` in pixels. A model that outputs masks (SeTokim's mask decoder, SPEC §2) is scored on
  the mask's tight box (:func:`mask_to_box`, pycocotools' convention: a one-pixel mask has w = h = 1); an
  empty mask has no box and counts as a miss.
- ``reasonseg_iou(preds, refs)``: gIoU = mean of per-image IoU; cIoU = cumulative intersection / cumulative
  union over the split (LISA, Lai et al. 2024).

Empty-mask rule (ReasonSeg). When both the prediction and the ground truth are empty, the image's IoU is 1
in gIoU: the model correctly said "nothing here". LISA's evaluation does the same (an image with union 0 gets
IoU 1), so our gIoU matches the number the benchmark's authors compute. Such an image adds 0 to both sums of
cIoU, so it does not move cIoU. A prediction that is empty against a non-empty target (or the reverse) has
IoU 0. When every mask of the split is empty, cIoU is 0/0 and we return NaN (LISA's code would print 0): it
is undefined, not a failure. Ground-truth pixels marked 255 ("ignore", as in LISA) count for neither side.

Scores are returned on the 0-100 scale the paper prints (``box_iou`` and ``mask_iou_terms`` stay raw).

Worked example::

    >>> import numpy as np
    >>> from setok.eval.referring import box_iou, mask_to_box, rec_accuracy, reasonseg_iou
    >>> round(box_iou([0, 0, 10, 10], [5, 0, 10, 10]), 4)     # overlap 50, union 150
    0.3333
    >>> mask = np.zeros((6, 8), dtype=bool); mask[1:3, 2:5] = True
    >>> mask_to_box(mask)                                     # x=2, y=1, w=3, h=2
    [2.0, 1.0, 3.0, 2.0]
    >>> refs = {"a": [0, 0, 10, 10], "b": [0, 0, 10, 10], "c": [2, 1, 3, 2]}
    >>> preds = {"a": [1, 1, 10, 10], "b": [5, 0, 10, 10], "c": mask}
    >>> round(rec_accuracy(preds, refs)["acc@0.5"], 2)        # a: IoU 81/119 hit, b: 1/3 miss, c: exact hit
    66.67
    >>> gt = {"x": np.array([[1, 1], [0, 0]]), "y": np.zeros((2, 2))}
    >>> pr = {"x": np.array([[1, 0], [0, 0]]), "y": np.zeros((2, 2))}
    >>> out = reasonseg_iou(pr, gt)                          # x: IoU 1/2; y: both empty -> 1
    >>> out["giou"], out["ciou"]                              # on the 0-100 scale of Table 3
    (75.0, 50.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

ACC_THRESHOLD = 0.5  # "Acc@0.5": a hit when IoU >= 0.5
IGNORE_INDEX = 255  # ReasonSeg ground-truth pixels marked "ignore" (LISA's ignore_index)


# ------------------------------------------------------------------------------------------- helpers
def _to_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _binary_mask(x: Any, name: str) -> np.ndarray:
    """A boolean (H, W) mask; accepts bool or 0/1 arrays, refuses soft masks."""
    arr = _to_numpy(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) mask (got shape {arr.shape})")
    if arr.dtype != bool:
        if not np.issubdtype(arr.dtype, np.number) or not np.all((arr == 0) | (arr == 1)):
            raise ValueError(f"{name} must be binary (bool or 0/1); threshold soft masks first")
        arr = arr.astype(bool)
    return arr


def _box(x: Any, name: str) -> np.ndarray:
    """A float [x, y, w, h] box with finite values and non-negative size."""
    arr = _to_numpy(x, name).astype(np.float64).reshape(-1)
    if arr.shape != (4,):
        raise ValueError(f"{name} must be an [x, y, w, h] box (got {arr.size} values)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite values: {arr.tolist()}")
    if arr[2] < 0 or arr[3] < 0:
        raise ValueError(f"{name} has negative width/height (got w={arr[2]}, h={arr[3]}); "
                         "boxes are [x, y, w, h]")
    return arr


def _check_ids(preds: Mapping, refs: Mapping) -> list:
    """The shared ids, in refs order; missing or extra ids are an error naming a few of them."""
    if not isinstance(preds, Mapping) or not isinstance(refs, Mapping):
        raise ValueError("preds and refs must be mappings id -> prediction / reference")
    if len(refs) == 0:
        raise ValueError("refs is empty: nothing to score")
    missing = [k for k in refs if k not in preds]
    extra = [k for k in preds if k not in refs]
    if missing:
        raise ValueError(f"{len(missing)} reference ids have no prediction, e.g. {missing[:5]}")
    if extra:
        raise ValueError(f"{len(extra)} prediction ids are not in the references, e.g. {extra[:5]}")
    return list(refs)


# ------------------------------------------------------------------------------------------- boxes (REC)
def box_iou(a: Any, b: Any) -> float:
    """IoU of two COCO ``[x, y, w, h]`` boxes; a zero-area box has IoU 0 with anything."""
    a, b = _box(a, "a"), _box(b, "b")
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def mask_to_box(mask: Any) -> list[float] | None:
    """The tight ``[x, y, w, h]`` box of a binary mask, None if it is empty.

    w and h count pixels, as ``pycocotools.mask.toBbox`` does: a one-pixel mask has w = h = 1.
    """
    m = _binary_mask(mask, "mask")
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        return None
    x0, y0 = xs.min(), ys.min()
    return [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)]


def rec_accuracy(preds: Mapping[Any, Any], refs: Mapping[Any, Any], threshold: float = ACC_THRESHOLD,
                 splits: Mapping[Any, str] | None = None) -> dict[str, float]:
    """RefCOCO/+/g Acc@0.5: share of expressions with IoU(pred box, gt box) >= threshold (SPEC §5.1).

    Args:
        preds: id -> predicted ``[x, y, w, h]`` box, or a binary (H, W) mask (scored on its tight box;
            an empty mask is a miss).
        refs: id -> ground-truth ``[x, y, w, h]`` box (positive area).
        splits: optional id -> split name (val, testA, ...): adds ``acc@0.5/<split>`` for each split.
    Returns:
        ``{"acc@0.5", "mean_iou", "num", "num_empty_masks", ["acc@0.5/<split>", ...]}``; the key follows
        ``threshold`` (``acc@0.7`` for 0.7).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1] (got {threshold})")
    ids = _check_ids(preds, refs)
    ious, empty = [], 0
    for k in ids:
        gt = _box(refs[k], f"refs[{k!r}]")
        if gt[2] * gt[3] <= 0:
            raise ValueError(f"refs[{k!r}] has zero area: {gt.tolist()}")
        p = _to_numpy(preds[k], f"preds[{k!r}]")
        if p.ndim == 2:  # a mask: its tight box (SPEC §2, "a box for REC is the mask's tight box")
            box = mask_to_box(p)
            if box is None:
                empty += 1
                ious.append(0.0)
                continue
            p = box
        elif p.ndim != 1:
            raise ValueError(f"preds[{k!r}] must be an [x, y, w, h] box or an (H, W) mask "
                             f"(got shape {p.shape})")
        ious.append(box_iou(p, gt))
    ious_arr = np.asarray(ious)
    hits = ious_arr >= threshold
    key = f"acc@{threshold:g}"
    out: dict[str, float] = {key: 100.0 * float(hits.mean()), "mean_iou": 100.0 * float(ious_arr.mean()),
                             "num": len(ids), "num_empty_masks": empty}
    if splits is not None:
        missing = [k for k in ids if k not in splits]
        if missing:
            raise ValueError(f"{len(missing)} ids have no split, e.g. {missing[:5]}")
        names = np.asarray([str(splits[k]) for k in ids])
        for name in sorted(set(names.tolist())):
            out[f"{key}/{name}"] = 100.0 * float(hits[names == name].mean())
    return out


# ------------------------------------------------------------------------------------- masks (ReasonSeg)
def mask_iou_terms(pred: Any, true: Any, ignore_index: int | None = IGNORE_INDEX) -> tuple[int, int]:
    """(intersection, union) pixel counts of a binary (H, W) prediction and target of the same shape.

    Target pixels equal to ``ignore_index`` (ReasonSeg's 255, as in LISA's ``intersectionAndUnionGPU``) are
    left out of both counts.
    """
    p = _binary_mask(pred, "pred")
    t = _to_numpy(true, "true")
    if t.shape != p.shape:
        raise ValueError(f"pred and true masks must have the same shape (got {p.shape} and {t.shape}); "
                         "resize the prediction to the ground-truth size first")
    valid = np.ones(t.shape, dtype=bool) if ignore_index is None else t != ignore_index
    t = _binary_mask(np.where(valid, t, 0), "true")
    p = p & valid
    return int(np.logical_and(p, t).sum()), int(np.logical_or(p, t).sum())


def reasonseg_iou(preds: Mapping[Any, Any], refs: Mapping[Any, Any],
                  ignore_index: int | None = IGNORE_INDEX) -> dict[str, float]:
    """ReasonSeg gIoU (mean per-image IoU) and cIoU (sum of intersections / sum of unions) (SPEC §5.1).

    Empty-mask rule (module docstring): both empty -> IoU 1 in gIoU and nothing added to cIoU; cIoU is NaN
    when every union is 0. Target pixels equal to ``ignore_index`` count for neither side.
    LISA adds 1e-5 to each union; we divide exactly (a difference below 1e-5 per image).
    Returns ``{"giou", "ciou", "num", "num_both_empty"}``.
    """
    ids = _check_ids(preds, refs)
    inters, unions = np.zeros(len(ids)), np.zeros(len(ids))
    for i, k in enumerate(ids):
        try:
            inters[i], unions[i] = mask_iou_terms(preds[k], refs[k], ignore_index)
        except ValueError as err:
            raise ValueError(f"id {k!r}: {err}") from None
    both_empty = unions == 0
    per_image = np.where(both_empty, 1.0, inters / np.maximum(unions, 1))  # LISA: union 0 -> IoU 1
    total_union = unions.sum()
    ciou = 100.0 * float(inters.sum() / total_union) if total_union > 0 else float("nan")
    return {"giou": 100.0 * float(per_image.mean()), "ciou": ciou, "num": len(ids),
            "num_both_empty": int(both_empty.sum())}
