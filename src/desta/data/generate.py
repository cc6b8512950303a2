"""Self-generation requests: the training messages of a sample and the text-only messages that make the
backbone LLM write its target.

DeSTA's principle (reference §11.1): the LLM sees the *same* prompt as at training time, except that the
audio slot holds a text description of the clip (the seed description) instead of audio features. So
for one record and one sampled instruction this module builds two message lists:

* **training messages** (stored in the output row, read by training)::

      [{"role": "system", "content": TRAINING_SYSTEM_PROMPT},
       {"role": "user", "content": "<|AUDIO|>\\n{instruction}",
        "audios": [{"audio": record.audio, "text": window_transcript(record.transcript)}]}]

  The audio comes *before* the instruction by default (``PromptFormat.instruction_first=False``): the
  model hears the clip first and then reads what to do with it, as in most of DeSTA-AQA5M's prompts
  ("In a sentence, explain what happened first in this audio sequence."). The ``<start_audio>`` /
  ``<end_audio>`` tags are *not* written into the content by default, because the inference path adds
  them around each ``<|AUDIO|>`` (reference §5.2); set ``PromptFormat.tags_in_content=True`` to write
  them literally as the official ``docs/train.md`` example does.

* **generation messages** (sent to the LLM, never stored): the same user content with ``<|AUDIO|>``
  replaced by ``<start_audio>{seed description}<end_audio>``, under :data:`GENERATION_SYSTEM_PROMPT`
  which asks the LLM to answer as if it heard the clip (reference §11.2).

Every random choice is derived from ``(seed, record key, k)`` alone, so a request is the same whatever
the order, sharding or resumption of a run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from desta.data.records import AudioRecord, Sample
from desta.errors import DeSTAError
from desta.messages import AUDIO_LOCATOR, END_AUDIO, START_AUDIO  # noqa: F401  (re-exported here)
from desta.model.options import GenerationOptions
from desta.model.processor import audio_span, window_transcript

#: The official ``docs/train.md`` example system prompt (reference §11.6).
TRAINING_SYSTEM_PROMPT = (
    "You are a helpful assistant. The audio clips appear between <start_audio> and <end_audio> tags."
)

#: The generation system prompt found in the lab's scripts (reference §11.2; unconfirmed for DeSTA2.5).
GENERATION_SYSTEM_PROMPT = (
    "Imagine you can hear the audio clips. The audio clips are wrapped between <start_audio> and "
    "<end_audio>.\nFocus on the audio clips and respond directly to the prompts. Never mention that the "
    "audio was described to you in text."
)


@dataclass(frozen=True)
class PromptFormat:
    """How a record and an instruction become messages."""

    training_system: str = TRAINING_SYSTEM_PROMPT  # "" for no system message at training time
    generation_system: str = GENERATION_SYSTEM_PROMPT
    instruction_first: bool = False  # False: "<|AUDIO|>\n{instruction}"; True: "{instruction}\n<|AUDIO|>"
    tags_in_content: bool = False  # write "<start_audio><|AUDIO|><end_audio>" literally in the content
    separator: str = "\n"


def SamplingParams(  # noqa: N802  (the data pipeline's name for its decoding defaults)
    max_new_tokens: int = 512,
    temperature: float = 0.7,
    top_p: float = 0.9,
    stop: tuple[str, ...] = (),
    seed: int | None = None,  # per request; set by the request builder
) -> GenerationOptions:
    """Data generation's decoding settings (DeSTA's own values are unreleased; these are ours) as the one
    options type, :class:`~desta.model.options.GenerationOptions`: temperature 0 is greedy, as in the
    OpenAI API. Backends send ``max_new_tokens``, ``temperature``, ``top_p``, ``stop`` and ``seed``."""
    if temperature < 0 or not 0 < top_p <= 1:
        raise DeSTAError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    return GenerationOptions(
        max_new_tokens=max_new_tokens,
        do_sample=temperature > 0,
        temperature=temperature,
        top_p=top_p,
        stop=tuple(stop),
        seed=seed,
    )


def with_temperature(options: GenerationOptions, temperature: float) -> GenerationOptions:
    """``options`` at another temperature (0: greedy), as :func:`SamplingParams` reads a temperature."""
    return replace(options, temperature=temperature, do_sample=temperature > 0)


def sampling_dict(options: GenerationOptions) -> dict[str, Any]:
    """The decoding settings a data backend sends, as they enter :func:`cache_key`."""
    return {
        "max_new_tokens": options.max_new_tokens,
        "temperature": options.api_temperature,
        "top_p": options.top_p,
        "stop": list(options.stop),
        "seed": options.seed,
    }


class InstructionLike(Protocol):
    text: str
    category: str


class InstructionSampler(Protocol):
    """Draws one instruction per request. A sampler that also has ``sample_for(record, seed)`` is given
    the record itself (questions built from its labels, e.g. lettered options around the gold one)."""

    def sample(self, seed: int, kind: str = "speech") -> InstructionLike: ...


@dataclass(frozen=True)
class Part:
    """One single question of a compound request, asked on its own; its answer states ``requires``."""

    instruction: str
    requires: tuple[str, ...]
    generation_messages: list[dict[str, str]] = field(repr=False)


@dataclass(frozen=True)
class Request:
    """One generation request: the key that makes it unique in a run, and both message lists.

    ``parts`` is empty for a single question; for a compound one the backbone answers each part
    (``generation_messages`` is then not sent) and the target is its answers joined in order.
    """

    key: str  # "{corpus}/{record id}#{k}", unique per run and stable across runs
    record: AudioRecord
    k: int
    seed: int
    instruction: str
    category: str
    seed_description: str
    training_messages: list[dict[str, Any]] = field(repr=False)
    generation_messages: list[dict[str, str]] = field(repr=False)
    requires: tuple[str, ...] = ()
    parts: tuple[Part, ...] = ()

    def questions(self) -> list[tuple[str, tuple[str, ...], list[dict[str, str]]]]:
        """``(instruction, requires, generation messages)`` of each question the backbone answers."""
        if self.parts:
            return [(p.instruction, p.requires, p.generation_messages) for p in self.parts]
        return [(self.instruction, self.requires, self.generation_messages)]


def request_key(record: AudioRecord, k: int) -> str:
    return f"{record.corpus}/{record.id}#{k}"


def derive_seed(seed: int, key: str) -> int:
    """A 63-bit seed from the run seed and a request key (stable across Python versions and processes)."""
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def user_content(instruction: str, audio_slot: str, fmt: PromptFormat) -> str:
    """``audio_slot`` is ``<|AUDIO|>`` (training) or ``<start_audio>...<end_audio>`` (generation)."""
    parts = (instruction.strip(), audio_slot) if fmt.instruction_first else (audio_slot, instruction.strip())
    return fmt.separator.join(parts)


def training_messages(
    record: AudioRecord, instruction: str, fmt: PromptFormat = PromptFormat()
) -> list[dict[str, Any]]:
    slot = audio_span(AUDIO_LOCATOR) if fmt.tags_in_content else AUDIO_LOCATOR
    messages: list[dict[str, Any]] = []
    if fmt.training_system:
        messages.append({"role": "system", "content": fmt.training_system})
    messages.append(
        {
            "role": "user",
            "content": user_content(instruction, slot, fmt),
            "audios": [{"audio": record.audio, "text": window_transcript(record.transcript)}],
        }
    )
    return messages


def generation_messages(
    training: list[dict[str, Any]], descriptions: list[str], fmt: PromptFormat = PromptFormat()
) -> list[dict[str, str]]:
    """Replace each ``<|AUDIO|>`` (in order) by its seed description and swap in the generation system
    prompt; ``audios`` entries are dropped. The result is plain text chat messages."""
    queue = list(descriptions)
    out: list[dict[str, str]] = []
    if fmt.generation_system:
        out.append({"role": "system", "content": fmt.generation_system})
    for msg in training:
        if msg["role"] == "system":
            continue
        content = msg["content"]
        pieces = content.split(AUDIO_LOCATOR)
        if len(pieces) - 1 > len(queue):
            raise DeSTAError(
                f"message has {len(pieces) - 1} {AUDIO_LOCATOR} but only {len(queue)} descriptions left"
            )
        text = pieces[0]
        for piece in pieces[1:]:
            desc = queue.pop(0)
            text += desc if fmt.tags_in_content else audio_span(desc)
            text += piece
        out.append({"role": msg["role"], "content": text})
    if queue:
        raise DeSTAError(f"{len(queue)} seed descriptions left over: fewer {AUDIO_LOCATOR} than audios")
    return out


def build_request(
    record: AudioRecord,
    k: int,
    *,
    seed: int,
    pool: InstructionSampler,
    describe: Callable[[AudioRecord], str],
    fmt: PromptFormat = PromptFormat(),
) -> Request:
    """The ``k``-th request for ``record``: instruction sampled with a seed derived from ``(seed, key)``."""
    key = request_key(record, k)
    rseed = derive_seed(seed, key)
    sample_for = getattr(pool, "sample_for", None)
    instruction = sample_for(record, rseed) if sample_for else pool.sample(rseed, kind=record.kind)
    description = describe(record)
    train = training_messages(record, instruction.text, fmt)
    parts = tuple(
        Part(
            p.text,
            tuple(p.requires),
            generation_messages(training_messages(record, p.text, fmt), [description], fmt),
        )
        for p in getattr(instruction, "parts", ())
    )
    return Request(
        key=key,
        record=record,
        k=k,
        seed=rseed,
        instruction=instruction.text,
        category=getattr(instruction, "category", ""),
        seed_description=description,
        training_messages=train,
        generation_messages=generation_messages(train, [description], fmt),
        requires=tuple(getattr(instruction, "requires", ())),
        parts=parts,
    )


def to_sample(
    req: Request, response: str, *, model: str = "", finish_reason: str = "stop", attempts: int = 1
) -> Sample:
    """The output row: official training fields plus a ``meta`` dict (key, model, corpus facts)."""
    rec = req.record
    return Sample(
        messages=req.training_messages,
        response=response,
        id=rec.id,
        dataset=rec.corpus,
        seed_description=req.seed_description,
        prompt=req.instruction,
        extra={
            "meta": {
                "key": req.key,
                "k": req.k,
                "category": req.category,
                "kind": rec.kind,
                "duration": rec.duration,
                "language": rec.language,
                "attributes": dict(rec.attributes),
                "model": model,
                "finish_reason": finish_reason,
                "attempts": attempts,
                **({"parts": [p.instruction for p in req.parts]} if req.parts else {}),
            }
        },
    )


def cache_key(model: str, messages: list[dict[str, Any]], params: GenerationOptions) -> str:
    """sha256 of the whole request: model id, messages and every sampling parameter."""
    blob = json.dumps(
        {"model": model, "messages": messages, "params": sampling_dict(params)}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def default_describe() -> Callable[[AudioRecord], str]:
    from desta.data.describe import seed_description

    return seed_description


def default_pool() -> InstructionSampler:
    from desta.data.instructions import InstructionPool

    return InstructionPool.load()
