"""Input checks and file readers shared by every scorer (SPEC §5.1).

Scorers take two mappings keyed by the same ids: ``predictions`` (id -> model output) and ``references``
(id -> ground truth). Before scoring, :func:`check_pairs` makes sure both sides name the same ids, that there
is something to score and that no prediction is empty; every problem is a ``ValueError`` that names the ids
and the counts, so a half-written predictions file never turns into a quietly lower number.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MAX_SHOWN = 5  # ids quoted in an error message before "... and N more"


def _show(ids: Iterable[Any]) -> str:
    ids = sorted(ids, key=str)
    head = ", ".join(repr(i) for i in ids[:MAX_SHOWN])
    return head + (f", ... and {len(ids) - MAX_SHOWN} more" if len(ids) > MAX_SHOWN else "")


def check_unique(ids: Iterable[Any], what: str) -> None:
    """Raise if an id occurs twice (e.g. two predictions for one question in a JSONL file)."""
    dup = [i for i, c in Counter(ids).items() if c > 1]
    if dup:
        raise ValueError(f"{what} has duplicate ids ({len(dup)}): {_show(dup)}")


def check_pairs(predictions: Mapping[Any, Any], references: Mapping[Any, Any], task: str,
                allow_empty_text: bool = False) -> list[Any]:
    """Check that predictions and references cover the same ids; return the ids in reference order.

    Raises ``ValueError`` when either side is empty, when ids are missing on one side (naming them and the
    counts), or when a prediction is empty/blank text (unless ``allow_empty_text``: an empty string is then
    scored as wrong).
    """
    if not isinstance(predictions, Mapping) or not isinstance(references, Mapping):
        raise ValueError(f"{task}: predictions and references must be mappings id -> value "
                         f"(got {type(predictions).__name__} and {type(references).__name__})")
    if len(references) == 0:
        raise ValueError(f"{task}: references are empty (0 ids)")
    if len(predictions) == 0:
        raise ValueError(f"{task}: predictions are empty (0 ids, {len(references)} references)")
    missing = set(references) - set(predictions)
    extra = set(predictions) - set(references)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} reference ids have no prediction: {_show(missing)}")
        if extra:
            parts.append(f"{len(extra)} prediction ids are not in the references: {_show(extra)}")
        counts = f"{len(predictions)} predictions, {len(references)} references"
        raise ValueError(f"{task}: ids differ ({counts}); " + "; ".join(parts))
    if not allow_empty_text:
        blank = [i for i, p in predictions.items() if p is None or (isinstance(p, str) and not p.strip())]
        if blank:
            raise ValueError(f"{task}: {len(blank)} predictions are empty: {_show(blank)}")
    for i, p in predictions.items():
        if p is not None and not isinstance(p, str):
            raise ValueError(f"{task}: prediction for id {i!r} must be a string (got {type(p).__name__})")
    return list(references)


def require_keys(references: Mapping[Any, Mapping[str, Any]], keys: Iterable[str], task: str) -> None:
    """Raise if a reference record lacks one of ``keys``."""
    keys = list(keys)
    for i, ref in references.items():
        if not isinstance(ref, Mapping):
            raise ValueError(f"{task}: reference for id {i!r} must be an object with keys {keys} "
                             f"(got {type(ref).__name__})")
        absent = [k for k in keys if k not in ref]
        if absent:
            raise ValueError(f"{task}: reference for id {i!r} lacks keys {absent} (needs {keys})")


# ----------------------------------------------------------------------------------------------------
# Files: JSON (a list of records or an object id -> value) or JSONL (one record per line)
# ----------------------------------------------------------------------------------------------------
def _read_jsonl(text: str, path: Path) -> list[Any]:
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: not valid JSON ({err.msg})") from None
    return records


def read_records(path: str | Path) -> list[dict[str, Any]] | dict[str, Any]:
    """Read a ``.json`` file (list or object) or a ``.jsonl`` file (one JSON object per line).

    A ``.json`` file holding one object per line (as the official POPE files do) is read as JSON lines.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    text = path.read_text()
    if path.suffix == ".jsonl":
        return _read_jsonl(text, path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # several JSON values: JSON lines under a .json name
            return _read_jsonl(text, path)
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


ID_KEYS = ("id", "question_id", "questionId", "image_id", "image", "index")


def to_mapping(data: list[dict[str, Any]] | dict[str, Any], value_key: str | None, what: str,
               id_key: str | None = None) -> dict[Any, Any]:
    """Turn records into ``{id: value}``.

    ``data`` is either an object ``{id: value}`` (returned as is, ids as strings) or a list of records. A
    record's id is ``id_key`` or the first of ``id, question_id, questionId, image_id, image, index`` it has;
    its value is ``record[value_key]``, or the whole record (minus the id) when ``value_key`` is None. Ids are
    compared as strings, so ``1`` in one file matches ``"1"`` in the other.
    """
    if isinstance(data, dict):
        out = {str(k): v for k, v in data.items()}
        if len(out) != len(data):
            check_unique([str(k) for k in data], what)
        return out
    if not isinstance(data, list):
        raise ValueError(f"{what}: expected a JSON list of records or an object id -> value "
                         f"(got {type(data).__name__})")
    out: dict[Any, Any] = {}
    ids = []
    for n, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise ValueError(f"{what}: record {n} is a {type(rec).__name__}, not an object")
        key = id_key or next((k for k in ID_KEYS if k in rec), None)
        if key is None or key not in rec:
            raise ValueError(f"{what}: record {n} has no id field (one of {list(ID_KEYS)}): {sorted(rec)}")
        if value_key is not None and value_key not in rec:
            raise ValueError(f"{what}: record {n} (id {rec[key]!r}) lacks the field {value_key!r}")
        ids.append(str(rec[key]))
        out[str(rec[key])] = rec[value_key] if value_key is not None else {k: v for k, v in rec.items()
                                                                          if k != key}
    check_unique(ids, what)
    return out
