"""MME scores: per-subtask acc and acc+, perception and cognition totals (SPEC §5.1).

The rule (Fu et al. 2023, the official ``calculation.py``): every image comes with two yes/no questions (one
answered "yes", one "no"). An answer is lower-cased; "yes"/"no" count as they are; otherwise its first four
characters decide ("yes" in them -> yes, else "no" in them -> no), else it is "other", which is wrong. (lmms-eval
also strips spaces and periods first; that changes the label only of answers like ``"  yes"``.)
For a subtask, ``acc`` is the percentage of questions right and ``acc+`` the percentage of
images with *both* questions right; its score is ``acc + acc+`` (at most 200). Perception sums the 10
perception subtasks (at most 2000), cognition the 4 cognition subtasks (at most 800). Totals over a partial
set of subtasks are flagged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np

from setok.eval.common import check_pairs, require_keys

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
              "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def parse_mme_answer(answer: str) -> str:
    """Official MME parsing: "yes", "no" or "other"."""
    text = (answer or "").lower()
    if text in ("yes", "no"):
        return text
    prefix = text[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


def score_mme(predictions: Mapping[Any, str], references: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """MME per-subtask acc, acc+ and score, and the perception / cognition totals.

    References: ``{id: {"subtask": one of PERCEPTION + COGNITION, "image": image name,
    "label": "yes" | "no"}}``.
    Each (subtask, image) must have exactly two questions, as in MME.
    """
    ids = check_pairs(predictions, references, "mme", allow_empty_text=True)
    require_keys(references, ["subtask", "image", "label"], "mme")
    known = set(PERCEPTION) | set(COGNITION)
    images: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for q in ids:
        ref = references[q]
        if ref["subtask"] not in known:
            raise ValueError(f"mme: subtask {ref['subtask']!r} of {q!r} is not an MME subtask "
                             f"(perception {list(PERCEPTION)}, cognition {list(COGNITION)})")
        label = str(ref["label"]).strip().lower()
        if label not in ("yes", "no"):
            raise ValueError(f"mme: label of {q!r} must be 'yes' or 'no' (got {ref['label']!r})")
        images[ref["subtask"]][str(ref["image"])].append(parse_mme_answer(predictions[q]) == label)
    bad = [(t, i, len(v)) for t, imgs in images.items() for i, v in imgs.items() if len(v) != 2]
    if bad:
        shown = ", ".join(f"{t}/{i}: {n}" for t, i, n in bad[:5])
        raise ValueError(f"mme: each image needs exactly 2 questions; {len(bad)} images differ ({shown})")
    per_subtask = {}
    for task in PERCEPTION + COGNITION:
        if task in images:
            right = np.array(list(images[task].values()), dtype=bool)  # (images, 2)
            acc, acc_plus = 100.0 * right.mean(), 100.0 * right.all(axis=1).mean()
            per_subtask[task] = {"acc": float(acc), "acc_plus": float(acc_plus),
                                 "score": float(acc + acc_plus), "n_images": int(right.shape[0])}
    out: dict[str, Any] = {"per_subtask": per_subtask, "n_questions": len(ids)}
    for name, group in (("perception", PERCEPTION), ("cognition", COGNITION)):
        present = [t for t in group if t in per_subtask]
        out[name] = float(sum(per_subtask[t]["score"] for t in present))
        out[f"{name}_complete"] = len(present) == len(group)
        out[f"{name}_subtasks"] = len(present)
    return out
