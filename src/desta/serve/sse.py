"""Server-sent events of a streamed chat completion, in the OpenAI chunk format.

Order: a role chunk, one chunk per text piece, a finish chunk, with ``include_usage`` one usage chunk
(``choices: []``), then ``data: [DONE]``. Failures after the stream has started are reported in-band
as an error event; an unexpected failure shows only an error id (details go to the server log, so no
path or internal state reaches the client).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from desta.errors import DeSTAError
from desta.serve.engine import StreamEnd
from desta.serve.errors import RequestError
from desta.serve.schemas import ChatCompletionChunk, ChunkChoice, Delta, Usage

logger = logging.getLogger("desta.serve")


def event(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def internal_error(err: BaseException, what: str = "internal error") -> RequestError:
    """A 500 that names no path: the client gets an id, the log gets the traceback."""
    error_id = uuid.uuid4().hex[:12]
    logger.error("%s (id %s)", what, error_id, exc_info=err)
    return RequestError(
        f"{what} (id {error_id}); the server log has the details",
        status=500,
        code="internal_error",
        type="server_error",
    )


def _usage(end: StreamEnd) -> Usage:
    prompt = end.prompt_tokens or 0
    completion = end.completion_tokens if end.completion_tokens is not None else end.completion_pieces
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


async def sse_events(
    items: AsyncIterator[Any], request_id: str, model: str, include_usage: bool
) -> AsyncIterator[str]:
    """Turn the batcher's stream items (``str`` pieces, then a :class:`StreamEnd`) into SSE lines."""
    created = int(time.time())

    def chunk(
        delta: Delta, finish: str | None = None, usage: Usage | None = None, choices: bool = True
    ) -> str:
        body = ChatCompletionChunk(
            id=request_id,
            created=created,
            model=model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)] if choices else [],
            usage=usage,
        )
        data = body.model_dump(exclude_none=True)
        if include_usage:
            data.setdefault("usage", None)  # OpenAI sends "usage": null on every chunk but the last
        return event(data)

    yield chunk(Delta(role="assistant", content=""))
    try:
        async for item in items:
            if isinstance(item, StreamEnd):
                yield chunk(Delta(), finish=item.finish_reason)
                if include_usage:
                    yield chunk(Delta(), usage=_usage(item), choices=False)
            else:
                yield chunk(Delta(content=item))
    except asyncio.TimeoutError:
        yield event(
            RequestError(
                "the stream took too long and was cut", status=504, code="timeout", type="timeout_error"
            ).body()
        )
    except DeSTAError as err:  # the model refused this input: the message is meant for the client
        yield event(RequestError(str(err), code="invalid_input").body())
    except Exception as err:  # noqa: BLE001 - the stream has started: report in-band
        failure = internal_error(err, "generation failed")
        failure.code = "generation_failed"
        yield event(failure.body())
    yield "data: [DONE]\n\n"
