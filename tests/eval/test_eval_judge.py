"""The judge path against a local fake OpenAI-compatible server, through SAKURA's official protocol."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from eval_helpers import ScriptedPredictor, make_judge, user_text, write_wav

from desta.eval import RunOptions, evaluate, get_task
from desta.eval.base import JudgeUnavailableError
from desta.eval.judge import JudgeSpec

ROWS = {  # track: (file, label, single q, single a, multi q, multi a)
    "Gender": (
        "g.wav",
        "female",
        "Please identify the gender of the speaker. (a) Female (b) Male",
        "(a) Female",
        "Which term of address fits this speaker? (a) Ms. (b) Mr.",
        "(a) Ms.",
    ),
    "Emotion": (
        "e.wav",
        "angry",
        "What is the emotional tone of the speaker? (a) disgust (b) fear (c) sad (d) angry",
        " (d) angry",
        "Which sentence matches the emotion? (a) So scary. (b) I'm so furious!",
        "(b) I'm so furious!",
    ),
    "Animal": (
        "dog28.wav",
        "dog",
        "Which animal is the source of the sound? (a) dog (b) crow (c) cow (d) rooster",
        "(a) dog",
        "What physical feature does the animal have? (a) Feathers (b) Scales (c) Claws (d) Horns",
        "(c) Claws",
    ),
    "Language": (
        "de.wav",
        "German",
        "Choose the language spoken. (a) Chinese (b) Korean (c) Spanish (d) German",
        "(d) German",
        "Which ISO code matches the language? (a) zh (b) ko (c) es (d) de",
        "(d) de",
    ),
}
# what the model answers for each question, and what the fake judge does with it
RESPONSES = {
    "gender of the speaker": "Female",  # judged correct
    "term of address": "Mr.",  # incorrect
    "emotional tone": "The speaker sounds angry.",  # correct
    "matches the emotion": "I'm so furious!",  # correct
    "source of the sound": "GARBLE",  # the judge answers without a Judgement line -> unparsed
    "physical feature": "Claws",  # correct
    "language spoken": "SLOW",  # the judge times out -> judge failure
    "ISO code": "zh",  # incorrect
}
CORRECT = {"Female", "The speaker sounds angry.", "I'm so furious!", "Claws"}


def make_sakura(root: Path) -> Path:
    for track, (file, label, sq, sa, mq, ma) in ROWS.items():
        folder = root / "data" / track
        folder.mkdir(parents=True)
        with open(folder / "metadata.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(
                [
                    "file",
                    "attribute_label",
                    "single_instruction",
                    "single_answer",
                    "multi_instruction",
                    "multi_answer",
                ]
            )
            w.writerow([file, label, sq, sa, mq, ma])
        write_wav(folder / "audio" / file)
    return root


def fake_judge_reply(body):
    user = body["messages"][-1]["content"]
    response = user.split("Model generated response: ")[1].split("\n")[0]
    if response == "GARBLE":
        return ["I cannot decide."]
    if response == "SLOW":
        return 1.5  # seconds: longer than the client's timeout
    verdict = "correct" if response in CORRECT else "incorrect"
    return [f"Explanation: checked.\nJudgement: {verdict}"]


def answer(conv):
    text = user_text(conv)
    return next(v for k, v in RESPONSES.items() if k in text)


def test_sakura_judge_protocol_failures_and_cache(tmp_path, fake_openai):
    server = fake_openai(fake_judge_reply)
    data = make_sakura(tmp_path / "SAKURA")
    out = tmp_path / "out"
    task = get_task("sakura")
    items = task.load(data)
    assert [it.id for it in items[:2]] == ["Animal/dog28.wav/single", "Animal/dog28.wav/multi"]
    conv = task.prompt(next(it for it in items if it.id == "Gender/g.wav/single"))
    assert conv[0]["content"].endswith("Choose one of the options without any explanation.")
    assert conv[1]["content"] == "<|AUDIO|> Please identify the gender of the speaker. (a) Female (b) Male"
    out.mkdir()
    with make_judge(server.url, out, timeout_s=0.5) as judge:
        scores = evaluate(task, data, out, ScriptedPredictor(answer), judge, RunOptions(progress=False))
    # single: Gender 1, Emotion 1, Animal 0 (unparsed), Language 0 (timeout); multi: 0, 1, 1, 0
    m = scores.metrics
    assert (m["single_hop"], m["multi_hop"], m["accuracy"]) == (50.0, 50.0, 50.0)
    # the deterministic option match (not the official protocol) needs no judge: GARBLE and SLOW pick
    # no option, "Mr." and "zh" the wrong one; the other four pick the answer
    assert (m["option_match_single_hop"], m["option_match_multi_hop"]) == (50.0, 50.0)
    assert scores.details["Animal/dog28.wav/multi"]["option_match"] is True
    assert "NOT the official protocol" in scores.protocol["option_match"]
    assert (
        scores.counts["unparsed"] == 1
        and scores.counts["judge_failures"] == 1
        and scores.counts["scored"] == 6
    )
    assert scores.breakdown["track"]["Emotion"] == {"score": 100.0, "n": 2}
    first = server.requests[0]
    assert first["model"] == "gpt-4o-2024-11-20" and first["temperature"] == 0.0 and first["top_p"] == 0.9
    assert first["messages"][0]["content"].startswith("You are a good judge.")
    assert "Ground truth answer: (d) angry" in json.dumps(server.requests)  # the CSV's leading space stripped
    stamp = json.loads((out / "scores.json").read_text())["protocol"]["judge_run"]
    assert stamp["substituted"] is False and stamp["failures"] == 1 and stamp["unparsed_samples"] == 1
    # rescoring reuses cached judgments; only the failed request is sent again (2 tries)
    sent = len(server.requests)
    with make_judge(server.url, out, timeout_s=0.5) as judge:
        again = evaluate(task, data, out, None, judge, RunOptions(rescore=True, plots=False))
    assert len(server.requests) - sent == 2
    assert again.metrics["accuracy"] == 50.0


def test_judge_substitution_is_stamped_and_reported(tmp_path, fake_openai):
    server = fake_openai(fake_judge_reply)
    data = make_sakura(tmp_path / "SAKURA")
    out = tmp_path / "out"
    task = get_task("sakura:Gender,single")
    with make_judge(server.url, model="local-qwen") as judge:
        scores = evaluate(task, data, out, ScriptedPredictor(answer), judge, RunOptions(progress=False))
    assert scores.metrics["accuracy"] == 100.0 and scores.counts["items"] == 1
    assert server.requests[0]["model"] == "local-qwen"
    assert scores.protocol["judge_run"]["models"] == {"gpt-4o-2024-11-20": "local-qwen"}
    assert "Judge substituted" in (out / "report.md").read_text()


def test_judge_retries_server_errors_and_requests_missing_samples(tmp_path, fake_openai):
    server = fake_openai(lambda body: ["3"])  # ignores n: one choice per request
    server.fail_next = [503]
    spec = JudgeSpec(model="gpt-4o-mini", temperature=0.5, top_p=0.95, n=3, max_tokens=1024)
    with make_judge(server.url, max_retries=2) as judge:
        j = judge.ask(spec, [{"role": "user", "content": "rate"}], lambda t: int(t) if t.isdigit() else None)
    assert j.values == (3, 3, 3) and j.error is None
    assert [r.get("n") for r in server.requests] == [3, 3, 2, None]  # 503, then 1 choice at a time
    assert judge.retries == 1


def test_task_without_judge_says_how_to_configure_one(tmp_path):
    data = make_sakura(tmp_path / "SAKURA")
    with pytest.raises(JudgeUnavailableError, match="--judge-endpoint"):
        evaluate(
            get_task("sakura"),
            data,
            tmp_path / "out",
            ScriptedPredictor(answer),
            None,
            RunOptions(progress=False, plots=False),
        )


def test_sakura_scores_no_items_as_zero_without_a_judge():
    scores = get_task("sakura").score([], {})
    assert scores.metrics["accuracy"] == 0.0 and scores.metrics["option_match_accuracy"] == 0.0
