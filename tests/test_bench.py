"""The tokenizer benchmark's computations agree, and its results file is written (timings are not asserted)."""

import pandas as pd
import pytest
import torch

from setok.bench import SHAPES, clustered_features, run_tokenizer_bench, tokenize_batched, tokenize_loop
from setok.merger import ClusterMerger


def test_batched_equals_loop_on_clustered_features():
    shape = SHAPES["smoke"]
    merger = ClusterMerger(shape.dim, ffn_dim=shape.ffn_dim).eval()
    x = clustered_features(shape, seed=1)
    with torch.no_grad():
        tokens, mask = tokenize_batched(x, merger, (shape.grid, shape.grid))
        ref = tokenize_loop(x, merger, (shape.grid, shape.grid))
    assert torch.allclose(tokens[mask], torch.cat(ref), atol=1e-5)
    assert mask.sum(1).float().mean() > 2  # clustered features give several tokens, not one or N


def test_bench_writes_results(tmp_path, monkeypatch):
    monkeypatch.setenv("SETOK_RESULTS", str(tmp_path))
    table = run_tokenizer_bench("smoke", repeats=1)
    saved = pd.read_csv(tmp_path / "smoke" / "bench" / "tokenizer.csv")
    assert list(saved["shape_set"]) == ["smoke"] and bool(saved["outputs_agree"].all())
    assert (table["speedup_vs_loop"] > 0).all() and (tmp_path / "smoke" / "bench" / "run.json").is_file()
    with pytest.raises(ValueError, match="unknown shape set"):
        run_tokenizer_bench("smoke", shape_sets=["huge"])
