"""Idle exit for ``desta serve --idle-exit``: the server stops itself after a time without requests
(what ``desta ask --keep-alive`` starts its background server with)."""

from __future__ import annotations

import threading
import time
from typing import Any


class IdleTracker:
    """ASGI middleware that counts requests in progress and the time since the last one ended."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.active = 0
        self.last = time.monotonic()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.active += 1
        self.last = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            self.last = time.monotonic()

    def idle_for(self) -> float:
        """Seconds without a request in progress (0 while one is)."""
        return 0.0 if self.active else time.monotonic() - self.last


def exit_when_idle(server: Any, tracker: IdleTracker, idle_s: float) -> threading.Thread:
    """A daemon thread that sets ``server.should_exit`` (uvicorn's graceful stop) once ``tracker`` has
    been idle for ``idle_s`` seconds."""

    def watch() -> None:
        while not getattr(server, "should_exit", False):
            if tracker.idle_for() >= idle_s:
                server.should_exit = True
                return
            time.sleep(min(1.0, max(0.05, idle_s / 10)))

    thread = threading.Thread(target=watch, name="desta-idle-exit", daemon=True)
    thread.start()
    return thread
