"""The paper's tables as transcribed in ``results/paper_reported/*.csv`` (see its README), as pandas tables.

Result tables (1-5, 8, 9) are long: one row per printed cell with ``table, method, size, benchmark,
split_or_subcolumn, metric, value, marker, note``. :func:`load_table` returns that tidy frame with ``value``
as a float (NaN where the paper prints ``-`` or nothing) and ``printed`` the cell as printed;
:func:`pivot_reported` lays it out like the printed table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from setok.book.results import repo_root, results_root

FILES = {1: "table1_understanding.csv", 2: "table2_mllm_benchmarks.csv", 3: "table3_referring.csv",
         4: "table4_generation_editing.csv", 5: "table5_clustering.csv", 6: "table6_training_data.csv",
         7: "table7_training_recipe.csv", 8: "table8_ablation.csv", 9: "table9_adaptation.csv"}
LONG_TABLES = (1, 2, 3, 4, 5, 8, 9)


def reported_dir() -> Path:
    """``results/paper_reported`` (under ``$SETOK_RESULTS`` if set and present, else the repository's)."""
    for folder in (results_root() / "paper_reported", repo_root() / "results" / "paper_reported"):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"paper_reported folder not found under {results_root()} or "
                            f"{repo_root() / 'results'}")


def load_table(n: int) -> pd.DataFrame:
    """Table ``n`` of arXiv 2406.05127v1 as transcribed; long tables get a float ``value`` column."""
    if n not in FILES:
        raise ValueError(f"the paper has tables 1-9 (got n={n!r})")
    path = reported_dir() / FILES[n]
    if not path.is_file():
        raise FileNotFoundError(f"transcribed table not found: {path}")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if n in LONG_TABLES:
        df["printed"] = df["value"]
        df["value"] = pd.to_numeric(df["value"].replace("", None), errors="raise").astype(float)
        df["marker"] = df["marker"].fillna("")
    return df


def pivot_reported(df: pd.DataFrame, with_markers: bool = True) -> pd.DataFrame:
    """Wide display of a long table: rows (method, size), columns (benchmark, sub-column, metric) as printed.

    Cells are strings as printed, like ``"86.1*"`` (markers kept) or ``"-"`` when empty; with
    ``with_markers=False`` the cells are floats.
    """
    needed = {"method", "size", "benchmark", "split_or_subcolumn", "metric", "value", "marker"}
    if not needed <= set(df.columns):
        raise ValueError(f"not a long result table: missing columns {sorted(needed - set(df.columns))}")
    df = df.copy()
    if with_markers:
        printed = df["printed"] if "printed" in df else df["value"].map(lambda v: f"{v:g}")
        df["cell"] = ["-" if pd.isna(v) else f"{p}{m}"
                      for v, p, m in zip(df["value"], printed, df["marker"], strict=True)]
    else:
        df["cell"] = df["value"]
    rows = list(dict.fromkeys(zip(df["method"], df["size"], strict=True)))
    cols = list(dict.fromkeys(zip(df["benchmark"], df["split_or_subcolumn"], df["metric"], strict=True)))
    wide = df.pivot_table(index=["method", "size"], columns=["benchmark", "split_or_subcolumn", "metric"],
                          values="cell", aggfunc="first", sort=False)
    return wide.reindex(index=pd.MultiIndex.from_tuples(rows, names=["method", "size"]),
                        columns=pd.MultiIndex.from_tuples(cols, names=["benchmark", "sub", "metric"]))
