"""The `desta` command line: one entry point, each subcommand a thin call into a library function.

Subcommand groups live next to the code they call (`desta/<part>/cli.py`), each exposing
``register(subparsers)``; this file only wires them together so that importing one part never
imports the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from desta.errors import DeSTAError

# module -> registers these subcommands
_PARTS = (
    "desta.infer.cli",  # ask, transcribe
    "desta.data.cli",  # data ...
    "desta.train.cli",  # train
    "desta.recipes.cli",  # recipe
    "desta.serve.cli",  # serve, demo-web
    "desta.serve.vllm_cli",  # export-vllm
    "desta.eval.cli",  # eval
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds ``(default: X)`` once: not where there is no default (``None``, a flag) and not where the
    help text already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if (
            text is None
            or action.default is None
            or action.default is argparse.SUPPRESS
            or isinstance(action.default, bool)
            or "default" in text.lower()
        ):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's ``--help`` shows the defaults (subparsers inherit the parser class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand; with ``command``, the parts are registered in order only up to
    the one that registers it (``desta ask`` imports only ``desta.infer.cli``: a cold ask does not pay
    for importing the data, training, serving and evaluation parts)."""
    parser = _Parser(prog="desta", description="DeSTA2.5-Audio toolkit")
    parser.add_argument("--version", action="version", version=f"desta {importlib.import_module('desta').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _PARTS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:  # a part whose optional dependency is missing
            if err.name and err.name.startswith("desta"):
                continue
            raise
        module.register(sub)
        if command is not None and command in sub.choices:
            break
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # the subcommand is the first argument (the top-level options, --help and --version, end the program)
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except DeSTAError as err:
        print(f"desta: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("desta: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
