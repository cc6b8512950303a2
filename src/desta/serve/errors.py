"""Errors the server turns into OpenAI-style error bodies (``{"error": {"message", "type", "code"}}``)."""

from __future__ import annotations

from desta.errors import DeSTAError


class RequestError(DeSTAError):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "invalid_request",
        param: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param
        self.type = type

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class QueueFullError(RequestError):
    """The bounded request queue is full: answered 429 so that clients back off."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"the server is busy ({size} requests already waiting); retry after a short pause",
            status=429,
            code="queue_full",
            type="rate_limit_error",
        )
