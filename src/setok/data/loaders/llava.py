"""LLaVA conversation JSON: LLaVA-Pretrain 558K and the LLaVA-1.5 665K mix (paper §2.2 Stage II/III).

Real files (``liuhaotian/LLaVA-Pretrain``, ``liuhaotian/LLaVA-Instruct-150K``)::

    blip_laion_cc_sbu_558k.json   [{"id": "004539375", "image": "00453/004539375.jpg",
                                    "conversations": [{"from": "human", "value": "...\\n<image>"},
                                                      {"from": "gpt", "value": "<caption>"}]}, ...]
    llava_v1_5_mix665k.json       same records; "image" is relative to the data root
                                  (coco/train2017/, gqa/images/, ocr_vqa/images/, textvqa/, vg/...);
                                  ShareGPT records have no "image" key (text-only).

Checks: turns alternate human/gpt starting with human; every value is a non-empty string; an image record
has exactly one ``<image>`` token, in a human turn (LLaVA moves it to the front when tokenising), and a
text-only record none in human turns.

SeTokim extension (SPEC §2-3, generation and editing turns; absent from the real files, so real records are
unaffected): an optional ``target_image`` (relative like ``image``) is the image the assistant produces; its
``<image>`` token sits in a gpt turn. Real records have no ``target_image`` and so no ``<image>`` in gpt turns.
Extra keys (``model``, ``task``, ...) are kept in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from setok.data.loaders.base import (
    IMAGE_TOKEN,
    ImageMixin,
    LoaderConfig,
    Records,
    expect_type,
    make_config,
    new_report,
    nonempty_str,
    open_rgb,
    read_json_file,
)


@dataclass
class Turn:
    """One conversation turn: ``role`` is "human" or "gpt" (the file's ``from``), ``value`` the text."""

    role: str
    value: str


@dataclass
class ConversationRecord(ImageMixin):
    """One LLaVA record; ``image`` is the path as written in the JSON, ``image_path`` joined to the root."""

    id: str
    image: str | None
    image_path: Path | None
    conversations: list[Turn]
    target_image: str | None = None  # SeTokim extension: the image a gpt turn generates / edits into
    target_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_image(self) -> bool:
        return self.image is not None

    def open_target(self):
        """The generated / edited target image (SeTokim extension) as an RGB PIL image."""
        if self.target_path is None:
            raise FileNotFoundError(f"record {self.id} has no target_image")
        return open_rgb(self.target_path)


def _conversation_problem(conv: object, has_image: bool, has_target: bool = False) -> tuple[str, str] | None:
    """(kind, detail) of what is wrong with a ``conversations`` list, or None."""
    if not isinstance(conv, list) or not conv:
        return "missing_field", "conversations must be a non-empty list"
    for j, turn in enumerate(conv):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            return "missing_field", f"turn {j} needs 'from' and 'value'"
        expected = "human" if j % 2 == 0 else "gpt"
        if turn["from"] != expected:
            return "bad_conversation", f"turn {j} is from {turn['from']!r}, expected {expected!r}"
        if not nonempty_str(turn["value"]):
            return "empty_text", f"turn {j} ({turn['from']}) is empty"
    n_human = sum(turn["value"].count(IMAGE_TOKEN) for turn in conv[0::2])
    n_gpt = sum(turn["value"].count(IMAGE_TOKEN) for turn in conv[1::2])
    if has_image and n_human != 1:
        return "bad_conversation", f"image record needs one {IMAGE_TOKEN} in human turns (found {n_human})"
    if not has_image and n_human:
        return "bad_conversation", f"record without image has {n_human} {IMAGE_TOKEN} token(s) in human turns"
    if n_gpt != int(has_target):
        want = "one" if has_target else "no"
        return "bad_conversation", f"gpt turns need {want} {IMAGE_TOKEN} (found {n_gpt}; target_image: {has_target})"
    return None


def load_llava(
    json_file: str | Path,
    image_root: str | Path | None = None,
    config: LoaderConfig | None = None,
    on_error: str | None = None,
    dataset: str = "llava",
) -> Records[ConversationRecord]:
    """A LLaVA conversation JSON (558K pretrain or 665K mix) -> :class:`ConversationRecord` list.

    ``image_root`` is the folder the ``image`` fields are relative to (``images/`` of LLaVA-Pretrain, the
    ``playground/data`` root of the 665K mix). Problems: missing_field, empty_text, bad_conversation,
    missing_image (when ``image_root`` is given and ``check_images`` is on).
    """
    config = make_config(config, on_error)
    report = new_report(dataset, config)
    path = Path(json_file)
    data = expect_type(read_json_file(path, dataset), list, path, "a list of records", dataset)
    root = Path(image_root) if image_root is not None else None
    out: list[ConversationRecord] = []
    for i, rec in enumerate(data):
        rid = rec.get("id", f"[{i}]") if isinstance(rec, dict) else f"[{i}]"
        if not isinstance(rec, dict) or "id" not in rec or "conversations" not in rec:
            report.problem("missing_field", path, rid, "record needs 'id' and 'conversations'")
            continue
        image, target = rec.get("image"), rec.get("target_image")
        bad = next(
            (k for k, v in (("image", image), ("target_image", target)) if v is not None and not nonempty_str(v)), None
        )
        if bad:
            report.problem("missing_field", path, rid, f"'{bad}' must be a relative path (got {rec[bad]!r})")
            continue
        problem = _conversation_problem(rec["conversations"], image is not None, target is not None)
        if problem:
            report.problem(problem[0], path, rid, problem[1])
            continue
        image_path = root / image if (root is not None and image is not None) else None
        target_path = root / target if (root is not None and target is not None) else None
        absent = next((p for p in (image_path, target_path) if p is not None and not p.is_file()), None)
        if config.check_images and absent is not None:
            report.problem("missing_image", path, rid, f"no file {absent}")
            continue
        turns = [Turn(t["from"], t["value"]) for t in rec["conversations"]]
        extra = {k: v for k, v in rec.items() if k not in ("id", "image", "target_image", "conversations")}
        out.append(ConversationRecord(str(rec["id"]), image, image_path, turns, target, target_path, extra))
    return Records(out, report)


def load_llava_pretrain(json_file: str | Path, image_root: str | Path | None = None, **kwargs) -> Records:
    """LLaVA-Pretrain ``blip_laion_cc_sbu_558k.json`` (every record has an image and one caption turn)."""
    return load_llava(json_file, image_root, dataset="llava_pretrain", **kwargs)


def load_llava_instruct(json_file: str | Path, image_root: str | Path | None = None, **kwargs) -> Records:
    """LLaVA-1.5 ``llava_v1_5_mix665k.json`` (records without "image" are text-only ShareGPT dialogues)."""
    return load_llava(json_file, image_root, dataset="llava_instruct", **kwargs)
