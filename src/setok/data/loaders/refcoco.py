"""RefCOCO / RefCOCO+ / RefCOCOg referring expressions (SPEC §5.1 Acc@0.5; SPEC §6 mini-world refs).

Real layout (``lichengunc/refer``)::

    <root>/refcoco/refs(unc).p      pickle: list of {ref_id, ann_id, image_id, category_id, split, file_name,
                                    sent_ids, sentences: [{sent_id, sent, raw, tokens}]}
    <root>/refcoco/refs(google).p   (RefCOCO also has Google's split; RefCOCO+ only unc; RefCOCOg google/umd)
    <root>/refcoco/instances.json   COCO instances of the referred objects (images, annotations, categories)
    images: COCO train2014, ``<image_dir>/<file_name from instances.json>``

Splits: unc -> train / val / testA / testB; umd -> train / val / test; google -> train / val.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from setok.data.loaders.base import (
    ImageMixin,
    LoaderConfig,
    MalformedRecordError,
    Records,
    box_problem,
    decode_segmentation,
    expect_type,
    make_config,
    new_report,
    nonempty_str,
    read_json_file,
    require_file,
    segmentation_problem,
)

SPLIT_BY = ("unc", "umd", "google")


@dataclass
class RefRecord(ImageMixin):
    """One referred object with all its expressions; ``bbox`` ``[x, y, w, h]`` and mask from instances."""

    ref_id: int
    ann_id: int
    image_id: int
    category_id: int
    split: str
    sentences: list[str]
    sent_ids: list[int]
    bbox: list[float]
    segmentation: Any
    width: int
    height: int
    image_path: Path | None
    raw: list[str] = field(default_factory=list)

    def mask(self) -> np.ndarray:
        """The referred object's mask as a (H, W) uint8 array (pycocotools decode)."""
        return decode_segmentation(self.segmentation, self.height, self.width)


def read_refs_pickle(path: str | Path, dataset: str = "refcoco") -> list:
    """Unpickle a ``refs(<split_by>).p`` file (written by Python 2: retry with latin1 strings)."""
    path = require_file(path, f"{dataset} refs file")
    try:
        with open(path, "rb") as f:
            refs = pickle.load(f)
    except UnicodeDecodeError:
        with open(path, "rb") as f:
            refs = pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError) as err:
        raise MalformedRecordError(
            f"{dataset}: {path}: record <file>: bad_json: not a pickle ({err})"
        ) from err
    return expect_type(refs, list, path, "a list of refs", dataset)


def load_refcoco(
    root: str | Path,
    split_by: str = "unc",
    split: str | None = None,
    image_dir: str | Path | None = None,
    config: LoaderConfig | None = None,
    on_error: str | None = None,
    dataset: str = "refcoco",
) -> Records[RefRecord]:
    """``<root>/refs(<split_by>).p`` + ``<root>/instances.json`` -> :class:`RefRecord` list (a split or all).

    ``root`` is the folder of one dataset (e.g. ``data/refcoco+``). Problems: missing_field, empty_text (no
    sentence or an empty one), unknown_id (ann_id / image_id not in instances.json, or they disagree),
    out_of_bounds (box or mask outside the image), missing_image.
    """
    if split_by not in SPLIT_BY:
        raise ValueError(f"split_by must be one of {SPLIT_BY} (got {split_by!r})")
    config = make_config(config, on_error)
    report = new_report(dataset, config)
    root = Path(root)
    refs_path = root / f"refs({split_by}).p"
    refs = read_refs_pickle(refs_path, dataset)
    inst_path = root / "instances.json"
    inst = expect_type(read_json_file(inst_path, dataset), dict, inst_path, "a JSON object", dataset)
    images = {img["id"]: img for img in inst.get("images", []) if isinstance(img, dict) and "id" in img}
    anns = {a["id"]: a for a in inst.get("annotations", []) if isinstance(a, dict) and "id" in a}
    idir = Path(image_dir) if image_dir is not None else None
    required = ("ref_id", "ann_id", "image_id", "split", "sentences")
    out: list[RefRecord] = []
    seen: set[Any] = set()
    for i, ref in enumerate(refs):
        rid = f"ref {ref.get('ref_id', i)}" if isinstance(ref, dict) else f"ref [{i}]"
        if not isinstance(ref, dict) or not all(k in ref for k in required):
            report.problem("missing_field", refs_path, rid, f"ref needs {', '.join(required)}")
            continue
        if ref["ref_id"] in seen:
            report.problem("duplicate_id", refs_path, rid, "ref id listed twice")
            continue
        seen.add(ref["ref_id"])
        if split is not None and ref["split"] != split:
            continue
        sents = ref["sentences"]
        if not isinstance(sents, list) or not sents:
            report.problem("empty_text", refs_path, rid, "no sentences")
            continue
        texts = [s.get("sent") if isinstance(s, dict) else None for s in sents]
        if not all(nonempty_str(t) for t in texts):
            report.problem("empty_text", refs_path, rid, "a sentence is missing or empty")
            continue
        ann = anns.get(ref["ann_id"])
        if ann is None:
            report.problem("unknown_id", refs_path, rid, f"ann_id {ref['ann_id']} not in {inst_path.name}")
            continue
        img = images.get(ref["image_id"])
        if img is None or ann.get("image_id") != ref["image_id"]:
            report.problem(
                "unknown_id", refs_path, rid, f"image_id {ref['image_id']} unknown or != the ann's"
            )
            continue
        width, height = int(img["width"]), int(img["height"])
        why = box_problem(ann.get("bbox"), width, height, config.bbox_tolerance) or segmentation_problem(
            ann.get("segmentation"), width, height, config.bbox_tolerance
        )
        if why:
            report.problem(why[0], inst_path, rid, f"ann {ref['ann_id']}: {why[1]}")
            continue
        image_path = idir / img["file_name"] if idir is not None else None
        if config.check_images and image_path is not None and not image_path.is_file():
            report.problem("missing_image", refs_path, rid, f"no file {image_path}")
            continue
        out.append(
            RefRecord(
                ref_id=ref["ref_id"],
                ann_id=ref["ann_id"],
                image_id=ref["image_id"],
                category_id=ref.get("category_id", ann.get("category_id", -1)),
                split=ref["split"],
                sentences=[t.strip() for t in texts],
                sent_ids=[s.get("sent_id", -1) for s in sents],
                bbox=[float(v) for v in ann["bbox"]],
                segmentation=ann["segmentation"],
                width=width,
                height=height,
                image_path=image_path,
                raw=[s.get("raw", s["sent"]) for s in sents],
            )
        )
    return Records(out, report, meta={"split_by": split_by, "split": split})
