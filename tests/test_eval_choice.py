"""GQA exact match, VSR and IconQA accuracy, and the documented option-matching rules."""

import pytest

from setok.eval.choice import match_option, parse_yes_no_first, score_gqa, score_iconqa, score_vsr

OPTIONS = {"A": "red", "B": "dark red", "C": "blue"}


@pytest.mark.parametrize("answer, letter", [
    ("B", "B"), ("(C)", "C"), ("A.", "A"), ("B)", "B"), ("C:", "C"),   # rule 1: a dressed letter
    ("B) dark red", "B"), ("(A) red", "A"), ("C. blue it is", "C"),     # rule 2: a marked letter first
    ("The answer is C.", "C"), ("Answer: b", "B"), ("I pick option A", "A"),
    ("Dark red!", "B"), ("the blue", "C"),                              # rule 3: the option's text
    ("It is red.", "A"), ("It is dark red", "B"),                       # rule 4: contained, nested dropped
    ("A dog is blue", "C"),                                             # a bare 'A' in a sentence is no letter
    ("red or blue", None), ("green", None), ("", None), ("D", None),    # undecided / not an option
])
def test_match_option_rules(answer, letter):
    assert match_option(answer, OPTIONS) == letter


def test_gqa_exact_match_by_hand():
    refs = {"q1": {"answer": "yes", "question_type": "verify"}, "q2": {"answer": "left", "question_type": "rel"},
            "q3": {"answer": "table", "question_type": "rel"}}
    preds = {"q1": "Yes.", "q2": "on the left", "q3": "table"}
    out = score_gqa(preds, refs)
    assert out["accuracy"] == pytest.approx(200 / 3)  # q1 right after light normalisation, q2 wrong, q3 right
    assert out["per_question_type"] == pytest.approx({"rel": 50.0, "verify": 100.0})
    assert score_gqa(preds, refs, normalize="none")["accuracy"] == pytest.approx(100 / 3)


def test_vsr_by_hand():
    assert parse_yes_no_first("No, the cat is not left of the dog") is False
    assert parse_yes_no_first("True.") is True and parse_yes_no_first("maybe") is None
    refs = {1: {"label": 1, "relation": "left of"}, 2: {"label": 0, "relation": "left of"},
            3: {"label": "true", "relation": "on"}, 4: {"label": False, "relation": "on"}}
    preds = {1: "Yes, it is.", 2: "yes", 3: "I cannot tell", 4: "That is incorrect."}
    out = score_vsr(preds, refs)
    assert out["accuracy"] == 50.0 and out["n_unparsed"] == 1
    assert out["per_relation"] == {"left of": 50.0, "on": 50.0}


def test_iconqa_by_hand():
    refs = {
        "m1": {"answer": 1, "choices": ["circle", "square", "triangle"], "ques_type": "choose_txt"},
        "m2": {"answer": "triangle", "choices": ["circle", "square", "triangle"], "ques_type": "choose_txt"},
        "m3": {"answer": 0, "choices": ["circle", "square"], "ques_type": "choose_txt"},
        "f1": {"answer": "12", "ques_type": "fill_in_blank"},
        "f2": {"answer": "7", "ques_type": "fill_in_blank"},
    }
    preds = {"m1": "B", "m2": "The answer is triangle.", "m3": "not sure", "f1": "12.0", "f2": "8"}
    out = score_iconqa(preds, refs)
    assert out["accuracy"] == pytest.approx(60.0) and out["n_unmatched"] == 1
    assert out["per_ques_type"] == pytest.approx({"choose_txt": 200 / 3, "fill_in_blank": 50.0})


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 reference ids have no prediction"):
        score_gqa({"a": "x"}, {"a": {"answer": "x"}, "b": {"answer": "y"}, "c": {"answer": "z"}})
    with pytest.raises(ValueError, match="normalize must be"):
        score_gqa({"a": "x"}, {"a": {"answer": "x"}}, normalize="loose")
    with pytest.raises(ValueError, match=r"lacks keys \['answer'\]"):
        score_gqa({"a": "x"}, {"a": {"label": "x"}})
    with pytest.raises(ValueError, match="label of 1 must be"):
        score_vsr({1: "yes"}, {1: {"label": "maybe"}})
    with pytest.raises(ValueError, match="outside its 2 choices"):
        score_iconqa({1: "A"}, {1: {"answer": 2, "choices": ["x", "y"]}})
    with pytest.raises(ValueError, match="not exactly one of its choices"):
        score_iconqa({1: "A"}, {1: {"answer": "z", "choices": ["x", "y"]}})
    with pytest.raises(ValueError, match="predictions are empty"):
        score_vsr({}, {1: {"label": 1}})
