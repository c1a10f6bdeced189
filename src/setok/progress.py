"""Progress bars that stay readable in logs and executed notebooks."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    """``tqdm``, but off a terminal (a notebook, a log file) it redraws at most every 30 s instead of every step.

    Executed notebooks keep every redraw as a line of output, so a step-by-step bar would fill the book page.
    """
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 30.0)
    return tqdm(iterable, **kwargs)
