"""Pieces of `desta recipe tiny` that run without a model: answer trimming, task targets, the model card,
and desta-tiny's one definition (the packaged recipe)."""

from __future__ import annotations

import json
from pathlib import Path

from desta.data.filters import trim_truncated
from desta.data.records import AudioRecord, write_jsonl
from desta.messages import AUDIO_LOCATOR
from desta.recipes.tiny import TinyOptions
from desta.recipes.tiny.card import model_card
from desta.recipes.tiny.stages import task_targets_stage

ROOT = Path(__file__).resolve().parents[2]


def test_trim_truncated_keeps_full_sentences_and_drops_loops():
    assert trim_truncated("The speaker is calm. She talks about the weather and") == "The speaker is calm."
    assert trim_truncated("no sentence end here at all") is None
    assert trim_truncated("Ok. ") is None  # too short to be an answer
    loop = "it is a dog it is a dog it is a dog it is a dog. End."
    assert trim_truncated(loop) is None


def test_readme_question_probe_needs_both_content_and_gender():
    from desta.recipes.tiny.probes import PERCEPTION_PROBES, perception_items

    probe = next(p for p in PERCEPTION_PROBES if p.name == "content+gender")
    assert probe.question == "What is said, and is the speaker a man or a woman?"
    gold = ("The dog barked at the mailman all morning", "Male")
    assert probe.score(
        'The speaker says "The dog barked at the mailman all morning." The speaker is a man.', gold
    )
    assert not probe.score("The speaker is a man.", gold)  # content missing
    assert not probe.score("The dog barked at the mailman all morning. A woman speaks.", gold)  # gender wrong
    rec = AudioRecord("x", "x.wav", "Toy", transcript=gold[0], attributes={"Gender": "Male"})
    assert "content+gender" in {it["probe"] for it in perception_items([rec])}
    assert "content+gender" not in {it["probe"] for it in perception_items([rec.with_(attributes={})])}


def test_task_targets_use_the_same_clips_with_raw_labels(tmp_path):
    corpus = tmp_path / "corpus"
    recs = [
        AudioRecord(
            id="a",
            audio="audio/a.wav",
            corpus="synth",
            transcript="Hello there.",
            kind="speech",
            attributes={"Gender": "Female", "Language": "English", "Speaking speed": "Fast"},
        ),  # fmt: skip
        AudioRecord(id="b", audio="audio/b.wav", corpus="synth", caption="phone ringing", kind="sound"),
    ]
    write_jsonl(corpus / "train.jsonl", [r.to_dict() for r in recs])
    rows = [
        {
            "id": f"synth/{r.id}#0",
            "messages": [
                {
                    "role": "user",
                    "content": f"{AUDIO_LOCATOR}\nTell me a story about it.",
                    "audios": [{"audio": r.audio}],
                }
            ],
            "response": "A long self-generated answer.",
        }  # fmt: skip
        for r in recs
    ]
    self_path = tmp_path / "self.jsonl"
    write_jsonl(self_path, rows)
    out = task_targets_stage(TinyOptions(out_dir=str(tmp_path)), corpus, self_path)
    task = [json.loads(line) for line in out.read_text().splitlines()]
    assert [t["id"] for t in task] == [r["id"] for r in rows]
    answers = {t["id"].split("/")[1][0]: (t["messages"][0]["content"], t["response"]) for t in task}
    q, a = answers["a"]
    assert q.startswith(f"{AUDIO_LOCATOR}\n") and a in {"Hello there.", "Female.", "English.", "Fast."}
    assert answers["b"] == (f"{AUDIO_LOCATOR}\nWhat sound is this?", "Phone ringing.")


def test_model_card_reports_every_variant_and_the_text_baseline(tmp_path):
    report = {
        "results": {
            "self": {"perception": {"gender": {"accuracy": 0.75, "n": 40}}, "instruction_following": {"rate": 0.5, "n": 32},
                     "examples": [{"probe": "gender", "question": "Man or woman?", "gold": "female", "answer": "A woman.", "correct": True}]},
            "task": {"perception": {"gender": {"accuracy": 0.8, "n": 40}}, "instruction_following": {"rate": 0.25, "n": 32}, "examples": []},
            "text_backbone": {"instruction_following": {"rate": 0.5, "n": 32}},
        },
        "timings_s": {"data": 600, "train_self": 900, "train_task": 900},
        "options": TinyOptions().__dict__,
    }  # fmt: skip
    card = model_card(report, tmp_path)
    assert "| gender | 75% (n=40) | 80% (n=40) |" in card
    assert "| instruction following | 50% | 25% |" in card
    assert "+0% for self targets" in card and "-50% for task targets" in card
    assert '"A woman."' in card and "results.png" in card


def test_shipped_adapter_is_small_and_matches_its_config():
    """The packaged desta-tiny: fp16 weights under 20 MB, LoRA tensors exactly when its config says so,
    and a model card with the held-out table and the self-versus-task comparison."""
    import json

    from safetensors import safe_open

    from desta.model.load import packaged_model_dir

    d = packaged_model_dir()
    weights = d / "model.safetensors"
    assert weights.stat().st_size < 20 * 1024 * 1024
    config = json.loads((d / "config.json").read_text())
    with safe_open(str(weights), "pt") as f:
        keys = list(f.keys())
        assert {str(f.get_slice(k).get_dtype()) for k in keys} == {"F16"}
    assert any("lora" in k for k in keys) == bool(config.get("use_lora"))
    card = (d / "README.md").read_text()
    assert "| instruction following |" in card and "The paper's comparison at this scale" in card


class _ScriptedModel:
    """Answers each question from a table (question prefix -> answer), recording what it was asked."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table, self.asked = table, []

    def generate(self, convs, max_new_tokens=64):
        from types import SimpleNamespace

        out = []
        for conv in convs:
            q = conv[-1]["content"].split("\n", 1)[1]
            self.asked.append(q)
            out.append(SimpleNamespace(text=next((a for k, a in self.table.items() if q.startswith(k)), "")))
        return out


def test_evaluation_keeps_every_answer_and_scores_each_format_check(tmp_path):
    from desta.recipes.tiny.card import if_check_lines
    from desta.recipes.tiny.evaluate import evaluate_model
    from desta.rules import FORMAT_CHECKS

    corpus = tmp_path / "corpus"
    recs = [
        AudioRecord(f"s{i}", f"audio/s{i}.wav", "synth", transcript=f"Sentence number {i} is here.",
                    attributes={"Gender": "Female" if i % 2 else "Male", "Language": "English"}, kind="speech")
        for i in range(10)
    ]  # fmt: skip
    write_jsonl(corpus / "test.jsonl", [r.to_dict() for r in recs])
    model = _ScriptedModel(
        {"Is the speaker": "The speaker is a woman.", "Describe": "a person reads a sentence"}
    )
    res = evaluate_model(model, corpus, TinyOptions(eval_clips=10, eval_if_items=10))
    samples = res["samples"]
    assert len(samples) == len(model.asked)  # one record per question asked, none lost
    gender = [s for s in samples if s["probe"] == "gender"]
    assert len(gender) == 10 and sum(s["correct"] for s in gender) == 5
    assert res["perception"]["gender"] == {"accuracy": 0.5, "n": 10}
    if_samples = [s for s in samples if s["probe"] == "instruction_following"]
    assert len(if_samples) == 10 and {s["check"] for s in if_samples} <= {c.name for c in FORMAT_CHECKS}
    summary = res["instruction_following"]
    assert summary["n"] == 10 and sum(c["n"] for c in summary["per_check"].values()) == 10
    # item i gets format check i % 8 and question i % 2: the "Describe" items (0, 2, 4, 6, 8) are answered
    # "a person reads a sentence" (lowercase, 5 words, no commas), the "What is ..." items get "" (fails all)
    assert summary["per_check"]["lowercase"] == {"rate": 1.0, "n": 2}  # items 0 and 8
    assert summary["per_check"]["under_15_words"] == {"rate": 1.0, "n": 1}  # item 2
    assert summary["per_check"]["starts_yes_no"] == {"rate": 0.0, "n": 1}  # item 4
    assert summary["per_check"]["uppercase"] == {"rate": 0.0, "n": 2}  # items 1 and 9 ("")
    assert summary["rate"] == 0.3 == sum(s["correct"] for s in if_samples) / 10
    assert summary["mean_words"] == 2.5
    card = "\n".join(if_check_lines({"self": res}))
    assert "| lowercase |" in card and "mean answer length" in card
    assert if_check_lines({"self": {"instruction_following": {"rate": 0.5, "n": 2}}}) == []  # older runs


def test_card_reads_instruction_following_with_answer_length_and_rescoring_must_agree(tmp_path):
    import pytest

    from desta.errors import DeSTAError
    from desta.recipes.tiny.evaluate import check_same_rate

    def if_res(rate, words):
        return {"rate": rate, "n": 8, "mean_words": words,
                "per_check": {"starts_yes_no": {"rate": rate, "n": 8}}}  # fmt: skip

    report = {
        "results": {
            "self": {"perception": {"gender": {"accuracy": 0.5, "n": 10}}, "instruction_following": if_res(0.25, 15.7)},
            "task": {"perception": {"gender": {"accuracy": 0.4, "n": 10}}, "instruction_following": if_res(0.5, 5.2)},
        },
        "timings_s": {},
        "options": TinyOptions().__dict__,
    }  # fmt: skip
    card = model_card(report, tmp_path)
    assert "| starts_yes_no | 25% (n=8) | 50% (n=8) |" in card
    assert "average 15.7 words (self) and 5.2 words (task)" in card
    check_same_rate({"rate": 0.25, "n": 8}, {"rate": 0.25, "n": 8}, "self")
    with pytest.raises(DeSTAError, match="rerun the evaluation"):
        check_same_rate({"rate": 0.25, "n": 8}, {"rate": 0.5, "n": 8}, "self")


def test_card_renders_a_compound_gold_the_same_fresh_or_cached(tmp_path):
    def card(gold):
        ex = {"probe": "content+gender", "question": "Q?", "gold": gold, "answer": "A.", "correct": False}
        res = {"perception": {"gender": {"accuracy": 0.5, "n": 2}}, "instruction_following": {"rate": 0.5, "n": 2},
               "examples": [ex]}  # fmt: skip
        return model_card(
            {"results": {"self": res}, "timings_s": {}, "options": TinyOptions().__dict__}, tmp_path
        )

    fresh, cached = card(("J", "Female")), card(["J", "Female"])  # a cached run reads JSON lists
    assert fresh == cached and "(gold: J / Female)" in fresh


def test_desta_tiny_is_defined_once_by_the_packaged_recipe():
    from desta.data.generate import TRAINING_SYSTEM_PROMPT
    from desta.recipes.tiny import recipe_path, tiny_model_config
    from desta.recipes.tiny.stages import BREVITY
    from desta.train.config import load_config

    link = ROOT / "recipes" / "desta-tiny.yaml"
    assert link.is_symlink() and link.resolve() == recipe_path().resolve()
    cfg = tiny_model_config()
    assert cfg == load_config(link).model
    assert cfg.use_lora and cfg.name == "desta-tiny" and not cfg.pad_audio_to_30s
    assert cfg.system_prompt == TRAINING_SYSTEM_PROMPT + BREVITY
    shipped = json.loads((ROOT / "src" / "desta" / "assets" / "desta-tiny" / "config.json").read_text())
    for key in (
        "encoder_model_id",
        "llm_model_id",
        "prompt_size",
        "qformer_num_hidden_layers",
        "use_lora",
        "lora_r",
    ):
        assert shipped[key] == getattr(cfg, key), key  # the shipped adapter was trained from this file


def test_readme_train_command_needs_no_validation_file():
    from desta.recipes.tiny import recipe_path
    from desta.train.config import load_config

    cfg = load_config(
        recipe_path(), ["data.train=gen/shard-00000.jsonl", "data.data_root=corpus", "run.out_dir=o"]
    )
    assert cfg.data.validation == "" and cfg.data.train == "gen/shard-00000.jsonl"


def test_task_targets_refuse_a_speech_clip_without_labels(tmp_path):
    import pytest

    from desta.errors import DeSTAError

    rec = AudioRecord(id="a", audio="a.wav", corpus="synth", kind="speech")
    write_jsonl(tmp_path / "corpus" / "train.jsonl", [rec.to_dict()])
    write_jsonl(tmp_path / "self.jsonl", [{"id": "synth/a#0", "messages": [], "response": "x"}])
    with pytest.raises(DeSTAError, match="'a'"):
        task_targets_stage(TinyOptions(out_dir=str(tmp_path)), tmp_path / "corpus", tmp_path / "self.jsonl")


def test_rerun_of_a_finished_run_rebuilds_report_and_card_without_a_model(tmp_path):
    """run_tiny over a run folder whose stages are all on disk: no model is loaded or trained, and the
    report and card come from the cached evaluations (the shipped run's results)."""
    from desta.recipes.tiny import run_tiny

    shipped = json.loads((ROOT / "src" / "desta" / "assets" / "desta-tiny" / "results.json").read_text())
    rec = AudioRecord(id="a", audio="a.wav", corpus="synth", transcript="Hi there.", kind="speech")
    write_jsonl(tmp_path / "corpus" / "train.jsonl", [rec.to_dict()])
    row = {
        "id": "synth/a#0",
        "messages": [{"role": "user", "content": f"{AUDIO_LOCATOR}\nQ?"}],
        "response": "Hi.",
    }
    write_jsonl(tmp_path / "self" / "train.jsonl", [row])
    (tmp_path / "timings-data.json").write_text(json.dumps({"data": 60.0}))
    for v in ("self", "task"):
        own = {f"train_{v}": 120.0, f"eval_{v}": 30.0}
        (tmp_path / f"eval-{v}.json").write_text(
            json.dumps({"results": shipped["results"][v], "timings_s": own})
        )
    (tmp_path / "eval-text_backbone.json").write_text(json.dumps(shipped["results"]["text_backbone"]))
    report = run_tiny(TinyOptions(out_dir=str(tmp_path), threads=1))
    assert report["results"] == shipped["results"]
    assert report["timings_s"]["total"] == 60 + 2 * 150
    assert json.loads((tmp_path / "results.json").read_text())["results"] == shipped["results"]
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "| instruction following |" in card and "The paper's comparison at this scale" in card
    assert (tmp_path / "results.png").stat().st_size > 0
    assert [
        json.loads(line)["response"] for line in (tmp_path / "task" / "train.jsonl").read_text().splitlines()
    ] == ["Hi there."]
