"""The book runner: execute every chapter notebook with papermill at a profile, then build the HTML book.

``book/chapters.yaml`` lists each chapter's notebook, its parameters per profile and a timeout per profile. Each
notebook runs in its own ``papermill`` process (so a per-notebook timeout can kill it) into
``_build/executed/<profile>/``; failures are collected and reported together, naming the notebook and the failing
cell. A successful run writes ``results/<profile>/<chapter>/run.json``. The build step stages the book sources with
the executed notebooks and runs ``jupyter-book build`` in strict mode (warnings are errors); the book itself never
executes anything (``execute_notebooks: "off"``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from setok.book.results import Run, read_json, replace_marked_section, repo_root, results_root
from setok.config import check_profile

PARAMS_PROMPT = "Parameters of this run"
# keys of run.json that the runner owns (the rest of a chapter's own run.json is kept)
RUNNER_KEYS = {"profile", "name", "seed", "config", "wall_time_s", "git", "versions", "device", "time_utc",
               "parameters", "notebook", "kind"}


@dataclass(frozen=True)
class Chapter:
    """One entry of ``book/chapters.yaml``."""

    name: str
    notebook: str
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeout: dict[str, int] = field(default_factory=dict)

    def params_for(self, profile: str, seed: int) -> dict[str, Any]:
        return {"profile": profile, "seed": seed, **(self.parameters.get(profile) or {})}

    def timeout_for(self, profile: str) -> int:
        return int(self.timeout.get(profile, {"smoke": 600, "mini": 1800, "paper": 86400}[profile]))


@dataclass
class NotebookResult:
    chapter: str
    ok: bool
    wall_time_s: float
    output: Path
    error: str = ""


def load_chapters(spec: Path | None = None) -> list[Chapter]:
    """Read the chapter list; every notebook it names must exist."""
    root = repo_root()
    spec = spec or root / "book" / "chapters.yaml"
    if not spec.is_file():
        raise FileNotFoundError(f"chapter spec not found: {spec}")
    data = yaml.safe_load(spec.read_text()) or {}
    chapters = []
    for entry in data.get("chapters", []):
        unknown = set(entry) - {"name", "notebook", "parameters", "timeout"}
        if unknown:
            raise ValueError(f"{spec}: chapter {entry.get('name')!r} has unknown keys {sorted(unknown)}")
        chapter = Chapter(**entry)
        if not (root / chapter.notebook).is_file():
            raise FileNotFoundError(f"{spec}: chapter {chapter.name!r} names a missing notebook {chapter.notebook}")
        chapters.append(chapter)
    names = [c.name for c in chapters]
    if len(set(names)) != len(names):
        raise ValueError(f"{spec}: duplicate chapter names in {names}")
    return chapters


def _failing_cell(nb_path: Path) -> str:
    """Describe the first cell of an executed notebook whose outputs hold an error."""
    try:
        nb = json.loads(nb_path.read_text())
    except (OSError, ValueError):
        return "the notebook was not written (papermill failed before executing it)"
    code_index = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        code_index += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = "".join(cell.get("source", "")).strip().splitlines()
                head = first[0][:80] if first else ""
                return f"code cell {code_index} ({head!r}): {out.get('ename')}: {out.get('evalue')}"
    return "no cell holds an error (timeout or kernel death?)"


def mark_parameters_cell(nb_path: Path) -> None:
    """Collapse papermill's injected-parameters cell in the book, labelled "Parameters of this run"."""
    nb = json.loads(nb_path.read_text())
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            cell["metadata"]["tags"] = sorted(set(tags) | {"hide-input"})
            cell["metadata"]["mystnb"] = {"code_prompt_show": PARAMS_PROMPT, "code_prompt_hide": PARAMS_PROMPT}
            source = "".join(cell.get("source", ""))
            cell["source"] = source.replace("# Parameters", f"# {PARAMS_PROMPT} (injected by papermill)", 1)
    nb_path.write_text(json.dumps(nb, indent=1) + "\n")


def run_notebook(chapter: Chapter, profile: str, seed: int, out_dir: Path) -> NotebookResult:
    """Execute one chapter with papermill in a subprocess, under its per-notebook timeout."""
    root = repo_root()
    output = out_dir / chapter.notebook
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    params = chapter.params_for(profile, seed)
    timeout = chapter.timeout_for(profile)
    cmd = [sys.executable, "-m", "papermill", str(root / chapter.notebook), str(output),
           "--cwd", str(root), "--kernel", "python3", "--no-progress-bar", "--log-level", "WARNING",
           "--execution-timeout", str(timeout)]
    for key, value in params.items():
        cmd += ["-y", yaml.safe_dump({key: value}, default_flow_style=True).strip()]
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel must use the inline backend, or plt.show() puts no figure in the page
    started_at, start = time.time(), time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, env=env)
        ok, log = proc.returncode == 0, proc.stderr[-4000:]
    except subprocess.TimeoutExpired:
        ok, log = False, f"timed out after {timeout} s"
    wall = time.perf_counter() - start
    if not ok:
        where = _failing_cell(output) if output.exists() else "papermill did not write an output notebook"
        tail = "" if output.exists() else "\n" + log
        return NotebookResult(chapter.name, False, wall, output, f"{where}{tail}")
    mark_parameters_cell(output)
    # A chapter may write its own run.json (its model config, metrics); keep it and add the runner's record.
    own = results_root() / profile / chapter.name / "run.json"
    prior = read_json(own) if own.is_file() and own.stat().st_mtime >= started_at else {}
    run = Run.start(profile, chapter.name, seed=seed, config=prior.get("config", {}))
    extra = {k: v for k, v in prior.items() if k not in RUNNER_KEYS}
    run.finish(**extra, parameters=params, notebook=chapter.notebook, wall_time_s=round(wall, 3), kind="chapter")
    return NotebookResult(chapter.name, True, wall, output)


def executed_dir(profile: str) -> Path:
    return repo_root() / "_build" / "executed" / profile


def run_book(profile: str, seed: int = 0, only: list[str] | None = None, out_dir: Path | None = None,
             spec: Path | None = None) -> list[NotebookResult]:
    """Execute the chapters (all, or those named in ``only``) at ``profile``; returns one result per notebook."""
    check_profile(profile)
    chapters = load_chapters(spec)
    if only:
        missing = sorted(set(only) - {c.name for c in chapters})
        if missing:
            raise ValueError(f"unknown chapter(s) {missing}; known: {[c.name for c in chapters]}")
        chapters = [c for c in chapters if c.name in only]
    out_dir = out_dir or executed_dir(profile)
    results = []
    for i, chapter in enumerate(chapters, 1):
        print(f"[{i}/{len(chapters)}] {chapter.name} ({chapter.notebook}) at profile {profile} ...", flush=True)
        res = run_notebook(chapter, profile, seed, out_dir)
        status = "ok" if res.ok else "FAILED"
        print(f"    {status} in {res.wall_time_s:.1f} s" + (f": {res.error}" if res.error else ""), flush=True)
        results.append(res)
    if not only and out_dir == executed_dir(profile) and all(r.ok for r in results):
        update_readme_timings(profile, spec=spec)  # only a README with this profile's markers changes
    return results


def timing_markers(profile: str) -> tuple[str, str]:
    return f"<!-- chapters:{profile}:start -->", f"<!-- chapters:{profile}:end -->"


def chapter_timings(profile: str, spec: Path | None = None, root: Path | None = None) -> list[dict[str, Any]]:
    """Each chapter's wall time, date and device at ``profile``, read from ``results/<profile>/<chapter>/run.json``
    (written by the runner); a chapter that never ran is an error naming its file."""
    rows = []
    for chapter in load_chapters(spec):
        path = (root or results_root()) / profile / chapter.name / "run.json"
        if not path.is_file():
            raise FileNotFoundError(f"no run record for chapter {chapter.name!r} at {path}; run "
                                    f"`setok book run --profile {profile}`")
        rec = read_json(path)
        rows.append({"chapter": chapter.name, "notebook": chapter.notebook, "wall_time_s": float(rec["wall_time_s"]),
                     "date": str(rec.get("time_utc", ""))[:10], "device": rec.get("device", {}).get("device", "?")})
    return rows


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"


def timings_section(profile: str, rows: list[dict[str, Any]]) -> str:
    """The README's chapter-timings table, generated from the chapters' run.json files (never typed)."""
    start, end = timing_markers(profile)
    lines = [start, f"| chapter (`{profile}`) | wall time | run on | device |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['chapter']} (`{r['notebook']}`) | {_duration(r['wall_time_s'])} | {r['date']} | {r['device']} |"
              for r in rows]
    lines.append(f"| all chapters | {_duration(sum(r['wall_time_s'] for r in rows))} | | |")
    lines.append(end)
    return "\n".join(lines)


def update_readme_timings(profile: str, path: Path | None = None, spec: Path | None = None) -> bool:
    """Rewrite the README's chapter-timings table for ``profile`` from the run records; False without markers."""
    start, end = timing_markers(profile)
    path = path or repo_root() / "README.md"
    if not path.is_file() or start not in path.read_text():
        return False
    return replace_marked_section(path, start, end, timings_section(profile, chapter_timings(profile, spec)))


def report_failures(results: list[NotebookResult]) -> int:
    """Print every failure; return the process exit code (0 when all passed)."""
    failed = [r for r in results if not r.ok]
    if not failed:
        print(f"all {len(results)} notebook(s) ran.")
        return 0
    print(f"\n{len(failed)} of {len(results)} notebook(s) failed:", file=sys.stderr)
    for r in failed:
        print(f"  - {r.chapter}: {r.error}\n    (executed copy: {r.output})", file=sys.stderr)
    return 1


def stage_book(profile: str, executed: Path | None = None) -> Path:
    """Copy the book sources and the executed notebooks into ``_build/stage/<profile>``."""
    root = repo_root()
    executed = executed or executed_dir(profile)
    stage = root / "_build" / "stage" / profile
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, stage / name)
    shutil.copytree(root / "book", stage / "book")
    missing = []
    for chapter in load_chapters():
        src = executed / chapter.notebook
        if not src.is_file():
            missing.append(chapter.notebook)
            continue
        (stage / chapter.notebook).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, stage / chapter.notebook)
    if missing:
        raise FileNotFoundError(
            f"no executed notebook for {missing} at profile {profile!r} under {executed}; "
            f"run `setok book run --profile {profile}` (or `make book PROFILE={profile}`) first")
    # Figures the chapters reference from results/ travel with the stage.
    res = results_root()
    if (res / "paper_reported").is_dir():
        shutil.copytree(res / "paper_reported", stage / "results" / "paper_reported")
    return stage


def build_book(profile: str, strict: bool = True) -> Path:
    """Build the HTML book from the staged sources into ``_build/html``; returns the index page."""
    root = repo_root()
    stage = stage_book(profile)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe), "build", str(stage), "--path-output", str(root), "--builder", "html"]
    if strict:
        cmd += ["-W", "--keep-going"]
    print(" ".join(cmd), flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}); see the warnings above")
    index = root / "_build" / "html" / "index.html"
    print(f"book built: {index}")
    return index
