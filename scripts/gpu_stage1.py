"""GPU check for Stage I at paper shapes (SPEC §3.1, §4): a few bf16 training steps with random weights.

    python scripts/gpu_stage1.py                   # paper shapes on the GPU -> results/gpu/stage1.json (<= 5 min)
    python scripts/gpu_stage1.py --dry-run         # tiny smoke shapes on the CPU (what the test runs)

Builds the paper-profile Stage I model (SigLIP-so400m-shaped encoder, frozen; merger; BERT-base-shaped 4-layer
Q-Former; SD-1.5-shaped U-Net with only cross-attention K/V trained; SD-1.5-shaped VAE, frozen) from configs alone,
runs phase-1 and phase-2 steps at Table 7's 32 images per GPU (halving on out-of-memory), and records the median
step time, images/s, the peak memory and the device name.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from setok.book.results import device_info, git_state, write_json  # noqa: E402
from setok.config import build, load_profile  # noqa: E402
from setok.train.stage1 import (  # noqa: E402
    Stage1Config,
    build_stage1_model,
    diffusion_target,
    parameter_table,
    sample_noise,
)

SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                layers_per_block=2, sample_size=512, scaling_factor=0.18215,
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)


def run_steps(model, codec, cfg, batch: int, image_size: int, steps: int, phase: int, device, dtype) -> list[float]:
    """``steps`` optimiser steps on random images and masks; returns the wall time of each step (s)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=cfg.weight_decay)
    times = []
    for step in range(steps):
        g = torch.Generator().manual_seed(step)
        pixel = (torch.rand(batch, 3, image_size, image_size, generator=g) * 2 - 1).to(device)
        gt = torch.zeros(batch, 3, image_size, image_size, dtype=torch.bool)
        gt[:, 0, : image_size // 2], gt[:, 1, image_size // 2:, : image_size // 2] = True, True
        valid = torch.tensor([[True, True, False]]).expand(batch, 3)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            x0 = diffusion_target(pixel, model.visual, codec)
            noise, ts = sample_noise(0, torch.arange(batch) + step * batch, tuple(x0.shape[1:]),
                                     model.visual.config.num_train_timesteps)
            losses = model(pixel, x0, noise.to(device, x0.dtype), ts.to(device), gt.to(device), valid.to(device),
                           phase=phase)
        losses["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny smoke shapes on the CPU")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per phase (after 1 warm-up step)")
    parser.add_argument("--batch", type=int, default=32, help="images per step (Table 7: 32 per GPU)")
    parser.add_argument("--out", default="results/gpu/stage1.json")
    args = parser.parse_args(argv)

    from diffusers import AutoencoderKL

    from setok.decoders import LatentCodec

    started = time.perf_counter()
    profile = "smoke" if args.dry_run else "paper"
    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    if not args.dry_run and device.type != "cuda":
        raise SystemExit("no CUDA device: run with --dry-run for the CPU path")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    pc = load_profile(profile)
    cfg = build(Stage1Config, pc["stage1"], "stage1")
    torch.manual_seed(0)
    model = build_stage1_model(pc, cfg, load_weights=False).to(device).train()  # random weights, paper shapes
    codec = None
    if model.visual.config.space == "latent":
        codec = LatentCodec(AutoencoderKL(**SD15_VAE)).to(device)
    image_size = model.tokenizer.config.image_size
    batch = 2 if args.dry_run else args.batch
    record = {"profile": profile, "device": device_info(), "git": git_state(), "dtype": str(dtype),
              "image_size": image_size, "parameters": parameter_table(model, depth=2)}
    while True:
        try:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            for phase in (1, 2):
                run_steps(model, codec, cfg, batch, image_size, 1, phase, device, dtype)  # warm-up
                times = run_steps(model, codec, cfg, batch, image_size, args.steps, phase, device, dtype)
                record[f"phase{phase}"] = {"batch": batch, "step_s_median": statistics.median(times),
                                           "step_s": times, "images_per_s": batch / statistics.median(times)}
            break
        except torch.OutOfMemoryError:
            if batch == 1:
                raise
            batch //= 2
            record.setdefault("oom_batches", []).append(batch * 2)
            torch.cuda.empty_cache()
    if device.type == "cuda":
        record["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    record["wall_s"] = time.perf_counter() - started
    write_json(Path(args.out), record)
    print(f"wrote {args.out}: device {record['device']['device']}, batch {batch}, "
          f"phase 1 {record['phase1']['step_s_median']:.3f} s/step, phase 2 {record['phase2']['step_s_median']:.3f} "
          f"s/step" + (f", peak {record['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in record else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
