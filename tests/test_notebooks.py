"""Every chapter notebook runs at the smoke profile through papermill, as `make book PROFILE=smoke` runs it."""

import json

import pytest

from setok.book.results import results_root
from setok.book.runner import load_chapters, run_book

CHAPTERS = [c.name for c in load_chapters()]


@pytest.mark.notebook
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_at_smoke(name, tmp_path):
    (result,) = run_book("smoke", only=[name], out_dir=tmp_path)
    assert result.ok, f"{name} failed: {result.error}"
    nb = json.loads(result.output.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "hide-input" in injected[0]["metadata"]["tags"]
    record = json.loads((results_root() / "smoke" / name / "run.json").read_text())
    assert record["parameters"]["profile"] == "smoke" and record["wall_time_s"] > 0
    assert set(record) >= {"git", "versions", "device", "seed", "config", "parameters", "wall_time_s"}
    # figures reach the page (a non-inline matplotlib backend in the kernel would silently drop them)
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{name}: the executed notebook holds no figure"
