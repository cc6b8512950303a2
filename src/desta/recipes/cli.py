"""`desta recipe NAME`: a whole named recipe end to end (data, training, evaluation)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipe", help="run a whole named recipe end to end (data, training, evaluation)")
    p.add_argument("name", choices=["tiny"], help="tiny: rebuild desta-tiny on a CPU")
    p.add_argument(
        "--out", default="runs/tiny", help="working folder (stages already done there are skipped)"
    )
    from desta.model.precision import PRECISIONS
    from desta.recipes.tiny import TinyOptions

    d = TinyOptions()
    p.add_argument("--num-clips", type=int, default=d.num_clips)
    p.add_argument(
        "--max-records", type=int, default=d.max_records, help="training clips sent to self-generation"
    )
    p.add_argument(
        "--variants",
        default=",".join(d.variants),
        help="self (self-generated targets) and/or task (raw labels)",
    )
    p.add_argument(
        "--ship", action="store_true", help="install the trained adapter as the packaged desta-tiny"
    )
    p.add_argument(
        "--realdata",
        default=None,
        metavar="DIR",
        help="train on real recordings: the realdata folder (metadata.csv + audio/; see docs/training.md)",
    )
    p.add_argument(
        "--tuxpaint",
        default=None,
        metavar="DIR",
        help="with --realdata: also the Tux Paint stamps (apt-get install tuxpaint-stamps-default;"
        " /usr/share/tuxpaint/stamps)",
    )
    p.add_argument(
        "--compare-with",
        default=None,
        metavar="MODEL",
        help="with --realdata: a model also scored on the real held-out suite, the card's 'before' (e.g. desta-tiny)",
    )
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument(
        "--precision",
        default=d.precision,
        choices=PRECISIONS,
        help="fast: bf16 where the CPU computes it natively",
    )
    p.set_defaults(func=run_recipe)


def run_recipe(args: argparse.Namespace) -> int:
    from desta.recipes.tiny import REAL_OPTIONS, TinyOptions, run_tiny

    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    real = dict(REAL_OPTIONS) if args.realdata else {}
    threads = real.pop("threads", args.threads) if args.threads == TinyOptions().threads else args.threads
    run_tiny(
        TinyOptions(
            **real,
            out_dir=args.out,
            num_clips=args.num_clips,
            max_records=args.max_records,
            variants=variants,
            ship=args.ship,
            realdata=args.realdata or "",
            tuxpaint=args.tuxpaint or "",
            compare_with=args.compare_with or "",
            threads=threads,
            precision=args.precision,
        )
    )
    return 0
