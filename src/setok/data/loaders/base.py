"""Shared machinery of the dataset loaders: the error policy, the skip report, lazy images, JSON reading.

Every loader (SPEC §6: the same loaders read the real datasets at paper scale and the mini world) validates
each record and hands every problem to one :class:`LoadReport`. With ``on_error="raise"`` the first problem
raises a :class:`MalformedRecordError` (a ValueError) naming the file, the record id and the problem kind;
with ``on_error="skip"`` the record is dropped, counted per kind, and the first few ids are kept.
Nothing is ever lost silently: ``Records.report.summary()`` says what was skipped and why.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

# The problem kinds every loader reports (a record is skipped for the first problem found).
PROBLEM_KINDS = (
    "missing_image",  # the image file a record points to does not exist
    "bad_json",  # a JSON file / JSON line / sidecar cannot be parsed
    "missing_field",  # a required field is absent or has the wrong type
    "out_of_bounds",  # a box / polygon / RLE mask does not fit inside its image
    "bad_geometry",  # a malformed box (not 4 numbers, negative size), polygon (< 3 points) or RLE
    "empty_text",  # an empty caption / question / sentence / instruction / answer turn
    "bad_answers",  # VQA v2 answers not 10, a POPE label not yes/no
    "unknown_id",  # a reference to an image / annotation / question id that does not exist
    "bad_conversation",  # LLaVA turns not human/gpt alternating, or <image> token count wrong
    "duplicate_id",  # a second record with an id already seen (image, annotation, question, ref)
)
ON_ERROR = ("raise", "skip")
log = logging.getLogger("setok.data.loaders")  # skip summaries go here (stderr by default, as a WARNING)
IMAGE_TOKEN = "<image>"


class MalformedRecordError(ValueError):
    """A record failed validation in ``on_error="raise"`` mode; the message names file, record id and kind."""


@dataclass
class LoaderConfig:
    """How strictly loaders validate (the ``data.loaders`` config section).

    on_error: "raise" fails fast on the first malformed record; "skip" drops it, counts it and summarises.
    check_images: stat every referenced image file (missing -> ``missing_image``); off for huge remote mounts.
    bbox_tolerance: pixels a box or polygon may exceed the image border before it counts as out of bounds.
    max_examples: how many offending record ids per kind the summary keeps.
    """

    on_error: str = "raise"
    check_images: bool = True
    bbox_tolerance: float = 1.0
    max_examples: int = 5

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR} (got {self.on_error!r})")
        if self.bbox_tolerance < 0:
            raise ValueError(f"bbox_tolerance must be >= 0 (got {self.bbox_tolerance})")
        if self.max_examples < 0:
            raise ValueError(f"max_examples must be >= 0 (got {self.max_examples})")


def loader_config(cfg: dict[str, Any]) -> LoaderConfig:
    """The ``loaders:`` section of a resolved profile (``setok.config.load_profile``) as a LoaderConfig."""
    from setok.config import build

    return build(LoaderConfig, cfg.get("loaders"), where="loaders")


def make_config(config: LoaderConfig | None, on_error: str | None) -> LoaderConfig:
    """The loader config with an optional ``on_error`` override (each loader takes both)."""
    config = config or LoaderConfig()
    if on_error is not None and on_error != config.on_error:
        config = LoaderConfig(
            on_error=on_error,
            check_images=config.check_images,
            bbox_tolerance=config.bbox_tolerance,
            max_examples=config.max_examples,
        )
    return config


@dataclass
class LoadReport:
    """Skipped records counted per problem kind, with the first few ``(file, record id, detail)`` of each."""

    dataset: str
    on_error: str = "raise"
    max_examples: int = 5
    loaded: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    def problem(self, kind: str, file: str | Path, record_id: Any, detail: str) -> None:
        """Report one malformed record: raise in "raise" mode, else count it (the caller then skips it)."""
        if kind not in PROBLEM_KINDS:
            raise ValueError(f"unknown problem kind {kind!r}; expected one of {PROBLEM_KINDS}")
        if self.on_error == "raise":
            raise MalformedRecordError(f"{self.dataset}: {file}: record {record_id}: {kind}: {detail}")
        self.counts[kind] = self.counts.get(kind, 0) + 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < self.max_examples:
            shown.append((str(file), str(record_id), detail))

    @property
    def skipped(self) -> int:
        """Total number of skipped records."""
        return sum(self.counts.values())

    def summary(self) -> str:
        """A human-readable summary: loaded / skipped and, per kind, the count and the first ids."""
        lines = [f"{self.dataset}: loaded {self.loaded}, skipped {self.skipped}"]
        for kind in sorted(self.counts):
            ids = ", ".join(rid for _, rid, _ in self.examples.get(kind, []))
            first = self.examples[kind][0] if self.examples.get(kind) else ("", "", "")
            lines.append(f"  {kind}: {self.counts[kind]} (first ids: {ids}; e.g. {first[0]}: {first[2]})")
        return "\n".join(lines)

    def merge(self, other: LoadReport) -> None:
        """Add another report's counts (e.g. several shards of one dataset)."""
        self.loaded += other.loaded
        for kind, n in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
            shown = self.examples.setdefault(kind, [])
            shown.extend(other.examples.get(kind, [])[: max(0, self.max_examples - len(shown))])


T = TypeVar("T")


class Records(Sequence[T], Generic[T]):
    """The loaded records (a read-only sequence) together with the :class:`LoadReport` of what was skipped."""

    def __init__(self, items: list[T], report: LoadReport, meta: dict[str, Any] | None = None):
        self.items = items
        self.report = report
        self.meta = meta or {}  # dataset-level extras, e.g. COCO ``categories`` {id: name}
        report.loaded = len(items)
        if report.skipped:  # never a silent loss: the summary is logged as soon as the records exist
            log.warning(report.summary())

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):  # type: ignore[override]
        return self.items[index]

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"Records({self.report.dataset}: {len(self)} loaded, {self.report.skipped} skipped)"


def new_report(dataset: str, config: LoaderConfig) -> LoadReport:
    """An empty report carrying the config's error policy."""
    return LoadReport(dataset=dataset, on_error=config.on_error, max_examples=config.max_examples)


def open_rgb(path: str | Path):
    """Open an image file as an RGB PIL image (imported lazily so loaders stay light)."""
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


class ImageMixin:
    """Records with ``image_path``: ``record.open_image()`` reads the pixels only when asked."""

    image_path: Path | None

    def open_image(self):
        """The record's image as an RGB PIL image; FileNotFoundError naming the path if it is gone."""
        if self.image_path is None:
            raise FileNotFoundError(f"{type(self).__name__} has no image (text-only record)")
        path = Path(self.image_path)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        return open_rgb(path)


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path if it is a file, else a FileNotFoundError naming ``what`` and the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as a Path if it is a directory, else a FileNotFoundError naming ``what`` and the path."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found (expected a directory): {path}")
    return path


def read_json_file(path: str | Path, dataset: str) -> Any:
    """Parse a whole JSON file; a syntax error is a MalformedRecordError naming the file, line and column.

    A whole-file parse error cannot be skipped record by record, so it raises in both policies.
    """
    path = require_file(path, f"{dataset} file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise MalformedRecordError(
            f"{dataset}: {path}: record <file>: bad_json: line {err.lineno} col {err.colno}: {err.msg}"
        ) from err


def expect_type(value: Any, typ: type | tuple[type, ...], path: Path, what: str, dataset: str) -> Any:
    """Check the top-level structure of a file (e.g. a list of records); a ValueError names file and type."""
    if not isinstance(value, typ):
        raise MalformedRecordError(
            f"{dataset}: {path}: record <file>: missing_field: expected {what}, got {type(value).__name__}"
        )
    return value


def admit_entry(entry: Any, index: int, list_name: str, required: tuple[str, ...], seen: set[Any],
                report: LoadReport, path: Path, label: str) -> Any | None:
    """The shared first check of a COCO-style list entry: a dict with the ``required`` keys and an unseen ``id``.

    Returns the entry's record id (its ``id``, else ``<list_name>[index]``), or None after reporting the problem
    (``missing_field`` or ``duplicate_id``) under ``"<label> <id>"``. Admitted ids are added to ``seen``.
    """
    rid = entry.get("id", f"{list_name}[{index}]") if isinstance(entry, dict) else f"{list_name}[{index}]"
    where = f"{label} {rid}"
    if not isinstance(entry, dict) or not all(k in entry for k in required):
        report.problem("missing_field", path, where, f"{label.split()[-1]} needs {', '.join(required)}")
        return None
    if rid in seen:
        report.problem("duplicate_id", path, where, f"{label.split()[-1]} id listed twice")
        return None
    seen.add(rid)
    return rid


def nonempty_str(value: Any) -> bool:
    """True for a string with at least one non-space character."""
    return isinstance(value, str) and bool(value.strip())


def box_problem(bbox: Any, width: float, height: float, tol: float) -> tuple[str, str] | None:
    """(kind, detail) if a COCO box ``[x, y, w, h]`` is malformed or leaves a ``width`` x ``height`` image."""
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        return "bad_geometry", f"bbox must be [x, y, w, h] numbers (got {bbox!r})"
    x, y, w, h = bbox
    if w < 0 or h < 0:
        return "bad_geometry", f"bbox {bbox} has negative size"
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        return "out_of_bounds", f"bbox {bbox} exceeds the {width}x{height} image"
    return None


def segmentation_problem(seg: Any, width: int, height: int, tol: float) -> tuple[str, str] | None:
    """(kind, detail) if a COCO segmentation (polygons or RLE) is malformed or does not fit the image."""
    if isinstance(seg, list):  # polygons: [[x0, y0, x1, y1, ...], ...]
        for poly in seg:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                n = len(poly) if isinstance(poly, list) else type(poly).__name__
                return "bad_geometry", f"polygon must be a flat list of >= 3 (x, y) pairs (got {n})"
            xs, ys = poly[0::2], poly[1::2]
            if min(xs) < -tol or min(ys) < -tol or max(xs) > width + tol or max(ys) > height + tol:
                return "out_of_bounds", f"polygon exceeds the {width}x{height} image"
        return None
    if isinstance(seg, dict):  # RLE: {"size": [h, w], "counts": str | list[int]}
        size = seg.get("size")
        if "counts" not in seg or not isinstance(size, list) or len(size) != 2:
            return "bad_geometry", "RLE must have 'size' [h, w] and 'counts'"
        if list(size) != [height, width]:
            return "out_of_bounds", f"RLE size {size} does not match the image [h, w] = [{height}, {width}]"
        counts = seg["counts"]
        if isinstance(counts, list) and sum(counts) != height * width:
            return "bad_geometry", f"uncompressed RLE counts sum to {sum(counts)}, not h*w = {height * width}"
        return None
    return "bad_geometry", f"segmentation must be polygons or RLE (got {type(seg).__name__})"


def decode_segmentation(seg: Any, height: int, width: int):
    """A COCO segmentation (polygons, plain or compressed RLE) as a (H, W) uint8 mask via pycocotools."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):  # polygons -> one RLE per polygon, merged
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg.get("counts"), list):  # uncompressed RLE (iscrowd=1 in COCO)
        rle = mask_utils.frPyObjects(seg, height, width)
    else:  # compressed RLE; counts may be str (JSON) or bytes
        rle = dict(seg)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    with warnings.catch_warnings():  # pycocotools 2.0.x + numpy 2: DeprecationWarning about __array__(copy=)
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle)  # (H, W) uint8
