"""Self-generation on a Ray cluster: one LLM replica per GPU, the same output as :mod:`desta.data.pipeline`.

The driver reads the records, skips the requests already finished in ``out_dir`` (same exactly-once
rules as the local pipeline), and hands ``(record, k)`` items to a Ray Data ``map_batches`` stage
run by a pool of ``replicas`` actors; each actor builds its backend once (from a picklable
:class:`~desta.data.backends.BackendSpec`, e.g. ``vllm`` or ``transformers`` with ``num_gpus=1``) and
answers whole batches through the shared response cache. The driver alone writes the shards and the
rejects file, so killing the job at any moment and running it again loses and duplicates nothing.

Needs ``pip install "ray[data]"``; imported lazily so that ``desta.data`` works without Ray.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desta.data.backends import BackendSpec
from desta.data.cache import ResponseCache
from desta.data.generate import InstructionSampler, build_request, default_describe, default_pool, request_key
from desta.data.outdir import CACHE, OutputLock, ShardWriter, finished_keys
from desta.data.pipeline import (
    GenerateConfig,
    process_requests,
    reason_class,
    reject_row,
    task_mix,
    write_run_info,
)
from desta.data.records import AudioRecord
from desta.data.summary import GenerationAborted, RunSummary
from desta.endpoints import EndpointUnavailableError
from desta.errors import DeSTAError


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run."""

    replicas: int = 1  # LLM replicas = Ray actors; one per GPU for a GPU backend
    num_gpus: float = 0.0  # GPUs per replica (1 for one vLLM/transformers replica per GPU)
    num_cpus: float = 1.0  # CPUs per replica
    address: str | None = None  # ray.init address; None starts (or joins) a local instance
    ray_init_kwargs: tuple[tuple[str, Any], ...] = ()  # extra ray.init keyword arguments


class GenerateActor:
    """A Ray Data callable class: ``{"record": json, "k": int}`` batches -> ``{"row": json, "is_row": bool}``."""

    def __init__(
        self,
        spec: BackendSpec,
        config: GenerateConfig,
        out_dir: str,
        pool_factory: Callable[[], InstructionSampler] | None = None,
        describe: Callable[[AudioRecord], str] | None = None,
    ) -> None:
        self.backend = spec.build()
        self.config = config
        self.cache = ResponseCache(Path(out_dir) / CACHE) if config.use_cache else None
        self.pool = task_mix(pool_factory() if pool_factory is not None else default_pool(), config)
        self.describe = describe if describe is not None else default_describe()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        out: list[str] = []
        is_row: list[bool] = []
        requests = []
        for rec_json, k in zip(batch["record"], batch["k"]):
            record = AudioRecord.from_dict(json.loads(rec_json))
            try:
                requests.append(
                    build_request(
                        record,
                        int(k),
                        seed=self.config.seed,
                        pool=self.pool,
                        describe=self.describe,
                        fmt=self.config.prompt,
                    )
                )
            except Exception as err:  # a bad record is a reject, never a failed job
                out.append(
                    json.dumps(
                        reject_row(
                            request_key(record, int(k)),
                            record,
                            "request",
                            f"request: {type(err).__name__}: {err}",
                        )
                    )
                )
                is_row.append(False)
        if requests:
            outcome = process_requests(requests, self.backend, self.config, self.cache)
            out += [json.dumps(r, ensure_ascii=False) for r in outcome.rows]
            is_row += [True] * len(outcome.rows)
            out += [json.dumps(r, ensure_ascii=False) for r in outcome.rejects]
            is_row += [False] * len(outcome.rejects)
        return {"row": out, "is_row": is_row}


def run_generation_ray(
    records: Iterable[AudioRecord],
    out_dir: str | os.PathLike,
    spec: BackendSpec,
    config: GenerateConfig = GenerateConfig(),
    options: RayOptions = RayOptions(),
    *,
    pool_factory: Callable[[], InstructionSampler] | None = None,
    describe: Callable[[AudioRecord], str] | None = None,
) -> RunSummary:
    """Like :func:`desta.data.pipeline.run_generation` (same lock, same abort on an unusable endpoint),
    with the LLM calls spread over Ray actors."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise DeSTAError('the ray backend needs Ray Data: pip install "ray[data]"') from None
    t0 = time.perf_counter()
    summary = RunSummary()
    out = Path(out_dir)
    with OutputLock(out, wait=config.wait):
        try:
            _run_locked(records, out, spec, config, options, summary, pool_factory, describe)
        except Exception as err:
            cause = err if isinstance(err, EndpointUnavailableError) else getattr(err, "cause", None)
            if not isinstance(cause, EndpointUnavailableError):
                raise
            summary.aborted = str(cause)
            summary.seconds = time.perf_counter() - t0
            raise GenerationAborted(f"generation into {out} aborted: {cause}", summary) from err
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_locked(
    records: Iterable[AudioRecord],
    out: Path,
    spec: BackendSpec,
    config: GenerateConfig,
    options: RayOptions,
    summary: RunSummary,
    pool_factory: Callable[[], InstructionSampler] | None,
    describe: Callable[[AudioRecord], str] | None,
) -> None:
    import ray
    import ray.data
    from tqdm.auto import tqdm

    writer = ShardWriter(out, config.shard_size)
    done = finished_keys(out)
    items: list[dict[str, Any]] = []
    for record in records:
        rec_json = json.dumps(record.to_dict(), ensure_ascii=False)
        for k in range(config.num_per_record):
            summary.requests += 1
            if request_key(record, k) in done:
                summary.skipped += 1
            else:
                items.append({"record": rec_json, "k": k})
    if not items:
        return
    if spec.name == "openai":  # an unusable endpoint stops the run here, before Ray starts
        probe = spec.build()
        try:
            probe.check()
        finally:
            probe.close()

    class _Info:  # run.json wants a backend-like object
        name, model_id = f"ray/{spec.name}", spec.model

    write_run_info(out, _Info(), config)  # type: ignore[arg-type]
    if not ray.is_initialized():
        ray.init(
            address=options.address,
            include_dashboard=False,
            log_to_driver=False,
            **dict(options.ray_init_kwargs),
        )
    ds = ray.data.from_items(
        items,
        override_num_blocks=max(
            min(options.replicas, len(items)), min(-(-len(items) // config.batch_size), 10_000)
        ),
    )
    ds = ds.map_batches(
        GenerateActor,
        fn_constructor_kwargs={
            "spec": spec,
            "config": config,
            "out_dir": str(out),
            "pool_factory": pool_factory,
            "describe": describe,
        },
        batch_size=config.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=options.replicas),
        num_gpus=options.num_gpus or None,
        num_cpus=options.num_cpus,
    )
    bar = tqdm(total=len(items), unit="req", disable=not config.progress, dynamic_ncols=True)
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            rows = [json.loads(x) for x, ok in zip(batch["row"], batch["is_row"]) if ok]
            rejects = [json.loads(x) for x, ok in zip(batch["row"], batch["is_row"]) if not ok]
            writer.write(rows)
            writer.write_rejects(rejects)
            summary.written += len(rows)
            summary.count_rejects(rejects, reason_class)
            bar.update(len(rows) + len(rejects))
            bar.set_postfix(kept=summary.written, rejected=sum(summary.rejected.values()))
    finally:
        bar.close()
