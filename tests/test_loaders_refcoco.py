"""RefCOCO refs(unc).p + instances.json loader on fixtures in the real format (SPEC §5.1, §6)."""

import pickle
import re

import numpy as np
import pytest
from _loader_fixtures import REF_FAULTS, build_refcoco, crowd_mask

from setok.data.loaders import MalformedRecordError, load_refcoco


def test_values_and_split_filter(tmp_path):
    p = build_refcoco(tmp_path)
    recs = load_refcoco(p["root"], "unc", image_dir=p["images"])
    assert [(r.ref_id, r.ann_id, r.split) for r in recs] == [(1, 101, "train"), (2, 103, "testA")]
    assert recs[0].sentences == ["the red square", "left square"] and recs[0].raw[0] == "The red square"
    assert recs[0].sent_ids == [1, 2] and recs[0].bbox == [5.0, 5.0, 10.0, 10.0]
    np.testing.assert_array_equal(recs[1].mask(), crowd_mask())
    assert recs[1].image_path == p["images"] / "COCO_train2014_000000000002.jpg"
    assert recs[1].open_image().size == (32, 32)
    test_a = load_refcoco(p["root"], "unc", split="testA")
    assert [r.ref_id for r in test_a] == [2]


def test_umd_and_latin1_pickles(tmp_path):
    p = build_refcoco(tmp_path, split_by="umd")
    assert len(load_refcoco(p["root"], "umd")) == 2
    with pytest.raises(ValueError, match="split_by must be one of"):
        load_refcoco(p["root"], "berkeley")
    with pytest.raises(FileNotFoundError, match=re.escape("refs(google).p")):
        load_refcoco(p["root"], "google")
    (p["root"] / "refs(unc).p").write_bytes(b"not a pickle")
    with pytest.raises(MalformedRecordError, match="bad_json: not a pickle"):
        load_refcoco(p["root"], "unc")


@pytest.mark.parametrize("fault", sorted(REF_FAULTS))
def test_each_fault_raises(tmp_path, fault):
    p = build_refcoco(tmp_path, (fault,))
    kind, rid = REF_FAULTS[fault]
    file = p["root"] / ("instances.json" if kind == "out_of_bounds" else "refs(unc).p")
    with pytest.raises(MalformedRecordError, match=re.escape(f"{file}: record {rid}: {kind}")):
        load_refcoco(p["root"], image_dir=p["images"])


def test_skip_counts(tmp_path):
    p = build_refcoco(tmp_path, tuple(REF_FAULTS))
    recs = load_refcoco(p["root"], image_dir=p["images"], on_error="skip")
    assert [r.ref_id for r in recs] == [1, 2]
    assert recs.report.counts == {
        "duplicate_id": 1,
        "unknown_id": 2,
        "empty_text": 1,
        "out_of_bounds": 1,
        "missing_field": 1,
        "missing_image": 1,
    }
    refs = pickle.loads((p["root"] / "refs(unc).p").read_bytes())
    assert len(refs) == len(recs) + recs.report.skipped  # nothing lost silently
