"""InstructPix2Pix editing triplets in the released folder-of-triplets layout (paper §2.2, Stage III editing).

Supported layout (``clip-filtered-dataset`` / ``random-sample-dataset`` of timothybrooks/instruct-pix2pix)::

    <root>/seeds.json                 optional: [["<prompt dir>", [seed, seed, ...]], ...]
    <root>/<prompt dir>/prompt.json   {"input": "<caption>", "edit": "<instruction>", "output": "<caption>"}
    <root>/<prompt dir>/<seed>_0.jpg  the input image
    <root>/<prompt dir>/<seed>_1.jpg  the edited image (``.png`` is accepted too)

Without ``seeds.json`` every sub-folder holding a ``prompt.json`` is a prompt and its seeds are the
``<seed>_0.*`` files found there. One record per (prompt dir, seed). The Hugging Face parquet copy
(``timbrooks/instructpix2pix-clip-filtered``) is not read here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from setok.data.loaders.base import (
    LoaderConfig,
    Records,
    make_config,
    new_report,
    nonempty_str,
    open_rgb,
    read_json_file,
    require_dir,
)

IMAGE_EXTS = (".jpg", ".png", ".jpeg")


@dataclass
class EditRecord:
    """One editing triplet: input image + ``instruction`` -> edited image (captions of both)."""

    id: str
    instruction: str
    input_caption: str | None
    output_caption: str | None
    input_path: Path
    output_path: Path

    def open_input(self):
        """The input image (RGB PIL)."""
        return open_rgb(self.input_path)

    def open_output(self):
        """The edited target image (RGB PIL)."""
        return open_rgb(self.output_path)


def _find(folder: Path, stem: str) -> Path | None:
    return next((folder / f"{stem}{ext}" for ext in IMAGE_EXTS if (folder / f"{stem}{ext}").is_file()), None)


def load_instructpix2pix(
    root: str | Path,
    config: LoaderConfig | None = None,
    on_error: str | None = None,
) -> Records[EditRecord]:
    """An InstructPix2Pix folder of triplets -> :class:`EditRecord` list (sorted by prompt dir, then seed).

    Problems: bad_json (prompt.json unparsable), missing_field (prompt.json absent, no ``edit``, malformed
    seeds.json entry), empty_text (empty instruction), missing_image (``<seed>_0`` or ``<seed>_1`` absent).
    """
    config = make_config(config, on_error)
    report = new_report("instructpix2pix", config)
    root = require_dir(root, "instructpix2pix root")
    seeds_file = root / "seeds.json"
    if seeds_file.is_file():
        entries = read_json_file(seeds_file, report.dataset)
        plan: list[tuple[str, list[str]]] = []
        for i, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
                report.problem("missing_field", seeds_file, f"[{i}]", "entry must be [prompt dir, [seeds]]")
                continue
            plan.append((str(entry[0]), [str(s) for s in entry[1]]))
    else:
        plan = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            seeds = sorted({f.name.rsplit("_", 1)[0] for f in folder.iterdir() if f.stem.endswith("_0")})
            plan.append((folder.name, seeds))
    out: list[EditRecord] = []
    for name, seeds in plan:
        folder = root / name
        prompt_file = folder / "prompt.json"
        if not prompt_file.is_file():
            report.problem("missing_field", folder, name, "no prompt.json")
            continue
        try:
            prompt = json.loads(prompt_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            report.problem("bad_json", prompt_file, name, f"line {err.lineno} col {err.colno}: {err.msg}")
            continue
        if not isinstance(prompt, dict) or "edit" not in prompt:
            report.problem("missing_field", prompt_file, name, "prompt.json needs 'edit'")
            continue
        if not nonempty_str(prompt["edit"]):
            report.problem("empty_text", prompt_file, name, "empty edit instruction")
            continue
        for seed in seeds:
            rid = f"{name}/{seed}"
            src, dst = _find(folder, f"{seed}_0"), _find(folder, f"{seed}_1")
            if src is None or dst is None:
                missing = f"{seed}_0" if src is None else f"{seed}_1"
                report.problem("missing_image", folder, rid, f"no {missing}{{{','.join(IMAGE_EXTS)}}}")
                continue
            out.append(
                EditRecord(rid, prompt["edit"].strip(), prompt.get("input"), prompt.get("output"), src, dst)
            )
    return Records(out, report)
