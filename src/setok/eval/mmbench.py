"""MMBench CircularEval with exact-match option extraction (labelled "exact-match"; SPEC §5.1).

The rule (Liu et al. 2023): a question with k options is asked k times, the options rotated circularly each
time; the question counts as right only if *every* pass picks the right option. The official pipeline extracts
the chosen option with rules and falls back to a GPT judge for free-form answers; here only the rules run
(:func:`setok.eval.choice.match_option`), an unmatched answer is wrong, and every result says ``"matching":
"exact-match"``, so it is not the same number as a GPT-judged MMBench score.

In MMBench's TSV files, the circular copies of question ``i`` have indices ``i + j * 1_000_000``; we use a
reference's ``group`` field, or that rule when ``group`` is absent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np

from setok.eval.choice import match_option
from setok.eval.common import check_pairs, require_keys

MATCHING = "exact-match (rule-based option extraction, no GPT judge)"
CIRCULAR_OFFSET = 1_000_000


def _group_of(qid: Any, ref: Mapping[str, Any]) -> str:
    if "group" in ref:
        return str(ref["group"])
    try:
        return str(int(qid) % CIRCULAR_OFFSET)
    except (TypeError, ValueError):
        raise ValueError(f"mmbench: reference {qid!r} has no 'group' and its id is not a numeric MMBench "
                         "index") from None


def score_mmbench(predictions: Mapping[Any, str], references: Mapping[Any, Mapping[str, Any]],
                  require_full_circle: bool = True) -> dict[str, Any]:
    """CircularEval accuracy (x100) overall and per category, plus the single-pass ("vanilla") accuracy.

    References: ``{index: {"answer": "B", "options": {"A": text, ...}, "group": original question (optional),
    "category": optional}}``. With ``require_full_circle`` every group must hold as many passes as options.
    """
    ids = check_pairs(predictions, references, "mmbench", allow_empty_text=True)
    require_keys(references, ["answer", "options"], "mmbench")
    groups: dict[str, list[bool]] = defaultdict(list)
    n_options: dict[str, int] = {}
    category: dict[str, str] = {}
    unmatched = 0
    for q in ids:
        ref = references[q]
        options = {str(k): str(v) for k, v in ref["options"].items() if v is not None and str(v) != "nan"}
        if str(ref["answer"]) not in options:
            raise ValueError(f"mmbench: answer {ref['answer']!r} of {q!r} is not one of its options "
                             f"{sorted(options)}")
        letter = match_option(predictions[q], options)
        unmatched += letter is None
        g = _group_of(q, ref)
        groups[g].append(letter == str(ref["answer"]))
        n_options[g] = len(options)
        if "category" in ref:
            category[g] = str(ref["category"])
    if require_full_circle:
        short = [(g, len(v), n_options[g]) for g, v in groups.items() if len(v) != n_options[g]]
        if short:
            shown = ", ".join(f"{g}: {n} passes for {k} options" for g, n, k in short[:5])
            raise ValueError(f"mmbench: CircularEval needs one pass per option; {len(short)} questions "
                             f"differ ({shown})")
    circular = {g: all(v) for g, v in groups.items()}
    per_category: dict[str, list[bool]] = defaultdict(list)
    for g, ok in circular.items():
        if g in category:
            per_category[category[g]].append(ok)
    passes = [ok for v in groups.values() for ok in v]
    return {"circular_accuracy": 100.0 * float(np.mean(list(circular.values()))),
            "vanilla_accuracy": 100.0 * float(np.mean(passes)),
            "per_category": {k: 100.0 * float(np.mean(v)) for k, v in sorted(per_category.items())},
            "n_questions": len(groups), "n_passes": len(passes), "n_unmatched": unmatched,
            "matching": MATCHING}
