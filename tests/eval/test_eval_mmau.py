"""MMAU and MMAR end to end with a scripted predictor: prompt, string match, failures, resume, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import ScriptedPredictor, user_text, write_wav

from desta.eval import DataLayoutError, RunOptions, evaluate, get_task, read_predictions

RECORDS = [
    # id, question, choices, answer, task, difficulty, sub-category, scripted response
    (
        "m1",
        "Identify the source of the speaking voice.",
        ["Man", "Woman", "Child", "Robot"],
        "Man",
        "sound",
        "easy",
        "Acoustic Source Inference",
        "The correct answer is: Man",
    ),
    (
        "m2",
        "Identify the source of the speech.",
        ["A child", "A woman", "An adult man", "A teenager"],
        "A woman",
        "sound",
        "medium",
        "Acoustic Source Inference",
        "The correct answer is: A woman",
    ),
    (
        "m3",
        "What chord is played after B:min7?",
        ["E:7", "A:maj7", "F#:7", "G#:min7b5"],
        "E:7",
        "music",
        "medium",
        "Temporal Reasoning",
        "The correct answer is: A:maj7",
    ),
    (
        "m4",
        "Which instrument plays the melody?",
        ["The piano", "Guitar"],
        "Guitar",
        "speech",
        "hard",
        "Instrument Identification",
        "The correct answer is: Guitar",
    ),
    ("m5", "Which key is the song in?", ["C major", "A minor"], "C major", "music", "hard", "Key", "unused"),
]


def make_mmau(root: Path) -> Path:
    records = []
    for rid, q, choices, answer, task, diff, sub, _ in RECORDS:
        records.append(
            {
                "id": rid,
                "audio_id": f"./test-mini-audios/{rid}.wav",
                "question": q,
                "choices": choices,
                "answer": answer,
                "dataset": "fixture",
                "task": task,
                "split": "test-mini",
                "category": "Reasoning",
                "sub-category": sub,
                "difficulty": diff,
            }
        )
        write_wav(root / "test-mini-audios" / f"{rid}.wav")
    (root / "test-mini-audios" / "m5.wav").write_bytes(b"RIFF this is not audio")  # fails to decode
    (root / "mmau-test-mini.json").write_text(json.dumps(records, indent=1))
    return root


def answer_for(conv) -> str:
    text = user_text(conv)
    return next(r[7] for r in RECORDS if r[1] in text)


def test_mmau_prompt_is_desta_official(tmp_path):
    task = get_task("mmau")
    items = task.load(make_mmau(tmp_path))
    conv = task.prompt(items[0])
    assert conv[0] == {
        "role": "system",
        "content": 'Focus on the audio clips and instructions. Put your answer in the format "The correct answer is: "___" ".',
    }
    assert conv[1]["content"] == (
        "<|AUDIO|>\n\nIdentify the source of the speaking voice. Choose from the following options: "
        '"Man", "Woman", "Child" or "Robot"'
    )
    assert conv[1]["audios"] == [{"audio": str(tmp_path / "test-mini-audios" / "m1.wav"), "text": None}]
    assert task.prompt(items[3])[1]["content"].endswith('options: "The piano" or "Guitar"')


def test_mmau_end_to_end_scores_failures_and_report(tmp_path):
    data = make_mmau(tmp_path / "data")
    out = tmp_path / "out"
    scores = evaluate(
        get_task("mmau"), data, out, ScriptedPredictor(answer_for), options=RunOptions(progress=False)
    )
    # raw (official evaluation.py on model_output): m1, m2 right; m4's "The correct answer is: Guitar"
    # shares "the" with the wrong choice "The piano"; m3 wrong; m5's audio fails to decode -> failed
    assert scores.metrics["accuracy"] == pytest.approx(40.0)
    assert scores.metrics["accuracy_official"] == pytest.approx(50.0)
    # DeSTA2.5's prediction step (prefix removed, stored as "answer"): m4 right too
    assert scores.metrics["accuracy_postprocessed"] == pytest.approx(60.0)
    assert scores.counts["failed"] == 1 and scores.counts["scored"] == 4 and scores.counts["missing"] == 0
    assert scores.breakdown["task"]["sound"] == {"score": 100.0, "n": 2}
    assert scores.breakdown["task"]["music"] == {"score": 0.0, "n": 2}
    assert scores.breakdown["difficulty"]["hard"] == {"score": 0.0, "n": 2}
    preds = read_predictions(out / "predictions.jsonl")
    assert preds.responses["m5"] is None and "m5" in preds.errors
    assert preds.responses["m4"] == "The correct answer is: Guitar" and preds.answers["m4"] == "Guitar"
    report = (out / "report.md").read_text()
    # 5 items are not the 1,000-item split: published numbers are listed, never set against ours
    assert "Not compared: this run scores 5 items; the published numbers are on all 1000" in report
    assert "| sound | 2 | 100.00 |" in report and "70.57" not in report and "ours − published" not in report
    assert "| accuracy | 40.00 | 5 |" in report and "Model: `scripted`; decoding:" in report
    assert (out / "mmau_by_task.png").stat().st_size > 1000
    assert not (out / "mmau_vs_published.png").exists()
    saved = json.loads((out / "scores.json").read_text())
    assert saved["counts"]["failed"] == 1 and saved["version"] == "v05.15.25"
    submission = json.loads((out / "mmau-test-mini-submission.json").read_text())
    assert submission[0]["model_output"] == "The correct answer is: Man" and "model_output" not in submission[4]
    assert submission[0]["model_prediction"] == "Man"


def test_mmau_resume_after_kill_and_rescore_with_missing_ids(tmp_path):
    data = make_mmau(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    # a killed run: two answers written, the third line cut in half
    lines = [
        json.dumps({"id": "m1", "response": "The correct answer is: Man", "error": None, "model": "scripted"}),
        json.dumps({"id": "m2", "response": "The correct answer is: Robot", "error": None, "model": "scripted"}),
        '{"id": "m3", "respo',
    ]
    (out / "predictions.jsonl").write_text("\n".join(lines))
    predictor = ScriptedPredictor(answer_for)
    scores = evaluate(get_task("mmau"), data, out, predictor, options=RunOptions(progress=False))
    asked = [user_text(c) for c in predictor.seen]
    assert len(asked) == 2 and "chord" in asked[0]  # m3 and m4 generated; m5 fails in audio decode
    assert scores.counts["corrupt_prediction_lines"] == 1
    assert scores.metrics["accuracy"] == pytest.approx(20.0)  # raw: m1 right; m2 (kept), m3, m4 wrong
    # m1, m4 right once the prediction step has run (m1, m2 were written without "answer": recomputed)
    assert scores.metrics["accuracy_postprocessed"] == pytest.approx(40.0)
    # rescore without m4's line: missing, counted wrong, not silently skipped
    kept = [ln for ln in (out / "predictions.jsonl").read_text().splitlines() if '"m4"' not in ln]
    (out / "predictions.jsonl").write_text("\n".join(kept) + "\n")
    rescored = evaluate(get_task("mmau"), data, out, None, options=RunOptions(rescore=True, plots=False))
    assert rescored.counts["missing"] == 1
    assert rescored.metrics["accuracy"] == pytest.approx(20.0)
    assert rescored.metrics["accuracy_official"] == pytest.approx(100 / 3)
    assert rescored.metrics["accuracy_postprocessed"] == pytest.approx(20.0)


def test_mmau_layout_errors_name_what_is_missing(tmp_path):
    with pytest.raises(DataLayoutError, match="mmau-test-mini.json"):
        get_task("mmau").load(tmp_path)
    data = make_mmau(tmp_path / "d")
    (data / "test-mini-audios" / "m2.wav").unlink()
    with pytest.raises(DataLayoutError, match="m2.wav"):
        get_task("mmau").load(data)


def test_mmar_end_to_end(tmp_path):
    root = tmp_path / "MMAR"
    rows = [
        (
            "a1",
            "What environment?",
            ["Mountain Canyon", "Dense Forest", "Open Grassland"],
            "Open Grassland",
            "music",
            "Cultural Layer",
            "The correct answer is: Open Grassland",
        ),
        (
            "a2",
            "Too much or too little food?",
            ["Too little", "Too much, can't finish"],
            "Too little",
            "speech",
            "Semantic Layer",
            "Too much, can't finish",
        ),
        (
            "a3",
            "How many speakers?",
            ["One", "Two"],
            "Two",
            "speech",
            "Semantic Layer",
            "The correct answer is: Two",
        ),
    ]
    root.mkdir()
    with open(root / "MMAR-meta.jsonl", "w") as f:
        for rid, q, ch, ans, mod, cat, _ in rows:
            f.write(
                json.dumps(
                    {
                        "id": rid,
                        "audio_path": f"./audio/{rid}.wav",
                        "question": q,
                        "choices": ch,
                        "answer": ans,
                        "modality": mod,
                        "category": cat,
                        "sub-category": "x",
                        "language": "en",
                        "source": "youtube",
                    }
                )
                + "\n"
            )
            write_wav(root / "audio" / f"{rid}.wav")
    task = get_task("mmar")
    items = task.load(root)
    conv = task.prompt(items[0])
    assert conv[0]["content"] == (
        'Focus on the audio clip and instruction. Output your answer in the format "The correct answer is: ___".'
    )
    answers = {r[1]: r[6] for r in rows}
    scores = evaluate(
        task,
        root,
        tmp_path / "out",
        ScriptedPredictor(lambda c: next(v for k, v in answers.items() if k in user_text(c))),
        options=RunOptions(progress=False, plots=False),
    )
    assert scores.metrics["accuracy"] == pytest.approx(200 / 3)
    assert scores.breakdown["modality"]["speech"] == {"score": 50.0, "n": 2}
    assert scores.breakdown["category"]["Cultural Layer"]["score"] == 100.0
