"""LLaVA-Pretrain 558K / LLaVA-665K conversation loaders on fixtures in the real format (SPEC §6)."""

import re

import pytest
from _loader_fixtures import LLAVA_FAULTS, build_llava

from setok.data.loaders import MalformedRecordError, load_llava_instruct, load_llava_pretrain


def test_reads_image_and_text_only_records(tmp_path):
    p = build_llava(tmp_path, name="llava_v1_5_mix665k.json")
    recs = load_llava_instruct(p["json"], p["images"])
    assert [r.id for r in recs] == ["000000001", "000000002", "sharegpt_1"]
    first, multi, text = recs
    assert first.image == "00000/000000001.jpg" and first.image_path == p["images"] / "00000/000000001.jpg"
    assert [(t.role, t.value) for t in first.conversations] == [
        ("human", "Give a brief description of the image.\n<image>"),
        ("gpt", "a red square on a grey field"),
    ]
    assert len(multi.conversations) == 4 and multi.conversations[3].value == "One."
    assert not text.has_image and text.image_path is None
    assert first.open_image().size == (24, 16)
    with pytest.raises(FileNotFoundError, match="text-only"):
        text.open_image()


@pytest.mark.parametrize("fault", sorted(LLAVA_FAULTS))
def test_each_fault_raises_naming_file_and_record(tmp_path, fault):
    p = build_llava(tmp_path, (fault,))
    kind, rid = LLAVA_FAULTS[fault]
    with pytest.raises(MalformedRecordError, match=re.escape(f"{p['json']}: record {rid}: {kind}")):
        load_llava_pretrain(p["json"], p["images"])


def test_skip_mode_counts(tmp_path):
    p = build_llava(tmp_path, tuple(LLAVA_FAULTS))
    recs = load_llava_pretrain(p["json"], p["images"], on_error="skip")
    assert len(recs) == 3
    assert recs.report.counts == {
        "missing_image": 1,
        "missing_field": 1,
        "empty_text": 1,
        "bad_conversation": 3,
    }
    assert [e[1] for e in recs.report.examples["bad_conversation"]] == ["x_roles", "x_notoken", "x_texttoken"]
    assert "llava_pretrain: loaded 3, skipped 6" in recs.report.summary()


def test_top_level_must_be_a_list(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"id": 1}')
    with pytest.raises(MalformedRecordError, match="expected a list of records, got dict"):
        load_llava_pretrain(path)


def test_setokim_target_image_extension(tmp_path):
    """Generation / editing turns: ``target_image`` + one <image> in a gpt turn (absent from real files)."""
    p = build_llava(tmp_path)
    data = [
        {
            "id": "e1",
            "image": "00000/000000001.jpg",
            "target_image": "00000/000000002.jpg",
            "task": "edit",
            "conversations": [{"from": "human", "value": "<image>\nmake it blue"}, {"from": "gpt", "value": "<image>"}],
        },
        {
            "id": "t1",
            "target_image": "00000/000000002.jpg",
            "conversations": [{"from": "human", "value": "Draw a circle."}, {"from": "gpt", "value": "<image>"}],
        },
        {"id": "bad", "conversations": [{"from": "human", "value": "Draw."}, {"from": "gpt", "value": "<image>"}]},
        {
            "id": "gone",
            "target_image": "00000/404.jpg",
            "conversations": [{"from": "human", "value": "Draw."}, {"from": "gpt", "value": "<image>"}],
        },
    ]
    path = p["json"].with_name("mix.json")
    path.write_text(__import__("json").dumps(data))
    recs = load_llava_instruct(path, p["images"], on_error="skip")
    assert [r.id for r in recs] == ["e1", "t1"]
    assert recs[0].extra == {"task": "edit"} and recs[0].open_target().size == (16, 24)
    assert recs[1].image is None and recs[1].target_path == p["images"] / "00000/000000002.jpg"
    assert recs.report.counts == {"bad_conversation": 1, "missing_image": 1}
    with pytest.raises(MalformedRecordError, match=re.escape(f"{path}: record bad: bad_conversation: gpt turns")):
        load_llava_instruct(path, p["images"])
