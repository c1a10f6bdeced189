"""The mini world (SPEC §6): a seeded procedural scene dataset with exact ground truth for every task.

Scenes of 1..8 objects (8 shapes, 10 named colours, 3 sizes) on flat, gradient, noise or photo backgrounds,
rendered anti-aliased at any resolution, deterministic per (seed, split, index). From each scene graph come
instance masks, captions, questions, probes, referring expressions, edits and prompts, written in the real
datasets' formats (``setok data miniworld --out DIR``) so the paper-scale loaders read them unchanged.

Modules: ``scene`` (vocabulary, splits, sampling), ``render`` (pixels and masks), ``language`` (phrases and
captions), ``annotations`` (questions, POPE, referring expressions, edits), ``writers`` (files on disk; its
docstring lists the FORMATS and folder layout), ``dataset`` (torch Dataset + collate; imported lazily because of
torch), ``stats`` / ``figures`` (the chapter), ``config`` (the ``data.miniworld`` profile section).

FORMATS (details in ``writers``): under ``OUT``: ``coco/<split>/*.png`` images;
``coco/annotations/{instances,captions}_<split>.json``; ``vqav2/v2_OpenEnded_mscoco_<split>_questions.json`` +
``vqav2/v2_mscoco_<split>_annotations.json``; ``gqa/<split>_balanced_questions.json``;
``pope/<split>/coco_pope_{random,popular,adversarial}.json`` (JSON lines); ``refcoco/refs(unc).p`` +
``refcoco/instances.json``; ``instructpix2pix/<split>/<id>/{prompt.json,<seed>_0.png,<seed>_1.png}`` +
``seeds.json``; ``t2i/<split>_prompts.json``; ``llava/llava_v1_5_mix_<split>.json``;
``llava/blip_laion_cc_sbu_<split>.json``; ``manifest.json``.
"""

from typing import Any

from setok.data.miniworld.render import Rendered, annotate_scene, make_example, render_scene
from setok.data.miniworld.scene import (
    COLOUR_NAMES,
    HELD_OUT_PAIRS,
    SHAPES,
    SIZE_NAMES,
    SPLITS,
    sample_scene,
)

_TORCH = {"MiniWorldDataset", "collate"}  # from .dataset, imported on first use (torch is heavy)


def __getattr__(name: str) -> Any:
    if name in _TORCH:
        from setok.data.miniworld import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'setok.data.miniworld' has no attribute {name!r}")


__all__ = [
    "COLOUR_NAMES", "HELD_OUT_PAIRS", "SHAPES", "SIZE_NAMES", "SPLITS", "MiniWorldDataset", "Rendered",
    "annotate_scene", "collate", "make_example", "render_scene", "sample_scene",
]
