"""``desta eval TASK --data DIR (--model NAME | --endpoint URL | --text-llm NAME)``, or
``desta eval TASK --rescore [--predictions FILE] [--data DIR]`` to score existing predictions (desta's
or a benchmark's own output format) without the model and without audio."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from desta.model.options import GenerationOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="run a benchmark: predictions, official scoring, report and plots",
        description="Tasks: mmau, mmau-test, mmau-pro, mmar, sakura[:Track,hop], speech-ifeval[:part], "
        "voicebench[:subset], dynamic-superb:<TaskName>, air-bench-foundation, air-bench-chat. "
        "Rescore another toolkit's outputs: desta eval TASK --rescore --predictions FILE [--data DIR].",
    )
    p.add_argument("task", help="task name, e.g. mmau or voicebench:sd-qa")
    p.add_argument(
        "--data",
        default=None,
        help="benchmark folder in the layout the benchmark publishes, or hf:OWNER/DATASET to download it "
        "(rescoring needs only its metadata, and nothing when --predictions carries it)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="a desta model name or checkpoint (default model: 'default')")
    src.add_argument(
        "--endpoint", help="OpenAI-compatible base URL (e.g. http://localhost:8000/v1) of an audio model"
    )
    src.add_argument("--text-llm", help="text-only LLM reference run (Speech-IFEval forgetting rate)")
    p.add_argument(
        "--engine", default=None, metavar="NAME",
        help="the registered engine that runs --model (desta.infer.registry.ENGINES: local, endpoint, text-llm, "
        "vllm, ...; default: endpoint with --endpoint, text-llm with --text-llm, else local)",
    )  # fmt: skip
    p.add_argument(
        "--endpoint-model",
        default=None,
        help="model name sent to --endpoint (default: the one GET /models lists)",
    )
    p.add_argument("--api-key", default=None, help="API key for --endpoint (else $OPENAI_API_KEY or none)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="output folder (default runs/<task>/<model>)")
    p.add_argument("--limit", type=int, default=None, help="a stratified sample of N items (by class/track)")
    p.add_argument("--limit-per", type=int, default=None, help="at most N items per class/track")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=GenerationOptions().max_new_tokens)
    p.add_argument("--rescore", action="store_true", help="score existing predictions without the model")
    p.add_argument(
        "--predictions",
        default=None,
        help="file to rescore: desta predictions.jsonl or a benchmark's output format",
    )
    p.add_argument("--judge-endpoint", default=None, help="OpenAI-compatible base URL of the judge")
    p.add_argument(
        "--judge-model", default=None, help="substitute the official judge model (stamped on the result)"
    )
    p.add_argument("--judge-api-key", default=None, help="judge API key (default: $OPENAI_API_KEY)")
    p.add_argument("--judge-timeout", type=float, default=60.0)
    p.add_argument(
        "--reference-scores", default=None, help="scores.json of a text-only reference run (Speech-IFEval Δ)"
    )
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=_run)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("._") or "model"


def default_out(task_name: str, model: str | None) -> Path:
    """runs/<task>/<model>: runs of different models never share a folder."""
    return Path("runs") / _slug(task_name.replace(":", "_")) / _slug(model or "default")


def engine_name(args: argparse.Namespace) -> str:
    """The registered engine a run uses: --engine, else what --endpoint / --text-llm / --model imply."""
    from desta.eval.base import EvalError

    implied = "endpoint" if args.endpoint else "text-llm" if args.text_llm else None
    name = args.engine or implied or "local"
    if implied and name != implied:
        raise EvalError(f"--{implied} runs the {implied} engine, not {name!r}; drop --engine or --{implied}")
    return name


def _predictor(args: argparse.Namespace):
    from desta.eval.predictors import (
        EnginePredictor,
        LocalModelPredictor,
        OpenAIEndpointPredictor,
        TextLLMPredictor,
    )

    decode = GenerationOptions(max_new_tokens=args.max_new_tokens)  # greedy
    name = engine_name(args)
    # the three named predictors keep the settings earlier runs recorded (their runs resume)
    if name == "endpoint":
        if not args.endpoint:
            from desta.eval.base import EvalError

            raise EvalError("the endpoint engine needs --endpoint URL")
        return OpenAIEndpointPredictor(args.endpoint, args.endpoint_model, args.api_key, decode)
    model = None if args.model in (None, "default") else args.model
    if name == "text-llm":
        return TextLLMPredictor.load(args.text_llm or model, decode)
    if name == "local":
        return LocalModelPredictor.load(model, args.device, decode)
    from desta.infer.registry import EngineOptions, make_engine

    engine = make_engine(name, model, EngineOptions(device=args.device, api_key=args.api_key))
    return EnginePredictor(engine, decode, backend=name)


def _run(args: argparse.Namespace) -> int:
    from desta.eval.base import EvalError
    from desta.eval.judge import Judge, JudgeOptions
    from desta.eval.registry import get_task
    from desta.eval.run import RunOptions, evaluate

    task = get_task(args.task)
    if args.predictions and not args.rescore:
        raise EvalError("--predictions FILE is for --rescore")
    if not args.rescore and args.data is None:
        raise EvalError("--data DIR is needed to run the model (only --rescore can do without it)")
    predictor = None if args.rescore else _predictor(args)
    if args.out:
        out = Path(args.out)
    elif args.rescore and args.predictions:
        out = Path(args.predictions).parent / f"rescore-{_slug(task.NAME.replace(':', '_'))}"
    else:
        out = default_out(task.NAME, getattr(predictor, "name", None) or args.model)
    judge = None
    if args.judge_endpoint:
        out.mkdir(parents=True, exist_ok=True)
        judge = Judge(
            JudgeOptions(
                base_url=args.judge_endpoint,
                api_key=args.judge_api_key,
                model=args.judge_model,
                timeout_s=args.judge_timeout,
                cache_path=str(out / "judgments.sqlite"),
            )
        )
    options = RunOptions(
        limit=args.limit,
        limit_per=args.limit_per,
        seed=args.seed,
        batch_size=args.batch_size,
        rescore=args.rescore,
        predictions=args.predictions,
        text_only=engine_name(args) == "text-llm",
        plots=not args.no_plots,
    )
    data = args.data
    if data is not None and data.startswith("hf:"):  # users with hub access: fetch the dataset files
        from desta.eval.tasks.common import load_from_hub

        repo = data[3:]
        data = str(
            load_from_hub(repo, None, Path.home() / ".cache" / "desta" / "eval" / repo.replace("/", "--"))
        )
    try:
        scores = evaluate(task, data, out, predictor, judge, options, args.reference_scores)
    finally:
        if judge is not None:
            judge.close()
        if hasattr(predictor, "close"):
            predictor.close()
    print(
        json.dumps(
            {"task": scores.task, "metrics": dict(scores.metrics), "counts": dict(scores.counts)}, indent=2
        )
    )
    print(f"report: {out / 'report.md'}")
    return 0
