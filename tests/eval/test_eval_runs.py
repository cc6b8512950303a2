"""Runs as users do them: stratified limits, the fingerprint guard, all-failed runs, the judge checked
before generation, and a local (substitute) judge end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import ScriptedPredictor, make_judge, write_wav
from test_eval_judge import answer as sakura_answer
from test_eval_judge import fake_judge_reply, make_sakura

from desta.cli import main
from desta.eval import RunOptions, evaluate, get_task
from desta.eval.base import EvalError, Item, JudgeUnavailableError
from desta.eval.sampling import SampleOptions, stratified_sample


def make_items(sizes: dict[str, int]) -> list[Item]:
    return [Item(f"{s}-{i}", (), {}, {"task": s}) for s, n in sizes.items() for i in range(n)]


def test_stratified_sample_is_proportional_seeded_and_ordered():
    items = make_items({"sound": 60, "music": 30, "speech": 10})
    picked = stratified_sample(items, SampleOptions(limit=10, key="task", seed=0))
    by = [it.groups["task"] for it in picked]
    assert (by.count("sound"), by.count("music"), by.count("speech")) == (6, 3, 1)
    assert [items.index(it) for it in picked] == sorted(items.index(it) for it in picked)  # benchmark order
    assert picked == stratified_sample(items, SampleOptions(limit=10, key="task", seed=0))
    assert picked != stratified_sample(items, SampleOptions(limit=10, key="task", seed=1))
    assert [it.id for it in picked] != [it.id for it in items[:10]]
    per = stratified_sample(items, SampleOptions(limit_per=4, key="task"))
    assert len(per) == 12 and all(
        sum(it.groups["task"] == s for it in per) == 4 for s in ("sound", "music", "speech")
    )
    both = stratified_sample(items, SampleOptions(limit=5, limit_per=4, key="task"))
    assert len(both) == 5
    odd = stratified_sample(make_items({"a": 1, "b": 1, "c": 1}), SampleOptions(limit=2, key="task"))
    assert len(odd) == 2
    with pytest.raises(EvalError, match="--limit must be at least 1"):
        stratified_sample(items, SampleOptions(limit=0, key="task"))


def make_mmau(root: Path, n_per_task: int = 3) -> Path:
    records = []
    for task in ("sound", "music", "speech"):  # the file is sorted by task, as MMAU's is
        for i in range(n_per_task):
            rid = f"{task}{i}"
            records.append(
                {
                    "id": rid,
                    "audio_id": f"./a/{rid}.wav",
                    "question": f"Q {rid}?",
                    "choices": ["yes", "no"],
                    "answer": "yes",
                    "task": task,
                }
            )
            write_wav(root / "a" / f"{rid}.wav")
    (root / "mmau-test-mini.json").write_text(json.dumps(records))
    return root


def test_limit_samples_every_task_and_the_report_says_so(tmp_path):
    data = make_mmau(tmp_path / "d")
    pred = ScriptedPredictor(lambda c: "yes")
    scores = evaluate(
        get_task("mmau"),
        data,
        tmp_path / "out",
        pred,
        options=RunOptions(limit=3, progress=False, plots=False),
    )
    assert scores.counts["items"] == 3
    assert sorted(scores.breakdown["task"]) == [
        "music",
        "sound",
        "speech",
    ]  # not the first 3 rows (all sound)
    report = (tmp_path / "out" / "report.md").read_text()
    assert (
        "Stratified sample: --limit 3" in report
        and "Not compared: this run scores a sample of 3 items" in report
    )


class Settings(ScriptedPredictor):
    def __init__(self, temperature: float) -> None:
        super().__init__(lambda c: "yes", decode_audio=False)
        self.temperature = temperature

    @property
    def settings(self):
        return {"backend": "scripted", "temperature": self.temperature}


def test_predictions_of_another_decoding_are_not_reused(tmp_path):
    data = make_mmau(tmp_path / "d", 1)
    out = tmp_path / "out"
    evaluate(
        get_task("mmau"), data, out, Settings(0.0), options=RunOptions(limit=2, progress=False, plots=False)
    )
    again = Settings(0.0)  # same setup: resumes, generating only what is missing
    evaluate(get_task("mmau"), data, out, again, options=RunOptions(progress=False, plots=False))
    assert len(again.seen) == 1
    info = json.loads((out / "run.json").read_text())
    assert info["decoding"] == {"backend": "scripted", "temperature": 0.0} and len(info["fingerprint"]) == 16
    with pytest.raises(
        EvalError, match="another setup .*temperature': 0.0.*temperature': 0.7.*another --out"
    ):
        evaluate(get_task("mmau"), data, out, Settings(0.7), options=RunOptions(progress=False, plots=False))
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 3 and len({json.loads(x)["fingerprint"] for x in lines}) == 1  # nothing mixed in
    # a rescore elsewhere names the model and decoding recorded with the predictions
    opts = RunOptions(rescore=True, predictions=str(out / "predictions.jsonl"), plots=False)
    evaluate(get_task("mmau"), data, tmp_path / "re", None, options=opts)
    report = (tmp_path / "re" / "report.md").read_text()
    assert "Model: `scripted`; decoding: `{'backend': 'scripted', 'temperature': 0.0}`" in report


def test_a_run_where_every_item_failed_exits_nonzero_with_the_reason(tmp_path, fake_openai, capsys):
    data = make_mmau(tmp_path / "d", 1)
    server = fake_openai(lambda body: ["yes"], models=["m"])
    server.fail_next = [400] * 20  # the endpoint refuses every request (e.g. audio it cannot take)
    out = tmp_path / "out"
    rc = main(
        ["eval", "mmau", "--data", str(data), "--endpoint", server.url, "--out", str(out), "--no-plots"]
    )
    assert rc != 0
    err = capsys.readouterr().err
    assert "every one of the 3 items failed to generate" in err and "HTTP 400" in err
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3  # the failures are kept


def test_judge_is_checked_before_any_generation(tmp_path, fake_openai):
    data = make_sakura(tmp_path / "SAKURA")
    pred = ScriptedPredictor(sakura_answer)
    with pytest.raises(JudgeUnavailableError, match="Checked before generating"):
        evaluate(get_task("sakura"), data, tmp_path / "o1", pred, None, RunOptions(progress=False))
    server = fake_openai(fake_judge_reply, models=["some-other-model"])
    with make_judge(server.url, model="local-judge") as judge:
        with pytest.raises(JudgeUnavailableError, match="'local-judge' is not served"):
            evaluate(get_task("sakura"), data, tmp_path / "o2", pred, judge, RunOptions(progress=False))
    assert pred.seen == [] and server.requests == []
    assert not (tmp_path / "o1" / "predictions.jsonl").exists()


def test_local_judge_end_to_end_through_the_cli(tmp_path, fake_openai):
    """An audio model behind one OpenAI-compatible server, a local text LLM judging behind another."""
    data = make_sakura(tmp_path / "SAKURA")
    model = fake_openai(
        lambda body: [
            sakura_answer([{"role": "user", "content": body["messages"][-1]["content"][-1]["text"]}])
        ],
        models=["audio-lm"],
    )
    judge = fake_openai(fake_judge_reply, models=["qwen-local"])
    out = tmp_path / "out"
    argv = ["eval", "sakura:Gender,Emotion", "--data", str(data), "--endpoint", model.url, "--out", str(out)]
    argv += ["--judge-endpoint", judge.url, "--judge-model", "qwen-local", "--no-plots"]
    assert main(argv) == 0
    scores = json.loads((out / "scores.json").read_text())
    # Gender single right, multi wrong ("Mr."); Emotion both right
    assert scores["metrics"]["single_hop"] == 100.0 and scores["metrics"]["multi_hop"] == 50.0
    assert scores["metrics"]["option_match_accuracy"] == 75.0
    assert {r["model"] for r in judge.requests} == {"qwen-local"} and judge.model_lists == 1
    stamp = scores["protocol"]["judge_run"]
    assert stamp["substituted"] is True and stamp["models"] == {"gpt-4o-2024-11-20": "qwen-local"}
    report = (out / "report.md").read_text()
    assert "a substitute for the official judge" in report and "Model: `audio-lm`" in report


def test_a_part_of_a_benchmark_is_never_set_against_its_published_whole(tmp_path, fake_openai):
    data = make_sakura(tmp_path / "SAKURA")
    server = fake_openai(fake_judge_reply, models=["gpt-4o-2024-11-20"])  # the official judge model
    with make_judge(server.url) as judge:
        evaluate(
            get_task("sakura:Gender"),
            data,
            tmp_path / "out",
            ScriptedPredictor(sakura_answer),
            judge,
            RunOptions(progress=False, plots=False),
        )
    report = (tmp_path / "out" / "report.md").read_text()
    assert (
        "Not compared: this run covers tracks ['Gender'] x hops ['single', 'multi'], not all of SAKURA"
        in report
    )
    assert "ckyang1124/SAKURA leaderboard" in report and "ours − published" not in report
    assert "`option_match_*`: deterministic option match, NOT the official SAKURA protocol" in report
    assert server.model_lists == 1  # the official judge model was checked before generating
