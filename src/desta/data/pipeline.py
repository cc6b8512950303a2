"""Sharded, resumable self-generation run: records -> requests -> cache/backend -> filters -> shards.

Output directory layout (:mod:`desta.data.outdir`)::

    out/.lock                   held by the running generation (a second run is refused or waits)
    out/shard-00000.jsonl ...   kept training rows (``Sample`` dicts, official layout + ``meta``)
    out/rejects.jsonl           dropped requests: {key, id, dataset, stage, reason, retryable, response}
    out/cache.sqlite            response cache (hash of model + messages + sampling params)
    out/run.json                the settings of the last run

Exactly-once under kill -9 at any moment: rows are appended (one ``write`` per batch, then ``fsync``)
and the set of finished request keys is *read back from the shards and the rejects file* at start-up;
there is no separate index that could disagree with them. A line torn by a kill mid-write is cut off
before appending again. A request is finished when its row is in a shard or it has a permanent reject;
transient failures that exhausted their retries are tried again by the next run. Responses go to the
cache before the rows are written, so the work lost to a kill is at most re-reading a cached batch.

An endpoint-wide failure (wrong key, wrong URL, unknown model, unreachable server) stops the run with
:class:`~desta.data.summary.GenerationAborted` before anything of the failing batch is stored, so it
never turns into rejects; :meth:`RunSummary.conclude` gives the exit status.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from desta.data.backends import BackendResult, RetryPolicy, TextBackend, generate_with_retries
from desta.data.cache import ResponseCache
from desta.data.filters import FilterConfig, screen_response
from desta.data.generate import (
    InstructionSampler,
    PromptFormat,
    Request,
    SamplingParams,
    build_request,
    cache_key,
    default_describe,
    default_pool,
    derive_seed,
    request_key,
    to_sample,
    with_temperature,
)
from desta.data.outdir import (  # noqa: F401  (SHARD_PATTERN, REJECTS: part of this module's API)
    CACHE,
    REJECTS,
    SHARD_PATTERN,
    OutputLock,
    OutputLockedError,
    ShardWriter,
    finished_keys,
    shard_paths,
)
from desta.data.records import AudioRecord
from desta.data.summary import GenerationAborted, RunSummary
from desta.endpoints import EndpointUnavailableError
from desta.errors import DeSTAError
from desta.model.options import GenerationOptions


@dataclass(frozen=True)
class GenerateConfig:
    """Settings of a self-generation run."""

    num_per_record: int = 1  # requests (different instructions) per record
    seed: int = 0  # run seed; every request's instruction and sampling seed derive from it and its key
    batch_size: int = 64  # requests per backend call
    shard_size: int = 10_000  # rows per output shard
    sampling: GenerationOptions = SamplingParams()  # data generation's defaults (temperature 0.7, top_p 0.9)
    retry: RetryPolicy = RetryPolicy()
    filters: FilterConfig = FilterConfig()
    resample: int = 0  # extra tries, each with a new seed, for an answer a filter or grounding check rejects
    resample_temperature: float | None = None  # temperature of those tries (None: sampling's)
    category_weights: tuple[tuple[str, float], ...] = ()  # instruction task mix (InstructionPool.weighted)
    prompt: PromptFormat = PromptFormat()
    enrich: bool = False  # measure missing attributes from the audio (desta.data.attributes.enrich)
    use_cache: bool = True
    progress: bool = True
    wait: bool = False  # another run holds the output folder: wait for it (else OutputLockedError)


# ------------------------------------------------------------------------------------- processing


@dataclass
class BatchOutcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    cache_hits: int = 0
    backend_calls: int = 0


def reject_row(
    req_key: str,
    record: AudioRecord | None,
    stage: str,
    reason: str,
    *,
    retryable: bool = False,
    response: str = "",
) -> dict[str, Any]:
    return {
        "key": req_key,
        "id": record.id if record else "",
        "dataset": record.corpus if record else "",
        "stage": stage,
        "reason": reason,
        "retryable": retryable,
        "response": response,
    }


def reason_class(reason: str) -> str:
    """A short class for counting: ``"HTTP 400: ..."`` -> ``"HTTP 400"``, ``"filter:leak"`` stays."""
    if reason.startswith("filter:"):
        return reason
    head = reason.split(":", 1)[0].strip()
    return head if head != reason else reason[:60]


def attempt_seed(request_seed: int, question: int, attempt: int) -> int:
    """Sampling seed of one try: the request's own seed for the first try of its first question (so a
    plain request is the same as without resampling), a derived one for every other."""
    if question == 0 and attempt == 0:
        return request_seed
    return derive_seed(request_seed, f"question {question} attempt {attempt}")


def _answer(
    messages: list[list[dict[str, str]]],
    params: list[GenerationOptions],
    backend: TextBackend,
    config: GenerateConfig,
    cache: ResponseCache | None,
    outcome: BatchOutcome,
    sleep: Callable[[float], None],
) -> list[BackendResult]:
    """Cached responses first, then one batched backend call (with retries) for the rest."""
    keys = [cache_key(backend.model_id, m, p) for m, p in zip(messages, params)]
    cached = cache.get_many(keys) if cache is not None else {}
    outcome.cache_hits += sum(k in cached for k in keys)
    results: list[BackendResult | None] = [cached.get(k) for k in keys]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        got, attempts = generate_with_retries(
            backend, [messages[i] for i in todo], [params[i] for i in todo], config.retry, sleep=sleep,
            seed=params[todo[0]].seed or 0,
        )  # fmt: skip
        outcome.backend_calls += sum(attempts)
        for i, r in zip(todo, got):
            results[i] = r
        if cache is not None:
            cache.put_many({keys[i]: r for i, r in zip(todo, got) if r.ok})
    return results  # type: ignore[return-value]


def process_requests(
    requests: list[Request],
    backend: TextBackend,
    config: GenerateConfig,
    cache: ResponseCache | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchOutcome:
    """Answer a batch of requests (cache first, then the backend with retries) and filter the answers.

    Each question of a request (one, or a compound request's parts) is answered on its own; an answer
    that a filter or the grounding check rejects is sampled again with a new seed up to
    ``config.resample`` times. A request becomes a row when every question has a kept answer (joined
    in order), else a reject with the first question's last failure.
    """
    outcome = BatchOutcome()
    questions = [r.questions() for r in requests]
    kept: dict[tuple[int, int], str] = {}
    failed: dict[tuple[int, int], dict[str, Any]] = {}
    tries: Counter = Counter()
    truncated: set[int] = set()
    pending = [(ri, qi) for ri, qs in enumerate(questions) for qi in range(len(qs))]
    for attempt in range(1 + config.resample):
        if not pending:
            break
        sampling = config.sampling
        if attempt and config.resample_temperature is not None:
            sampling = with_temperature(sampling, config.resample_temperature)
        params = [replace(sampling, seed=attempt_seed(requests[ri].seed, qi, attempt)) for ri, qi in pending]
        results = _answer(
            [questions[ri][qi][2] for ri, qi in pending], params, backend, config, cache, outcome, sleep
        )
        retry = []
        for (ri, qi), res in zip(pending, results):
            req = requests[ri]
            tries[ri] += 1
            if not res.ok:  # backend errors were retried already; transient ones come back next run
                failed[ri, qi] = reject_row(
                    req.key, req.record, "backend", res.error or "error", retryable=res.retryable
                )
                continue
            text, why = screen_response(
                res.text, res.finish_reason, config.filters, record=req.record, requires=questions[ri][qi][1],
                instruction=questions[ri][qi][0],
            )  # fmt: skip
            if why is None:
                kept[ri, qi] = text
                if res.finish_reason == "length":
                    truncated.add(ri)
                failed.pop((ri, qi), None)
            else:
                failed[ri, qi] = reject_row(req.key, req.record, "filter", f"filter:{why}", response=res.text)
                retry.append((ri, qi))
        pending = retry
    for ri, req in enumerate(requests):
        miss = [qi for qi in range(len(questions[ri])) if (ri, qi) not in kept]
        if miss:
            outcome.rejects.append(failed[ri, miss[0]])
            continue
        text = " ".join(kept[ri, qi].strip() for qi in range(len(questions[ri])))
        finish = "length" if ri in truncated else "stop"
        outcome.rows.append(
            to_sample(req, text, model=backend.model_id, finish_reason=finish, attempts=tries[ri]).to_dict()
        )
    return outcome


def iter_requests(
    records: Iterable[AudioRecord],
    config: GenerateConfig,
    done: set[str],
    summary: RunSummary,
    rejects: list[dict[str, Any]],
    *,
    pool: InstructionSampler,
    describe: Callable[[AudioRecord], str],
) -> Iterator[Request]:
    """Requests not finished yet; a record that cannot be described becomes a reject, not a crash."""
    enrich = None
    if config.enrich:
        from desta.data.attributes import enrich
    for record in records:
        keys = [request_key(record, k) for k in range(config.num_per_record)]
        summary.requests += len(keys)
        todo = [k for k, key in enumerate(keys) if key not in done]
        summary.skipped += len(keys) - len(todo)
        if not todo:
            continue
        try:
            rec = enrich(record) if enrich is not None else record
            for k in todo:
                yield build_request(rec, k, seed=config.seed, pool=pool, describe=describe, fmt=config.prompt)
        except Exception as err:  # bad metadata or audio must not stop a run of millions
            for k in todo:
                rejects.append(
                    reject_row(keys[k], record, "request", f"request: {type(err).__name__}: {err}")
                )


def _batched(it: Iterator[Request], n: int) -> Iterator[list[Request]]:
    batch: list[Request] = []
    for x in it:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def task_mix(pool: InstructionSampler, config: GenerateConfig) -> InstructionSampler:
    """``pool`` with ``config.category_weights`` applied (unchanged without weights)."""
    if not config.category_weights:
        return pool
    if not hasattr(pool, "weighted"):
        raise DeSTAError(f"category_weights need an InstructionPool, got {type(pool).__name__}")
    return pool.weighted(dict(config.category_weights))


def write_run_info(out: Path, backend: TextBackend, config: GenerateConfig) -> None:
    info = {"backend": backend.name, "model": backend.model_id, "config": asdict(config)}
    tmp = out / "run.json.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, out / "run.json")


def run_generation(
    records: Iterable[AudioRecord],
    out_dir: str | os.PathLike,
    backend: TextBackend,
    config: GenerateConfig = GenerateConfig(),
    *,
    pool: InstructionSampler | None = None,
    describe: Callable[[AudioRecord], str] | None = None,
    total_records: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """Generate responses for every (record, k) not finished in ``out_dir``; safe to kill and rerun.

    Holds ``out_dir``'s lock for the whole run (:class:`OutputLockedError` if another run has it and
    ``config.wait`` is false). Raises :class:`GenerationAborted` (with the summary so far) when the
    backend's endpoint is unusable; rows finished before that are kept.
    """
    t0 = time.perf_counter()
    pool = task_mix(pool if pool is not None else default_pool(), config)
    describe = describe if describe is not None else default_describe()
    out = Path(out_dir)
    summary = RunSummary()
    with OutputLock(out, wait=config.wait, on_wait=lambda pid: _say_waiting(out, pid)):
        try:
            _run_locked(records, out, backend, config, summary, pool, describe, total_records, sleep)
        except EndpointUnavailableError as err:
            summary.aborted = str(err)
            summary.seconds = time.perf_counter() - t0
            raise GenerationAborted(f"generation into {out} aborted: {err}", summary) from err
    summary.seconds = time.perf_counter() - t0
    return summary


def _say_waiting(out: Path, pid: int | None) -> None:
    import sys

    print(f"waiting for the run holding {out} (pid {pid or 'unknown'}) to finish", file=sys.stderr)


def _run_locked(
    records: Iterable[AudioRecord],
    out: Path,
    backend: TextBackend,
    config: GenerateConfig,
    summary: RunSummary,
    pool: InstructionSampler,
    describe: Callable[[AudioRecord], str],
    total_records: int | None,
    sleep: Callable[[float], None],
) -> None:
    from tqdm.auto import tqdm

    writer = ShardWriter(out, config.shard_size)
    done = finished_keys(out)
    write_run_info(out, backend, config)
    cache = ResponseCache(out / CACHE) if config.use_cache else None
    pending_rejects: list[dict[str, Any]] = []
    total = total_records * config.num_per_record if total_records is not None else None
    bar = tqdm(total=total, unit="req", disable=not config.progress, dynamic_ncols=True, smoothing=0.05)
    checked = False
    try:
        reqs = iter_requests(records, config, done, summary, pending_rejects, pool=pool, describe=describe)
        seen = 0
        for batch in _batched(reqs, config.batch_size):
            if not checked and hasattr(backend, "check"):
                backend.check()  # an unusable endpoint stops the run here, before any work
            checked = True
            outcome = process_requests(batch, backend, config, cache, sleep=sleep)
            writer.write(outcome.rows)
            writer.write_rejects(pending_rejects + outcome.rejects)
            summary.count_rejects(pending_rejects + outcome.rejects, reason_class)
            pending_rejects.clear()
            summary.written += len(outcome.rows)
            summary.cache_hits += outcome.cache_hits
            summary.backend_calls += outcome.backend_calls
            bar.update(summary.requests - seen)
            seen = summary.requests
            bar.set_postfix(
                kept=summary.written, rejected=sum(summary.rejected.values()), cached=summary.cache_hits
            )
        writer.write_rejects(pending_rejects)
        summary.count_rejects(pending_rejects, reason_class)
        bar.update(summary.requests - seen)
    finally:
        bar.close()
        if cache is not None:
            cache.close()
