"""Statistics of the mini world for the chapter (SPEC §6): balance tables, question mix, throughput.

All functions read scene graphs (sampling is cheap; no rendering) except :func:`throughput`, which times the
renderer and the torch Dataset.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from setok.data.miniworld.annotations import questions
from setok.data.miniworld.scene import HELD_OUT_PAIRS, MAX_OBJECTS, rng_for, sample_scene


def object_table(split: str, n: int, seed: int = 0, max_objects: int = MAX_OBJECTS) -> pd.DataFrame:
    """One row per object of images 0..n-1: image index, objects in the image, shape, colour, size, depth,
    background kind and whether its colour-shape pair is held out."""
    rows = []
    for index in range(n):
        scene = sample_scene(split, index, seed, max_objects=max_objects)
        for obj in scene["objects"]:
            rows.append({"index": index, "n_objects": len(scene["objects"]), "shape": obj["shape"],
                         "colour": obj["colour"], "size": obj["size"], "depth": obj["depth"],
                         "background": scene["background"]["kind"],
                         "held_out": (obj["shape"], obj["colour"]) in HELD_OUT_PAIRS})
    return pd.DataFrame(rows)


def question_table(split: str, n: int, seed: int = 0, max_objects: int = MAX_OBJECTS) -> pd.DataFrame:
    """One row per generated question of images 0..n-1: type, answer type, answer, question text."""
    rows = []
    for index in range(n):
        scene = sample_scene(split, index, seed, max_objects=max_objects)
        for q in questions(scene, rng_for(seed, split, index, 2)):
            rows.append({"index": index, "type": q["type"], "answer_type": q["answer_type"], "answer": q["answer"],
                         "question": q["question"]})
    return pd.DataFrame(rows)


def summary(objects: pd.DataFrame, qs: pd.DataFrame) -> dict[str, float]:
    """Headline numbers: images, objects per image (mean, min, max), questions per image, the share of "yes"
    among yes/no answers, and the largest / smallest share of a shape and of a colour."""
    per_image = objects.groupby("index").size()
    yesno = qs[qs["answer_type"] == "yes/no"]["answer"]
    shape_share = objects["shape"].value_counts(normalize=True)
    colour_share = objects["colour"].value_counts(normalize=True)
    return {"images": int(per_image.size), "objects": int(len(objects)),
            "objects_per_image_mean": float(per_image.mean()), "objects_per_image_min": int(per_image.min()),
            "objects_per_image_max": int(per_image.max()), "questions": int(len(qs)),
            "questions_per_image": float(len(qs) / per_image.size), "yes_share": float((yesno == "yes").mean()),
            "shape_share_max": float(shape_share.max()), "shape_share_min": float(shape_share.min()),
            "colour_share_max": float(colour_share.max()), "colour_share_min": float(colour_share.min())}


def throughput(resolution: int, n: int = 50, split: str = "train", seed: int = 0) -> dict[str, float]:
    """Images per second on this machine (one process): scene sampling alone, sampling + rendering +
    annotating, and the torch Dataset's ``__getitem__`` (which adds captions and tensors). Two warm-up images
    are rendered first so imports and the photo cache do not count."""
    from setok.data.miniworld.dataset import MiniWorldDataset
    from setok.data.miniworld.render import make_example

    for index in range(2):
        make_example(split, index, seed, resolution)
    out = {}
    t0 = time.perf_counter()
    for index in range(n):
        sample_scene(split, index, seed)
    out["sample_per_s"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for index in range(n):
        make_example(split, index, seed, resolution)
    out["render_per_s"] = n / (time.perf_counter() - t0)
    ds = MiniWorldDataset(split, n=n, resolution=resolution, seed=seed)
    t0 = time.perf_counter()
    for index in range(n):
        ds[index]
    out["dataset_per_s"] = n / (time.perf_counter() - t0)
    out["resolution"] = resolution
    out["n"] = n
    return out


def held_out_table() -> pd.DataFrame:
    """The held-out colour-shape pairs of the compositional split, one row per shape."""
    return pd.DataFrame(sorted(HELD_OUT_PAIRS), columns=["shape", "colour"])


def pair_matrix(objects: pd.DataFrame) -> pd.DataFrame:
    """Counts of each colour (rows) x shape (columns) pair."""
    return pd.crosstab(objects["colour"], objects["shape"]).astype(np.int64)


def example_records(root: Any, split: str) -> dict[str, Any]:
    """The first record of every format written by ``write_miniworld`` under ``root`` (for display)."""
    import json
    import pickle

    root = Path(root)

    def first_json(rel: str) -> Any:
        return json.loads((root / rel).read_text())

    inst = first_json(f"coco/annotations/instances_{split}.json")
    caps = first_json(f"coco/annotations/captions_{split}.json")
    vq = first_json(f"vqav2/v2_OpenEnded_mscoco_{split}_questions.json")
    va = first_json(f"vqav2/v2_mscoco_{split}_annotations.json")
    gqa = first_json(f"gqa/{split}_balanced_questions.json")
    refs = [r for r in pickle.loads((root / "refcoco/refs(unc).p").read_bytes()) if r["split"] == split]
    pope = {k: json.loads((root / f"pope/{split}/coco_pope_{k}.json").read_text().splitlines()[-1])
            for k in ("random", "popular", "adversarial")}
    seeds = first_json(f"instructpix2pix/{split}/seeds.json")
    ann = dict(inst["annotations"][0])
    ann["segmentation"] = {**ann["segmentation"], "counts": ann["segmentation"]["counts"][:24] + "..."}
    return {
        "coco_instances": ann,
        "coco_captions": caps["annotations"][:5],
        "vqav2_question": vq["questions"][0],
        "vqav2_annotation": {**va["annotations"][0], "answers": va["annotations"][0]["answers"][:2] + ["..."]},
        "gqa": next(iter(gqa.items())),
        "pope": pope,
        "refcoco": refs[0],
        "instructpix2pix": {"folder": seeds[0][0], "seed": seeds[0][1][0],
                            **first_json(f"instructpix2pix/{split}/{seeds[0][0]}/prompt.json")},
        "t2i": first_json(f"t2i/{split}_prompts.json")[0],
        "llava_mix": first_json(f"llava/llava_v1_5_mix_{split}.json")[:3],
        "llava_pretrain": first_json(f"llava/blip_laion_cc_sbu_{split}.json")[0],
    }


def recompose_error(split: str, n: int, resolution: int, seed: int = 0) -> float:
    """Largest |image - (w_bg * background + sum_i w_i * colour_i)| over ``n`` rendered images (should be ~1e-7)."""
    from setok.data.miniworld.render import colour_rgb, make_example

    worst = 0.0
    for index in range(n):
        scene, r = make_example(split, index, seed, resolution)
        image = r.background * (1 - r.weights.sum(0))[..., None]
        for i, obj in enumerate(scene["objects"]):
            image = image + r.weights[i][..., None] * colour_rgb(obj["colour"])
        worst = max(worst, float(np.abs(np.clip(image, 0, 1) - r.image).max()))
    return worst


def split_overlap(n: int, seed: int = 0) -> pd.DataFrame:
    """For each split, how many of its images contain at least one held-out pair (0 outside 'compositional')."""
    rows = []
    for split in ("train", "val", "test", "compositional"):
        table = object_table(split, n, seed)
        held = table.groupby("index")["held_out"].any()
        rows.append({"split": split, "images": int(held.size), "with_held_out_pair": int(held.sum())})
    return pd.DataFrame(rows)


def loader_table(root: Any, split: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read ``split`` of the mini world under ``root`` with the real-dataset loaders (``setok.data.loaders``):
    a table of loader, file, records loaded and records skipped, and the loaded Records per loader."""
    from setok.data.loaders import load_miniworld, miniworld_paths

    paths = miniworld_paths(root, split)
    data = load_miniworld(root, split)
    rows = []
    for name, records in data.items():
        kwargs = paths[name]
        where = next(v for k, v in kwargs.items() if k.endswith(("_file", "root")))
        rows.append({"loader": name, "reads": str(Path(where).relative_to(root)), "records": len(records),
                     "skipped": records.report.skipped})
    return pd.DataFrame(rows), data
