"""``desta eval TASK --data DIR (--model NAME | --endpoint URL | --text-llm NAME | --rescore)``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="run a benchmark: predictions, official scoring, report and plots",
        description="Tasks: mmau, mmau-test, mmau-pro, mmar, sakura[:Track,hop], speech-ifeval[:part], "
        "voicebench[:subset], dynamic-superb:<TaskName>, air-bench-foundation, air-bench-chat",
    )
    p.add_argument("task", help="task name, e.g. mmau or voicebench:sd-qa")
    p.add_argument(
        "--data",
        required=True,
        help="benchmark folder in the layout the benchmark publishes, or hf:OWNER/DATASET to download it",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="a desta model name or checkpoint (default model: 'default')")
    src.add_argument(
        "--endpoint", help="OpenAI-compatible base URL (e.g. http://localhost:8000/v1) of an audio model"
    )
    src.add_argument("--text-llm", help="text-only LLM reference run (Speech-IFEval forgetting rate)")
    p.add_argument("--endpoint-model", default="default", help="model name sent to --endpoint")
    p.add_argument("--api-key", default=None, help="API key for --endpoint (else none)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="output folder (default runs/<task>)")
    p.add_argument("--limit", type=int, default=None, help="first N items only")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--rescore", action="store_true", help="score existing predictions without the model")
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


def _run(args: argparse.Namespace) -> int:
    from desta.eval.judge import Judge, JudgeOptions
    from desta.eval.predictors import (
        DecodeOptions,
        LocalModelPredictor,
        OpenAIEndpointPredictor,
        TextLLMPredictor,
    )
    from desta.eval.registry import get_task
    from desta.eval.run import RunOptions, evaluate

    task = get_task(args.task)
    out = Path(args.out or Path("runs") / task.NAME.replace(":", "_"))
    decode = DecodeOptions(max_new_tokens=args.max_new_tokens)
    predictor = None
    if not args.rescore:
        if args.endpoint:
            predictor = OpenAIEndpointPredictor(args.endpoint, args.endpoint_model, args.api_key, decode)
        elif args.text_llm:
            predictor = TextLLMPredictor.load(args.text_llm, decode)
        else:
            model = None if args.model in (None, "default") else args.model
            predictor = LocalModelPredictor.load(model, args.device, decode)
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
        batch_size=args.batch_size,
        rescore=args.rescore,
        text_only=bool(args.text_llm),
        plots=not args.no_plots,
    )
    data = args.data
    if data.startswith("hf:"):  # users with hub access: fetch the dataset files into the cache
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
    print(
        json.dumps(
            {"task": scores.task, "metrics": dict(scores.metrics), "counts": dict(scores.counts)}, indent=2
        )
    )
    print(f"report: {out / 'report.md'}")
    return 0
