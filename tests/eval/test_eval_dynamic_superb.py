"""Dynamic-SUPERB Phase-2 task by name, from HF parquet: exact label match, judge, unmappable answers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eval_helpers import ScriptedPredictor, make_judge, wav_bytes

from desta.eval import DataLayoutError, RunOptions, evaluate, get_task


def make_task(root: Path) -> Path:
    rows = [
        {
            "audio": {"bytes": wav_bytes(0.10), "path": "a.wav"},
            "instruction": "What is the intent? Answer one label.",
            "label": "set_alarm",
            "file": "a",
        },
        {
            "audio": {"bytes": wav_bytes(0.12), "path": "b.wav"},
            "instruction": "What is the intent? Answer one label.",
            "label": "play_music",
            "file": "b",
        },
        {
            "audio": {"bytes": wav_bytes(0.14), "path": "c.wav"},
            "instruction": "What is the intent? Answer one label.",
            "label": "weather_query",
            "file": "c",
        },
    ]
    folder = root / "SuperbIC_SLURP-Intent" / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "test-00000-of-00001.parquet")
    return root


ANSWERS = {
    wav_bytes(0.10): "Set alarm",
    wav_bytes(0.12): "The user wants to hear some music.",
    wav_bytes(0.14): "???",
}


def test_dynamic_superb_task_by_name(tmp_path, fake_openai):
    def reply(body):
        text = body["messages"][-1]["content"]
        return ["Result: YES"] if "hear some music" in text else ["I am not sure."]

    server = fake_openai(reply)
    data = make_task(tmp_path / "dsuperb")
    task = get_task("dynamic-superb:SuperbIC_SLURP-Intent")
    with make_judge(server.url) as judge:
        scores = evaluate(
            task,
            data,
            tmp_path / "out",
            ScriptedPredictor(lambda c: ANSWERS[c[1]["audios"][0]["audio"]]),
            judge,
            RunOptions(progress=False, plots=False),
        )
    # "Set alarm" == "set_alarm" after normalisation (no judge); music judged YES; "???" unmappable -> wrong
    assert scores.metrics["accuracy"] == pytest.approx(200 / 3)
    assert scores.counts["exact"] == 1 and scores.counts["unparsed"] == 1
    assert len(server.requests) == 2
    with pytest.raises(DataLayoutError, match="NoSuchTask"):
        get_task("dynamic-superb:NoSuchTask").load(data)
