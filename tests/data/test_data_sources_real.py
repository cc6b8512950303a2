"""The realdata table reader and the Tux Paint stamps reader on tiny replicas of their layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.data.test_data_sources import read, wav, write

from desta.data.describe import seed_description
from desta.data.sources.tuxpaint import animal_of, stamp_split
from desta.errors import DeSTAError

HEADER = "file,source,license,speaker,gender,age,language,emotion,sound,transcript,split\n"


def _realdata(root: Path) -> Path:
    rows = [
        "audio/ravdess/a.ogg,ravdess,CC BY-NC-SA 4.0,ravdess_01,female,,English,angry,,Kids are talking by the door.,train",
        "audio/urdu/b.ogg,urdu,research only,urdu_SM2,,,Urdu,happy,,,train",  # gender withheld: not guessed
        "audio/emodb/c.ogg,emodb,EmoDB,emodb_03,male,31,German,sad,,,heldout",
        "audio/catmeows/d.ogg,catmeows,CC BY 4.0,,,,,,cat,,train",
        "audio/ravdess/missing.ogg,ravdess,CC BY-NC-SA 4.0,ravdess_02,male,,English,calm,,Dogs.,train",
    ]
    write(root / "metadata.csv", HEADER + "\n".join(rows) + "\n")
    for name in ("ravdess/a", "urdu/b", "emodb/c", "catmeows/d"):
        wav(root / "audio" / f"{name}.ogg", 1.0, 16000)
    return root


def test_realdata_rows_become_records_with_seed_attributes(tmp_path):
    records, rejects = read("realdata", _realdata(tmp_path))
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"ravdess/a", "urdu/b", "emodb/c", "catmeows/d"}
    assert [rj["reason"] for rj in rejects] == ["audio file not found"]
    assert seed_description(by_id["ravdess/a"]) == (
        "[00:00-00:01] Kids are talking by the door. (Language: English, Gender: Female, Emotion: Angry)"
    )
    assert by_id["ravdess/a"].language == "en" and by_id["urdu/b"].language == "ur"
    assert "Gender" not in by_id["urdu/b"].attributes  # an empty gender is never guessed
    cat = by_id["catmeows/d"]
    assert cat.kind == "sound" and cat.caption == "a cat meowing" and cat.attributes == {"Animal": "Cat"}
    # speaker, age, licence and split never reach the seed description
    assert "31" not in seed_description(by_id["emodb/c"]) and "emodb_03" not in seed_description(by_id["emodb/c"])


def test_realdata_split_selects_rows_and_rejects_unknown_split(tmp_path):
    root = _realdata(tmp_path)
    assert [r.id for r in read("realdata", root, split="heldout")[0]] == ["emodb/c"]
    assert "emodb/c" not in {r.id for r in read("realdata", root, split="train")[0]}
    with pytest.raises(DeSTAError, match="split 'test'"):
        read("realdata", root, split="test")


def test_realdata_unknown_language_is_a_reject_not_a_crash(tmp_path):
    write(tmp_path / "metadata.csv", HEADER + "audio/x/a.ogg,x,,,male,,Klingon,,,,train\n")
    wav(tmp_path / "audio/x/a.ogg", 1.0, 16000)
    records, rejects = read("realdata", tmp_path)
    assert records == [] and "Klingon" in rejects[0]["reason"]


def _stamps(root: Path) -> Path:
    d = root / "animals" / "mammals" / "dogs"
    write(d / "dog.txt", "A dog.\nen_GB.utf8=A dog.\nfr.utf8=Un chien.\nru.utf8=Собака.\n")
    for name in ("dog", "dog_desc", "dog_desc_fr", "dog_desc_ru", "dog_desc_xx"):
        wav(d / f"{name}.ogg", 1.0, 16000)
    b = root / "animals" / "birds"
    write(b / "pig_golden2.txt", "A golden pig.\n")
    wav(b / "pig_golden2.ogg", 1.0, 16000)
    wav(root / "symbols" / "math" / "7_de.ogg", 1.0, 16000)  # no stamp text: not read
    return root


def test_tuxpaint_descriptions_and_animal_calls(tmp_path):
    records, rejects = read("tuxpaint", _stamps(tmp_path))
    by_id = {r.id: r for r in records}
    assert by_id["animals/mammals/dogs/dog_desc_fr"].transcript == "Un chien."
    assert by_id["animals/mammals/dogs/dog_desc_fr"].attributes == {"Language": "French"}
    assert by_id["animals/mammals/dogs/dog_desc"].language == "en"
    assert by_id["animals/mammals/dogs/dog_desc_ru"].transcript == "Собака."
    dog = by_id["animals/mammals/dogs/dog"]
    assert dog.kind == "sound" and dog.caption == "a dog" and dog.attributes == {"Animal": "Dog"}
    assert by_id["animals/birds/pig_golden2"].attributes == {"Animal": "Pig"}
    assert not any("symbols" in i for i in by_id)
    assert len(rejects) == 1 and "'xx'" in rejects[0]["reason"]


def test_tuxpaint_split_keeps_a_stamp_on_one_side(tmp_path):
    root = _stamps(tmp_path)
    train = {r.id for r in read("tuxpaint", root, split="train", heldout_fraction=0.5)[0]}
    held = {r.id for r in read("tuxpaint", root, split="heldout", heldout_fraction=0.5)[0]}
    assert not train & held and len(train | held) == 5
    dog_side = stamp_split("animals/mammals/dogs/dog", 0.5)
    dog_ids = {i for i in train | held if "/dog" in i}
    assert dog_ids <= (held if dog_side == "heldout" else train)


def test_animal_names_from_file_names():
    assert animal_of(Path("animals/mammals/pig_golden2")) == "Pig"
    assert animal_of(Path("animals/aquatic/sea_lion")) == "Sea lion"
    assert animal_of(Path("animals/birds/heron_greatblue_flying")) == "Heron"


def test_manifest_cli_passes_reader_options(tmp_path, capsys):
    from desta.cli import main
    from desta.data.records import read_records

    root = _realdata(tmp_path / "realdata")
    out = tmp_path / "held.jsonl"
    assert main(["data", "manifest", "realdata", str(root), "-o", str(out), "--option", "split=heldout"]) == 0
    assert [r.id for r in read_records(out)] == ["emodb/c"]
    assert main(["data", "manifest", "realdata", str(root), "-o", str(out), "--option", "split"]) != 0
    assert "--option 'split': expected NAME=VALUE" in capsys.readouterr().err
