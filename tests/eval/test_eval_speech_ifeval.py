"""Speech-IFEval: IFEval rule checks, the CoT judge, IFrate, the text-only reference and forgetting rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import ScriptedPredictor, make_judge, user_text, write_wav

from desta.eval import RunOptions, evaluate, get_task
from desta.eval.ifeval import IFEvalArgumentError, check_instructions

SEED = "[00:00:00 - 00:00:05] He sat down, weak, bewildered.(Gender: Female, Emotion: sad)"
CLOSED = [
    (
        {"instruction_id_list": ["change_case:english_capital"], "kwargs": [{}]},
        "Convert the provided spoken statement into text.\nYour entire response should be in all capital letters.",
        "HE SAT DOWN, WEAK AND BEWILDERED, AND ONE THOUGHT WAS UPPERMOST IN HIS MIND",
    ),  # follows
    (
        {"instruction_id_list": ["change_case:english_capital"], "kwargs": [{}]},
        "Convert the provided spoken statement into written words.\nWrite your response using only uppercase letters.",
        "there is no logical impossibility",
    ),  # lower case: does not follow
    (
        {"instruction_id_list": ["detectable_format:json_format"], "kwargs": [{}]},
        "Convert the provided spoken phrase into written text.\nReturn your response as a single JSON object.",
        '```json\n{"text": "humpy dumpy fell downstairs"}\n```',
    ),  # follows (fences allowed)
]
CREATIVE = [
    (
        {"instruction_id_list": ["detectable_format:number_bullet_lists"], "kwargs": [{"num_bullets": 3}]},
        "Summarize the audio by providing exactly 3 bullet points.",
        "* calm\n* short\n- polite",
    ),  # follows
    (
        {"instruction_id_list": ["detectable_format:number_bullet_lists"], "kwargs": [{"num_bullets": 4}]},
        "Write a short narrative in 4 bullet points.",
        "* once\n* upon",
    ),  # 2 bullets: does not follow
]
COT = [
    (
        'Count the words. Choose the answer from "eight" or "four".\nThink step by step.',
        "Step 1: ... so eight.",
    ),
    ('Explain the sarcasm. Choose the answer from "a" or "b".\nBreak this question down.', "b"),
]


def make_speech_ifeval(root: Path) -> Path:
    (root / "eval_data").mkdir(parents=True)
    with open(root / "eval_data" / "closed_ended_questions.jsonl", "w") as f:
        for i, (rules, instr, _) in enumerate(CLOSED):
            f.write(
                json.dumps(
                    {
                        "id": i,
                        "audio_filepath": f"Automatic_speech_recognition/{i}.flac",
                        "textual_audio": SEED,
                        "instruction": instr,
                        "dataset": "Automatic_speech_recognition",
                        "metric": "wer",
                        **rules,
                        "label": "HE SAT DOWN",
                    }
                )
                + "\n"
            )
            write_wav(root / "audios" / "Automatic_speech_recognition" / f"{i}.flac")
    with open(root / "eval_data" / "creative_writing.jsonl", "w") as f:
        for i, (rules, instr, _) in enumerate(CREATIVE):
            f.write(
                json.dumps(
                    {
                        "audio_filepath": f"Gender_recognition/c{i}.wav",
                        "key": f"bullet-points-{i}",
                        "textual_audio": SEED,
                        "instruction": instr,
                        "dataset": "Gender_recognition",
                        "metric": "open",
                        **rules,
                        "id": 934 + i,
                    }
                )
                + "\n"
            )
            write_wav(root / "audios" / "Gender_recognition" / f"c{i}.wav")
    with open(root / "eval_data" / "chain-of-thought.jsonl", "w") as f:
        for i, (instr, _) in enumerate(COT):
            f.write(
                json.dumps(
                    {
                        "audio_filepath": f"MMAU/t{i}.wav",
                        "textual_audio": SEED,
                        "instruction": instr,
                        "dataset": "MMAU",
                        "metric": "cot",
                    }
                )
                + "\n"
            )
            write_wav(root / "audios" / "MMAU" / f"t{i}.wav")
    return root


def answer(conv):
    text = user_text(conv)
    for _, instr, resp in CLOSED + CREATIVE:
        if instr in text:
            return resp
    return next(resp for instr, resp in COT if instr in text)


def cot_judge(body):
    user = body["messages"][-1]["content"]
    return ["The response reasons in steps.\nResult: YES" if "Step 1" in user else "Result: NO"]


def test_speech_ifeval_ifrate_and_forgetting_rate(tmp_path, fake_openai):
    server = fake_openai(cot_judge)
    data = make_speech_ifeval(tmp_path / "Speech-IFEval")
    task = get_task("speech-ifeval")
    conv = task.prompt(task.load(data)[0])
    assert conv[0]["content"] == "Follow the given instructions."
    assert conv[1]["content"].startswith("<|AUDIO|> Convert the provided spoken statement into text.\n")
    (tmp_path / "ref.json").write_text(json.dumps({"metrics": {"ifrate": 80.0}}))
    with make_judge(server.url) as judge:
        scores = evaluate(
            task,
            data,
            tmp_path / "out",
            ScriptedPredictor(answer),
            judge,
            RunOptions(progress=False, plots=False),
            reference_scores=tmp_path / "ref.json",
        )
    assert scores.metrics["closed_ended_rate"] == pytest.approx(200 / 3)
    assert scores.metrics["creative_writing_rate"] == pytest.approx(50.0)
    assert scores.metrics["chain_of_thought_rate"] == pytest.approx(50.0)
    ifrate = (200 / 3 + 50 + 50) / 3
    assert scores.metrics["ifrate"] == pytest.approx(ifrate)
    assert scores.metrics["forgetting_rate"] == pytest.approx(100 * (ifrate - 80) / 80)
    assert server.requests[0]["model"] == "gpt-4o-2024-11-20" and "temperature" not in server.requests[0]
    assert server.requests[0]["messages"][0]["content"].startswith(
        "You will be given a user input and a model response."
    )
    assert scores.counts["scored"] == 7


def test_text_only_reference_run_uses_the_seed_transcript(tmp_path):
    data = make_speech_ifeval(tmp_path / "Speech-IFEval")
    task = get_task("speech-ifeval:closed_ended,creative_writing")
    predictor = ScriptedPredictor(answer, decode_audio=False)
    scores = evaluate(
        task, data, tmp_path / "ref", predictor, None, RunOptions(progress=False, plots=False, text_only=True)
    )
    assert all("audios" not in m for c in predictor.seen for m in c)
    assert predictor.seen[0][1]["content"].startswith(SEED + "\n\nConvert")
    assert scores.metrics["ifrate"] == pytest.approx((200 / 3 + 50) / 2)


@pytest.mark.parametrize(
    ("response", "ids", "kwargs", "strict", "loose"),
    [
        ('"wrapped answer"', ["startend:quotation"], [{}], True, True),
        ("wrapped answer", ["startend:quotation"], [{}], False, False),
        (
            "Sure:\n*** one\n*** two",
            ["length_constraints:number_paragraphs"],
            [{"num_paragraphs": 2}],
            False,
            True,
        ),
        ("Hello world, again", ["punctuation:no_comma"], [{}], False, False),
        (
            "one two three four",
            ["length_constraints:number_words"],
            [{"num_words": 4, "relation": "less than"}],
            False,
            False,
        ),
        (
            "one two three",
            ["length_constraints:number_words"],
            [{"num_words": 4, "relation": "less than"}],
            True,
            True,
        ),
        (
            "It ends here. Any other questions?",
            ["startend:end_checker"],
            [{"end_phrase": "Any other questions?"}],
            True,
            True,
        ),
        ("<<My Title>>\nbody", ["detectable_format:title"], [{}], True, True),
        (
            "**Note:** done",
            ["detectable_format:number_highlighted_sections"],
            [{"num_highlights": 1}],
            True,
            True,
        ),
        (
            "One. Two! Three?",
            ["length_constraints:number_sentences"],
            [{"num_sentences": 3, "relation": "at least"}],
            True,
            True,
        ),
        (  # punkt reads "B. C." as one sentence (initials): two sentences, not three
            "A. B. C.",
            ["length_constraints:number_sentences"],
            [{"num_sentences": 3, "relation": "less than"}],
            True,
            True,
        ),
        (
            "Dr. Smith arrived.",
            ["length_constraints:number_sentences"],
            [{"num_sentences": 2, "relation": "at least"}],
            False,
            False,
        ),
        ("the cat sat", ["keywords:forbidden_words"], [{"forbidden_words": ["cat"]}], False, False),
        ("the category", ["keywords:forbidden_words"], [{"forbidden_words": ["cat"]}], True, True),
        ("a\n******\nb", ["combination:two_responses"], [{}], True, True),
        ("My answer is maybe.", ["detectable_format:constrained_response"], [{}], True, True),
        ("x", ["no_such:instruction"], [{}], False, False),
        ("   ", ["punctuation:no_comma"], [{}], False, False),  # an empty response follows nothing
    ],
)
def test_ifeval_checks_strict_and_loose(response, ids, kwargs, strict, loose):
    assert check_instructions(response, ids, kwargs).follow_all is strict
    assert check_instructions(response, ids, kwargs, loose=True).follow_all is loose


def test_ifeval_kwargs_with_nulls_and_repeat_prompt():
    # Hugging Face IFEval rows store every kwarg, unused ones as null
    kw = [{"num_bullets": None, "prompt_to_repeat": None, "end_phrase": None}]
    res = check_instructions("Say hi. hi", ["combination:repeat_prompt"], kw, prompt="Say hi.")
    assert res.follow_list == (True,)


def _item(key, rules, part="closed_ended"):
    from desta.eval.base import Item

    data = {"instruction": "Say it.", **rules}
    return Item(key, ("a.wav",), data, {"part": part, "dataset": "d"})


def test_task_scores_with_speech_ifevals_own_checks():
    task = get_task("speech-ifeval:closed_ended,creative_writing")
    items = [
        _item("closed_ended/0", {"instruction_id_list": ["change_case:english_capital"], "kwargs": [{}]}),
        _item(
            "creative_writing/1",
            {
                "instruction_id_list": ["detectable_format:number_bullet_lists"],
                "kwargs": [{"num_bullets": 3}],
            },
            "creative_writing",
        ),
    ]
    # Upper case but not English (Google's check asks langdetect for "en"); "•" and digit bullets.
    predictions = {
        "closed_ended/0": "EL GATO NEGRO DUERME EN LA CASA",
        "creative_writing/1": "• uno\n• dos\n3. tres",
    }
    scores = task.score(items, predictions)
    assert scores.details["closed_ended/0"]["follow_instruction_list"] == [True]
    assert scores.details["creative_writing/1"]["follow_instruction_list"] == [True]
    assert not check_instructions(
        predictions["closed_ended/0"], ["change_case:english_capital"], [{}]
    ).follow_all


def test_bad_kwargs_name_the_item():
    task = get_task("speech-ifeval:closed_ended")
    bad = _item("closed_ended/7", {"instruction_id_list": ["startend:end_checker"], "kwargs": [{"bogus": 1}]})
    with pytest.raises(IFEvalArgumentError, match="closed_ended/7.*bogus"):
        task.score([bad], {bad.id: "a response"})
