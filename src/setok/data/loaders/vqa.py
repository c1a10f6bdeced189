"""Question answering: VQA v2, GQA (balanced) and POPE (SPEC §5.1 scoring; SPEC §6 mini-world formats).

Real layouts::

    VQA v2  v2_OpenEnded_mscoco_<split>_questions.json  {"data_subtype": "val2014", ...,
                                                         "questions": [{image_id, question, question_id}]}
            v2_mscoco_<split>_annotations.json          {"annotations": [{question_id, image_id,
                                                         question_type, answer_type, multiple_choice_answer,
                                                         answers: 10 x {answer, answer_confidence,
                                                         answer_id}}]}
            images: <image_dir>/COCO_<data_subtype>_<image_id:012d>.jpg
    GQA     <split>_balanced_questions.json  {"<qid>": {imageId, question, answer, fullAnswer,
                                                        types: {structural, semantic, detailed}, ...}}
            images: <image_dir>/<imageId>.jpg
    POPE    coco_pope_{random,popular,adversarial}.json  one JSON object per line:
                                                         {question_id, image, text, label: "yes" | "no"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from setok.data.loaders.base import (
    ImageMixin,
    LoaderConfig,
    Records,
    expect_type,
    make_config,
    new_report,
    nonempty_str,
    read_json_file,
    require_file,
)

VQA_NUM_ANSWERS = 10  # every VQA v2 question has 10 human answers (soft accuracy min(#match/3, 1))
POPE_LABELS = ("yes", "no")


@dataclass
class VQARecord(ImageMixin):
    """One VQA v2 question; ``answers`` are the 10 raw human answers (empty for the test split)."""

    question_id: int
    image_id: int
    question: str
    image_path: Path | None
    answers: list[str] = field(default_factory=list)
    multiple_choice_answer: str | None = None
    question_type: str | None = None
    answer_type: str | None = None


@dataclass
class GQARecord(ImageMixin):
    """One GQA question (exact-match answer); ``types`` holds structural / semantic / detailed."""

    question_id: str
    image_id: str
    question: str
    answer: str | None
    image_path: Path | None
    full_answer: str | None = None
    types: dict[str, Any] = field(default_factory=dict)


@dataclass
class POPERecord(ImageMixin):
    """One POPE probe: "Is there a <object> in the image?" with label "yes" / "no"."""

    question_id: int
    image: str
    question: str
    label: str
    image_path: Path | None


def vqa_image_name(image_id: int, data_subtype: str | None) -> list[str]:
    """Candidate names of a COCO image in VQA: ``COCO_<subtype>_<id:012d>.jpg`` (2014), ``<id:012d>.jpg``."""
    names = [f"COCO_{data_subtype}_{image_id:012d}.jpg"] if data_subtype else []
    return names + [f"{image_id:012d}.jpg", f"{image_id:012d}.png"]


def load_vqa_v2(
    questions_file: str | Path,
    annotations_file: str | Path | None = None,
    image_dir: str | Path | None = None,
    config: LoaderConfig | None = None,
    on_error: str | None = None,
    image_files: dict[int, str] | None = None,
    dataset: str = "vqa_v2",
) -> Records[VQARecord]:
    """VQA v2 questions (+ annotations unless test) -> :class:`VQARecord` list.

    The image of a question is ``image_dir / image_files[image_id]`` when ``image_files`` is given (e.g. from
    a COCO images table), else the first existing name of :func:`vqa_image_name`. Problems: missing_field,
    empty_text (question), bad_answers (not 10 answers), unknown_id (an annotation without question or the
    reverse), missing_image. Also reads OK-VQA (same format, 10 answers).
    """
    config = make_config(config, on_error)
    report = new_report(dataset, config)
    qpath = Path(questions_file)
    qdata = expect_type(read_json_file(qpath, dataset), dict, qpath, "a JSON object", dataset)
    questions = expect_type(qdata.get("questions"), list, qpath, "a 'questions' list", dataset)
    subtype = qdata.get("data_subtype")
    anns: dict[Any, dict] | None = None
    apath = None
    if annotations_file is not None:
        apath = Path(annotations_file)
        adata = expect_type(read_json_file(apath, dataset), dict, apath, "a JSON object", dataset)
        anns = {}
        for i, ann in enumerate(
            expect_type(adata.get("annotations"), list, apath, "an 'annotations' list", dataset)
        ):
            if not isinstance(ann, dict) or "question_id" not in ann or "answers" not in ann:
                report.problem(
                    "missing_field", apath, f"annotations[{i}]", "annotation needs question_id, answers"
                )
                continue
            if ann["question_id"] in anns:
                report.problem("duplicate_id", apath, ann["question_id"], "two annotations for one question id")
                continue
            anns[ann["question_id"]] = ann
    root = Path(image_dir) if image_dir is not None else None
    out: list[VQARecord] = []
    seen: set[Any] = set()
    for i, q in enumerate(questions):
        rid = q.get("question_id", f"questions[{i}]") if isinstance(q, dict) else f"questions[{i}]"
        if rid in seen:
            report.problem("duplicate_id", qpath, rid, "question id listed twice")
            continue
        seen.add(rid)  # its annotation is not an orphan, even if the question itself is skipped
        if not isinstance(q, dict) or not all(k in q for k in ("question_id", "image_id", "question")):
            report.problem("missing_field", qpath, rid, "question needs question_id, image_id, question")
            continue
        if not nonempty_str(q["question"]):
            report.problem("empty_text", qpath, rid, "empty question")
            continue
        rec = VQARecord(q["question_id"], q["image_id"], q["question"].strip(), None)
        if anns is not None:
            ann = anns.get(q["question_id"])
            if ann is None:
                report.problem("unknown_id", apath, rid, "question has no annotation")
                continue
            answers = ann["answers"]
            if not isinstance(answers, list) or len(answers) != VQA_NUM_ANSWERS:
                n = len(answers) if isinstance(answers, list) else type(answers).__name__
                report.problem("bad_answers", apath, rid, f"expected {VQA_NUM_ANSWERS} answers, got {n}")
                continue
            if not all(isinstance(a, dict) and isinstance(a.get("answer"), str) for a in answers):
                report.problem("missing_field", apath, rid, "each answer needs an 'answer' string")
                continue
            if ann.get("image_id", q["image_id"]) != q["image_id"]:
                report.problem(
                    "unknown_id", apath, rid, f"annotation image_id {ann['image_id']} != {q['image_id']}"
                )
                continue
            rec.answers = [a["answer"] for a in answers]
            rec.multiple_choice_answer = ann.get("multiple_choice_answer")
            rec.question_type = ann.get("question_type")
            rec.answer_type = ann.get("answer_type")
        if root is not None:
            names = (
                [image_files[q["image_id"]]]
                if image_files and q["image_id"] in image_files
                else (vqa_image_name(int(q["image_id"]), subtype))
            )
            found = next((root / n for n in names if (root / n).is_file()), None)
            if config.check_images and found is None:
                report.problem("missing_image", qpath, rid, f"none of {names} in {root}")
                continue
            rec.image_path = found if found is not None else root / names[0]
        out.append(rec)
    for qid in (anns or {}).keys() - seen:
        report.problem("unknown_id", apath, qid, "annotation for a question id not in the questions file")
    return Records(out, report)


def load_gqa(
    questions_file: str | Path,
    image_dir: str | Path | None = None,
    config: LoaderConfig | None = None,
    on_error: str | None = None,
) -> Records[GQARecord]:
    """GQA ``<split>_balanced_questions.json`` (dict keyed by question id) -> :class:`GQARecord` list.

    Problems: missing_field (no imageId / question), empty_text (question; an answer that is present but
    empty), missing_image (``<image_dir>/<imageId>.jpg``). Test-split questions without answers load with
    ``answer=None``.
    """
    config = make_config(config, on_error)
    report = new_report("gqa", config)
    path = Path(questions_file)
    data = expect_type(read_json_file(path, "gqa"), dict, path, "an object keyed by question id", "gqa")
    root = Path(image_dir) if image_dir is not None else None
    out: list[GQARecord] = []
    for qid, q in data.items():
        if not isinstance(q, dict) or "imageId" not in q or "question" not in q:
            report.problem("missing_field", path, qid, "question needs imageId and question")
            continue
        if not nonempty_str(q["question"]):
            report.problem("empty_text", path, qid, "empty question")
            continue
        answer = q.get("answer")
        if answer is not None and not nonempty_str(answer):
            report.problem("empty_text", path, qid, "empty answer")
            continue
        image_path = root / f"{q['imageId']}.jpg" if root is not None else None
        if config.check_images and image_path is not None and not image_path.is_file():
            png = root / f"{q['imageId']}.png"
            if not png.is_file():
                report.problem("missing_image", path, qid, f"no file {image_path}")
                continue
            image_path = png
        out.append(
            GQARecord(
                str(qid),
                str(q["imageId"]),
                q["question"].strip(),
                answer,
                image_path,
                full_answer=q.get("fullAnswer"),
                types=dict(q.get("types") or {}),
            )
        )
    return Records(out, report)


def load_pope(
    pope_file: str | Path,
    image_dir: str | Path | None = None,
    config: LoaderConfig | None = None,
    on_error: str | None = None,
) -> Records[POPERecord]:
    """POPE ``coco_pope_<random|popular|adversarial>.json`` (JSON lines) -> :class:`POPERecord` list.

    Problems: bad_json (a line that does not parse), missing_field, empty_text, bad_answers (label not
    yes/no, case-insensitive), missing_image.
    """
    config = make_config(config, on_error)
    report = new_report("pope", config)
    path = require_file(pope_file, "pope file")
    root = Path(image_dir) if image_dir is not None else None
    out: list[POPERecord] = []
    seen: set[Any] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                report.problem("bad_json", path, f"line {lineno}", err.msg)
                continue
            rid = rec.get("question_id", f"line {lineno}") if isinstance(rec, dict) else f"line {lineno}"
            if not isinstance(rec, dict) or not all(
                k in rec for k in ("question_id", "image", "text", "label")
            ):
                report.problem("missing_field", path, rid, "probe needs question_id, image, text, label")
                continue
            if rid in seen:
                report.problem("duplicate_id", path, rid, "question id listed twice")
                continue
            seen.add(rid)
            if not nonempty_str(rec["text"]):
                report.problem("empty_text", path, rid, "empty question text")
                continue
            label = str(rec["label"]).strip().lower()
            if label not in POPE_LABELS:
                report.problem("bad_answers", path, rid, f"label must be yes/no (got {rec['label']!r})")
                continue
            image_path = root / rec["image"] if root is not None else None
            if config.check_images and image_path is not None and not image_path.is_file():
                report.problem("missing_image", path, rid, f"no file {image_path}")
                continue
            out.append(POPERecord(rec["question_id"], rec["image"], rec["text"].strip(), label, image_path))
    return Records(out, report)
