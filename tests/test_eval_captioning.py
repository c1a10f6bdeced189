"""Captioning: our CIDEr-D/BLEU-4/ROUGE-L equal pycocoevalcap's own scorers on the same PTB-tokenised inputs."""

import shutil

import pytest

from setok.eval import captioning
from setok.eval.captioning import FALLBACK_LABEL, PTB_LABEL, fallback_tokenize, score_captions, tokenize

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="PTB tokenizer needs java")

PREDS = {"a": "A dog runs on the grass.", "b": "Two cats sleep on a sofa", "c": "a red car parked in the street"}
REFS = {
    "a": ["A dog is running on grass.", "a brown dog runs across a lawn", "Dog running."],
    "b": ["two cats are sleeping on a sofa", "Cats sleeping on a couch.", "two cats asleep"],
    "c": ["A red car parked on the street.", "a car on a street", "The red car is parked."],
}


@needs_java
def test_matches_pycocoevalcap_scorers():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in REFS.items()})
    res = tok.tokenize({k: [{"caption": PREDS[k]}] for k in REFS})
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    out = score_captions(PREDS, REFS, tokenizer="ptb")
    assert out["CIDEr"] == pytest.approx(100 * cider, rel=1e-12)
    assert out["BLEU-4"] == pytest.approx(100 * bleu[3], rel=1e-12)
    assert out["ROUGE-L"] == pytest.approx(100 * rouge, rel=1e-12)
    assert out["tokenizer"] == PTB_LABEL and out["n_images"] == 3


def test_identical_captions_score_ten_by_hand():
    # CIDEr-D of a candidate equal to every reference: cosine 1 for each n = 1..4, no length penalty, x10 -> 10
    # (1000 on our x100 scale), provided no n-gram occurs in every image's references (idf would be 0).
    refs = {1: ["a small red cube sits on sand"] * 2, 2: ["two green balls roll down a hill"] * 2}
    preds = {1: refs[1][0], 2: refs[2][0]}
    assert score_captions(preds, refs, tokenizer="fallback")["CIDEr"] == pytest.approx(1000.0)


def test_cider_depends_on_the_whole_split():
    # the same caption of image "a" scores differently once another image joins the split (document frequencies)
    two = score_captions({k: PREDS[k] for k in "ab"}, {k: REFS[k] for k in "ab"}, tokenizer="fallback")
    three = score_captions(PREDS, REFS, tokenizer="fallback")
    assert two["CIDEr"] != pytest.approx(three["CIDEr"])


@needs_java
@pytest.mark.parametrize("text", ["A dog is running on grass.", "Don't stop, it's (fine)... ok?",
                                  "Two cats; one dog - and a half-eaten cake!", "The 3.5 m tall man's hat"])
def test_fallback_tokenizer_agrees_with_ptb_on_plain_sentences(text):
    ptb, _ = tokenize({0: [text]}, "ptb")
    assert fallback_tokenize(text) == ptb[0][0]


def test_fallback_is_labelled_when_java_is_absent(monkeypatch):
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    assert score_captions(PREDS, REFS)["tokenizer"] == FALLBACK_LABEL
    with pytest.raises(FileNotFoundError, match="needs a 'java' executable"):
        score_captions(PREDS, REFS, tokenizer="ptb")


def test_bad_inputs():
    with pytest.raises(ValueError, match="1 reference ids have no prediction: 'c'"):
        score_captions({k: PREDS[k] for k in "ab"}, REFS)
    with pytest.raises(ValueError, match="needs the whole split"):
        score_captions({"a": PREDS["a"]}, {"a": REFS["a"]})
    with pytest.raises(ValueError, match="non-empty list of captions"):
        score_captions(PREDS, {**REFS, "c": []})
    with pytest.raises(ValueError, match="empty or non-string reference"):
        score_captions(PREDS, {**REFS, "c": ["ok", " "]})
    with pytest.raises(ValueError, match="1 predictions are empty: 'b'"):
        score_captions({**PREDS, "b": "  "}, REFS)
    with pytest.raises(ValueError, match="tokenizer must be"):
        score_captions(PREDS, REFS, tokenizer="spacy")
