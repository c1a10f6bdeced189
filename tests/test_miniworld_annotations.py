"""Mini-world annotations agree with the scene graph (SPEC §6), checked by an independent parser of the text."""

import re

import numpy as np
import pytest

from setok.data.miniworld import COLOUR_NAMES, SHAPES, SIZE_NAMES, make_example, render_scene
from setok.data.miniworld.annotations import (
    EDIT_KINDS,
    edit_scene,
    pope_probes,
    questions,
    referring_expressions,
)
from setok.data.miniworld.scene import rng_for

SUPER = {"leftmost": ("x", np.argmin), "rightmost": ("x", np.argmax), "topmost": ("y", np.argmin),
         "bottommost": ("y", np.argmax)}
SHAPE_WORD = {s: s for s in SHAPES} | {s + ("es" if s.endswith("s") else "s"): s for s in SHAPES}


def parse_filter(text):
    """Attributes named in a phrase: {'colour': ..., 'shape': ..., 'size': ...} and an optional superlative."""
    attrs, sup = {}, None
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in COLOUR_NAMES:
            attrs["colour"] = w
        elif w in SIZE_NAMES:
            attrs["size"] = w
        elif w in SHAPE_WORD:
            attrs["shape"] = SHAPE_WORD[w]
        elif w in SUPER:
            sup = w
    return attrs, sup


def resolve(objects, text):
    """Indices of the objects a noun phrase denotes (naively: filter, then the extreme for a superlative)."""
    attrs, sup = parse_filter(text)
    idx = [i for i, o in enumerate(objects) if all(o[k] == v for k, v in attrs.items())]
    if sup and idx:
        key, pick = SUPER[sup]
        values = [objects[i][key] for i in idx]
        best = idx[int(pick(values))]
        assert sorted(values).count(objects[best][key]) == 1
        idx = [best]
    return idx


def scenes(n=40, split="train"):
    return [make_example(split, i, 0, 32)[0] for i in range(n)]


def test_every_answer_agrees_with_the_scene_graph():
    seen = set()
    for sc in scenes():
        objects = sc["objects"]
        for q in questions(sc, rng_for(0, "train", sc["index"], 2)):
            seen.add(q["type"])
            text, ans = q["question"], q["answer"]
            if q["type"] == "count":
                noun = re.fullmatch(r"How many (.+) are there\?", text).group(1)
                assert ans == str(len(resolve(objects, noun)))
            elif q["type"] == "existence":
                noun = re.fullmatch(r"Is there an? (.+)\?", text).group(1)
                assert ans == ("yes" if resolve(objects, noun) else "no")
            elif q["type"] in ("colour", "shape"):
                ref = re.fullmatch(r"What (?:colour|shape) is (.+)\?", text).group(1)
                (i,) = resolve(objects, ref)
                assert ans == objects[i][q["type"]]
            elif q["type"] == "yes/no":
                ref, value = re.fullmatch(r"Is (the .+) (\w+)\?", text).groups()
                (i,) = resolve(objects, ref)
                assert ans == ("yes" if value in (objects[i]["colour"], objects[i]["size"]) else "no")
            else:
                a, rel, b = re.fullmatch(r"Is (the .+?) (to the left of|to the right of|above|below|in front of|"
                                         r"behind) (the .+)\?", text).groups()
                (i,), (j,) = resolve(objects, a), resolve(objects, b)
                oi, oj = objects[i], objects[j]
                if rel in ("in front of", "behind"):
                    alpha = render_scene(sc, 64).alpha
                    assert (alpha[i] * alpha[j]).max() > 0  # only asked about overlapping objects
                    truth = oi["depth"] > oj["depth"] if rel == "in front of" else oi["depth"] < oj["depth"]
                else:
                    key, sign = {"to the left of": ("x", -1), "to the right of": ("x", 1), "above": ("y", -1),
                                 "below": ("y", 1)}[rel]
                    truth = sign * (oi[key] - oj[key]) > 0
                assert ans == ("yes" if truth else "no"), text
    assert seen == {"count", "colour", "shape", "existence", "relation", "yes/no"}


def test_pope_probes_are_true_or_false_as_stated():
    sc = scenes(30)
    probes = pope_probes(sc, np.random.default_rng(0))
    by_id = {s["image_id"]: s for s in sc}
    for strategy, records in probes.items():
        labels = [r["label"] for r in records]
        assert labels.count("yes") == labels.count("no") > 0, strategy
        for r in records:
            noun = re.fullmatch(r"Is there an? (.+) in the image\?", r["text"]).group(1)
            assert r["label"] == ("yes" if resolve(by_id[r["image_id"]]["objects"], noun) else "no")


def test_each_referring_expression_names_exactly_one_object():
    total = 0
    for sc in scenes():
        for ref in referring_expressions(sc):
            for sentence in ref["sentences"]:
                assert resolve(sc["objects"], sentence) == [ref["object_index"]], sentence
                total += 1
    assert total > 100


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_an_edit_changes_only_the_edited_region(kind):
    done = 0
    for index in range(12):
        scene = make_example("train", index, 0, 32)[0]
        out = edit_scene(scene, kind, np.random.default_rng(index))
        if out is None:
            continue
        edited, instruction, i = out
        before, after = render_scene(scene, 32), render_scene(edited, 32)
        changed = np.abs(before.image - after.image).max(-1) > 1e-6
        assert changed.any(), instruction
        if kind == "remove":
            region = before.alpha[i] > 0
            assert len(edited["objects"]) == len(scene["objects"]) - 1
            assert resolve(scene["objects"], instruction) == [i]
        elif kind == "add":
            region = after.alpha[i] > 0
            assert len(edited["objects"]) == len(scene["objects"]) + 1 and i == len(scene["objects"])
        else:
            region = (before.alpha[i] > 0) | (after.alpha[i] > 0)
            ref = re.fullmatch(r"(?:Make|Move) (the .+?) (?:\w+)\.", instruction).group(1)
            assert resolve(scene["objects"], ref) == [i]
            old, new = scene["objects"][i], edited["objects"][i]
            diff = [k for k in ("shape", "colour", "size", "x", "y") if old[k] != new[k]]
            assert diff in {"recolour": [["colour"]], "move": [["x"], ["y"]], "resize": [["size"]]}[kind]
        assert not (changed & ~region).any(), instruction
        done += 1
    assert done >= 3
