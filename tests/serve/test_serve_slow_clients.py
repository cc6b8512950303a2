"""A live server on 127.0.0.1 against slow, silent and vanishing clients (fake engine, short timeouts).

Each test would fail on the old server: slow bodies held queue slots (429 for everyone), silent
connections were never closed (503 once ``limit_concurrency`` filled), a 500 dropped the keep-alive
connection, and abandoned requests and streams were computed to the end.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
from serve_helpers import LiveServer, closed_within, read_response, request_bytes

from desta.serve.app import create_app
from desta.serve.fake import FakeEngine
from desta.serve.settings import ServeSettings

URL = "/v1/chat/completions"


def chat(text: str = "hi", **extra) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": text}], **extra}).encode()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def wait_until(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_500_keeps_the_keep_alive_connection():
    app = create_app(FakeEngine(fail_on="BOOM"), ServeSettings())
    with LiveServer(app) as server:
        sock = connect(server.port)
        sock.sendall(request_bytes(chat("BOOM")))
        status, headers, body = read_response(sock)
        assert status == 500 and json.loads(body)["error"]["code"] == "internal_error"
        assert headers.get("connection", "").lower() != "close"
        sock.sendall(request_bytes(chat("after")))  # same socket
        status, _, body = read_response(sock)
        assert status == 200 and json.loads(body)["choices"][0]["message"]["content"].startswith(
            "echo: after"
        )
        sock.close()


def test_slow_bodies_hold_no_queue_slot_and_are_cut():
    settings = ServeSettings(max_queue=2, body_timeout_s=1.0, header_timeout_s=5)
    with LiveServer(create_app(FakeEngine(), settings)) as server:
        slow = []
        for _ in range(6):  # 3x the queue: each says 1000 bytes and sends 10
            sock = connect(server.port)
            sock.sendall(request_bytes(b'{"messages"', length=1000))
            slow.append(sock)
        time.sleep(0.2)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            codes = [client.post(URL, content=chat(f"q{i}")).status_code for i in range(4)]
        assert codes == [200] * 4
        start = time.monotonic()
        for sock in slow:
            status, headers, body = read_response(sock)
            assert status == 408 and json.loads(body)["error"]["code"] == "body_timeout"
            assert headers["connection"] == "close"
            assert closed_within(sock, 2.0) is not None
            sock.close()
        assert time.monotonic() - start < 2.0


def test_silent_connections_are_closed_and_do_not_hold_the_server():
    settings = ServeSettings(header_timeout_s=0.5, max_connections=8)
    with LiveServer(create_app(FakeEngine(), settings)) as server:
        silent = [connect(server.port) for _ in range(8)]
        silent[0].sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # headers never end
        time.sleep(0.1)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post(URL, content=chat()).status_code == 503  # all 8 slots taken
            times = [closed_within(sock, 3.0) for sock in silent]
            assert all(t is not None for t in times), times
            assert max(times) < 1.5
            assert client.post(URL, content=chat()).status_code == 200
        for sock in silent:
            sock.close()


def test_idle_keep_alive_connection_is_closed():
    settings = ServeSettings(keep_alive_timeout_s=0.3, header_timeout_s=5)
    with LiveServer(create_app(FakeEngine(), settings)) as server:
        sock = connect(server.port)
        sock.sendall(request_bytes(chat()))
        assert read_response(sock)[0] == 200
        gone = closed_within(sock, 3.0)
        assert gone is not None and gone < 1.5
        sock.close()


def test_abandoned_requests_are_not_computed():
    engine = FakeEngine(delay_per_call_s=1.0)
    settings = ServeSettings(max_batch_size=1, batch_window_ms=0, batch_max_wait_ms=0)
    app = create_app(engine, settings)
    with LiveServer(app) as server:
        result: dict = {}

        def keeper() -> None:
            with httpx.Client(base_url=server.url, timeout=20) as client:
                result["resp"] = client.post(URL, content=chat("kept"))

        thread = threading.Thread(target=keeper)
        thread.start()
        assert wait_until(lambda: engine.calls == [1])  # the kept request is running
        leavers = [connect(server.port) for _ in range(3)]
        for sock in leavers:
            sock.sendall(request_bytes(chat("gone")))
        assert wait_until(lambda: app.state.batcher.queued == 3)
        for sock in leavers:
            sock.close()
        thread.join()
        assert result["resp"].status_code == 200
        assert wait_until(lambda: app.state.batcher.skipped_jobs == 3)
        assert engine.calls == [1]  # queued and abandoned: never computed
        # abandoned while running: the engine's cancel event stops it at once
        sock = connect(server.port)
        sock.sendall(request_bytes(chat("running")))
        assert wait_until(lambda: engine.calls == [1, 1])
        time.sleep(0.1)
        busy_before = engine.busy_s
        sock.close()
        assert wait_until(lambda: engine.cancelled == 1, 0.8)
        assert engine.busy_s - busy_before < 0.7
        assert wait_until(lambda: httpx.get(f"{server.url}/health").json()["in_flight"] == 0)


def _start_stream(port: int, text: str) -> socket.socket:
    sock = connect(port)
    sock.sendall(request_bytes(chat(text, stream=True)))
    return sock


def test_abandoned_streams_stop():
    engine = FakeEngine(delay_per_piece_s=0.05)
    app = create_app(engine, ServeSettings())
    words = " ".join(f"w{i}" for i in range(100))  # about 106 pieces: 5 s if generated to the end
    with LiveServer(app) as server:
        sock = _start_stream(server.port, words)
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert wait_until(lambda: engine.pieces >= 3)
        sock.close()
        assert wait_until(lambda: engine.cancelled == 1, 1.0)
        pieces = engine.pieces
        time.sleep(0.3)
        assert engine.pieces == pieces < 30  # stopped, nowhere near the 106 pieces
        # a stream dropped while it waits behind another one never starts
        kept = _start_stream(server.port, "short one")
        queued = _start_stream(server.port, words)
        time.sleep(0.05)
        queued.close()
        kept.settimeout(10)
        data = b""
        while b"[DONE]" not in data:
            chunk = kept.recv(65536)
            assert chunk, data
            data += chunk
        kept.close()
        assert wait_until(lambda: app.state.batcher.skipped_jobs == 1)
        assert engine.streams == 2  # the first and the kept one
        assert wait_until(lambda: httpx.get(f"{server.url}/health").json()["in_flight"] == 0)


def test_engine_that_ignores_cancel_still_stops_streams():
    class DeafEngine(FakeEngine):  # takes ``cancel`` (the protocol) but never looks at it
        def generate(self, conversations, options, *, cancel=None):
            return super().generate(conversations, options)

        def stream(self, conversation, options, *, cancel=None):
            return super().stream(conversation, options)

    engine = DeafEngine(delay_per_piece_s=0.05)
    app = create_app(engine, ServeSettings())
    with LiveServer(app) as server:
        sock = _start_stream(server.port, " ".join(f"w{i}" for i in range(100)))
        assert wait_until(lambda: engine.pieces >= 3)
        sock.close()
        time.sleep(0.5)
        pieces = engine.pieces
        time.sleep(0.3)
        assert engine.pieces == pieces < 30  # the worker stopped pulling pieces
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post(URL, content=chat("next")).status_code == 200


def test_trickled_next_request_and_huge_headers():
    settings = ServeSettings(keep_alive_timeout_s=0.3, header_timeout_s=1.0)
    with LiveServer(create_app(FakeEngine(), settings)) as server:
        sock = connect(server.port)
        sock.sendall(request_bytes(chat()))
        assert read_response(sock)[0] == 200
        sock.sendall(b"P")  # data resets uvicorn's keep-alive timer; the header deadline still runs
        time.sleep(0.5)
        sock.sendall(b"OST / HTTP/1.1\r\n")
        gone = closed_within(sock, 3.0)
        assert gone is not None and gone < 1.5
        sock.close()
        big = connect(server.port)
        big.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n")
        assert read_response(big)[0] == 400  # over h11's 16 KiB header limit
        big.close()
