"""Every shell and Python block in the README and docs/ is run here, or mirrored by a named test, or
skipped for a stated reason (GPU, model hub, the whole CI). A new block that is not registered below
fails this file, so a documented command cannot go untested by accident.

Blocks run as written, in a temporary folder, with only these substitutions: the server address
``http://127.0.0.1:8000`` becomes a live test server on a free port, and sizes in ``SIZES`` shrink.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)

# (file, first line of the block) -> how it is checked
RUN = "run"
REGISTRY: dict[tuple[str, str], str] = {
    ("README.md", "bash scripts/setup.sh && desta ask --show-transcript"): (
        "mirror tests/infer/test_infer_cli.py::test_readme_first_command_prints_exactly_what_the_readme_shows"
    ),
    ("README.md", "bash scripts/setup.sh && python3 -m pytest -q"): "skip: this is what .ci/run itself runs",
    ("README.md", "import desta"): RUN,
    ("README.md", 'model = desta.load_model("DeSTA-ntu/DeSTA2.5-Audio-Llama-3.1-8B", device="cuda")'): (
        "skip: needs the model hub and a GPU"
    ),
    ("README.md", "desta data synth corpus/ --num-clips 200"): RUN,
    ("docs/data.md", "desta data generate corpus/train.jsonl -o gen/ --backend transformers"): (
        "mirror tests/data/test_data_generate.py"
    ),
    ("docs/serving.md", "pip install 'desta[serve]'"): "mirror tests/serve/test_serve_cli.py",
    ("docs/serving.md", "import base64"): RUN,
    ("docs/serving.md", "CLIP=$(python3 -c 'from desta.model.load import example_clip; print(example_clip())')"): RUN,
    ("docs/serving.md", "pip install gradio"): "mirror tests/serve/test_serve_web.py",
    ("docs/serving.md", "bash scripts/setup-vllm.sh"): (
        "mirror tests/serve/test_serve_vllm.py::test_vllm_serve_answers_the_documented_openai_client"
    ),
    ("docs/serving.md", "from vllm import LLM, SamplingParams"): (
        "mirror tests/serve/test_serve_vllm.py::test_given_transcript_skips_asr"
    ),
    ("docs/serving.md", "VLLM_WHEEL=vllm==0.32.0 TORCH_WHEEL=torch bash scripts/setup-vllm.sh"): (
        "skip: a GPU and the official 8B checkpoint from the hub"
    ),
    ("docs/data.md", "bash scripts/setup-vllm.sh && . .venv-vllm/bin/activate"): (
        "mirror tests/serve/test_serve_vllm.py::test_data_generation_through_vllm_is_exactly_once"
    ),
    ("docs/data.md", "pip install vllm==0.32.0"): "skip: a GPU and Llama-3.1-8B from the hub",
    ("docs/training.md", "desta train recipes/desta-tiny.yaml optim.lr=5e-4 data.batch_size=4 --print-config"): RUN,
    ("docs/training.md", "apt-get install tuxpaint-stamps-default"): (
        "skip: the realdata collection lives outside the repository and the run takes about 2 hours of CPU; its"
        " readers, questions, scoring and card run in tests/data/test_data_sources_real.py and"
        " tests/recipes/test_tiny_real.py"
    ),
    ("docs/training.md", "torchrun --nproc_per_node 8 -m desta train recipes/desta25-llama31-8b.yaml"): (
        "skip: 8 GPUs and the official 8B backbones (the torchrun path runs on CPU in tests/train/test_train_distributed.py)"
    ),
}
# lines of a RUN block that are not executed, with the reason (the rest of the block runs)
NOT_RUN = {
    "torchrun --nproc_per_node 8": "8 GPUs and the official 8B backbones",
    "--backend openai --base-url http://gpu:8000/v1": "a GPU server (the openai backend runs in tests/data)",
    "desta serve runs/mine/model": "a server that never exits (served models run in tests/serve)",
}
SIZES = {"--num-clips 200": "--num-clips 12"}


def blocks() -> list[tuple[str, str, str]]:
    out = []
    for path in DOCS:
        for m in BLOCK.finditer(path.read_text()):
            out.append((str(path.relative_to(ROOT)), m.group(1), m.group(2)))
    return out


def _key(file: str, body: str) -> tuple[str, str] | None:
    first = body.strip().splitlines()[0]
    for (f, prefix), _ in REGISTRY.items():
        if f == file and first.startswith(prefix):
            return (f, prefix)
    return None


def _block(file: str, prefix: str) -> tuple[str, str]:
    for f, lang, body in blocks():
        if f == file and body.strip().startswith(prefix):
            return lang, body
    raise AssertionError(f"no block in {file} starts with {prefix!r}")


def test_every_block_is_registered_and_every_mirror_exists():
    found = {(_key(f, body), f, body.strip().splitlines()[0]) for f, _, body in blocks()}
    unregistered = [(f, first) for key, f, first in found if key is None]
    assert not unregistered, f"documented blocks with no test: {unregistered}; add them to REGISTRY"
    keys = {key for key, _, _ in found}
    stale = [k for k in REGISTRY if k not in keys]
    assert not stale, f"REGISTRY entries whose block is gone from the docs: {stale}"
    for how in REGISTRY.values():
        if how.startswith("mirror "):
            target = how.split()[1]
            path, _, name = target.partition("::")
            assert (ROOT / path).exists(), target
            if name:
                assert f"def {name}(" in (ROOT / path).read_text(), target


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _bash(script: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True,
                          env=_env(), timeout=timeout)  # fmt: skip
    assert done.returncode == 0, f"exit {done.returncode}\n--- script\n{script}\n--- stderr\n{done.stderr[-3000:]}"
    return done


def _python(code: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=_env(),
                          timeout=timeout)  # fmt: skip
    assert done.returncode == 0, f"exit {done.returncode}\n--- stderr\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_readme_python_api(tmp_path):
    _, body = _block("README.md", "import desta")
    out = _python(body, tmp_path).stdout
    assert "speaker" in out.lower()
    assert (tmp_path / "my-model" / "config.json").exists()


@pytest.mark.slow
def test_readme_data_and_training_commands(tmp_path):
    """The README's data -> training block, line by line (sizes shrunk; GPU/server lines named in NOT_RUN)."""
    _, body = _block("README.md", "desta data synth corpus/ --num-clips 200")
    lines = []
    for line in body.strip().splitlines():
        if any(marker in line for marker in NOT_RUN):
            continue
        for big, small in SIZES.items():
            line = line.replace(big, small)
        if line.startswith("desta train "):  # one short epoch at a small batch: the command itself is as documented
            line = line.split("#")[0] + " data.batch_size=2 optim.max_steps=2"
        lines.append(line.replace("recipes/", f"{ROOT}/recipes/"))
    _bash("\n".join(lines), tmp_path, timeout=1500)
    assert (tmp_path / "gen" / "shard-00000.jsonl").exists()
    assert (tmp_path / "runs" / "mine" / "model" / "config.json").exists()


@pytest.fixture()
def fake_server():
    from desta.serve.app import create_app
    from desta.serve.fake import FakeEngine
    from desta.serve.settings import ServeSettings
    from serve.serve_helpers import LiveServer

    with LiveServer(create_app(FakeEngine(name="desta-tiny"), ServeSettings(api_key="s3cret"))) as server:
        yield server


def test_serving_openai_client_example(tmp_path, fake_server):
    _, body = _block("docs/serving.md", "import base64")
    code = body.replace("http://127.0.0.1:8000", fake_server.url)
    out = _python(code, tmp_path, timeout=120).stdout
    assert "echo: What is said in the audio?" in out and "prompt_tokens" in out


def test_serving_curl_example(tmp_path, fake_server):
    _, body = _block("docs/serving.md", "CLIP=$(python3 -c")
    out = _bash(body.replace("http://127.0.0.1:8000", fake_server.url), tmp_path, timeout=120).stdout
    assert '"echo: Describe the audio.' in out


def test_training_doc_commands(tmp_path):
    _, body = _block("docs/training.md", "desta train recipes/desta-tiny.yaml optim.lr=5e-4")
    first, second = [line.split("#")[0].replace("recipes/", f"{ROOT}/recipes/") for line in body.strip().splitlines()]
    shown = _bash(first, tmp_path, timeout=120).stdout
    assert "5e-4" in shown or "0.0005" in shown
    done = subprocess.run(["bash", "-c", second], cwd=tmp_path, capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode != 0 and "unknown config key 'optim.lrr'" in done.stderr
