"""CC3M/LAION-style image-text pairs: plain folder and webdataset tar shards (SPEC §6)."""

import re

import numpy as np
import pytest
from _loader_fixtures import IT_FAULTS, build_image_text_folder, build_image_text_shard

from setok.data.loaders import LoadReport, MalformedRecordError, iter_image_text, load_image_text
from setok.data.loaders.imagetext import split_key


def test_split_key_follows_webdataset():
    assert split_key("00000/000000012.jpg") == ("00000/000000012", "jpg")
    assert split_key("a.b.JSON") == ("a", "b.json")


@pytest.mark.parametrize("layout", ["folder", "shard", "shard_dir"])
def test_values(tmp_path, layout):
    if layout == "folder":
        source = build_image_text_folder(tmp_path / "cc3m")
    elif layout == "shard":
        source = build_image_text_shard(tmp_path / "00000.tar")
    else:
        build_image_text_shard(tmp_path / "shards" / "00000.tar")
        source = tmp_path / "shards"
    recs = load_image_text(source)
    assert [(r.key, r.caption) for r in recs] == [
        ("00000/000000001", "a red square"),
        ("00000/000000002", "a blue circle"),
    ]
    assert recs[0].meta["status"] == "success" and recs[1].meta["width"] == 12
    pixels = np.asarray(recs[1].open_image())
    assert pixels.shape == (8, 12, 3) and tuple(pixels[0, 0]) == (20, 20, 220)  # PNG: exact


@pytest.mark.parametrize("layout", ["folder", "shard"])
@pytest.mark.parametrize("fault", sorted(IT_FAULTS))
def test_each_fault_raises(tmp_path, fault, layout):
    kind, rid = IT_FAULTS[fault]
    if layout == "folder":
        source = build_image_text_folder(tmp_path / "cc3m", (fault,))
    else:
        source = build_image_text_shard(tmp_path / "00000.tar", (fault,))
    with pytest.raises(MalformedRecordError, match=re.escape(f"{source}: record {rid}: {kind}")):
        load_image_text(source)


def test_skip_counts_over_two_shards(tmp_path):
    a = build_image_text_shard(tmp_path / "00000.tar", tuple(IT_FAULTS))
    b = build_image_text_shard(tmp_path / "00001.tar", ("caption_only",))
    recs = load_image_text([a, b], on_error="skip")
    assert len(recs) == 4 and {r.shard for r in recs} == {a, b}
    assert recs.report.counts == {"missing_image": 2, "missing_field": 1, "empty_text": 1, "bad_json": 1}


def test_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="image_text source not found"):
        load_image_text(tmp_path / "none")


def test_streaming_over_shards_counts_like_the_list_loader(tmp_path, caplog):
    a = build_image_text_shard(tmp_path / "00000.tar", tuple(IT_FAULTS))
    b = build_image_text_shard(tmp_path / "00001.tar")
    report = LoadReport("laion", on_error="skip")
    stream = iter_image_text([a, b], report)
    first = next(stream)
    assert first.key == "00000/000000001" and report.loaded == 2  # only the first shard has been read
    with caplog.at_level("WARNING", logger="setok.data.loaders"):
        rest = list(stream)
    assert len(rest) == 3 and report.loaded == 4
    assert report.counts == {"missing_image": 1, "missing_field": 1, "empty_text": 1, "bad_json": 1}
    assert "laion: loaded 4, skipped 4" in caplog.text
    with pytest.raises(MalformedRecordError, match="record 00000/000000003: missing_image"):
        list(iter_image_text([a], LoadReport("laion")))
