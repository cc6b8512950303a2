"""Post-processing of self-generated rows: lettered answers verified, voice-sibling and augmented copies."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from desta.data.records import AudioRecord
from desta.recipes.tiny.rows import augmented_copies, record_id, sibling_copies, verify_mcq_rows


def _rec(rid, gender="Female", language="fr", **kw) -> AudioRecord:
    return AudioRecord(rid, f"audio/{rid}.wav", "synth-espeak", transcript="Bonjour à tous.", language=language,
                       attributes={"Gender": gender, "Language": "French", **kw})  # fmt: skip


def _row(rid, prompt, response):
    return {"id": rid, "prompt": prompt, "response": response,
            "messages": [{"role": "user", "content": f"<|AUDIO|>\n{prompt}",
                          "audios": [{"audio": f"audio/{rid}.wav", "text": "Bonjour à tous."}]}]}  # fmt: skip


def test_lettered_rows_must_choose_exactly_the_labelled_option():
    records = {"espeak-1": _rec("espeak-1")}
    q = "Is the voice male or female? (a) male (b) female"
    lq = "Which language do you hear? (a) English (b) French (c) German"
    rows = [
        _row("espeak-1", q, "(b) female"),
        _row("espeak-1", q, "The speaker is a woman."),
        _row("espeak-1", q, "(a) male"),
        _row("espeak-1", q, "It is (a) male or (b) female."),
        _row("espeak-1", lq, "The speaker uses French."),
        _row("espeak-1", lq, "English, French or German."),
        _row("espeak-1", "What is said?", "Bonjour à tous."),
        _row("unknown-9", q, "(b) female"),  # no record: cannot be verified
    ]
    kept, dropped = verify_mcq_rows(rows, records)
    assert [r["response"] for r in kept] == [
        "(b) female",
        "The speaker is a woman.",
        "The speaker uses French.",
        "Bonjour à tous.",
    ]
    assert len(dropped) == 4


def test_sibling_copies_point_at_the_siblings_audio(tmp_path):
    records = {
        r.id: r
        for r in (
            _rec("espeak-000003"),
            _rec("espeak-000003-v1"),
            _rec("espeak-000003-v2"),
            _rec("espeak-000004"),
        )
    }
    rows = [
        _row("espeak-000003", "What is said?", "She says bonjour."),
        _row("espeak-000004", "What is said?", "She says bonjour."),  # no siblings
        _row("espeak-000003", "How long is it?", "A two-second clip."),  # states a length: not copied
    ]
    out = sibling_copies(rows, records)
    assert [r["id"] for r in out] == ["espeak-000003#v1", "espeak-000003#v2"]
    assert out[0]["messages"][0]["audios"][0]["audio"] == "audio/espeak-000003-v1.wav"
    assert rows[0]["messages"][0]["audios"][0]["audio"] == "audio/espeak-000003.wav"  # original untouched
    assert all(record_id(r) == "espeak-000003" and r["sibling_of"] == "espeak-000003" for r in out)


def test_augmented_copies_write_audio_and_skip_quality_answers(tmp_path):
    (tmp_path / "audio").mkdir()
    for rid in ("espeak-1", "espeak-2"):
        sf.write(
            str(tmp_path / "audio" / f"{rid}.wav"),
            (np.sin(np.arange(8000) / 5) * 0.3).astype(np.float32),
            16000,
        )
    records = {"espeak-1": _rec("espeak-1"), "espeak-2": _rec("espeak-2", **{"Noise type": "white noise"})}
    rows = [
        _row("espeak-1", "What is said?", "She says bonjour."),
        _row("espeak-1", "How is the audio?", "A clear recording."),  # about the channel: not copied
        _row("espeak-2", "What is said?", "She says bonjour."),  # already noisy: not copied
    ]
    out = augmented_copies(rows, records, tmp_path, copies=2, seed=0)
    assert [r["id"] for r in out] == ["espeak-1#aug0", "espeak-1#aug1"]
    for r in out:
        audio = r["messages"][0]["audios"][0]["audio"]
        assert audio.startswith("audio/augmented/espeak-1-") and (tmp_path / audio).is_file()
        assert r["augmentation"] in ("noise", "reverb", "telephone", "gain", "tempo")
    again = augmented_copies(rows, records, tmp_path, copies=2, seed=0)
    assert again == out  # deterministic, files reused
