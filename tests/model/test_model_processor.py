"""DeSTAProcessor with the real SmolLM2 tokenizer: golden ids, labels, windows, padding, truncation.

Regenerate the golden file (then check it by eye) with ``DESTA_UPDATE_GOLDEN=1 pytest <this file>``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from desta.errors import ConfigError, DeSTAError
from desta.model.processor import IGNORE_INDEX, DeSTAProcessor, SampleTooLong, choose_placeholder
from helpers import smollm2_tokenizer

GOLDEN = Path(__file__).parent / "golden" / "processor_smollm2.json"
PH = "<empty_output>"

SYSTEM = "Focus on the audio clips and instructions."
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {
        "role": "user",
        "content": "<|AUDIO|>\nWhat does the speaker say?",
        "audios": [{"audio": "a.wav", "text": "Hello world."}],
    },
]
RESPONSE = "The speaker says hello world."


@pytest.fixture(scope="module")
def tok():
    return smollm2_tokenizer()


@pytest.fixture(scope="module")
def proc(tok):
    return DeSTAProcessor(tok, n_queries=64)


@pytest.fixture(scope="module")
def small(tok):
    return DeSTAProcessor(tok, n_queries=3)


def _ids(tok, text):
    return tok(text, add_special_tokens=False).input_ids


def test_placeholder_choice(tok, proc):
    assert proc.placeholder_token == PH
    assert proc.placeholder_id == tok.convert_tokens_to_ids(PH) == 16
    assert proc.eot_id == 2 and proc.pad_id == 2  # <|im_end|>
    assert choose_placeholder(tok, "<|im_start|>") == "<|im_start|>"
    with pytest.raises(ConfigError, match="not in the LLM vocabulary"):
        choose_placeholder(tok, "<|reserved_special_token_87|>")


def test_render_adds_tags(proc):
    text = proc.render(MESSAGES)
    assert text == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n<start_audio><|AUDIO|><end_audio>\n"
        "What does the speaker say?<|im_end|>\n<|im_start|>assistant\n"
    )
    # literal tags around a locator are not doubled
    tagged = [{"role": "user", "content": "<start_audio><|AUDIO|><end_audio> Hi", "audios": [{"audio": "x"}]}]
    assert proc.render(tagged).count("<start_audio>") == 1


def _golden_record(tok, proc) -> dict:
    enc = proc.encode(MESSAGES, [["Hello world."]], response=RESPONSE)
    return {
        "messages": MESSAGES,
        "response": RESPONSE,
        "n_queries": 64,
        "text": tok.decode(enc.input_ids),
        "input_ids": enc.input_ids,
        "labels": enc.labels,
        "audio_slots": [i for i, m in enumerate(enc.audio_mask) if m],
    }


def test_golden_token_ids(tok, proc):
    record = _golden_record(tok, proc)
    if os.environ.get("DESTA_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert record == golden
    text = golden["text"]
    assert text.count(PH) == 64
    assert f"<start_audio>{PH * 64}Hello world.<end_audio>\nWhat does the speaker say?" in text
    assert text.endswith(f"<|im_start|>assistant\n{RESPONSE}<|im_end|>")
    assert golden["audio_slots"] == list(range(golden["audio_slots"][0], golden["audio_slots"][0] + 64))


def test_labels_cover_response_and_eot_only(tok, proc):
    enc = proc.encode(MESSAGES, [["Hello world."]], response=RESPONSE)
    target = _ids(tok, RESPONSE) + [tok.convert_tokens_to_ids("<|im_end|>")]
    assert len(enc.labels) == len(enc.input_ids) == len(enc.audio_mask)
    kept = [(i, x) for i, x in enumerate(enc.labels) if x != IGNORE_INDEX]
    assert [x for _, x in kept] == target
    assert [i for i, _ in kept] == list(range(len(enc.input_ids) - len(target), len(enc.input_ids)))
    assert enc.input_ids[-len(target) :] == target
    prompt = proc.encode(MESSAGES, [["Hello world."]])
    assert prompt.labels is None
    assert enc.input_ids[: len(prompt.input_ids)] == prompt.input_ids


def _segments(proc, enc):
    """Split ids at audio slots: [(n_slots, ids after the block until the next block)]."""
    out, i, ids, mask = [], 0, enc.input_ids, enc.audio_mask
    while i < len(ids):
        if mask[i]:
            j = i
            while j < len(ids) and mask[j]:
                j += 1
            k = j
            while k < len(ids) and not mask[k]:
                k += 1
            out.append((j - i, ids[j:k]))
            i = k
        else:
            i += 1
    return out


def test_several_audios_and_turns(tok, small):
    messages = [
        {
            "role": "user",
            "content": "Compare <|AUDIO|> and <|AUDIO|>.",
            "audios": [{"audio": 1}, {"audio": 2}],
        },
        {"role": "assistant", "content": "They differ."},
        {"role": "user", "content": "And this one? <|AUDIO|>", "audios": [{"audio": 3}]},
    ]
    enc = small.encode(messages, [["first clip"], ["second clip"], ["third clip"]])
    assert enc.n_windows == 3 and sum(enc.audio_mask) == 9
    text = tok.decode(enc.input_ids)
    assert text.count("<start_audio>") == 3 and text.count("<end_audio>") == 3
    assert (
        text.index("first clip")
        < text.index("second clip")
        < text.index("They differ.")
        < text.index("third clip")
    )
    segs = _segments(small, enc)
    assert [n for n, _ in segs] == [3, 3, 3]
    for (_, after), word in zip(segs, ["first clip", "second clip", "third clip"]):
        assert after[: len(_ids(tok, word))] == _ids(tok, word)
        assert tok.decode(after).startswith(word + "<end_audio>")


def test_long_audio_windows_each_get_queries_and_transcript(tok, small):
    messages = [{"role": "user", "content": "<|AUDIO|> Summarise.", "audios": [{"audio": "65s.wav"}]}]
    enc = small.encode(messages, [["one two", "three", "four five six"]])
    assert enc.n_windows == 3 and sum(enc.audio_mask) == 9
    segs = _segments(small, enc)
    assert [n for n, _ in segs] == [3, 3, 3]
    assert segs[0][1] == _ids(tok, "one two")
    assert segs[1][1] == _ids(tok, "three")
    assert tok.decode(segs[2][1]).startswith("four five six<end_audio>")
    assert tok.decode(enc.input_ids).count("<start_audio>") == 1


def test_empty_transcript_is_one_space(tok, small):
    assert small.transcript_ids("") == _ids(tok, " ")
    assert small.transcript_ids(None) == _ids(tok, " ")
    assert small.transcript_ids("   ") == _ids(tok, " ")
    assert small.window_length("hello world") == 3 + len(_ids(tok, "hello world"))


def test_max_transcript_tokens(tok):
    proc = DeSTAProcessor(tok, n_queries=2, max_transcript_tokens=4)
    long = "one two three four five six seven eight"
    assert proc.transcript_ids(long) == _ids(tok, long)[:4]


def test_locator_audio_count_mismatch(small):
    with pytest.raises(DeSTAError, match="2 <\\|AUDIO\\|> locator\\(s\\) but 1 audio"):
        small.normalize([{"role": "user", "content": "<|AUDIO|> <|AUDIO|>", "audios": [{"audio": 1}]}])
    with pytest.raises(DeSTAError, match="1 <\\|AUDIO\\|> locator\\(s\\) but 0 audio"):
        small.normalize([{"role": "user", "content": "<|AUDIO|> hi"}])
    with pytest.raises(DeSTAError, match="transcripts for 2 audios"):
        small.encode([{"role": "user", "content": "<|AUDIO|>", "audios": [{"audio": 1}]}], [["a"], ["b"]])
    with pytest.raises(DeSTAError, match="no windows"):
        small.encode([{"role": "user", "content": "<|AUDIO|>", "audios": [{"audio": 1}]}], [[]])


def test_audio_without_locator_goes_first(small):
    out = small.normalize(
        [{"role": "user", "content": "What is this?", "audios": [{"audio": 1}, {"audio": 2}]}]
    )
    assert out[0]["content"] == "<|AUDIO|><|AUDIO|>\nWhat is this?"


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "non-empty list"),
        ([{"content": "x"}], "'role' and 'content'"),
        ([{"role": "robot", "content": "x"}], "unknown role"),
        ([{"role": "user", "content": 3}], "content must be a string"),
    ],
)
def test_bad_messages(small, messages, match):
    with pytest.raises(DeSTAError, match=match):
        small.normalize(messages)


def test_left_padding_and_position_ids(small):
    a = small.encode([{"role": "user", "content": "<|AUDIO|> Hi", "audios": [{"audio": 1}]}], [["x"]])
    b = small.encode(
        [
            {
                "role": "user",
                "content": "<|AUDIO|> A much longer question here, please?",
                "audios": [{"audio": 1}],
            }
        ],
        [["longer words"]],
    )
    assert len(b.input_ids) > len(a.input_ids)
    batch = small.collate([a, b], padding_side="left")
    n, pad = len(b.input_ids), len(b.input_ids) - len(a.input_ids)
    assert batch["input_ids"].shape == (2, n)
    assert batch["input_ids"][0, :pad].tolist() == [small.pad_id] * pad
    assert batch["input_ids"][0, pad:].tolist() == a.input_ids
    assert batch["attention_mask"][0].tolist() == [0] * pad + [1] * len(a.input_ids)
    assert batch["position_ids"][0, pad:].tolist() == list(range(len(a.input_ids)))
    assert batch["position_ids"][1].tolist() == list(range(n))
    assert batch["audio_mask"][0, :pad].sum() == 0 and batch["audio_mask"].sum() == 6
    assert batch["audio_mask"].dtype == torch.bool and "labels" not in batch
    right = small.collate([a, b], padding_side="right")
    assert right["input_ids"][0, : len(a.input_ids)].tolist() == a.input_ids
    assert right["attention_mask"][0].tolist() == [1] * len(a.input_ids) + [0] * pad


def test_collate_labels_padded_with_ignore(small):
    msgs = [{"role": "user", "content": "<|AUDIO|> Hi", "audios": [{"audio": 1}]}]
    a = small.encode(msgs, [["x"]], response="Yes.")
    b = small.encode(msgs, [["x"]], response="A longer answer than the first.")
    batch = small.collate([a, b], padding_side="right")
    pad = len(b.input_ids) - len(a.input_ids)
    assert batch["labels"][0].tolist() == a.labels + [IGNORE_INDEX] * pad
    assert batch["labels"][1].tolist() == b.labels


def test_max_length_truncation(tok, small):
    msgs = [{"role": "user", "content": "<|AUDIO|> Describe it.", "audios": [{"audio": 1}]}]
    full = small.encode(msgs, [["some words"]], response="A long response with many words in it.")
    n_target = len(_ids(tok, "A long response with many words in it.")) + 1
    prompt_len = len(full.input_ids) - n_target
    cut = small.encode(
        msgs, [["some words"]], response="A long response with many words in it.", max_length=prompt_len + 2
    )
    assert len(cut.input_ids) == prompt_len + 2 == len(cut.labels)
    assert [x for x in cut.labels if x != IGNORE_INDEX] == full.labels[prompt_len : prompt_len + 2]
    with pytest.raises(SampleTooLong, match="no target token"):
        small.encode(msgs, [["some words"]], response="Answer.", max_length=prompt_len)
    first_slot = full.audio_mask.index(True)
    with pytest.raises(SampleTooLong, match="audio past max_length"):
        small.encode(msgs, [["some words"]], response="Answer.", max_length=first_slot + 1)
    assert issubclass(SampleTooLong, DeSTAError)


def test_default_system_prompt_only_when_the_conversation_has_none(tok):
    p = DeSTAProcessor(tok, n_queries=4, system_prompt="Answer briefly.")
    user_only = [m for m in MESSAGES if m["role"] != "system"]
    normalized = p.normalize(user_only)
    assert normalized[0] == {"role": "system", "content": "Answer briefly.", "audios": []}
    assert "Answer briefly." in p.render(user_only)
    with_system = p.normalize(MESSAGES)
    assert [m["content"] for m in with_system if m["role"] == "system"] == [SYSTEM]
    plain = DeSTAProcessor(tok, n_queries=4)
    assert plain.normalize(user_only)[0]["role"] == "user"
