"""The ``fake`` backend: instant deterministic answers for tests, benchmarks and dry runs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from desta.data.backends.base import BackendResult, params_list


@dataclass
class FakeBackend:
    """Deterministic instant answers: ``"[fake] <sha1 of the last user message>"``; for tests and benchmarks.

    ``reply`` overrides the text (a function of the conversation); ``fail`` may return a
    :class:`BackendResult` (an injected failure) or ``None`` for a normal answer.
    """

    model_id: str = "fake"
    reply: Callable[[list[dict[str, str]]], str] | None = None
    fail: Callable[[list[dict[str, str]]], BackendResult | None] | None = None
    name: str = "fake"
    calls: int = 0  # conversations answered (including failures)

    def generate(self, batch, params):
        plist = params_list(params, len(batch))
        out = []
        for conv, p in zip(batch, plist):
            self.calls += 1
            if self.fail is not None:
                failure = self.fail(conv)
                if failure is not None:
                    out.append(failure)
                    continue
            if self.reply is not None:
                text = self.reply(conv)
            else:
                digest = hashlib.sha1(conv[-1]["content"].encode()).hexdigest()[:12]
                text = f"[fake] The clip sounds clear. ({digest}, seed {p.seed})"
            out.append(BackendResult(text=text, finish_reason="stop", completion_tokens=len(text.split())))
        return out

    def close(self) -> None:
        pass
