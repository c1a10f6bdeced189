"""The ``setok`` command line. Each sub-command lives with its logic and registers itself here.

    setok book run|build --profile P     execute the chapters / build the HTML book
    setok bench tokenizer --profile P     batched tokenizer vs a per-image loop vs a dense pass
    setok data miniworld --out DIR        render the mini world in the real datasets' formats
    setok eval score --task T --pred P --ref R   score predictions with a benchmark's official rule
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that define ``register(subparsers)``; each adds one top-level command.
COMMANDS = (
    "setok.book.cli",
    "setok.bench",
    "setok.train.cli",
    "setok.doctor",
    "setok.data.cli",
    "setok.eval.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="setok", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"setok: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
