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
text-only record none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from setok.data.loaders.base import (
    IMAGE_TOKEN,
    ImageMixin,
    LoaderConfig,
    Records,
    expect_type,
    make_config,
    new_report,
    nonempty_str,
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

    @property
    def has_image(self) -> bool:
        return self.image is not None


def _conversation_problem(conv: object, has_image: bool) -> tuple[str, str] | None:
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
    n_tokens = sum(turn["value"].count(IMAGE_TOKEN) for turn in conv)
    n_human = sum(turn["value"].count(IMAGE_TOKEN) for turn in conv[0::2])
    if has_image and (n_tokens != 1 or n_human != 1):
        return "bad_conversation", f"image record needs one {IMAGE_TOKEN} in a human turn (found {n_tokens})"
    if not has_image and n_tokens:
        return "bad_conversation", f"text-only record contains {n_tokens} {IMAGE_TOKEN} token(s)"
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
        image = rec.get("image")
        if image is not None and not nonempty_str(image):
            report.problem("missing_field", path, rid, f"'image' must be a relative path (got {image!r})")
            continue
        problem = _conversation_problem(rec["conversations"], image is not None)
        if problem:
            report.problem(problem[0], path, rid, problem[1])
            continue
        image_path = root / image if (root is not None and image is not None) else None
        if config.check_images and image_path is not None and not image_path.is_file():
            report.problem("missing_image", path, rid, f"no file {image_path}")
            continue
        turns = [Turn(t["from"], t["value"]) for t in rec["conversations"]]
        out.append(ConversationRecord(str(rec["id"]), image, image_path, turns))
    return Records(out, report)


def load_llava_pretrain(json_file: str | Path, image_root: str | Path | None = None, **kwargs) -> Records:
    """LLaVA-Pretrain ``blip_laion_cc_sbu_558k.json`` (every record has an image and one caption turn)."""
    return load_llava(json_file, image_root, dataset="llava_pretrain", **kwargs)


def load_llava_instruct(json_file: str | Path, image_root: str | Path | None = None, **kwargs) -> Records:
    """LLaVA-1.5 ``llava_v1_5_mix665k.json`` (records without "image" are text-only ShareGPT dialogues)."""
    return load_llava(json_file, image_root, dataset="llava_instruct", **kwargs)
