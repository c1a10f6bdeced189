"""``setok bench tokenizer``: the batched tokenizer against a per-image loop and against a dense pass.

Three computations on the same clustered features, timed (median over repeats) with their peak memory:

- ``batched``: ``setok``'s own path, density-peak scores + stick breaking + the hard cluster merger, one call for
  the whole batch (block attention mask, FFN only on real tokens);
- ``loop``: the same computation one image at a time and, inside the merger, one cluster at a time (the obvious
  implementation, kept here as the reference: its tokens must equal the batched ones);
- ``dense``: the merger's two transformer blocks over all N patches with no mask at all, the work that cannot be
  avoided. The batched path can at best match it.

Shape sets: ``mini`` (B=64, 16x16 grid, d=192, FFN 768), ``paper`` (B=32, 27x27 grid, d=1152, FFN 4096) and a tiny
``smoke`` set for tests. Results go to ``results/<profile>/bench/tokenizer.csv`` and ``tokenizer.json``.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from setok import PROFILES
from setok.clustering import density_peak_stick_breaking, hard_assignment, one_hot_masks
from setok.merger import ClusterMerger, merge_reference_loop


@dataclass(frozen=True)
class ShapeSet:
    name: str
    batch: int
    grid: int
    dim: int
    ffn_dim: int
    min_regions: int = 3
    max_regions: int = 12
    repeats: int = 5


SHAPES = {
    "smoke": ShapeSet("smoke", batch=4, grid=8, dim=32, ffn_dim=64, max_regions=6, repeats=2),
    "mini": ShapeSet("mini", batch=64, grid=16, dim=192, ffn_dim=768, repeats=5),
    "paper": ShapeSet("paper", batch=32, grid=27, dim=1152, ffn_dim=4096, min_regions=6, max_regions=40, repeats=3),
}
PROFILE_SHAPES = {"smoke": ["smoke"], "mini": ["mini", "paper"], "paper": ["mini", "paper"]}
KNN_K, KAPPA, MAX_CLUSTERS = 5, 4.0, 64


def clustered_features(shape: ShapeSet, seed: int = 0, device: str = "cpu") -> Tensor:
    """Patch features (B, N, d) made of Voronoi regions on the grid, each a random direction plus a little noise.

    The number of regions per image is drawn from ``[min_regions, max_regions]``, so the token count varies the way
    it does on real images.
    """
    g = torch.Generator().manual_seed(seed)
    B, h, d = shape.batch, shape.grid, shape.dim
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(h), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()], -1).float()  # (N, 2)
    feats = []
    for _ in range(B):  # data generation only; the benchmarked code has no loop over images
        r = int(torch.randint(shape.min_regions, shape.max_regions + 1, (1,), generator=g))
        centres = torch.rand(r, 2, generator=g) * h
        region = torch.cdist(coords, centres).argmin(-1)  # (N,)
        directions = F.normalize(torch.randn(r, d, generator=g), dim=-1)
        feats.append(directions[region] + 0.05 * torch.randn(h * h, d, generator=g) / d**0.5)
    return torch.stack(feats).to(device)  # (B, N, d)


def tokenize_batched(x: Tensor, merger: ClusterMerger, grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Scores + stick breaking + hard merger for the whole batch at once (the ``setok`` path)."""
    z = F.normalize(x, dim=-1)
    sb, _ = density_peak_stick_breaking(z, KNN_K, KAPPA, MAX_CLUSTERS)
    labels = hard_assignment(sb.masks)
    tokens, token_mask = merger(x, one_hot_masks(labels, sb.masks.shape[1]).to(x.dtype), grid)
    return tokens, token_mask


def tokenize_loop(x: Tensor, merger: ClusterMerger, grid: tuple[int, int]) -> list[Tensor]:
    """The reference: one image at a time, and one cluster at a time inside the merger."""
    out = []
    for b in range(x.shape[0]):
        xb = x[b : b + 1]
        z = F.normalize(xb, dim=-1)
        sb, _ = density_peak_stick_breaking(z, KNN_K, KAPPA, MAX_CLUSTERS)
        out.extend(merge_reference_loop(merger, xb, hard_assignment(sb.masks), grid))
    return out


def dense_pass(x: Tensor, merger: ClusterMerger, grid: tuple[int, int]) -> Tensor:
    """The merger's blocks over all N patches without any mask: the unavoidable work."""
    y = merger.embed(x, grid)
    for block in merger.blocks:
        y = block(y, None)
    return merger.ln_f(y)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_memory_mib(fn: Callable[[], object], device: str) -> float:
    """Peak extra memory (MiB) of one run of ``fn``.

    GPU: ``torch.cuda.max_memory_allocated``; CPU: the peak resident set size above the start, sampled every 1 ms.
    """
    with torch.no_grad():
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fn()
            _sync(device)
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        base, peak_rss, done = _rss_bytes(), [0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak_rss[0] = max(peak_rss[0], _rss_bytes())
                time.sleep(0.001)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        fn()
        done.set()
        thread.join()
        return max(peak_rss[0] - base, 0) / 2**20


def _peak_child(shape_name: str, variant: str, seed: int) -> None:
    """Run one variant once in this (fresh) process and print its peak RSS above the set-up, in MiB."""
    shape = SHAPES[shape_name]
    torch.manual_seed(seed)
    grid = (shape.grid, shape.grid)
    merger = ClusterMerger(shape.dim, num_heads=2, num_layers=2, ffn_dim=shape.ffn_dim).eval()
    x = clustered_features(shape, seed)
    fn = {"batched": tokenize_batched, "loop": tokenize_loop, "dense": dense_pass}[variant]
    print(peak_memory_mib(lambda: fn(x, merger, grid), "cpu"))  # RSS sampled during the run, above its start


def peak_in_subprocess(shape_name: str, variant: str, seed: int = 0) -> float:
    """Peak extra memory (MiB) of one CPU run of a variant, measured in a fresh Python process."""
    import subprocess
    import sys

    code = f"from setok.bench import _peak_child; _peak_child({shape_name!r}, {variant!r}, {seed})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def median_times(fns: dict[str, Callable[[], object]], repeats: int, device: str) -> dict[str, float]:
    """Median wall time (s) of each function over ``repeats`` rounds, after one warm-up each.

    The rounds interleave the functions (a, b, c, a, b, c, ...), so a burst of load on a shared machine hits
    all of them alike and the ratios stay fair.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.no_grad():
        for fn in fns.values():
            fn()  # warm-up
        _sync(device)
        for _ in range(repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                _sync(device)
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def run_shape_set(shape: ShapeSet, device: str = "cpu", seed: int = 0, repeats: int | None = None) -> dict:
    """Time the three computations on one shape set; checks that batched and loop tokens agree."""
    torch.manual_seed(seed)
    grid = (shape.grid, shape.grid)
    merger = ClusterMerger(shape.dim, num_heads=2, num_layers=2, ffn_dim=shape.ffn_dim).to(device).eval()
    x = clustered_features(shape, seed, device)
    with torch.no_grad():
        tokens, token_mask = tokenize_batched(x, merger, grid)
        reference = tokenize_loop(x, merger, grid)
    batched = tokens[token_mask]
    looped = torch.cat(reference)
    agree = batched.shape == looped.shape and bool(torch.allclose(batched, looped, atol=1e-4, rtol=1e-4))
    if not agree:
        raise RuntimeError(f"bench {shape.name}: batched and loop tokens disagree")
    reps = repeats or shape.repeats
    fns = {"batched": lambda: tokenize_batched(x, merger, grid), "loop": lambda: tokenize_loop(x, merger, grid),
           "dense": lambda: dense_pass(x, merger, grid)}
    t = median_times(fns, reps, device)
    if device.startswith("cuda"):
        peak = {name: peak_memory_mib(fn, device) for name, fn in fns.items()}
    else:  # a fresh process per variant: in this one the allocator already holds what earlier runs freed
        peak = {name: peak_in_subprocess(shape.name, name, seed) for name in fns}
    return {
        "shape_set": shape.name, "batch": shape.batch, "num_patches": shape.grid**2, "dim": shape.dim,
        "ffn_dim": shape.ffn_dim, "mean_tokens": float(token_mask.sum(1).float().mean()),
        "batched_s": t["batched"], "loop_s": t["loop"], "dense_s": t["dense"],
        "batched_peak_mib": peak["batched"], "loop_peak_mib": peak["loop"], "dense_peak_mib": peak["dense"],
        "speedup_vs_loop": t["loop"] / t["batched"], "ratio_to_dense": t["batched"] / t["dense"],
        "repeats": reps, "outputs_agree": agree, "device": _device_name(device),
        "torch_threads": torch.get_num_threads(),
    }


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    import os

    return f"cpu ({os.cpu_count()} cores)"


def run_tokenizer_bench(profile: str, device: str = "cpu", seed: int = 0, shape_sets: list[str] | None = None,
                        repeats: int | None = None):
    """Run the benchmark for the profile's shape sets; writes ``results/<profile>/bench/tokenizer.{csv,json}``."""
    import pandas as pd

    from setok.book.results import Run

    names = shape_sets or PROFILE_SHAPES[profile]
    unknown = sorted(set(names) - set(SHAPES))
    if unknown:
        raise ValueError(f"unknown shape set(s) {unknown}; choose from {sorted(SHAPES)}")
    run = Run.start(profile if device == "cpu" else "gpu", "bench", seed=seed,
                    config={"shape_sets": names, "device": device, "knn_k": KNN_K, "kernel_scale": KAPPA,
                            "max_clusters": MAX_CLUSTERS})
    rows = []
    for name in names:
        print(f"bench tokenizer: shape set {name} on {device} ...", flush=True)
        row = run_shape_set(SHAPES[name], device, seed, repeats)
        print(f"  batched {row['batched_s'] * 1e3:9.1f} ms | loop {row['loop_s'] * 1e3:9.1f} ms | dense "
              f"{row['dense_s'] * 1e3:9.1f} ms | speed-up vs loop {row['speedup_vs_loop']:.2f}x | "
              f"batched / dense {row['ratio_to_dense']:.2f} | tokens/image {row['mean_tokens']:.1f}", flush=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    run.save_table(table, "tokenizer.csv")
    run.save_metrics({"rows": rows}, "tokenizer.json")
    run.finish(kind="benchmark")
    if profile == "mini" and device == "cpu" and set(PROFILE_SHAPES["mini"]) <= set(names):
        update_readme(table)
    return table


README_START, README_END = "<!-- bench:tokenizer:start -->", "<!-- bench:tokenizer:end -->"


def readme_section(table) -> str:
    """The README's benchmark table, generated from ``results/mini/bench/tokenizer.csv`` (never typed)."""
    lines = [README_START,
             "| shapes | B x N x d | tokens/image | batched | per-image loop | dense pass | speed-up vs loop | "
             "batched / dense | device |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for _, r in table.iterrows():
        lines.append(f"| {r['shape_set']} | {r['batch']} x {r['num_patches']} x {r['dim']} | {r['mean_tokens']:.1f} | "
                     f"{r['batched_s'] * 1e3:.0f} ms | {r['loop_s'] * 1e3:.0f} ms | {r['dense_s'] * 1e3:.0f} ms | "
                     f"{r['speedup_vs_loop']:.2f}x | {r['ratio_to_dense']:.2f} | {r['device']} |")
    lines.append(README_END)
    return "\n".join(lines)


def update_readme(table, path=None) -> bool:
    """Replace the README's benchmark section (between its markers) with the table; False if there are none."""
    from setok.book.results import replace_marked_section, repo_root

    return replace_marked_section(path or repo_root() / "README.md", README_START, README_END, readme_section(table))


def _cli(args: argparse.Namespace) -> int:
    run_tokenizer_bench(args.profile, args.device, args.seed, args.shapes, args.repeats)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks (speed and memory targets live here, not in tests)")
    what = bench.add_subparsers(dest="what", required=True)
    tok = what.add_parser("tokenizer", help="batched tokenizer vs per-image loop vs dense pass")
    tok.add_argument("--profile", choices=PROFILES, default="mini")
    tok.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    tok.add_argument("--seed", type=int, default=0)
    tok.add_argument("--shapes", nargs="*", choices=sorted(SHAPES), help="shape sets (default: the profile's)")
    tok.add_argument("--repeats", type=int, help="timed repeats per computation (default: per shape set)")
    tok.set_defaults(func=_cli)


def load_or_run(profile: str):
    """The tokenizer benchmark table of a profile: read from results, or (smoke only) run now."""
    import pandas as pd

    from setok.book.results import results_root

    path = results_root() / profile / "bench" / "tokenizer.csv"
    if path.is_file():
        return pd.read_csv(path)
    if profile == "smoke":
        return run_tokenizer_bench("smoke")
    raise FileNotFoundError(f"benchmark results not found: {path}; run `setok bench tokenizer --profile {profile}` "
                            f"(or `make bench PROFILE={profile}`)")
