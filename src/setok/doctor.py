"""``setok doctor``: are the checkpoints and datasets the profile needs where the config says? (SPEC §4, §6)

At ``paper`` scale every path lives in the ``paths:`` section of ``configs/paper.yaml`` (``paths.checkpoints.*``,
``paths.datasets.*``) plus any ``*_path`` / ``*_root`` key of another section (e.g. ``tokenizer.encoder_path``).
Each known key has an expected structure (a Hugging Face model folder needs ``config.json`` and weights, COCO needs
``annotations/`` and the image folders, ...); the doctor checks it and prints one table row per path: present /
missing / incomplete, the path looked at, what was expected and the first thing not found. It never downloads.

At ``smoke`` / ``mini`` scale nothing external is needed (SPEC §4): the doctor confirms every ``*_path`` is null
and, with ``--roundtrip``, writes a few mini-world scenes and reads every format back with the loaders.

    setok doctor --profile paper [--config paths.datasets.coco=/my/coco] [--config-file my.yaml] [--strict]
    setok doctor --profile paper --validate coco,vqav2,pope    # also read them with the loaders, summarise
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from setok.config import check_profile, load_profile

# A requirement is a list of alternative glob patterns relative to the path; one match satisfies it.
# "x/" means a non-empty directory x; "." means the path itself is a file.
HF_WEIGHTS = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
              "pytorch_model.bin.index.json", "*.safetensors"]
DIFFUSERS_WEIGHTS = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "*.safetensors"]


def _hf(*extra: list[str]) -> list[list[str]]:
    return [["config.json"], HF_WEIGHTS, *extra]


def _sub(folder: str, names: list[str]) -> list[str]:
    return [f"{folder}/{n}" for n in names]


def _either(*names: str) -> list[str]:
    """A file directly under the root or one folder below (``questions/``, ``annotations/``, ``output/coco``)."""
    return [p for n in names for p in (n, f"*/{n}", f"*/*/{n}")]


COCO2014_NOTE = "images from paths.datasets.coco2014"

# key -> (what is expected, requirements)
CHECKPOINTS: dict[str, tuple[str, list[list[str]]]] = {
    "siglip": ("HF SiglipVisionModel folder (siglip-so400m-patch14-384): config.json + weights",
               _hf()),
    "clip_vit": ("HF CLIP vision tower folder (CLIP ViT-L/14-336 or EVA ViT-G/14-336): config.json + weights",
                 _hf()),
    "vicuna": ("HF LlamaForCausalLM folder (Vicuna-v1.5 7B/13B): config.json + weights + tokenizer",
               _hf(["tokenizer.model", "tokenizer.json"])),
    "sd15": ("diffusers StableDiffusionPipeline folder (SD-1.5): model_index.json, unet/, vae/, text_encoder/, "
             "tokenizer/, scheduler/",
             [["model_index.json"], ["unet/config.json"], _sub("unet", DIFFUSERS_WEIGHTS), ["vae/config.json"],
              _sub("vae", DIFFUSERS_WEIGHTS), ["text_encoder/config.json"], ["tokenizer/vocab.json"],
              ["scheduler/scheduler_config.json"]]),
    "bert": ("HF BERT-base folder (Q-Former init): config.json + weights + vocab", _hf(["vocab.txt",
                                                                                        "tokenizer.json"])),
    "inception": ("FID Inception-v3 weights file (pt_inception-2015-12-05, .pth/.pt/.safetensors)",
                  [["."]]),
    "clip_metric": ("HF CLIPModel folder for CLIP-I / CLIP-T scores (e.g. clip-vit-large-patch14): config.json "
                    "+ weights", _hf()),
}

DATASETS: dict[str, tuple[str, list[list[str]]]] = {
    "coco": ("COCO 2017: annotations/{captions,instances}_{train,val}2017.json + train2017/, val2017/ images",
             [[f"annotations/{k}_{s}.json"] for k in ("captions", "instances") for s in ("train2017", "val2017")]
             + [["images/train2017/*.jpg", "train2017/*.jpg"], ["images/val2017/*.jpg", "val2017/*.jpg"]]),
    "coco2014": ("COCO 2014 images (VQAv2, OK-VQA, POPE, RefCOCO): train2014/, val2014/",
                 [["images/train2014/*.jpg", "train2014/*.jpg"], ["images/val2014/*.jpg", "val2014/*.jpg"]]),
    "cc3m": ("CC3M pairs: webdataset *.tar shards or key.jpg + key.txt folders",
             [["*.tar", "*/*.tar", "*/*.txt", "*.txt"]]),
    "laion": ("LAION-Aesthetics subset: webdataset *.tar shards or key.jpg + key.txt folders",
              [["*.tar", "*/*.tar", "*/*.txt", "*.txt"]]),
    "sa1b": ("SA-1B subset: sa_*.jpg + sa_*.json (per-image RLE masks)",
             [["sa_*.jpg", "*/sa_*.jpg"], ["sa_*.json", "*/sa_*.json"]]),
    "llava_pretrain": ("LLaVA-Pretrain: blip_laion_cc_sbu_558k.json + images/",
                       [["blip_laion_cc_sbu_558k.json"], ["images/"]]),
    "llava_instruct": ("LLaVA-1.5 mix: llava_v1_5_mix665k.json + coco/train2017, gqa/images, ocr_vqa/images, "
                       "textvqa/train_images, vg/VG_100K(_2)",
                       [["llava_v1_5_mix665k.json"], ["coco/train2017/"], ["gqa/images/"], ["ocr_vqa/images/"],
                        ["textvqa/train_images/"], ["vg/VG_100K/"], ["vg/VG_100K_2/"]]),
    "instructpix2pix": ("InstructPix2Pix clip-filtered-dataset: <dir>/prompt.json + <seed>_0.jpg/<seed>_1.jpg",
                        [["seeds.json", "*/prompt.json"], ["*/*_0.jpg", "*/*_0.png"], ["*/*_1.jpg", "*/*_1.png"]]),
    "refcoco": ("refer data: refcoco/, refcoco+/, refcocog/ each with refs(*).p + instances.json; "
                + COCO2014_NOTE,
                [["refcoco/refs(unc).p"], ["refcoco/instances.json"], ["refcoco+/refs(unc).p"],
                 ["refcoco+/instances.json"], ["refcocog/refs(umd).p", "refcocog/refs(google).p"],
                 ["refcocog/instances.json"]]),
    "vqav2": ("VQA v2: v2_OpenEnded_mscoco_{train,val}2014_questions.json + v2_mscoco_{train,val}2014_"
              "annotations.json; " + COCO2014_NOTE,
              [_either(f"v2_OpenEnded_mscoco_{s}_questions.json") for s in ("train2014", "val2014")]
              + [_either(f"v2_mscoco_{s}_annotations.json") for s in ("train2014", "val2014")]),
    "gqa": ("GQA: {train,testdev}_balanced_questions.json + images/",
            [_either("testdev_balanced_questions.json"), _either("train_balanced_questions.json"),
             ["images/*.jpg"]]),
    "okvqa": ("OK-VQA: OpenEnded_mscoco_val2014_questions.json + mscoco_val2014_annotations.json; "
              + COCO2014_NOTE,
              [_either("OpenEnded_mscoco_val2014_questions.json"), _either("mscoco_val2014_annotations.json")]),
    "nocaps": ("NoCaps: nocaps_val_4500_captions.json + validation images",
               [_either("nocaps_val_4500_captions.json"), ["images/", "val/", "validation/"]]),
    "flickr30k": ("Flickr30K: Karpathy dataset_flickr30k.json (or test captions JSON) + flickr30k-images/",
                  [_either("dataset_flickr30k.json", "flickr30k_test*.json"),
                   ["flickr30k-images/*.jpg", "images/*.jpg"]]),
    "pope": ("POPE: coco_pope_{random,popular,adversarial}.json (JSON lines); " + COCO2014_NOTE,
             [_either(f"coco_pope_{v}.json") for v in ("random", "popular", "adversarial")]),
    "mme": ("MME_Benchmark_release_version: one folder per subtask with images and *.txt question files",
            [["existence/"], ["*/*.txt", "*/questions_answers_YN/*.txt"]]),
    "mmbench": ("MMBench: *.tsv (e.g. mmbench_dev_20230712.tsv)", [["*.tsv"]]),
    "mmvet": ("MM-Vet: mm-vet.json + images/", [["mm-vet.json"], ["images/"]]),
    "reasonseg": ("ReasonSeg: train/, val/, test/ with *.jpg + *.json (polygons)",
                  [["val/*.json"], ["val/*.jpg"], ["test/*.json"]]),
    "magicbrush": ("MagicBrush: test/edit_sessions.json + test/images/ (or HF parquet data/*.parquet)",
                   [["test/edit_sessions.json", "data/*.parquet"]]),
    "emu_edit": ("Emu-Edit test set (HF parquet): data/*.parquet", [["data/*.parquet", "*.parquet"]]),
    "evr": ("EVR editing pairs: annotation *.json + images/", [["*.json"], ["images/", "*.jpg"]]),
}

WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin", ".npz")


@dataclass
class DoctorRow:
    """One checked path: ``status`` is "present", "missing" (no such path) or "incomplete"."""

    key: str
    path: str
    status: str
    expected: str
    problem: str = ""


def _matches(root: Path, pattern: str) -> bool:
    if pattern == ".":
        return root.is_file() and root.suffix in WEIGHT_SUFFIXES
    if pattern.endswith("/"):
        folder = root / pattern.rstrip("/")
        return folder.is_dir() and next(folder.iterdir(), None) is not None
    if not any(c in pattern for c in "*?["):
        return (root / pattern).exists()
    return root.is_dir() and next(root.glob(pattern), None) is not None  # lazy: stops at the first match


def check_path(key: str, path: str | Path | None, expected: str, requirements: list[list[str]]) -> DoctorRow:
    """Check one path against its requirements (each a list of alternative patterns)."""
    if path is None or str(path).strip() == "":
        return DoctorRow(key, "(not set)", "missing", expected, "no path configured")
    root = Path(path)
    if not root.exists():
        return DoctorRow(key, str(root), "missing", expected, "path does not exist")
    for alternatives in requirements:
        if not any(_matches(root, pat) for pat in alternatives):
            if alternatives == ["."]:
                return DoctorRow(key, str(root), "incomplete", expected, f"not a {'/'.join(WEIGHT_SUFFIXES)} file")
            return DoctorRow(key, str(root), "incomplete", expected, f"not found: {' | '.join(alternatives)}")
    return DoctorRow(key, str(root), "present", expected)


SKIP_SECTIONS = ("paths", "data.miniworld")  # checked by structure / written by the mini-world generator


def path_keys(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every ``*_path`` / ``*_root`` key outside ``paths:`` (e.g. ``tokenizer.encoder_path``), dotted -> value."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            if dotted not in SKIP_SECTIONS:
                out.update(path_keys(value, dotted + "."))
        elif str(key).endswith(("_path", "_root")):
            out[dotted] = value
    return out


def run_doctor(cfg: dict[str, Any]) -> list[DoctorRow]:
    """All rows for a resolved config: ``paths.checkpoints.*``, ``paths.datasets.*`` and other ``*_path`` keys.

    Keys of ``paths`` that the doctor does not know are checked for existence only; known keys that the config
    lacks are reported missing ("no path configured").
    """
    paths = cfg.get("paths") or {}
    rows: list[DoctorRow] = []
    for group, specs in (("checkpoints", CHECKPOINTS), ("datasets", DATASETS)):
        section = paths.get(group) or {}
        if not isinstance(section, dict):
            raise ValueError(f"paths.{group} must be a mapping of name -> path (got {type(section).__name__})")
        for name in list(specs) + sorted(set(section) - set(specs)):
            expected, reqs = specs.get(name, ("exists (no known structure)", []))
            rows.append(check_path(f"paths.{group}.{name}", section.get(name), expected, reqs))
    for dotted, value in sorted(path_keys(cfg).items()):
        if value is not None:
            rows.append(check_path(dotted, value, "exists (read by its component)", []))
    return rows


def format_table(rows: list[DoctorRow]) -> str:
    """A fixed-width text table: status, config key, path, expected / problem."""
    head = ("status", "config key", "path looked at", "expected (problem)")
    body = [(r.status, r.key, r.path, r.expected + (f"  [{r.problem}]" if r.problem else "")) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line[:3], widths, strict=True)) + "  " + line[3]
             for line in [head, *body]]
    lines.insert(1, "-" * min(160, len(lines[0])))
    return "\n".join(lines)


def check_local(cfg: dict[str, Any]) -> list[DoctorRow]:
    """Smoke / mini: every ``*_path`` must be null and no ``paths:`` section set (nothing external needed)."""
    rows = []
    for dotted, value in sorted(path_keys(cfg).items()):
        if value is not None:
            rows.append(DoctorRow(dotted, str(value), "external", "null at this profile", "set, but unused offline"))
    for group in (cfg.get("paths") or {}).values():
        for name, value in (group or {}).items():
            rows.append(DoctorRow(f"paths.*.{name}", str(value), "external", "null at this profile"))
    return rows


def roundtrip(n: int = 4, resolution: int = 32) -> str:
    """Write ``n`` mini-world scenes in every real format into a temp dir and read them back (SPEC §6)."""
    from setok.data.loaders import load_miniworld
    from setok.data.miniworld.writers import write_miniworld

    with tempfile.TemporaryDirectory() as tmp:
        write_miniworld(Path(tmp), split="train", n=n, resolution=resolution, progress=False)
        loaded = load_miniworld(Path(tmp), "train", on_error="raise")
        return ", ".join(f"{name} {len(recs)}" for name, recs in loaded.items())


def _find(root: Path, name: str) -> Path:
    """``root/name`` or the first ``root/**/name`` (files may sit in ``questions/``, ``output/coco/``, ...)."""
    direct = root / name
    return direct if direct.exists() else next(root.rglob(name), direct)


def _first_dir(*cands: Path) -> Path:
    return next((c for c in cands if c.is_dir()), cands[0])


def validators(cfg: dict[str, Any]) -> dict[str, Any]:
    """Dataset name -> function(LoaderConfig) -> list of Records, reading the real layout under ``paths``."""
    from setok.data import loaders as L

    ds = {k: Path(v) for k, v in ((cfg.get("paths") or {}).get("datasets") or {}).items() if v}
    c14 = ds.get("coco2014", Path("/nonexistent"))
    val14 = _first_dir(c14 / "images" / "val2014", c14 / "val2014")
    train14 = _first_dir(c14 / "images" / "train2014", c14 / "train2014")

    def coco(c):
        p = L.coco_paths(ds["coco"], "val2017")
        return [L.load_coco_captions(p["captions"], p["images"], config=c),
                L.load_coco_instances(p["instances"], p["images"], config=c)]

    def vqav2(c):
        r = ds["vqav2"]
        return [L.load_vqa_v2(_find(r, "v2_OpenEnded_mscoco_val2014_questions.json"),
                              _find(r, "v2_mscoco_val2014_annotations.json"), val14, config=c)]

    def okvqa(c):
        r = ds["okvqa"]
        return [L.load_vqa_v2(_find(r, "OpenEnded_mscoco_val2014_questions.json"),
                              _find(r, "mscoco_val2014_annotations.json"), val14, config=c, dataset="okvqa")]

    return {
        "coco": coco,
        "vqav2": vqav2,
        "okvqa": okvqa,
        "gqa": lambda c: [L.load_gqa(_find(ds["gqa"], "testdev_balanced_questions.json"), ds["gqa"] / "images",
                                     config=c)],
        "pope": lambda c: [L.load_pope(_find(ds["pope"], f"coco_pope_{v}.json"), val14, config=c)
                           for v in ("random", "popular", "adversarial")],
        "refcoco": lambda c: [L.load_refcoco(ds["refcoco"] / name, split_by, image_dir=train14, config=c,
                                             dataset=name)
                              for name, split_by in (("refcoco", "unc"), ("refcoco+", "unc"), ("refcocog", "umd"))],
        "llava_pretrain": lambda c: [L.load_llava_pretrain(ds["llava_pretrain"] / "blip_laion_cc_sbu_558k.json",
                                                           ds["llava_pretrain"] / "images", config=c)],
        "llava_instruct": lambda c: [L.load_llava_instruct(ds["llava_instruct"] / "llava_v1_5_mix665k.json",
                                                           ds["llava_instruct"], config=c)],
        "instructpix2pix": lambda c: [L.load_instructpix2pix(ds["instructpix2pix"], config=c)],
        "sa1b": lambda c: [L.load_sa1b(ds["sa1b"], config=c)],
        "cc3m": lambda c: [L.load_image_text(ds["cc3m"], config=c, dataset="cc3m")],
        "laion": lambda c: [L.load_image_text(ds["laion"], config=c, dataset="laion")],
    }


def validate(cfg: dict[str, Any], names: list[str]) -> list[str]:
    """Read each named dataset with its loader in skip mode; one summary line block per file read."""
    from setok.data.loaders import LoaderConfig, loader_config

    table = validators(cfg)
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise ValueError(f"--validate: no loader for {unknown}; choose from {sorted(table)}")
    base = loader_config(cfg)
    config = LoaderConfig("skip", base.check_images, base.bbox_tolerance, base.max_examples)
    out = []
    for name in names:
        try:
            out.extend(recs.report.summary() for recs in table[name](config))
        except (FileNotFoundError, KeyError, ValueError) as err:  # ValueError: a file that cannot be parsed
            out.append(f"{name}: cannot validate: {err}")
    return out


def main(args: argparse.Namespace) -> int:
    profile = check_profile(args.profile)
    cfg = load_profile(profile, args.config, path=args.config_file)
    if profile != "paper":
        rows = check_local(cfg)
        n_keys = len(path_keys(cfg))
        if rows:
            print(format_table(rows))
            print(f"{profile}: {len(rows)} path(s) set that the offline profile does not need")
        else:
            print(f"{profile}: nothing external is needed ({n_keys} *_path/*_root key(s), all null; no paths: section)")
        if args.roundtrip:
            resolution = int(((cfg.get("data") or {}).get("miniworld") or {}).get("resolution", 32))
            print(f"{profile}: mini-world round trip at {resolution} px read back: {roundtrip(4, resolution)}")
        return 1 if (args.strict and rows) else 0
    rows = run_doctor(cfg)
    print(format_table(rows))
    n_ok = sum(r.status == "present" for r in rows)
    print(f"paper: {n_ok}/{len(rows)} present, {len(rows) - n_ok} missing or incomplete")
    if args.validate:
        for line in validate(cfg, [n.strip() for n in args.validate.split(",") if n.strip()]):
            print(line)
    return 1 if (args.strict and n_ok < len(rows)) else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``setok doctor``."""
    p = sub.add_parser("doctor", help="check the checkpoint and dataset paths a profile needs")
    p.add_argument("--profile", default="mini", help="smoke | mini | paper")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="override, e.g. paths.datasets.coco=/data/coco (repeatable)")
    p.add_argument("--config-file", default=None, help="a YAML file to use instead of configs/<profile>.yaml")
    p.add_argument("--strict", action="store_true", help="exit 1 if anything is missing or incomplete")
    p.add_argument("--roundtrip", action="store_true",
                   help="smoke/mini: write a few mini-world scenes and read them back with the loaders")
    p.add_argument("--validate", default="", metavar="NAMES",
                   help="paper: read these datasets with the loaders (skip mode) and print what was skipped, "
                        "e.g. coco,vqav2,pope (validation split; can take minutes on full datasets)")
    p.set_defaults(func=main)
