"""The mini world (SPEC §6): a seeded procedural scene dataset with exact ground truth for every task.

Scenes of 1..8 objects (8 shapes, 10 named colours, 3 sizes) on flat, gradient, noise or photo backgrounds,
rendered anti-aliased at any resolution, deterministic per (seed, split, index). From each scene graph come
instance masks, captions, questions, probes, referring expressions, edits and prompts, written in the real
datasets' formats (``setok data miniworld --out DIR``) so the paper-scale loaders read them unchanged.

Modules: ``scene`` (vocabulary, splits, sampling), ``render`` (pixels and masks), ``language`` (phrases and
captions), ``dataset`` (torch Dataset + collate).
"""

from setok.data.miniworld.dataset import MiniWorldDataset, collate, make_example
from setok.data.miniworld.render import Rendered, annotate_scene, render_scene
from setok.data.miniworld.scene import (
    COLOUR_NAMES,
    HELD_OUT_PAIRS,
    SHAPES,
    SIZE_NAMES,
    SPLITS,
    sample_scene,
)

__all__ = [
    "COLOUR_NAMES", "HELD_OUT_PAIRS", "SHAPES", "SIZE_NAMES", "SPLITS", "MiniWorldDataset", "Rendered",
    "annotate_scene", "collate", "make_example", "render_scene", "sample_scene",
]
