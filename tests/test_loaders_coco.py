"""COCO 2017 captions / instances loaders on hand-made fixtures in the real format (SPEC §6)."""

import re

import numpy as np
import pytest
from _loader_fixtures import COCO_FAULTS, build_coco, crowd_mask, rle_mask

from setok.data.loaders import (
    LoaderConfig,
    MalformedRecordError,
    coco_paths,
    load_coco_captions,
    load_coco_instances,
)


def test_captions_read_values(tmp_path):
    p = build_coco(tmp_path)
    assert coco_paths(tmp_path, "val2017") == p
    recs = load_coco_captions(p["captions"], p["images"])
    by_id = {r.image_id: r for r in recs}
    assert sorted(by_id) == [1, 2, 3]
    assert by_id[1].captions == ["A red square.", "Two shapes on grey."]
    assert by_id[1].caption_ids == [11, 12]
    assert (by_id[1].width, by_id[1].height) == (40, 30)
    img = by_id[1].open_image()
    assert img.size == (40, 30) and img.mode == "RGB"
    assert np.abs(np.asarray(img, dtype=int)[15, 20] - [220, 20, 20]).max() < 12  # JPEG of flat red
    assert recs.report.skipped == 0 and recs.report.loaded == 3


def test_instances_masks_match_pycocotools_and_hand_counts(tmp_path):
    p = build_coco(tmp_path)
    recs = load_coco_instances(p["instances"], p["images"])
    assert recs.meta["categories"] == {1: "square", 2: "circle"}
    anns = {a.id: a for r in recs for a in r.annotations}
    assert sorted(anns) == [101, 102, 103, 104]
    assert anns[102].category == "circle" and anns[102].bbox == [25.0, 20.0, 11.0, 6.0]
    np.testing.assert_array_equal(anns[102].mask(), rle_mask())  # compressed RLE round trip
    np.testing.assert_array_equal(anns[103].mask(), crowd_mask())  # uncompressed RLE counted by hand
    assert anns[103].iscrowd == 1
    square = anns[101].mask()  # polygon 10x10 square at (5, 5)
    assert square.shape == (30, 40)
    ys, xs = np.nonzero(square)
    assert 5 <= xs.min() and xs.max() <= 15 and 5 <= ys.min() and ys.max() <= 15
    assert abs(int(square.sum()) - 100) <= 21  # rasterised area within one boundary row/column


@pytest.mark.parametrize("fault", sorted(COCO_FAULTS))
def test_each_fault_raises_naming_file_and_record(tmp_path, fault):
    p = build_coco(tmp_path, (fault,))
    which, kind, rid = COCO_FAULTS[fault]
    files = ["captions", "instances"] if which == "both" else [which]
    for name in files:
        loader = load_coco_captions if name == "captions" else load_coco_instances
        pattern = re.escape(f"{p[name]}: record {rid}: {kind}")
        with pytest.raises(MalformedRecordError, match=pattern):
            loader(p[name], p["images"])


def test_skip_mode_counts_every_fault(tmp_path):
    p = build_coco(tmp_path, tuple(COCO_FAULTS))
    caps = load_coco_captions(p["captions"], p["images"], on_error="skip")
    assert caps.report.counts == {
        "missing_image": 1,
        "unknown_id": 1,
        "empty_text": 1,
        "missing_field": 1,
        "duplicate_id": 2,
    }
    assert [r.image_id for r in caps] == [1, 2]  # image 3 (file missing) is gone with its caption
    assert caps[1].captions == ["A blue circle."]
    inst = load_coco_instances(p["instances"], p["images"], config=LoaderConfig(on_error="skip"))
    assert inst.report.counts == {
        "missing_image": 1,
        "out_of_bounds": 3,
        "bad_geometry": 2,
        "unknown_id": 1,
        "missing_field": 1,
        "duplicate_id": 2,
    }
    assert [e[1] for e in inst.report.examples["out_of_bounds"]] == [
        "annotation 105",
        "annotation 106",
        "annotation 107",
    ]
    assert sorted(a.id for r in inst for a in r.annotations) == [101, 102, 103]
    text = inst.report.summary()
    assert "loaded 2, skipped 10" in text and "out_of_bounds: 3" in text and "annotation 105" in text


def test_bad_json_raises_even_when_skipping(tmp_path):
    p = build_coco(tmp_path)
    p["captions"].write_text('{"images": [')
    with pytest.raises(MalformedRecordError, match=re.escape(f"{p['captions']}: record <file>: bad_json")):
        load_coco_captions(p["captions"], p["images"], on_error="skip")


def test_missing_file_and_bad_policy(tmp_path):
    with pytest.raises(FileNotFoundError, match="coco_captions file not found"):
        load_coco_captions(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="on_error must be one of"):
        LoaderConfig(on_error="ignore")
    with pytest.raises(ValueError, match="bbox_tolerance must be >= 0"):
        LoaderConfig(bbox_tolerance=-1)


def test_check_images_off_keeps_records_with_absent_files(tmp_path):
    p = build_coco(tmp_path, ("missing_image",))
    recs = load_coco_captions(p["captions"], p["images"], config=LoaderConfig(check_images=False))
    assert len(recs) == 3
    with pytest.raises(FileNotFoundError, match="000000000003.jpg"):
        recs[2].open_image()


def test_profiles_choose_the_policy():
    from setok.config import load_profile
    from setok.data.loaders import loader_config

    assert loader_config(load_profile("mini")).on_error == "raise"
    assert loader_config(load_profile("paper")).on_error == "skip"
    assert loader_config(load_profile("paper", ["loaders.on_error=raise"])).on_error == "raise"
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['strict'\] for LoaderConfig in loaders"):
        loader_config(load_profile("mini", ["loaders.strict=1"]))
    with pytest.raises(ValueError, match="on_error must be one of"):
        loader_config(load_profile("mini", ["loaders.on_error=ignore"]))
