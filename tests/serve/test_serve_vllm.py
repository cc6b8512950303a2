"""desta in a real vLLM engine: export, plugin registration, greedy equality with desta's generate.

The engine tests need vLLM; they run in the vLLM environment (``bash scripts/setup-vllm.sh``)::

    .venv-vllm/bin/python -m pytest -q tests/serve/test_serve_vllm.py

One engine is started for the module (vLLM's CPU start-up takes minutes). Elsewhere those tests are
skipped with the reason; the export and prompt-layout tests run everywhere.
"""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from desta.errors import DeSTAError
from desta.serve import vllm_plugin
from desta.serve.vllm_export import ExportOptions, export_vllm, system_prompt_template
from desta.serve.vllm_prompt import audio_block_ids, n_embedding_slots, window_count

pytestmark = pytest.mark.slow

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CLIPS = ("sense_and_sensibility_01_austen_64kb-0930.wav", "sense_and_sensibility_01_austen_64kb-0870.wav")
QUESTION = "What does the speaker say?"
MAX_TOKENS = 32
# fp32 on both sides; vLLM's CPU kernels sum in another order than transformers' (measured ~1e-5)
LOGPROB_TOL = 2e-3
NO_VLLM = "vLLM is not installed here: run `bash scripts/setup-vllm.sh`, then `.venv-vllm/bin/python -m pytest tests/serve/test_serve_vllm.py`"


def _need_clips() -> None:
    if not all((LIBRIVOX / c).exists() for c in CLIPS):
        pytest.skip("LibriVox test clips missing: apt-get install pocketsphinx-testdata")


# ------------------------------------------------------------------------------------------- layout
def test_audio_block_ids_layout():
    ids = audio_block_ids([[5, 6], [7]], n_queries=3, placeholder_id=9)
    assert ids == [9, 9, 9, 5, 6, 9, 9, 9, 7]
    assert ids.count(9) == n_embedding_slots(2, 3)
    with pytest.raises(DeSTAError, match="placeholder"):
        audio_block_ids([[9]], n_queries=2, placeholder_id=9)
    with pytest.raises(DeSTAError, match="at least one window"):
        audio_block_ids([], n_queries=2, placeholder_id=9)


def test_window_count_follows_split_windows():
    assert window_count(np.zeros(16000 * 10, np.float32)) == 1
    assert window_count(np.zeros(16000 * 35, np.float32)) == 2
    assert window_count(np.zeros(16000 * 60 + 100, np.float32)) == 2  # a 6 ms tail is dropped


def test_register_without_vllm_is_a_no_op(monkeypatch):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed; the engine tests below cover registration")
    assert vllm_plugin.register() is None


# ------------------------------------------------------------------------------------------- export
@pytest.fixture(scope="module")
def tiny():
    import desta

    return desta.load_model()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny):
    return export_vllm(None, tmp_path_factory.mktemp("vllm") / "desta-tiny")


def test_export_folder_is_self_contained(exported, tiny):
    config = json.loads((exported / "config.json").read_text())
    assert config["architectures"] == [vllm_plugin.ARCHITECTURE] and config["model_type"] == "desta"
    assert config["encoder_model_id"] == "whisper" and (exported / "whisper" / "config.json").is_file()
    assert config["text_config"]["hidden_size"] == tiny.config.llm_dim
    assert config["placeholder_token"] == tiny.config.placeholder_token
    text = "".join(p.read_text() for p in exported.rglob("*.json"))
    assert str(Path.home()) not in text and "offline:" not in json.dumps(config["text_config"])
    gen = json.loads((exported / "generation_config.json").read_text())
    assert gen["eos_token_id"] == tiny.generator.eos_ids()


def test_export_merges_lora_into_plain_weight_names(exported, tiny):
    from safetensors import safe_open

    with safe_open(str(exported / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        q = f.get_tensor("language_model.model.layers.0.self_attn.q_proj.weight")
        embed = f.get_tensor("language_model.model.embed_tokens.weight")
    assert not [k for k in keys if "lora_" in k or "base_layer" in k]
    attn = tiny.llm_model.model.layers[0].self_attn.q_proj
    merged = attn.get_base_layer().weight if hasattr(attn, "get_base_layer") else attn.weight
    assert torch.equal(q, merged.detach())  # the merged weight, not the frozen base
    assert torch.equal(embed, tiny.llm_model.get_input_embeddings().weight.detach())
    assert any(k.startswith("audio_tower.connector.") for k in keys)


def test_exported_tokenizer_has_one_audio_token_and_desta_prompt(exported, tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(exported)
    assert len(tok("<|AUDIO|>", add_special_tokens=False).input_ids) == 1
    assert len(tiny.tokenizer("<|AUDIO|>", add_special_tokens=False).input_ids) > 1  # why it is added
    msgs = [{"role": "user", "content": "<start_audio><|AUDIO|><end_audio>\n" + QUESTION}]
    rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    desta_msgs = [
        {"role": "user", "content": "<|AUDIO|>\n" + QUESTION, "audios": [{"audio": np.zeros(1600)}]}
    ]
    assert rendered == tiny.processor.render(desta_msgs)
    with_system = [{"role": "system", "content": "Be brief."}] + msgs
    assert "Be brief." in tok.apply_chat_template(with_system, tokenize=False)
    assert tiny.config.system_prompt not in tok.apply_chat_template(with_system, tokenize=False)


def test_system_prompt_template_quotes_the_prompt():
    template = system_prompt_template("{{ messages[0]['content'] }}", 'say "hi" {{ x }}')
    from jinja2 import Template

    assert Template(template).render(messages=[{"role": "user", "content": "q"}]) == 'say "hi" {{ x }}'


def test_export_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(DeSTAError, match="not empty"):
        export_vllm(None, tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "x"
    with pytest.raises(DeSTAError, match="dtype"):
        ExportOptions(dtype="int8")


def test_export_cli_rejects_extra_paths(capsys):
    import argparse

    from desta.serve.vllm_cli import register, run_export

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["export-vllm", "a", "b", "c"])
    with pytest.raises(DeSTAError, match="at most MODEL and OUT"):
        run_export(args)


# ------------------------------------------------------------------------------------------- engine
def _wav_b64(wave: np.ndarray) -> str:
    buf = io.BytesIO()
    sf.write(buf, wave, 16000, format="WAV", subtype="FLOAT")
    return base64.b64encode(buf.getvalue()).decode()


def _clip(name: str) -> np.ndarray:
    from desta.audio import load_audio

    return load_audio(LIBRIVOX / name)


def _long_clip() -> np.ndarray:
    """> 30 s of speech: every LibriVox clip, twice (two windows for desta and for vLLM)."""
    waves = [_clip(p.name) for p in sorted(LIBRIVOX.glob("*.wav"))]
    wave = np.concatenate(waves * 2)
    assert wave.size > 30 * 16000
    return wave


def _vllm_chat(wave: np.ndarray, question: str = QUESTION) -> list[dict]:
    part = {"type": "input_audio", "input_audio": {"data": _wav_b64(wave), "format": "wav"}}
    return [{"role": "user", "content": [part, {"type": "text", "text": question}]}]


def _desta_chat(wave: np.ndarray, question: str = QUESTION, text: str | None = None) -> list[dict]:
    return [{"role": "user", "content": "<|AUDIO|>\n" + question, "audios": [{"audio": wave, "text": text}]}]


@pytest.fixture(scope="module")
def engine(exported):
    vllm = pytest.importorskip("vllm", reason=NO_VLLM)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    llm = vllm.LLM(
        model=str(exported), dtype="float32", max_model_len=4096, enforce_eager=True, seed=0,
        limit_mm_per_prompt={"audio": 2}, enable_chunked_prefill=False,  # see cpu_safe_engine_kwargs
    )  # fmt: skip
    yield llm
    llm.llm_engine.engine_core.shutdown()


def _greedy(n: int = MAX_TOKENS):
    from vllm import SamplingParams

    return SamplingParams(max_tokens=n, temperature=0.0, logprobs=0)


def _desta_logprobs(model, conv, token_ids: list[int]) -> tuple[list[int], list[float]]:
    """desta's prompt ids and the log-probability of each generated token (teacher forcing)."""
    prepared = model.prepare([conv])
    embeds = model.generator.embeds(prepared)
    ids = torch.tensor(token_ids)
    full = torch.cat([embeds, model.llm_model.get_input_embeddings()(ids)[None]], dim=1)
    with torch.no_grad():
        logits = model.llm_model(inputs_embeds=full).logits[0, embeds.shape[1] - 1 : -1].float()
    lp = torch.log_softmax(logits, -1)[torch.arange(len(token_ids)), ids]
    return prepared.inputs["input_ids"][0].tolist(), lp.tolist()


def _check_equal(model, out, conv) -> None:
    expected = model.generate([conv], max_new_tokens=MAX_TOKENS)[0]
    got = out.outputs[0]
    ids = list(got.token_ids)
    if got.finish_reason == "stop" and ids and ids[-1] in model.generator.eos_ids():
        ids = ids[:-1]  # vLLM reports the end-of-turn token; desta's result leaves it out
    assert ids == expected.token_ids, (got.text, expected.text)
    assert got.text.strip() == expected.text
    prompt_ids, desta_lp = _desta_logprobs(model, conv, list(got.token_ids))
    assert list(out.prompt_token_ids) == prompt_ids  # same layout: text, slots, transcripts
    vllm_lp = [step[t].logprob for step, t in zip(got.logprobs, got.token_ids)]
    worst = max(abs(a - b) for a, b in zip(vllm_lp, desta_lp))
    print(f"{len(ids)} tokens equal, max |log-prob difference| {worst:.2e}")  # shown with -rP
    assert worst < LOGPROB_TOL


def test_plugin_is_registered(engine):
    from vllm import ModelRegistry

    plugins = {e.name: e.value for e in importlib.metadata.entry_points(group="vllm.general_plugins")}
    assert plugins.get("desta") == "desta.serve.vllm_plugin:register"
    assert vllm_plugin.ARCHITECTURE in ModelRegistry.get_supported_archs()
    assert engine.llm_engine.model_config.architecture == vllm_plugin.ARCHITECTURE


@pytest.mark.parametrize("name", CLIPS)
def test_greedy_equals_desta_generate(engine, tiny, name):
    _need_clips()
    wave = _clip(name)
    out = engine.chat(_vllm_chat(wave), _greedy(), use_tqdm=False)[0]
    _check_equal(tiny, out, _desta_chat(wave))


def test_batch_equals_single_requests(engine, tiny):
    _need_clips()
    waves = [_clip(c) for c in CLIPS]
    questions = [QUESTION, "Is the speaker a man or a woman?"]
    outs = engine.chat([_vllm_chat(w, q) for w, q in zip(waves, questions)], _greedy(), use_tqdm=False)
    for out, w, q in zip(outs, waves, questions):
        _check_equal(tiny, out, _desta_chat(w, q))


def test_long_audio_uses_one_window_per_30s(engine, tiny):
    _need_clips()
    wave = _long_clip()
    out = engine.chat(_vllm_chat(wave), _greedy(), use_tqdm=False)[0]
    placeholder = tiny.processor.placeholder_id
    assert list(out.prompt_token_ids).count(placeholder) == n_embedding_slots(2, tiny.config.prompt_size)
    _check_equal(tiny, out, _desta_chat(wave))


def test_given_transcript_skips_asr(engine, tiny):
    _need_clips()
    wave = _clip(CLIPS[0])
    text = "The weather is lovely today."
    out = engine.chat(
        _vllm_chat(wave), _greedy(), use_tqdm=False, mm_processor_kwargs={"transcripts": [text]}
    )[0]
    assert tiny.tokenizer.decode(out.prompt_token_ids).count(text) == 1
    _check_equal(tiny, out, _desta_chat(wave, text=text))


def test_vllm_engine_answers_like_desta(engine, tiny):
    """The registry's vllm engine (desta.infer.vllm_engine) over the same LLM: desta conversations in,
    desta's greedy answers out, given transcripts included."""
    from desta.infer.engine import Engine
    from desta.infer.vllm_engine import VLLMEngine
    from desta.model.options import GenerationOptions

    _need_clips()
    runner = VLLMEngine(llm=engine)
    assert isinstance(runner, Engine)
    wave = _clip(CLIPS[0])
    text = "The weather is lovely today."
    convs = [_desta_chat(wave), _desta_chat(wave, text=text), _desta_chat(_clip(CLIPS[1]), "Is the speaker a man or a woman?")]
    greedy = GenerationOptions(max_new_tokens=MAX_TOKENS)
    got = runner.generate(convs, greedy)
    want = tiny.generate(convs, greedy)
    assert [r.text for r in got] == [r.text for r in want]
    assert [r.prompt_tokens for r in got] == [r.prompt_tokens for r in want]


# ------------------------------------------------------------------------------------------- data
def test_data_generation_through_vllm_is_exactly_once(engine, exported, tmp_path):
    from desta.data.backends import VLLMBackend
    from desta.data.filters import FilterConfig
    from desta.data.generate import SamplingParams
    from desta.data.pipeline import REJECTS, GenerateConfig, run_generation, shard_paths
    from desta.data.records import AudioRecord, read_jsonl

    records = [
        AudioRecord(
            id=f"r{i}", audio=f"a/r{i}.wav", corpus="Toy", duration=2.0, transcript=f"sentence number {i}"
        )
        for i in range(6)
    ]
    cfg = GenerateConfig(  # truncated answers are trimmed, not dropped: every request yields a row
        num_per_record=2,
        batch_size=4,
        shard_size=5,
        progress=False,
        sampling=SamplingParams(max_new_tokens=48),
        filters=FilterConfig(drop_truncated=False, trim_truncated=True),
    )
    backend = VLLMBackend(model_id=str(exported), engine=engine)

    def describe(rec):
        return f"[00:00-00:02] {rec.transcript}"

    out = tmp_path / "out"
    first = run_generation(records[:3], out, backend, cfg, describe=describe)  # a run cut short
    assert first.attempted == 6 and first.written >= 1 and first.errors == 0
    second = run_generation(records, out, backend, cfg, describe=describe)
    assert (second.skipped, second.attempted) == (6, 6)
    rows = [row for p in shard_paths(out) for row in read_jsonl(p)]
    rejects = list(read_jsonl(out / REJECTS)) if (out / REJECTS).exists() else []
    keys = [r["meta"]["key"] for r in rows] + [r["key"] for r in rejects]  # a grounding check may reject
    assert sorted(keys) == sorted(f"Toy/r{i}#{k}" for i in range(6) for k in range(2))  # each once
    assert all(r["response"].strip() for r in rows)
    third = run_generation(records, out, backend, cfg, describe=describe)
    assert (third.attempted, third.skipped, third.backend_calls) == (0, 12, 0)
    backend.close()
    assert backend.llm is None and engine.llm_engine is not None  # a shared engine is not shut down


def test_bad_audio_is_a_clear_request_error(engine):
    from desta.errors import AudioError

    with pytest.raises(
        ValueError, match="NaN"
    ):  # desta's AudioError is a ValueError: vLLM's server answers 400
        engine.chat(_vllm_chat(np.full(16000, np.nan, np.float32)), _greedy(4), use_tqdm=False)
    assert issubclass(AudioError, ValueError)
    out = engine.chat(_vllm_chat(np.zeros(16000, np.float32)), _greedy(4), use_tqdm=False)[0]
    assert out.outputs[0].token_ids  # the engine still answers after a rejected request


def _docs_block(doc: str, first_line: str) -> str:
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / doc).read_text()
    for m in re.finditer(r"```(?:bash|python)\n(.*?)```", text, re.S):
        if m.group(1).startswith(first_line):
            return m.group(1)
    raise AssertionError(f"docs/{doc} has no block starting with {first_line!r}")


def test_vllm_serve_answers_the_documented_openai_client(exported, tiny, tmp_path):
    """The docs' path for real: `vllm serve` on the exported desta-tiny (the documented flags), then
    docs/serving.md's openai-client example; the answer is desta's own greedy answer."""
    import shlex
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("vllm", reason=NO_VLLM)
    from desta.model.load import example_clip

    serve = _docs_block("serving.md", "bash scripts/setup-vllm.sh")
    line = serve.split("vllm serve ", 1)[1].replace("\\\n", " ").split("\n")[0]
    args = shlex.split(line)
    assert args[0] == "desta-tiny-vllm"
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    vllm_bin = Path(sys.executable).parent / "vllm"
    cmd = [str(vllm_bin), "serve", str(exported), *args[1:], "--port", str(port)]
    log = open(tmp_path / "vllm-serve.log", "w")  # noqa: SIM115 (closed below)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 900
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError((tmp_path / "vllm-serve.log").read_text()[-3000:]) from None
                time.sleep(2)
        example = _docs_block("serving.md", "import base64").replace(
            "http://127.0.0.1:8000", f"http://127.0.0.1:{port}"
        )
        done = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        clip = example_clip()
        conv = [
            {"role": "user", "content": "<|AUDIO|>\nWhat is said in the audio?", "audios": [{"audio": clip}]}
        ]
        want = tiny.generate([conv], max_new_tokens=128)[0].text
        assert done.stdout.startswith(want + " "), (done.stdout[:300], want)  # answer, then its usage
        _generate_through_served_vllm(port, args[args.index("--served-model-name") + 1], tmp_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _generate_through_served_vllm(port: int, served: str, tmp_path: Path) -> None:
    """docs/data.md's second path: `desta data generate --backend openai` against a running `vllm serve`
    (here the served desta-tiny answering text-only requests), resumable like the in-process engine."""
    import json
    import subprocess
    import sys

    from desta.data.pipeline import shard_paths
    from desta.data.records import AudioRecord, read_jsonl, write_records

    records = tmp_path / "records.jsonl"
    write_records(records, [
        AudioRecord(id=f"t{i}", audio=f"a/t{i}.wav", corpus="Toy", duration=2.0, transcript=f"the number {i}")
        for i in range(3)
    ])  # fmt: skip
    out = tmp_path / "gen-openai"
    cmd = [sys.executable, "-m", "desta", "data", "generate", str(records), "-o", str(out), "--quiet",
           "--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", served,
           "--max-new-tokens", "32", "--trim-truncated"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert summary["errors"] == 0 and summary["written"] >= 1 and summary["backend_calls"] >= 3, summary
    rows = [r for p in shard_paths(out) for r in read_jsonl(p)]
    assert rows and all(r["response"].strip() for r in rows)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    resumed = json.loads(again.stdout[: again.stdout.rindex("}") + 1])
    assert (
        again.returncode == 0 and resumed["backend_calls"] == 0 and resumed["skipped"] == summary["requests"]
    )
