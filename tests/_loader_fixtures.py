"""Small hand-made fixtures in each real dataset format (written by the tests into tmp_path).

Each ``build_*`` writes a valid miniature of the real layout and then applies the named ``faults`` (each fault
breaks exactly one record, so the loaders' skip counts are known exactly).
"""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220), "green": (20, 200, 20), "grey": (128, 128, 128)}


def write_image(path: Path, size: tuple[int, int], colour: str = "grey") -> Path:
    """A flat-colour RGB image of ``size`` = (width, height); format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, COLOURS[colour]).save(path)
    return path


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


# ----------------------------------------------------------------------------------------------- COCO
def rle_mask() -> np.ndarray:
    """The (30, 40) mask of annotation 102: rows 20..25, cols 25..35."""
    m = np.zeros((30, 40), dtype=np.uint8)
    m[20:26, 25:36] = 1
    return m


def crowd_mask() -> np.ndarray:
    """The (32, 32) mask of crowd annotation 103: rows 4..9 of columns 0..1 (column-major runs)."""
    m = np.zeros((32, 32), dtype=np.uint8)
    m[4:10, 0:2] = 1
    return m


def crowd_counts() -> list[int]:
    """Uncompressed RLE of :func:`crowd_mask`, counted by hand in column-major order (COCO's convention)."""
    # column 0: 4 zeros, 6 ones, 22 zeros; column 1: same; rest zeros -> runs alternate starting with zeros
    return [4, 6, 22 + 4, 6, 22 + 30 * 32]


def coco_data() -> tuple[dict, dict]:
    images = [
        {"id": 1, "file_name": "000000000001.jpg", "width": 40, "height": 30},
        {"id": 2, "file_name": "000000000002.jpg", "width": 32, "height": 32},
        {"id": 3, "file_name": "000000000003.jpg", "width": 20, "height": 20},
    ]
    captions = {
        "info": {"description": "fixture"},
        "licenses": [],
        "images": images,
        "annotations": [
            {"id": 11, "image_id": 1, "caption": "A red square."},
            {"id": 12, "image_id": 1, "caption": "  Two shapes on grey.  "},
            {"id": 13, "image_id": 2, "caption": "A blue circle."},
            {"id": 14, "image_id": 3, "caption": "A green star."},
        ],
    }
    rle = mask_utils.encode(np.asfortranarray(rle_mask()))
    rle["counts"] = rle["counts"].decode("ascii")
    instances = {
        "info": {},
        "licenses": [],
        "images": images,
        "categories": [
            {"id": 1, "name": "square", "supercategory": "shape"},
            {"id": 2, "name": "circle", "supercategory": "shape"},
        ],
        "annotations": [
            {
                "id": 101,
                "image_id": 1,
                "category_id": 1,
                "bbox": [5, 5, 10, 10],
                "area": 100.0,
                "iscrowd": 0,
                "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]],
            },
            {
                "id": 102,
                "image_id": 1,
                "category_id": 2,
                "bbox": [25, 20, 11, 6],
                "area": 66.0,
                "iscrowd": 0,
                "segmentation": rle,
            },
            {
                "id": 103,
                "image_id": 2,
                "category_id": 2,
                "bbox": [0, 4, 2, 6],
                "area": 12.0,
                "iscrowd": 1,
                "segmentation": {"size": [32, 32], "counts": crowd_counts()},
            },
            {
                "id": 104,
                "image_id": 3,
                "category_id": 1,
                "bbox": [2, 2, 4, 4],
                "area": 16.0,
                "iscrowd": 0,
                "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]],
            },
        ],
    }
    return captions, instances


COCO_FAULTS = {
    # name: (file, kind, record id as reported)
    "missing_image": ("both", "missing_image", "image 3"),
    "caption_unknown_image": ("captions", "unknown_id", "caption 15"),
    "caption_empty": ("captions", "empty_text", "caption 16"),
    "caption_no_text": ("captions", "missing_field", "caption 17"),
    "box_out": ("instances", "out_of_bounds", "annotation 105"),
    "rle_size": ("instances", "out_of_bounds", "annotation 106"),
    "polygon_out": ("instances", "out_of_bounds", "annotation 107"),
    "unknown_category": ("instances", "unknown_id", "annotation 108"),
    "ann_no_bbox": ("instances", "missing_field", "annotation 109"),
    "duplicate_image": ("both", "duplicate_id", "image 2"),
    "polygon_degenerate": ("instances", "bad_geometry", "annotation 110"),
    "box_negative": ("instances", "bad_geometry", "annotation 111"),
    "duplicate_caption": ("captions", "duplicate_id", "caption 13"),
    "duplicate_ann": ("instances", "duplicate_id", "annotation 101"),
}


def build_coco(root: Path, faults: tuple[str, ...] = (), split: str = "val2017") -> dict[str, Path]:
    """``root/annotations/{captions,instances}_<split>.json`` + ``root/images/<split>/*.jpg``."""
    captions, instances = coco_data()
    colours = {1: "red", 2: "blue", 3: "green"}
    for img in captions["images"]:
        write_image(root / "images" / split / img["file_name"], (img["width"], img["height"]), colours[img["id"]])
    caps, anns = captions["annotations"], instances["annotations"]
    if "missing_image" in faults:
        (root / "images" / split / "000000000003.jpg").unlink()
    if "polygon_degenerate" in faults:  # two points: real COCO has a few of these
        anns.append({"id": 110, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "segmentation": [[1, 1, 3, 3]]})
    if "box_negative" in faults:
        anns.append(
            {"id": 111, "image_id": 1, "category_id": 1, "bbox": [5, 5, -1, 2], "segmentation": [[1, 1, 4, 1, 4, 4]]}
        )
    if "duplicate_image" in faults:
        captions["images"].append(dict(captions["images"][1]))  # instances shares the same list
    if "duplicate_caption" in faults:
        caps.append({"id": 13, "image_id": 1, "caption": "again"})
    if "duplicate_ann" in faults:
        anns.append(dict(anns[0]))
    if "caption_unknown_image" in faults:
        caps.append({"id": 15, "image_id": 99, "caption": "ghost"})
    if "caption_empty" in faults:
        caps.append({"id": 16, "image_id": 2, "caption": "   "})
    if "caption_no_text" in faults:
        caps.append({"id": 17, "image_id": 2})
    poly = [[1, 1, 4, 1, 4, 4, 1, 4]]
    if "box_out" in faults:
        anns.append({"id": 105, "image_id": 2, "category_id": 1, "bbox": [30, 30, 10, 10], "segmentation": poly})
    if "rle_size" in faults:
        anns.append(
            {
                "id": 106,
                "image_id": 2,
                "category_id": 1,
                "bbox": [0, 0, 4, 4],
                "segmentation": {"size": [16, 16], "counts": [256]},
            }
        )
    if "polygon_out" in faults:
        anns.append(
            {
                "id": 107,
                "image_id": 1,
                "category_id": 1,
                "bbox": [0, 0, 10, 10],
                "segmentation": [[0, 0, 50, 0, 50, 10, 0, 10]],
            }
        )
    if "unknown_category" in faults:
        anns.append({"id": 108, "image_id": 1, "category_id": 9, "bbox": [0, 0, 4, 4], "segmentation": poly})
    if "ann_no_bbox" in faults:
        anns.append({"id": 109, "image_id": 1, "category_id": 1, "segmentation": poly})
    return {
        "captions": write_json(root / "annotations" / f"captions_{split}.json", captions),
        "instances": write_json(root / "annotations" / f"instances_{split}.json", instances),
        "images": root / "images" / split,
    }


# ---------------------------------------------------------------------------------------------- LLaVA
def llava_data() -> list[dict]:
    return [
        {
            "id": "000000001",
            "image": "00000/000000001.jpg",
            "conversations": [
                {"from": "human", "value": "Give a brief description of the image.\n<image>"},
                {"from": "gpt", "value": "a red square on a grey field"},
            ],
        },
        {
            "id": "000000002",
            "image": "00000/000000002.jpg",
            "conversations": [
                {"from": "human", "value": "<image>\nWhat colour is the circle?"},
                {"from": "gpt", "value": "Blue."},
                {"from": "human", "value": "How many circles are there?"},
                {"from": "gpt", "value": "One."},
            ],
        },
        {
            "id": "sharegpt_1",
            "model": "",
            "conversations": [{"from": "human", "value": "Say hello."}, {"from": "gpt", "value": "Hello."}],
        },
    ]


LLAVA_FAULTS = {
    "missing_image": ("missing_image", "x_missing"),
    "no_conversations": ("missing_field", "x_nofield"),
    "empty_turn": ("empty_text", "x_empty"),
    "roles": ("bad_conversation", "x_roles"),
    "no_token": ("bad_conversation", "x_notoken"),
    "text_with_token": ("bad_conversation", "x_texttoken"),
}


def build_llava(root: Path, faults: tuple[str, ...] = (), name: str = "blip_laion_cc_sbu_558k.json") -> dict:
    """``root/<name>`` + ``root/images/00000/*.jpg`` (LLaVA-Pretrain's ``images/`` folder)."""
    write_image(root / "images" / "00000" / "000000001.jpg", (24, 16), "red")
    write_image(root / "images" / "00000" / "000000002.jpg", (16, 24), "blue")
    data = llava_data()
    ok = [{"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": "Shapes."}]
    img = "00000/000000001.jpg"
    if "missing_image" in faults:
        data.append({"id": "x_missing", "image": "00000/000000404.jpg", "conversations": ok})
    if "no_conversations" in faults:
        data.append({"id": "x_nofield", "image": img})
    if "empty_turn" in faults:
        data.append({"id": "x_empty", "image": img, "conversations": [ok[0], {"from": "gpt", "value": ""}]})
    if "roles" in faults:
        data.append({"id": "x_roles", "image": img, "conversations": [ok[0], {"from": "human", "value": "Hm?"}]})
    if "no_token" in faults:
        data.append(
            {
                "id": "x_notoken",
                "image": img,
                "conversations": [
                    {"from": "human", "value": "Describe."},
                    {"from": "gpt", "value": "Shapes."},
                ],
            }
        )
    if "text_with_token" in faults:
        data.append({"id": "x_texttoken", "conversations": ok})
    return {"json": write_json(root / name, data), "images": root / "images"}


# ------------------------------------------------------------------------------------------ VQA v2
VQA_FAULTS = {
    "empty_question": ("questions", "empty_text", "40"),
    "nine_answers": ("annotations", "bad_answers", "50"),
    "orphan_annotation": ("annotations", "unknown_id", "60"),
    "no_annotation": ("annotations", "unknown_id", "70"),
    "missing_image": ("questions", "missing_image", "80"),
    "no_image_id": ("questions", "missing_field", "90"),
    "duplicate_question": ("questions", "duplicate_id", "10"),
}


def vqa_answers(*answers: str) -> list[dict]:
    return [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)]


def build_vqa(root: Path, faults: tuple[str, ...] = ()) -> dict[str, Path]:
    """VQA v2 val2014 questions + annotations; images ``root/val2014/COCO_val2014_<id:012d>.jpg``."""
    write_image(root / "val2014" / "COCO_val2014_000000000001.jpg", (20, 20), "red")
    write_image(root / "val2014" / "COCO_val2014_000000000002.jpg", (20, 20), "blue")
    qs = [
        {"image_id": 1, "question": "What colour is the square?", "question_id": 10},
        {"image_id": 2, "question": "How many circles are there?", "question_id": 20},
        {"image_id": 1, "question": "Is there a star?", "question_id": 30},
    ]
    anns = [
        {
            "question_id": 10,
            "image_id": 1,
            "question_type": "what color is the",
            "answer_type": "other",
            "multiple_choice_answer": "red",
            "answers": vqa_answers(*(["red"] * 8 + ["dark red", "orange"])),
        },
        {
            "question_id": 20,
            "image_id": 2,
            "question_type": "how many",
            "answer_type": "number",
            "multiple_choice_answer": "1",
            "answers": vqa_answers(*(["1"] * 9 + ["one"])),
        },
        {
            "question_id": 30,
            "image_id": 1,
            "question_type": "is there a",
            "answer_type": "yes/no",
            "multiple_choice_answer": "no",
            "answers": vqa_answers(*(["no"] * 10)),
        },
    ]
    ten = vqa_answers(*(["x"] * 10))
    if "empty_question" in faults:
        qs.append({"image_id": 1, "question": " ", "question_id": 40})
        anns.append({"question_id": 40, "image_id": 1, "answers": ten})
    if "nine_answers" in faults:
        qs.append({"image_id": 1, "question": "What shape?", "question_id": 50})
        anns.append({"question_id": 50, "image_id": 1, "answers": vqa_answers(*(["square"] * 9))})
    if "orphan_annotation" in faults:
        anns.append({"question_id": 60, "image_id": 1, "answers": ten})
    if "no_annotation" in faults:
        qs.append({"image_id": 1, "question": "Where?", "question_id": 70})
    if "missing_image" in faults:
        qs.append({"image_id": 3, "question": "What is it?", "question_id": 80})
        anns.append({"question_id": 80, "image_id": 3, "answers": ten})
    if "duplicate_question" in faults:
        qs.append(dict(qs[0]))
    if "no_image_id" in faults:
        qs.append({"question": "Why?", "question_id": 90})
        anns.append({"question_id": 90, "image_id": 1, "answers": ten})
    head = {"info": {}, "license": {}, "data_type": "mscoco", "data_subtype": "val2014"}
    return {
        "questions": write_json(
            root / "v2_OpenEnded_mscoco_val2014_questions.json",
            {**head, "task_type": "Open-Ended", "questions": qs},
        ),
        "annotations": write_json(root / "v2_mscoco_val2014_annotations.json", {**head, "annotations": anns}),
        "images": root / "val2014",
    }


# ---------------------------------------------------------------------------------------------- GQA
GQA_FAULTS = {
    "no_image": ("missing_field", "203"),
    "empty": ("empty_text", "204"),
    "missing_image": ("missing_image", "205"),
}


def build_gqa(root: Path, faults: tuple[str, ...] = ()) -> dict[str, Path]:
    """``root/testdev_balanced_questions.json`` (dict by question id) + ``root/images/<imageId>.jpg``."""
    write_image(root / "images" / "n161313.jpg", (20, 20), "red")
    types = {"structural": "query", "semantic": "attr", "detailed": "colorObj"}
    data = {
        "201": {
            "imageId": "n161313",
            "question": "What colour is the square?",
            "answer": "red",
            "fullAnswer": "The square is red.",
            "types": types,
            "isBalanced": True,
        },
        "202": {
            "imageId": "n161313",
            "question": "Is there a circle?",
            "answer": "no",
            "fullAnswer": "No, there is no circle.",
            "types": {**types, "structural": "verify"},
        },
    }
    if "no_image" in faults:
        data["203"] = {"question": "Which?", "answer": "a"}
    if "empty" in faults:
        data["204"] = {"imageId": "n161313", "question": "", "answer": "a"}
    if "missing_image" in faults:
        data["205"] = {"imageId": "n404", "question": "What?", "answer": "a"}
    return {
        "questions": write_json(root / "testdev_balanced_questions.json", data),
        "images": root / "images",
    }


# --------------------------------------------------------------------------------------------- POPE
POPE_FAULTS = {
    "bad_line": ("bad_json", "line 3"),
    "no_label": ("missing_field", "5"),
    "empty": ("empty_text", "6"),
    "maybe": ("bad_answers", "7"),
    "missing_image": ("missing_image", "8"),
    "duplicate": ("duplicate_id", "1"),
}


def build_pope(root: Path, faults: tuple[str, ...] = (), variant: str = "random") -> dict[str, Path]:
    """``root/coco_pope_<variant>.json``: one JSON object per line (the real files are JSON lines)."""
    write_image(root / "val2014" / "COCO_val2014_000000310196.jpg", (20, 20), "red")
    img = "COCO_val2014_000000310196.jpg"
    lines = [
        json.dumps({"question_id": 1, "image": img, "text": "Is there a snowboard in the image?", "label": "yes"}),
        json.dumps({"question_id": 2, "image": img, "text": "Is there a dog in the image?", "label": "No"}),
    ]
    if "bad_line" in faults:
        lines.append('{"question_id": 4, "image": ')
    if "no_label" in faults:
        lines.append(json.dumps({"question_id": 5, "image": img, "text": "Is there a cat?"}))
    if "empty" in faults:
        lines.append(json.dumps({"question_id": 6, "image": img, "text": "", "label": "no"}))
    if "maybe" in faults:
        lines.append(json.dumps({"question_id": 7, "image": img, "text": "Is there a car?", "label": "maybe"}))
    if "duplicate" in faults:
        lines.append(lines[0])
    if "missing_image" in faults:
        lines.append(json.dumps({"question_id": 8, "image": "COCO_val2014_404.jpg", "text": "Is?", "label": "no"}))
    path = root / f"coco_pope_{variant}.json"
    path.write_text("\n".join(lines) + "\n")
    return {"file": path, "images": root / "val2014"}


# ------------------------------------------------------------------------------------------ RefCOCO
REF_FAULTS = {
    "unknown_ann": ("unknown_id", "ref 3"),
    "no_sentences": ("empty_text", "ref 4"),
    "box_out": ("out_of_bounds", "ref 5"),
    "no_split": ("missing_field", "ref 6"),
    "missing_image": ("missing_image", "ref 7"),
    "image_mismatch": ("unknown_id", "ref 8"),
    "duplicate_ref": ("duplicate_id", "ref 1"),
}


def sentence(sent_id: int, text: str) -> dict:
    return {"sent_id": sent_id, "sent": text.lower(), "raw": text, "tokens": text.lower().split()}


def build_refcoco(root: Path, faults: tuple[str, ...] = (), split_by: str = "unc") -> dict[str, Path]:
    """``root/refcoco/refs(<split_by>).p`` + ``root/refcoco/instances.json`` + ``root/images/train2014``."""
    _, instances = coco_data()
    for img in instances["images"]:
        img["file_name"] = f"COCO_train2014_{img['id']:012d}.jpg"
        write_image(root / "images" / "train2014" / img["file_name"], (img["width"], img["height"]))
    refs = [
        {
            "ref_id": 1,
            "ann_id": 101,
            "image_id": 1,
            "category_id": 1,
            "split": "train",
            "file_name": "COCO_train2014_000000000001_101.jpg",
            "sent_ids": [1, 2],
            "sentences": [sentence(1, "The red square"), sentence(2, "left square")],
        },
        {
            "ref_id": 2,
            "ann_id": 103,
            "image_id": 2,
            "category_id": 2,
            "split": "testA",
            "file_name": "COCO_train2014_000000000002_103.jpg",
            "sent_ids": [3],
            "sentences": [sentence(3, "Circle at left")],
        },
    ]
    base = {
        "category_id": 1,
        "split": "val",
        "file_name": "x.jpg",
        "sent_ids": [9],
        "sentences": [sentence(9, "thing")],
    }
    if "unknown_ann" in faults:
        refs.append({**base, "ref_id": 3, "ann_id": 999, "image_id": 1})
    if "no_sentences" in faults:
        refs.append({**base, "ref_id": 4, "ann_id": 102, "image_id": 1, "sentences": []})
    if "box_out" in faults:
        instances["annotations"].append(
            {
                "id": 105,
                "image_id": 2,
                "category_id": 1,
                "bbox": [30, 30, 10, 10],
                "segmentation": [[1, 1, 4, 1, 4, 4]],
            }
        )
        refs.append({**base, "ref_id": 5, "ann_id": 105, "image_id": 2})
    if "no_split" in faults:
        ref = {**base, "ref_id": 6, "ann_id": 102, "image_id": 1}
        del ref["split"]
        refs.append(ref)
    if "missing_image" in faults:
        (root / "images" / "train2014" / "COCO_train2014_000000000003.jpg").unlink()
        refs.append({**base, "ref_id": 7, "ann_id": 104, "image_id": 3})
    if "duplicate_ref" in faults:
        refs.append(dict(refs[0]))
    if "image_mismatch" in faults:
        refs.append({**base, "ref_id": 8, "ann_id": 101, "image_id": 2})
    folder = root / "refcoco"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"refs({split_by}).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)
    write_json(folder / "instances.json", instances)
    return {"root": folder, "images": root / "images" / "train2014"}


# ---------------------------------------------------------------------------------- InstructPix2Pix
IP2P_FAULTS = {
    "bad_prompt": ("bad_json", "0000003"),
    "no_prompt": ("missing_field", "0000004"),
    "empty_edit": ("empty_text", "0000005"),
    "missing_output": ("missing_image", "0000001/444"),
}


def build_ip2p(root: Path, faults: tuple[str, ...] = (), seeds_json: bool = True) -> Path:
    """``root/<prompt dir>/prompt.json`` + ``<seed>_0.jpg`` / ``<seed>_1.jpg`` (+ ``root/seeds.json``)."""
    prompts = {
        "0000001": (
            {"input": "a red square", "edit": "make it blue", "output": "a blue square"},
            ["111", "222"],
        ),
        "0000002": ({"input": "a circle", "edit": " remove the circle ", "output": "nothing"}, ["333"]),
    }
    if "bad_prompt" in faults:
        prompts["0000003"] = ("{not json", ["555"])
    if "no_prompt" in faults:
        prompts["0000004"] = (None, ["666"])
    if "empty_edit" in faults:
        prompts["0000005"] = ({"input": "a", "edit": "", "output": "b"}, ["777"])
    for name, (prompt, seeds) in prompts.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(prompt, dict):
            write_json(folder / "prompt.json", prompt)
        elif isinstance(prompt, str):
            (folder / "prompt.json").write_text(prompt)
        for seed in seeds:
            write_image(folder / f"{seed}_0.jpg", (16, 16), "red")
            write_image(folder / f"{seed}_1.jpg", (16, 16), "blue")
    if "missing_output" in faults:
        write_image(root / "0000001" / "444_0.jpg", (16, 16), "red")
        prompts["0000001"][1].append("444")
    if seeds_json:
        write_json(root / "seeds.json", [[name, [int(s) for s in seeds]] for name, (_, seeds) in prompts.items()])
    return root


# ------------------------------------------------------------------------------------- image-text
IT_FAULTS = {
    "caption_only": ("missing_image", "00000/000000003"),
    "image_only": ("missing_field", "00000/000000004"),
    "empty_caption": ("empty_text", "00000/000000005"),
    "bad_json": ("bad_json", "00000/000000006"),
}


def image_text_members(faults: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Member name -> bytes of a CC3M/LAION-style sample set (img2dataset naming)."""

    def png(colour: str) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (12, 8), COLOURS[colour]).save(buf, format="PNG")
        return buf.getvalue()

    members = {
        "00000/000000001.png": png("red"),
        "00000/000000001.txt": b"a red square",
        "00000/000000001.json": json.dumps({"key": "000000001", "url": "http://x", "status": "success"}).encode(),
        "00000/000000002.png": png("blue"),
        "00000/000000002.json": json.dumps({"caption": "a blue circle", "width": 12}).encode(),
    }
    if "caption_only" in faults:
        members["00000/000000003.txt"] = b"orphan caption"
    if "image_only" in faults:
        members["00000/000000004.png"] = png("green")
    if "empty_caption" in faults:
        members["00000/000000005.png"] = png("green")
        members["00000/000000005.txt"] = b"  "
    if "bad_json" in faults:
        members["00000/000000006.png"] = png("green")
        members["00000/000000006.json"] = b"{broken"
    return members


def build_image_text_folder(root: Path, faults: tuple[str, ...] = ()) -> Path:
    for name, data in image_text_members(faults).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def build_image_text_shard(path: Path, faults: tuple[str, ...] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in image_text_members(faults).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
