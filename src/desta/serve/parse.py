"""Bounded request parsing: every field a client controls has a limit, and each is a clear 4xx.

``read_body`` waits for the body under a deadline (408), ``decode_json`` parses it with a cap on
nesting depth and on the length of number literals (a 100,000-deep array or a 5,000-digit integer is
a 400, not a ``RecursionError`` or ``ValueError`` deep in the stack), ``validate_request`` turns
pydantic errors into one readable message, ``build_options`` bounds the sampling fields (stop
strings, ``max_tokens``) and ``check_prompt_length`` bounds the client's text in tokens before any
audio is decoded.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from pydantic import ValidationError

from desta.serve.errors import RequestError
from desta.serve.schemas import ChatCompletionRequest, TextPart
from desta.serve.settings import ServeSettings

_CONTENT_TYPES = "text, input_audio, audio_url"
_BRANCH_NAMES = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})
# When the engine cannot count tokens, assume this many UTF-8 bytes per token (English BPE averages ~4)
BYTES_PER_TOKEN_ESTIMATE = 4


async def read_body(request: Any, timeout_s: float) -> bytes:
    """The whole body of ``request`` (a Starlette ``Request``), or a 408 after ``timeout_s`` seconds.

    A stalled upload is cut here rather than holding a queue slot: requests are admitted to the
    queue only after their body has arrived.
    """
    try:
        return await asyncio.wait_for(request.body(), timeout_s)
    except asyncio.TimeoutError:
        raise RequestError(
            f"the request body did not arrive within {timeout_s:g} s; send it at once, or raise "
            "the server's --body-timeout",
            status=408,
            code="body_timeout",
        ) from None


def _number_hooks(max_chars: int) -> dict[str, Any]:
    def too_long(text: str) -> RequestError:
        return RequestError(
            f"a number in the request has {len(text)} characters ({text[:16]}...); at most {max_chars} "
            "are allowed",
            code="number_too_large",
        )

    def parse_int(text: str) -> int:
        if len(text) > max_chars:
            raise too_long(text)
        return int(text)

    def parse_float(text: str) -> float:
        if len(text) > max_chars:
            raise too_long(text)
        value = float(text)
        if not math.isfinite(value):
            raise RequestError(f"the number {text} is out of range", code="number_too_large")
        return value

    def parse_constant(name: str) -> float:
        raise RequestError(f"{name} is not a JSON number; send a finite number", code="invalid_json")

    return {"parse_int": parse_int, "parse_float": parse_float, "parse_constant": parse_constant}


def _too_deep(max_depth: int) -> RequestError:
    return RequestError(
        f"the request body nests arrays/objects deeper than {max_depth} levels", code="json_too_deep"
    )


def _check_text(value: str) -> None:
    if value.isascii():
        return
    try:  # JSON escapes can smuggle lone surrogates ("\ud800") that no UTF-8 text may hold
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(
            "request body holds invalid Unicode (a lone surrogate escape)", code="invalid_json"
        ) from None


def _check_tree(payload: Any, max_depth: int) -> None:
    """Depth and text checks without recursion (the tree is already bounded by the body size)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise _too_deep(max_depth)
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict):
            for key in node:
                _check_text(key)
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif isinstance(child, str):
                _check_text(child)


def decode_json(body: bytes, settings: ServeSettings) -> dict:
    """Parse a request body into a JSON object within the depth and number limits of ``settings``."""
    try:
        payload = json.loads(body, **_number_hooks(settings.max_number_chars))
    except RecursionError:  # the C scanner gives up near the interpreter's recursion limit
        raise _too_deep(settings.max_json_depth) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(f"request body is not valid JSON ({err})", code="invalid_json") from None
    except ValueError as err:  # e.g. interpreter limits on integer conversion
        raise RequestError(
            f"request body holds an unusable number ({err})", code="number_too_large"
        ) from None
    if not isinstance(payload, dict):
        raise RequestError("request body must be a JSON object", code="invalid_json")
    _check_tree(payload, settings.max_json_depth)
    return payload


def _clean_loc(loc: tuple) -> str:
    """``messages.0.content.list[...].1.text`` -> ``messages.0.content.1.text`` (drop union branch names)."""
    keep = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in _BRANCH_NAMES))]
    return ".".join(keep)


def _validation_message(err: ValidationError) -> RequestError:
    errors = err.errors(include_url=False)
    tagged = [e for e in errors if e["type"] in ("union_tag_invalid", "union_tag_not_found")]
    first = tagged[0] if tagged else max(errors, key=lambda e: len(e["loc"]))
    loc = _clean_loc(first["loc"])
    if first["type"] == "union_tag_invalid":
        tag = (first.get("ctx") or {}).get("tag")
        return RequestError(
            f"unknown content part type {tag!r} at {loc}; supported types: {_CONTENT_TYPES}",
            code="unsupported_content_type",
            param=loc,
        )
    if first["type"] == "union_tag_not_found":
        return RequestError(
            f"content part at {loc} has no 'type'", code="unsupported_content_type", param=loc
        )
    return RequestError(f"invalid request at {loc or 'body'}: {first['msg']}", param=loc or None)


def validate_request(payload: dict) -> ChatCompletionRequest:
    """The request model of a decoded body; schema errors become one 400 naming the field."""
    try:
        return ChatCompletionRequest.model_validate(payload)
    except ValidationError as err:
        raise _validation_message(err) from None


def parse_request(body: bytes, settings: ServeSettings) -> ChatCompletionRequest:
    """``decode_json`` then ``validate_request``."""
    return validate_request(decode_json(body, settings))


def _stop_strings(stop: str | list[str] | None, settings: ServeSettings) -> tuple[str, ...]:
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stops) > settings.max_stop_sequences:
        raise RequestError(
            f"at most {settings.max_stop_sequences} stop sequences are allowed, got {len(stops)}",
            param="stop",
            code="too_many_stop_sequences",
        )
    for i, s in enumerate(stops):
        if not s:
            raise RequestError(f"stop sequence {i} is empty", param="stop", code="invalid_stop")
        if len(s) > settings.max_stop_chars:
            raise RequestError(
                f"stop sequence {i} has {len(s)} characters; at most {settings.max_stop_chars} are allowed",
                param="stop",
                code="stop_too_long",
            )
    return stops


def build_options(request: ChatCompletionRequest, settings: ServeSettings) -> Any:
    """Map OpenAI sampling fields to ``desta.GenerationOptions`` (no temperature or 0: greedy)."""
    from desta.infer.options import GenerationOptions

    max_tokens = request.max_completion_tokens or request.max_tokens or settings.default_max_tokens
    if max_tokens > settings.max_new_tokens_limit:
        raise RequestError(
            f"max_tokens {max_tokens} is over this server's limit of {settings.max_new_tokens_limit}",
            param="max_tokens",
            code="max_tokens_too_large",
        )
    if request.n != 1:
        raise RequestError("only n=1 is supported", param="n", code="unsupported_parameter")
    stop = _stop_strings(request.stop, settings)
    sample = request.temperature is not None and request.temperature > 0
    return GenerationOptions(
        max_new_tokens=max_tokens,
        do_sample=sample,
        temperature=request.temperature if sample else 1.0,
        top_p=request.top_p if (sample and request.top_p is not None) else 1.0,
        top_k=request.top_k or 0,
        seed=request.seed,
        stop=stop,
    )


def request_text(request: ChatCompletionRequest) -> str:
    """All text the client sent, message by message (audio parts excluded)."""
    texts: list[str] = []
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            texts.append(content)
        elif content:
            texts.extend(p.text for p in content if isinstance(p, TextPart))
    return "\n".join(texts)


def check_prompt_length(request: ChatCompletionRequest, engine: Any, settings: ServeSettings) -> int:
    """Tokens of the client's text; a 400 beyond ``settings.max_prompt_tokens``.

    Uses ``engine.count_tokens(text)`` when the engine has it, else a bytes/4 estimate. Text far
    beyond the limit is refused before tokenizing, so the check itself stays cheap.
    """
    limit = settings.max_prompt_tokens
    text = request_text(request)

    def refuse(what: str) -> RequestError:
        return RequestError(
            f"the prompt is too long ({what}; this server accepts at most {limit} tokens of text per "
            "request, see --max-prompt-tokens)",
            param="messages",
            code="prompt_too_long",
        )

    if len(text) > 32 * limit:
        raise refuse(f"{len(text)} characters")
    counter = getattr(engine, "count_tokens", None)
    if counter is not None:
        n = int(counter(text))
    else:
        n = math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE)
    if n > limit:
        raise refuse(f"{n} tokens")
    return n
