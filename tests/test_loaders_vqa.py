"""VQA v2, GQA and POPE loaders on fixtures in the real formats (SPEC §5.1, §6)."""

import re

import pytest
from _loader_fixtures import GQA_FAULTS, POPE_FAULTS, VQA_FAULTS, build_gqa, build_pope, build_vqa

from setok.data.loaders import MalformedRecordError, load_gqa, load_pope, load_vqa_v2


def test_vqa_v2_values(tmp_path):
    p = build_vqa(tmp_path)
    recs = load_vqa_v2(p["questions"], p["annotations"], p["images"])
    assert [r.question_id for r in recs] == [10, 20, 30]
    q = recs[0]
    assert q.question == "What colour is the square?" and q.image_id == 1
    assert q.answers == ["red"] * 8 + ["dark red", "orange"]
    assert (q.multiple_choice_answer, q.answer_type, q.question_type) == ("red", "other", "what color is the")
    assert q.image_path == p["images"] / "COCO_val2014_000000000001.jpg"
    assert recs[1].open_image().size == (20, 20)


def test_vqa_v2_test_split_without_annotations(tmp_path):
    p = build_vqa(tmp_path)
    recs = load_vqa_v2(p["questions"])
    assert len(recs) == 3 and all(r.answers == [] and r.image_path is None for r in recs)


@pytest.mark.parametrize("fault", sorted(VQA_FAULTS))
def test_vqa_each_fault_raises(tmp_path, fault):
    p = build_vqa(tmp_path, (fault,))
    which, kind, rid = VQA_FAULTS[fault]
    with pytest.raises(MalformedRecordError, match=re.escape(f"{p[which]}: record {rid}: {kind}")):
        load_vqa_v2(p["questions"], p["annotations"], p["images"])


def test_vqa_skip_counts(tmp_path):
    p = build_vqa(tmp_path, tuple(VQA_FAULTS))
    recs = load_vqa_v2(p["questions"], p["annotations"], p["images"], on_error="skip")
    assert [r.question_id for r in recs] == [10, 20, 30]
    assert recs.report.counts == {
        "duplicate_id": 1,
        "empty_text": 1,
        "bad_answers": 1,
        "unknown_id": 2,
        "missing_image": 1,
        "missing_field": 1,
    }
    assert sorted(e[1] for e in recs.report.examples["unknown_id"]) == ["60", "70"]


def test_gqa_values(tmp_path):
    p = build_gqa(tmp_path)
    recs = load_gqa(p["questions"], p["images"])
    assert [(r.question_id, r.image_id, r.answer) for r in recs] == [
        ("201", "n161313", "red"),
        ("202", "n161313", "no"),
    ]
    assert recs[0].full_answer == "The square is red." and recs[1].types["structural"] == "verify"
    assert recs[0].image_path == p["images"] / "n161313.jpg"


@pytest.mark.parametrize("fault", sorted(GQA_FAULTS))
def test_gqa_each_fault_raises(tmp_path, fault):
    p = build_gqa(tmp_path, (fault,))
    kind, rid = GQA_FAULTS[fault]
    with pytest.raises(MalformedRecordError, match=re.escape(f"{p['questions']}: record {rid}: {kind}")):
        load_gqa(p["questions"], p["images"])


def test_gqa_skip_counts(tmp_path):
    p = build_gqa(tmp_path, tuple(GQA_FAULTS))
    recs = load_gqa(p["questions"], p["images"], on_error="skip")
    assert len(recs) == 2
    assert recs.report.counts == {"missing_field": 1, "empty_text": 1, "missing_image": 1}


def test_pope_values(tmp_path):
    p = build_pope(tmp_path, variant="adversarial")
    recs = load_pope(p["file"], p["images"])
    assert [(r.question_id, r.label) for r in recs] == [(1, "yes"), (2, "no")]  # "No" normalised
    assert recs[0].question == "Is there a snowboard in the image?"
    assert recs[0].image_path == p["images"] / "COCO_val2014_000000310196.jpg"


@pytest.mark.parametrize("fault", sorted(POPE_FAULTS))
def test_pope_each_fault_raises(tmp_path, fault):
    p = build_pope(tmp_path, (fault,))
    kind, rid = POPE_FAULTS[fault]
    with pytest.raises(MalformedRecordError, match=re.escape(f"{p['file']}: record {rid}: {kind}")):
        load_pope(p["file"], p["images"])


def test_pope_skip_counts(tmp_path):
    p = build_pope(tmp_path, tuple(POPE_FAULTS))
    recs = load_pope(p["file"], p["images"], on_error="skip")
    assert len(recs) == 2
    assert recs.report.counts == {
        "duplicate_id": 1,
        "bad_json": 1,
        "missing_field": 1,
        "empty_text": 1,
        "bad_answers": 1,
        "missing_image": 1,
    }


def test_skip_summary_is_logged(tmp_path, caplog):
    p = build_pope(tmp_path, ("maybe",))
    with caplog.at_level("WARNING", logger="setok.data.loaders"):
        recs = load_pope(p["file"], p["images"], on_error="skip")
    assert len(recs) == 2
    assert "pope: loaded 2, skipped 1" in caplog.text and "bad_answers: 1 (first ids: 7" in caplog.text
