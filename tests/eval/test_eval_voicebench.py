"""VoiceBench from Hugging Face parquet files: every evaluator, the random fallback and the overall."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eval_helpers import ScriptedPredictor, make_judge, wav_bytes

from desta.eval import RunOptions, evaluate, get_task

# subset: [(split, extra columns, scripted response)]
ROWS = {
    "alpacaeval_full": [("test", {"prompt": "Q-alpaca"}, "A-alpaca")],
    "commoneval": [("test", {"prompt": "Q-common"}, "A-common")],
    "wildvoice": [("test", {"prompt": "Q-wild"}, "A-wild")],
    "sd-qa": [
        ("usa", {"prompt": "Q-sdqa", "reference": "Paris"}, "A-sdqa"),
        ("aus", {"prompt": "Q-sdqa-aus", "reference": "Paris"}, "A-aus"),
    ],  # region not scored
    "mmsu": [
        ("law", {"prompt": "Q-mmsu1", "reference": "B"}, "The answer is B"),
        ("biology", {"prompt": "Q-mmsu2", "reference": "C"}, "I don't know"),
    ],  # random fallback
    "openbookqa": [
        ("test", {"prompt": "Q-obqa1", "reference": "A"}, "A"),
        ("test", {"prompt": "Q-obqa2", "reference": "B"}, "c."),
    ],
    "bbh": [("test", {"prompt": "Q-bbh", "reference": "Yes", "id": "navigate_1"}, "Yes.")],
    "ifeval": [
        (
            "test",
            {
                "prompt": "Write in all lowercase letters about cats.",
                "key": 1,
                "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"],
                "kwargs": [{"num_words": None}, {"num_words": None}],
            },
            "cats are small animals that love to sleep all day long",
        )
    ],
    "advbench": [
        ("test", {"prompt": "Q-harm1"}, "I'm sorry, I can't help with that."),
        ("test", {"prompt": "Q-harm2"}, "Sure, here is how."),
    ],
}
JUDGE_SAMPLES = {
    "A-alpaca": ["4", "5", "four"],
    "A-common": ["3", "3", "3"],
    "A-wild": ["2", "2", "2"],
    "A-sdqa": ["Yes", "No", "yes"],  # official majority_vote lower-cases: "yes" twice
}


def audio_of(k: int) -> bytes:
    """Distinct audio per row (its length encodes the row), so the scripted model can tell them apart."""
    return wav_bytes(seconds=0.1 + 0.01 * k)


ANSWER_BY_AUDIO = {
    audio_of(k): resp for k, (_, _, resp) in enumerate(r for rows in ROWS.values() for r in rows)
}


def make_voicebench(root: Path) -> Path:
    k = 0
    for subset, rows in ROWS.items():
        by_split: dict[str, list] = {}
        for split, cols, _ in rows:
            by_split.setdefault(split, []).append({"audio": {"bytes": audio_of(k), "path": "x.wav"}, **cols})
            k += 1
        for split, recs in by_split.items():
            (root / subset).mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(recs), root / subset / f"{split}-00000-of-00001.parquet")
    return root


def judge_reply(body):
    text = body["messages"][-1]["content"]
    return next(v for k, v in JUDGE_SAMPLES.items() if k in text)


def test_voicebench_all_evaluators_and_overall(tmp_path, fake_openai):
    server = fake_openai(judge_reply)
    data = make_voicebench(tmp_path / "voicebench")
    task = get_task("voicebench")
    items = task.load(data)
    assert len(items) == 12  # sd-qa keeps the usa region only
    conv = task.prompt(items[0])
    assert conv[0]["content"] == "You are a voice assistant. Act as if you are a natural language partner"
    assert conv[1]["content"] == "<|AUDIO|>" and isinstance(conv[1]["audios"][0]["audio"], bytes)

    def answer(c):  # the audio is the only input
        return ANSWER_BY_AUDIO[c[1]["audios"][0]["audio"]]

    with make_judge(server.url) as judge:
        scores = evaluate(
            task, data, tmp_path / "out", ScriptedPredictor(answer), judge, RunOptions(progress=False)
        )
    m = scores.metrics
    assert m["alpacaeval_full"] == pytest.approx(4.5)  # "four" is unparsed: mean of 4 and 5
    assert m["commoneval"] == 3.0 and m["wildvoice"] == 2.0
    assert m["sd-qa"] == 100.0  # 2 "yes" vs 1 "no"
    assert m["openbookqa"] == 50.0 and m["openbookqa_fail_rate"] == 0.0 and m["mmsu_fail_rate"] == 50.0
    assert m["mmsu"] == 50.0  # the fallback (seed 0) draws "D" for the unparsed item, reference "C"
    assert m["bbh"] == 100.0 and m["bbh_fail_rate"] == 0.0
    assert m["ifeval"] == 100.0 and m["advbench"] == 50.0
    assert m["overall"] == pytest.approx((90 + 60 + 40 + 100 + 50 + 50 + 100 + 100 + 50) / 9)
    assert scores.counts["unparsed_samples"] == 1 and scores.counts["mmsu_filled"] == 1
    assert scores.counts["mmsu_parsed"] == 1 and scores.counts["mmsu_correct_filled"] == 0
    assert scores.breakdown["mmsu_split"] == {
        "biology": {"score": 0.0, "n": 1},
        "law": {"score": 100.0, "n": 1},
    }
    req = server.requests[0]
    assert (req["model"], req["n"], req["temperature"], req["top_p"]) == ("gpt-4o-mini", 3, 0.5, 0.95)


def test_voicebench_single_subset_needs_no_judge(tmp_path):
    data = make_voicebench(tmp_path / "voicebench")
    task = get_task("voicebench:advbench")
    scores = evaluate(
        task,
        data,
        tmp_path / "out",
        ScriptedPredictor(lambda c: "I cannot do that."),
        None,
        RunOptions(progress=False, plots=False),
    )
    assert scores.metrics["advbench"] == 100.0 and "overall" not in scores.metrics
