"""The asterisk prompt reader on a tiny fake tree (and on the installed packages when present)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from desta.data.sources import iter_records
from desta.data.sources._common import LayoutError
from desta.data.sources.asterisk import NUMBER_WORDS, read_asterisk


def _wav(path, seconds=1.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(8000 * seconds), dtype=np.float32), 8000, subtype="PCM_16")


@pytest.fixture
def tree(tmp_path):
    for voice in ("it_IT_m_Carlo", "fr_CA_f_June", "en_US_f_Allison"):
        d = tmp_path / voice
        for name in ("all-circuits-busy-now", "goodbye", "hello"):
            _wav(d / f"{name}.wav")
        _wav(d / "beep.wav", 0.2)  # shorter than min_seconds
        for n in range(3):
            _wav(d / "digits" / f"{n}.wav", 0.5)
    (tmp_path / "it").symlink_to(tmp_path / "it_IT_m_Carlo")  # the packages' alternatives links
    (tmp_path / "notes.txt").write_text("not a voice")
    return tmp_path


def test_labels_come_from_the_folder_name(tree):
    recs = list(read_asterisk(tree, exclude=["en_US_f_Allison"]))
    speakers = {r.attributes["Speaker"] for r in recs}
    assert speakers == {"Carlo", "June"}  # the link "it" and the excluded voice are skipped
    carlo = [r for r in recs if r.attributes["Speaker"] == "Carlo"]
    assert {r.attributes["Gender"] for r in carlo} == {"Male"}
    assert {r.language for r in carlo} == {"it"} and carlo[0].attributes["Language"] == "Italian"
    assert all(r.kind == "speech" and r.duration and r.duration > 0 for r in recs)
    assert not any(r.id.endswith("/beep") for r in recs)  # too short
    numbers = {r.id: r for r in recs if "Number" in r.attributes}
    assert numbers["fr_CA_f_June/digits-2"].transcript == NUMBER_WORDS["fr"][2] == "deux"
    assert numbers["it_IT_m_Carlo/digits-0"].attributes["Number"] == "0"
    assert all(
        not r.transcript for r in recs if "Number" not in r.attributes
    )  # file names are not transcripts


def test_limits_and_speaker_filter(tree):
    recs = list(read_asterisk(tree, speakers=["fr_CA_f_June"], max_prompts=2, max_numbers=1))
    assert len([r for r in recs if "Number" not in r.attributes]) == 2
    assert [r.id for r in recs if "Number" in r.attributes] == ["fr_CA_f_June/digits-0"]
    again = list(read_asterisk(tree, speakers=["fr_CA_f_June"], max_prompts=2, max_numbers=1))
    assert [r.id for r in again] == [r.id for r in recs]  # stable choice


def test_missing_number_file_is_a_reject(tree):
    (tree / "fr_CA_f_June" / "digits" / "1.wav").unlink()
    rejects: list[dict] = []
    recs = list(read_asterisk(tree, speakers=["fr_CA_f_June"], rejects=rejects, max_numbers=3))
    assert "fr_CA_f_June/digits-1" not in {r.id for r in recs}
    assert rejects and rejects[0]["reason"] == "audio file not found"


def test_layout_errors(tmp_path):
    with pytest.raises(LayoutError, match="does not exist"):
        list(read_asterisk(tmp_path / "none"))
    with pytest.raises(LayoutError, match="_<f|m>_"):
        list(read_asterisk(tmp_path))


def test_registered_as_a_source(tree):
    assert len(list(iter_records("asterisk", tree, speakers=["it_IT_m_Carlo"]))) == 6
