"""Small worked examples for the chapter "How the paper's numbers are scored" (notebooks/04_scoring).

Each function builds a tiny, hand-checkable input for one metric family and/or lays a scorer's answers out as a
pandas table, so the chapter only calls, displays and explains. The inputs are fixed (no randomness): the same
chapter runs at every profile.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from setok.eval.captioning import fallback_tokenize, score_captions, tokenize
from setok.eval.choice import match_option
from setok.eval.vqa import normalize_answer, soft_accuracy_from_matches, vqa_accuracy

# ---------------------------------------------------------------------------------------------------------------------
# Captioning
# ---------------------------------------------------------------------------------------------------------------------
CAPTION_PREDICTIONS = {
    "img1": "A dog runs across the grass.",
    "img2": "Two cats are sleeping on a sofa",
    "img3": "a red car parked on the street",
    "img4": "A man is riding a bike down the road.",
}
CAPTION_REFERENCES = {
    "img1": ["A dog is running on the grass.", "a brown dog runs across a lawn", "Dog running in a field."],
    "img2": ["two cats are sleeping on a sofa", "Cats sleeping on a couch.", "two cats asleep together"],
    "img3": ["A red car parked on the street.", "a car on a city street", "The red car is parked by the curb."],
    "img4": ["A man rides his bicycle on a road.", "a cyclist on the street", "Man riding a bike."],
}


def captioning_table(tokenizer: str = "auto") -> pd.DataFrame:
    """CIDEr/BLEU-4/ROUGE-L of the toy split scored whole, with the fallback tokenizer, and as a 2-image subset."""
    rows = []
    whole = score_captions(CAPTION_PREDICTIONS, CAPTION_REFERENCES, tokenizer=tokenizer)
    rows.append({"scored as": "whole split (4 images)", **whole})
    rows.append({"scored as": "whole split, regex tokenizer",
                 **score_captions(CAPTION_PREDICTIONS, CAPTION_REFERENCES, tokenizer="fallback")})
    first2 = ["img1", "img2"]
    sub = score_captions({k: CAPTION_PREDICTIONS[k] for k in first2}, {k: CAPTION_REFERENCES[k] for k in first2},
                         tokenizer=tokenizer)
    rows.append({"scored as": "img1+img2 only", **sub})
    return pd.DataFrame(rows).set_index("scored as")


def tokenizer_table(sentences: Sequence[str], tokenizer: str = "auto") -> pd.DataFrame:
    """Each sentence as the PTB tokenizer (if Java is there) and the regex fallback see it."""
    tokens, label = tokenize({i: [s] for i, s in enumerate(sentences)}, tokenizer)
    return pd.DataFrame({"caption": list(sentences), label: [tokens[i][0] for i in range(len(sentences))],
                         "fallback-regex": [fallback_tokenize(s) for s in sentences]})


# ---------------------------------------------------------------------------------------------------------------------
# VQA
# ---------------------------------------------------------------------------------------------------------------------
NORMALISATION_CASES = ("Two", "a dog", "The Dog.", "dont", "yes.", "Yes!", "1,000", "3.5", "hot-dog",
                       "left - right", "none", "its")


def normalisation_table(answers: Sequence[str] = NORMALISATION_CASES) -> pd.DataFrame:
    """Raw answers and what the official normalisation makes of them."""
    return pd.DataFrame({"answer": list(answers), "normalised": [normalize_answer(a) for a in answers]})


def soft_accuracy_table(n: int = 10) -> pd.DataFrame:
    """Soft accuracy for m = 0..n matching humans: the naive leave-one-out loop next to the closed form."""
    rows = []
    for m in range(n + 1):
        answers = [1] * m + [0] * (n - m)
        subsets = list(itertools.combinations(range(n), n - 1))
        naive = sum(min(1.0, sum(answers[i] for i in s) / 3) for s in subsets) / len(subsets)
        rows.append({"humans agreeing": m, "min(m/3, 1)": min(1.0, m / 3), "leave-one-out mean": naive,
                     "closed form": float(soft_accuracy_from_matches(m, n))})
    return pd.DataFrame(rows).set_index("humans agreeing")


REFERENCE_RULE_CASES = (
    ("a dog", ["a dog"] * 10),
    ("a dog", ["dog"] * 10),
    ("yes", ["yes."] * 3 + ["no"] * 7),
    ("yes", ["yes!"] * 3 + ["no"] * 7),
    ("2", ["two"] * 4 + ["2"] * 2 + ["3"] * 4),
)


def reference_rule_table(cases: Sequence[tuple[str, Sequence[str]]] = REFERENCE_RULE_CASES) -> pd.DataFrame:
    """One prediction against ten human answers under the VQA v2 rule and the EvalAI (TextVQA/VizWiz) rule."""
    rows = []
    for pred, answers in cases:
        counts = pd.Series(list(answers)).value_counts()
        rows.append({"prediction": pred, "human answers": ", ".join(f"{k!r} x{v}" for k, v in counts.items()),
                     "VQA v2 / OK-VQA rule": vqa_accuracy(pred, answers, "official-vqa"),
                     "TextVQA / VizWiz rule": vqa_accuracy(pred, answers, "full")})
    return pd.DataFrame(rows)


VQA_PREDICTIONS = {"q1": "two", "q2": "Yes", "q3": "blue", "q4": "skateboarding"}
VQA_REFERENCES = {
    "q1": {"answers": ["2"] * 9 + ["3"], "question_type": "how many", "answer_type": "number"},
    "q2": {"answers": ["yes"] * 2 + ["no"] * 8, "question_type": "is the", "answer_type": "yes/no"},
    "q3": {"answers": ["blue"] * 4 + ["light blue"] * 6, "question_type": "what color is the",
           "answer_type": "other"},
    "q4": {"answers": ["skateboard"] * 7 + ["skateboarding"] * 3, "question_type": "what is the man",
           "answer_type": "other"},
}


# ---------------------------------------------------------------------------------------------------------------------
# Multiple choice, POPE, MME, MMBench
# ---------------------------------------------------------------------------------------------------------------------
OPTIONS = {"A": "red", "B": "dark red", "C": "blue"}
OPTION_ANSWERS = ("B", "(C) blue", "The answer is A.", "dark red", "It is dark red.", "A dog is blue.",
                  "red or blue", "green")


def option_matching_table(answers: Sequence[str] = OPTION_ANSWERS,
                          options: Mapping[str, str] = OPTIONS) -> pd.DataFrame:
    """Which option each free-text answer picks (None: unmatched, scored wrong)."""
    return pd.DataFrame({"answer": list(answers), "picked": [match_option(a, options) for a in answers]})


POPE_ROWS = (  # split, label, model answer
    ("random", "yes", "Yes, there is a dog in the image."), ("random", "no", "No, there is not."),
    ("random", "yes", "There is a dog."), ("random", "no", "Yes."),
    ("popular", "yes", "yes"), ("popular", "no", "There is no chair."),
    ("popular", "yes", "I do not think so."), ("popular", "no", "Yes, a chair"),
    ("adversarial", "yes", "Yes"), ("adversarial", "no", "Yes, there is a fork."),
    ("adversarial", "yes", "Nope."), ("adversarial", "no", "No"),
)


def pope_example() -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Twelve POPE questions over the three splits (predictions, references)."""
    preds = {f"p{i}": a for i, (_, _, a) in enumerate(POPE_ROWS)}
    refs = {f"p{i}": {"split": s, "label": lab} for i, (s, lab, _) in enumerate(POPE_ROWS)}
    return preds, refs


MME_ROWS = (  # subtask, image, label, model answer
    ("existence", "000000006040.jpg", "yes", "Yes"), ("existence", "000000006040.jpg", "no", "No"),
    ("existence", "000000044279.jpg", "yes", "Yes, there is a train."), ("existence", "000000044279.jpg", "no", "Yes"),
    ("count", "000000060823.jpg", "yes", "Yes"), ("count", "000000060823.jpg", "no", "Yes"),
    ("OCR", "0001.jpg", "yes", "yes"), ("OCR", "0001.jpg", "no", "no"),
    ("code_reasoning", "0020.png", "yes", "The output is 5, so yes"), ("code_reasoning", "0020.png", "no", "No"),
)


def mme_example() -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Ten MME questions, two per image (predictions, references)."""
    preds = {f"m{i}": a for i, (*_, a) in enumerate(MME_ROWS)}
    refs = {f"m{i}": {"subtask": t, "image": img, "label": lab} for i, (t, img, lab, _) in enumerate(MME_ROWS)}
    return preds, refs


def circular_passes(index: int, options: Sequence[str], answer: str, category: str) -> dict[int, dict[str, Any]]:
    """The k rotations of one k-option MMBench question, keyed ``index + j * 1_000_000`` as in MMBench's TSV."""
    letters = "ABCDEFGH"[: len(options)]
    out = {}
    for j in range(len(options)):
        rotated = list(options[j:]) + list(options[:j])
        out[index + j * 1_000_000] = {"options": dict(zip(letters, rotated, strict=True)),
                                      "answer": letters[rotated.index(answer)], "category": category}
    return out


def mmbench_example() -> tuple[dict[int, str], dict[int, dict[str, Any]]]:
    """Two 4-option questions asked 4 times each: one always right, one right 3 times out of 4."""
    refs = {**circular_passes(11, ["a cat", "a dog", "a cow", "a pig"], "a dog", "attribute recognition"),
            **circular_passes(12, ["left", "right", "above", "below"], "above", "spatial relation")}
    preds = {i: r["answer"] for i, r in refs.items()}          # the right letter ...
    preds[11] = "B. a dog"                                       # ... dressed up, still matched
    preds[2_000_012] = "The object is above the table."           # option text instead of a letter: matched
    preds[3_000_012] = "A"                                        # one rotation wrong: the question fails
    return preds, refs


def passes_table(preds: Mapping[int, str], refs: Mapping[int, Mapping[str, Any]]) -> pd.DataFrame:
    """Every MMBench pass with its options, the right letter, the answer and the letter matched from it."""
    return pd.DataFrame([{"index": i, "options": " | ".join(f"{k}: {v}" for k, v in r["options"].items()),
                          "answer": r["answer"], "model said": preds[i],
                          "matched": match_option(preds[i], r["options"])} for i, r in refs.items()])


# ---------------------------------------------------------------------------------------------------------------------
# Referring (Acc@0.5) and ReasonSeg (gIoU, cIoU): setok.eval.referring
# ---------------------------------------------------------------------------------------------------------------------
def _box_mask(shape: tuple[int, int], x: int, y: int, w: int, h: int) -> Any:
    import numpy as np

    mask = np.zeros(shape, dtype=bool)
    mask[y:y + h, x:x + w] = True
    return mask


def referring_example() -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Four expressions: a near box, a shifted box, a mask whose tight box fits, and an empty mask."""
    import numpy as np

    refs = {"the man": [10, 10, 40, 80], "left cup": [60, 50, 20, 20], "the dog": [20, 30, 30, 20],
            "red car": [0, 0, 50, 30]}
    preds = {"the man": [12, 8, 40, 84], "left cup": [70, 55, 20, 20],
             "the dog": _box_mask((100, 100), 21, 30, 30, 19), "red car": np.zeros((100, 100), dtype=bool)}
    return preds, refs


def referring_table(preds: Mapping[str, Any], refs: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """Per expression: the predicted box (a mask's tight box), its IoU with the truth and whether it counts."""
    import numpy as np

    from setok.eval.referring import box_iou, mask_to_box

    rows = []
    for k, gt in refs.items():
        p = preds[k]
        is_mask = np.ndim(p) == 2
        box = mask_to_box(p) if is_mask else list(p)
        iou = 0.0 if box is None else box_iou(box, gt)
        rows.append({"expression": k, "prediction": "mask" if is_mask else "box", "box used": box,
                     "truth": list(gt), "IoU": iou, "hit (IoU >= 0.5)": iou >= 0.5})
    return pd.DataFrame(rows)


def reasonseg_example() -> tuple[dict[str, Any], dict[str, Any]]:
    """Three 64x64 images: a large object segmented well, a small one segmented badly, nothing in either."""
    import numpy as np

    shape = (64, 64)
    refs = {"large": _box_mask(shape, 4, 4, 48, 48), "small": _box_mask(shape, 50, 50, 8, 8),
            "none": np.zeros(shape, dtype=bool)}
    preds = {"large": _box_mask(shape, 6, 4, 48, 48), "small": _box_mask(shape, 54, 54, 8, 8),
             "none": np.zeros(shape, dtype=bool)}
    return preds, refs


def reasonseg_table(preds: Mapping[str, Any], refs: Mapping[str, Any]) -> pd.DataFrame:
    """Per image: intersection and union pixel counts and the IoU that gIoU averages (1 when both are empty)."""
    from setok.eval.referring import mask_iou_terms

    rows = []
    for k in refs:
        inter, union = mask_iou_terms(preds[k], refs[k])
        rows.append({"image": k, "intersection": inter, "union": union,
                     "IoU": 1.0 if union == 0 else inter / union})
    return pd.DataFrame(rows).set_index("image")


# ---------------------------------------------------------------------------------------------------------------------
# Generation and editing: setok.eval.image (FID, CLIP-I, editing L1)
# ---------------------------------------------------------------------------------------------------------------------
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "cat", "immunohistochemistry")


def photo_crops(size: int = 48, per_photo: int = 6) -> Any:
    """``per_photo`` square crops of each offline skimage photo, resized to ``size``: (N, 3, size, size) in [0, 1]."""
    import skimage.data
    import torch
    import torch.nn.functional as F

    crops = []
    for name in PHOTOS:
        img = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1).float() / 255  # (3, H, W)
        h, w = img.shape[-2:]
        side = min(h, w) // 2
        for j in range(per_photo):
            y = (j * (h - side)) // max(per_photo - 1, 1)
            x = ((per_photo - 1 - j) * (w - side)) // max(per_photo - 1, 1)
            crops.append(F.interpolate(img[None, :, y:y + side, x:x + side], size=(size, size), mode="bilinear",
                                       antialias=True)[0])
    return torch.stack(crops)  # (N, 3, size, size)


def fid_shift_table(shifts: Sequence[float] = (0.0, 0.1, 0.2, 0.4)) -> pd.DataFrame:
    """FID and CLIP-I of the photo crops against themselves brightened by ``shift`` (non-standard extractor)."""
    from setok.eval.image import RandomConvExtractor, clip_i, extract_features, fid_from_features

    images = photo_crops()
    half = len(images) // 2
    extractor = RandomConvExtractor()
    feats = extract_features(extractor, images)  # (N, D), once
    rows = []
    for s in shifts:
        shifted = (images + s).clamp(0, 1)
        feats_shifted = extract_features(extractor, shifted)
        rows.append({"brightness shift": s, "FID (same images)": fid_from_features(feats, feats_shifted),
                     "FID (disjoint halves)": fid_from_features(feats[:half], feats_shifted[half:]),
                     "CLIP-I": clip_i(images, shifted, extractor)["clip_i"], "extractor": extractor.name,
                     "standard": extractor.standard})
    return pd.DataFrame(rows).set_index("brightness shift")


def editing_example() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Two edits (predictions), their target images and their input images, at different sizes."""
    crops = photo_crops(size=48, per_photo=2)
    inputs = {"e1": crops[0], "e2": crops[2]}
    targets = {"e1": (crops[0] * 0.7).clamp(0, 1), "e2": crops[2].flip(-1)}       # darker; mirrored
    import torch.nn.functional as F

    preds = {"e1": F.interpolate((crops[0] * 0.75)[None], size=(32, 32), mode="bilinear", antialias=True)[0],
             "e2": crops[2]}                                                       # smaller; no edit at all
    return preds, targets, inputs


def editing_table() -> pd.DataFrame:
    """L1 and CLIP-I of the example edits under each benchmark's reference rule."""
    from setok.eval.image import RandomConvExtractor, edit_scores

    preds, targets, inputs = editing_example()
    rows = []
    for bench in ("magicbrush", "evr", "emu-edit"):
        out = edit_scores(preds, targets=targets, inputs=inputs, benchmark=bench, extractor=RandomConvExtractor())
        rows.append({"benchmark": bench, "compared with": out["reference"], "L1 (x100)": out["l1"],
                     "CLIP-I": out["clip_i"], "extractor": out["extractor"]})
    return pd.DataFrame(rows).set_index("benchmark")


# ---------------------------------------------------------------------------------------------------------------------
# Clusters against object masks: setok.eval.segmentation
# ---------------------------------------------------------------------------------------------------------------------
def cluster_example() -> tuple[dict[str, Any], Any]:
    """A 6x8 scene (background 0, objects 1 and 2) and three token partitions of it, as label maps."""
    import numpy as np

    true = np.zeros((6, 8), dtype=int)
    true[1:4, 1:4] = 1
    true[2:5, 5:7] = 2
    exact_split_bg = true.copy()
    exact_split_bg[:, :4][true[:, :4] == 0] = 3                  # objects exact, background cut in two
    merged = np.where(true > 0, 1, 0)                             # both objects in one cluster
    grid = np.repeat(np.repeat(np.arange(6).reshape(2, 3), 3, axis=0), 3, axis=1)[:6, :8]  # a fixed 2x3 grid
    grid = np.pad(grid, ((0, 0), (0, max(0, 8 - grid.shape[1]))), mode="edge")
    return {"objects exact, background split": exact_split_bg, "objects merged": merged,
            "fixed grid": grid}, true


def cluster_table() -> pd.DataFrame:
    """ARI, FG-ARI, mBO and mIoU of each example partition."""
    from setok.eval.segmentation import ari, fg_ari, mbo, miou

    partitions, true = cluster_example()
    return pd.DataFrame([{"partition": name, "ARI": ari(p, true), "FG-ARI": fg_ari(p, true), "mBO": mbo(p, true),
                          "mIoU": miou(p, true)} for name, p in partitions.items()]).set_index("partition")


# ---------------------------------------------------------------------------------------------------------------------
# FLOPs: setok.eval.flops against Table 5's TFLOPs column
# ---------------------------------------------------------------------------------------------------------------------
def flops_comparison(llm: str = "vicuna-7b", num_text_tokens: int = 64) -> tuple[pd.DataFrame, dict[str, float]]:
    """Table 5's rows with the paper's TFLOPs next to our paper-scale count (meta device) for the same token count.

    Returns the table and the marginal cost of one visual token (GFLOPs per token) fitted over the Fixed rows,
    for the paper's numbers and ours.
    """
    import numpy as np

    from setok.eval.flops import flops_table
    from setok.eval.reported import load_table

    t5 = load_table(5)
    wide = t5.pivot_table(index="method", columns="metric", values="value", aggfunc="first", sort=False)
    wide = wide[["n_clusters", "TFLOPs"]].dropna()
    tokens = sorted({int(k) for k in wide["n_clusters"]})
    ours = flops_table("paper", num_visual_tokens=tokens, num_text_tokens=num_text_tokens, llm=llm,
                       patch_baseline=False).set_index("num_visual_tokens")
    table = pd.DataFrame({"visual tokens": wide["n_clusters"].astype(int), "paper TFLOPs": wide["TFLOPs"]})
    table["our TFLOPs"] = [float(ours.loc[k, "total_tflops"]) for k in table["visual tokens"]]
    table["our LLM prefill share"] = [float(ours.loc[k, "llm_prefill"] / ours.loc[k, "total"])
                                      for k in table["visual tokens"]]
    fixed = table[table.index.str.startswith("Fixed")]
    slopes = {"paper_gflops_per_token": 1e3 * float(np.polyfit(fixed["visual tokens"], fixed["paper TFLOPs"], 1)[0]),
              "our_gflops_per_token": 1e3 * float(np.polyfit(fixed["visual tokens"], fixed["our TFLOPs"], 1)[0])}
    table.index.name = "Table 5 row"
    return table, slopes


# ---------------------------------------------------------------------------------------------------------------------
# Files in the real formats: the mini world's val split, scored through the CLI's file readers
# ---------------------------------------------------------------------------------------------------------------------
POPE_SHOWN = ("accuracy", "precision", "recall", "f1", "yes_ratio")


def blind_baselines(folder: Any = None, n: int = 8, resolution: int = 32, seed: int = 0) -> pd.DataFrame:
    """Write the mini world's val split to ``folder``, then score blind answers (and the truth) from files.

    Each predictions file is written next to the data and read back by :func:`setok.eval.cli.score_files`, the
    path ``setok eval score`` takes; the blind answers show what a model that ignores the image scores. With
    ``folder=None`` everything goes to a temporary folder that is removed afterwards.
    """
    import json
    import tempfile
    from pathlib import Path

    from setok.data.miniworld.writers import write_miniworld
    from setok.eval.cli import score_files

    if folder is None:
        with tempfile.TemporaryDirectory(prefix="setok-blind-") as tmp:
            return blind_baselines(tmp, n=n, resolution=resolution, seed=seed)
    folder = Path(folder)
    write_miniworld(folder, split="val", n=n, resolution=resolution, seed=seed, progress=False)
    preds_dir = folder / "predictions"
    preds_dir.mkdir(parents=True, exist_ok=True)
    vqa_ref = folder / "vqav2" / "v2_mscoco_val_annotations.json"
    gqa_ref = folder / "gqa" / "val_balanced_questions.json"
    pope_ref = folder / "pope" / "val" / "coco_pope_adversarial.json"
    cap_ref = folder / "coco" / "annotations" / "captions_val.json"
    vqa_anns = json.loads(vqa_ref.read_text())["annotations"]
    gqa_qs = json.loads(gqa_ref.read_text())
    pope_qs = [json.loads(line) for line in pope_ref.read_text().splitlines() if line.strip()]
    image_ids = sorted({a["image_id"] for a in json.loads(cap_ref.read_text())["annotations"]})

    def write(name: str, obj: Any) -> Path:
        path = preds_dir / name
        path.write_text(json.dumps(obj))
        return path

    runs = [
        ("vqav2", "the majority human answer", write("vqav2_truth.json", [
            {"question_id": a["question_id"], "answer": a["multiple_choice_answer"]} for a in vqa_anns]), vqa_ref,
         ("accuracy",)),
        ("vqav2", '"yes" to everything', write("vqav2_yes.json", [
            {"question_id": a["question_id"], "answer": "yes"} for a in vqa_anns]), vqa_ref, ("accuracy",)),
        ("gqa", '"yes" to everything', write("gqa_yes.json", {q: "yes" for q in gqa_qs}), gqa_ref, ("accuracy",)),
        ("pope", '"Yes." to everything', write("pope_yes.json", [
            {"question_id": r["question_id"], "text": "Yes."} for r in pope_qs]), pope_ref, POPE_SHOWN),
        ("pope", '"No." to everything', write("pope_no.json", [
            {"question_id": r["question_id"], "text": "No."} for r in pope_qs]), pope_ref, POPE_SHOWN),
        ("flickr30k", "one fixed caption", write("captions_fixed.json", [
            {"image_id": i, "caption": "a few shapes on a plain background"} for i in image_ids]), cap_ref,
         ("CIDEr",)),
    ]
    rows = []
    for task, answers, pred, ref, metrics in runs:
        out = score_files(task, pred, ref)
        scores = out["average"] if task == "pope" else out
        rows += [{"task": task, "predictions": answers, "metric": m, "value": scores[m],
                  "references": f"{ref.parent.name}/{ref.name}"} for m in metrics]
    return pd.DataFrame(rows).set_index(["task", "predictions", "metric"])
