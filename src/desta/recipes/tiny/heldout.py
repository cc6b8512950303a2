"""desta-tiny's held-out suites: real human recordings no training corpus used, and the synthetic
held-out split beside them, asked open and lettered multiple-choice questions.

Real suite (``real_records``), from Debian packages only:

* ``asterisk-unseen``: the asterisk prompt voices desta-tiny's corpus never uses (fr_CA June, it_IT
  Carlo, ru_RU IvrvoiceRU): gender, language and, for the numbers 0-9, the spoken word;
* ``asterisk-es-allison``: es_MX Allison, the Spanish prompts of the one real voice the corpus trains
  on (in English): unseen language and recordings, seen speaker, reported apart;
* ``pocketsphinx`` and ``freedesktop``: the files of those packages that the synth corpus holds out
  (its own hash split, :func:`desta.data.synth.split_of`), read speech with its transcript and
  sound effects with their caption.

Clips are balanced by gender (the one male voice gets as many prompts as the female voices together).
Every speech clip is asked its gender and language, open and as a multiple-choice question; numbers
and transcribed clips also their content; sounds their category. Scoring: :mod:`desta.rules` for open
answers, :func:`desta.recipes.tiny.mcq.score_mcq` for lettered ones (exactly the gold option). The
summary (:mod:`.heldout_report`) gives rates per set, task and class, confusion tables for gender and
language, and the rate of multiple-choice answers that choose exactly one option.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desta.data.records import AudioRecord, read_records
from desta.errors import DeSTAError
from desta.recipes.tiny.mcq import MCQ, build_mcq, gender_mcq, score_mcq
from desta.recipes.tiny.probes import attribute, audio_conversation
from desta.rules import LANGUAGES, score_gender, score_keyword, states_language, transcript_recall, units

ASTERISK_DIR = Path("/usr/share/asterisk/sounds")
TRAINING_VOICE = "en_US_f_Allison"  # desta.data.synth's "allison" engine
SEEN_VOICE_SETS = {"es_MX_f_Allison": "asterisk-es-allison"}
#: languages offered as options: the suite's and the training corpus's
LANGUAGE_OPTIONS = ("English", "Spanish", "French", "Italian", "Russian", "German", "Chinese")

OPEN_QUESTIONS = {
    "gender": "Is the speaker a man or a woman?",
    "language": "What language is the speaker using?",
    "content": "What exactly does the speaker say?",
    "sound": "What sound can you hear in this clip?",
}
MCQ_STEMS = {
    "language": "Which language is spoken in this clip?",
    "content": "Which word does the speaker say?",
    "sound": "Which sound is this?",
}


def _with_set(r: AudioRecord, name: str) -> AudioRecord:
    return r.with_(attributes={**r.attributes, "Set": name})


def asterisk_records(root: Path = ASTERISK_DIR, per_gender: int = 36, numbers: int = 4) -> list[AudioRecord]:
    """Every asterisk voice but the training one, ``numbers`` number clips each and prompts up to
    ``per_gender`` clips per gender (split evenly over that gender's voices)."""
    from desta.data.sources.asterisk import read_asterisk, voice_folders

    if not root.is_dir():
        raise DeSTAError(
            f"{root} not found: apt-get install asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav"
            " asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav"
        )
    voices = [(d.name, v["g"]) for d, v in voice_folders(root) if d.name != TRAINING_VOICE]
    out: list[AudioRecord] = []
    for name, g in voices:
        same = sum(1 for _, g2 in voices if g2 == g)
        prompts = max(0, per_gender // same - numbers)
        for r in read_asterisk(root, speakers=[name], max_prompts=prompts, max_numbers=numbers):
            out.append(_with_set(r, SEEN_VOICE_SETS.get(name, "asterisk-unseen")))
    return out


def held_out_package_records() -> list[AudioRecord]:
    """pocketsphinx-testdata and sound-theme-freedesktop files in the synth corpus's test split."""
    from desta.data.synth import real_items, split_of

    out = []
    for engine in ("pocketsphinx", "freedesktop"):
        for it in real_items(engine):
            if split_of(f"{engine}:{it['name']}", 0.2) != "test" or it.get("raw"):
                continue
            if it.get("sound"):
                r = AudioRecord(
                    f"{engine}/{it['name']}", it["path"], engine, caption=it["caption"], kind="sound"
                )
            elif "transcript" in it and engine == "pocketsphinx":
                r = AudioRecord(f"{engine}/{it['name']}", it["path"], engine, transcript=it["transcript"],
                                language="en", kind="speech")  # fmt: skip
            else:
                continue
            out.append(_with_set(r, engine))
    return out


def real_records(per_gender: int = 36, numbers: int = 4) -> list[AudioRecord]:
    """The real suite: :func:`asterisk_records` and :func:`held_out_package_records`."""
    return asterisk_records(per_gender=per_gender, numbers=numbers) + held_out_package_records()


def synthetic_records(corpus: Path, limit: int = 60, seed: int = 7) -> list[AudioRecord]:
    """``limit`` clips of a synth corpus's ``test.jsonl`` (shuffled with ``seed``), set "synthetic"."""
    test = [r.with_(audio=str(corpus / r.audio)) for r in read_records(corpus / "test.jsonl")]
    random.Random(seed).shuffle(test)
    return [_with_set(r, "synthetic") for r in test[:limit]]


# ------------------------------------------------------------------------------------- questions


def _numbers_mcq(r: AudioRecord, rng: random.Random) -> MCQ:
    from desta.data.sources.asterisk import NUMBER_WORDS

    n = int(attribute(r, "number") or 0)
    words = NUMBER_WORDS.get(r.language, ())
    alias = {w: (str(i),) for i, w in enumerate(words)}
    return build_mcq(MCQ_STEMS["content"], words[n], list(words[:10]), rng, aliases=alias)


def items_for(r: AudioRecord, seed: int = 0, *, both_formats: bool = False) -> Iterator[dict[str, Any]]:
    """The questions asked about one clip: ``{"set", "task", "format", "question", "gold", "mcq"?}``.

    Each task is asked once, open or multiple-choice (drawn per clip and task from ``seed`` and the
    clip id), or both ways with ``both_formats``: CPU time bounds the suite, clips matter more than
    asking one clip twice.
    """
    rng = random.Random(f"{seed}:{r.id}")
    base = {"set": attribute(r, "set") or r.corpus, "record": r}

    def ask(task: str, gold: str, make_mcq) -> Iterator[dict[str, Any]]:
        fmts = ("open", "mcq") if both_formats else (rng.choice(("open", "mcq")),)
        for fmt in fmts:
            if fmt == "open":
                yield {**base, "task": task, "format": "open", "question": OPEN_QUESTIONS[task], "gold": gold}
            elif make_mcq is not None:
                q = make_mcq()
                yield {**base, "task": task, "format": "mcq", "question": q.text, "gold": gold, "mcq": q}
            elif not both_formats:  # no lettered version of this question: ask it open
                yield {**base, "task": task, "format": "open", "question": OPEN_QUESTIONS[task], "gold": gold}

    if r.kind != "speech":
        caption = r.caption or attribute(r, "sound") or ""
        if caption:
            from desta.data.synth import FREEDESKTOP_CAPTIONS

            captions = list(FREEDESKTOP_CAPTIONS.values())
            yield from ask("sound", caption, lambda: build_mcq(MCQ_STEMS["sound"], caption, captions, rng))
        return
    gender = attribute(r, "gender")
    if gender:
        yield from ask("gender", gender, lambda: gender_mcq(gender, rng))
    language = LANGUAGES.get(r.language or "", "")
    if language:
        yield from ask(
            "language", language, lambda: build_mcq(MCQ_STEMS["language"], language, LANGUAGE_OPTIONS, rng)
        )
    if r.transcript:
        numbered = attribute(r, "number") is not None
        yield from ask("content", r.transcript, (lambda: _numbers_mcq(r, rng)) if numbered else None)


def suite_items(
    records: list[AudioRecord], seed: int = 0, *, both_formats: bool = False
) -> list[dict[str, Any]]:
    return [it for r in records for it in items_for(r, seed, both_formats=both_formats)]


# ------------------------------------------------------------------------------------- scoring


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def content_recall(answer: str, item: dict[str, Any]) -> float:
    """Share of the transcript's words in the answer (accents ignored); a number clip also counts its
    numeral ("7" for "sept")."""
    number = attribute(item["record"], "number")
    if number is not None and number in units(answer):
        return 1.0
    return transcript_recall(_fold(answer), _fold(item["gold"]))


def predicted_gender(answer: str, transcript: str = "") -> str:
    """ "female", "male", "both" or "none" as the confusion tables read an open answer."""
    f = score_gender(answer, "female", transcript)
    m = score_gender(answer, "male", transcript)
    if f or m:
        return "female" if f else "male"
    from desta.rules import stated_gender

    return "both" if len(stated_gender(answer, transcript)) == 2 else "none"


def predicted_language(answer: str) -> str:
    named = [n for n in LANGUAGES.values() if states_language(answer, n)]
    return named[0] if len(named) == 1 else ("several" if named else "none")


def score_item(item: dict[str, Any], answer: str) -> dict[str, Any]:
    """One sample: the item's labels, the answer, ``correct``, and what the answer chose or stated."""
    r = item["record"]
    out = {"id": r.id, "set": item["set"], "task": item["task"], "format": item["format"],
           "question": item["question"], "gold": item["gold"], "answer": answer,
           "gender": attribute(r, "gender") or "", "language": LANGUAGES.get(r.language or "", "")}  # fmt: skip
    if item["format"] == "mcq":
        q: MCQ = item["mcq"]
        ok, n_chosen = score_mcq(answer, q)
        out.update(correct=ok, n_chosen=n_chosen, gold_letter=q.gold_letter)
        from desta.recipes.tiny.mcq import chosen_options

        picked = chosen_options(answer, q)
        out["predicted"] = (
            q.options[next(iter(picked))] if len(picked) == 1 else ("several" if picked else "none")
        )
    elif item["task"] == "gender":
        out["predicted"] = predicted_gender(answer, r.transcript)
        out["correct"] = score_gender(answer, item["gold"], r.transcript)
    elif item["task"] == "language":
        out["predicted"] = predicted_language(answer)
        out["correct"] = states_language(answer, item["gold"])
    elif item["task"] == "content":
        out["recall"] = content_recall(answer, item)
        out["correct"] = out["recall"] >= 0.5
    else:
        out["correct"] = score_keyword(answer, item["gold"])
    return out


def _item_key(item: dict[str, Any]) -> str:
    return f"{item['record'].id}|{item['task']}|{item['format']}"


def run_suite(model, items: list[dict[str, Any]], *, batch: int = 8, max_new_tokens: int = 40,
              done: Path | None = None, log=None, score=None) -> list[dict[str, Any]]:  # fmt: skip
    """Greedy answers of ``model`` (``generate(conversations, max_new_tokens=)``) to every item, scored.

    ``score(item, answer)`` scores one answer (default :func:`score_item`). With ``done`` (a JSONL
    file), each scored batch is appended there and items already in it are not
    asked again, so an interrupted run resumes where it stopped.
    """
    import json

    have: dict[str, dict[str, Any]] = {}
    if done is not None and done.exists():
        for line in done.read_text(encoding="utf-8").splitlines():
            if line.strip():
                s = json.loads(line)
                have[s["key"]] = s
    todo = [it for it in items if _item_key(it) not in have]
    for i in range(0, len(todo), batch):
        chunk = todo[i : i + batch]
        answers = model.generate(
            [audio_conversation(it["record"], it["question"]) for it in chunk], max_new_tokens=max_new_tokens
        )
        scored = [
            {"key": _item_key(it), **(score or score_item)(it, a.text)} for it, a in zip(chunk, answers, strict=True)
        ]
        for s in scored:
            have[s["key"]] = s
        if done is not None:
            with done.open("a", encoding="utf-8") as f:
                f.writelines(json.dumps(s, ensure_ascii=False) + "\n" for s in scored)
        if log:
            log(f"held-out suite: {len(items) - len(todo) + i + len(chunk)}/{len(items)} answers")
    return [have[_item_key(it)] for it in items]
