"""SA-1B per-image JSON loader on fixtures in the released format."""

import json
import re

import numpy as np
import pytest
from _loader_fixtures import rle_mask, write_image
from pycocotools import mask as mask_utils

from setok.data.loaders import MalformedRecordError, load_sa1b


def rle(mask):
    out = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [int(v) for v in out["size"]], "counts": out["counts"].decode("ascii")}


def ann(aid, mask, bbox):
    return {
        "id": aid,
        "segmentation": rle(mask),
        "bbox": bbox,
        "area": int(mask.sum()),
        "predicted_iou": 0.9,
        "stability_score": 0.95,
        "crop_box": [0, 0, 40, 30],
        "point_coords": [[30, 22]],
    }


SA_FAULTS = {
    "bad_json": ("sa_2", "bad_json"),
    "no_image_info": ("sa_3", "missing_field"),
    "missing_image": ("sa_4", "missing_image"),
    "rle_size": ("sa_1 annotation 12", "out_of_bounds"),
    "duplicate": ("sa_1 annotation 11", "duplicate_id"),
}


def build(root, faults=()):
    folder = root / "sa_000000"
    write_image(folder / "sa_1.jpg", (40, 30), "red")
    anns = [ann(11, rle_mask(), [25, 20, 11, 6])]
    if "rle_size" in faults:
        anns.append(ann(12, np.zeros((10, 10), np.uint8), [0, 0, 1, 1]))
    if "duplicate" in faults:
        anns.append(ann(11, rle_mask(), [25, 20, 11, 6]))
    image = {"image_id": 1, "width": 40, "height": 30, "file_name": "sa_1.jpg"}
    (folder / "sa_1.json").write_text(json.dumps({"image": image, "annotations": anns}))
    if "bad_json" in faults:
        write_image(folder / "sa_2.jpg", (8, 8))
        (folder / "sa_2.json").write_text('{"image": ')
    if "no_image_info" in faults:
        (folder / "sa_3.json").write_text(json.dumps({"annotations": []}))
    if "missing_image" in faults:
        image4 = {"image_id": 4, "width": 8, "height": 8, "file_name": "sa_4.jpg"}
        (folder / "sa_4.json").write_text(json.dumps({"image": image4, "annotations": []}))
    return folder


def test_values(tmp_path):
    recs = load_sa1b(build(tmp_path))
    assert len(recs) == 1 and recs[0].image_id == 1 and recs[0].open_image().size == (40, 30)
    (a,) = recs[0].annotations
    assert (a.id, a.category, a.bbox) == (11, "object", [25.0, 20.0, 11.0, 6.0])
    np.testing.assert_array_equal(a.mask(), rle_mask())


@pytest.mark.parametrize("fault", sorted(SA_FAULTS))
def test_each_fault_raises(tmp_path, fault):
    folder = build(tmp_path, (fault,))
    rid, kind = SA_FAULTS[fault]
    file = folder / f"{rid.split()[0]}.json"
    with pytest.raises(MalformedRecordError, match=re.escape(f"{file}: record {rid}: {kind}")):
        load_sa1b(tmp_path)


def test_skip_counts_and_limit(tmp_path):
    build(tmp_path, tuple(SA_FAULTS))
    recs = load_sa1b(tmp_path, on_error="skip")
    assert len(recs) == 1 and len(recs[0].annotations) == 1
    assert recs.report.counts == {
        "bad_json": 1,
        "missing_field": 1,
        "missing_image": 1,
        "out_of_bounds": 1,
        "duplicate_id": 1,
    }
    assert len(load_sa1b(tmp_path, on_error="skip", limit=1)) == 1
