"""VQA soft accuracy with the official answer normalisation (VQA v2, OK-VQA, VizWiz, TextVQA; SPEC §5.1).

The rule (Antol et al. 2015; Goyal et al. 2017, the evaluation code of the VQA challenge): an answer is right
to the degree that humans gave it, ``min(#humans who said it / 3, 1)``, and to smooth over annotator noise
this is averaged over the ``n`` leave-one-out subsets of the ``n`` (= 10) human answers. With ``m`` humans
matching the prediction, ``m`` subsets lose a matching human and ``n - m`` do not, so

    acc = (m * min(1, (m - 1) / 3) + (n - m) * min(1, m / 3)) / n       (0, .3, .6, .9, 1, 1, ... for n = 10)

Normalisation, as the official code does it:
1. newlines/tabs become spaces, the answer is stripped;
2. punctuation: each of ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !`` is deleted when it touches a space (or
   the answer holds a digit-comma-digit group) and replaced by a space otherwise; then a period not followed
   by a digit is removed (at most 32 of them: the official code passes ``re.UNICODE`` as the ``count``
   argument);
3. digits/articles: lower-case, number words ``none, zero .. ten`` -> ``0 .. 10``, drop ``a, an, the``, and
   map apostrophe-less contractions (``dont`` -> ``don't``).
The prediction always gets steps 1-3. References, in the official VQA v2/OK-VQA code, get only step 2 and only
when the humans disagree (the released annotations are already normalised); TextVQA and VizWiz use the EvalAI
answer processor, which applies steps 1-3 to every reference. ``reference_normalisation`` picks the rule, and
each task gets its official default in :data:`REFERENCE_NORMALISATION`. A quirk kept for fidelity: under the
official rule a disagreeing reference ``"yes!"`` becomes ``"yes "`` (the ``!`` turns into a space that nothing
strips) and matches nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from setok.eval.common import check_pairs, require_keys

# Official rule per benchmark: "official-vqa" = the VQA challenge code, "full" = the EvalAI answer processor.
REFERENCE_NORMALISATION = {"vqav2": "official-vqa", "okvqa": "official-vqa", "vizwiz": "full",
                           "textvqa": "full"}

PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
               "?", "!")
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = frozenset({"a", "an", "the"})
_COMMA_IN_NUMBER = re.compile(r"(\d)(,)(\d)")
# The official pattern starts with "(?!<=\d)", a negative *lookahead* for the text "<=digit" (meant as a
# lookbehind); its effect is "a period not followed by a digit", which is what we write.
_PERIOD = re.compile(r"\.(?!\d)")

# The official contraction map sends each apostrophe-less spelling to the written form. Its keys are exactly
# the written forms with one apostrophe removed (both ways for two apostrophes: couldnt've, couldn'tve), so we
# list the written forms and derive the keys. Forms that are also plain words (its, lets, wed, were, hell,
# shed, ill) are not in the official map and are not here either. Keys with a capital I ("Im", "Ive", "Id've")
# are in the official map but never fire, because the answer is lower-cased first.
_WRITTEN_FORMS = """
ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't he'd
he'd've he's how'd how'll how's I'd've I'm I've isn't it'd it'd've it'll ma'am mightn't mightn't've might've
mustn't must've needn't not've o'clock oughtn't 'ow's'at shan't she'd've should've shouldn't shouldn't've
somebody'd've somebody'll somebody's someone'd someone'd've someone'll someone's something'd something'd've
something'll that's there'd there'd've there're there's they'd they'd've they'll they're they've 'twas
wasn't we'd've we've weren't what'll what're what's what've when's where'd where's where've who'd who'd've
who'll who's who've why'll why're why's won't would've wouldn't wouldn't've y'all y'all'll y'all'd've you'd
you'd've you'll you're you've
""".split()


def _contraction_map() -> dict[str, str]:
    out = {}
    for form in _WRITTEN_FORMS:
        for i, ch in enumerate(form):
            if ch == "'":
                out[form[:i] + form[i + 1:]] = form
    # One official entry runs backwards (written form -> apostrophe-less); kept for fidelity.
    out["somebody'd"] = "somebodyd"
    return out


CONTRACTIONS = _contraction_map()


def process_punctuation(text: str) -> str:
    """Step 2 of the official normalisation: punctuation deleted or spaced out, then periods stripped."""
    out = text
    touches_number = _COMMA_IN_NUMBER.search(text) is not None
    for p in PUNCTUATION:
        # the decision looks at the *input* text, as the official code does
        if (p + " " in text or " " + p in text) or touches_number:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD.sub("", out, count=32)  # official: count = re.UNICODE = 32


def process_digit_article(text: str) -> str:
    """Step 3: lower-case, number words -> digits, drop articles, expand apostrophe-less contractions."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(answer: str) -> str:
    """Steps 1-3 of the official VQA answer normalisation (what every prediction goes through)."""
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(answer))


def _normalize_references(answers: Sequence[str], rule: str) -> list[str]:
    answers = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
    if rule == "full":
        return [normalize_answer(a) for a in answers]
    if len(set(answers)) > 1:  # official-vqa: punctuation only, and only when the humans disagree
        return [process_punctuation(a) for a in answers]
    return answers


def soft_accuracy_from_matches(m: np.ndarray | int, n: int = 10) -> np.ndarray:
    """Mean over the n leave-one-out subsets of min(1, matches/3), for m of n humans matching (vectorised)."""
    m = np.asarray(m, dtype=np.float64)
    if n < 1 or np.any(m < 0) or np.any(m > n):
        raise ValueError(f"need 0 <= m <= n and n >= 1 (got m={m.tolist()}, n={n})")
    return (m * np.minimum(1.0, (m - 1) / 3) + (n - m) * np.minimum(1.0, m / 3)) / n


def vqa_accuracy(prediction: str, answers: Sequence[str], rule: str = "official-vqa") -> float:
    """Soft accuracy of one prediction against its human answers (in [0, 1])."""
    if rule not in ("official-vqa", "full"):
        raise ValueError(f"rule must be 'official-vqa' or 'full' (got {rule!r})")
    if len(answers) == 0:
        raise ValueError("answers is empty: a VQA question needs at least one human answer")
    pred = normalize_answer(prediction)
    refs = _normalize_references(answers, rule)
    m = sum(r == pred for r in refs)
    return float(soft_accuracy_from_matches(m, len(refs)))


def score_vqa(predictions: Mapping[Any, str], references: Mapping[Any, Mapping[str, Any]],
              task: str = "vqav2", reference_normalisation: str | None = None) -> dict[str, Any]:
    """VQA soft accuracy (x100) overall, per answer type and per question type.

    Args:
        predictions: question id -> predicted answer (free text; normalised here).
        references: question id -> ``{"answers": [10 human answers], "question_type": str (optional),
            "answer_type": str (optional)}``.
        task: one of ``vqav2, okvqa, vizwiz, textvqa`` (picks the official reference normalisation).
        reference_normalisation: override: ``"official-vqa"`` or ``"full"``.
    Returns:
        ``{"accuracy", "n_questions", "per_answer_type": {...}, "per_question_type": {...},
        "reference_normalisation"}``; accuracies on the 0-100 scale the papers print.
    """
    if task not in REFERENCE_NORMALISATION:
        raise ValueError(f"task must be one of {sorted(REFERENCE_NORMALISATION)} (got {task!r})")
    rule = reference_normalisation or REFERENCE_NORMALISATION[task]
    ids = check_pairs(predictions, references, task, allow_empty_text=True)
    require_keys(references, ["answers"], task)
    per_answer: dict[str, list[float]] = defaultdict(list)
    per_question: dict[str, list[float]] = defaultdict(list)
    accs = []
    for qid in ids:
        ref = references[qid]
        answers = ref["answers"]
        if isinstance(answers, str) or not isinstance(answers, Sequence) or len(answers) == 0:
            raise ValueError(f"{task}: reference {qid!r} 'answers' must be a non-empty list of strings "
                             f"(got {answers!r})")
        answers = [a["answer"] if isinstance(a, Mapping) else a for a in answers]  # VQA v2 annotation dicts
        acc = vqa_accuracy(predictions[qid] or "", answers, rule)
        accs.append(acc)
        if "answer_type" in ref:
            per_answer[str(ref["answer_type"])].append(acc)
        if "question_type" in ref:
            per_question[str(ref["question_type"])].append(acc)
    return {
        "accuracy": 100.0 * float(np.mean(accs)),
        "n_questions": len(accs),
        "per_answer_type": {k: 100.0 * float(np.mean(v)) for k, v in sorted(per_answer.items())},
        "per_question_type": {k: 100.0 * float(np.mean(v)) for k, v in sorted(per_question.items())},
        "reference_normalisation": rule,
    }
