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


def test_readme_quotes_the_committed_benchmark():
    """The README's table is generated from results/mini/bench/tokenizer.csv, so it cannot drift from it."""
    from setok.bench import README_END, README_START, readme_section
    from setok.book.results import repo_root, results_root

    csv = results_root() / "mini" / "bench" / "tokenizer.csv"
    if not csv.is_file():
        pytest.skip("no mini benchmark results in this checkout")
    text = (repo_root() / "README.md").read_text()
    section = text[text.index(README_START): text.index(README_END) + len(README_END)]
    assert section == readme_section(pd.read_csv(csv))


def test_update_readme_replaces_only_the_marked_section(tmp_path):
    from setok.bench import README_END, README_START, update_readme

    table = pd.DataFrame([dict(shape_set="mini", batch=2, num_patches=4, dim=8, mean_tokens=2.0, batched_s=0.1,
                               loop_s=0.3, dense_s=0.05, speedup_vs_loop=3.0, ratio_to_dense=2.0, device="cpu")])
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\noutro\n")
    assert update_readme(table, readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "3.00x" in text and "old" not in text
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers")
    assert not update_readme(table, plain) and plain.read_text() == "no markers"
