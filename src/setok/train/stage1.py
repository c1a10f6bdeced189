"""Stage I, tokenizer pretraining (paper section 2.2, appendix D, Table 7; SPEC §3.1), in one readable function.

    sub-phase 1 (steps [0, phase1_steps)):  L = L_unet (Eq. 3)                        reconstruction through U
    sub-phase 2 (the next phase2_steps):     L = L_unet + KL(M || sg(pi)) + L_bce + L_dice (Eq. 4)   + mask decoder

Built on accelerate: gradient accumulation, bf16 on GPU, DDP / DeepSpeed ZeRO-2 / FSDP, ``save_state`` checkpoints.
Exact resume: the data order is a seeded stream (epoch permutations from ``seed + epoch``) cut into micro-batches;
process ``r`` of ``W`` takes micro-batches ``r, r+W, ...``, so a restarted run starts at the next micro-batch, and
1 process with batch ``W*b`` sees the same images per step as ``W`` processes with batch ``b``. The diffusion noise
and timestep of each image are drawn from a generator seeded by (seed, stream position), so the loss is a pure
function of the weights and the step, whatever the process layout or restarts.

Shape legend: B images per device, K tokens, N = h*w patches, M ground-truth masks, C/H/W diffused sample.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from setok.book.results import git_state, repo_root, results_root, write_json
from setok.config import build, load_profile, to_dict
from setok.decoders import LatentCodec, MaskDecoder, Resampler, VisualDecoder
from setok.decoders.mask import grid_object_labels, mask_losses, pairwise_affinity_loss
from setok.progress import progress
from setok.tokenizer import SeTok

TOKENIZER_KINDS = ("setok", "resampler")
DISTRIBUTED = ("ddp", "deepspeed", "fsdp")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
ENCODER_LOSSES = ("all", "mask", "affinity")
# Stage1Config fields that say how a run is driven or where it writes, not what it trains (resume ignores them)
RUN_ONLY_KEYS = frozenset({"max_steps_this_run", "log_every", "eval_every", "eval_images", "save_every",
                           "keep_checkpoints", "num_workers", "out_dir", "results_dir", "run_name"})
CONFIG_DIR = Path(__file__).parent / "configs"


# -- config --------------------------------------------------------------------------------------------------------
@dataclass
class Stage1Config:
    """The ``stage1:`` section of a profile. Defaults are the paper's (Table 7, section 2.2); profiles override."""

    tokenizer_kind: str = "setok"  # "setok" or "resampler" (Table 5's Resampler 64 baseline)
    tokenizer: dict = field(default_factory=dict)  # merged over the profile's tokenizer section (e.g. kernel_scale)
    train_encoder: bool = False  # section 2.2: the encoder is frozen; mini trains it (no pretrained weights offline)
    encoder_phases: list = field(default_factory=lambda: [1, 2])  # sub-phases in which a trainable encoder learns
    # which losses reach a trainable encoder: "all"; "mask": the mask decoder's per-pixel path (and the affinity
    # loss, if on); "affinity": only the affinity loss (the mask decoder then sees detached features too)
    encoder_losses: str = "all"
    data: dict = field(default_factory=dict)  # {kind: miniworld, n_train, n_val}
    batch_size: int = 32  # per device (Table 7)
    grad_accum: int = 1
    table7_world_size: int = 16  # appendix D.2: 16 x A800
    check_table7_batch: bool = False  # paper profile: refuse a global batch != Table 7's
    allow_batch_mismatch: bool = False
    phase1_steps: int = 50000  # section 2.2: "50k training steps"
    phase2_steps: int = 10000  # not stated in the paper; recorded choice
    lr: list = field(default_factory=lambda: [1e-3, 4e-3])  # Table 7 "0.001&0.004": one per sub-phase (assumed)
    weight_decay: float = 0.001  # Table 7
    warmup_ratio: float = 0.1  # Table 7 (per sub-phase)
    max_grad_norm: float = 1.0
    mixed_precision: str = "auto"  # auto: bf16 on GPU, fp32 on CPU
    distributed: str = "ddp"  # ddp | deepspeed (ZeRO-2, configs/zero2.json) | fsdp
    deepspeed_config: str = "zero2.json"  # file name under setok/train/configs or a path
    # "affinity" (default 0 = off): the mini-only pairwise affinity loss (a deviation, see pairwise_affinity_loss)
    loss_weights: dict = field(default_factory=lambda: {"diffusion": 1.0, "bce": 1.0, "dice": 1.0, "kl": 1.0})
    affinity_phases: list = field(default_factory=lambda: [2])  # sub-phases with the affinity loss (if weighted)
    kappa_range: list | None = None  # [lo, hi]: clamp the learnable kernel scale after each step (logged)
    add_background: bool = True  # the background is one more ground-truth segment for matching
    decoder: dict = field(default_factory=dict)  # VisualDecoder kwargs
    mask_decoder: dict = field(default_factory=dict)  # MaskDecoder kwargs
    resampler: dict = field(default_factory=dict)  # Resampler kwargs
    qformer_path: str | None = None  # BERT-base folder (appendix D.1)
    unet_path: str | None = None  # SD-1.5 folder (its unet/ subfolder)
    vae_path: str | None = None  # SD-1.5 folder (its vae/ subfolder); needed when decoder.space == "latent"
    log_every: int = 1
    eval_every: int = 100
    eval_images: int = 64
    save_every: int = 100
    keep_checkpoints: int = 2
    max_steps_this_run: int | None = None  # stop early without saving (simulates a kill; resume continues)
    num_workers: int = 0
    out_dir: str | None = None  # default artifacts/<profile>/stage1
    results_dir: str | None = None  # results root (default results/); files go to <root>/<profile>/<run_name>
    run_name: str = "stage1"  # names the results folder and the default artifact folder (seed-spread runs differ)
    seed: int | None = None  # training seed (init, data order, noise); default the profile's seed, which also fixes
    #                          the data, so runs that differ only in stage1.seed see the same train and val images

    def __post_init__(self) -> None:
        if self.tokenizer_kind not in TOKENIZER_KINDS:
            raise ValueError(f"stage1.tokenizer_kind must be one of {TOKENIZER_KINDS} (got {self.tokenizer_kind!r})")
        if self.distributed not in DISTRIBUTED:
            raise ValueError(f"stage1.distributed must be one of {DISTRIBUTED} (got {self.distributed!r})")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"stage1.mixed_precision must be one of {MIXED_PRECISION} "
                             f"(got {self.mixed_precision!r})")
        for name in ("batch_size", "grad_accum", "log_every", "eval_every", "save_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"stage1.{name} must be >= 1 (got {getattr(self, name)})")
        if self.phase1_steps < 0 or self.phase2_steps < 0 or self.phase1_steps + self.phase2_steps < 1:
            raise ValueError(f"stage1 needs phase1_steps, phase2_steps >= 0 with a positive sum "
                             f"(got {self.phase1_steps}, {self.phase2_steps})")
        if len(self.lr) != 2 or min(self.lr) <= 0:
            raise ValueError(f"stage1.lr must be two positive learning rates, one per sub-phase (got {self.lr})")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"stage1.warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if self.encoder_losses not in ENCODER_LOSSES:
            raise ValueError(f"stage1.encoder_losses must be one of {ENCODER_LOSSES} (got {self.encoder_losses!r})")
        if self.kappa_range is not None and (len(self.kappa_range) != 2 or not 0 < self.kappa_range[0]
                                             <= self.kappa_range[1]):
            raise ValueError(f"stage1.kappa_range must be [lo, hi] with 0 < lo <= hi, or null (got {self.kappa_range})")
        if any(p not in (1, 2) for p in self.affinity_phases):
            raise ValueError(f"stage1.affinity_phases must list sub-phases 1 and/or 2 (got {self.affinity_phases})")
        if not self.run_name or self.run_name in (".", "..") or any(c in self.run_name for c in "/\\"):
            raise ValueError(f"stage1.run_name must be a plain folder name (got {self.run_name!r})")
        if self.max_steps_this_run is not None and self.max_steps_this_run < 1:
            raise ValueError(f"stage1.max_steps_this_run must be >= 1 or null (got {self.max_steps_this_run})")

    @property
    def total_steps(self) -> int:
        return self.phase1_steps + self.phase2_steps


def table7_batch_per_gpu(stage: str = "Stage-I") -> int:
    """Table 7's "Batch Size Per GPU" for a stage, read from the reported CSV (results/paper_reported/)."""
    path = repo_root() / "results" / "paper_reported" / "table7_training_recipe.csv"
    if not path.is_file():
        raise FileNotFoundError(f"Table 7 CSV not found at {path}")
    with path.open() as f:
        for row in csv.DictReader(f):
            if row["configuration"] == "Batch Size Per GPU":
                return int(row[stage])
    raise ValueError(f"{path} has no 'Batch Size Per GPU' row")


def check_global_batch(cfg: Stage1Config, world_size: int) -> int:
    """Global batch = per-device x accumulation x processes; with ``check_table7_batch`` it must equal Table 7's
    32 per GPU x 16 GPUs unless ``allow_batch_mismatch`` (SPEC §3.3)."""
    global_batch = cfg.batch_size * cfg.grad_accum * world_size
    if cfg.check_table7_batch:
        expected = table7_batch_per_gpu() * cfg.table7_world_size
        if global_batch != expected and not cfg.allow_batch_mismatch:
            raise ValueError(
                f"global batch {global_batch} (= batch_size {cfg.batch_size} x grad_accum {cfg.grad_accum} x "
                f"{world_size} processes) != Table 7's {expected} (32 per GPU x {cfg.table7_world_size} GPUs); "
                f"adjust stage1.grad_accum or set stage1.allow_batch_mismatch=true")
    return global_batch


# -- data: a seeded stream cut into micro-batches -------------------------------------------------------------------
class StreamDataset(Dataset):
    """Item ``p`` of an endless stream: epoch ``p // n`` visits ``base`` in the permutation seeded by seed + epoch.

    Rendered items are cached in memory (the mini world renders on the fly).
    """

    def __init__(self, base: Dataset, seed: int, shuffle: bool = True, cache: bool = True):
        self.base, self.seed, self.shuffle, self.n = base, seed, shuffle, len(base)
        self._perms: dict[int, torch.Tensor] = {}
        self._cache: dict[int, dict] | None = {} if cache else None

    def index(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if not self.shuffle:
            return offset
        if epoch not in self._perms:
            self._perms[epoch] = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
        return int(self._perms[epoch][offset])

    def __len__(self) -> int:  # only for samplers that ask; the stream is endless
        return self.n

    def __getitem__(self, position: int) -> dict:
        i = self.index(position)
        if self._cache is not None and i in self._cache:
            item = self._cache[i]
        else:
            item = self.base[i]
            item = {k: v for k, v in item.items() if k in ("pixel_values", "masks", "labels", "index")}
            if self._cache is not None:
                self._cache[i] = item
        return {**item, "position": position}


class MicroBatchSampler(Sampler):
    """Global micro-batch ``g`` holds stream positions ``[g*b, (g+1)*b)``; process ``rank`` of ``world`` takes
    ``g = start + rank, start + rank + world, ...`` for ``count`` micro-batches."""

    def __init__(self, batch_size: int, start: int, count: int, rank: int = 0, world: int = 1):
        self.batch_size, self.start, self.count, self.rank, self.world = batch_size, start, count, rank, world

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        for i in range(self.count):
            g = self.start + self.rank + i * self.world
            yield list(range(g * self.batch_size, (g + 1) * self.batch_size))


def collate_stage1(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack images (B, 3, H, W) in [0, 1], labels (B, H, W), positions (B,); pad masks to (B, M, H, W)."""
    from setok.data.miniworld import collate

    out = collate([{**it, "caption": "", "scene": None} for it in items])
    out.pop("caption"), out.pop("scene")
    out["position"] = torch.tensor([it["position"] for it in items], dtype=torch.long)
    return out


def build_dataset(data: dict[str, Any], split: str, resolution: int, seed: int) -> Dataset:
    """The Stage I dataset named by ``stage1.data.kind`` (mini world at smoke/mini)."""
    kind = data.get("kind", "miniworld")
    if kind == "miniworld":
        from setok.data.miniworld import MiniWorldDataset

        n = int(data.get("n_train" if split == "train" else "n_val", 1000 if split == "train" else 64))
        return MiniWorldDataset(split, n=n, resolution=resolution, seed=seed)
    raise ValueError(f"stage1.data.kind={kind!r} is not available yet (choose miniworld); paper-scale image-text "
                     f"and COCO/SA-1B loaders plug in here from stage1.data")


def sample_noise(seed: int, positions: torch.Tensor, shape: tuple[int, ...], num_timesteps: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image noise (B, *shape) and timesteps (B,), each drawn from a generator seeded by (seed, position)."""
    noise, steps = [], []
    for p in positions.tolist():
        g = torch.Generator().manual_seed(seed * 1_000_003 + int(p))
        steps.append(torch.randint(0, num_timesteps, (1,), generator=g))
        noise.append(torch.randn(shape, generator=g))
    return torch.stack(noise), torch.cat(steps)


def diffusion_target(pixel_values: torch.Tensor, visual: VisualDecoder, codec: LatentCodec | None) -> torch.Tensor:
    """The clean sample z_0 of Eq. 3: VAE latents (paper) or the image itself, area-resized to the U-Net's
    ``sample_size`` when that is smaller (mini: 32x32 pixels keep a CPU step short)."""
    if codec is not None:
        return codec.encode(pixel_values)  # (B, 4, H/8, W/8)
    size = visual.unet.config.sample_size
    if pixel_values.shape[-1] != size:
        return torch.nn.functional.interpolate(pixel_values, size=(size, size), mode="area")  # (B, 3, s, s)
    return pixel_values


def grid_labels(labels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Ground-truth label maps (B, H, W) -> the majority label of each patch cell (B, h*w), ties to the lower id."""
    num = int(labels.max()) + 1
    one_hot = torch.nn.functional.one_hot(labels.long(), num).permute(0, 3, 1, 2).float()  # (B, L, H, W)
    return torch.nn.functional.adaptive_avg_pool2d(one_hot, grid).argmax(1).flatten(1)  # (B, h*w)


# -- the model that Stage I trains ----------------------------------------------------------------------------------
class Stage1Model(nn.Module):
    """Tokenizer (SeTok, or its encoder + a Resampler) + visual decoder + mask decoder; forward returns the losses."""

    def __init__(self, tokenizer: SeTok, visual: VisualDecoder, mask_decoder: MaskDecoder,
                 resampler: Resampler | None = None):
        super().__init__()
        self.tokenizer, self.visual, self.mask_decoder, self.resampler = tokenizer, visual, mask_decoder, resampler

    def tokenize(self, pixel_values: torch.Tensor, encoder_grad: bool = True, detach_tokens: bool = False) -> Any:
        """Images (B, 3, H, W) in [-1, 1] -> an output with tokens, token_mask, masks, labels, features, grid.

        ``encoder_grad=False`` runs the encoder without a graph (it does not learn in this sub-phase);
        ``detach_tokens`` clusters and merges detached features, so only ``out.features`` carries encoder grads."""
        with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
            features = self.tokenizer.encode(pixel_values)  # (B, N, d)
        source = features.detach() if detach_tokens else features
        if self.resampler is None:
            out = self.tokenizer(features=source)
            out.features = features
            return out
        out = self.resampler(source)
        out.features, out.grid_size = features, self.tokenizer.grid_size
        return out

    def forward(self, pixel_values: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                gt_masks: torch.Tensor | None = None, mask_valid: torch.Tensor | None = None, phase: int = 1,
                weights: dict[str, float] | None = None, add_background: bool = True,
                encoder_grad: bool = True, encoder_losses: str = "all",
                affinity_phases: tuple[int, ...] = (2,)) -> dict[str, torch.Tensor]:
        """Per-batch mean losses: ``loss`` (weighted sum), ``diffusion``, in phase 2 also ``bce``, ``dice``, ``kl``;
        ``affinity`` (a mini-only deviation, off unless ``weights["affinity"] > 0``) in ``affinity_phases``."""
        weights = weights or {}
        out = self.tokenize(pixel_values, encoder_grad, detach_tokens=encoder_losses != "all")
        diffusion = self.visual.diffusion_loss(x0, out.tokens, out.token_mask, noise, timesteps)  # (B,)
        losses = {"diffusion": diffusion.mean(), "num_tokens": out.token_mask.sum(1).float().mean()}
        total = weights.get("diffusion", 1.0) * losses["diffusion"]
        if phase == 2:
            pixel_features = out.features.detach() if encoder_losses == "affinity" else out.features
            logits = self.mask_decoder(out.tokens, pixel_features, out.grid_size)  # (B, K, Hm, Wm)
            ml = mask_losses(logits, out.token_mask, gt_masks, mask_valid, out.masks, out.grid_size,
                             add_background=add_background)
            for name in ("bce", "dice", "kl"):
                losses[name] = getattr(ml, name).mean()
                total = total + weights.get(name, 1.0) * losses[name]
        if weights.get("affinity", 0.0) > 0 and phase in affinity_phases and self.resampler is None:
            # the clustering space of the (undetached) features, so the encoder learns from this loss too
            z = self.tokenizer.clustering_space(out.features)  # (B, N, d)
            labels = grid_object_labels(gt_masks, mask_valid, out.grid_size)  # (B, N)
            losses["affinity"] = pairwise_affinity_loss(z, self.tokenizer.kappa, labels).mean()
            total = total + weights["affinity"] * losses["affinity"]
        losses["loss"] = total
        return losses


def build_stage1_model(profile_cfg: dict[str, Any], cfg: Stage1Config, load_weights: bool = True) -> Stage1Model:
    """Build the Stage I model of a resolved profile; ``load_weights=False`` skips every checkpoint (meta builds)."""
    section = {**(profile_cfg.get("tokenizer") or {})}
    for key, value in cfg.tokenizer.items():  # nested merge of stage1.tokenizer over the tokenizer section
        section[key] = {**(section.get(key) or {}), **value} if isinstance(value, dict) else value
    section["freeze_encoder"] = not cfg.train_encoder
    tokenizer = SeTok.from_section(section, load_encoder=load_weights)
    dim = tokenizer.config.hidden_size
    try:
        visual = VisualDecoder(**{"token_dim": dim, **cfg.decoder})
        mask_decoder = MaskDecoder(**{"token_dim": dim, "feature_dim": dim, **cfg.mask_decoder})
        resampler = Resampler(**{"hidden_size": dim, **cfg.resampler}) if cfg.tokenizer_kind == "resampler" else None
    except TypeError as err:
        raise ValueError(f"bad key in stage1.decoder / mask_decoder / resampler: {err}") from err
    if load_weights:
        visual.load_pretrained_parts(cfg.qformer_path, cfg.unet_path)
    if resampler is not None:  # the Resampler replaces clustering + merger: freeze those
        tokenizer.merger.requires_grad_(False)
        tokenizer.cluster_proj.requires_grad_(False)
        tokenizer.log_kappa.requires_grad_(False)
    return Stage1Model(tokenizer, visual, mask_decoder, resampler)


def parameter_table(model: nn.Module, depth: int = 2) -> list[dict[str, Any]]:
    """Trainable and frozen parameter counts per module (names cut at ``depth``); works on the meta device."""
    rows: dict[str, dict[str, Any]] = {}
    for name, param in model.named_parameters():
        key = ".".join(name.split(".")[:depth])
        row = rows.setdefault(key, {"module": key, "trainable": 0, "frozen": 0})
        row["trainable" if param.requires_grad else "frozen"] += param.numel()
    return list(rows.values())


# -- learning-rate schedule ----------------------------------------------------------------------------------------
def lr_factor(step: int, cfg: Stage1Config) -> float:
    """Table 7: linear warmup (ratio 0.1) then cosine decay, restarted per sub-phase; the sub-phase's lr relative to
    lr[0] (the optimiser's base lr)."""
    phase, start, length = (0, 0, cfg.phase1_steps) if step < cfg.phase1_steps else \
        (1, cfg.phase1_steps, cfg.phase2_steps)
    t = step - start
    warmup = max(1, int(cfg.warmup_ratio * length)) if cfg.warmup_ratio > 0 else 0
    if t < warmup:
        f = (t + 1) / warmup
    else:
        f = 0.5 * (1 + math.cos(math.pi * (t - warmup) / max(1, length - warmup)))
    return f * cfg.lr[phase] / cfg.lr[0]


# -- checkpoints and artifact --------------------------------------------------------------------------------------
def resumable_config(cfg: Stage1Config) -> dict[str, Any]:
    """The config fields a resumed run must share with the run that wrote the checkpoint."""
    return json.loads(json.dumps({k: v for k, v in to_dict(cfg).items() if k not in RUN_ONLY_KEYS}))


def latest_checkpoint(out_dir: Path) -> tuple[Path | None, int]:
    """The newest complete ``checkpoints/step_XXXXXXX`` (it has trainer_state.json) and its step, else (None, 0)."""
    best: tuple[Path | None, int] = (None, 0)
    for folder in sorted((out_dir / "checkpoints").glob("step_*")):
        state = folder / "trainer_state.json"
        if state.is_file():
            step = json.loads(state.read_text())["step"]
            if step >= best[1]:
                best = (folder, step)
    return best


def truncate_log(path: Path, step: int) -> list[dict]:
    """Keep the JSONL records with ``step <= step`` (those a resumed run would not rewrite); returns them."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["step"] <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def manifest_for(profile: str, cfg: Stage1Config, model: Stage1Model, metrics: dict[str, Any]) -> dict[str, Any]:
    """What Stage II checks before it loads the artifact."""
    return {
        "stage": "stage1", "profile": profile, "tokenizer_kind": cfg.tokenizer_kind,
        "hidden_size": model.tokenizer.config.hidden_size, "image_size": model.tokenizer.config.image_size,
        "grid_size": list(model.tokenizer.grid_size), "decoder_space": model.visual.config.space,
        "steps": cfg.total_steps, "config": to_dict(cfg), "git": git_state(), "metrics": metrics,
    }


def save_stage1_artifact(path: Path, profile: str, cfg: Stage1Config, model: Stage1Model,
                         metrics: dict[str, Any]) -> Path:
    """Write ``tokenizer/``, ``visual_decoder/``, ``mask_decoder/`` (and ``resampler/``) with save_pretrained, then
    ``manifest.json`` last (its presence marks a complete artifact)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").unlink(missing_ok=True)
    model.tokenizer.save_pretrained(path / "tokenizer")
    model.visual.save_pretrained(path / "visual_decoder")
    model.mask_decoder.save_pretrained(path / "mask_decoder")
    if model.resampler is not None:
        model.resampler.save_pretrained(path / "resampler")
    write_json(path / "manifest.json", manifest_for(profile, cfg, model, metrics))
    return path


@dataclass
class Stage1Artifact:
    """A loaded Stage I artifact: the trained parts and the manifest."""

    tokenizer: SeTok
    visual: VisualDecoder
    mask_decoder: MaskDecoder
    resampler: Resampler | None
    manifest: dict[str, Any]


def load_stage1_artifact(path: str | Path, expect: dict[str, Any] | None = None) -> Stage1Artifact:
    """Load ``artifacts/<profile>/stage1``; refuse (ValueError) when a manifest field differs from ``expect``."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no Stage I artifact at {path} (manifest.json missing; run "
                                f"`setok train stage1 --profile P` first)")
    manifest = json.loads(manifest_path.read_text())
    mismatched = {k: (manifest.get(k), v) for k, v in (expect or {}).items()
                  if (list(v) if isinstance(v, tuple) else v) != manifest.get(k)}
    if mismatched:
        detail = ", ".join(f"{k}: artifact has {a!r}, expected {e!r}" for k, (a, e) in mismatched.items())
        raise ValueError(f"Stage I artifact at {path} does not match: {detail}")
    resampler = Resampler.from_pretrained(path / "resampler") if (path / "resampler").is_dir() else None
    return Stage1Artifact(tokenizer=SeTok.from_pretrained(path / "tokenizer"),
                          visual=VisualDecoder.from_pretrained(path / "visual_decoder"),
                          mask_decoder=MaskDecoder.from_pretrained(path / "mask_decoder"),
                          resampler=resampler, manifest=manifest)


# -- evaluation ----------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: Stage1Model, dataset: Dataset, cfg: Stage1Config, seed: int, device: torch.device,
             codec: LatentCodec | None = None, batch_size: int = 16) -> tuple[dict[str, float], Any]:
    """Validation: diffusion loss at fixed noise (also with each image conditioned on another image's tokens, which
    tells whether the decoder uses the tokens at all), token counts, FG-ARI / mBO / ARI of the hard clusters against
    the ground-truth objects, Spearman(token count, object count). Returns (metrics, per-image table).

    FG-ARI/mBO are scored on the token grid against the majority ground-truth label of each patch cell (what a
    clustering of h x w patches can express); ``*_pixel`` scores upsample the clusters to the full image instead,
    which caps them below 1 for objects smaller than a few patches."""
    import pandas as pd
    from scipy.stats import spearmanr

    from setok.eval.segmentation import segmentation_scores

    was_training = model.training
    model.eval()
    n = min(cfg.eval_images, len(dataset))
    rows, losses, other_losses = [], [], []
    for start in range(0, n, batch_size):
        items = [{**dataset[i], "position": -1 - i} for i in range(start, min(n, start + batch_size))]
        batch = collate_stage1([{k: v for k, v in it.items() if k != "caption"} for it in items])
        pixel = batch["pixel_values"].to(device) * 2 - 1  # (B, 3, H, W) in [-1, 1]
        x0 = diffusion_target(pixel, model.visual, codec)
        noise, steps = sample_noise(seed + 7919, batch["position"], tuple(x0.shape[1:]),
                                    model.visual.config.num_train_timesteps)
        out = model.tokenize(pixel)
        noise, steps = noise.to(device, x0.dtype), steps.to(device)
        losses.append(model.visual.diffusion_loss(x0, out.tokens, out.token_mask, noise, steps).float().cpu())
        if len(pixel) > 1:  # the same noise, conditioned on the next image's tokens: do the tokens matter?
            other_losses.append(model.visual.diffusion_loss(x0, out.tokens.roll(1, 0), out.token_mask.roll(1, 0),
                                                            noise, steps).float().cpu())
        grid = tuple(out.grid_size)
        table = segmentation_scores(out.labels.cpu().reshape(-1, *grid),  # on the token grid: GT majority per cell
                                    grid_labels(batch["labels"], grid).reshape(-1, *grid), reduce=False)
        pixel_table = segmentation_scores(out.labels.cpu(), batch["labels"], grid=grid, reduce=False)
        table["fg_ari_pixel"], table["mbo_pixel"] = pixel_table["fg_ari"], pixel_table["mbo"]
        table["num_tokens"] = out.token_mask.sum(1).cpu().numpy()
        table["num_objects"] = batch["mask_valid"].sum(1).numpy()
        table["index"] = batch["index"].numpy()
        rows.append(table)
    table = pd.concat(rows, ignore_index=True)
    rho = spearmanr(table["num_tokens"], table["num_objects"]).statistic if table["num_tokens"].nunique() > 1 \
        else float("nan")
    metrics = {"val_diffusion": float(torch.cat(losses).mean()),
               "val_diffusion_other_tokens": float(torch.cat(other_losses).mean()) if other_losses else float("nan"),
               "val_fg_ari": float(table["fg_ari"].mean()),
               "val_mbo": float(table["mbo"].mean()), "val_ari": float(table["ari"].mean()),
               "val_fg_ari_pixel": float(table["fg_ari_pixel"].mean()),
               "val_mbo_pixel": float(table["mbo_pixel"].mean()),
               "val_num_tokens": float(table["num_tokens"].mean()), "val_spearman_tokens_objects": float(rho)}
    model.train(was_training)
    return metrics, table


# -- the training function -----------------------------------------------------------------------------------------
def make_accelerator(cfg: Stage1Config):
    """An ``Accelerator`` for the config: mixed precision (bf16 on GPU), accumulation, DeepSpeed/FSDP plugins."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() else "no"
    kwargs: dict[str, Any] = {}
    if cfg.distributed == "deepspeed":
        from accelerate.utils import DeepSpeedPlugin

        path = Path(cfg.deepspeed_config)
        path = path if path.is_file() else CONFIG_DIR / cfg.deepspeed_config
        if not path.is_file():
            raise FileNotFoundError(f"DeepSpeed config not found: {cfg.deepspeed_config} (stage1.deepspeed_config)")
        kwargs["deepspeed_plugin"] = DeepSpeedPlugin(hf_ds_config=str(path), gradient_accumulation_steps=cfg.grad_accum,
                                                     gradient_clipping=cfg.max_grad_norm)
    elif cfg.distributed == "fsdp":
        from accelerate.utils import FullyShardedDataParallelPlugin

        kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin(use_orig_params=True)  # frozen + trained params mix
    # find_unused_parameters: the mask decoder is idle in sub-phase 1
    kwargs["kwargs_handlers"] = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    # cpu=True without CUDA: under torchrun (accelerate launch --multi_gpu) this gives gloo DDP on CPU processes
    return Accelerator(mixed_precision=precision, gradient_accumulation_steps=cfg.grad_accum,
                       cpu=not torch.cuda.is_available(), **kwargs)


def train_stage1(profile_cfg: dict[str, Any], out_dir: str | Path | None = None, fresh: bool = False) -> dict[str, Any]:
    """Stage I (SPEC §3.1) for a resolved profile (``load_profile``); resumes from the newest checkpoint in
    ``out_dir`` (``fresh=True`` deletes that folder first). Returns the final metrics (also in
    ``results/<profile>/stage1/`` and the artifact's manifest)."""
    t0 = time.perf_counter()
    profile = profile_cfg["profile"]
    cfg = build(Stage1Config, profile_cfg.get("stage1"), "stage1")
    data_seed = int(profile_cfg.get("seed", 0))  # the images (train and val) come from the profile's seed
    seed = int(cfg.seed if cfg.seed is not None else data_seed)  # the training randomness from stage1.seed
    cfg.seed = seed  # resolved, so the checkpoints, manifest and run.json record it
    out = Path(out_dir or cfg.out_dir or repo_root() / "artifacts" / profile / cfg.run_name)
    res_root = Path(cfg.results_dir) if cfg.results_dir else results_root()
    accelerator = make_accelerator(cfg)
    world, rank = accelerator.num_processes, accelerator.process_index
    if fresh and accelerator.is_main_process and out.exists():
        shutil.rmtree(out)
    accelerator.wait_for_everyone()
    global_batch = check_global_batch(cfg, world)
    torch.manual_seed(seed)  # same initial weights on every process
    model = build_stage1_model(profile_cfg, cfg)
    codec = LatentCodec.from_path(cfg.vae_path).to(accelerator.device) if model.visual.config.space == "latent" \
        else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr[0], weight_decay=cfg.weight_decay)  # Table 7
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)  # stepped by hand once per optimiser step
    core: Stage1Model = accelerator.unwrap_model(model)
    image_size = core.tokenizer.config.image_size

    # resume: weights, optimiser, scheduler and RNG from the newest checkpoint; the data stream restarts after it
    checkpoint, start_step = latest_checkpoint(out)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
    log_path = out / "log.jsonl"
    if checkpoint is not None:
        saved = json.loads((checkpoint / "trainer_state.json").read_text()).get("config")
        if saved != resumable_config(cfg):
            raise ValueError(f"the checkpoint in {out} was written with a different stage1 config; resume with the "
                             f"same config, or pass another --out (or delete {out / 'checkpoints'})")
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        truncate_log(log_path, start_step)
        truncate_log(out / "eval.jsonl", start_step)
    accelerator.print(
        f"Stage I ({profile}): global batch {global_batch} = {cfg.batch_size} per device x {cfg.grad_accum} "
        f"accumulation x {world} processes; {global_batch} images per step; steps {cfg.phase1_steps} + "
        f"{cfg.phase2_steps}; mixed precision {accelerator.mixed_precision}; "
        + (f"resuming at step {start_step} from {checkpoint}" if checkpoint else "fresh start"))

    train_set = StreamDataset(build_dataset(cfg.data, "train", image_size, data_seed), seed=seed)
    val_set = build_dataset(cfg.data, "val", image_size, data_seed)
    micro_per_step = cfg.grad_accum * world
    sampler = MicroBatchSampler(cfg.batch_size, start=start_step * micro_per_step,
                                count=(cfg.total_steps - start_step) * cfg.grad_accum, rank=rank, world=world)
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate_stage1, num_workers=cfg.num_workers)
    batches = iter(loader)

    stop = cfg.total_steps if cfg.max_steps_this_run is None else min(cfg.total_steps,
                                                                      start_step + cfg.max_steps_this_run)
    bar = progress(range(start_step, stop), desc="stage1", disable=not accelerator.is_local_main_process,
               initial=0, total=stop - start_step)
    model.train()
    metrics: dict[str, Any] = {}
    for step in bar:
        phase = 1 if step < cfg.phase1_steps else 2
        sums: dict[str, float] = {}
        for _ in range(cfg.grad_accum):
            batch = next(batches)
            pixel = batch["pixel_values"].to(accelerator.device) * 2 - 1  # (B, 3, H, W) in [-1, 1]
            x0 = diffusion_target(pixel, core.visual, codec)  # (B, C, H', W')
            noise, timesteps = sample_noise(seed, batch["position"], tuple(x0.shape[1:]),
                                            core.visual.config.num_train_timesteps)
            with accelerator.accumulate(model), accelerator.autocast():
                losses = model(pixel, x0, noise.to(x0.device, x0.dtype), timesteps.to(x0.device),
                               batch["masks"].to(accelerator.device), batch["mask_valid"].to(accelerator.device),
                               phase=phase, weights=cfg.loss_weights, add_background=cfg.add_background,
                               encoder_grad=phase in cfg.encoder_phases, encoder_losses=cfg.encoder_losses,
                               affinity_phases=tuple(cfg.affinity_phases))
                accelerator.backward(losses["loss"])
                if accelerator.sync_gradients and cfg.distributed != "deepspeed":
                    accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if cfg.kappa_range is not None:
                    with torch.no_grad():
                        core.tokenizer.log_kappa.clamp_(math.log(cfg.kappa_range[0]), math.log(cfg.kappa_range[1]))
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(accelerator.reduce(v.detach().float(), "mean")) / cfg.grad_accum
        scheduler.step()
        done = step + 1
        record = {"step": done, "phase": phase, **{k: round(v, 7) for k, v in sums.items()},
                  "lr": scheduler.get_last_lr()[0], "kappa": float(core.tokenizer.kappa.detach())}
        if accelerator.is_main_process and (done % cfg.log_every == 0 or done == cfg.total_steps):
            with log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
            bar.set_postfix(loss=f"{record['loss']:.4f}", phase=phase, refresh=False)  # redraws follow mininterval
        if done == cfg.phase1_steps and cfg.phase2_steps and accelerator.is_main_process:
            core.tokenizer.save_pretrained(out / "tokenizer_phase1")  # before the mask-consistency phase
        if done % cfg.eval_every == 0 or done in (cfg.phase1_steps, cfg.total_steps):
            if accelerator.is_main_process:
                metrics, _ = evaluate(core, val_set, cfg, data_seed, accelerator.device, codec)
                with (out / "eval.jsonl").open("a") as f:
                    f.write(json.dumps({"step": done, **metrics}) + "\n")
            accelerator.wait_for_everyone()
        if done % cfg.save_every == 0 or done == cfg.total_steps:
            folder = out / "checkpoints" / f"step_{done:07d}"
            accelerator.save_state(str(folder))
            if accelerator.is_main_process:
                write_json(folder / "trainer_state.json", {"step": done, "global_batch": global_batch,
                                                          "config": resumable_config(cfg)})
                for old in sorted((out / "checkpoints").glob("step_*"))[:-cfg.keep_checkpoints]:
                    shutil.rmtree(old, ignore_errors=True)
            accelerator.wait_for_everyone()
    bar.close()
    if stop < cfg.total_steps:  # max_steps_this_run reached: leave like a killed run (checkpoints only)
        return {"status": "interrupted", "step": stop}

    # artifact and results (main process)
    final = {}
    if accelerator.is_main_process:
        rows = [json.loads(line) for line in log_path.read_text().splitlines()]
        evals = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
        final = {"steps": cfg.total_steps, "global_batch": global_batch, "world_size": world,
                 "train_loss_last": rows[-1]["loss"], "kappa": float(core.tokenizer.kappa.detach()), **evals[-1]}
        final.pop("step", None)
        final["wall_time_s"] = round(time.perf_counter() - t0, 2)  # this invocation (a resumed run: its part)
        save_stage1_artifact(out, profile, cfg, core, final)
        _write_results(res_root, profile, seed, cfg, rows, evals, final)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final


def _write_results(res_root: Path, profile: str, seed: int, cfg: Stage1Config, rows: list[dict],
                   evals: list[dict], final: dict) -> None:
    """``results/<profile>/stage1/``: log.csv (train curve), eval.csv, metrics.json, run.json."""
    import pandas as pd

    from setok.book.results import Run

    run = Run.start(profile, cfg.run_name, seed=seed, config=cfg, root=res_root)
    run.save_table(pd.DataFrame(rows), "log.csv")
    run.save_table(pd.DataFrame(evals), "eval.csv")
    run.save_metrics(final)
    run.finish()


def train_stage1_profile(profile: str, overrides: list[str] | None = None,
                         out_dir: str | Path | None = None, fresh: bool = False) -> dict[str, Any]:
    """``train_stage1`` for ``configs/<profile>.yaml`` with ``section.key=value`` overrides."""
    return train_stage1(load_profile(profile, overrides), out_dir, fresh=fresh)


def seed_run_name(seed: int) -> str:
    """The run name (results and artifact folder) of a seed-spread run."""
    return f"stage1_seed{seed}"


def train_stage1_seeds(profile: str, seeds: list[int], overrides: list[str] | None = None, fresh: bool = True,
                       artifacts_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The seed spread (SPEC §5.4): Stage I again with ``stage1.seed = s`` for each seed, same data and recipe.

    Each run writes ``<artifacts_dir>/stage1_seed<s>/`` (default ``artifacts/<profile>/``) and
    ``results/<profile>/stage1_seed<s>/``; returns the final metrics of each run, with its seed.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list without repeats (got {seeds})")
    rows = []
    for seed in seeds:
        run = [f"stage1.seed={seed}", f"stage1.run_name={seed_run_name(seed)}"]
        out = Path(artifacts_dir or repo_root() / "artifacts" / profile) / seed_run_name(seed)
        rows.append({"seed": seed, **train_stage1(load_profile(profile, [*(overrides or []), *run]), out, fresh)})
    return rows


__all__ = ["Stage1Artifact", "Stage1Config", "Stage1Model", "build_stage1_model", "check_global_batch",
           "evaluate", "load_stage1_artifact", "parameter_table", "save_stage1_artifact", "seed_run_name",
           "train_stage1", "train_stage1_profile", "train_stage1_seeds"]
