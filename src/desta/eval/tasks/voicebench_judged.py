"""VoiceBench's judge-scored subsets (``src/api_judge.py`` + ``src/evaluator/{open,qa}.py``).

open (alpacaeval, commoneval, wildvoice, mtbench first turn): gpt-4o-mini, 3 samples at T=0.5,
top_p=0.95, each a 1-5 score; the item's score is their mean. qa (sd-qa): the same judge answers
Yes/No three times; the majority decides (the GPT score; PEDANT via qa_metrics is not computed).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from desta.eval.base import Item
from desta.eval.judge import JudgeSpec, Judgment, ask_many, require_judge, tally_judgments
from desta.eval.tasks.voicebench_rules import SubsetResult, split_answered

JUDGE = JudgeSpec(
    model="gpt-4o-mini",
    temperature=0.5,
    top_p=0.95,
    n=3,
    max_tokens=1024,
    source="MatthewCYM/VoiceBench api_judge.py",
)
JUDGE_SYSTEM = "You are a helpful assistant who tries to help answer the user's question."
META_PROMPT_OPEN = """
I need your help to evaluate the performance of several models in the speech interaction scenario. The models will receive a speech input from the user, which they need to understand and respond to with a speech output.
Your task is to rate the model's responses based on the provided user input transcription [Instruction] and the model's output transcription [Response].

Please evaluate the response on a scale of 1 to 5:
1 point: The response is largely irrelevant, incorrect, or fails to address the user's query. It may be off-topic or provide incorrect information.
2 points: The response is somewhat relevant but lacks accuracy or completeness. It may only partially answer the user's question or include extraneous information.
3 points: The response is relevant and mostly accurate, but it may lack conciseness or include unnecessary details that don't contribute to the main point.
4 points: The response is relevant, accurate, and concise, providing a clear answer to the user's question without unnecessary elaboration.
5 points: The response is exceptionally relevant, accurate, and to the point. It directly addresses the user's query in a highly effective and efficient manner, providing exactly the information needed.

Below are the transcription of user's instruction and models' response:
### [Instruction]: {prompt}
### [Response]: {response}

After evaluating, please output the score only without anything else.
You don't need to provide any explanations.
"""
META_PROMPT_QA = """### Question
{prompt}

### Reference answer
{reference}

### Candidate answer
{response}

Is the candidate answer correct based on the question and reference answer?<SP>
Please only output a single "Yes" or "No". Do not output anything else.""".replace(
    "<SP>", " "
)  # official text has a trailing space


_RATING = re.compile(r"\[\[(\d+)\]\]")  # official extract_rating: pattern = r"\[\[(\d+)\]\]"


def parse_open_score(text: str) -> float | None:
    """One judge sample's score as ``OpenEvaluator.evaluate`` reads it: ``float(score)``, else the
    ``[[n]]`` of ``extract_rating``. Where both fail the official raises NotImplementedError; here the
    sample is unparsed (counted) instead."""
    try:
        return float(text)
    except ValueError:
        m = _RATING.search(text)
        return int(m.group(1)) if m else None


def parse_yes_no(text: str) -> str:
    """One judge sample as the official majority vote sees it: ``api_judge.py`` keeps
    ``message.content.strip()``, ``majority_vote`` lower-cases it (``"Yes."`` stays ``"yes."``)."""
    return text.strip().lower()


def first_turn(prompt: Any) -> str:
    """mtbench stores a list of turns; the other open subsets a string."""
    if isinstance(prompt, (list, tuple)):
        return str(prompt[0]) if prompt else ""
    return str(prompt)


def mean_score(values: Sequence[int]) -> float:
    """open: the mean of the parsed 1-5 samples."""
    return sum(float(v) for v in values) / len(values)


def majority_yes(values: Sequence[str]) -> float:
    """qa: official ``majority_vote``: ``final_answer = max(set(scores), key=scores.count)``, then
    ``True if final_answer == 'yes'``. The most frequent sample text wins, so ``yes`` counts only when
    it is exactly ``yes`` and more frequent than every other text. Differs on ties: the official
    winner among equally frequent texts depends on set order (the string hash seed); here a tie is No."""
    counts = Counter(values)
    yes = counts.get("yes", 0)
    return float(yes > 0 and all(yes > c for v, c in counts.items() if v != "yes"))


def _messages(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def score_judged(
    kind: str, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any, task: str
) -> SubsetResult:
    """``kind`` ``open`` (mean 1-5; unscored items count 1) or ``qa`` (Yes-majority %; unscored 0)."""
    ok, counts = split_answered(items, predictions)
    counts.update(scored=0, judge_failures=0, unparsed=0, unparsed_samples=0)
    requests = {}
    for it, response in ok:
        if kind == "open":
            text = META_PROMPT_OPEN.replace("{prompt}", first_turn(it.data["prompt"]))
            text = text.replace("{response}", response)
        else:
            # Official: meta_prompt_qa.replace('{prompt}', item['prompt']).replace('{reference}',
            # item['reference']).replace('{response}', item['response']), one after the other.
            text = (
                META_PROMPT_QA.replace("{prompt}", str(it.data["prompt"]))
                .replace("{reference}", str(it.data["reference"]))
                .replace("{response}", response)
            )
        requests[it.id] = _messages(text)
    floor = 1.0 if kind == "open" else 0.0
    per_item = {it.id: floor for it in items}
    judgments: dict[str, Judgment] = {}
    if requests:
        parse = parse_open_score if kind == "open" else parse_yes_no
        judgments = ask_many(require_judge(judge, task, JUDGE), JUDGE, requests, parse)
    counts["unparsed_samples"] = sum(j.unparsed for j in judgments.values())
    scores, details = tally_judgments(judgments, counts, mean_score if kind == "open" else majority_yes)
    per_item.update(scores)
    n = len(items)
    mean = sum(per_item.values()) / n if n else 0.0
    value = mean if kind == "open" else 100.0 * mean
    return SubsetResult(value, {}, per_item, details, counts)
