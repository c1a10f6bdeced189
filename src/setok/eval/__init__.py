"""Scorers for every benchmark of the paper, with the official rules (SPEC §5).

Importing this package is cheap: :data:`TASKS` maps a task name to ``(module, function, fixed keyword
arguments)`` and :func:`get_scorer` imports the module only when asked. Every scorer takes ``(predictions,
references)`` mappings keyed by the same ids and returns a dict of named metrics; see each module's docstring
for the rule.

- ``vqav2, okvqa, vizwiz, textvqa``: :func:`setok.eval.vqa.score_vqa` (soft ``accuracy``, x100)
- ``nocaps, flickr30k``: :func:`setok.eval.captioning.score_captions` (``CIDEr``, x100)
- ``gqa``, ``vsr``, ``iconqa``: :mod:`setok.eval.choice` (``accuracy``, x100)
- ``pope``: :func:`setok.eval.pope.score_pope` (per split and ``average``
  accuracy/precision/recall/F1/yes-ratio)
- ``mme``: :func:`setok.eval.mme.score_mme` (``perception``, ``cognition``)
- ``mmbench``: :func:`setok.eval.mmbench.score_mmbench` (``circular_accuracy``, exact-match extraction)
- ``refcoco, refcoco+, refcocog``: :func:`setok.eval.referring.rec_accuracy` (``acc@0.5``)
- ``reasonseg``: :func:`setok.eval.referring.reasonseg_iou` (``giou``, ``ciou``)
- ``t2i``: FID and CLIP-I (:mod:`setok.eval.image`; labelled non-standard without local weights)
- ``editing``: L1 and CLIP-I against the target (MagicBrush, EVR) or input image (Emu-Edit)
- ``mmvet``: export only (:func:`setok.eval.export.export_mmvet`): it needs a GPT-4 judge
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

TASKS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "vqav2": ("setok.eval.vqa", "score_vqa", {"task": "vqav2"}),
    "okvqa": ("setok.eval.vqa", "score_vqa", {"task": "okvqa"}),
    "vizwiz": ("setok.eval.vqa", "score_vqa", {"task": "vizwiz"}),
    "textvqa": ("setok.eval.vqa", "score_vqa", {"task": "textvqa"}),
    "nocaps": ("setok.eval.captioning", "score_captions", {}),
    "flickr30k": ("setok.eval.captioning", "score_captions", {}),
    "gqa": ("setok.eval.choice", "score_gqa", {}),
    "vsr": ("setok.eval.choice", "score_vsr", {}),
    "iconqa": ("setok.eval.choice", "score_iconqa", {}),
    "pope": ("setok.eval.pope", "score_pope", {}),
    "mme": ("setok.eval.mme", "score_mme", {}),
    "mmbench": ("setok.eval.mmbench", "score_mmbench", {}),
    "refcoco": ("setok.eval.referring", "rec_accuracy", {}),
    "refcoco+": ("setok.eval.referring", "rec_accuracy", {}),
    "refcocog": ("setok.eval.referring", "rec_accuracy", {}),
    "reasonseg": ("setok.eval.referring", "reasonseg_iou", {}),
    "t2i": ("setok.eval.cli", "score_t2i", {}),
    "editing": ("setok.eval.cli", "score_editing", {}),
}
# Tasks with an official format but no local scorer: the CLI exports them and says why.
EXPORT_ONLY = {"mmvet": "MM-Vet needs a GPT-4 judge, not scored here; submit the exported JSON to the "
                        "official evaluator"}


def get_scorer(task: str) -> Callable[..., dict[str, Any]]:
    """The scoring function of ``task`` with its fixed arguments bound (imports its module now)."""
    if task in EXPORT_ONLY:
        raise ValueError(f"task {task!r} is export-only: {EXPORT_ONLY[task]}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(TASKS) + sorted(EXPORT_ONLY)}")
    module, name, fixed = TASKS[task]
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"task {task!r} needs {module}.{name}, not available here ({err})") from None
    return functools.partial(fn, **fixed) if fixed else fn
