"""`desta ask`: clear errors before any model loads, conversation building, and the shipped model's
answer about the bundled clip (the README's first command)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from desta.cli import main
from desta.errors import DeSTAError
from desta.messages import conversation
from desta.model.load import example_clip


def test_missing_file_is_named_without_a_traceback(tmp_path, capsys):
    missing = tmp_path / "nope.wav"
    assert main(["ask", str(missing), "What is said?"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("desta: error:") and "nope.wav" in err and "Traceback" not in err


def test_undecodable_file_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert main(["ask", str(bad), "What is said?"]) == 1
    err = capsys.readouterr().err
    assert "bad.wav" in err and "Traceback" not in err


def test_a_question_alone_is_refused(capsys):
    assert main(["ask", "What is said?"]) == 1
    assert "at least one audio file and a question" in capsys.readouterr().err


def test_ask_conversation():
    conv = conversation("What?", ["a.wav"], system="Be brief.", transcript="hello")
    assert conv[0] == {"role": "system", "content": "Be brief."}
    assert conv[1]["content"] == "<|AUDIO|>\nWhat?" and conv[1]["audios"] == [{"audio": "a.wav", "text": "hello"}]
    two = conversation("Compare.", ["a.wav", "b.wav"])
    assert two[0]["content"].count("<|AUDIO|>") == 2 and all(a["text"] is None for a in two[0]["audios"])
    with pytest.raises(DeSTAError, match="exactly one audio"):
        conversation("Compare.", ["a.wav", "b.wav"], transcript="for which clip?")


def test_transcript_for_two_clips_is_refused(tmp_path, capsys):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for p in (a, b):
        sf.write(p, np.zeros(1600, dtype=np.float32), 16000)
    assert main(["ask", "--transcript", "hi", str(a), str(b), "Compare."]) == 1
    assert "--transcript applies to one audio file" in capsys.readouterr().err


@pytest.mark.slow
def test_shipped_model_answers_the_readme_question(capsys):
    """desta-tiny on the bundled LibriVox clip answers both parts: what is said and the speaker's sex."""
    from desta.rules import score_content, score_gender

    question = "What is said, and is the speaker a man or a woman?"
    assert main(["ask", "--show-transcript", "--max-new-tokens", "64", example_clip(), question]) == 0
    out = capsys.readouterr()
    assert "selfish" in out.err.lower() and "disposed" in out.err.lower()  # [transcript] line
    spoken = "unless to be rather cold hearted and rather selfish is to be ill disposed"
    assert score_content(out.out, spoken), out.out  # the answer itself carries the words
    assert score_gender(out.out, "Male"), out.out
    assert "untrained" not in out.err
    lines = out.err.strip().splitlines()
    assert lines == [x for x in lines if x.startswith("[transcript]")], out.err  # no loading bars: as the README shows


@pytest.mark.slow
def test_untrained_adapter_is_labelled(capsys):
    assert main(["ask", "--model", "untrained", "--no-stream", "--max-new-tokens", "4", example_clip(), "Hi?"]) == 0
    assert "[untrained adapter" in capsys.readouterr().err


@pytest.mark.slow
def test_readme_first_command_prints_exactly_what_the_readme_shows():
    """The README's first command in a fresh process: stderr holds only the transcript line (no
    warnings from any library, no progress bars) and stdout only the answer, as the README shows."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = re.search(r"```bash\nbash scripts/setup.sh && (desta ask .*?)\n```", readme).group(1)
    shown = re.search(r"It prints the Whisper transcript and then desta-tiny's answer:\n\n```\n(.*?)\n```", readme, re.S)
    transcript_line, answer_line = shown.group(1).splitlines()
    question = re.search(r'"([^"]+\?)"$', block).group(1)
    # Python's default warning filters: what a user sees (FutureWarning and UserWarning included)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    cmd = [sys.executable, "-m", "desta", "ask", "--show-transcript", example_clip(), question]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == transcript_line, done.stderr
    assert done.stdout.strip() == answer_line, done.stdout


def _clip(tmp_path, seconds: float = 1.0):
    path = tmp_path / "clip.wav"
    sf.write(path, (0.3 * np.sin(np.arange(int(16000 * seconds)) / 8)).astype(np.float32), 16000)
    return str(path)


def test_ask_a_running_server(tmp_path, capsys):
    """`desta ask --server` sends the clip as an input_audio part and prints the served answer."""
    from desta.serve.app import create_app
    from desta.serve.fake import FakeEngine
    from desta.serve.settings import ServeSettings
    from serve.serve_helpers import LiveServer

    clip = _clip(tmp_path, 1.0)
    with LiveServer(create_app(FakeEngine(), ServeSettings())) as server:
        assert main(["ask", "--server", f"{server.url}/v1", clip, "What is said?"]) == 0
        assert capsys.readouterr().out.strip() == "echo: What is said? | audios=1 | seconds=1.00"
        assert main(["ask", "--server", f"{server.url}/v1", "--model", "other", clip, "Hi?"]) == 1
        assert "other" in capsys.readouterr().err
        assert main(["ask", "--server", f"{server.url}/v1", "--show-transcript", clip, "Hi?"]) == 1
        assert "need a local model" in capsys.readouterr().err


def test_ask_a_server_that_is_not_there(tmp_path, capsys):
    from serve.serve_helpers import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    assert main(["ask", "--server", url, _clip(tmp_path), "Hi?"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("desta: error:") and "127.0.0.1" in err and "Traceback" not in err


def test_ask_a_server_given_without_v1(tmp_path, capsys):
    """`--server http://host:port` (no path) means its /v1, where OpenAI-compatible servers answer."""
    from desta.infer.cli import server_base_url
    from desta.serve.app import create_app
    from desta.serve.fake import FakeEngine
    from desta.serve.settings import ServeSettings
    from serve.serve_helpers import LiveServer

    assert server_base_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert server_base_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/v1"
    assert server_base_url("localhost:8000") == "http://localhost:8000/v1"
    assert server_base_url("https://example.org/api/v1/") == "https://example.org/api/v1"  # a path: as given
    clip = _clip(tmp_path, 1.0)
    with LiveServer(create_app(FakeEngine(), ServeSettings())) as server:
        for url in (server.url, server.url + "/"):
            assert main(["ask", "--server", url, clip, "What is said?"]) == 0
            assert capsys.readouterr().out.strip() == "echo: What is said? | audios=1 | seconds=1.00"
