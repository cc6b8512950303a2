"""End to end: `desta eval mmau` with the real tiny model on CPU (two items)."""

from __future__ import annotations

import json

import pytest
from eval_helpers import write_wav

from desta.cli import main


@pytest.mark.slow
def test_mmau_with_tiny_model_on_cpu(tmp_path):
    records = [
        {
            "id": f"q{i}",
            "audio_id": f"./test-mini-audios/q{i}.wav",
            "question": q,
            "choices": ch,
            "answer": ch[0],
            "task": task,
            "difficulty": "easy",
            "sub-category": "x",
            "split": "test-mini",
        }
        for i, (q, ch, task) in enumerate(
            [
                ("Which sound is heard?", ["A tone", "A dog", "Rain", "Speech"], "sound"),
                ("Is anyone speaking?", ["No", "Yes"], "speech"),
            ]
        )
    ]
    data = tmp_path / "MMAU"
    data.mkdir()
    (data / "mmau-test-mini.json").write_text(json.dumps(records))
    for r in records:
        write_wav(data / "test-mini-audios" / f"{r['id']}.wav", seconds=1.0)
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "mmau",
                "--data",
                str(data),
                "--model",
                "default",
                "--out",
                str(out),
                "--max-new-tokens",
                "8",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["q0", "q1"]
    assert all(isinstance(x["response"], str) and x["error"] is None for x in lines)
    scores = json.loads((out / "scores.json").read_text())
    assert scores["counts"]["scored"] == 2 and scores["counts"]["failed"] == 0
    assert 0.0 <= scores["metrics"]["accuracy"] <= 100.0
    assert (out / "report.md").read_text().startswith("# mmau (v05.15.25)")
    assert (out / "mmau_by_task.png").exists()
