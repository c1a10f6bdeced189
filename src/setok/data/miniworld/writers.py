"""Writing the mini world to disk in the real datasets' formats (SPEC §6).

FORMATS (``OUT`` is the folder given to ``setok data miniworld --out OUT``; ``<split>`` is train / val / test /
compositional; image paths inside JSON are relative to the folder named in brackets)

- images: ``coco/<split>/<12-digit image_id>.png`` (PNG, not JPEG, so pixels and masks stay exact), written once
  and shared by every format below, as the real VQA v2 / RefCOCO / POPE / LLaVA reuse the COCO images.
- COCO 2017: ``coco/annotations/instances_<split>.json`` (images, annotations with compressed-RLE
  ``segmentation``, ``bbox`` [x, y, w, h], ``area``, ``iscrowd`` 0, ``category_id``; categories = the 8 shapes,
  supercategory "shape"; extra per-annotation keys ``attributes`` {colour, size} and ``depth``) and
  ``coco/annotations/captions_<split>.json`` (5 captions per image). [images: ``coco/<split>/``]
- VQA v2: ``vqav2/v2_OpenEnded_mscoco_<split>_questions.json`` ({info, task_type, data_type, data_subtype,
  license, questions: [{image_id, question, question_id}]}) and ``vqav2/v2_mscoco_<split>_annotations.json``
  ({..., annotations: [{question_id, image_id, question_type, answer_type, multiple_choice_answer, answers: 10 x
  {answer, answer_confidence, answer_id}}]}). ``question_type`` holds the mini world's type (count, colour,
  shape, existence, relation, yes/no); ``question_id = image_id * 10 + k``.
- GQA: ``gqa/<split>_balanced_questions.json``: {qid: {imageId, question, answer, fullAnswer, isBalanced, types
  {structural, semantic, detailed}, semantic [{operation, argument, dependencies}], semanticStr, annotations,
  groups, equivalent, entailed}}; ``imageId`` is the file stem. [images: ``coco/<split>/<imageId>.png``]
- POPE: ``pope/<split>/coco_pope_{random,popular,adversarial}.json``, JSON lines {question_id, image, text,
  label}; "objects" are colour-shape pairs. [image: file name in ``coco/<split>/``]
- RefCOCO: ``refcoco/refs(unc).p`` (pickle, list of {ref_id, ann_id, image_id, split, sentences [{tokens, raw,
  sent_id, sent}], sent_ids, category_id, file_name}) and ``refcoco/instances.json`` (COCO images, annotations,
  categories); every split written so far is kept (a rewrite replaces only that split).
- InstructPix2Pix: ``instructpix2pix/<split>/<7-digit id>/prompt.json`` ({input, edit, output} captions, plus
  ``kind`` and ``object_index``), ``<seed>_0.png`` (input) and ``<seed>_1.png`` (edited, rendered exactly);
  ``instructpix2pix/<split>/seeds.json`` lists [folder, [seed]] pairs.
- Text-to-image: ``t2i/<split>_prompts.json``: [{image_id, prompt, image}], the image being the reference
  rendering of the prompt. [image: ``OUT``]
- LLaVA-1.5 mix (665K style): ``llava/llava_v1_5_mix_<split>.json``: [{id, image, conversations [{from: human |
  gpt, value}]}] mixing captions, VQA, grounding (boxes as [x1, y1, x2, y2] in [0, 1]) and POPE turns; edit
  records add ``target_image``, text-to-image records have no ``image`` and a ``target_image``; every record has
  a ``task`` key. [image: ``OUT``]
- LLaVA-Pretrain (558K style): ``llava/blip_laion_cc_sbu_<split>.json``: [{id, image, conversations}].
  [image: ``OUT``]
- ``manifest.json``: what was written (split, n, resolution, seed, files, counts).
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from setok.data.miniworld.annotations import EDIT_KINDS, edit_scene, pope_probes, questions, referring_expressions
from setok.data.miniworld.language import captions, describe
from setok.data.miniworld.render import Rendered, annotate_scene, make_example, render_scene, to_uint8
from setok.data.miniworld.scene import MAX_OBJECTS, SHAPES, SPLITS, check_split, rng_for

CATEGORIES = [{"id": k + 1, "name": s, "supercategory": "shape"} for k, s in enumerate(SHAPES)]
CATEGORY_ID = {s: k + 1 for k, s in enumerate(SHAPES)}
INFO = {"description": "SeTok mini world (procedural scenes, SPEC §6)", "version": "1.0", "year": 2024}
LICENSES = [{"id": 1, "name": "CC0 (procedurally generated)", "url": ""}]
PRETRAIN_PROMPTS = ("Describe the image concisely.", "Give a short caption for this picture.",
                    "Summarise what the image shows in one sentence.", "What is in this image? Answer briefly.")
SHORT_ANSWER = "Answer the question using a single word or phrase."
GROUNDING = "Please provide the bounding box coordinate of the region this sentence describes: "


def _dump(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
    return path


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)


def rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a bool (H, W) mask, JSON-ready (``counts`` as str)."""
    from pycocotools import mask as mask_utils

    out = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in out["size"]], "counts": out["counts"].decode("ascii")}


def ann_id_for(image_id: int, object_index: int) -> int:
    return image_id * 10 + object_index + 1


def coco_image(scene: dict[str, Any]) -> dict[str, Any]:
    return {"id": scene["image_id"], "file_name": scene["file_name"], "width": scene["width"],
            "height": scene["height"], "license": 1}


def coco_annotations(scene: dict[str, Any], rendered: Rendered) -> list[dict[str, Any]]:
    """One COCO instance annotation per object (visible mask as RLE, visible box, visible area)."""
    return [{"id": ann_id_for(scene["image_id"], i), "image_id": scene["image_id"],
             "category_id": CATEGORY_ID[o["shape"]], "segmentation": rle(rendered.masks[i]), "area": o["area"],
             "bbox": o["bbox"], "iscrowd": 0, "attributes": {"colour": o["colour"], "size": o["size"]},
             "depth": o["depth"]} for i, o in enumerate(scene["objects"])]


def generate(split: str, n: int, resolution: int, seed: int = 0, max_objects: int = MAX_OBJECTS,
             progress: bool = True) -> Iterator[tuple[dict[str, Any], Rendered]]:
    """Yield (annotated scene, Rendered) for images 0..n-1 of ``split``."""
    for index in tqdm(range(n), desc=f"miniworld {split}", disable=not progress, leave=False):
        yield make_example(split, index, seed, resolution, max_objects)


def edit_for(scene: dict[str, Any], seed: int) -> tuple[dict[str, Any], str, int, str] | None:
    """The image's edit: kinds tried in turn from ``EDIT_KINDS[index % 5]``; (edited scene, instruction,
    object index, kind) or None."""
    rng = rng_for(seed, scene["split"], scene["index"], 3)
    for k in range(len(EDIT_KINDS)):
        kind = EDIT_KINDS[(scene["index"] + k) % len(EDIT_KINDS)]
        out = edit_scene(scene, kind, rng)
        if out is not None:
            return (*out, kind)
    return None


def write_miniworld(out: str | Path, split: str = "train", n: int = 200, resolution: int = 64, seed: int = 0,
                    max_objects: int = MAX_OBJECTS, progress: bool = True) -> dict[str, Any]:
    """Render ``n`` images of ``split`` and write every format listed in this module's FORMATS; returns the
    manifest (also written to ``OUT/manifest.json``)."""
    check_split(split)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (got n={n!r})")
    out = Path(out)
    img_dir = out / "coco" / split
    scenes, images, anns, caps, vqa_q, vqa_a, gqa = [], [], [], [], [], [], {}
    refs, ip2p_seeds, t2i, mix, pretrain = [], [], [], [], []
    for scene, rendered in generate(split, n, resolution, seed, max_objects, progress):
        scenes.append(scene)
        iid, fname = scene["image_id"], scene["file_name"]
        rel_image = f"coco/{split}/{fname}"
        _save_png(img_dir / fname, rendered.image)
        images.append(coco_image(scene))
        anns.extend(coco_annotations(scene, rendered))
        caption_list = captions(scene, rng_for(seed, split, scene["index"], 1))
        caps.extend({"id": iid * 10 + k, "image_id": iid, "caption": c} for k, c in enumerate(caption_list))
        qs = questions(scene, rng_for(seed, split, scene["index"], 2))
        for k, q in enumerate(qs):
            qid = iid * 10 + k
            vqa_q.append({"image_id": iid, "question": q["question"], "question_id": qid})
            vqa_a.append({"question_id": qid, "image_id": iid, "question_type": q["type"],
                          "answer_type": q["answer_type"], "multiple_choice_answer": q["answer"],
                          "answers": [{"answer": q["answer"], "answer_confidence": "yes", "answer_id": j + 1}
                                      for j in range(10)]})
            gqa[str(qid)] = gqa_record(scene, q, qid)
        for r in referring_expressions(scene):
            i = r["object_index"]
            ref_id = ann_id_for(iid, i)
            sents = [{"tokens": re.findall(r"\w+", s), "raw": s, "sent_id": ref_id * 10 + k, "sent": s}
                     for k, s in enumerate(r["sentences"])]
            refs.append({"ref_id": ref_id, "ann_id": ref_id, "image_id": iid, "split": split, "sentences": sents,
                         "sent_ids": [s["sent_id"] for s in sents],
                         "category_id": CATEGORY_ID[scene["objects"][i]["shape"]], "file_name": fname})
        edit = edit_for(scene, seed)
        if edit is not None:
            edited, instruction, obj_index, kind = edit
            edited = annotate_scene(edited, r_edit := render_scene(edited, resolution))
            folder = out / "instructpix2pix" / split / f"{iid:07d}"
            _save_png(folder / f"{iid}_0.png", rendered.image)
            _save_png(folder / f"{iid}_1.png", r_edit.image)
            _dump(folder / "prompt.json", {"input": describe(scene), "edit": instruction, "output": describe(edited),
                                           "kind": kind, "object_index": obj_index})
            ip2p_seeds.append([f"{iid:07d}", [iid]])
        prompt = describe(scene)
        t2i.append({"image_id": iid, "prompt": prompt, "image": rel_image})
        pretrain.append({"id": f"{iid:012d}", "image": rel_image, "conversations": [
            {"from": "human", "value": "<image>\n" + PRETRAIN_PROMPTS[scene["index"] % len(PRETRAIN_PROMPTS)]},
            {"from": "gpt", "value": caption_list[0]}]})
        mix.extend(llava_records(scene, caption_list, qs, refs, rel_image, edit, split, prompt))
    pope = pope_probes(scenes, np.random.default_rng(np.random.SeedSequence([seed, SPLITS[split], 0, 4])))
    files = {
        "coco_instances": _dump(out / "coco/annotations" / f"instances_{split}.json",
                                {"info": INFO, "licenses": LICENSES, "images": images, "annotations": anns,
                                 "categories": CATEGORIES}),
        "coco_captions": _dump(out / "coco/annotations" / f"captions_{split}.json",
                               {"info": INFO, "licenses": LICENSES, "images": images, "annotations": caps}),
        "vqav2_questions": _dump(out / "vqav2" / f"v2_OpenEnded_mscoco_{split}_questions.json",
                                 {"info": INFO, "task_type": "Open-Ended", "data_type": "mscoco",
                                  "data_subtype": split, "license": LICENSES[0], "questions": vqa_q}),
        "vqav2_annotations": _dump(out / "vqav2" / f"v2_mscoco_{split}_annotations.json",
                                   {"info": INFO, "data_type": "mscoco", "data_subtype": split,
                                    "license": LICENSES[0], "annotations": vqa_a}),
        "gqa": _dump(out / "gqa" / f"{split}_balanced_questions.json", gqa),
        "t2i": _dump(out / "t2i" / f"{split}_prompts.json", t2i),
        "llava_mix": _dump(out / "llava" / f"llava_v1_5_mix_{split}.json", mix),
        "llava_pretrain": _dump(out / "llava" / f"blip_laion_cc_sbu_{split}.json", pretrain),
        "instructpix2pix_seeds": _dump(out / "instructpix2pix" / split / "seeds.json", ip2p_seeds),
    }
    for strategy, probes in pope.items():
        path = out / "pope" / split / f"coco_pope_{strategy}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"question_id": k + 1, "image": next(s["file_name"] for s in scenes
                                                                  if s["image_id"] == p["image_id"]),
                             "text": p["text"], "label": p["label"]}) for k, p in enumerate(probes)]
        path.write_text("\n".join(lines) + "\n")
        files[f"pope_{strategy}"] = path
    files.update(write_refcoco(out / "refcoco", split, refs, images, anns))
    counts = {"images": len(images), "instances": len(anns), "captions": len(caps), "questions": len(vqa_q),
              "refs": len(refs), "edits": len(ip2p_seeds), "pope": {k: len(v) for k, v in pope.items()},
              "llava_mix": len(mix), "llava_pretrain": len(pretrain), "t2i": len(t2i)}
    manifest = {"split": split, "n": n, "resolution": resolution, "seed": seed, "max_objects": max_objects,
                "image_root": f"coco/{split}", "files": {k: str(v.relative_to(out)) for k, v in files.items()},
                "counts": counts}
    _dump(out / "manifest.json", _merge_manifest(out / "manifest.json", manifest))
    return manifest


def _merge_manifest(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    old = json.loads(path.read_text()) if path.is_file() else {}
    splits = old.get("splits", {})
    splits[manifest["split"]] = manifest
    return {"format": "setok-miniworld-1", "splits": splits}


def write_refcoco(folder: Path, split: str, refs: list[dict[str, Any]], images: list[dict[str, Any]],
                  anns: list[dict[str, Any]]) -> dict[str, Path]:
    """Write ``refs(unc).p`` and ``instances.json``, keeping the other splits already there."""
    refs_path, inst_path = folder / "refs(unc).p", folder / "instances.json"
    old_refs = pickle.loads(refs_path.read_bytes()) if refs_path.is_file() else []
    old_inst = json.loads(inst_path.read_text()) if inst_path.is_file() else {"images": [], "annotations": []}
    ids = {im["id"] for im in images}
    all_refs = [r for r in old_refs if r["split"] != split] + refs
    inst = {"info": INFO, "licenses": LICENSES,
            "images": [im for im in old_inst["images"] if im["id"] not in ids] + images,
            "annotations": [a for a in old_inst["annotations"] if a["image_id"] not in ids] + anns,
            "categories": CATEGORIES}
    folder.mkdir(parents=True, exist_ok=True)
    refs_path.write_bytes(pickle.dumps(all_refs, protocol=2))
    _dump(inst_path, inst)
    return {"refcoco_refs": refs_path, "refcoco_instances": inst_path}


STRUCTURAL = {"count": "query", "colour": "query", "shape": "query", "existence": "verify", "relation": "verify",
              "yes/no": "verify"}
SEMANTIC = {"count": "obj", "colour": "attr", "shape": "attr", "existence": "obj", "relation": "rel",
            "yes/no": "attr"}


def gqa_record(scene: dict[str, Any], q: dict[str, Any], qid: int) -> dict[str, Any]:
    """A GQA balanced-questions entry for question ``q`` of ``scene``."""
    sem = q["semantic"]
    return {"imageId": Path(scene["file_name"]).stem, "question": q["question"], "answer": q["answer"],
            "fullAnswer": q["full_answer"], "isBalanced": True,
            "types": {"structural": STRUCTURAL[q["type"]], "semantic": SEMANTIC[q["type"]], "detailed": q["type"]},
            "semantic": sem,
            "semanticStr": " ".join(f"{op['operation']}: {op['argument']} {op['dependencies']}" for op in sem),
            "annotations": {"question": {}, "answer": {}, "fullAnswer": {}},
            "groups": {"global": q["answer"] if q["type"] in ("colour", "shape") else None, "local": q["type"]},
            "equivalent": [str(qid)], "entailed": []}


def llava_records(scene: dict[str, Any], caption_list: list[str], qs: list[dict[str, Any]],
                  refs: list[dict[str, Any]], rel_image: str, edit: tuple | None, split: str,
                  prompt: str) -> list[dict[str, Any]]:
    """LLaVA-1.5-style conversation records for one image: a multi-turn understanding conversation (caption,
    short-answer VQA, grounding), plus an edit record and a text-to-image record."""
    iid, w, h = scene["image_id"], scene["width"], scene["height"]
    turns = [("Describe the image briefly.", caption_list[1])]
    turns += [(f"{q['question']}\n{SHORT_ANSWER}", q["answer"]) for q in qs]
    mine = [r for r in refs if r["image_id"] == iid]
    if mine:
        ref = mine[0]
        x, y, bw, bh = scene["objects"][ref["ann_id"] - iid * 10 - 1]["bbox"]
        box = [round(x / w, 2), round(y / h, 2), round((x + bw) / w, 2), round((y + bh) / h, 2)]
        turns.append((GROUNDING + ref["sentences"][0]["sent"], "[" + ", ".join(f"{v:.2f}" for v in box) + "]"))
    conv = []
    for k, (question, answer) in enumerate(turns):
        conv += [{"from": "human", "value": ("<image>\n" if k == 0 else "") + question},
                 {"from": "gpt", "value": answer}]
    records = [{"id": f"{iid:012d}", "image": rel_image, "task": "understanding", "conversations": conv}]
    if edit is not None:
        records.append({"id": f"{iid:012d}_edit", "image": rel_image, "task": "edit",
                        "target_image": f"instructpix2pix/{split}/{iid:07d}/{iid}_1.png",
                        "conversations": [{"from": "human", "value": "<image>\n" + edit[1]},
                                          {"from": "gpt", "value": "<image>"}]})
    records.append({"id": f"{iid:012d}_t2i", "task": "t2i", "target_image": rel_image,
                    "conversations": [{"from": "human", "value": f"Generate an image of {prompt}."},
                                      {"from": "gpt", "value": "<image>"}]})
    return records
