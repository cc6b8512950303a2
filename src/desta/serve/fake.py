"""A deterministic stand-in for a model, for protocol tests, load tests and benchmarks.

It answers with a summary of the conversation (``"echo: <last user text> | audios=N"``), takes a
configurable time per call and per conversation (so batching measurably pays off, as with a real
model on a batched forward pass), and counts calls and busy time. It implements the one engine protocol,
:class:`desta.infer.engine.Engine`: it takes the ``cancel`` event and stops early once it is set
(``cancelled`` counts those calls), so tests can see that abandoned work really stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from desta.infer.options import GenerationResult
from desta.messages import AUDIO_LOCATOR


def summarize(conversation: list[dict]) -> str:
    """The fake answer: last user text (one line) and the number of audios in the conversation."""
    user = [m for m in conversation if m["role"] == "user"]
    text = user[-1]["content"].replace(AUDIO_LOCATOR, "").strip().replace("\n", " ") if user else ""
    n_audios = sum(len(m.get("audios") or []) for m in conversation)
    seconds = sum(
        len(a["audio"]) / 16000
        for m in conversation
        for a in (m.get("audios") or [])
        if hasattr(a["audio"], "__len__")
    )
    return f"echo: {text} | audios={n_audios} | seconds={seconds:.2f}"


class FakeEngine:
    """Deterministic engine: ``delay_per_call_s + delay_per_item_s * len(batch)`` per ``generate``.

    Args:
        delay_per_call_s: fixed cost of one call (what batching amortises).
        delay_per_item_s: extra cost per conversation in the call.
        delay_per_piece_s: pause between streamed pieces.
        fail_on: a substring; a conversation whose user text contains it makes ``generate`` raise.
    """

    def __init__(
        self,
        *,
        name: str = "fake-desta",
        delay_per_call_s: float = 0.0,
        delay_per_item_s: float = 0.0,
        delay_per_piece_s: float = 0.0,
        fail_on: str | None = None,
    ) -> None:
        self.name = name
        self.delay_per_call_s = delay_per_call_s
        self.delay_per_item_s = delay_per_item_s
        self.delay_per_piece_s = delay_per_piece_s
        self.fail_on = fail_on
        self.calls: list[int] = []  # batch size of every generate call
        self.streams = 0  # stream calls started
        self.pieces = 0  # stream pieces produced
        self.cancelled = 0  # calls that stopped early because their cancel event was set
        self.busy_s = 0.0  # time spent inside generate/stream
        self.default_system_prompt: str | None = None
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """The fake tokenizer: one token per whitespace-separated word."""
        return len(text.split())

    def _busy(self, seconds: float) -> None:
        with self._lock:
            self.busy_s += seconds

    def _wait(self, seconds: float, cancel: threading.Event | None) -> bool:
        """Sleep ``seconds`` (model work); True if ``cancel`` was set first (then stop early)."""
        if seconds <= 0:
            return cancel is not None and cancel.is_set()
        start = time.monotonic()
        stopped = cancel.wait(seconds) if cancel is not None else (time.sleep(seconds) or False)
        self._busy(time.monotonic() - start)
        if stopped:
            with self._lock:
                self.cancelled += 1
        return stopped

    def _answer(self, conversation: list[dict], options: Any) -> GenerationResult:
        if self.fail_on and any(self.fail_on in (m.get("content") or "") for m in conversation):
            raise RuntimeError(f"fake engine asked to fail on {self.fail_on!r}")
        words = summarize(conversation).split(" ")
        limit = getattr(options, "max_new_tokens", len(words))
        out = words[:limit]
        prompt_tokens = sum(
            len((m.get("content") or "").replace(AUDIO_LOCATOR, " ").split()) for m in conversation
        ) + 64 * sum(len(m.get("audios") or []) for m in conversation)
        return GenerationResult(
            text=" ".join(out),
            token_ids=list(range(len(out))),
            finish_reason="length" if len(words) > limit else "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=len(out),
        )

    def generate(
        self, conversations: list[list[dict]], options: Any, *, cancel: threading.Event | None = None
    ) -> list[GenerationResult]:
        with self._lock:
            self.calls.append(len(conversations))
        self._wait(self.delay_per_call_s + self.delay_per_item_s * len(conversations), cancel)
        return [self._answer(c, options) for c in conversations]

    def stream(
        self, conversation: list[dict], options: Any, *, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        with self._lock:
            self.streams += 1
        result = self._answer(conversation, options)
        if self._wait(self.delay_per_call_s, cancel):
            return result
        for i, word in enumerate(result.text.split(" ")):
            if self._wait(self.delay_per_piece_s, cancel):
                return result
            with self._lock:
                self.pieces += 1
            yield word if i == 0 else " " + word
        return result

    def close(self) -> None:
        pass
