"""``desta data ...``: build corpora, manifests, seed descriptions, self-generated targets and reports.

    desta data synth OUT [--num-clips N] [--seed S] [--engines espeak,flite,...] [--test-fraction F]
    desta data manifest SOURCE ROOT -o records.jsonl
    desta data describe records.jsonl [--limit N]
    desta data generate records.jsonl -o OUT --backend transformers|openai|vllm|ray|fake --model ID
                        [--base-url URL] [--num-per-record N] [--seed S] [--max-new-tokens N] [--batch-size N]
                        [--wait] [--max-error-rate F]
    desta data report OUT

Each subcommand is a thin call into a library function of ``desta.data``; ``--help`` shows every default
(generation defaults come from ``GenerateConfig``, ``SamplingParams`` and the backends' table,
``desta.data.backends.BACKENDS``, which also names the ``--backend`` choices).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from desta.errors import DeSTAError


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _synth(args: argparse.Namespace) -> int:
    from desta.data.synth import ENGINES, LANGUAGES, SynthConfig, build_corpus

    cfg = SynthConfig(
        num_clips=args.num_clips,
        seed=args.seed,
        engines=_csv(args.engines) if args.engines else ENGINES,
        languages=_csv(args.languages) if args.languages else tuple(LANGUAGES),
        test_fraction=args.test_fraction,
        workers=args.workers,
        progress=not args.quiet,
    )
    s = build_corpus(args.out, cfg)
    print(json.dumps({"out": s.out_dir, "clips": s.clips, "per_corpus": dict(s.per_corpus), "per_split": dict(s.per_split),
                      "unavailable": s.unavailable, "failed": len(s.failed)}, indent=2))  # fmt: skip
    return 0 if s.clips else 1


def _option_value(text: str):
    """A reader option's value: JSON where it parses (numbers, true/false, lists), else the text."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def _manifest(args: argparse.Namespace) -> int:
    from desta.data.records import write_records
    from desta.data.sources import iter_records

    options = {}
    for item in args.option or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise DeSTAError(f"--option {item!r}: expected NAME=VALUE, e.g. --option split=train")
        options[name.strip()] = _option_value(value)
    rejects: list[dict] = []
    n = write_records(args.output, iter_records(args.source, args.root, rejects=rejects, **options))
    if rejects and args.rejects:
        from desta.data.records import write_jsonl

        write_jsonl(args.rejects, rejects)
    print(
        f"{n} records -> {args.output}; {len(rejects)} items rejected"
        + (f" -> {args.rejects}" if rejects and args.rejects else "")
    )
    for r in rejects[:5]:
        print(f"  rejected {r.get('path')}: {r.get('reason')}", file=sys.stderr)
    return 0


def _describe(args: argparse.Namespace) -> int:
    from desta.data.describe import seed_description
    from desta.data.records import read_records

    for i, rec in enumerate(read_records(args.records)):
        if args.limit is not None and i >= args.limit:
            break
        try:
            print(f"{rec.id}\t{seed_description(rec)}")
        except Exception as err:  # one bad record must not hide the others
            print(f"{rec.id}\t<error: {err}>", file=sys.stderr)
    return 0


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def parse_weights(items: list[str] | None) -> tuple[tuple[str, float], ...]:
    """``["compound=3", "format=0.5"]`` -> ``(("compound", 3.0), ("format", 0.5))``."""
    out = []
    for item in items or []:
        name, _, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not name.strip() or weight < 0:
            raise DeSTAError(
                f"--weight {item!r}: expected CATEGORY=WEIGHT with a weight >= 0, e.g. compound=3"
            )
        out.append((name.strip(), weight))
    return tuple(out)


def parse_engine_args(items: list[str] | None) -> dict[str, Any]:
    """``["max_model_len=4096", "enforce_eager=true"]`` -> ``{"max_model_len": 4096, "enforce_eager": True}``
    (values read as JSON where they parse, else kept as strings: ``dtype=bfloat16``)."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name.isidentifier():
            raise DeSTAError(f"--engine-arg {item!r}: expected NAME=VALUE, e.g. max_model_len=4096 or dtype=bfloat16")
        try:
            out[name] = json.loads(value)
        except ValueError:
            out[name] = value
    return out


def _generate(args: argparse.Namespace) -> int:
    from desta.data.backends import BackendSpec, backend_options, make_backend, suggested_sizes
    from desta.data.filters import FilterConfig
    from desta.data.generate import SamplingParams
    from desta.data.pipeline import GenerateConfig, run_generation
    from desta.data.records import read_records
    from desta.data.summary import GenerationAborted

    engine = args.ray_engine if args.backend == "ray" else args.backend
    batch_size, max_new_tokens = suggested_sizes(engine, args.device)
    sampling = SamplingParams(
        max_new_tokens=args.max_new_tokens or max_new_tokens, temperature=args.temperature, top_p=args.top_p
    )
    cfg = GenerateConfig(
        num_per_record=args.num_per_record,
        seed=args.seed,
        batch_size=args.batch_size or batch_size,
        shard_size=args.shard_size,
        sampling=sampling,
        filters=FilterConfig(drop_truncated=not args.trim_truncated, trim_truncated=args.trim_truncated),
        resample=args.resample,
        resample_temperature=args.resample_temperature,
        category_weights=parse_weights(args.weight),
        enrich=args.enrich,
        progress=not args.quiet,
        wait=args.wait,
    )
    options = backend_options(engine, vars(args), parse_engine_args(args.engine_arg))
    records_path = Path(args.records)
    if not records_path.is_file():
        what = "is a folder, not a records file" if records_path.is_dir() else "does not exist"
        raise DeSTAError(
            f"records file {records_path} {what}; write one with `desta data manifest` or `desta data synth`"
        )
    total = _count_lines(records_path)
    records = read_records(records_path)
    if args.limit is not None:
        import itertools

        records, total = itertools.islice(records, args.limit), min(total, args.limit)
    try:
        if args.backend == "ray":
            from desta.data.ray_pipeline import RayOptions, run_generation_ray

            opts = RayOptions(replicas=args.replicas, num_gpus=args.num_gpus, address=args.ray_address)
            spec = BackendSpec(engine, args.model, tuple(options.items()))
            summary = run_generation_ray(records, args.output, spec, cfg, opts)
        else:
            backend = make_backend(engine, args.model, **options)
            try:
                summary = run_generation(records, args.output, backend, cfg, total_records=total)
            finally:
                backend.close()
    except GenerationAborted as err:
        summary = err.summary
    status = summary.conclude(args.max_error_rate)
    print(json.dumps(summary.to_dict(), indent=2))
    for line in summary.reject_lines(Path(args.output)):
        print(line, file=sys.stderr)
    print(f"desta data generate: {summary.outcome}", file=sys.stderr)
    if args.report and summary.aborted is None:
        from desta.data.report import build_report

        build_report(args.output)
        print(f"report -> {Path(args.output) / 'report.md'}")
    return status


def _report(args: argparse.Namespace) -> int:
    from desta.data.report import build_report

    rep = build_report(args.out, plots=not args.no_plots)
    print(Path(args.out) / "report.md")
    print(
        json.dumps(
            {k: rep[k] for k in ("kept", "rejected", "keep_rate", "per_corpus", "rejects_by_reason")},
            indent=2,
            ensure_ascii=False,
        )
    )
    return 0


def _backend_names() -> tuple[str, ...]:
    from desta.data.backends import BACKENDS

    return tuple(BACKENDS)


def _sizes_help(which: int) -> str:
    from desta.data.backends import SUGGESTED_SIZES

    return ", ".join(f"{name} {sizes[which]}" for name, sizes in SUGGESTED_SIZES.items())


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` where there is one; flags and options without a fixed default say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool) or action.help is None:
            return action.help
        return super()._get_help_string(action)


GENERATE_EPILOG = """exit status: 0 done (or nothing left to do); 1 nothing could be generated, backend errors
above --max-error-rate, or another run holds the output folder (see --wait); 3 aborted because the endpoint is unusable (wrong key, URL or model;
unreachable): nothing was stored as rejected, rerun after the fix. The openai backend reads its API
key from $OPENAI_API_KEY."""


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="build corpora and self-generated training data")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
        "synth",
        help="build an offline labeled corpus with Debian TTS engines and recordings",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("out", help="output folder (audio/, manifest.jsonl, train.jsonl, test.jsonl)")
    p.add_argument("--num-clips", type=int, default=100, help="clips to synthesise")
    p.add_argument("--seed", type=int, default=0, help="seed of sentences, voices and the split")
    p.add_argument(
        "--engines",
        help="comma list of espeak,flite,festival,pocketsphinx,allison,freedesktop,noisy (default all)",
    )  # desta.data.synth.ENGINES and LANGUAGES: not imported here, for a fast `desta --help`
    p.add_argument(
        "--languages",
        help="comma list for espeak among en,de,fr,es,it,ru,zh (default all; festival's voices speak their own)",
    )
    p.add_argument(
        "--test-fraction", type=float, default=0.2, help="held-out share (other sentences and voices)"
    )
    p.add_argument("--workers", type=int, default=2, help="parallel synthesis processes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_synth)

    p = sub.add_parser("manifest", help="read a corpus folder into an AudioRecord JSONL")
    p.add_argument("source", help="source name, e.g. librispeech, vctk, esc50, table, lhotse")
    p.add_argument("root", help="corpus root folder (or manifest file for table/lhotse)")
    p.add_argument("-o", "--output", required=True, help="records.jsonl to write")
    p.add_argument("--rejects", help="write the skipped items here (JSONL)")
    p.add_argument(
        "--option",
        action="append",
        metavar="NAME=VALUE",
        help="a reader option (repeatable), e.g. --option split=train for realdata and tuxpaint",
    )
    p.set_defaults(func=_manifest)

    p = sub.add_parser(
        "describe", help="print the seed description of every record", formatter_class=_HelpFormatter
    )
    p.add_argument("records", help="records.jsonl")
    p.add_argument("--limit", type=int, help="only the first N records")
    p.set_defaults(func=_describe)

    from desta.data.generate import SamplingParams
    from desta.data.pipeline import GenerateConfig

    gen, samp = GenerateConfig(), SamplingParams()  # the defaults live there, not here
    p = sub.add_parser(
        "generate",
        help="self-generate training targets with the backbone LLM (resumable)",
        formatter_class=_HelpFormatter,
        epilog=GENERATE_EPILOG,
    )
    p.add_argument("records", help="records.jsonl")
    p.add_argument(
        "-o", "--output", required=True, help="output folder (shard-*.jsonl, rejects.jsonl, cache.sqlite)"
    )
    p.add_argument(
        "--backend", choices=(*_backend_names(), "ray"), default="transformers",
        help="where the text LLM runs",
    )  # fmt: skip
    p.add_argument(
        "--model", default="offline:smollm2-135m-instruct", help="model id (served model name for openai)"
    )
    p.add_argument(
        "--base-url", default="http://127.0.0.1:8000/v1", help="OpenAI-compatible endpoint (openai backend)"
    )
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight (openai backend)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per try (openai backend)")
    p.add_argument("--device", default="cpu", help="transformers backend device")
    p.add_argument(
        "--num-per-record", type=int, default=gen.num_per_record, help="requests (instructions) per record"
    )
    p.add_argument(
        "--seed", type=int, default=gen.seed, help="run seed; instructions and sampling derive from it"
    )
    p.add_argument(
        "--max-new-tokens", type=int, metavar="N",
        help=f"longest target; default per backend: {_sizes_help(1)}",
    )  # fmt: skip
    p.add_argument("--temperature", type=float, default=samp.temperature, help="sampling temperature")
    p.add_argument("--top-p", type=float, default=samp.top_p, help="nucleus sampling mass")
    p.add_argument(
        "--batch-size", type=int, metavar="N",
        help=f"requests per backend call (the progress bar moves once per batch); default per backend: {_sizes_help(0)}",
    )  # fmt: skip
    p.add_argument("--shard-size", type=int, default=gen.shard_size, help="rows per output shard")
    p.add_argument("--limit", type=int, help="only the first N records")
    p.add_argument(
        "--resample", type=int, default=gen.resample,
        help="extra tries with new seeds for answers that a filter or the grounding check rejects",
    )  # fmt: skip
    p.add_argument(
        "--resample-temperature", type=float, help="temperature of those tries (default: --temperature)"
    )
    p.add_argument(
        "--weight", action="append", metavar="CATEGORY=W",
        help="instruction task mix, repeatable (e.g. --weight compound=3 --weight format=0.5); unnamed categories weigh 1",
    )  # fmt: skip
    p.add_argument(
        "--trim-truncated", action="store_true",
        help="keep answers that hit --max-new-tokens up to their last full sentence instead of dropping them",
    )  # fmt: skip
    p.add_argument("--enrich", action="store_true", help="measure missing attributes from the audio first")
    p.add_argument(
        "--wait", action="store_true",
        help="if another run is writing the output folder, wait for it to finish instead of failing at once",
    )  # fmt: skip
    p.add_argument(
        "--max-error-rate", type=float, default=0.1, metavar="F",
        help="exit with status 1 when backend errors exceed this share of the requests tried",
    )  # fmt: skip
    p.add_argument(
        "--ray-engine",
        choices=_backend_names(),
        default="vllm",
        help="backend inside each Ray replica",
    )
    p.add_argument(
        "--engine-arg", action="append", metavar="NAME=VALUE",
        help="vllm engine: an argument of vllm.LLM, repeatable (e.g. --engine-arg max_model_len=4096 "
        "--engine-arg tensor_parallel_size=2 --engine-arg dtype=bfloat16); values read as JSON where they parse",
    )  # fmt: skip
    p.add_argument("--replicas", type=int, default=1, help="Ray: LLM replicas (one per GPU)")
    p.add_argument("--num-gpus", type=float, default=0.0, help="Ray: GPUs per replica")
    p.add_argument("--ray-address", help="Ray: cluster address (default: local)")
    p.add_argument("--report", action="store_true", help="write report.json/report.md at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_generate)

    p = sub.add_parser(
        "report", help="write report.json, report.md and histograms for a generate output folder"
    )
    p.add_argument("out")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=_report)
