"""Write chapter notebooks from percent-format sources (``python -m setok.book.nbsrc src.py notebooks/x.ipynb``).

Authoring aid only: the committed ``.ipynb`` (outputs stripped) is the papermill source. Cells start with
``# %%`` (code), ``# %% [markdown]`` (markdown: each line's leading ``# `` is removed) or
``# %% tags=["parameters"]`` (code with tags).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HEADER = re.compile(r"^# %%\s*(\[markdown\])?\s*(tags=(\[.*\]))?\s*$")


def percent_to_notebook(text: str) -> dict:
    """Parse percent-format text into an nbformat-4 notebook dict with no outputs."""
    cells: list[dict] = []
    kind, tags, lines = None, [], []

    def flush() -> None:
        if kind is None:
            return
        body = lines[:]
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        if kind == "markdown":
            body = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body]
        source = [ln + "\n" for ln in body]
        if source:
            source[-1] = source[-1].rstrip("\n")
        cell = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)

    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group(1) else "code"
            tags = json.loads(m.group(3)) if m.group(3) else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 2:
        raise SystemExit("usage: python -m setok.book.nbsrc SOURCE.py OUT.ipynb")
    nb = percent_to_notebook(Path(args[0]).read_text())
    Path(args[1]).write_text(json.dumps(nb, indent=1) + "\n")


if __name__ == "__main__":
    main()
