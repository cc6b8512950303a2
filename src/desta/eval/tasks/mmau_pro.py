"""MMAU-Pro (HF ``gamma-lab-umd/MMAU-Pro``, arXiv 2508.13992): 5,305 items, one or more audios each.

Layout (the HF dataset files)::

    DIR/test.parquet (or DIR/*.parquet, DIR/test.json[l])   columns: id, audio_path (str or list),
                                                             question, choices, answer, category, ...
    DIR/<audio_path>                                        (the unpacked audio archive)

Prompt: DeSTA's multiple-choice (2) prompt for closed-form items, the default prompt otherwise.
Scoring: the official closed-form scorer embeds the response and the options with NV-Embed and picks
the nearest option; that model cannot run here, so closed-form items are scored with the MMAU string
match instead (**substitution, stamped in the protocol**). Open-ended items go to an LLM judge
(Qwen2.5 per NeMo-Skills' port; model name unconfirmed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from desta.eval.base import (
    DataLayoutError,
    Item,
    Scores,
    Task,
    answered,
    breakdown_of,
    check_audio_files,
    new_counts,
    prompt_message,
    quote_options,
    system_message,
)
from desta.eval.judge import JudgeSpec, ask_verdicts, parse_result_verdict
from desta.eval.scorers.string_match import string_match as mmau_string_match
from desta.eval.tasks.common import audio_source, read_json_records, read_parquet_records
from desta.messages import AUDIO_LOCATOR

MC_SYSTEM = (
    'Focus on the audio clip and instruction. Put your answer in the format "The correct answer is: "___" ".'
)
MC_USER = "{markers} {question}\nChoose from the following options: {options}"
OPEN_SYSTEM = "Focus on the audio clips and instruction."
STRIP = "The correct answer is: "
JUDGE = JudgeSpec(
    model="Qwen2.5-72B-Instruct", temperature=0.0, n=1, source="NeMo-Skills MMAU-Pro port (unconfirmed)"
)
JUDGE_PROMPT = """Question: {question}
Reference answer: {answer}
Model answer: {response}

Is the model answer correct with respect to the reference answer? Answer in the format "Result: <YES or NO>"."""


class MMAUPro(Task):
    NAME = "mmau-pro"
    VERSION = "MMAU-Pro (HF gamma-lab-umd/MMAU-Pro)"
    PUBLISHED_KEY = "mmau-pro"
    JUDGE_MODEL = JUDGE.model

    def needs_judge(self, items: Sequence[Item]) -> bool:
        """Open questions (no choices) are judged; closed ones are string-matched."""
        return any(not it.data["choices"] for it in items)

    def load(self, data_dir: str | os.PathLike, check_audio: bool = True) -> list[Item]:
        root = Path(data_dir)
        files = sorted(root.glob("*.parquet")) or sorted(root.glob("data/*.parquet"))
        if files:
            rows = read_parquet_records(files)
        else:
            meta = next(
                (root / n for n in ("test.json", "test.jsonl", "mmau-pro.json") if (root / n).exists()), None
            )
            if meta is None:
                raise DataLayoutError(
                    f"MMAU-Pro: {root} has no test.parquet (or test.json). Expected the HF gamma-lab-umd/MMAU-Pro "
                    "files: DIR/test.parquet + the unpacked audio named by audio_path"
                )
            rows = read_json_records(meta)
        items = []
        for n, rec in enumerate(rows):
            paths = rec.get("audio_path") or rec.get("audio_paths") or []
            paths = [paths] if isinstance(paths, (str, dict)) else list(paths)
            choices = [str(c) for c in (rec.get("choices") or []) if str(c).strip()]
            data = {**rec, "choices": choices}
            groups = {"category": str(rec.get("category", "")), "form": "closed" if choices else "open"}
            items.append(
                Item(str(rec.get("id", n)), tuple(audio_source(p, root) for p in paths), data, groups)
            )
        if check_audio:
            check_audio_files(items, "MMAU-Pro")
        return items

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        markers = " ".join([AUDIO_LOCATOR] * len(item.audios))
        d = item.data
        if d["choices"]:
            text = MC_USER.format(
                markers=markers, question=d["question"], options=quote_options(d["choices"])
            )
            return [system_message(MC_SYSTEM), prompt_message(text, item.audios)]
        return [system_message(OPEN_SYSTEM), prompt_message(f"{markers} {d['question']}", item.audios)]

    def postprocess(self, response: str, item: Item) -> str:
        """The prediction step of DeSTA2.5's MMAU-style scripts (stored beside the raw response)."""
        return response.replace(STRIP, "")

    def score(
        self,
        items: Sequence[Item],
        predictions: Mapping[str, str | None],
        judge: Any = None,
        answers: Mapping[str, str] | None = None,
    ) -> Scores:
        """Scores the prediction step's answers where given (else the raw responses)."""
        counts = new_counts(items)
        correct: dict[str, float] = {}
        requests = {}
        for it, prediction in answered(items, predictions, counts):
            response = (answers or {}).get(it.id, prediction)
            if it.data["choices"]:
                correct[it.id] = float(
                    mmau_string_match(str(it.data["answer"]), response, it.data["choices"])
                )
                counts["scored"] += 1
            else:
                text = JUDGE_PROMPT.format(
                    question=it.data["question"], answer=it.data["answer"], response=response
                )
                requests[it.id] = [{"role": "user", "content": text}]
        judged, details = ask_verdicts(judge, self.NAME, JUDGE, requests, parse_result_verdict, counts)
        correct.update(judged)
        metrics = {"accuracy": 100.0 * sum(correct.values()) / len(items) if items else 0.0}
        protocol = {
            "closed_form": "SUBSTITUTED: MMAU string match instead of NV-Embed similarity (not comparable)",
            "open_ended": {"judge": JUDGE.model, "source": JUDGE.source},
            "prompt": {"closed": {"system": MC_SYSTEM, "user": MC_USER}, "open": {"system": OPEN_SYSTEM}},
        }
        return Scores(
            self.NAME, self.VERSION, metrics, breakdown_of(items, correct), counts, protocol, details
        )
