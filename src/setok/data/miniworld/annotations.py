"""Task annotations derived from a scene graph (SPEC §6): questions, POPE probes, referring expressions, edits.

Every record is computed from the graph, so each answer is exact. A question record is a dict
``{"type", "question", "answer", "full_answer", "answer_type", "semantic"}``; ``type`` is one of
``QUESTION_TYPES`` and ``semantic`` is a GQA-style program (a list of ``{"operation", "argument",
"dependencies"}``). Yes/no answers are drawn 50/50 whenever both are possible (GQA's "balanced").
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import numpy as np

from setok.data.miniworld.language import (
    NUMBER_WORDS,
    OPPOSITE,
    article,
    clear_relations,
    phrase,
    plural,
    referring_expression,
    region,
    select,
)
from setok.data.miniworld.scene import (
    COLOUR_NAMES,
    MIN_VISIBLE,
    SHAPES,
    SIZE_NAMES,
    SIZES,
    allowed_pair,
    sample_object,
    visible_fractions,
)

QUESTION_TYPES = ("count", "colour", "shape", "existence", "relation", "yes/no")
ANSWER_TYPES = {"count": "number", "colour": "other", "shape": "other", "existence": "yes/no",
                "relation": "yes/no", "yes/no": "yes/no"}
EDIT_KINDS = ("remove", "recolour", "move", "resize", "add")
MOVES = {"left": (-0.2, 0.0), "right": (0.2, 0.0), "up": (0.0, -0.2), "down": (0.0, 0.2)}


def _program(attrs: dict[str, str], final: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """A GQA-style program: select objects, filter by each attribute, then an optional final operation."""
    ops: list[dict[str, Any]] = [{"operation": "select", "argument": attrs.get("shape", "object"), "dependencies": []}]
    for key in ("colour", "size"):
        if key in attrs:
            ops.append({"operation": f"filter {key}", "argument": attrs[key], "dependencies": [len(ops) - 1]})
    if final:
        ops.append({"operation": final[0], "argument": final[1], "dependencies": [len(ops) - 1]})
    return ops


def _record(qtype: str, question: str, answer: str, full: str, semantic: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": qtype, "question": question, "answer": answer, "full_answer": full,
            "answer_type": ANSWER_TYPES[qtype], "semantic": semantic}


def _noun(attrs: dict[str, str], n: int = 2) -> str:
    """'red circles', 'red objects', 'circles' for a filter (plural unless n == 1)."""
    head = attrs.get("shape", "object")
    words = [attrs[k] for k in ("size", "colour") if k in attrs]
    return " ".join([*words, head if n == 1 else plural(head)])


def count_question(objects: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
    """'How many red circles are there?' with the exact count (filters: shape, colour, both, or none)."""
    obj = objects[int(rng.integers(len(objects)))]
    if rng.random() < 0.25:  # ask about something that may be absent, so that 0 occurs too
        obj = {"shape": SHAPES[int(rng.integers(len(SHAPES)))], "colour": COLOUR_NAMES[int(rng.integers(10))]}
    keys = [("shape",), ("colour",), ("colour", "shape"), ()][int(rng.integers(4))]
    attrs = {k: obj[k] for k in keys}
    n = len(select(objects, attrs))
    noun = _noun(attrs)
    full = f"There {'is' if n == 1 else 'are'} {NUMBER_WORDS[n]} {_noun(attrs, n)}."
    return _record("count", f"How many {noun} are there?", str(n), full, _program(attrs, ("count", "")))


def colour_question(objects: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any] | None:
    """'What colour is the star?' for an object named without its colour."""
    for i in rng.permutation(len(objects)):
        ref = referring_expression(objects, int(i), use=("size", "shape"))
        if ref and ref[2] is None:
            c = objects[int(i)]["colour"]
            return _record("colour", f"What colour is {ref[0]}?", c, f"{ref[0].capitalize()} is {c}.",
                           _program(ref[1], ("query", "colour")))
    return None


def shape_question(objects: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any] | None:
    """'What shape is the red object?' for an object named without its shape."""
    for i in rng.permutation(len(objects)):
        ref = referring_expression(objects, int(i), use=("size", "colour"))
        if ref and ref[2] is None:
            s = objects[int(i)]["shape"]
            return _record("shape", f"What shape is {ref[0]}?", s, f"{ref[0].capitalize()} is {article(s)}.",
                           _program(ref[1], ("query", "shape")))
    return None


def existence_question(objects: list[dict[str, Any]], rng: np.random.Generator, split: str) -> dict[str, Any]:
    """'Is there a blue triangle?' answered yes or no with equal probability (the no picks an absent pair)."""
    present = {(o["shape"], o["colour"]) for o in objects}
    if rng.random() < 0.5:
        shape, colour = sorted(present)[int(rng.integers(len(present)))]
    else:
        absent = sorted((s, c) for s in SHAPES for c in COLOUR_NAMES
                        if (s, c) not in present and allowed_pair(s, c, split))
        shape, colour = absent[int(rng.integers(len(absent)))]
    yes = (shape, colour) in present
    text = article(f"{colour} {shape}")
    full = f"Yes, there is {text}." if yes else f"No, there is no {colour} {shape}."
    return _record("existence", f"Is there {text}?", "yes" if yes else "no", full,
                   _program({"shape": shape, "colour": colour}, ("exist", "")))


def relation_question(objects: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any] | None:
    """'Is the red circle to the left of the blue square?' for two uniquely named objects with a clear relation."""
    named = {i: referring_expression(objects, i) for i in range(len(objects))}
    rels = [(i, r, j) for i, r, j in clear_relations(objects) if named[i] and named[j]]
    if not rels:
        return None
    i, rel, j = rels[int(rng.integers(len(rels)))]
    yes = rng.random() < 0.5
    asked = rel if yes else OPPOSITE[rel]
    a, b = named[i][0], named[j][0]
    words = {"left of": "to the left of", "right of": "to the right of"}
    full = f"{'Yes' if yes else 'No'}, {a} is {words.get(rel, rel)} {b}."
    semantic = _program(named[i][1])
    semantic.append({"operation": "relate", "argument": f"{asked},{b}", "dependencies": [len(semantic) - 1]})
    words = words.get(asked, asked)
    return _record("relation", f"Is {a} {words} {b}?", "yes" if yes else "no", full, semantic)


def yesno_question(objects: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any] | None:
    """'Is the star red?' / 'Is the star large?': verify an attribute of a uniquely named object."""
    for i in rng.permutation(len(objects)):
        obj = objects[int(i)]
        key = ("colour", "size")[int(rng.integers(2))]
        ref = referring_expression(objects, int(i), use=tuple(k for k in ("size", "colour", "shape") if k != key))
        if not ref or ref[2] is not None:
            continue
        choices = [v for v in (COLOUR_NAMES if key == "colour" else SIZE_NAMES) if v != obj[key]]
        yes = rng.random() < 0.5
        value = obj[key] if yes else choices[int(rng.integers(len(choices)))]
        full = f"{'Yes' if yes else 'No'}, {ref[0]} is {obj[key]}."
        return _record("yes/no", f"Is {ref[0]} {value}?", "yes" if yes else "no", full,
                       _program(ref[1], (f"verify {key}", value)))
    return None


def questions(scene: dict[str, Any], rng: np.random.Generator) -> list[dict[str, Any]]:
    """One question of each type the scene allows (count and existence always; the others when some object can be
    named uniquely)."""
    objects, split = scene["objects"], scene["split"]
    out = [count_question(objects, rng), colour_question(objects, rng), shape_question(objects, rng),
           existence_question(objects, rng, split), relation_question(objects, rng), yesno_question(objects, rng)]
    return [q for q in out if q is not None]


# POPE (Li et al. 2023): "Is there a <object> in the image?" with positives from the ground truth and negatives
# sampled three ways. The mini world's "objects" are colour-shape pairs (80 of them, like COCO's 80 classes).
def pair_name(pair: tuple[str, str]) -> str:
    return f"{pair[1]} {pair[0]}"


def pope_probes(scenes: list[dict[str, Any]], rng: np.random.Generator, per_image: int = 3,
                ) -> dict[str, list[dict[str, Any]]]:
    """POPE probes for each strategy: ``per_image`` positives and as many negatives per image.

    random: absent pairs drawn uniformly; popular: the most frequent pairs of the split that are absent;
    adversarial: the absent pairs that co-occur most often with the image's pairs. Returns
    ``{strategy: [{"image_id", "pair", "label"}]}`` (label "yes"/"no").
    """
    split = scenes[0]["split"]
    every = [(s, c) for s in SHAPES for c in COLOUR_NAMES if allowed_pair(s, c, split)]
    present = [sorted({(o["shape"], o["colour"]) for o in sc["objects"]}) for sc in scenes]
    freq = Counter(p for ps in present for p in ps)
    cooc: Counter = Counter()
    for ps in present:
        for a in ps:
            for b in ps:
                if a != b:
                    cooc[(a, b)] += 1
    popular = sorted(every, key=lambda p: (-freq[p], p))
    out: dict[str, list[dict[str, Any]]] = {"random": [], "popular": [], "adversarial": []}
    for sc, ps in zip(scenes, present, strict=True):
        pos = [ps[int(k)] for k in rng.permutation(len(ps))[:per_image]]
        absent = [p for p in every if p not in ps]
        k = len(pos)
        negs = {
            "random": [absent[int(j)] for j in rng.permutation(len(absent))[:k]],
            "popular": [p for p in popular if p not in ps][:k],
            "adversarial": sorted(absent, key=lambda p: (-sum(cooc[(q, p)] for q in ps), -freq[p], p))[:k],
        }
        for strategy, neg in negs.items():
            for p, label in [*((p, "yes") for p in pos), *((p, "no") for p in neg)]:
                out[strategy].append({"image_id": sc["image_id"], "pair": p, "label": label,
                                      "text": f"Is there {article(pair_name(p))} in the image?"})
    return out


def referring_expressions(scene: dict[str, Any]) -> list[dict[str, Any]]:
    """For every object that some phrase names uniquely: ``{"object_index", "sentence", "attrs", "superlative"}``
    with two phrasings of the same expression."""
    out = []
    for i in range(len(scene["objects"])):
        ref = referring_expression(scene["objects"], i)
        if ref is None:
            continue
        text, attrs, sup = ref
        where = region(**_xy(scene["objects"][i]))
        sentences = [text, f"{text} in the picture" if sup else f"{text} at the {where}"]
        out.append({"object_index": i, "sentences": sentences, "attrs": attrs, "superlative": sup})
    return out


def _xy(obj: dict[str, Any]) -> dict[str, float]:
    return {"x": obj["x"], "y": obj["y"]}


# Edits (InstructPix2Pix-style triplets). The edited scene is rendered with the same background, so the edited
# image is exact; objects keep their depth order (an added object goes in front).
def _renumber(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for depth, obj in enumerate(objects):
        obj["id"], obj["depth"] = depth + 1, depth
        for key in ("area", "bbox", "visible_fraction"):
            obj.pop(key, None)
    return objects


def edit_scene(scene: dict[str, Any], kind: str, rng: np.random.Generator) -> tuple[dict[str, Any], str, int] | None:
    """Apply one edit of ``kind`` to a copy of ``scene``: returns (edited scene, instruction, object index in
    the edited scene, or in the input scene for 'remove'), or None when no valid edit of that kind exists."""
    if kind not in EDIT_KINDS:
        raise ValueError(f"unknown edit kind {kind!r}; choose one of {', '.join(EDIT_KINDS)}")
    edited = copy.deepcopy(scene)
    objects = edited["objects"]
    split = scene["split"]
    named = [(i, r) for i in rng.permutation(len(objects)) if (r := referring_expression(objects, int(i)))]
    if kind == "add":
        for _ in range(40):
            new = sample_object(rng, split)
            if len(objects) < 8 and min(visible_fractions([*objects, new])) >= MIN_VISIBLE:
                objects.append(new)
                _renumber(objects)
                where = region(new["x"], new["y"])
                text = f"Add {article(phrase(new))} at the {where}."
                return edited, text, len(objects) - 1
        return None
    if not named:
        return None
    i, (ref, _, _) = int(named[0][0]), named[0][1]
    obj = objects[i]
    if kind == "remove":
        if len(objects) < 2:
            return None
        del objects[i]
        _renumber(objects)
        return edited, f"Remove {ref}.", i
    if kind == "recolour":
        colours = [c for c in COLOUR_NAMES if c != obj["colour"] and allowed_pair(obj["shape"], c, split)]
        obj["colour"] = colours[int(rng.integers(len(colours)))]
        _renumber(objects)
        return edited, f"Make {ref} {obj['colour']}.", i
    if kind == "move":
        for direction in rng.permutation(list(MOVES)):
            dx, dy = MOVES[str(direction)]
            x, y = obj["x"] + dx, obj["y"] + dy
            if obj["radius"] <= x <= 1 - obj["radius"] and obj["radius"] <= y <= 1 - obj["radius"]:
                trial = copy.deepcopy(objects)
                trial[i]["x"], trial[i]["y"] = round(x, 4), round(y, 4)
                if min(visible_fractions(trial)) >= MIN_VISIBLE:
                    edited["objects"] = _renumber(trial)
                    return edited, f"Move {ref} {direction}.", i
        return None
    # resize: one size class up or down, if everything stays visible and inside the image
    k = SIZE_NAMES.index(obj["size"])
    for step in rng.permutation([-1, 1]):
        if 0 <= k + step < len(SIZE_NAMES):
            trial = copy.deepcopy(objects)
            size = SIZE_NAMES[k + int(step)]
            trial[i]["size"], trial[i]["radius"] = size, SIZES[size]
            r = SIZES[size]
            inside = r <= trial[i]["x"] <= 1 - r and r <= trial[i]["y"] <= 1 - r
            if inside and min(visible_fractions(trial)) >= MIN_VISIBLE:
                edited["objects"] = _renumber(trial)
                return edited, f"Make {ref} {'bigger' if step > 0 else 'smaller'}.", i
    return None
