"""InstructPix2Pix folder-of-triplets loader on fixtures in the released layout (SPEC §6)."""

import re

import numpy as np
import pytest
from _loader_fixtures import IP2P_FAULTS, build_ip2p

from setok.data.loaders import MalformedRecordError, load_instructpix2pix


@pytest.mark.parametrize("seeds_json", [True, False])
def test_values(tmp_path, seeds_json):
    root = build_ip2p(tmp_path, seeds_json=seeds_json)
    recs = load_instructpix2pix(root)
    assert [r.id for r in recs] == ["0000001/111", "0000001/222", "0000002/333"]
    r = recs[0]
    assert (r.instruction, r.input_caption, r.output_caption) == (
        "make it blue",
        "a red square",
        "a blue square",
    )
    assert recs[2].instruction == "remove the circle"
    assert r.input_path == root / "0000001" / "111_0.jpg" and r.output_path == root / "0000001" / "111_1.jpg"
    src, dst = np.asarray(r.open_input(), dtype=int), np.asarray(r.open_output(), dtype=int)
    assert src[8, 8, 0] > 180 and dst[8, 8, 2] > 180  # red input, blue edited output


@pytest.mark.parametrize("seeds_json", [True, False])
@pytest.mark.parametrize("fault", sorted(IP2P_FAULTS))
def test_each_fault_raises(tmp_path, fault, seeds_json):
    root = build_ip2p(tmp_path, (fault,), seeds_json=seeds_json)
    kind, rid = IP2P_FAULTS[fault]
    folder = root / rid.split("/")[0]
    file = folder / "prompt.json" if kind == "bad_json" or kind == "empty_text" else folder
    with pytest.raises(MalformedRecordError, match=re.escape(f"{file}: record {rid}: {kind}")):
        load_instructpix2pix(root)


def test_skip_counts(tmp_path):
    root = build_ip2p(tmp_path, tuple(IP2P_FAULTS))
    recs = load_instructpix2pix(root, on_error="skip")
    assert len(recs) == 3
    assert recs.report.counts == {"bad_json": 1, "missing_field": 1, "empty_text": 1, "missing_image": 1}


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="instructpix2pix root not found"):
        load_instructpix2pix(tmp_path / "nope")
