"""``setok eval``: score a predictions file with a benchmark's official rule, or export a submission file.

    setok eval score  --task vqav2 --pred preds.jsonl --ref refs.json [--out metrics.json]
    setok eval export --task vqav2 --pred preds.jsonl --out vqav2_test-dev_results.json [--ref questions.json]
    setok eval tasks

File formats (``.json``: a list of records or an object keyed by id; ``.jsonl``: one record per line). A
record's id is its first field among ``id, question_id, questionId, image_id, image, index``; ids match as
strings.

Predictions, every task: ``{id: text}``, or records with an id and one of ``prediction, answer, caption,
text``. Referring tasks: records with ``box`` ([x, y, w, h] pixels) or ``mask`` (COCO RLE ``{"size",
"counts"}`` or a nested 0/1 list).

References, per task:

- vqav2, okvqa, vizwiz, textvqa: records ``{question_id, answers: [10 strings or {"answer": s}],
  question_type?, answer_type?}``, or a VQA annotation file ``{"annotations": [...]}``.
- nocaps, flickr30k: ``{image_id: [captions]}``, records ``{image_id, captions: [...]}``, or a COCO caption
  file ``{"annotations": [{"image_id", "caption"}, ...]}``.
- gqa: ``{question_id: {"answer": s}}`` (the GQA questions file) or records ``{question_id, answer}``.
- vsr: records ``{id, label: 0/1, relation?}``.  iconqa: records ``{id, answer, choices?, ques_type?}``.
- pope: records ``{question_id, label: yes/no, split?: random/popular/adversarial}``.
- mme: records ``{id, subtask, image, label: yes/no}`` (two questions per image).
- mmbench: records ``{index, answer: letter, options: {A: text, ...} (or columns A, B, ...), category?,
  group?}``.
- refcoco, refcoco+, refcocog: records ``{id, box: [x, y, w, h], split?: val/testA/testB}`` (with splits,
  Acc@0.5 is also reported per split).  reasonseg: records ``{id, mask}``.
- t2i: ``--pred`` and ``--ref`` are folders of images (png/jpg); FID over the two sets, CLIP-I over files whose
  names match. ``--inception-path`` / ``--clip-path`` name local standard weights; without them a non-standard
  extractor is used and the output says ``"standard": false``.
- editing: ``--pred`` edited images, ``--ref`` target images, ``--inputs`` input images (folders, matched by file
  name); ``--benchmark magicbrush|evr`` compares with the targets, ``emu-edit`` with the inputs.
- mmvet: export only (needs a GPT-4 judge, not scored here).
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path
from typing import Any

from setok.eval import EXPORT_ONLY, TASKS, get_scorer
from setok.eval.common import read_records, to_mapping

VQA_TASKS = ("vqav2", "okvqa", "vizwiz", "textvqa")
CAPTION_TASKS = ("nocaps", "flickr30k")
REFERRING_TASKS = ("refcoco", "refcoco+", "refcocog", "reasonseg")
IMAGE_TASKS = ("t2i", "editing")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
TEXT_KEYS = ("prediction", "answer", "caption", "text")


def _value_key(records: Any, keys: tuple[str, ...], what: str) -> str | None:
    """The first of ``keys`` the first record holds (None for an ``{id: value}`` object)."""
    if isinstance(records, dict) or not records:
        return None
    first = records[0]
    for k in keys:
        if isinstance(first, dict) and k in first:
            return k
    raise ValueError(f"{what}: records need one of the fields {list(keys)} (first record has {sorted(first)})")


def _decode_mask(value: Any, what: str) -> Any:
    import numpy as np

    if isinstance(value, dict) and {"size", "counts"} <= set(value):
        from pycocotools import mask as mask_utils

        rle = dict(value)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode()
        return mask_utils.decode(rle).astype(bool)
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise ValueError(f"{what}: a mask must be COCO RLE or a 2-D 0/1 list (got shape {arr.shape})")
    return arr


def load_image_folder(path: str | Path, what: str) -> dict[str, Any]:
    """``{file stem: (H, W, 3) uint8 array}`` for every image in a folder (sorted by name)."""
    import numpy as np
    from PIL import Image

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: image folder not found: {folder}")
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{what}: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        raise ValueError(f"{what}: two images share a name in {folder} (e.g. a.png and a.jpg)")
    return {f.stem: np.asarray(Image.open(f).convert("RGB")) for f in files}


def score_t2i(predictions: dict[str, Any], references: dict[str, Any], inception_path: str | None = None,
              clip_path: str | None = None) -> dict[str, Any]:
    """Text-to-image FID (unpaired sets) and CLIP-I (pairs with the same id), with labelled extractors."""
    from setok.eval import image

    config = {"inception_path": inception_path, "clip_path": clip_path}
    out = {f"fid_{k}" if k in ("extractor", "standard") else k: v
           for k, v in image.fid(predictions, references, image.build_extractor("fid", config)).items()}
    shared = sorted(set(predictions) & set(references))
    if shared:
        clip = image.clip_i({k: predictions[k] for k in shared}, {k: references[k] for k in shared},
                            image.build_extractor("clip", config))
        out.update({f"clip_i_{k}" if k in ("extractor", "standard", "num") else k: v for k, v in clip.items()})
    return out


def score_editing(predictions: dict[str, Any], references: dict[str, Any] | None, inputs: dict[str, Any] | None = None,
                  benchmark: str = "magicbrush", clip_path: str | None = None) -> dict[str, Any]:
    """Editing L1 and CLIP-I against the benchmark's reference image (targets or inputs, SPEC §5.1)."""
    from setok.eval import image

    extractor = image.build_extractor("clip", {"clip_path": clip_path})
    return image.edit_scores(predictions, targets=references, inputs=inputs, benchmark=benchmark,
                             extractor=extractor)


def load_predictions(task: str, path: str | Path) -> dict[str, Any]:
    """Read a predictions file into ``{id: prediction}`` (text, or box/mask for referring tasks)."""
    if task in IMAGE_TASKS:
        return load_image_folder(path, "predictions")
    data = read_records(path)
    what = f"predictions {path}"
    if task in REFERRING_TASKS:
        key = _value_key(data, ("mask", "box", "bbox") if task == "reasonseg" else ("box", "bbox", "mask"), what)
        preds = to_mapping(data, key, what)
        if key == "mask" or task == "reasonseg":
            return {i: _decode_mask(v, f"{what} id {i}") for i, v in preds.items()}
        return preds
    return to_mapping(data, _value_key(data, TEXT_KEYS, what), what)


def load_references(task: str, path: str | Path) -> dict[str, Any]:
    """Read a references file into the ``{id: reference}`` mapping the task's scorer takes."""
    if task in IMAGE_TASKS:
        return load_image_folder(path, "references")
    data = read_records(path)
    what = f"references {path}"
    if task in VQA_TASKS:
        if isinstance(data, dict) and "annotations" in data:
            data = data["annotations"]
        return to_mapping(data, None, what)
    if task in CAPTION_TASKS:
        if isinstance(data, dict) and "annotations" in data:  # COCO caption file: one record per caption
            refs: dict[str, list[str]] = {}
            for ann in data["annotations"]:
                refs.setdefault(str(ann["image_id"]), []).append(ann["caption"])
            return refs
        return to_mapping(data, _value_key(data, ("captions", "references", "refs"), what), what)
    if task in REFERRING_TASKS:
        key = "mask" if task == "reasonseg" else _value_key(data, ("box", "bbox"), what)
        refs = to_mapping(data, key, what)
        return {i: _decode_mask(v, f"{what} id {i}") for i, v in refs.items()} if key == "mask" else refs
    refs = to_mapping(data, None, what)
    if task == "mmbench":
        for ref in refs.values():
            if isinstance(ref, dict) and "options" not in ref:
                ref["options"] = {k: ref[k] for k in string.ascii_uppercase if k in ref and ref[k] not in
                                  (None, "", "nan")}
    return refs


def score_files(task: str, pred_path: str | Path, ref_path: str | Path | None, **kwargs: Any) -> dict[str, Any]:
    """Score a predictions file against a references file with the task's official rule."""
    scorer = get_scorer(task)
    refs = load_references(task, ref_path) if ref_path is not None else None
    if task in ("refcoco", "refcoco+", "refcocog") and "splits" not in kwargs:
        records = read_records(ref_path)
        if isinstance(records, list) and records and all(isinstance(r, dict) and "split" in r for r in records):
            kwargs = {**kwargs, "splits": {k: v["split"] for k, v in to_mapping(records, None, "references").items()}}
    return scorer(load_predictions(task, pred_path), refs, **kwargs)


def _score(args: argparse.Namespace) -> int:
    if args.task in EXPORT_ONLY:
        raise ValueError(f"{args.task} is not scored here: {EXPORT_ONLY[args.task]} (setok eval export --task "
                         f"{args.task} ...)")
    if args.ref is None and not (args.task == "editing" and args.benchmark == "emu-edit"):
        raise ValueError(f"--ref is required for task {args.task!r}")
    kwargs: dict[str, Any] = {"tokenizer": args.tokenizer} if args.task in CAPTION_TASKS else {}
    if args.task == "t2i":
        kwargs = {"inception_path": args.inception_path, "clip_path": args.clip_path}
    if args.task == "editing":
        inputs = load_image_folder(args.inputs, "inputs") if args.inputs else None
        kwargs = {"inputs": inputs, "benchmark": args.benchmark, "clip_path": args.clip_path}
    metrics = {"task": args.task, **score_files(args.task, args.pred, args.ref, **kwargs)}
    text = json.dumps(metrics, indent=2, default=float)
    print(text)
    if args.out:
        from setok.book.results import write_json

        write_json(Path(args.out), metrics)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from setok.eval.export import write_jsonl, write_submission

    preds = load_predictions(args.task, args.pred)
    if args.jsonl:
        path = write_jsonl(args.task, preds, args.out)
    else:
        questions = load_references(args.task, args.ref) if args.ref else None
        path = write_submission(args.task, preds, args.out, questions=questions)
    if args.task in EXPORT_ONLY:
        print(f"note: {EXPORT_ONLY[args.task]}", file=sys.stderr)
    print(f"wrote {path} ({len(preds)} predictions)")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    for task, (module, fn, _) in TASKS.items():
        print(f"{task:12s} {module}.{fn}")
    for task, note in EXPORT_ONLY.items():
        print(f"{task:12s} export only: {note}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="score predictions with the official benchmark rules, export submissions",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = ev.add_subparsers(dest="verb", required=True)
    all_tasks = sorted(TASKS) + sorted(EXPORT_ONLY)
    score = verbs.add_parser("score", help="print the metrics of a predictions file", description=__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    score.add_argument("--task", required=True, choices=all_tasks)
    score.add_argument("--pred", required=True, help="predictions (.json or .jsonl)")
    score.add_argument("--ref", help="references (.json/.jsonl, or an image folder), format per task above")
    score.add_argument("--out", help="also write the metrics to this JSON file")
    score.add_argument("--tokenizer", choices=("auto", "ptb", "fallback"), default="auto",
                       help="captioning only: PTB (Java) or the labelled regex fallback")
    score.add_argument("--inception-path", help="t2i: local FID Inception weights (else non-standard extractor)")
    score.add_argument("--clip-path", help="t2i/editing: local CLIP checkpoint (else non-standard extractor)")
    score.add_argument("--inputs", help="editing: folder of input images (Emu-Edit compares with these)")
    score.add_argument("--benchmark", default="magicbrush", choices=("magicbrush", "evr", "emu-edit"),
                       help="editing: which benchmark's reference rule")
    score.set_defaults(func=_score)
    export = verbs.add_parser("export", help="write an official submission file (or --jsonl, a neutral one)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("--task", required=True, choices=all_tasks)
    export.add_argument("--pred", required=True, help="predictions (.json or .jsonl)")
    export.add_argument("--out", required=True, help="submission file to write")
    export.add_argument("--ref", help="mmbench only: the question table (records with index, question, options)")
    export.add_argument("--jsonl", action="store_true", help="write the neutral JSONL instead")
    export.set_defaults(func=_export)
    tasks = verbs.add_parser("tasks", help="list the tasks and their scorers")
    tasks.set_defaults(func=_tasks)
