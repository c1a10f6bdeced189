"""SA-1B (Segment Anything) subset: one JSON of masks per image (paper Table 6, Stage I phase 2; SPEC §3.1).

Real layout (``facebookresearch/segment-anything``, the ``sa_000000.tar`` ... shards unpacked)::

    <folder>/sa_<n>.jpg
    <folder>/sa_<n>.json   {"image": {image_id, width, height, file_name},
                            "annotations": [{id, segmentation: {size: [h, w], counts}, bbox [x, y, w, h], area,
                                             predicted_iou, stability_score, crop_box, point_coords}]}

SA-1B masks carry no category: each becomes a :class:`CocoAnnotation` with ``category_id`` 0, "object".
"""

from __future__ import annotations

import json
from pathlib import Path

from setok.data.loaders.base import (
    LoaderConfig,
    Records,
    admit_entry,
    box_problem,
    make_config,
    new_report,
    require_dir,
    segmentation_problem,
)
from setok.data.loaders.coco import CocoAnnotation, CocoImage


def load_sa1b(
    folder: str | Path,
    config: LoaderConfig | None = None,
    on_error: str | None = None,
    limit: int | None = None,
) -> Records[CocoImage]:
    """Every ``sa_*.json`` under ``folder`` (recursively) -> :class:`CocoImage` with its mask annotations.

    ``limit`` reads only the first ``limit`` JSON files (sorted). Problems: bad_json, missing_field,
    missing_image, out_of_bounds / bad_geometry (box or RLE), duplicate_id (an annotation id twice in a file).
    """
    config = make_config(config, on_error)
    report = new_report("sa1b", config)
    folder = require_dir(folder, "sa1b folder")
    out: list[CocoImage] = []
    files = sorted(folder.rglob("sa_*.json"))
    for path in files[:limit] if limit is not None else files:
        rid = path.stem
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            report.problem("bad_json", path, rid, f"line {err.lineno} col {err.colno}: {err.msg}")
            continue
        info = data.get("image") if isinstance(data, dict) else None
        if not isinstance(info, dict) or not all(k in info for k in ("image_id", "width", "height", "file_name")):
            report.problem("missing_field", path, rid, "needs image {image_id, width, height, file_name}")
            continue
        if not isinstance(data.get("annotations"), list):
            report.problem("missing_field", path, rid, "needs an 'annotations' list")
            continue
        image_path = path.parent / info["file_name"]
        if config.check_images and not image_path.is_file():
            report.problem("missing_image", path, rid, f"no file {image_path}")
            continue
        width, height = int(info["width"]), int(info["height"])
        img = CocoImage(info["image_id"], info["file_name"], width, height, image_path)
        seen: set = set()
        for i, ann in enumerate(data["annotations"]):
            aid = admit_entry(ann, i, "annotations", ("segmentation", "bbox"), seen, report, path,
                              f"{rid} annotation")
            if aid is None:
                continue
            why = box_problem(ann["bbox"], width, height, config.bbox_tolerance) or segmentation_problem(
                ann["segmentation"], width, height, config.bbox_tolerance
            )
            if why:
                report.problem(why[0], path, f"{rid} annotation {aid}", why[1])
                continue
            img.annotations.append(
                CocoAnnotation(
                    aid,
                    img.image_id,
                    0,
                    "object",
                    [float(v) for v in ann["bbox"]],
                    ann["segmentation"],
                    float(ann.get("area", 0.0)),
                    0,
                    height,
                    width,
                )
            )
        out.append(img)
    return Records(out, report)
