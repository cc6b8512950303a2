"""``desta eval TASK --rescore --predictions FILE``: each published format, scored without any audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desta.cli import main
from desta.eval import RunOptions, evaluate, get_task
from desta.eval.base import EvalError

PARITY = Path(__file__).parent / "parity"


def fixture_rows(name: str, **where) -> list[dict]:
    with open(PARITY / name, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def scores_of(out: Path) -> dict:
    return json.loads((out / "scores.json").read_text(encoding="utf-8"))


def test_mmau_submission_json_without_data_or_audio(tmp_path):
    """DeSTA2.5's own results file (raw model_output + model_prediction): both protocols, and the
    published comparison because the file is the whole 1,000-item split."""
    recs = fixture_rows("mmau.jsonl", source="desta25-shipped")
    submission = []
    for r in recs:
        rec = {k: r[k] for k in ("id", "question", "choices", "answer", "task", "difficulty", "sub-category")}
        rec["audio_id"] = f"./test-mini-audios/{r['id']}.wav"  # never read
        rec["model_output"] = r["model_output"]
        rec["model_prediction"] = r["model_output"].replace("The correct answer is: ", "").strip()
        submission.append(rec)
    path = tmp_path / "mmau-test-mini_results.json"
    path.write_text(json.dumps(submission), encoding="utf-8")
    out = tmp_path / "out"
    assert (
        main(["eval", "mmau", "--rescore", "--predictions", str(path), "--out", str(out), "--no-plots"]) == 0
    )
    s = scores_of(out)
    assert f"{s['metrics']['accuracy']:.2f}" == "59.80"  # official evaluation.py on model_output
    assert f"{s['metrics']['accuracy_postprocessed']:.2f}" == "66.10"  # what DeSTA2.5's script scores
    assert s["protocol"]["run"]["predictions_format"] == "mmau-submission (model_output)"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Compared metric: `accuracy_postprocessed`" in report
    assert "| DeSTA2.5-Audio | 66.00 | 1000 | 0.10 |" in report
    # DeSTA2.5's published speech score beside ours, in the post-processed table only
    assert "## By task (postprocessed)" in report and "| speech | 333 | 71.17 | 71.17 |" in report
    assert "| speech | 333 | 60.36 |" in report and "| speech | 333 | 60.36 | 71.17" not in report
    assert "Model: not recorded in the predictions file" in report


def test_mmar_submission_without_post_processing_is_not_compared(tmp_path):
    recs = fixture_rows("mmar.jsonl")
    keep = ("id", "question", "choices", "answer", "modality", "category", "sub-category")
    path = tmp_path / "mmar-results.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({**{k: r[k] for k in keep}, "answer_prediction": r["answer_prediction"]}) for r in recs
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert (
        main(["eval", "mmar", "--rescore", "--predictions", str(path), "--out", str(out), "--no-plots"]) == 0
    )
    s = scores_of(out)
    assert f"{s['metrics']['accuracy']:.2f}" == "71.10" and "accuracy_postprocessed" not in s["metrics"]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Not compared: the published numbers follow the protocol of 'accuracy_postprocessed'" in report


def test_voicebench_output_file_names_model_subset_and_split(tmp_path):
    recs = sorted(fixture_rows("voicebench.jsonl", subset="bbh", set="synthetic"), key=lambda r: r["n"])
    path = tmp_path / "my-model-v2-bbh-test-audio.jsonl"
    lines = [
        {"prompt": r["prompt"], "response": r["response"], "reference": r["reference"], "id": r["id"]}
        for r in recs
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    out = tmp_path / "out"
    rc = main(
        ["eval", "voicebench:bbh", "--rescore", "--predictions", str(path), "--out", str(out), "--no-plots"]
    )
    assert rc == 0
    s = scores_of(out)
    assert s["metrics"]["bbh"] == pytest.approx(59.5)
    assert s["protocol"]["run"]["model"] == "my-model-v2"
    assert "Model: `my-model-v2`" in (out / "report.md").read_text(encoding="utf-8")
    # a file of another subset is refused with the reason
    other = tmp_path / "m-advbench-test-audio.jsonl"
    other.write_text(json.dumps({"prompt": "p", "response": "no"}), encoding="utf-8")
    with pytest.raises(EvalError, match="subset 'advbench', not \\['bbh'\\]"):
        evaluate(
            get_task("voicebench:bbh"),
            None,
            tmp_path / "o2",
            options=RunOptions(rescore=True, predictions=str(other)),
        )


def test_air_bench_result_file(tmp_path):
    recs = fixture_rows("air-bench-foundation.jsonl")
    keep = (
        "uniq_id",
        "task_name",
        "dataset_name",
        "path",
        "question",
        "choice_a",
        "choice_b",
        "choice_c",
        "choice_d",
    )
    path = tmp_path / "Foundation_result_modelx.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(
                {**{k: r[k] for k in keep if k in r}, "answer_gt": r["answer_gt"], "response": r["response"]}
            )
            for r in recs
        ),
        encoding="utf-8",
    )
    scores = evaluate(
        get_task("air-bench-foundation"),
        None,
        tmp_path / "out",
        options=RunOptions(rescore=True, predictions=str(path), plots=False),
    )
    assert scores.counts["fail_num"] == 422 and scores.counts["scored"] == 578


def test_desta_predictions_with_metadata_only(tmp_path):
    """desta's predictions.jsonl (written before fingerprints and answers existed) + MMAU metadata, no audio."""
    recs = fixture_rows("mmau.jsonl", source="synthetic")[:50]
    data = tmp_path / "mmau"
    data.mkdir()
    meta = [
        {k: r[k] for k in ("id", "question", "choices", "answer", "task")}
        | {"audio_id": f"./a/{r['id']}.wav"}
        for r in recs
    ]
    (data / "mmau-test-mini.json").write_text(json.dumps(meta), encoding="utf-8")
    preds = tmp_path / "old" / "predictions.jsonl"
    preds.parent.mkdir()
    preds.write_text(
        "\n".join(
            json.dumps({"id": r["id"], "response": r["model_output"], "error": None, "model": "old"})
            for r in recs
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    rc = main(
        [
            "eval",
            "mmau",
            "--rescore",
            "--predictions",
            str(preds),
            "--data",
            str(data),
            "--out",
            str(out),
            "--no-plots",
        ]
    )
    assert rc == 0
    s = scores_of(out)
    assert s["metrics"]["accuracy"] == pytest.approx(100 * sum(r["official_correct"] for r in recs) / 50)
    stripped = sum(r["official_correct_prefix_stripped"] for r in recs)
    assert s["metrics"]["accuracy_postprocessed"] == pytest.approx(
        100 * stripped / 50
    )  # prediction step re-run
    assert s["protocol"]["run"]["model"] == "old" and s["counts"]["items"] == 50
    # without --data the file has no questions: the error says what to pass
    assert main(["eval", "mmau", "--rescore", "--predictions", str(preds), "--out", str(out)]) == 1


def test_rescore_input_errors_name_the_file(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(EvalError, match="x.jsonl: no JSON records"):
        evaluate(
            get_task("mmar"), None, tmp_path / "o", options=RunOptions(rescore=True, predictions=str(bad))
        )
    with pytest.raises(EvalError, match="no such file"):
        evaluate(
            get_task("mmar"),
            None,
            tmp_path / "o",
            options=RunOptions(rescore=True, predictions=str(tmp_path / "nope")),
        )
    wrong = tmp_path / "w.json"
    wrong.write_text(
        json.dumps([{"id": "1", "question": "q", "choices": ["a"], "answer": "a"}]), encoding="utf-8"
    )
    with pytest.raises(EvalError, match="no record has 'answer_prediction'"):
        evaluate(
            get_task("mmar"), None, tmp_path / "o", options=RunOptions(rescore=True, predictions=str(wrong))
        )


def test_speech_ifeval_output_through_the_task(tmp_path):

    recs = fixture_rows("speech-ifeval.jsonl", set="desta2-shipped")
    closed = [r for r in recs if r["item"].startswith("closed_ended/")]
    data = tmp_path / "Speech-IFEval" / "eval_data"
    data.mkdir(parents=True)
    meta = [
        {
            "id": r["id"],
            "instruction": r["prompt"],
            "instruction_id_list": r["instruction_id_list"],
            "kwargs": r["kwargs"],
            "audio_filepath": f"{r['id']}.wav",
        }
        for r in closed
    ]
    (data / "closed_ended_questions.jsonl").write_text(
        "\n".join(json.dumps(m) for m in meta), encoding="utf-8"
    )
    outputs = tmp_path / "outputs" / "DeSTA2" / "closed_ended_questions.jsonl"
    outputs.parent.mkdir(parents=True)
    outputs.write_text(
        "\n".join(json.dumps({"id": r["id"], "response": r["response"]}) for r in closed), encoding="utf-8"
    )
    scores = evaluate(
        get_task("speech-ifeval:closed_ended"),
        data.parent,
        tmp_path / "out",
        options=RunOptions(rescore=True, predictions=str(outputs), plots=False),
    )
    assert scores.protocol["run"]["model"] == "DeSTA2"
    assert scores.counts["items"] == 933
    assert f"{scores.metrics['closed_ended_rate']:.2f}" == "83.71"  # the official rate on DeSTA2's outputs


def test_rescore_says_which_field_a_submission_lacks(tmp_path, capsys):
    """A submission without ``id`` fields was refused with "no benchmark metadata"; the field is named."""
    recs = fixture_rows("mmau.jsonl", source="desta25-shipped")[:3]
    keep = ("question", "choices", "answer", "task", "difficulty", "sub-category", "model_output")
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{k: r[k] for k in keep} for r in recs]), encoding="utf-8")
    args = ["eval", "mmau", "--rescore", "--predictions", str(path), "--out", str(tmp_path / "o"), "--no-plots"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "3 of 3 records have no 'id' field (first: record 1)" in err and "no benchmark metadata" not in err
    assert "MMAU submission record needs 'id'" in err
    path.write_text(json.dumps([{"id": r["id"], "model_output": r["model_output"]} for r in recs]), encoding="utf-8")
    assert main(args) == 1
    assert "its records lack 'question', 'choices', 'answer'): pass --data DIR" in capsys.readouterr().err
