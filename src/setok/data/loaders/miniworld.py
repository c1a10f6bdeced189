"""Pointing the real-dataset loaders at a mini-world folder (SPEC §6: one set of loaders for both scales).

``setok data miniworld --out OUT --split S`` writes the real formats under ``OUT`` (see
``setok.data.miniworld.writers``); :func:`miniworld_paths` says which file each loader reads, and
:func:`load_miniworld` reads them all. Nothing here is specific to the mini world except the folder layout:
the calls are exactly the ones a paper-scale run makes with the real roots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from setok.data.loaders.base import LoaderConfig, Records, make_config
from setok.data.loaders.coco import coco_paths, load_coco_captions, load_coco_instances
from setok.data.loaders.editing import load_instructpix2pix
from setok.data.loaders.llava import load_llava_instruct, load_llava_pretrain
from setok.data.loaders.refcoco import load_refcoco
from setok.data.loaders.vqa import load_gqa, load_pope, load_vqa_v2

POPE_VARIANTS = ("random", "popular", "adversarial")


def miniworld_paths(root: str | Path, split: str = "train") -> dict[str, dict[str, Any]]:
    """Loader name -> keyword arguments that read ``split`` of the mini world written under ``root``."""
    root = Path(root)
    coco = coco_paths(root / "coco", split)
    images = coco["images"]  # coco/<split>/: every format shares the COCO images, as the real ones do
    out: dict[str, dict[str, Any]] = {
        "coco_captions": {"captions_file": coco["captions"], "image_dir": images},
        "coco_instances": {"instances_file": coco["instances"], "image_dir": images},
        "vqav2": {
            "questions_file": root / "vqav2" / f"v2_OpenEnded_mscoco_{split}_questions.json",
            "annotations_file": root / "vqav2" / f"v2_mscoco_{split}_annotations.json",
            "image_dir": images,
        },
        "gqa": {"questions_file": root / "gqa" / f"{split}_balanced_questions.json", "image_dir": images},
        "refcoco": {"root": root / "refcoco", "split_by": "unc", "split": split, "image_dir": images},
        "instructpix2pix": {"root": root / "instructpix2pix" / split},
        "llava_pretrain": {"json_file": root / "llava" / f"blip_laion_cc_sbu_{split}.json", "image_root": root},
        "llava_instruct": {"json_file": root / "llava" / f"llava_v1_5_mix_{split}.json", "image_root": root},
    }
    for variant in POPE_VARIANTS:
        out[f"pope_{variant}"] = {"pope_file": root / "pope" / split / f"coco_pope_{variant}.json", "image_dir": images}
    return out


LOADERS = {
    "coco_captions": load_coco_captions,
    "coco_instances": load_coco_instances,
    "vqav2": load_vqa_v2,
    "gqa": load_gqa,
    "refcoco": load_refcoco,
    "instructpix2pix": load_instructpix2pix,
    "llava_pretrain": load_llava_pretrain,
    "llava_instruct": load_llava_instruct,
    **{f"pope_{v}": load_pope for v in POPE_VARIANTS},
}


def load_miniworld(
    root: str | Path,
    split: str = "train",
    config: LoaderConfig | None = None,
    on_error: str | None = None,
) -> dict[str, Records]:
    """Every format of ``split`` under ``root`` read with the real-dataset loaders: name -> :class:`Records`.

    A missing file is a FileNotFoundError naming it (write the split first with ``setok data miniworld``).
    """
    config = make_config(config, on_error)
    return {name: LOADERS[name](**kwargs, config=config) for name, kwargs in miniworld_paths(root, split).items()}


# loader name -> (function, real files it reads at paper scale)
REAL_LAYOUT = {
    "coco_captions": "COCO 2017 annotations/captions_<split>2017.json + <split>2017/",
    "coco_instances": "COCO 2017 annotations/instances_<split>2017.json + <split>2017/",
    "vqav2": "v2_OpenEnded_mscoco_<split>2014_questions.json + v2_mscoco_<split>2014_annotations.json",
    "gqa": "<split>_balanced_questions.json + images/",
    "refcoco": "refcoco/refs(unc).p + refcoco/instances.json (+ refcoco+, refcocog umd/google)",
    "instructpix2pix": "clip-filtered-dataset/seeds.json + <dir>/prompt.json, <seed>_0.jpg, <seed>_1.jpg",
    "llava_pretrain": "LLaVA-Pretrain/blip_laion_cc_sbu_558k.json + images/",
    "llava_instruct": "llava_v1_5_mix665k.json + coco/ gqa/ ocr_vqa/ textvqa/ vg/",
    **{f"pope_{v}": f"POPE output/coco/coco_pope_{v}.json (JSON lines) + COCO val2014" for v in POPE_VARIANTS},
}


def loader_table(root: str | Path, split: str = "train") -> list[dict[str, str]]:
    """One row per format: loader function, the real files it reads, the mini-world file it reads (for a table)."""
    root = Path(root)
    rows = []
    for name, kwargs in miniworld_paths(root, split).items():
        first = next(iter(kwargs.values()))
        rows.append(
            {
                "format": name,
                "loader": f"{LOADERS[name].__name__}()",
                "real dataset": REAL_LAYOUT[name],
                "mini world": str(Path(first).relative_to(root)),
            }
        )
    return rows
