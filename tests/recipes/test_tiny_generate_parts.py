"""Self-generation dealt into parts: the parts together give the rows one process gives (fake backend)."""

from __future__ import annotations

import json

import pytest

from desta.data.backends import FakeBackend
from desta.data.records import AudioRecord, write_records
from desta.errors import DeSTAError
from desta.recipes.tiny import TinyOptions, stages


def _answer(conv):
    return "The speaker is a woman. She says: hello there, how are you today."


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.setattr("desta.data.backends.TransformersBackend", lambda *a, **k: FakeBackend(reply=_answer))
    recs = []
    for i in range(6):
        for suffix in ("", "-v1"):
            recs.append(AudioRecord(f"espeak-{i:06d}{suffix}", f"audio/espeak-{i:06d}{suffix}.wav", "synth-espeak",
                                    duration=1.0, transcript="Hello there, how are you today.", language="en",
                                    attributes={"Gender": "Female", "Language": "English"}))  # fmt: skip
    d = tmp_path / "corpus"
    d.mkdir()
    write_records(d / "train.jsonl", recs)
    return d


def _keys(path):
    return sorted(json.loads(line)["id"] for line in path.read_text().splitlines())


def test_parts_give_the_rows_of_one_process(tmp_path, corpus):
    opts = dict(max_records=6, augment_copies=0, gen_batch_size=4, resample=0)
    one = stages.generate_stage(TinyOptions(out_dir=str(tmp_path / "one"), gen_parts=1, **opts), corpus)
    two = TinyOptions(out_dir=str(tmp_path / "two"), gen_parts=2, **opts)
    assert stages.generate_stage(two, corpus, part=1) == tmp_path / "two" / "generated-1"
    assert stages.generate_stage(two, corpus, part=0) == tmp_path / "two" / "generated"
    both = stages.generate_stage(two, corpus)  # both parts done: collects only
    assert _keys(both) == _keys(one) and _keys(one)
    # one clip per sibling group is asked; its rows are copied to the sibling
    ids = _keys(one)
    assert any(i.endswith("#v1") for i in ids) and not any("-v1" in i for i in ids)
    with pytest.raises(DeSTAError, match="not one of the 2 parts"):
        stages.generate_stage(two, corpus, part=2)
