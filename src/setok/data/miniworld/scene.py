"""Scene graphs of the mini world (SPEC §6): seeded sampling of objects, attributes, depth order and background.

A scene graph is a plain JSON-able dict and fully determines the image (``render.render_scene``), so edits are
rendered exactly by editing the graph. Coordinates are resolution-free (fractions of the image side); pixel
boxes and areas are added by :func:`setok.data.miniworld.render.annotate_scene` at a given resolution.

Scene graph::

    {"image_id": int, "file_name": str, "split": str, "seed": int, "index": int,
     "background": {"kind": "flat"|"gradient"|"noise"|"photo", ...},
     "objects": [  # depth order: objects[0] is the farthest, objects[-1] the nearest; label i+1 = objects[i]
        {"id": 1, "shape": "circle", "colour": "red", "size": "small", "x": 0.31, "y": 0.62,
         "radius": 0.08, "angle": 4.0, "depth": 0}, ...]}
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# The vocabulary. Shapes are kept visually distinct at 32 px; rotations are small (|angle| <= 12 degrees) so a
# square never turns into a diamond.
SHAPES = ("circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross")
COLOURS = {  # name -> sRGB in [0, 255]; saturated and far apart so a colour name is never ambiguous
    "red": (220, 38, 38),
    "green": (34, 160, 60),
    "blue": (37, 78, 220),
    "yellow": (245, 208, 36),
    "orange": (245, 130, 20),
    "purple": (130, 50, 190),
    "cyan": (30, 200, 215),
    "pink": (245, 120, 190),
    "brown": (130, 80, 40),
    "white": (250, 250, 250),
}
COLOUR_NAMES = tuple(COLOURS)
SIZES = {"small": 0.085, "medium": 0.125, "large": 0.17}  # radius as a fraction of the image side
SIZE_NAMES = tuple(SIZES)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "brick", "grass", "gravel")
BACKGROUNDS = ("flat", "gradient", "noise", "photo")

# Splits come from disjoint seed streams: numpy's SeedSequence([seed, split_code, index]).
SPLITS = {"train": 0, "val": 1, "test": 2, "compositional": 3}
IMAGE_ID_OFFSET = 1_000_000  # image_id = split_code * offset + index + 1: unique across splits

# The compositional split: one colour per shape is never paired with it in train/val/test.
HELD_OUT_PAIRS = frozenset((shape, COLOUR_NAMES[(3 * i + 1) % len(COLOUR_NAMES)]) for i, shape in enumerate(SHAPES))

MAX_OBJECTS = 8
MIN_VISIBLE = 0.4     # every object keeps >= 40 % of its area visible (checked on a 64-px hard raster)
CHECK_RES = 64
MAX_TRIES = 40


def check_split(split: str) -> str:
    """Return ``split`` if known, else raise a ValueError naming the choices."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def image_id_for(split: str, index: int) -> int:
    """The COCO ``image_id`` of image ``index`` of ``split`` (unique across splits)."""
    return SPLITS[check_split(split)] * IMAGE_ID_OFFSET + index + 1


def file_name_for(image_id: int) -> str:
    """The image file name, COCO style (12 digits), PNG so that pixels stay exact."""
    return f"{image_id:012d}.png"


def rng_for(seed: int, split: str, index: int, purpose: int = 0) -> np.random.Generator:
    """A generator for one (seed, split, index) and purpose (0 scene, 1 captions, 2 questions, ...)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS[split], int(index), int(purpose)]))


def allowed_pair(shape: str, colour: str, split: str) -> bool:
    """Whether a colour-shape pair may appear in ``split`` (held-out pairs only in the compositional split)."""
    return split == "compositional" or (shape, colour) not in HELD_OUT_PAIRS


def polygon(shape: str) -> np.ndarray | None:
    """Unit-radius vertices (V, 2) as (x, y) of a shape, or None for the circle (drawn analytically)."""
    def regular(n: int, start: float = -math.pi / 2, radius: float = 1.0) -> list[tuple[float, float]]:
        return [(radius * math.cos(start + 2 * math.pi * k / n), radius * math.sin(start + 2 * math.pi * k / n))
                for k in range(n)]

    if shape == "circle":
        return None
    if shape == "square":
        s = 0.8
        pts = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif shape == "triangle":
        pts = [(x, y + 0.15) for x, y in regular(3)]
    elif shape == "diamond":
        pts = [(0.0, -1.0), (0.65, 0.0), (0.0, 1.0), (-0.65, 0.0)]
    elif shape == "pentagon":
        pts = regular(5)
    elif shape == "hexagon":
        pts = regular(6, start=0.0)
    elif shape == "star":
        outer, inner = regular(5), regular(5, start=-math.pi / 2 + math.pi / 5, radius=0.45)
        pts = [p for pair in zip(outer, inner, strict=True) for p in pair]
    elif shape == "cross":
        a, b = 0.3, 0.9
        pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a),
               (-a, -a)]
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    return np.asarray(pts, dtype=np.float64)


def shape_mask(obj: dict[str, Any], height: int, width: int,
               window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Hard (H, W) bool raster of one object's full (amodal) shape, sampled at pixel centres.

    ``window = (top, left, h, w)`` rasterises only that part of the H x W canvas (same pixel grid), as (h, w).
    """
    from skimage.draw import polygon as draw_polygon

    top, left, h, w = window or (0, 0, height, width)
    side = min(height, width)
    cx, cy, r = obj["x"] * width - left, obj["y"] * height - top, obj["radius"] * side
    pts = polygon(obj["shape"])
    if pts is None:
        yy, xx = np.ogrid[:h, :w]
        return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r
    theta = math.radians(obj["angle"])
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    xy = pts @ rot.T * r + (cx, cy)  # (V, 2) pixel coordinates
    mask = np.zeros((h, w), dtype=bool)
    rr, cc = draw_polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, shape=(h, w))
    mask[rr, cc] = True
    return mask


def visible_fractions(objects: list[dict[str, Any]], res: int = CHECK_RES) -> list[float]:
    """Fraction of each object's area not covered by nearer objects (hard raster at ``res`` px)."""
    masks = [shape_mask(o, res, res) for o in objects]
    covered = np.zeros((res, res), dtype=bool)
    out = [0.0] * len(masks)
    for i in range(len(masks) - 1, -1, -1):  # nearest first
        area = masks[i].sum()
        out[i] = float((masks[i] & ~covered).sum() / area) if area else 0.0
        covered |= masks[i]
    return out


def sample_background(rng: np.random.Generator) -> dict[str, Any]:
    """A background description: flat, gradient, smooth noise, or a crop of a scikit-image photo."""
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    muted = lambda: [int(v) for v in rng.integers(60, 200, size=3)]  # noqa: E731
    if kind == "flat":
        return {"kind": kind, "colour": muted()}
    if kind == "gradient":
        return {"kind": kind, "colours": [muted(), muted()], "angle": float(round(rng.uniform(0, 360), 2))}
    if kind == "noise":
        return {"kind": kind, "noise_seed": int(rng.integers(2**31)), "cells": int(rng.integers(3, 9))}
    size = float(round(rng.uniform(0.3, 0.8), 3))  # crop side as a fraction of the photo's short side
    return {"kind": kind, "photo": PHOTOS[int(rng.integers(len(PHOTOS)))], "size": size,
            "top": float(round(rng.uniform(0, 1), 3)), "left": float(round(rng.uniform(0, 1), 3))}


def sample_object(rng: np.random.Generator, split: str, forced: tuple[str, str] | None = None) -> dict[str, Any]:
    """One object's attributes and position (rejecting colour-shape pairs the split may not use)."""
    while True:
        shape, colour = forced or (SHAPES[int(rng.integers(len(SHAPES)))],
                                   COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))])
        if allowed_pair(shape, colour, split):
            break
    size = SIZE_NAMES[int(rng.integers(len(SIZE_NAMES)))]
    radius = SIZES[size]
    x, y = (float(round(v, 4)) for v in rng.uniform(radius, 1 - radius, size=2))
    return {"shape": shape, "colour": colour, "size": size, "x": x, "y": y, "radius": radius,
            "angle": float(round(rng.uniform(-12, 12), 2))}


def sample_scene(split: str = "train", index: int = 0, seed: int = 0, max_objects: int = MAX_OBJECTS,
                 min_objects: int = 1) -> dict[str, Any]:
    """Sample the scene graph of image ``index`` of ``split`` (deterministic per (seed, split, index)).

    Objects are placed back to front; a candidate is rejected (and re-drawn, up to ``MAX_TRIES`` times) when it
    would leave any object, itself included, with less than ``MIN_VISIBLE`` of its area visible. In the
    compositional split the first object drawn is a held-out colour-shape pair.
    """
    check_split(split)
    if not 1 <= min_objects <= max_objects <= MAX_OBJECTS:
        raise ValueError(f"need 1 <= min_objects <= max_objects <= {MAX_OBJECTS} "
                         f"(got min_objects={min_objects}, max_objects={max_objects})")
    if index < 0:
        raise ValueError(f"index must be >= 0 (got index={index})")
    rng = rng_for(seed, split, index, 0)
    background = sample_background(rng)
    target = int(rng.integers(min_objects, max_objects + 1))
    held = sorted(HELD_OUT_PAIRS)
    objects: list[dict[str, Any]] = []
    for k in range(target):
        forced = held[int(rng.integers(len(held)))] if (split == "compositional" and k == 0) else None
        for _ in range(MAX_TRIES):
            cand = sample_object(rng, split, forced)
            if min(visible_fractions([*objects, cand])) >= MIN_VISIBLE:
                objects.append(cand)
                break
    if split == "compositional":  # the forced object may have failed to fit only if the canvas is full
        assert any((o["shape"], o["colour"]) in HELD_OUT_PAIRS for o in objects)
    for depth, obj in enumerate(objects):
        obj["id"] = depth + 1
        obj["depth"] = depth
    image_id = image_id_for(split, index)
    return {"image_id": image_id, "file_name": file_name_for(image_id), "split": split, "seed": int(seed),
            "index": int(index), "background": background, "objects": objects}
