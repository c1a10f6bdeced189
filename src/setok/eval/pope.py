"""POPE object-hallucination scores: accuracy, precision, recall, F1 and yes-ratio (SPEC §5.1).

The rule (Li et al. 2023, the official evaluation script): keep the answer's first sentence (text before the
first period), remove commas, split on spaces; if a word is ``no``, ``No`` or ``not`` the answer is "no",
otherwise it is "yes" (so an answer that says nothing is "yes"). "yes" is the positive class. Each split
(``random``, ``popular``, ``adversarial``) is scored on its own; the average is the plain mean of the split
scores. The yes-ratio is the share of *predictions* that are "yes" (50% would match the balanced ground
truth). All values are percentages. Precision (resp. F1) is 0 when nothing is predicted "yes", as in
scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np

from setok.eval.common import check_pairs, require_keys

SPLITS = ("random", "popular", "adversarial")


def parse_pope_answer(answer: str) -> str:
    """Official POPE parsing: "no" if the first sentence holds the word no/No/not, else "yes"."""
    text = answer or ""
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "no" in words or "not" in words) else "yes"


def binary_scores(pred_yes: np.ndarray, true_yes: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1, yes-ratio (x100) and the confusion counts, "yes" being positive."""
    pred_yes, true_yes = np.asarray(pred_yes, bool), np.asarray(true_yes, bool)
    tp = int(np.sum(pred_yes & true_yes))
    fp = int(np.sum(pred_yes & ~true_yes))
    tn = int(np.sum(~pred_yes & ~true_yes))
    fn = int(np.sum(~pred_yes & true_yes))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": 100.0 * (tp + tn) / len(pred_yes), "precision": 100.0 * precision,
            "recall": 100.0 * recall, "f1": 100.0 * f1, "yes_ratio": 100.0 * float(pred_yes.mean()),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn, "n": len(pred_yes)}


def score_pope(predictions: Mapping[Any, str], references: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """POPE scores per split and averaged over splits.

    References: ``{id: {"label": "yes" | "no", "split": "random" | "popular" | "adversarial" (optional)}}``;
    records without a split go to ``"all"``.
    Returns ``{"per_split": {split: scores}, "average": {metric: mean over splits}, "n_questions"}``.
    """
    ids = check_pairs(predictions, references, "pope", allow_empty_text=True)
    require_keys(references, ["label"], "pope")
    by_split: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for q in ids:
        label = str(references[q]["label"]).strip().lower()
        if label not in ("yes", "no"):
            raise ValueError(f"pope: label of {q!r} must be 'yes' or 'no' (got {references[q]['label']!r})")
        split = str(references[q].get("split", "all"))
        by_split[split].append((parse_pope_answer(predictions[q]) == "yes", label == "yes"))
    per_split = {}
    for split, pairs in by_split.items():
        arr = np.array(pairs, dtype=bool)  # (n, 2): predicted yes, true yes
        per_split[split] = binary_scores(arr[:, 0], arr[:, 1])
    order = [s for s in SPLITS if s in per_split] + sorted(set(per_split) - set(SPLITS))
    per_split = {s: per_split[s] for s in order}
    keys = ("accuracy", "precision", "recall", "f1", "yes_ratio")
    average = {k: float(np.mean([per_split[s][k] for s in per_split])) for k in keys}
    return {"per_split": per_split, "average": average, "n_questions": len(ids)}
