"""Image-text pairs for CC3M / LAION-style data: a folder or webdataset tar shards (paper §2.2 Stage I/II).

Both layouts group files by *key*: the path up to the first dot of the file name (the webdataset rule), so
``00000/000000012.jpg`` + ``00000/000000012.txt`` (+ ``00000/000000012.json``) form one pair::

    <folder>/**/<key>.{jpg,jpeg,png,webp}  +  <key>.txt (the caption)  and/or  <key>.json ({"caption": ...})
    <shards>/*.tar                         the same members inside tar files (img2dataset's output format)

The caption is ``<key>.txt`` if present, else the ``caption`` (or ``text``) field of ``<key>.json``; the JSON,
if any, is kept as ``meta``. Images inside shards are read lazily from the tar when opened.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from setok.data.loaders.base import LoaderConfig, LoadReport, Records, log, make_config, new_report, nonempty_str

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CAPTION_KEYS = ("caption", "text")


@dataclass
class ImageTextRecord:
    """One image-caption pair; the image is a file (``image_path``) or a tar member (``shard``/``member``)."""

    key: str
    caption: str
    image_path: Path | None = None
    shard: Path | None = None
    member: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def open_image(self):
        """The image as an RGB PIL image (read from the shard when the pair lives in a tar)."""
        from PIL import Image

        if self.image_path is not None:
            with Image.open(self.image_path) as img:
                return img.convert("RGB")
        with tarfile.open(self.shard) as tar:
            data = tar.extractfile(self.member).read()  # type: ignore[union-attr]
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB")


def split_key(name: str) -> tuple[str, str]:
    """Webdataset key / extension of a member name: ``a/b.c.jpg`` -> (``a/b``, ``c.jpg``)."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def _pairs(
    groups: dict[str, dict[str, Any]], where: Path, report: LoadReport, shard: Path | None
) -> list[ImageTextRecord]:
    """Turn ``key -> {ext: file path | member name | text}`` groups into records; report the broken ones."""
    out = []
    for key in sorted(groups):
        parts = groups[key]
        image_ext = next((e for e in IMAGE_EXTS if e in parts), None)
        meta: dict[str, Any] = {}
        if "json" in parts:
            try:
                meta = json.loads(parts["json"])
            except json.JSONDecodeError as err:
                report.problem("bad_json", where, key, f"{key}.json: {err.msg}")
                continue
            if not isinstance(meta, dict):
                report.problem("bad_json", where, key, f"{key}.json is not an object")
                continue
        if "txt" in parts:
            caption = parts["txt"]
        else:
            caption = next((meta[k] for k in CAPTION_KEYS if k in meta), None)
        if image_ext is None:
            report.problem("missing_image", where, key, f"caption without an image ({'/'.join(IMAGE_EXTS)})")
            continue
        if caption is None:
            report.problem("missing_field", where, key, "no <key>.txt and no caption/text in <key>.json")
            continue
        if not nonempty_str(caption):
            report.problem("empty_text", where, key, "empty caption")
            continue
        if shard is None:
            out.append(ImageTextRecord(key, caption.strip(), image_path=parts[image_ext], meta=meta))
        else:
            out.append(ImageTextRecord(key, caption.strip(), shard=shard, member=parts[image_ext], meta=meta))
    return out


def _read_folder(folder: Path, report: LoadReport) -> list[ImageTextRecord]:
    groups: dict[str, dict[str, Any]] = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        key, ext = split_key(f.relative_to(folder).as_posix())
        if ext in IMAGE_EXTS:
            groups.setdefault(key, {})[ext] = f
        elif ext in ("txt", "json"):
            groups.setdefault(key, {})[ext] = f.read_text(encoding="utf-8")
    return _pairs(groups, folder, report, None)


def _read_shard(shard: Path, report: LoadReport) -> list[ImageTextRecord]:
    groups: dict[str, dict[str, Any]] = {}
    try:
        tar = tarfile.open(shard)
    except tarfile.TarError as err:
        report.problem("bad_json", shard, "<shard>", f"not a readable tar file ({err})")
        return []
    with tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            key, ext = split_key(m.name)
            if ext in IMAGE_EXTS:
                groups.setdefault(key, {})[ext] = m.name
            elif ext in ("txt", "json"):
                groups.setdefault(key, {})[ext] = tar.extractfile(m).read().decode("utf-8")  # type: ignore
    return _pairs(groups, shard, report, shard)


def load_image_text(
    source: str | Path | Iterable[str | Path],
    config: LoaderConfig | None = None,
    on_error: str | None = None,
    dataset: str = "image_text",
) -> Records[ImageTextRecord]:
    """Image-caption pairs from a folder, a ``.tar`` shard, a folder of shards, or a list of shards.

    A folder whose top level holds ``*.tar`` files is read as shards; otherwise as a plain folder (recursive).
    Problems: missing_image (caption without image), missing_field (image without caption), empty_text,
    bad_json (a broken ``<key>.json`` or an unreadable shard).
    """
    config = make_config(config, on_error)
    report = new_report(dataset, config)
    if isinstance(source, (str, Path)):
        source = Path(source)
        if source.is_dir():
            shards = sorted(source.glob("*.tar"))
            if not shards:
                return Records(_read_folder(source, report), report)
            sources = shards
        elif source.is_file():
            sources = [source]
        else:
            raise FileNotFoundError(f"{dataset} source not found: {source}")
    else:
        sources = [Path(s) for s in source]
    out: list[ImageTextRecord] = []
    for shard in sources:
        if not shard.is_file():
            raise FileNotFoundError(f"{dataset} shard not found: {shard}")
        out.extend(_read_shard(shard, report))
    return Records(out, report, meta={"shards": [str(s) for s in sources]})


def iter_image_text(
    shards: Iterable[str | Path],
    report: LoadReport,
) -> Iterator[ImageTextRecord]:
    """Stream pairs shard by shard (LAION-scale data that should not sit in memory at once).

    Problems go to ``report`` (``LoadReport(dataset, on_error=...)``; "raise" raises on the first one); its
    summary is logged when the stream is exhausted if anything was skipped.
    """
    for shard in shards:
        shard = Path(shard)
        if not shard.is_file():
            raise FileNotFoundError(f"{report.dataset} shard not found: {shard}")
        records = _read_shard(shard, report)
        report.loaded += len(records)
        yield from records
    if report.skipped:
        log.warning(report.summary())
