"""`desta train RECIPE [key=value ...]`."""

from __future__ import annotations

import argparse

TRAIN_EPILOG = """common keys (--print-config lists every key with its value):
  data.train=FILE        training rows (JSONL from `desta data generate`)
  data.data_root=DIR     the folder the rows' audio paths are relative to
  data.batch_size=N      rows per step and process; at most the number of rows
  optim.max_steps=N      stop after N optimizer steps (default -1: optim.epochs full epochs)
  optim.epochs=N         passes over the data when optim.max_steps is not set
  run.out_dir=DIR        checkpoints, logs and the trained model (DIR/model)
  run.threads=N          torch CPU threads (OMP_NUM_THREADS, when set, wins)
example: desta train recipes/desta-tiny.yaml data.train=mine.jsonl data.data_root=. optim.max_steps=20"""


class _EpilogFormatter(argparse.RawDescriptionHelpFormatter):
    """The epilog's key list kept as written (no option of `desta train` has a default worth showing)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a DeSTA adapter from a YAML recipe (torchrun for several GPUs)",
        epilog=TRAIN_EPILOG,
        formatter_class=_EpilogFormatter,
    )
    p.add_argument("recipe", help="YAML recipe, e.g. recipes/desta-tiny.yaml")
    p.add_argument(
        "overrides", nargs="*",
        help="key=value overrides, e.g. data.train=mine.jsonl optim.max_steps=20 data.batch_size=2 optim.lr=3e-4",
    )  # fmt: skip
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start over even if run.out_dir holds a checkpoint (it is replaced at the first save); by default "
        "the run resumes exactly from it, first finishing or rolling back a save that a kill interrupted",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    import json

    from desta.train.config import load_config

    cfg = load_config(args.recipe, args.overrides)  # validates before any work
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2, default=str))
        return 0
    from desta.train.train import train

    summary = train(cfg, resume=not args.no_resume)
    if "export" in summary:
        print(f"desta: trained {summary['steps']} steps; model written to {summary['export']}")
        print(f'desta: try it: desta ask CLIP.wav "What is said?" --model {summary["export"]}')
    return 0
