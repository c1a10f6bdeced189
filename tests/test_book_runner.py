"""The book runner, results with provenance, profiles and the notebook source converter."""

import json
import subprocess
import sys

import pytest

from setok.baselines import ClusteringConfig
from setok.book.nbsrc import percent_to_notebook
from setok.book.results import Run, atomic_write_bytes, paper_reported, read_json
from setok.book.runner import load_chapters, report_failures, run_book
from setok.config import apply_overrides, build, load_profile

NOTEBOOK_SRC = """# %% [markdown]
# # A test chapter
# %% tags=["parameters"]
profile = "mini"
seed = 0
divisor = 1
# %%
x = 1
# %%
y = x / divisor
"""


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    nb = percent_to_notebook(NOTEBOOK_SRC)
    (tmp_path / "notebooks" / "t.ipynb").write_text(json.dumps(nb))
    sleepy = percent_to_notebook(NOTEBOOK_SRC.replace("x = 1", "import time\ntime.sleep(30)"))
    (tmp_path / "notebooks" / "slow.ipynb").write_text(json.dumps(sleepy))
    (tmp_path / "book" / "chapters.yaml").write_text(
        "chapters:\n"
        "  - name: good\n    notebook: notebooks/t.ipynb\n    parameters: {smoke: {divisor: 2}}\n"
        "  - name: bad\n    notebook: notebooks/t.ipynb\n    parameters: {smoke: {divisor: 0}}\n"
        "  - name: slow\n    notebook: notebooks/slow.ipynb\n    timeout: {smoke: 3}\n")
    monkeypatch.setenv("SETOK_ROOT", str(tmp_path))
    monkeypatch.setenv("SETOK_RESULTS", str(tmp_path / "results"))
    return tmp_path


def test_runner_collects_every_failure_and_names_the_cell(fake_repo, capsys):
    results = run_book("smoke", out_dir=fake_repo / "out")
    by_name = {r.chapter: r for r in results}
    assert by_name["good"].ok and not by_name["bad"].ok and not by_name["slow"].ok
    assert "code cell 4" in by_name["bad"].error and "ZeroDivisionError" in by_name["bad"].error
    assert report_failures(results) == 1
    err = capsys.readouterr().err
    assert "2 of 3 notebook(s) failed" in err and "bad" in err and "slow" in err
    record = read_json(fake_repo / "results" / "smoke" / "good" / "run.json")
    assert record["parameters"] == {"profile": "smoke", "seed": 0, "divisor": 2} and record["kind"] == "chapter"
    assert not (fake_repo / "results" / "smoke" / "bad").exists()  # a failed run writes no run.json


def test_runner_rejects_unknown_chapters_and_profiles(fake_repo):
    with pytest.raises(ValueError, match="unknown chapter"):
        run_book("smoke", only=["nope"])
    with pytest.raises(ValueError, match="unknown profile"):
        run_book("huge")


def test_chapter_spec_errors(tmp_path):
    spec = tmp_path / "chapters.yaml"
    spec.write_text("chapters:\n  - name: a\n    notebook: notebooks/missing.ipynb\n")
    with pytest.raises(FileNotFoundError, match="missing notebook"):
        load_chapters(spec)
    spec.write_text("chapters:\n  - name: a\n    notebook: x\n    colour: red\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_chapters(spec)
    with pytest.raises(FileNotFoundError, match="chapter spec"):
        load_chapters(tmp_path / "none.yaml")


def test_run_json_has_provenance_and_writes_are_atomic(tmp_path):
    run = Run.start("smoke", "unit", seed=3, config=ClusteringConfig(), root=tmp_path)
    run.save_metrics({"a": 1.5})
    run.save_metrics({"b": 2})
    path = run.finish()
    record = json.loads(path.read_text())
    assert record["seed"] == 3 and record["config"]["knn_k"] == 5 and record["profile"] == "smoke"
    assert set(record["versions"]) >= {"torch", "transformers", "python"} and "device" in record["device"]
    assert json.loads(run.path("metrics.json").read_text()) == {"a": 1.5, "b": 2}
    assert not [p for p in run.dir.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ValueError, match="plain folder name"):
        Run.start("smoke", "../escape")
    with pytest.raises(ValueError, match="unknown profile"):
        Run.start("large", "x")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_profiles_overrides_and_unknown_keys():
    cfg = load_profile("mini", ["tokenizer.clustering.knn_k=7", "tokenizer.clustering.kernel_scale=1e-1"])
    assert cfg["tokenizer"]["clustering"]["knn_k"] == 7 and cfg["tokenizer"]["clustering"]["kernel_scale"] == 0.1
    assert cfg["profile"] == "mini"
    with pytest.raises(ValueError, match="unknown profile"):
        load_profile("giant")
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides({}, ["knn_k"])
    with pytest.raises(ValueError, match="unknown config key"):
        build(ClusteringConfig, {"knn": 3})
    assert build(ClusteringConfig, {"knn_k": 9}).knn_k == 9


def test_paper_reported_reads_the_transcribed_tables():
    assert paper_reported("table5_clustering", "n_clusters", method="Hard-clustering") == 25.0
    with pytest.raises(ValueError, match="expected one value"):
        paper_reported("table5_clustering", "n_clusters")
    with pytest.raises(FileNotFoundError):
        paper_reported("table99", "x")


def test_percent_source_to_notebook():
    nb = percent_to_notebook(NOTEBOOK_SRC)
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds == ["markdown", "code", "code", "code"]
    assert nb["cells"][0]["source"] == ["# A test chapter"]
    assert nb["cells"][1]["metadata"]["tags"] == ["parameters"] and nb["cells"][1]["outputs"] == []


def test_cli_errors_exit_2():
    proc = subprocess.run([sys.executable, "-m", "setok.cli", "book", "run", "--profile", "huge"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_progress_redraws_rarely_off_a_terminal(monkeypatch):
    import io

    from setok.progress import progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress(range(3), file=sys.stderr)
    assert bar.mininterval == 30.0
    assert list(bar) == [0, 1, 2]


def test_readme_chapter_timings_come_from_the_run_records():
    """The README's chapter table is generated from results/mini/<chapter>/run.json, so it cannot drift from them."""
    from setok.book.results import repo_root
    from setok.book.runner import chapter_timings, timing_markers, timings_section

    start, end = timing_markers("mini")
    text = (repo_root() / "README.md").read_text()
    rows = chapter_timings("mini")
    assert text[text.index(start): text.index(end) + len(end)] == timings_section("mini", rows)
    assert [r["chapter"] for r in rows] == [c.name for c in load_chapters()]
    # the total row is the sum of the chapters' records
    total = sum(read_json(repo_root() / "results" / "mini" / r["chapter"] / "run.json")["wall_time_s"] for r in rows)
    minutes, seconds = divmod(round(total), 60)
    assert f"| all chapters | {minutes} min {seconds} s |" in timings_section("mini", rows)


def test_update_readme_timings_replaces_only_its_section_and_names_missing_runs(tmp_path):
    from setok.book.results import replace_marked_section
    from setok.book.runner import chapter_timings, timing_markers, update_readme_timings

    start, end = timing_markers("mini")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{start}\nold\n{end}\noutro\n")
    assert update_readme_timings("mini", path=readme)
    text = readme.read_text()
    assert text.startswith("intro\n" + start) and text.endswith(end + "\noutro\n") and "old" not in text
    assert not update_readme_timings("smoke", path=readme)  # no smoke markers: untouched
    assert readme.read_text() == text
    assert not replace_marked_section(tmp_path / "absent.md", start, end, "x")
    with pytest.raises(FileNotFoundError, match="no run record for chapter 'clustering'"):
        chapter_timings("mini", root=tmp_path)


def test_references_resolve_after_overrides_and_bad_ones_are_named():
    from setok.config import resolve_references

    paper = load_profile("paper")
    assert paper["tokenizer"]["encoder_path"] == paper["paths"]["checkpoints"]["siglip"]
    assert paper["stage1"]["unet_path"] == paper["stage1"]["vae_path"] == paper["paths"]["checkpoints"]["sd15"]
    moved = load_profile("paper", ["paths.checkpoints.siglip=/my/siglip"])  # one override moves every user
    assert moved["tokenizer"]["encoder_path"] == "/my/siglip"
    pinned = load_profile("paper", ["tokenizer.encoder_path=/elsewhere"])  # a user can still be set on its own
    assert pinned["tokenizer"]["encoder_path"] == "/elsewhere"
    assert pinned["paths"]["checkpoints"]["siglip"] != "/elsewhere"
    cfg = {"a": {"b": 3, "c": "${a.b}", "l": ["${a.b}", "x"]}, "s": "not ${a.b} a reference"}
    assert resolve_references(cfg) == {"a": {"b": 3, "c": 3, "l": [3, "x"]}, "s": "not ${a.b} a reference"}
    with pytest.raises(ValueError, match=r"a\.c refers to \$\{a\.zz\}, which does not exist"):
        resolve_references({"a": {"c": "${a.zz}"}})
    with pytest.raises(ValueError, match="section or another reference"):
        resolve_references({"a": {"c": "${a}"}})
    with pytest.raises(ValueError, match="section or another reference"):
        resolve_references({"a": {"c": "${a.d}", "d": "${a.c}"}})
