"""MMAU-Pro: closed questions string-matched on the prediction step's answer; open questions judged,
and the judge required before any generation when the loaded items include open ones."""

from __future__ import annotations

import json

import pytest
from eval_helpers import ScriptedPredictor, write_wav

from desta.eval import RunOptions, evaluate, get_task
from desta.eval.base import JudgeUnavailableError


def make_pro(root, with_open: bool):
    rows = [
        {
            "id": "c1",
            "audio_path": "a/c1.wav",
            "question": "Which?",
            "choices": ["The piano", "Guitar"],
            "answer": "Guitar",
            "category": "music",
        }
    ]
    if with_open:
        rows.append(
            {
                "id": "o1",
                "audio_path": "a/o1.wav",
                "question": "Describe it.",
                "choices": [],
                "answer": "a tone",
                "category": "sound",
            }
        )
    for r in rows:
        write_wav(root / r["audio_path"])
    (root / "test.json").write_text(json.dumps(rows))
    return root


def test_closed_items_score_the_stored_answer_and_need_no_judge(tmp_path):
    data = make_pro(tmp_path / "pro", with_open=False)
    out = tmp_path / "out"
    pred = ScriptedPredictor(lambda c: "The correct answer is: Guitar")
    scores = evaluate(get_task("mmau-pro"), data, out, pred, None, RunOptions(progress=False, plots=False))
    assert scores.metrics["accuracy"] == 100.0  # "the" of "The piano" is gone with the prefix
    line = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert line["response"] == "The correct answer is: Guitar" and line["answer"] == "Guitar"


def test_open_items_need_the_judge_before_generation(tmp_path):
    data = make_pro(tmp_path / "pro", with_open=True)
    pred = ScriptedPredictor(lambda c: "x")
    with pytest.raises(JudgeUnavailableError, match="Checked before generating"):
        evaluate(get_task("mmau-pro"), data, tmp_path / "out", pred, None, RunOptions(progress=False))
    assert pred.seen == []
