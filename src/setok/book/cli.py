"""``setok book run`` and ``setok book build``."""

from __future__ import annotations

import argparse

from setok import PROFILES


def _run(args: argparse.Namespace) -> int:
    from setok.book.runner import report_failures, run_book

    return report_failures(run_book(args.profile, seed=args.seed, only=args.only or None))


def _build(args: argparse.Namespace) -> int:
    from setok.book.runner import build_book

    build_book(args.profile, strict=not args.no_strict)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    book = sub.add_parser("book", help="run the chapter notebooks and build the book")
    verbs = book.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run", help="execute every chapter notebook with papermill")
    run.add_argument("--profile", choices=PROFILES, default="mini")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--only", nargs="*", help="chapter names to run (default: all)")
    run.set_defaults(func=_run)
    build = verbs.add_parser("build", help="build the HTML book from the executed notebooks")
    build.add_argument("--profile", choices=PROFILES, default="mini")
    build.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    build.set_defaults(func=_build)
