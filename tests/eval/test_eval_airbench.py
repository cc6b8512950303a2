"""AIR-Bench foundation (letter parser) and chat (GPT-4 pairwise score with position swap)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import ScriptedPredictor, make_judge, user_text, write_wav

from desta.eval import RunOptions, evaluate, get_task


def make_foundation(root: Path) -> tuple[Path, dict[str, str]]:
    rows = [
        (
            "Speaker_Gender_Recognition",
            "common_voice",
            "Who speaks?",
            ["male", "female"],
            "female",
            "B",
        ),  # right
        (
            "Speaker_Gender_Recognition",
            "common_voice",
            "Who talks?",
            ["male", "female"],
            "male",
            "The answer is B.",
        ),
        (
            "Speech_emotion_recognition",
            "iemocap",
            "Which emotion?",
            ["sad", "happy", "angry", "neutral"],
            "angry",
            "I think it is anger",
        ),  # unparsed
    ]
    meta = []
    for n, (task, ds, q, ch, gt, _) in enumerate(rows):
        rec = {
            "path": f"{n}.wav",
            "task_name": task,
            "dataset_name": ds,
            "question": q,
            "answer_gt": gt,
            "uniq_id": n,
            "choice_a": ch[0],
            "choice_b": ch[1],
        }
        if len(ch) > 2:
            rec.update(choice_c=ch[2], choice_d=ch[3])
        meta.append(rec)
        write_wav(root / f"{task}_{ds}" / f"{n}.wav")
    (root / "Foundation_meta.json").write_text(json.dumps(meta))
    return root, {r[2]: r[5] for r in rows}


def test_air_bench_foundation(tmp_path):
    data, answers = make_foundation(tmp_path / "AIR")
    task = get_task("air-bench-foundation")
    conv = task.prompt(task.load(data)[2])
    assert conv[1]["content"] == (
        "<|AUDIO|> Choose the most suitable answer from options A, B, C, and D to respond the question in next line, "
        "you may only choose A or B or C or D.\nWhich emotion?\nA. sad\nB. happy\nC. angry\nD. neutral"
    )
    pred = ScriptedPredictor(lambda c: next(v for k, v in answers.items() if k in user_text(c)))
    scores = evaluate(task, data, tmp_path / "out", pred, None, RunOptions(progress=False, plots=False))
    assert scores.metrics["accuracy"] == pytest.approx(100 / 3)
    # score_foundation.py: per task over parsed responses; the emotion task has none (fail_num 1)
    assert scores.metrics["accuracy_parsed"] == pytest.approx(50.0)
    assert scores.metrics["task_average"] == pytest.approx(50.0)
    assert scores.counts["fail_num"] == 1 and scores.counts["scored"] == 2
    assert scores.breakdown["task"] == {"Speaker_Gender_Recognition_common_voice": {"score": 50.0, "n": 2}}
    assert scores.protocol["tasks_without_parsed_responses"] == ["Speech_emotion_recognition_iemocap"]


def test_air_bench_chat_position_swap(tmp_path, fake_openai):
    root = tmp_path / "AIR"
    meta = [
        {
            "path": "a.wav",
            "task_name": "speech_QA",
            "dataset_name": "x",
            "question": "What is said?",
            "answer_gt": "Hello.",
            "meta_info": "A man says hello.",
            "uniq_id": 1,
        },
        {
            "path": "b.wav",
            "task_name": "speech_and_sound_QA",
            "dataset_name": "y",
            "question": "What is heard?",
            "answer_gt": "Rain.",
            "meta_info": "Rain and talk.",
            "uniq_id": 2,
        },
        {
            "path": "c.wav",
            "task_name": "speech_and_music_QA",
            "dataset_name": "z",
            "question": "Which song?",
            "answer_gt": "A waltz.",
            "meta_info": "A waltz plays.",
            "uniq_id": 3,
        },
    ]
    for m in meta:
        write_wav(root / f"{m['task_name']}_{m['dataset_name']}" / m["path"])
    (root / "Chat_meta.json").write_text(json.dumps(meta))

    def reply(body):  # the reference always gets 8; the model 6 (speech), 4 (sound), unparsable (music)
        text = body["messages"][0]["content"]
        first = text.split("[The Start of Assistant 1s Answer]\n")[1].split("\n")[0]
        model = {"Hi.": 6, "Thunder.": 4}.get(first) or {"What is said?": 6, "What is heard?": 4}.get(
            text.split("[Question]\n")[1].split("\n")[0]
        )
        if "waltz" in text:
            return ["Assistant 1 is better."]
        return [f"{model} 8"] if first in ("Hi.", "Thunder.") else [f"8 {model}"]

    server = fake_openai(reply)
    responses = {"What is said?": "Hi.", "What is heard?": "Thunder.", "Which song?": "A polka."}
    pred = ScriptedPredictor(lambda c: next(v for k, v in responses.items() if k in user_text(c)))
    with make_judge(server.url) as judge:
        scores = evaluate(
            get_task("air-bench-chat"), root, tmp_path / "out", pred, judge, RunOptions(progress=False)
        )
    assert scores.metrics["speech"] == 6.0
    assert scores.metrics["mixed"] == 4.0  # speech_and_music had no parsable judgment
    assert scores.metrics["average"] == pytest.approx(5.0)
    assert scores.counts["unparsed"] == 2 and scores.counts["scored"] == 2
    assert len(server.requests) == 6 and server.requests[0]["model"] == "gpt-4-0125-preview"
