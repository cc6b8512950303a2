"""Abusive clients against a live `desta serve` on 127.0.0.1 (fake engine, the shipped settings).

Scenarios, each with figures in ``bench/results/serve_abuse.json``:

- hostile bodies: JSON nested 100,000 deep, a 5,000-digit integer, 1e400, seed 2^63, a 100 KB stop
  string, a 17 KB prompt: status, error code and seconds per request;
- a 500 on a keep-alive connection: is the same socket still usable;
- slow bodies: 260 requests whose bodies never finish (more than ``--max-queue``) while normal
  clients send requests: their status codes, and when the slow ones are cut (408);
- half-open connections: 600 connections that send nothing (under ``--max-connections``) and 1,100
  (over it): 503s seen by a normal client and for how long, and when the silent ones are closed;
- abandoned work: 32 requests dropped after 1 s and 4 long streams dropped after 1 s: engine busy
  time, pieces generated, jobs skipped, against what finishing them would have cost;
- with the real embedded model (skip with ``--no-model``): a 400-token stream and a 400-token request
  dropped after 3 s, and how long a short request then takes compared with an idle server.

    python bench/serve_abuse.py               # about two minutes
    python bench/serve_abuse.py --quick       # shorter timeouts (harness check), result not written
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import socket
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))  # LiveServer, raw-socket helpers
sys.path.insert(0, str(ROOT / "bench"))
from _machine import write_result  # noqa: E402
from serve_helpers import LiveServer, read_response, request_bytes  # noqa: E402

from desta.serve.app import create_app  # noqa: E402
from desta.serve.fake import FakeEngine  # noqa: E402
from desta.serve.settings import ServeSettings  # noqa: E402

URL = "/v1/chat/completions"


def chat(text: str = "hi", **extra) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": text}], **extra}).encode()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def wait_until(predicate, seconds: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def is_closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def hostile_bodies(settings: ServeSettings) -> dict:
    msg = b'{"messages": [{"role": "user", "content": "hi"}]'
    cases = {
        "json_nested_100k": msg + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "int_5000_digits": msg + b', "max_tokens": ' + b"9" * 5000 + b"}",
        "float_1e400": msg + b', "temperature": 1e400}',
        "seed_2_pow_63": msg + b', "seed": ' + str(2**63).encode() + b"}",
        "stop_100kB": msg + b', "stop": "' + b"x" * 100_000 + b'"}',
        "prompt_17kB": chat(" ".join(["word"] * 3400)),
    }
    out = {}
    with (
        LiveServer(create_app(FakeEngine(), settings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        for name, payload in cases.items():
            start = time.monotonic()
            resp = client.post(URL, content=payload, headers={"Content-Type": "application/json"})
            out[name] = {
                "bytes": len(payload),
                "status": resp.status_code,
                "code": resp.json()["error"]["code"] if resp.status_code >= 400 else None,
                "seconds": round(time.monotonic() - start, 4),
            }
    return out


def keep_alive_after_500(settings: ServeSettings) -> dict:
    with LiveServer(create_app(FakeEngine(fail_on="BOOM"), settings)) as server:
        sock = connect(server.port)
        sock.sendall(request_bytes(chat("BOOM")))
        first, _, body = read_response(sock)
        sock.sendall(request_bytes(chat("after")))
        try:
            second = read_response(sock)[0]
        except OSError:
            second = None
        sock.close()
    return {"first_status": first, "second_status_same_socket": second, "path_free": b"/" not in body}


def normal_requests(url: str, n: int) -> dict:
    codes: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(n):
            code = str(client.post(URL, content=chat(f"q{i}")).status_code)
            codes[code] = codes.get(code, 0) + 1
    return codes


def slow_bodies(settings: ServeSettings, n: int = 260) -> dict:
    with LiveServer(create_app(FakeEngine(delay_per_call_s=0.01), settings)) as server:
        socks = []
        for _ in range(n):
            sock = connect(server.port)
            sock.sendall(request_bytes(b'{"messages"', length=1000))
            socks.append(sock)
        opened = time.monotonic()
        time.sleep(0.5)
        codes = normal_requests(server.url, 50)
        cut = [None] * n

        def collect(i: int, sock: socket.socket) -> None:
            try:
                cut[i] = (read_response(sock)[0], time.monotonic() - opened)
            except OSError:
                cut[i] = (None, time.monotonic() - opened)

        threads = [threading.Thread(target=collect, args=(i, s)) for i, s in enumerate(socks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(settings.body_timeout_s + 30)
        for sock in socks:
            sock.close()
    statuses = sorted({str(c[0]) for c in cut if c})
    times = [c[1] for c in cut if c]
    return {
        "slow_requests": n,
        "max_queue": settings.max_queue,
        "normal_requests_while_held": codes,
        "slow_request_statuses": statuses,
        "slow_cut_after_s": {"min": round(min(times), 2), "max": round(max(times), 2)},
    }


def half_open(settings: ServeSettings, n: int) -> dict:
    with LiveServer(create_app(FakeEngine(), settings)) as server:
        socks = [connect(server.port) for _ in range(n)]
        opened = time.monotonic()
        time.sleep(0.3)
        seen: list[tuple[float, int]] = []
        first_ok = None
        with httpx.Client(
            base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        ) as c:
            while time.monotonic() - opened < settings.header_timeout_s + 5:
                code = c.post(URL, content=chat()).status_code
                seen.append((time.monotonic() - opened, code))
                if code == 200 and first_ok is None:
                    first_ok = time.monotonic() - opened
                if first_ok is not None and time.monotonic() - opened > 1.0:
                    break
                time.sleep(0.25)
        closed = wait_until(lambda: all(is_closed(s) for s in socks), settings.header_timeout_s + 10)
        closed_at = time.monotonic() - opened if closed is not None else None
        for sock in socks:
            sock.close()
    n503 = [t for t, code in seen if code == 503]
    return {
        "connections": n,
        "max_connections": settings.max_connections,
        "normal_requests": len(seen),
        "normal_503": len(n503),
        "503_window_s": round(max(n503), 2) if n503 else 0.0,
        "first_200_after_s": round(first_ok, 2) if first_ok is not None else None,
        "header_timeout_s": settings.header_timeout_s,
        "silent_all_closed_after_s": round(closed_at, 2) if closed_at is not None else None,
    }


def abandoned_requests(settings: ServeSettings, n: int = 32, after_s: float = 1.0) -> dict:
    engine = FakeEngine(delay_per_call_s=1.0, delay_per_item_s=0.05)
    app = create_app(engine, settings)
    batch = settings.max_batch_size
    full_cost = (n // batch) * (1.0 + 0.05 * batch)
    with LiveServer(app) as server:
        socks = [connect(server.port) for _ in range(n)]
        for sock in socks:
            sock.sendall(request_bytes(chat("abandon me")))
        time.sleep(after_s)
        for sock in socks:
            sock.close()
        idle = wait_until(lambda: httpx.get(f"{server.url}/health").json()["in_flight"] == 0, 30)
        time.sleep(0.5)
        batcher = app.state.batcher
        figures = {
            "requests": n,
            "abandoned_after_s": after_s,
            "engine_busy_s": round(engine.busy_s, 2),
            "cost_if_completed_s": round(full_cost, 2),
            "conversations_started": sum(engine.calls),
            "jobs_skipped": batcher.skipped_jobs,
            "calls_cancelled": engine.cancelled,
            "idle_after_leaving_s": round(idle, 2) if idle is not None else None,
        }
    return figures


def abandoned_streams(settings: ServeSettings, n: int = 4, after_s: float = 1.0) -> dict:
    engine = FakeEngine(delay_per_piece_s=0.05)
    app = create_app(engine, settings)
    words = " ".join(f"w{i}" for i in range(200))
    pieces_each = len(f"echo: {words} | audios=0 | seconds=0.00".split(" "))
    with LiveServer(app) as server:
        socks = [connect(server.port) for _ in range(n)]
        for sock in socks:
            sock.sendall(request_bytes(chat(words, stream=True)))
        time.sleep(after_s)
        for sock in socks:
            sock.close()
        idle = wait_until(lambda: httpx.get(f"{server.url}/health").json()["in_flight"] == 0, 60)
        time.sleep(0.5)
        return {
            "streams": n,
            "abandoned_after_s": after_s,
            "pieces_generated": engine.pieces,
            "pieces_if_completed": n * pieces_each,
            "engine_busy_s": round(engine.busy_s, 2),
            "cost_if_completed_s": round(n * pieces_each * 0.05, 2),
            "streams_started": engine.streams,
            "idle_after_leaving_s": round(idle, 2) if idle is not None else None,
        }


def _timed_short(client: httpx.Client) -> float:
    start = time.monotonic()
    resp = client.post(URL, json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert resp.status_code == 200, resp.text
    return round(time.monotonic() - start, 2)


def real_model_abandoned(settings: ServeSettings, after_s: float = 3.0) -> dict:
    import desta

    model = desta.load_model()
    long_body = {
        "messages": [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}],
        "max_tokens": 400,
    }
    with (
        LiveServer(create_app(model, settings)) as server,
        httpx.Client(base_url=server.url, timeout=300) as c,
    ):
        _timed_short(c)  # warm-up
        idle = _timed_short(c)
        pieces = 0
        with httpx.Client(base_url=server.url, timeout=300) as leaver:
            start = time.monotonic()
            with leaver.stream("POST", URL, json=long_body | {"stream": True}) as resp:
                for _ in resp.iter_lines():
                    pieces += 1
                    if time.monotonic() - start > after_s:
                        break
        after_stream = _timed_short(c)
        try:
            httpx.post(f"{server.url}{URL}", json=long_body, timeout=after_s)
        except httpx.TimeoutException:
            pass
        after_request = _timed_short(c)
        start = time.monotonic()
        full = c.post(URL, json=long_body).json()["usage"]["completion_tokens"]
        full_s = round(time.monotonic() - start, 2)
    return {
        "model": model.name,
        "abandoned_after_s": after_s,
        "short_request_idle_s": idle,
        "short_request_after_dropped_stream_s": after_stream,
        "short_request_after_dropped_request_s": after_request,
        "stream_events_before_drop": pieces,
        "long_request_if_kept": {"completion_tokens": full, "seconds": full_s},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short timeouts, fewer clients; nothing written")
    parser.add_argument("--no-model", action="store_true", help="skip the real-model scenario")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    settings = ServeSettings()  # what `desta serve` runs with
    if args.quick:
        settings = dataclasses.replace(settings, body_timeout_s=2.0, header_timeout_s=2.0)
    figures: dict = {
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if not k.startswith("api")}
    }
    figures["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in figures["settings"].items()}
    steps = [
        ("hostile_bodies", lambda: hostile_bodies(settings)),
        ("keep_alive_after_500", lambda: keep_alive_after_500(settings)),
        ("slow_bodies", lambda: slow_bodies(settings, 60 if args.quick else 260)),
        ("half_open_600", lambda: half_open(settings, 100 if args.quick else 600)),
        (
            "half_open_over_limit",
            lambda: (
                half_open(dataclasses.replace(settings, max_connections=64), 80)
                if args.quick
                else half_open(settings, 1100)
            ),
        ),
        ("abandoned_requests", lambda: abandoned_requests(settings)),
        ("abandoned_streams", lambda: abandoned_streams(settings)),
    ]
    if not args.no_model:
        steps.append(("real_model_abandoned", lambda: real_model_abandoned(settings)))
    for name, step in steps:
        start = time.monotonic()
        figures[name] = step()
        print(f"{name} ({time.monotonic() - start:.1f} s): {json.dumps(figures[name])}", flush=True)
    if not args.quick:
        print("wrote", write_result("serve_abuse", figures))


if __name__ == "__main__":
    main()
