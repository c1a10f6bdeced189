"""Whole-file problems: an unparsable or wrongly shaped file raises in both policies, naming the file."""

import re

import pytest
from _loader_fixtures import build_gqa, build_ip2p, build_llava, build_refcoco, build_vqa

from setok.data.loaders import (
    MalformedRecordError,
    load_gqa,
    load_instructpix2pix,
    load_llava_instruct,
    load_refcoco,
    load_vqa_v2,
)


def _llava(tmp):
    p = build_llava(tmp)
    return p["json"], lambda: load_llava_instruct(p["json"], p["images"], on_error="skip")


def _vqa(tmp):
    p = build_vqa(tmp)
    return p["annotations"], lambda: load_vqa_v2(p["questions"], p["annotations"], p["images"], on_error="skip")


def _gqa(tmp):
    p = build_gqa(tmp)
    return p["questions"], lambda: load_gqa(p["questions"], p["images"], on_error="skip")


def _refcoco(tmp):
    p = build_refcoco(tmp)
    return p["root"] / "instances.json", lambda: load_refcoco(p["root"], on_error="skip")


def _ip2p(tmp):
    root = build_ip2p(tmp)
    return root / "seeds.json", lambda: load_instructpix2pix(root, on_error="skip")


@pytest.mark.parametrize("build", [_llava, _vqa, _gqa, _refcoco, _ip2p])
def test_truncated_json_raises_naming_the_file(tmp_path, build):
    path, load = build(tmp_path)
    path.write_text(path.read_text()[:25])
    with pytest.raises(MalformedRecordError, match=re.escape(f"{path}: record <file>: bad_json: line 1")):
        load()


@pytest.mark.parametrize("build", [_llava, _vqa, _gqa, _refcoco])
def test_wrong_top_level_type_raises(tmp_path, build):
    path, load = build(tmp_path)
    path.write_text("[]" if build in (_vqa, _gqa, _refcoco) else "{}")
    with pytest.raises(MalformedRecordError, match=re.escape(f"{path}: record <file>: missing_field: expected")):
        load()


def test_admit_entry_reports_missing_fields_and_duplicates(tmp_path):
    from setok.data.loaders.base import LoaderConfig, admit_entry, new_report

    report = new_report("unit", LoaderConfig(on_error="skip"))
    seen: set = set()
    path = tmp_path / "x.json"
    assert admit_entry({"id": 7, "a": 1}, 0, "items", ("a",), seen, report, path, "item") == 7
    assert admit_entry({"id": 7, "a": 1}, 1, "items", ("a",), seen, report, path, "item") is None
    assert admit_entry({"b": 1}, 2, "items", ("a",), seen, report, path, "item") is None
    assert admit_entry("junk", 3, "items", ("a",), seen, report, path, "item") is None
    assert report.counts == {"duplicate_id": 1, "missing_field": 2} and seen == {7}
    strict = new_report("unit", LoaderConfig(on_error="raise"))
    with pytest.raises(ValueError, match=r"items\[0\].*item needs a"):
        admit_entry({}, 0, "items", ("a",), set(), strict, path, "item")
