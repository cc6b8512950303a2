"""The held-out suite's questions, scoring, resumable runner and summary, with a scripted model."""

from __future__ import annotations

import json
from dataclasses import dataclass

from desta.data.records import AudioRecord
from desta.recipes.tiny.heldout import items_for, run_suite, score_item, suite_items
from desta.recipes.tiny.heldout_report import markdown, summarize


def _carlo_number(n=7) -> AudioRecord:
    return AudioRecord(f"it_IT_m_Carlo/digits-{n}", "/x.wav", "asterisk", transcript="sette", language="it",
                       attributes={"Gender": "Male", "Language": "Italian", "Number": str(n), "Set": "asterisk-unseen"})  # fmt: skip


def _june_prompt() -> AudioRecord:
    return AudioRecord("fr_CA_f_June/goodbye", "/y.wav", "asterisk", language="fr",
                       attributes={"Gender": "Female", "Language": "French", "Set": "asterisk-unseen"})  # fmt: skip


def test_every_task_is_asked_both_ways_or_once():
    both = list(items_for(_carlo_number(), both_formats=True))
    assert {(i["task"], i["format"]) for i in both} == {
        (t, f) for t in ("gender", "language", "content") for f in ("open", "mcq")
    }
    once = list(items_for(_carlo_number()))
    assert sorted(i["task"] for i in once) == ["content", "gender", "language"]
    assert once == list(items_for(_carlo_number()))  # deterministic per clip
    mcq = next(i for i in both if i["task"] == "language" and i["format"] == "mcq")
    assert "Italian" in mcq["mcq"].options and mcq["question"].startswith("Which language is spoken")
    sound = AudioRecord("freedesktop/bell", "/b.oga", "freedesktop", caption="a bell ring", kind="sound")
    assert [i["task"] for i in items_for(sound, both_formats=True)] == ["sound", "sound"]


def test_scoring_open_and_lettered_answers():
    items = {(i["task"], i["format"]): i for i in items_for(_carlo_number(), both_formats=True)}
    g = score_item(items[("gender", "open")], "The speaker is a woman.")
    assert not g["correct"] and g["predicted"] == "female" and g["gender"] == "Male"
    assert score_item(items[("gender", "open")], "A man is speaking.")["correct"]
    q = items[("gender", "mcq")]["mcq"]
    male = q.options.index("male")
    s = score_item(items[("gender", "mcq")], f"({'ab'[male]}) male")
    assert s["correct"] and s["n_chosen"] == 1 and s["predicted"] == "male"
    both = score_item(items[("gender", "mcq")], "(a) male (b) female")
    assert not both["correct"] and both["n_chosen"] == 2 and both["predicted"] == "several"
    lang = score_item(items[("language", "open")], "The speaker is using English and Italian.")
    assert lang["correct"] and lang["predicted"] == "several"
    c = score_item(items[("content", "open")], "The speaker says 7.")
    assert c["recall"] == 1.0 and c["correct"]  # the numeral counts for the number word
    assert score_item(items[("content", "open")], "Sette.")["recall"] == 1.0
    assert score_item(items[("content", "open")], "Nothing.")["recall"] == 0.0


@dataclass
class _Answer:
    text: str


class _Scripted:
    def __init__(self, text: str):
        self.text, self.calls = text, 0

    def generate(self, conversations, max_new_tokens=40):
        self.calls += len(conversations)
        return [_Answer(self.text) for _ in conversations]


def test_run_suite_resumes_from_its_answer_file(tmp_path):
    items = suite_items([_carlo_number(n) for n in range(4)] + [_june_prompt()], both_formats=True)
    done = tmp_path / "answers.jsonl"
    first = run_suite(_Scripted("The speaker is a man."), items[:5], batch=2, done=done)
    assert len(first) == 5 and len(done.read_text().splitlines()) == 5
    model = _Scripted("The speaker is a woman.")
    samples = run_suite(model, items, batch=2, done=done)
    assert model.calls == len(items) - 5 and len(samples) == len(items)
    assert samples[:5] == first  # kept, not asked again
    assert all(json.loads(line)["key"] for line in done.read_text().splitlines())


def test_summary_has_classes_confusion_and_one_option_rate():
    items = suite_items([_carlo_number(n) for n in range(3)] + [_june_prompt()], both_formats=True)
    samples = [score_item(it, "The speaker is a woman speaking French. (a)") for it in items]
    s = summarize(samples)
    real = s["per_class"]["real"]
    assert real["gender/open male"] == {"accuracy": 0.0, "n": 3}
    assert real["gender/open female"] == {"accuracy": 1.0, "n": 1}
    assert s["confusion"]["real"]["gender/open"] == {"male->female": 3, "female->female": 1}
    assert s["confusion"]["real"]["language/open"] == {"Italian->French": 3, "French->French": 1}
    assert 0 <= s["mcq_one_option"]["asterisk-unseen"]["accuracy"] <= 1
    assert s["content_recall"]["asterisk-unseen"]["n"] == 3
    md = markdown({"m": s}, "Held-out")
    assert "| gold \\ answer | female |" in md and "asterisk-unseen" in md and "exactly one option" in md


def test_card_section_shows_each_model_and_the_confusion():
    from desta.recipes.tiny.heldout_report import card_lines

    items = suite_items([_carlo_number(n) for n in range(2)] + [_june_prompt()], both_formats=True)
    a = summarize([score_item(it, "A man speaks Italian.") for it in items])
    b = summarize([score_item(it, "A woman speaks French.") for it in items])
    text = "\n".join(card_lines({"self": a, "task": b}))
    assert "## Held-out real recordings" in text and "### Per class" in text
    assert "| set | question | self | task |" in text
    assert "**self, real, gender/open**" in text and "**task, real, gender/open**" in text
