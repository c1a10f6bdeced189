"""``setok data miniworld --out DIR [--split S] [--n N] [--resolution R] [--seed S]``: write the mini world.

Writes the images and every annotation format (see ``setok.data.miniworld.writers``) for one split, or for all
four splits with ``--split all``. ``setok doctor`` lives with the loaders.
"""

from __future__ import annotations

import argparse

SPLIT_CHOICES = ("train", "val", "test", "compositional", "all")


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="generate datasets (the mini world)")
    verbs = data.add_subparsers(dest="verb", required=True)
    mw = verbs.add_parser("miniworld", help="render mini-world scenes and write them in the real datasets' formats")
    mw.add_argument("--out", required=True, help="output folder")
    mw.add_argument("--split", choices=SPLIT_CHOICES, default="train")
    mw.add_argument("--n", type=int, default=200, help="images per split")
    mw.add_argument("--resolution", type=int, default=64)
    mw.add_argument("--seed", type=int, default=0)
    mw.add_argument("--max-objects", type=int, default=8)
    mw.set_defaults(func=_miniworld)


def _miniworld(args: argparse.Namespace) -> int:
    from setok.data.miniworld.scene import SPLITS
    from setok.data.miniworld.writers import write_miniworld

    splits = list(SPLITS) if args.split == "all" else [args.split]
    for split in splits:
        manifest = write_miniworld(args.out, split, args.n, args.resolution, args.seed, args.max_objects)
        counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items() if not isinstance(v, dict))
        print(f"{split}: {counts} -> {args.out}")
    return 0
