"""``setok train stage1 --profile P [--config key=value ...] [--out DIR]`` (SPEC §3.1).

Single process: ``setok train stage1 --profile mini``. Several processes / nodes: the same module under
``accelerate launch`` (see ``scripts/slurm_stage1.sbatch``):
``accelerate launch --multi_gpu --num_processes 8 -m setok.train.cli stage1 --profile paper``.
"""

from __future__ import annotations

import argparse
import json
import sys


def _stage1(args: argparse.Namespace) -> int:
    from setok.train.stage1 import train_stage1_profile, train_stage1_seeds

    if args.seeds:
        if args.out:
            raise ValueError("--seeds writes one artifact per seed (artifacts/<profile>/stage1_seed<s>); drop --out")
        metrics = train_stage1_seeds(args.profile, args.seeds, args.config or [])
    else:
        metrics = train_stage1_profile(args.profile, args.config or [], out_dir=args.out)
    if metrics:
        print(json.dumps(metrics, indent=2, default=str))
    return 0


def add_stage1_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stage1", help="Stage I: tokenizer pretraining (reconstruction, then masks + consistency)")
    p.add_argument("--profile", required=True, choices=("smoke", "mini", "paper"))
    p.add_argument("--config", nargs="*", metavar="KEY=VALUE",
                   help="profile overrides, e.g. stage1.phase1_steps=10 stage1.batch_size=8")
    p.add_argument("--out", default=None, help="artifact folder (default artifacts/<profile>/stage1)")
    p.add_argument("--seeds", nargs="+", type=int, default=None, metavar="S",
                   help="seed spread: one fresh run per training seed (stage1.seed), same data; results go to "
                        "results/<profile>/stage1_seed<S>/")
    p.set_defaults(func=_stage1)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``setok train ...``."""
    train = subparsers.add_parser("train", help="run a training stage")
    add_stage1_parser(train.add_subparsers(dest="stage", required=True))


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m setok.train.cli stage1 ...`` (used by ``accelerate launch``)."""
    parser = argparse.ArgumentParser(prog="setok train")
    add_stage1_parser(parser.add_subparsers(dest="stage", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"setok: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
