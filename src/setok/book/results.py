"""Results folders with provenance: ``results/<profile>/<name>/`` holds metrics, tables, figures and ``run.json``.

Every write is atomic (a temporary file renamed into place), so an interrupted run never leaves a half-written
metrics file that the book would then render. ``run.json`` records what a reader needs to trust a number: the git
SHA (and whether the tree was dirty), package versions, the device, the seed, the config and the wall time.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from setok.config import check_profile, to_dict

PACKAGES = (
    "torch", "transformers", "diffusers", "peft", "accelerate", "numpy", "scipy", "scikit-learn",
    "scikit-image", "pandas", "matplotlib", "papermill", "jupyter-book",
)


def repo_root() -> Path:
    """The project root: ``$SETOK_ROOT`` if set, else the nearest parent of the cwd holding ``pyproject.toml``."""
    if os.environ.get("SETOK_ROOT"):
        return Path(os.environ["SETOK_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "setok").is_dir():
            return folder
    return here


def results_root() -> Path:
    """Where results go: ``$SETOK_RESULTS`` if set, else ``<repo>/results``."""
    if os.environ.get("SETOK_RESULTS"):
        return Path(os.environ["SETOK_RESULTS"]).resolve()
    return repo_root() / "results"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    return to_dict(obj) if hasattr(obj, "__dataclass_fields__") else str(obj)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (numpy and torch scalars allowed)."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)
    return atomic_write_bytes(path, (text + "\n").encode())


def replace_marked_section(path: Path, start: str, end: str, body: str) -> bool:
    """Replace everything from the ``start`` marker to the ``end`` marker of a text file with ``body`` (which carries
    the markers itself); False, and the file untouched, when it or a marker is missing."""
    if not path.is_file():
        return False
    text = path.read_text()
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    atomic_write_bytes(path, (head + body + rest.split(end, 1)[1]).encode())
    return True


def read_json(path: Path) -> Any:
    """Read a JSON file, naming the path if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path} (run the chapter or command that writes it)")
    return json.loads(path.read_text())


def git_state(root: Path | None = None) -> dict[str, Any]:
    """The commit SHA of the checkout and whether it has uncommitted changes ('unknown' outside git)."""
    root = root or repo_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"sha": "unknown", "dirty": None}
    return {"sha": sha, "dirty": dirty}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages whose behaviour the results depend on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info() -> dict[str, Any]:
    """The device the run used, in words: GPU name(s) if CUDA is available, else the CPU and its core count."""
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["device"] = info["cuda"][0]
    else:
        info["device"] = f"cpu ({info['cpu_count']} cores)"
    return info


def provenance() -> dict[str, Any]:
    """Everything ``run.json`` records about where a result came from, besides the run's own config."""
    return {"git": git_state(), "versions": package_versions(), "device": device_info(),
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


@dataclass
class Run:
    """One run's results folder. Use as ``run = Run.start("mini", "clustering", seed=0, config=cfg)``.

    ``save_metrics``/``save_table``/``save_figure`` write into ``results/<profile>/<name>/``; ``finish`` writes
    ``run.json`` with the provenance and the wall time since ``start``.
    """

    profile: str
    name: str
    seed: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    started: float = field(default_factory=time.perf_counter)
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, profile: str, name: str, seed: int | None = None, config: Any = None,
              root: Path | None = None) -> Run:
        check_profile(profile) if profile != "gpu" else None
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"run name must be a plain folder name (got {name!r})")
        return cls(profile=profile, name=name, seed=seed, config=to_dict(config or {}), root=root)

    @property
    def dir(self) -> Path:
        return (self.root or results_root()) / self.profile / self.name

    def path(self, filename: str) -> Path:
        return self.dir / filename

    def save_metrics(self, metrics: dict[str, Any], filename: str = "metrics.json") -> Path:
        """Merge ``metrics`` into this run's metrics and write them as JSON."""
        self.metrics.update(metrics)
        return write_json(self.path(filename), self.metrics if filename == "metrics.json" else metrics)

    def save_table(self, table: Any, filename: str) -> Path:
        """Write a pandas DataFrame as CSV (atomically)."""
        return atomic_write_bytes(self.path(filename), table.to_csv(index=False).encode())

    def save_figure(self, fig: Any, stem: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure as PNG."""
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return atomic_write_bytes(self.path(f"{stem}.png"), buf.getvalue())

    def finish(self, **extra: Any) -> Path:
        """Write ``run.json``: provenance, seed, config, metrics keys and wall time."""
        record = {"profile": self.profile, "name": self.name, "seed": self.seed, "config": self.config,
                  "wall_time_s": round(time.perf_counter() - self.started, 3), **provenance(), **extra}
        return write_json(self.path("run.json"), record)


def load_metrics(profile: str, name: str, filename: str = "metrics.json") -> dict[str, Any]:
    """Read ``results/<profile>/<name>/<filename>``."""
    return read_json(results_root() / profile / name / filename)


def paper_reported(table: str, metric: str, method: str | None = None, **filters: str) -> float:
    """One number the paper reports, from ``results/paper_reported/<table>.csv`` (transcribed from the paper).

    ``paper_reported("table5_clustering", "n_clusters", method="Hard-clustering")`` -> 25.0.
    """
    import pandas as pd

    path = results_root() / "paper_reported" / f"{table}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"paper table not found: {path}")
    df = pd.read_csv(path)
    sel = df["metric"] == metric
    if method is not None:
        sel &= df["method"] == method
    for key, value in filters.items():
        sel &= df[key] == value
    rows = df[sel & df["value"].notna()]
    if len(rows) != 1:
        raise ValueError(f"{path.name}: expected one value for metric={metric!r}, method={method!r}, {filters} "
                         f"(found {len(rows)})")
    return float(rows["value"].iloc[0])
