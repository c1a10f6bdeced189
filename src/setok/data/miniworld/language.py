"""Words for the mini world (SPEC §6): object phrases, spatial relations, unique referring expressions, captions.

Everything here reads only the scene graph, so each sentence can be checked against it. Relations use object
centres with a margin (``MARGIN``, a fraction of the image side) so that "left of" is never a judgement call;
"in front of" uses the depth order of two objects whose shapes overlap.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any

import numpy as np

from setok.data.miniworld.scene import CHECK_RES, shape_mask

MARGIN = 0.08
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
RELATIONS = ("left of", "right of", "above", "below", "in front of", "behind")
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above",
            "in front of": "behind", "behind": "in front of"}
SUPERLATIVES = {"leftmost": ("x", min), "rightmost": ("x", max), "topmost": ("y", min), "bottommost": ("y", max)}
BACKGROUND_WORDS = {"flat": "plain", "gradient": "gradient", "noise": "mottled", "photo": "photographic"}


def plural(shape: str) -> str:
    return shape + ("es" if shape.endswith("s") else "s")


def count_phrase(n: int, noun: str) -> str:
    """'one circle', 'three circles' (nouns are shapes or 'object')."""
    return f"{NUMBER_WORDS[n]} {noun if n == 1 else plural(noun)}"


def phrase(obj: dict[str, Any], size: bool = True, colour: bool = True, shape: bool = True) -> str:
    """'small red circle' (any attribute may be left out; without the shape the noun is 'object')."""
    words = ([obj["size"]] if size else []) + ([obj["colour"]] if colour else [])
    return " ".join([*words, obj["shape"] if shape else "object"])


def article(words: str) -> str:
    return ("an " if words[0] in "aeiou" else "a ") + words


def region(x: float, y: float) -> str:
    """Where a point lies, in words: 'top left', 'centre', 'bottom', ..."""
    col = "left" if x < 1 / 3 else "right" if x > 2 / 3 else ""
    row = "top" if y < 1 / 3 else "bottom" if y > 2 / 3 else ""
    return f"{row} {col}".strip() or "centre"


def overlaps(a: dict[str, Any], b: dict[str, Any], res: int = CHECK_RES) -> bool:
    """Whether the full shapes of two objects overlap (hard raster at ``res`` px)."""
    return bool((shape_mask(a, res, res) & shape_mask(b, res, res)).any())


def relation_holds(a: dict[str, Any], rel: str, b: dict[str, Any], overlap: bool | None = None) -> bool:
    """Whether ``a <rel> b`` holds clearly (positions with a margin; depth only for overlapping shapes).
    ``overlap`` may pass a precomputed ``overlaps(a, b)``."""
    if rel == "left of":
        return a["x"] < b["x"] - MARGIN
    if rel == "right of":
        return a["x"] > b["x"] + MARGIN
    if rel == "above":
        return a["y"] < b["y"] - MARGIN
    if rel == "below":
        return a["y"] > b["y"] + MARGIN
    if rel in ("in front of", "behind"):
        nearer = a["depth"] > b["depth"] if rel == "in front of" else a["depth"] < b["depth"]
        return nearer and (overlaps(a, b) if overlap is None else overlap)
    raise ValueError(f"unknown relation {rel!r}; choose one of {', '.join(RELATIONS)}")


def clear_relations(objects: list[dict[str, Any]]) -> list[tuple[int, str, int]]:
    """All (i, relation, j) with i != j such that ``objects[i] <relation> objects[j]`` holds clearly."""
    masks = np.stack([shape_mask(o, CHECK_RES, CHECK_RES) for o in objects]).reshape(len(objects), -1)
    overlap = (masks[:, None, :] & masks[None, :, :]).any(-1)  # (M, M)
    return [(i, rel, j) for i, j in permutations(range(len(objects)), 2) for rel in RELATIONS
            if relation_holds(objects[i], rel, objects[j], bool(overlap[i, j]))]


def matches(obj: dict[str, Any], attrs: dict[str, str]) -> bool:
    return all(obj[k] == v for k, v in attrs.items())


def select(objects: list[dict[str, Any]], attrs: dict[str, str], superlative: str | None = None) -> list[int]:
    """Indices of the objects with ``attrs``; a superlative ('leftmost', ...) keeps the extreme one if it is
    clearly (by ``MARGIN``) more extreme than every other match, else nothing."""
    idx = [i for i, o in enumerate(objects) if matches(o, attrs)]
    if superlative is None or len(idx) < 2:
        return idx
    key, pick = SUPERLATIVES[superlative]
    best = pick(idx, key=lambda i: objects[i][key])
    others = [objects[i][key] for i in idx if i != best]
    clear = all(abs(objects[best][key] - v) > MARGIN for v in others)
    return [best] if clear else []


def referring_expression(objects: list[dict[str, Any]], i: int, use: tuple[str, ...] = ("size", "colour", "shape"),
                         ) -> tuple[str, dict[str, str], str | None] | None:
    """The shortest phrase among ``objects`` naming exactly object ``i``: 'the star', 'the red star', 'the small
    red star', 'the leftmost red star'. Returns (text, attrs, superlative) or None if no phrase is unique."""
    obj = objects[i]
    orders = [("shape",), ("colour", "shape"), ("size", "shape"), ("size", "colour", "shape"), ("colour",),
              ("size", "colour")]
    for keys in orders:
        if not set(keys) <= set(use):
            continue
        attrs = {k: obj[k] for k in keys}
        if select(objects, attrs) == [i]:
            return ("the " + phrase(obj, "size" in keys, "colour" in keys, "shape" in keys), attrs, None)
    attrs = {k: obj[k] for k in ("colour", "shape") if k in use}
    for sup in SUPERLATIVES:
        if select(objects, attrs, sup) == [i]:
            words = phrase(obj, False, "colour" in attrs, "shape" in attrs)
            return (f"the {sup} {words}", attrs, sup)
    return None


def object_list(objects: list[dict[str, Any]]) -> str:
    """'a small red circle, a large blue square and a medium green star' (left to right)."""
    items = [article(phrase(o)) for o in sorted(objects, key=lambda o: o["x"])]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def captions(scene: dict[str, Any], rng: np.random.Generator, k: int = 5) -> list[str]:
    """``k`` captions from varied templates: counts, attributes, shape counts, a spatial relation, depth/colours."""
    objects, bg = scene["objects"], BACKGROUND_WORDS[scene["background"]["kind"]]
    n = len(objects)
    opener = ["A picture of", "An image showing", "A scene with", "A drawing of"][int(rng.integers(4))]
    out = []
    # 1. counts with the full list
    out.append(f"There {'is' if n == 1 else 'are'} {count_phrase(n, 'object')}: {object_list(objects)}.")
    # 2. attributes of the nearest object and the background
    near = objects[-1]
    out.append(f"{opener} {article(phrase(near))} on a {bg} background.")
    # 3. shape counts
    shapes = sorted({o["shape"] for o in objects}, key=lambda s: (-sum(o["shape"] == s for o in objects), s))
    parts = [count_phrase(sum(o["shape"] == s for o in objects), s) for s in shapes]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    out.append(f"{text[0].upper()}{text[1:]} on a {bg} background.")
    # 4. one spatial relation (or where the single object is)
    relations = clear_relations(objects)
    rels = [r for r in relations if r[1] in RELATIONS[:4]]
    if rels:
        i, rel, j = rels[int(rng.integers(len(rels)))]
        a, b = article(phrase(objects[i], size=False)), article(phrase(objects[j], size=False))
        words = {"left of": "to the left of", "right of": "to the right of"}.get(rel, rel)
        out.append(f"{a.capitalize()} {words} {b}.")
    else:
        out.append(f"{article(phrase(near)).capitalize()} in the {region(near['x'], near['y'])} of the image.")
    # 5. occlusion, else colour counts
    depth = [r for r in relations if r[1] == "in front of"]
    if depth:
        i, _, j = depth[int(rng.integers(len(depth)))]
        out.append(f"The {phrase(objects[i], False)} partly hides the {phrase(objects[j], False)}.")
    else:
        colours = sorted({o["colour"] for o in objects})
        parts = [f"{NUMBER_WORDS[sum(o['colour'] == c for o in objects)]} {c}" for c in colours]
        text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        noun = "object" if n == 1 else "objects"
        many = f"{opener} {NUMBER_WORDS[n]} {noun} coloured {text}."
        out.append(many if n > 1 else f"{opener} a single {colours[0]} {noun}.")
    return out[:k]


def describe(scene: dict[str, Any]) -> str:
    """A complete text-to-image prompt: every object with its size, colour, shape and region, and the background."""
    items = [f"{article(phrase(o))} at the {region(o['x'], o['y'])}" for o in scene["objects"]]
    text = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return f"{text}, on a {BACKGROUND_WORDS[scene['background']['kind']]} background"
