"""POPE, MME and MMBench CircularEval against counts worked by hand (and scikit-learn for POPE)."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from setok.eval.mmbench import MATCHING, score_mmbench
from setok.eval.mme import parse_mme_answer, score_mme
from setok.eval.pope import parse_pope_answer, score_pope


@pytest.mark.parametrize("answer, parsed", [
    ("Yes, there is a dog.", "yes"), ("No, there is not.", "no"), ("There is no dog in the image", "no"),
    ("I do not see one", "no"), ("Yes. No dog though", "yes"),  # only the first sentence counts
    ("No.", "no"), ("no,", "no"), ("Nope", "yes"), ("", "yes"),  # 'Nope' is not the word no; silence is yes
])
def test_pope_parsing(answer, parsed):
    assert parse_pope_answer(answer) == parsed


def test_pope_counts_by_hand_and_sklearn():
    labels = ["yes", "yes", "yes", "no", "no", "no", "yes", "no"]
    answers = ["Yes", "No", "Yes, a cat", "Yes", "No", "not at all", "yes", "yes"]
    splits = ["random"] * 6 + ["popular"] * 2
    refs = {i: {"label": lab, "split": s} for i, (lab, s) in enumerate(zip(labels, splits, strict=True))}
    preds = dict(enumerate(answers))
    out = score_pope(preds, refs)
    rnd = out["per_split"]["random"]
    # random: TP 2 (0, 2), FN 1 (1), FP 1 (3), TN 2 (4, 5)
    assert (rnd["tp"], rnd["fn"], rnd["fp"], rnd["tn"]) == (2, 1, 1, 2)
    assert rnd["accuracy"] == pytest.approx(400 / 6)
    assert rnd["precision"] == pytest.approx(200 / 3) and rnd["recall"] == pytest.approx(200 / 3)
    assert rnd["f1"] == pytest.approx(200 / 3) and rnd["yes_ratio"] == pytest.approx(50.0)
    pop = out["per_split"]["popular"]  # TP 1, FP 1
    assert pop["precision"] == 50.0 and pop["recall"] == 100.0 and pop["yes_ratio"] == 100.0
    assert out["average"]["accuracy"] == pytest.approx((400 / 6 + 50) / 2)
    y_true = np.array(labels[:6]) == "yes"
    y_pred = np.array([parse_pope_answer(a) for a in answers[:6]]) == "yes"
    for name, fn in [("accuracy", accuracy_score), ("precision", precision_score), ("recall", recall_score),
                     ("f1", f1_score)]:
        assert rnd[name] == pytest.approx(100 * fn(y_true, y_pred))


def test_pope_bad_inputs():
    with pytest.raises(ValueError, match="label of 0 must be 'yes' or 'no'"):
        score_pope({0: "yes"}, {0: {"label": "true"}})
    with pytest.raises(ValueError, match="1 prediction ids are not in the references"):
        score_pope({0: "yes", 1: "no"}, {0: {"label": "yes"}})


@pytest.mark.parametrize("answer, parsed", [
    ("Yes", "yes"), ("no.", "no"), ("Yes, there is", "yes"), ("No, it is not", "no"),
    ("The answer is yes", "other"), ("", "other"), ("   yes", "other"),  # official: no strip before [:4]
])
def test_mme_parsing(answer, parsed):
    assert parse_mme_answer(answer) == parsed


def test_mme_acc_plus_by_hand():
    refs, preds = {}, {}
    rows = [  # subtask, image, label, prediction
        ("existence", "e1", "yes", "Yes"), ("existence", "e1", "no", "No"),          # both right
        ("existence", "e2", "yes", "Yes"), ("existence", "e2", "no", "Yes"),         # one right
        ("count", "c1", "yes", "No"), ("count", "c1", "no", "The answer is no"),     # none right
        ("code_reasoning", "k1", "yes", "yes"), ("code_reasoning", "k1", "no", "no"),
    ]
    for i, (task, img, label, pred) in enumerate(rows):
        refs[i] = {"subtask": task, "image": img, "label": label}
        preds[i] = pred
    out = score_mme(preds, refs)
    ex = out["per_subtask"]["existence"]
    assert (ex["acc"], ex["acc_plus"], ex["score"]) == (75.0, 50.0, 125.0)
    assert out["per_subtask"]["count"]["score"] == 0.0
    assert out["perception"] == 125.0 and out["cognition"] == 200.0
    assert out["perception_subtasks"] == 2 and out["perception_complete"] is False


def test_mme_bad_inputs():
    refs = {0: {"subtask": "existence", "image": "e1", "label": "yes"},
            1: {"subtask": "existence", "image": "e1", "label": "no"},
            2: {"subtask": "existence", "image": "e1", "label": "no"}}
    with pytest.raises(ValueError, match=r"exactly 2 questions; 1 images differ \(existence/e1: 3\)"):
        score_mme({0: "yes", 1: "no", 2: "no"}, refs)
    with pytest.raises(ValueError, match="'counting' of 0 is not an MME subtask"):
        score_mme({0: "yes"}, {0: {"subtask": "counting", "image": "x", "label": "yes"}})
    with pytest.raises(ValueError, match="lacks keys"):
        score_mme({0: "yes"}, {0: {"subtask": "count", "label": "yes"}})


def _circular(index: int, options: list[str], answer_text: str, category: str) -> dict:
    """The k rotations of one question, keyed MMBench-style: index + j * 1e6."""
    out = {}
    for j in range(len(options)):
        rotated = options[j:] + options[:j]
        letters = "ABCD"[: len(options)]
        out[index + j * 1_000_000] = {"options": dict(zip(letters, rotated, strict=True)),
                                      "answer": letters[rotated.index(answer_text)], "category": category}
    return out


def test_mmbench_circular_by_hand():
    refs = {**_circular(1, ["cat", "dog", "cow", "pig"], "dog", "animals"),
            **_circular(2, ["red", "green"], "green", "colours")}
    preds = {}
    for i, r in refs.items():
        right = r["answer"]
        preds[i] = f"({right}) because" if i % 1_000_000 == 1 else right
    preds[1_000_002] = "no idea"  # second rotation of question 2: unmatched -> wrong
    out = score_mmbench(preds, refs)
    assert out["circular_accuracy"] == 50.0           # question 1 right in all 4 passes, question 2 fails one
    assert out["vanilla_accuracy"] == pytest.approx(500 / 6)
    assert out["per_category"] == {"animals": 100.0, "colours": 0.0}
    assert out["n_questions"] == 2 and out["n_passes"] == 6 and out["n_unmatched"] == 1
    assert out["matching"] == MATCHING and "exact-match" in MATCHING
    # answering by the option text works too: every pass of question 1 says "dog"
    preds_text = {**preds, **{i: "It is a dog." for i in refs if i % 1_000_000 == 1}}
    assert score_mmbench(preds_text, refs)["circular_accuracy"] == 50.0


def test_mmbench_bad_inputs():
    refs = _circular(1, ["cat", "dog", "cow"], "dog", "animals")
    partial = {k: v for k, v in refs.items() if k != 2_000_001}
    with pytest.raises(ValueError, match="one pass per option; 1 questions differ \\(1: 2 passes for 3 options\\)"):
        score_mmbench({k: "A" for k in partial}, partial)
    assert score_mmbench({k: "A" for k in partial}, partial, require_full_circle=False)["n_passes"] == 2
    with pytest.raises(ValueError, match="answer 'E' of 1 is not one of its options"):
        score_mmbench({1: "A"}, {1: {"answer": "E", "options": {"A": "x", "B": "y"}}}, require_full_circle=False)
    with pytest.raises(ValueError, match="no 'group' and its id is not a numeric"):
        score_mmbench({"q": "A"}, {"q": {"answer": "A", "options": {"A": "x"}}})
