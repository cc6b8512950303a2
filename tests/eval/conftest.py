"""Fixtures for the eval tests (helpers live in eval_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eval_helpers import FakeOpenAI


@pytest.fixture
def fake_openai():
    servers: list[FakeOpenAI] = []

    def start(reply: Callable[[dict[str, Any]], Any], models: list[str] | None = None) -> FakeOpenAI:
        server = FakeOpenAI(reply, models)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()
