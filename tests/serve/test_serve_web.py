"""`desta demo-web`: the chat logic without a browser, and the page in headless Chromium."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from serve_helpers import free_port, wav_bytes

from desta.errors import DeSTAError
from desta.serve.fake import FakeEngine
from desta.serve.web import AUDIO_LOCATOR, chat_turn, system_placeholder


def _options():
    from desta import GenerationOptions

    return GenerationOptions(max_new_tokens=64)


def test_chat_turn_with_audio_then_text(tmp_path):
    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(0.5))
    engine = FakeEngine()
    conv, answer = chat_turn(engine, [], str(clip), "What is said?", _options())
    assert answer == "echo: What is said? | audios=1 | seconds=0.50"
    # no system message: the model applies its own default system prompt
    assert [m["role"] for m in conv] == ["user", "assistant"]
    assert conv[0]["content"] == f"{AUDIO_LOCATOR}\nWhat is said?"
    assert conv[0]["audios"][0]["audio"].shape == (8000,)
    conv2, answer2 = chat_turn(engine, conv, None, "And then?", _options())
    assert answer2 == "echo: And then? | audios=1 | seconds=0.50"  # the earlier clip stays in context
    assert len(conv) == 2 and len(conv2) == 4  # input not modified
    conv3, _ = chat_turn(engine, [], str(clip), "", _options())
    assert conv3[0]["content"] == AUDIO_LOCATOR
    for blank in ("", "   ", None):
        conv4, _ = chat_turn(engine, [], None, "hi", _options(), blank)
        assert [m["role"] for m in conv4] == ["user", "assistant"]
    conv5, _ = chat_turn(engine, [], None, "hi", _options(), "  Be brief. ")
    assert conv5[0] == {"role": "system", "content": "Be brief."}


def test_system_box_shows_the_models_default():
    engine = FakeEngine()
    assert "no default" in system_placeholder(engine)
    engine.default_system_prompt = "Trained prompt."
    assert system_placeholder(engine) == "(model default) Trained prompt."


def test_chat_turn_refuses_empty_and_bad_audio(tmp_path):
    with pytest.raises(DeSTAError, match="record or upload"):
        chat_turn(FakeEngine(), [], None, "  ", _options())
    bad = tmp_path / "bad.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(DeSTAError):
        chat_turn(FakeEngine(), [], str(bad), "hi", _options())


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.system
def test_page_renders_in_headless_chromium(tmp_path):
    pytest.importorskip("gradio")
    from PIL import Image

    from desta.serve.web import launch_demo

    exe = _chromium()
    assert exe, "chromium is not installed (apt-get install chromium)"
    port = free_port()
    demo = launch_demo(FakeEngine(), host="127.0.0.1", port=port, block=False)
    try:
        base = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,900",
            "--virtual-time-budget=15000",
        ]
        url = f"http://127.0.0.1:{port}/"
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
        shot = tmp_path / "page.png"
        subprocess.run([*base, f"--screenshot={shot}", url], capture_output=True, timeout=180)
    finally:
        demo.close()
    for control in [
        "desta-audio",
        "desta-prompt",
        "desta-send",
        "desta-clear",
        "desta-chat",
        "DeSTA2.5-Audio demo",
    ]:
        assert control in dom, control
    assert "Record" in dom or "microphone" in dom.lower()  # the recorder is offered next to upload
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape == (900, 1280, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # a rendered page, not a blank frame
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    primary = (r > 200) & (g > 80) & (g < 160) & (b < 80)  # Gradio's orange primary button (Send)
    assert primary.sum() > 5000


def test_stream_turn_grows_the_answer_piece_by_piece(tmp_path):
    from desta.serve.web import stream_turn

    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(0.5))
    steps = list(stream_turn(FakeEngine(), [], str(clip), "What is said?", _options()))
    answers = [a for _, a in steps]
    assert len(steps) > 3 and all(b.startswith(a) for a, b in zip(answers, answers[1:]))
    conv, answer = steps[-1]
    assert answer == "echo: What is said? | audios=1 | seconds=0.50"
    assert conv[-1] == {"role": "assistant", "content": answer} and [m["role"] for m in conv] == ["user", "assistant"]
    assert chat_turn(FakeEngine(), [], str(clip), "What is said?", _options())[1] == answer


def test_page_offers_the_example_clip_streams_and_prints_only_its_local_url(capsys):
    """The bundled clip is an example; the answer arrives in pieces; the console shows one line with the
    local URL (not Gradio's banner suggesting share=True, which `desta demo-web` cannot set)."""
    pytest.importorskip("gradio")
    import json
    import urllib.request

    from gradio_client import Client, handle_file

    from desta.model.load import example_clip
    from desta.serve.web import launch_demo

    port = free_port()
    demo = launch_demo(FakeEngine(delay_per_piece_s=0.02), host="127.0.0.1", port=port, block=False)
    try:
        out = capsys.readouterr().out
        assert out.strip().splitlines() == [f"desta demo-web: open http://127.0.0.1:{port}/ (Ctrl+C stops it)"]
        config = json.dumps(json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30)))
        assert "example.wav" in config and "What is said, and is the speaker a man or a woman?" in config
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        job = client.submit(handle_file(example_clip()), "What is said?", "", [], api_name="/respond")
        job.result(timeout=60)
        shown = [o[0][-1]["content"] for o in job.outputs()]
        texts = [c[0]["text"] if isinstance(c, list) else c for c in shown]
        assert len(texts) > 3 and texts[-1] == "echo: What is said? | audios=1 | seconds=5.30"
        assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))  # streamed: each piece extends the last
    finally:
        demo.close()
    assert "share=True" not in capsys.readouterr().out
