"""Official submission files and a neutral JSONL of predictions (SPEC §5.1).

Each ``export_*`` turns ``{id: prediction}`` into the structure its evaluation server expects, so a result of
this book can be cross-checked on the official server or with lmms-eval / VLMEvalKit on a GPU node:

- VQA v2 test-dev/std: ``[{"question_id": int, "answer": str}]``
- VizWiz: ``[{"image": "VizWiz_test_00000000.jpg", "answer": str}]``
- GQA: ``[{"questionId": str, "prediction": str}]``
- NoCaps: ``[{"image_id": int, "caption": str}]``
- MMBench: the question table plus a ``prediction`` column, ``.xlsx`` (``.tsv`` when openpyxl is absent)
- MM-Vet: ``{"v1_0": answer, ...}`` for the official GPT-4 grader (not scored here)
- any task: a neutral ``predictions.jsonl``, one ``{"task", "id", "prediction"}`` per line
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from setok.book.results import atomic_write_bytes, write_json
from setok.eval.common import _show

log = logging.getLogger(__name__)

MMVET_NOTE = "needs a GPT-4 judge, not scored here"


def _check_predictions(predictions: Mapping[Any, Any], task: str) -> None:
    if not isinstance(predictions, Mapping) or len(predictions) == 0:
        raise ValueError(f"{task}: no predictions to export (got {type(predictions).__name__} of "
                         f"{len(predictions) if hasattr(predictions, '__len__') else '?'} items)")
    blank = [i for i, p in predictions.items() if not isinstance(p, str) or not p.strip()]
    if blank:
        raise ValueError(f"{task}: {len(blank)} predictions are empty or not text: {_show(blank)}")


def _int_ids(predictions: Mapping[Any, Any], task: str, key: str) -> dict[int, Any]:
    out, bad = {}, []
    for i, p in predictions.items():
        try:
            out[int(i)] = p
        except (TypeError, ValueError):
            bad.append(i)
    if bad:
        raise ValueError(f"{task}: {key} must be integers; {len(bad)} ids are not: {_show(bad)}")
    if len(out) != len(predictions):
        raise ValueError(f"{task}: ids collide once read as integers ({len(predictions)} -> {len(out)})")
    return out


def export_vqav2(predictions: Mapping[Any, str]) -> list[dict[str, Any]]:
    """VQA v2 test-dev/test-std results: ``[{"question_id": int, "answer": str}]``."""
    _check_predictions(predictions, "vqav2")
    return [{"question_id": q, "answer": a} for q, a in _int_ids(predictions, "vqav2", "question_id").items()]


def export_vizwiz(predictions: Mapping[Any, str]) -> list[dict[str, Any]]:
    """VizWiz-VQA results: ``[{"image": file name, "answer": str}]``."""
    _check_predictions(predictions, "vizwiz")
    return [{"image": str(i), "answer": a} for i, a in predictions.items()]


def export_gqa(predictions: Mapping[Any, str]) -> list[dict[str, Any]]:
    """GQA predictions: ``[{"questionId": str, "prediction": str}]``."""
    _check_predictions(predictions, "gqa")
    return [{"questionId": str(q), "prediction": a} for q, a in predictions.items()]


def export_nocaps(predictions: Mapping[Any, str]) -> list[dict[str, Any]]:
    """NoCaps (EvalAI) results: ``[{"image_id": int, "caption": str}]``."""
    _check_predictions(predictions, "nocaps")
    return [{"image_id": i, "caption": c} for i, c in _int_ids(predictions, "nocaps", "image_id").items()]


def export_mmvet(predictions: Mapping[Any, str]) -> dict[str, str]:
    """MM-Vet results ``{"v1_0": answer, ...}`` for the official GPT-4 grader; not scored here."""
    _check_predictions(predictions, "mmvet")
    return {str(i): a for i, a in predictions.items()}


def export_mmbench(predictions: Mapping[Any, str], questions: Mapping[Any, Mapping[str, Any]],
                   path: str | Path) -> Path:
    """MMBench submission: the question rows (index, question, options, ...) plus a ``prediction`` column.

    Writes ``.xlsx`` when openpyxl is installed and ``path`` ends in ``.xlsx``; otherwise a ``.tsv`` next to
    it (logged), which the MMBench server and VLMEvalKit also read. Returns the path written.
    """
    import pandas as pd

    _check_predictions(predictions, "mmbench")
    missing = set(questions) - set(predictions)
    extra = set(predictions) - set(questions)
    if missing or extra:
        raise ValueError(f"mmbench: ids differ: {len(missing)} questions without prediction "
                         f"({_show(missing)}), {len(extra)} predictions without question ({_show(extra)})")
    rows = []
    for i, q in questions.items():
        row = {"index": i, **{k: v for k, v in q.items() if k != "options"}}
        row.update({str(k): v for k, v in (q.get("options") or {}).items()})
        row["prediction"] = predictions[i]
        rows.append(row)
    table = pd.DataFrame(rows)
    path = Path(path)
    if path.suffix == ".xlsx":
        try:
            import openpyxl  # noqa: F401
        except ImportError:
            path = path.with_suffix(".tsv")
            log.warning("openpyxl is not installed: writing the MMBench submission as TSV to %s", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".xlsx":
        table.to_excel(path, index=False)
        return path
    return atomic_write_bytes(path, table.to_csv(sep="\t", index=False).encode())


EXPORTERS = {"vqav2": export_vqav2, "vizwiz": export_vizwiz, "gqa": export_gqa, "nocaps": export_nocaps,
             "mmvet": export_mmvet}


def write_submission(task: str, predictions: Mapping[Any, str], path: str | Path,
                     questions: Mapping[Any, Mapping[str, Any]] | None = None) -> Path:
    """Write the official submission file of ``task`` (one of EXPORTERS or ``mmbench``) to ``path``."""
    if task == "mmbench":
        if questions is None:
            raise ValueError("mmbench: the submission needs the question table (questions=...)")
        return export_mmbench(predictions, questions, path)
    if task not in EXPORTERS:
        known = sorted(EXPORTERS) + ["mmbench"]
        raise ValueError(f"no official submission format for {task!r}; known: {known} "
                         "(use write_jsonl for a neutral file)")
    if task == "mmvet":
        log.warning("MM-Vet: %s", MMVET_NOTE)
    return write_json(Path(path), EXPORTERS[task](predictions))


def write_jsonl(task: str, predictions: Mapping[Any, Any], path: str | Path,
                extra: Mapping[Any, Mapping[str, Any]] | None = None) -> Path:
    """A neutral predictions file: one ``{"task", "id", "prediction", **extra[id]}`` JSON object per line."""
    if not isinstance(predictions, Mapping) or len(predictions) == 0:
        raise ValueError(f"{task}: no predictions to write")
    lines = [json.dumps({"task": task, "id": i, "prediction": p, **dict((extra or {}).get(i, {}))})
             for i, p in predictions.items()]
    return atomic_write_bytes(Path(path), ("\n".join(lines) + "\n").encode())
