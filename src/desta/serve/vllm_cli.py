"""``desta export-vllm [MODEL] OUT``: write a folder that ``vllm serve`` loads with desta's plugin."""

from __future__ import annotations

import argparse

from desta.serve.vllm_export import DTYPES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-vllm",
        help="export a desta model into a folder vLLM serves (LoRA merged, tokenizer with the audio token)",
        description="Export MODEL (as `desta ask --model` takes it; default: the embedded desta-tiny) to OUT. "
        "Serve it with `vllm serve OUT` once desta is installed in vLLM's environment.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="[MODEL] OUT",
        help="model folder, name or hub id (optional), then the output folder",
    )
    p.add_argument(
        "--dtype", default=None, choices=DTYPES, help="weights' dtype (default: as loaded, fp32 on CPU)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from desta.errors import DeSTAError
    from desta.serve.vllm_export import ExportOptions, export_vllm

    if len(args.paths) > 2:
        raise DeSTAError(f"give at most MODEL and OUT, got {len(args.paths)} paths: {' '.join(args.paths)}")
    model, out = (None, args.paths[0]) if len(args.paths) == 1 else args.paths
    folder = export_vllm(model, out, ExportOptions(dtype=args.dtype, overwrite=args.overwrite))
    print(f"exported to {folder}; serve it with: vllm serve {folder}")
    return 0
