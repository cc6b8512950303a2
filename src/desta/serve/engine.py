"""The dynamic batcher in front of the server's engine.

The server runs a :class:`desta.infer.engine.Engine` (the one engine protocol: ``desta.load_model()``
wrapped in ``LocalEngine``, an endpoint, or ``desta.serve.fake.FakeEngine`` in tests).
``DynamicBatcher`` owns a bounded asyncio queue and one worker thread: requests that arrive within
``window`` of each other (up to ``max_batch``) go to the engine in one ``generate`` call. While requests
that were admitted are still being parsed and decoded (``incoming``), the batcher waits for them up to
``max_wait``, so that clients that resubmit together are served together. Streamed requests run one at a
time on the same thread, so the engine is never called concurrently. A full queue raises
:class:`QueueFullError` (429) instead of growing memory.

Cancellation: a job whose client left (or timed out) is skipped if it has not started; a running
``generate`` call gets a ``cancel`` event that is set once every job of that call is cancelled, and a
running stream gets its job's event (``cancel`` is part of the protocol). The worker also stops pulling
a stream's pieces once its client is gone, whether or not the engine looks at the event.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from desta.infer.engine import Engine
from desta.serve.errors import QueueFullError

__all__ = ["DynamicBatcher", "Engine", "StreamEnd"]


@dataclass(frozen=True)
class StreamEnd:
    """Last item of a stream: how it ended and, when the engine reports them, token counts."""

    finish_reason: str
    completion_pieces: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Call:
    """The jobs of one running ``generate`` call and the event that stops it once all are cancelled."""

    def __init__(self, jobs: list[_Job]) -> None:
        self.jobs = jobs
        self.cancel = threading.Event()
        for job in jobs:
            job.call = self
        self.check()

    def check(self) -> None:
        if all(job.cancelled.is_set() for job in self.jobs):
            self.cancel.set()


@dataclass
class _Job:
    conversation: list[dict]
    options: Any
    future: asyncio.Future
    stream: asyncio.Queue | None = None  # streamed jobs push pieces here
    cancelled: threading.Event = field(default_factory=threading.Event)
    call: _Call | None = None  # set while the job's generate call runs

    def cancel(self) -> None:
        """The client is gone: skip the job, or stop its call once no job of the call is wanted."""
        self.cancelled.set()
        if self.call is not None:
            self.call.check()


_STREAM_DONE = object()


class DynamicBatcher:
    """Bounded queue + batching worker in front of an :class:`Engine`.

    Args:
        engine: the model.
        max_batch: most conversations per ``generate`` call.
        window_s: after the first request of a batch, wait at least this long for more.
        max_wait_s: while ``incoming > 0``, keep waiting up to this long for those requests.
        max_queue: most requests waiting; one more raises :class:`QueueFullError`.

    The caller increments ``incoming`` when it accepts a request and decrements it just before
    calling :meth:`generate` / :meth:`stream` (or when the request fails before that).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 8,
        window_s: float = 0.005,
        max_wait_s: float = 0.05,
        max_queue: int = 256,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.window_s = window_s
        self.max_wait_s = max(max_wait_s, window_s)
        self.max_queue = max_queue
        self.incoming = 0
        self._last_batch = 1
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.batches_run = 0
        self.largest_batch = 0
        self.skipped_jobs = 0  # cancelled before they started
        self.cancelled_calls = 0  # engine calls that were told to stop

    # lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._worker is not None:
            return
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="desta-engine"
        )
        self._worker = asyncio.create_task(self._run(), name="desta-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                job.cancel()
                if not job.future.done():
                    job.future.set_exception(RuntimeError("server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    # submitting ------------------------------------------------------------------------------------
    def _enqueue(self, job: _Job) -> None:
        if self._queue is None:
            raise RuntimeError("DynamicBatcher.start() was not called")
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFullError(self.max_queue) from None

    async def generate(self, conversation: list[dict], options: Any, timeout: float | None = None) -> Any:
        """Queue one conversation; returns its ``GenerationResult`` once its batch has run."""
        job = _Job(conversation, options, asyncio.get_running_loop().create_future())
        self._enqueue(job)
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout)
        except BaseException:
            job.cancel()  # skipped if not started yet, stopped if its whole call is abandoned
            job.future.cancel()  # a late result is dropped
            raise

    async def stream(
        self, conversation: list[dict], options: Any, timeout: float | None = None
    ) -> AsyncIterator[Any]:
        """Queue one streamed conversation; yields ``str`` pieces, then one :class:`StreamEnd`.

        Queue-full is raised here, before the first item, so the caller can still answer 429.
        """
        loop = asyncio.get_running_loop()
        job = _Job(conversation, options, loop.create_future(), stream=asyncio.Queue())
        self._enqueue(job)
        return self._stream_items(job, timeout)

    async def _stream_items(self, job: _Job, timeout: float | None) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while True:
                remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
                item = await asyncio.wait_for(job.stream.get(), remaining)
                if item is _STREAM_DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            job.cancel()  # the worker stops pulling pieces (client gone, timeout or done)

    # worker ----------------------------------------------------------------------------------------
    async def _run(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        pending: _Job | None = None
        while True:
            job = pending or await queue.get()
            pending = None
            if job.cancelled.is_set():
                self.skipped_jobs += 1
                continue
            if job.stream is not None:
                await loop.run_in_executor(self._executor, self._run_stream, job, loop)
                continue
            batch = [job]
            start = loop.time()
            while len(batch) < self.max_batch:
                try:
                    nxt = queue.get_nowait()
                except asyncio.QueueEmpty:
                    # wait longer while requests are still being decoded, or while the batch is smaller
                    # than the previous one (closed-loop clients resubmit together, a little apart)
                    expecting = self.incoming > 0 or len(batch) < self._last_batch
                    remaining = start + (self.max_wait_s if expecting else self.window_s) - loop.time()
                    if remaining <= 0:
                        break
                    try:  # short slices while expecting, so a request that fails early ends the wait
                        nxt = await asyncio.wait_for(
                            queue.get(), min(remaining, 0.002) if expecting else remaining
                        )
                    except asyncio.TimeoutError:
                        continue
                if nxt.cancelled.is_set():
                    self.skipped_jobs += 1
                    continue
                if nxt.stream is not None:
                    pending = nxt
                    break
                batch.append(nxt)
            self._last_batch = len(batch)
            await self._run_batch(batch, loop)

    async def _run_batch(self, batch: list[_Job], loop: asyncio.AbstractEventLoop) -> None:
        groups: dict[Any, list[_Job]] = {}
        for job in batch:  # one generate call per distinct options value
            groups.setdefault(job.options, []).append(job)
        for options, jobs in groups.items():
            wanted = [j for j in jobs if not j.cancelled.is_set()]
            self.skipped_jobs += len(jobs) - len(wanted)
            jobs = wanted
            if not jobs:
                continue
            self.batches_run += 1
            self.largest_batch = max(self.largest_batch, len(jobs))
            call = _Call(jobs)
            try:
                results = await loop.run_in_executor(
                    self._executor, self._generate, [j.conversation for j in jobs], options, call.cancel
                )
                if call.cancel.is_set():  # every client left: whatever came back is for no one
                    self.cancelled_calls += 1
                    continue
                if len(results) != len(jobs):
                    raise RuntimeError(
                        f"engine returned {len(results)} results for {len(jobs)} conversations"
                    )
            except Exception as err:  # noqa: BLE001 - isolate the failing request(s)
                if len(jobs) == 1:
                    _settle(jobs[0].future, exc=err)
                    continue
                for job in jobs:  # retry one by one so one bad conversation fails only itself
                    if job.cancelled.is_set():
                        continue
                    try:
                        (result,) = await loop.run_in_executor(
                            self._executor, self._generate, [job.conversation], options, job.cancelled
                        )
                        _settle(job.future, result=result)
                    except Exception as single_err:  # noqa: BLE001
                        _settle(job.future, exc=single_err)
                continue
            finally:
                for job in jobs:
                    job.call = None
            for job, result in zip(jobs, results):
                _settle(job.future, result=result)

    def _generate(self, conversations: list[list[dict]], options: Any, cancel: threading.Event) -> Any:
        return self.engine.generate(conversations, options, cancel=cancel)

    def _run_stream(self, job: _Job, loop: asyncio.AbstractEventLoop) -> None:
        """Runs on the engine thread; hands pieces to the event loop as they come."""

        def push(item: Any) -> None:
            loop.call_soon_threadsafe(job.stream.put_nowait, item)

        pieces = 0
        try:
            iterator = self.engine.stream(job.conversation, job.options, cancel=job.cancelled)
            result = None
            try:
                while True:
                    if job.cancelled.is_set():
                        self.cancelled_calls += 1
                        break
                    piece = next(iterator)
                    pieces += 1
                    push(piece)
            except StopIteration as stop:
                result = stop.value  # an engine may return its GenerationResult from the generator
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
            push(_stream_end(result, pieces, job.options))
        except Exception as err:  # noqa: BLE001 - reported to the client, server keeps going
            push(err)
        push(_STREAM_DONE)


def _stream_end(result: Any, pieces: int, options: Any) -> StreamEnd:
    if result is not None and hasattr(result, "finish_reason"):
        return StreamEnd(
            finish_reason=result.finish_reason,
            completion_pieces=pieces,
            prompt_tokens=getattr(result, "prompt_tokens", None),
            completion_tokens=getattr(result, "completion_tokens", None),
        )
    limit = getattr(options, "max_new_tokens", None)
    reason = "length" if limit is not None and pieces >= limit else "stop"
    return StreamEnd(finish_reason=reason, completion_pieces=pieces)


def _settle(future: asyncio.Future, *, result: Any = None, exc: BaseException | None = None) -> None:
    loop = future.get_loop()

    def apply() -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    loop.call_soon_threadsafe(apply) if not _on_loop(loop) else apply()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
