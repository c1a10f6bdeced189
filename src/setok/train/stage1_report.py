"""What the Stage I chapter shows (SPEC §3.1, §5.4): analyses of a trained Stage I artifact and their figures.

- ``cluster_table``: per validation image, token count, object count, FG-ARI / mBO of the hard (or soft) clusters.
- ``reconstructions``: originals next to DDIM reconstructions from the tokens (the paper's Fig. 8).
- ``paper_parameter_table``: trainable / frozen parameters per module of the paper-scale model (meta device).
- plotting helpers for the loss curves, cluster maps and the token-count scatter.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from setok.config import build, load_profile
from setok.eval.segmentation import segmentation_scores
from setok.tokenizer import SeTok
from setok.train.stage1 import (
    Stage1Config,
    build_dataset,
    build_stage1_model,
    collate_stage1,
    diffusion_target,
    grid_labels,
    parameter_table,
)


def val_batch(profile: str, n: int, seed: int = 0, overrides: list[str] | None = None) -> dict[str, torch.Tensor]:
    """The first ``n`` validation images of the profile's Stage I data, collated."""
    pc = load_profile(profile, overrides)
    cfg = build(Stage1Config, pc.get("stage1"), "stage1")
    size = int(pc["tokenizer"]["image_size"])
    data = build_dataset(cfg.data, "val", size, seed)
    keep = ("pixel_values", "masks", "labels", "index")
    return collate_stage1([{**{k: v for k, v in data[i].items() if k in keep}, "position": -1 - i}
                           for i in range(min(n, len(data)))])


def with_mode(tokenizer: SeTok, mode: str) -> SeTok:
    """A copy of the tokenizer whose clustering runs in ``mode`` ("hard" or "soft"); the weights are shared."""
    other = copy.copy(tokenizer)
    other.config = copy.deepcopy(tokenizer.config)
    other.config.clustering = {**other.config.clustering, "mode": mode}
    return other


@torch.no_grad()
def cluster_table(tokenizer: SeTok, batch: dict[str, torch.Tensor], mode: str = "hard",
                  chunk: int = 32) -> tuple[pd.DataFrame, torch.Tensor]:
    """Per image: num_tokens, num_objects, FG-ARI / mBO / ARI on the token grid (and ``*_pixel`` at full size).

    Returns (table, labels (B, N)) for ``mode`` clustering ("soft" labels are each patch's argmax mask).
    """
    model = with_mode(tokenizer, mode).eval()
    tables, all_labels = [], []
    for start in range(0, len(batch["index"]), chunk):
        pixel = batch["pixel_values"][start:start + chunk] * 2 - 1
        gt = batch["labels"][start:start + chunk]
        out = model(pixel_values=pixel)
        grid = tuple(out.grid_size)
        t = segmentation_scores(out.labels.reshape(-1, *grid), grid_labels(gt, grid).reshape(-1, *grid),
                                reduce=False)
        tp = segmentation_scores(out.labels, gt, grid=grid, reduce=False)
        t["fg_ari_pixel"], t["mbo_pixel"] = tp["fg_ari"], tp["mbo"]
        t["num_tokens"] = out.token_mask.sum(1).numpy()
        t["num_objects"] = batch["mask_valid"][start:start + chunk].sum(1).numpy()
        tables.append(t)
        all_labels.append(out.labels)
    table = pd.concat(tables, ignore_index=True)
    table["image"] = np.arange(len(table))
    table["mode"] = mode
    return table, torch.cat(all_labels)


def summarise(table: pd.DataFrame) -> dict[str, float]:
    """Means of the per-image scores and Spearman(token count, object count)."""
    from scipy.stats import spearmanr

    rho = spearmanr(table["num_tokens"], table["num_objects"]).statistic if table["num_tokens"].nunique() > 1 \
        else float("nan")
    return {"fg_ari": float(table["fg_ari"].mean()), "mbo": float(table["mbo"].mean()),
            "fg_ari_pixel": float(table["fg_ari_pixel"].mean()), "mbo_pixel": float(table["mbo_pixel"].mean()),
            "num_tokens": float(table["num_tokens"].mean()), "spearman_tokens_objects": float(rho)}


@torch.no_grad()
def reconstructions(artifact: Any, batch: dict[str, torch.Tensor], n: int = 6, steps: int = 25,
                    seed: int = 0, codec: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Originals and DDIM reconstructions from the tokens, both (n, H', W', 3) in [0, 1]: at the U-Net's size in
    pixel space (mini), or decoded by the SD-1.5 VAE (``codec``, a :class:`LatentCodec`) in latent space (paper)."""
    tokenizer, visual = artifact.tokenizer.eval(), artifact.visual.eval()
    pixel = batch["pixel_values"][:n] * 2 - 1
    out = tokenizer(pixel_values=pixel)
    if artifact.resampler is not None:
        out = artifact.resampler.eval()(out.features)
    latent = visual.config.space != "pixel"
    if latent and codec is None:
        raise ValueError("a latent-space decoder needs the SD-1.5 VAE to show images: pass codec="
                         "LatentCodec.from_path(stage1.vae_path)")
    target = diffusion_target(pixel, visual, codec)
    rec = visual.reconstruct(out.tokens, out.token_mask, tuple(target.shape[1:]), num_inference_steps=steps,
                             generator=torch.Generator().manual_seed(seed))
    if latent:
        target, rec = pixel, codec.decode(rec)
    to_img = lambda x: ((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()  # noqa: E731
    return to_img(target), to_img(rec)


def latent_codec(profile: str, overrides: list[str] | None = None) -> Any:
    """The SD-1.5 VAE of a latent-space profile (from ``stage1.vae_path``), or None in pixel space."""
    from setok.decoders import LatentCodec

    cfg = build(Stage1Config, load_profile(profile, overrides).get("stage1"), "stage1")
    return LatentCodec.from_path(cfg.vae_path) if cfg.decoder.get("space", "pixel") == "latent" else None


def reconstruction_error(originals: np.ndarray, recs: np.ndarray) -> dict[str, float]:
    """Mean squared pixel error of the reconstructions (n, H, W, 3) in [0, 1] against the originals, beside two
    references that know nothing of the image's layout: a flat image of each original's own mean colour, and the
    reconstruction of another image (the batch rolled by one)."""
    if originals.shape != recs.shape or originals.ndim != 4 or len(originals) < 2:
        raise ValueError(f"originals and recs must be the same (n >= 2, H, W, 3) arrays (got {originals.shape}, "
                         f"{recs.shape})")
    flat = np.broadcast_to(originals.mean(axis=(1, 2), keepdims=True), originals.shape)
    mse = lambda a, b: float(((a - b) ** 2).mean())  # noqa: E731
    return {"mse": mse(recs, originals), "mse_mean_colour": mse(flat, originals),
            "mse_other_image": mse(np.roll(recs, 1, axis=0), originals), "images": len(originals)}


def paper_parameter_table() -> pd.DataFrame:
    """Trainable / frozen parameters (millions) per module of the paper-scale Stage I model, built on meta."""
    pc = load_profile("paper")
    cfg = build(Stage1Config, pc["stage1"], "stage1")
    with torch.device("meta"):
        model = build_stage1_model(pc, cfg, load_weights=False)
    table = pd.DataFrame(parameter_table(model, depth=2))
    table["trainable (M)"] = table.pop("trainable") / 1e6
    table["frozen (M)"] = table.pop("frozen") / 1e6
    return table


def launch_command(nodes: int = 2, gpus_per_node: int = 8) -> str:
    """The multi-node launch of Stage I at paper scale (what scripts/slurm_stage1.sbatch runs on each node)."""
    return (f"accelerate launch --num_machines {nodes} --num_processes {nodes * gpus_per_node} "
            f"--machine_rank $SLURM_PROCID --main_process_ip $MAIN_ADDR --main_process_port 29500 "
            f"--mixed_precision bf16 --use_deepspeed --deepspeed_config_file src/setok/train/configs/zero2.json "
            f"-m setok.train.cli stage1 --profile paper\n# or: sbatch scripts/slurm_stage1.sbatch")


# -- figures -------------------------------------------------------------------------------------------------------
def plot_losses(log: pd.DataFrame, evals: pd.DataFrame | None = None):
    """Training losses per step (phase boundary dashed) and, if given, validation FG-ARI / token count."""
    import matplotlib.pyplot as plt

    ncols = 2 if evals is not None and len(evals) else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 3.4), squeeze=False)
    ax = axes[0, 0]
    for key in ("loss", "diffusion", "bce", "dice", "kl", "affinity"):
        if key in log:
            ax.plot(log["step"], log[key], label=key, lw=1)
    boundary = log.loc[log["phase"] == 2, "step"].min() if (log["phase"] == 2).any() else None
    if boundary is not None and not np.isnan(boundary):
        ax.axvline(boundary - 0.5, color="grey", ls="--", lw=0.8)
    ax.set(xlabel="step", ylabel="loss", yscale="log", title="Stage I training losses")
    ax.legend(fontsize=8)
    if ncols == 2:
        ax = axes[0, 1]
        ax.plot(evals["step"], evals["val_fg_ari"], "o-", label="FG-ARI (grid)")
        ax.plot(evals["step"], evals["val_mbo"], "s-", label="mBO (grid)")
        ax.set(xlabel="step", ylabel="score", ylim=(0, 1), title="validation")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _label_image(labels: np.ndarray, seed: int = 3) -> np.ndarray:
    """Colour a label map (h, w) with a fixed random palette (-1 = black)."""
    palette = np.random.default_rng(seed).uniform(0.15, 1.0, size=(max(int(labels.max()) + 1, 1), 3))
    out = palette[np.clip(labels, 0, None)]
    out[labels < 0] = 0
    return out


def plot_cluster_maps(batch: dict[str, torch.Tensor], label_sets: dict[str, torch.Tensor], grid: tuple[int, int],
                      n: int = 6):
    """Rows: images, ground-truth objects, then each named set of cluster labels (B, N) on the token grid."""
    import matplotlib.pyplot as plt

    rows = 2 + len(label_sets)
    fig, axes = plt.subplots(rows, n, figsize=(1.6 * n, 1.6 * rows), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(batch["pixel_values"][i].permute(1, 2, 0).numpy())
        axes[1, i].imshow(_label_image(batch["labels"][i].numpy()))
        for r, labels in enumerate(label_sets.values(), start=2):
            axes[r, i].imshow(_label_image(labels[i].reshape(grid).numpy()), interpolation="nearest")
    for r, name in enumerate(["image", "objects", *label_sets]):
        axes[r, 0].set_ylabel(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_reconstructions(originals: np.ndarray, recs: np.ndarray):
    """Fig. 8 style: originals (top) and reconstructions from the tokens (bottom)."""
    import matplotlib.pyplot as plt

    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(originals[i])
        axes[1, i].imshow(recs[i])
    axes[0, 0].set_ylabel("original", fontsize=8)
    axes[1, 0].set_ylabel("reconstruction", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_tokens_vs_objects(table: pd.DataFrame, seed: int = 0):
    """Scatter of token count against object count (jittered), one colour per clustering mode."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    for mode, part in table.groupby("mode"):
        ax.scatter(part["num_objects"] + rng.uniform(-0.15, 0.15, len(part)), part["num_tokens"], s=12,
                   alpha=0.6, label=mode)
    ax.set(xlabel="objects in the image", ylabel="tokens", title="token count vs object count")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


SPREAD_METRICS = ("val_fg_ari", "val_mbo", "val_fg_ari_pixel", "val_spearman_tokens_objects", "val_num_tokens",
                  "val_diffusion", "val_diffusion_other_tokens", "kappa", "wall_time_s")


def seed_table(profile: str, seeds: list[int], main_seed: int = 0, root: Path | None = None) -> pd.DataFrame:
    """Final metrics of the Stage I runs at ``seeds``, one row per seed: the main run (``results/<profile>/stage1``)
    for ``main_seed``, the seed-spread runs (``stage1_seed<s>``) for the others.

    Each run's ``run.json`` must record that seed and the same recipe as the first run (every Stage1Config field but
    the seed and the run-only ones), so a stale run of another recipe is never mixed in. A missing run, a seed
    mismatch or a recipe mismatch is an error naming the folder."""
    import json

    from setok.book.results import results_root
    from setok.train.stage1 import RUN_ONLY_KEYS, seed_run_name

    rows, reference = [], None
    for seed in seeds:
        folder = (root or results_root()) / profile / ("stage1" if seed == main_seed else seed_run_name(seed))
        rerun = f"(rerun it: `setok train stage1 --profile {profile} --seeds {seed}`)"
        if not (folder / "metrics.json").is_file() or not (folder / "run.json").is_file():
            raise FileNotFoundError(f"no Stage I results for seed {seed} at {folder} {rerun}")
        run = json.loads((folder / "run.json").read_text())
        if run.get("seed") != seed:
            raise ValueError(f"{folder} holds a run with seed {run.get('seed')}, not {seed} {rerun}")
        recipe = {k: v for k, v in (run.get("config") or {}).items() if k not in RUN_ONLY_KEYS | {"seed"}}
        if reference is None:
            reference = (folder, recipe)
        elif recipe != reference[1]:
            keys = sorted(k for k in recipe.keys() | reference[1].keys() if recipe.get(k) != reference[1].get(k))
            raise ValueError(f"{folder} was trained with another stage1 recipe than {reference[0]} (differs in "
                             f"{keys}) {rerun}")
        metrics = json.loads((folder / "metrics.json").read_text())
        rows.append({"seed": seed, **{k: metrics.get(k, float("nan")) for k in SPREAD_METRICS}})
    return pd.DataFrame(rows)


def spread_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample standard deviation, min and max of each metric over the seeds (rows: metrics)."""
    values = table.drop(columns="seed")
    return pd.DataFrame({"mean": values.mean(), "std": values.std(ddof=1), "min": values.min(),
                         "max": values.max(), "seeds": len(table)})


def find_results(profile: str, root: Path | None = None) -> dict[str, Any] | None:
    """The metrics of a Stage I run at ``profile`` if one exists (``results/<profile>/stage1/metrics.json``)."""
    from setok.book.results import results_root

    path = (root or results_root()) / profile / "stage1" / "metrics.json"
    if not path.is_file():
        return None
    import json

    return json.loads(path.read_text())
