"""`desta data generate`: defaults sized for the backend and shown by --help."""

from __future__ import annotations

import json

import pytest

from desta.data.backends import SUGGESTED_SIZES, FakeBackend, suggested_sizes
from desta.data.generate import SamplingParams
from desta.data.pipeline import GenerateConfig
from desta.data.records import AudioRecord, write_records
from desta.errors import DeSTAError


def test_help_shows_the_defaults_of_the_option_dataclasses(capsys):
    from desta.cli import main

    with pytest.raises(SystemExit):
        main(["data", "generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert f"sampling temperature (default: {SamplingParams().temperature})" in text
    assert f"rows per output shard (default: {GenerateConfig().shard_size})" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "default per backend: transformers on CPU 4, transformers on GPU 32" in text
    assert "exit status: 0 done" in text and "--wait" in text and "--max-error-rate F" in text


def test_suggested_sizes():
    assert suggested_sizes("transformers", "cpu") == SUGGESTED_SIZES["transformers on CPU"] == (4, 128)
    assert suggested_sizes("transformers", "cuda:0") == (32, 512)
    assert suggested_sizes("vllm") == (256, 512)
    with pytest.raises(DeSTAError, match="unknown backend 'nope'"):
        suggested_sizes("nope")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--backend", "transformers"], (4, 128)),  # the local CPU model: small batches, short targets
        (["--backend", "transformers", "--device", "cuda"], (32, 512)),
        (["--backend", "fake"], (64, 512)),
        (["--backend", "transformers", "--batch-size", "3", "--max-new-tokens", "7"], (3, 7)),
    ],
)
def test_generate_sizes_follow_the_backend(tmp_path, monkeypatch, capsys, argv, expected):
    pytest.importorskip("desta.data.instructions")
    import desta.data.backends as backends
    from desta.cli import main

    made: list[tuple[str, dict]] = []

    def fake_make_backend(name, model, **options):  # no model download or load in this test
        made.append((name, options))
        return FakeBackend(model_id=model)

    monkeypatch.setattr(backends, "make_backend", fake_make_backend)
    manifest, out = tmp_path / "records.jsonl", tmp_path / "gen"
    write_records(manifest, [AudioRecord(id="a", audio="a.wav", corpus="Toy", duration=1.0, transcript="hi")])
    main(["data", "generate", str(manifest), "-o", str(out), "--quiet", *argv])
    config = json.loads((out / "run.json").read_text())["config"]
    assert (config["batch_size"], config["sampling"]["max_new_tokens"]) == expected
    assert made[0][0] == argv[1]
    capsys.readouterr()


def test_engine_args_reach_the_vllm_engine_and_bad_ones_are_named(tmp_path, monkeypatch, capsys):
    import desta.data.backends as backends
    from desta.cli import main
    from desta.data.cli import parse_engine_args

    assert parse_engine_args(["max_model_len=4096", "enforce-eager=true", "dtype=bfloat16", "x={\"a\": 1}"]) == {
        "max_model_len": 4096, "enforce_eager": True, "dtype": "bfloat16", "x": {"a": 1},
    }  # fmt: skip
    for bad in ("max_model_len", "=3", "bad name=1"):
        with pytest.raises(DeSTAError, match=f"--engine-arg '{bad}': expected NAME=VALUE"):
            parse_engine_args([bad])

    made: list[tuple[str, dict]] = []

    def fake_make_backend(name, model, **options):
        made.append((name, options))
        return FakeBackend(model_id=model)

    monkeypatch.setattr(backends, "make_backend", fake_make_backend)
    manifest = tmp_path / "records.jsonl"
    write_records(manifest, [AudioRecord(id="a", audio="a.wav", corpus="Toy", duration=1.0, transcript="hi")])
    argv = ["data", "generate", str(manifest), "--quiet", "--engine-arg", "max_model_len=2048"]
    main([*argv, "-o", str(tmp_path / "gen"), "--backend", "vllm", "--engine-arg", "tensor_parallel_size=2"])
    assert made == [("vllm", {"engine_kwargs": {"max_model_len": 2048, "tensor_parallel_size": 2}})]
    capsys.readouterr()
    assert main([*argv, "-o", str(tmp_path / "gen2"), "--backend", "openai"]) != 0
    assert "--engine-arg applies to the vllm engine, not to 'openai'" in capsys.readouterr().err
    assert not (tmp_path / "gen2").exists() and len(made) == 1  # refused before any work


def test_generate_on_a_missing_records_file_is_one_clean_line(tmp_path, capsys):
    from desta.cli import main

    missing = tmp_path / "nope.jsonl"
    assert main(["data", "generate", str(missing), "-o", str(tmp_path / "gen"), "--backend", "fake"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"desta: error: records file {missing} does not exist; write one with `desta data manifest` "
        "or `desta data synth`"
    )
    assert main(["data", "generate", str(tmp_path), "-o", str(tmp_path / "gen"), "--backend", "fake"]) == 1
    assert "is a folder, not a records file" in capsys.readouterr().err


def test_generate_prints_a_summary_of_reject_reasons(tmp_path, monkeypatch, capsys):
    """A leaking answer ("(Source: ...)", a field of the record's own seed description) is rejected, and
    the console says how many requests each reason cost, what to change, and where the rejects are."""
    pytest.importorskip("desta.data.instructions")
    import desta.data.backends as backends
    from desta.cli import main

    answers = iter(["Seven of clubs (Source: Real human recording)", "A man says seven of clubs."] * 10)
    monkeypatch.setattr(
        backends, "make_backend", lambda name, model, **o: FakeBackend(model_id=model, reply=lambda c: next(answers))
    )
    manifest, out = tmp_path / "records.jsonl", tmp_path / "gen"
    rec = AudioRecord(id="a", audio="a.wav", corpus="Toy", duration=1.0, transcript="seven of clubs",
                      attributes={"Source": "Real human recording"})  # fmt: skip
    write_records(manifest, [rec])
    assert main(["data", "generate", str(manifest), "-o", str(out), "--quiet", "--backend", "fake",
                 "--num-per-record", "2", "--resample", "0", "--weight", "compound=0"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["written"] == 1 and summary["rejected"] == {"filter:leak": 1}
    lines = captured.err.splitlines()
    assert lines[0] == "rejected 1 of 2 requests this run, by reason:"
    assert "filter:leak" in lines[1] and "50%" in lines[1] and "'Source:'" in lines[1]
    assert lines[2] == f"rejected rows and answers: {out}/rejects.jsonl; details: desta data report {out}"
    assert len(lines) <= 24  # one screen
