"""COCO 2017 captions and instances (SPEC §6; paper §2.2 uses COCO for Stage I and captioning).

Real layout (``cocodataset.org``)::

    <root>/annotations/captions_<split>.json    {"images": [...], "annotations": [{id, image_id, caption}]}
    <root>/annotations/instances_<split>.json   {"images", "categories", "annotations": [{id, image_id,
                                                  category_id, bbox, segmentation (polygons | RLE),
                                                  area, iscrowd}]}
    <root>/images/<split>/<file_name>           (or <root>/<split>/<file_name>, as the zips unpack)

``images`` entries carry ``id, file_name, width, height``. Masks are decoded with pycocotools (polygons,
uncompressed RLE for crowds, compressed RLE). The mini world writes the same files (SPEC §6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from setok.data.loaders.base import (
    ImageMixin,
    LoaderConfig,
    LoadReport,
    Records,
    admit_entry,
    box_problem,
    decode_segmentation,
    expect_type,
    make_config,
    new_report,
    nonempty_str,
    read_json_file,
    segmentation_problem,
)


@dataclass
class CocoAnnotation:
    """One COCO instance: box ``[x, y, w, h]`` in pixels and a polygon / RLE segmentation."""

    id: int
    image_id: int
    category_id: int
    category: str
    bbox: list[float]
    segmentation: Any
    area: float
    iscrowd: int
    height: int
    width: int

    def mask(self) -> np.ndarray:
        """The instance mask as a (H, W) uint8 array (pycocotools decode)."""
        return decode_segmentation(self.segmentation, self.height, self.width)


@dataclass
class CocoImage(ImageMixin):
    """One COCO image with its captions (captions file) and/or instances (instances file)."""

    image_id: int
    file_name: str
    width: int
    height: int
    image_path: Path | None
    captions: list[str] = field(default_factory=list)
    caption_ids: list[int] = field(default_factory=list)
    annotations: list[CocoAnnotation] = field(default_factory=list)


def coco_paths(root: str | Path, split: str) -> dict[str, Path]:
    """Where a COCO-style root keeps ``captions`` / ``instances`` JSON and the ``images`` folder of ``split``.

    Looks in ``<root>/annotations/`` then ``<root>/``; images in ``<root>/images/<split>`` then
    ``<root>/<split>``.
    Returns the first candidates that exist (else the canonical ``annotations/`` and ``images/`` paths).
    """
    root = Path(root)

    def first(*cands: Path) -> Path:
        return next((c for c in cands if c.exists()), cands[0])

    return {
        "captions": first(root / "annotations" / f"captions_{split}.json", root / f"captions_{split}.json"),
        "instances": first(
            root / "annotations" / f"instances_{split}.json", root / f"instances_{split}.json"
        ),
        "images": first(root / "images" / split, root / split),
    }


def _read_images(
    data: dict, path: Path, image_dir: Path | None, report: LoadReport, config: LoaderConfig
) -> dict[int, CocoImage]:
    """Validate the ``images`` table: required fields and (optionally) that each file exists."""
    out: dict[int, CocoImage] = {}
    seen: set[Any] = set()
    for i, img in enumerate(expect_type(data.get("images"), list, path, "an 'images' list", report.dataset)):
        rid = admit_entry(img, i, "images", ("id", "file_name", "width", "height"), seen, report, path, "image")
        if rid is None:
            continue
        image_path = Path(image_dir) / img["file_name"] if image_dir is not None else None
        if config.check_images and image_path is not None and not image_path.is_file():
            report.problem("missing_image", path, f"image {rid}", f"no file {image_path}")
            continue
        out[img["id"]] = CocoImage(
            img["id"], img["file_name"], int(img["width"]), int(img["height"]), image_path
        )
    return out


def load_coco_captions(
    captions_file: str | Path,
    image_dir: str | Path | None = None,
    config: LoaderConfig | None = None,
    on_error: str | None = None,
) -> Records[CocoImage]:
    """COCO ``captions_<split>.json`` -> one :class:`CocoImage` per image with its ``captions`` list.

    Problems: image entry incomplete (missing_field), image file absent (missing_image), caption empty
    (empty_text), caption for an unknown image id (unknown_id). Captions of a skipped image go with it.
    """
    config = make_config(config, on_error)
    report = new_report("coco_captions", config)
    path = Path(captions_file)
    data = expect_type(read_json_file(path, report.dataset), dict, path, "a JSON object", report.dataset)
    all_ids = {img.get("id") for img in data.get("images", []) if isinstance(img, dict)}
    images = _read_images(data, path, Path(image_dir) if image_dir else None, report, config)
    seen: set[Any] = set()
    for i, ann in enumerate(
        expect_type(data.get("annotations"), list, path, "an 'annotations' list", report.dataset)
    ):
        rid = admit_entry(ann, i, "annotations", ("image_id", "caption"), seen, report, path, "caption")
        if rid is None:
            continue
        if ann["image_id"] not in all_ids:
            report.problem("unknown_id", path, f"caption {rid}", f"image_id {ann['image_id']} not in images")
            continue
        if ann["image_id"] not in images:  # the image itself was skipped (and counted)
            continue
        if not nonempty_str(ann["caption"]):
            report.problem("empty_text", path, f"caption {rid}", "empty caption")
            continue
        images[ann["image_id"]].captions.append(ann["caption"].strip())
        images[ann["image_id"]].caption_ids.append(rid)
    return Records(list(images.values()), report)


def load_coco_instances(
    instances_file: str | Path,
    image_dir: str | Path | None = None,
    config: LoaderConfig | None = None,
    on_error: str | None = None,
) -> Records[CocoImage]:
    """COCO ``instances_<split>.json`` -> one :class:`CocoImage` per image with its ``annotations``.

    ``Records.meta["categories"]`` maps category id -> name. Problems: incomplete entries (missing_field),
    absent image files (missing_image), unknown image or category ids (unknown_id), boxes / polygons / RLE
    outside the image or with the wrong size (out_of_bounds).
    """
    config = make_config(config, on_error)
    report = new_report("coco_instances", config)
    path = Path(instances_file)
    data = expect_type(read_json_file(path, report.dataset), dict, path, "a JSON object", report.dataset)
    cats = {
        c["id"]: c["name"]
        for c in expect_type(data.get("categories"), list, path, "a 'categories' list", report.dataset)
    }
    all_ids = {img.get("id") for img in data.get("images", []) if isinstance(img, dict)}
    images = _read_images(data, path, Path(image_dir) if image_dir else None, report, config)
    required = ("id", "image_id", "category_id", "bbox", "segmentation")
    seen: set[Any] = set()
    for i, ann in enumerate(
        expect_type(data.get("annotations"), list, path, "an 'annotations' list", report.dataset)
    ):
        rid = admit_entry(ann, i, "annotations", required, seen, report, path, "annotation")
        if rid is None:
            continue
        if ann["image_id"] not in all_ids:
            report.problem(
                "unknown_id", path, f"annotation {rid}", f"image_id {ann['image_id']} not in images"
            )
            continue
        if ann["category_id"] not in cats:
            report.problem(
                "unknown_id", path, f"annotation {rid}", f"category_id {ann['category_id']} unknown"
            )
            continue
        img = images.get(ann["image_id"])
        if img is None:  # the image itself was skipped (and counted)
            continue
        why = box_problem(ann["bbox"], img.width, img.height, config.bbox_tolerance) or segmentation_problem(
            ann["segmentation"], img.width, img.height, config.bbox_tolerance
        )
        if why:
            report.problem(why[0], path, f"annotation {rid}", why[1])
            continue
        img.annotations.append(
            CocoAnnotation(
                id=ann["id"],
                image_id=ann["image_id"],
                category_id=ann["category_id"],
                category=cats[ann["category_id"]],
                bbox=[float(v) for v in ann["bbox"]],
                segmentation=ann["segmentation"],
                area=float(ann.get("area", 0.0)),
                iscrowd=int(ann.get("iscrowd", 0)),
                height=img.height,
                width=img.width,
            )
        )
    return Records(list(images.values()), report, meta={"categories": cats})
