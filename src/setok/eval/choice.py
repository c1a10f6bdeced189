"""Exact-match and multiple-choice accuracy: GQA, VSR, IconQA, and MMBench's option matcher (SPEC §5.1).

How a free-text answer is matched to an option (:func:`match_option`), tried in this order; the first rule
that decides wins, and an answer no rule decides is *unmatched* and counted wrong:

1. the whole answer is one option letter, optionally dressed: ``B``, ``(B)``, ``B.``, ``B)``, ``B:``;
2. the answer starts with a marked letter: ``B. a red cube``, ``(B) ...``, ``B) ...``, ``B: ...``, or contains
   ``answer is B`` / ``answer: B`` / ``option B``;
3. the normalised answer equals exactly one option's normalised text (lower-case, punctuation and articles
   removed);
4. exactly one option's normalised text occurs in the normalised answer as whole words, after discarding
   options whose text only occurs inside a longer matching option ("red" inside "dark red").

A bare capital letter inside a sentence is not read as an option (``A dog is ...`` would otherwise mean "A").

GQA: exact string match after stripping whitespace, lower-casing and dropping one trailing period
(``normalize= "light"``, what LLaVA-style pipelines feed the official script); ``normalize="none"`` compares
raw strings. VSR: the label says whether the caption is true; the answer's first yes/no word decides (``yes,
true, correct`` vs ``no, false, incorrect``). IconQA: multiple-choice sub-tasks through :func:`match_option`;
fill-in-the-blank answers compare as numbers when both parse, else as normalised strings.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from setok.eval.common import check_pairs, require_keys

LETTERS = string.ascii_uppercase
_DRESSED_LETTER = re.compile(r"^\(?([A-Z])\s*[).:]?$")
_MARKED_PREFIX = re.compile(r"^\(?([A-Z])(?:\)|\.|:|\s*\))(?:\s|$)")
_ANSWER_IS = re.compile(r"(?:answer\s*(?:is|:)\s*|option\s+)\(?([A-Z])\b\)?", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def normalize_text(text: str) -> str:
    """Lower-case words without punctuation or articles (for comparing free text with option text)."""
    return " ".join(w for w in _WORD.findall(str(text).lower()) if w not in ("a", "an", "the"))


def match_option(answer: str, options: Mapping[str, str]) -> str | None:
    """The option letter that a free-text ``answer`` picks among ``options`` (letter -> text), or None."""
    text = (answer or "").strip()
    if not text:
        return None
    # 1. the whole answer is a (dressed) letter
    m = _DRESSED_LETTER.match(text)
    if m and m.group(1) in options:
        return m.group(1)
    # 2. a marked letter at the start, or "answer is X" / "option X"
    m = _MARKED_PREFIX.match(text)
    if m and m.group(1) in options:
        return m.group(1)
    found = {g.upper() for g in _ANSWER_IS.findall(text)} & set(options)
    if len(found) == 1:
        return found.pop()
    # 3. the answer is exactly one option's text
    norm = normalize_text(text)
    norm_options = {k: normalize_text(v) for k, v in options.items()}
    exact = [k for k, v in norm_options.items() if v and v == norm]
    if len(exact) == 1:
        return exact[0]
    # 4. exactly one option text occurs (as whole words), ignoring options nested inside a longer matching one
    padded = f" {norm} "
    hits = [k for k, v in norm_options.items() if v and f" {v} " in padded]
    nested = {k for k in hits for o in hits if k != o and f" {norm_options[k]} " in f" {norm_options[o]} "}
    hits = [k for k in hits if k not in nested]
    return hits[0] if len(hits) == 1 else None


def options_from_choices(choices: Sequence[str]) -> dict[str, str]:
    """Letter the choices A, B, C ... in order."""
    if len(choices) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} choices are supported (got {len(choices)})")
    return {LETTERS[i]: str(c) for i, c in enumerate(choices)}


def _gqa_norm(text: str, normalize: str) -> str:
    if normalize == "none":
        return text
    text = text.strip().lower()
    return text[:-1] if text.endswith(".") else text


def score_gqa(predictions: Mapping[Any, str], references: Mapping[Any, Mapping[str, Any]],
              normalize: str = "light") -> dict[str, Any]:
    """GQA exact-match accuracy (x100); references ``{qid: {"answer": str, "question_type": optional}}``."""
    if normalize not in ("light", "none"):
        raise ValueError(f"normalize must be 'light' or 'none' (got {normalize!r})")
    ids = check_pairs(predictions, references, "gqa", allow_empty_text=True)
    require_keys(references, ["answer"], "gqa")
    gold = {q: _gqa_norm(str(references[q]["answer"]), normalize) for q in ids}
    correct = {q: _gqa_norm(predictions[q] or "", normalize) == gold[q] for q in ids}
    return {"accuracy": 100.0 * float(np.mean(list(correct.values()))), "n_questions": len(ids),
            "per_question_type": _per_group(correct, references, "question_type"), "normalize": normalize}


def _per_group(correct: Mapping[Any, bool], references: Mapping[Any, Mapping[str, Any]], key: str) -> dict:
    groups: dict[str, list[bool]] = defaultdict(list)
    for q, ok in correct.items():
        if key in references[q]:
            groups[str(references[q][key])].append(ok)
    return {k: 100.0 * float(np.mean(v)) for k, v in sorted(groups.items())}


YES_WORDS = frozenset({"yes", "true", "correct"})
NO_WORDS = frozenset({"no", "false", "incorrect", "not"})


def parse_yes_no_first(answer: str) -> bool | None:
    """The first yes/no word of a free-text answer (True, False), or None if there is none."""
    for word in _WORD.findall((answer or "").lower()):
        if word in YES_WORDS:
            return True
        if word in NO_WORDS:
            return False
    return None


def _as_bool_label(value: Any, qid: Any, task: str) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "1", "no", "false", "0"):
        return value.strip().lower() in ("yes", "true", "1")
    raise ValueError(f"{task}: label of {qid!r} must be 0/1, true/false or yes/no (got {value!r})")


def score_vsr(predictions: Mapping[Any, str], references: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """VSR accuracy (x100); references ``{id: {"label": 0/1 (caption true?), "relation": optional}}``."""
    ids = check_pairs(predictions, references, "vsr", allow_empty_text=True)
    require_keys(references, ["label"], "vsr")
    parsed = {q: parse_yes_no_first(predictions[q]) for q in ids}
    correct = {q: parsed[q] is not None and parsed[q] == _as_bool_label(references[q]["label"], q, "vsr")
               for q in ids}
    return {"accuracy": 100.0 * float(np.mean(list(correct.values()))), "n_questions": len(ids),
            "n_unparsed": sum(p is None for p in parsed.values()),
            "per_relation": _per_group(correct, references, "relation")}


def _same_number_or_text(pred: str, gold: str) -> bool:
    p, g = (pred or "").strip().rstrip(".").replace(",", ""), str(gold).strip().rstrip(".").replace(",", "")
    try:
        return float(p) == float(g)
    except ValueError:
        return normalize_text(p) == normalize_text(g)


def score_iconqa(predictions: Mapping[Any, str],
                 references: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """IconQA accuracy (x100), overall and per sub-task.

    References: ``{id: {"answer": ..., "choices": [..] (multiple choice only), "ques_type": optional}}``. With
    choices, ``answer`` is the correct choice's index (int) or text, and the prediction goes through
    :func:`match_option`; without, the answer is a fill-in-the-blank value.
    """
    ids = check_pairs(predictions, references, "iconqa", allow_empty_text=True)
    require_keys(references, ["answer"], "iconqa")
    correct, unmatched = {}, 0
    for q in ids:
        ref = references[q]
        choices = ref.get("choices")
        if choices:
            options = options_from_choices(choices)
            gold = ref["answer"]
            if isinstance(gold, int) and not isinstance(gold, bool):
                if not 0 <= gold < len(choices):
                    raise ValueError(f"iconqa: answer index {gold} of {q!r} is outside its "
                                     f"{len(choices)} choices")
                gold_letter = LETTERS[gold]
            else:
                matches = [k for k, v in options.items() if v == str(gold)]
                if len(matches) != 1:
                    raise ValueError(f"iconqa: answer {gold!r} of {q!r} is not exactly one of its "
                                     f"choices {choices}")
                gold_letter = matches[0]
            letter = match_option(predictions[q], options)
            unmatched += letter is None
            correct[q] = letter == gold_letter
        else:
            correct[q] = _same_number_or_text(predictions[q], ref["answer"])
    return {"accuracy": 100.0 * float(np.mean(list(correct.values()))), "n_questions": len(ids),
            "n_unmatched": unmatched, "per_ques_type": _per_group(correct, references, "ques_type")}
