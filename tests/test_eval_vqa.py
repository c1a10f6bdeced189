"""VQA soft accuracy and answer normalisation, against hand-worked cases and a naive leave-one-out loop."""

import itertools

import numpy as np
import pytest

from setok.eval.vqa import (
    CONTRACTIONS,
    normalize_answer,
    process_punctuation,
    score_vqa,
    soft_accuracy_from_matches,
    vqa_accuracy,
)


@pytest.mark.parametrize("raw, expected", [
    ("two", "2"), ("Two", "2"), ("none", "0"), ("ten", "10"),   # number words -> digits
    ("a dog", "dog"), ("The Dog", "dog"), ("an apple", "apple"),  # articles dropped
    ("dont", "don't"), ("don't", "don't"), ("couldnt've", "couldn't've"), ("couldn'tve", "couldn't've"),
    ("lets", "lets"), ("its", "its"),                             # real words are not contractions
    ("yes.", "yes"), ("Yes!", "yes"), ("yes?", "yes"),            # punctuation
    ("3.5", "3.5"), ("1,000", "1000"),                            # a period before a digit stays; 1,000 joins
    ("hot-dog", "hot dog"), ("left - right", "left right"),       # '-' spaced out unless it touches a space
    ("  red\tand\nblue ", "red and blue"),
])
def test_normalisation_corner_cases(raw, expected):
    assert normalize_answer(raw) == expected


def test_contraction_map_derivation():
    # two-apostrophe forms get both one-apostrophe-less spellings, as in the official map
    assert CONTRACTIONS["hadnt've"] == CONTRACTIONS["hadn'tve"] == "hadn't've"
    assert CONTRACTIONS["twas"] == "'twas"
    assert "couldntve" not in CONTRACTIONS  # neither apostrophe: not in the official map either


def test_period_strip_is_capped_at_32():
    # official code passes re.UNICODE (= 32) as the count of period substitutions
    text = "." * 40
    assert process_punctuation(text) == "." * 8


def naive_soft_accuracy(pred: str, answers: list[str]) -> float:
    """The 10-choose-9 definition spelled out: average over subsets that leave one human out."""
    accs = []
    for subset in itertools.combinations(range(len(answers)), len(answers) - 1):
        matches = sum(answers[i] == pred for i in subset)
        accs.append(min(1.0, matches / 3))
    return sum(accs) / len(accs)


@pytest.mark.parametrize("m", range(11))
def test_soft_accuracy_matches_naive_loop(m):
    answers = ["yes"] * m + ["no"] * (10 - m)
    expected_by_hand = [0.0, 0.3, 0.6, 0.9] + [1.0] * 7
    naive = naive_soft_accuracy("yes", answers)
    assert naive == pytest.approx(expected_by_hand[m])
    assert float(soft_accuracy_from_matches(m)) == pytest.approx(naive)
    assert vqa_accuracy("yes", answers) == pytest.approx(naive)


def test_soft_accuracy_other_answer_counts():
    for n in (1, 3, 5, 7):
        for m in range(n + 1):
            answers = ["a1"] * m + ["zz"] * (n - m)
            assert float(soft_accuracy_from_matches(m, n)) == pytest.approx(naive_soft_accuracy("a1", answers))


def test_prediction_normalised_against_unanimous_reference():
    assert vqa_accuracy("Two.", ["2"] * 10) == 1.0
    assert vqa_accuracy("a dog", ["dog"] * 3 + ["cat"] * 7) == pytest.approx(0.9)


def test_official_rule_leaves_unanimous_references_alone():
    # official VQA code: references are only punctuation-processed, and only when humans disagree; the released
    # annotations are pre-normalised, so an un-normalised unanimous "a dog" never matches the normalised "dog"
    assert vqa_accuracy("a dog", ["a dog"] * 10, rule="official-vqa") == 0.0
    assert vqa_accuracy("a dog", ["a dog"] * 10, rule="full") == 1.0
    # disagreeing references get punctuation processing only (not digits/articles): "yes." -> "yes" ...
    assert vqa_accuracy("yes", ["yes."] * 3 + ["no"] * 7, rule="official-vqa") == pytest.approx(0.9)
    # ... but "yes!" -> "yes " (the '!' becomes a space that nothing strips), which never matches
    assert vqa_accuracy("yes", ["yes!"] * 3 + ["no"] * 7, rule="official-vqa") == 0.0
    assert vqa_accuracy("yes", ["yes!"] * 3 + ["no"] * 7, rule="full") == pytest.approx(0.9)
    assert vqa_accuracy("2", ["two"] * 3 + ["no"] * 7, rule="official-vqa") == 0.0


def test_score_vqa_breakdown_by_hand():
    refs = {
        1: {"answers": ["2"] * 10, "question_type": "how many", "answer_type": "number"},
        2: {"answers": ["yes"] * 2 + ["no"] * 8, "question_type": "is the", "answer_type": "yes/no"},
        3: {"answers": [{"answer": "no", "answer_id": i} for i in range(10)], "question_type": "is the",
            "answer_type": "yes/no"},
    }
    preds = {1: "two", 2: "Yes", 3: ""}  # 1.0, 0.6, 0.0
    out = score_vqa(preds, refs, task="vqav2")
    assert out["accuracy"] == pytest.approx(100 * 1.6 / 3)
    assert out["per_answer_type"] == pytest.approx({"number": 100.0, "yes/no": 30.0})
    assert out["per_question_type"] == pytest.approx({"how many": 100.0, "is the": 30.0})
    assert out["n_questions"] == 3 and out["reference_normalisation"] == "official-vqa"
    assert score_vqa(preds, refs, task="textvqa")["reference_normalisation"] == "full"


def test_vectorised_matches_naive_on_random_questions():
    rng = np.random.default_rng(0)
    vocab = ["yes", "no", "2", "red", "dog"]
    for _ in range(50):
        answers = list(rng.choice(vocab, size=10))
        pred = str(rng.choice(vocab))
        assert vqa_accuracy(pred, answers) == pytest.approx(naive_soft_accuracy(pred, answers))


def test_bad_inputs():
    refs = {1: {"answers": ["yes"] * 10}, 2: {"answers": ["no"] * 10}}
    with pytest.raises(ValueError, match=r"1 reference ids have no prediction: 2"):
        score_vqa({1: "yes"}, refs)
    with pytest.raises(ValueError, match=r"1 prediction ids are not in the references: 3"):
        score_vqa({1: "yes", 2: "no", 3: "x"}, refs)
    with pytest.raises(ValueError, match="predictions are empty"):
        score_vqa({}, refs)
    with pytest.raises(ValueError, match="references are empty"):
        score_vqa({1: "yes"}, {})
    with pytest.raises(ValueError, match="must be a string"):
        score_vqa({1: 3, 2: "no"}, refs)
    with pytest.raises(ValueError, match="non-empty list"):
        score_vqa({1: "yes"}, {1: {"answers": []}})
    with pytest.raises(ValueError, match="non-empty list"):
        score_vqa({1: "yes"}, {1: {"answers": "yes"}})
    with pytest.raises(ValueError, match=r"lacks keys \['answers'\]"):
        score_vqa({1: "yes"}, {1: {"answer": "yes"}})
    with pytest.raises(ValueError, match="task must be one of"):
        score_vqa({1: "yes"}, refs, task="vqa3")
    with pytest.raises(ValueError, match="rule must be"):
        vqa_accuracy("yes", ["yes"], rule="loose")
    with pytest.raises(ValueError, match="0 <= m <= n"):
        soft_accuracy_from_matches(11, 10)
