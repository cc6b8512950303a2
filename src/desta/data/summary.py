"""What a generation run did, and the exit status that says so.

Exit statuses of ``desta data generate`` (:meth:`RunSummary.conclude`):

* 0 -- every request of the input is finished (this run or before), or the failures this run stayed
  within ``max_error_rate``;
* 1 -- nothing could be generated although there was work, or backend failures exceeded
  ``max_error_rate`` of the requests this run attempted;
* 3 -- aborted: the endpoint is unusable (wrong key, wrong URL, unknown model, unreachable); nothing was
  stored as rejected, so a rerun after the fix does the remaining work.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from desta.errors import DeSTAError

EXIT_OK, EXIT_FAILED, EXIT_ABORTED = 0, 1, 3


#: What to change for a reject reason (prefix match, first wins), shown by :meth:`RunSummary.reject_lines`.
REJECT_HINTS: tuple[tuple[str, str], ...] = (
    ("filter:truncated", "hit --max-new-tokens: raise it, or --trim-truncated keeps the full sentences"),
    ("filter:leak", "the answer names the text description or its fields, e.g. 'Source:'; --resample N retries"),
    ("filter:refusal", "the LLM refused; --resample N retries with new seeds"),
    ("filter:empty", "empty answer; --resample N retries"),
    ("filter:too_long", "longer than the filter's max_chars"),
    ("filter:missing_", "the answer leaves out a fact the instruction asks for; --resample N retries"),
    ("filter:wrong_", "the answer contradicts the record's labels; --resample N retries"),
    ("request", "the record could not be described (no duration?); see rejects.jsonl"),
)


@dataclass
class RunSummary:
    requests: int = 0  # all requests of the input, finished before or not
    skipped: int = 0  # already finished by an earlier run
    written: int = 0  # rows kept this run
    rejected: Counter = field(default_factory=Counter)  # reason -> count, this run
    errors: int = 0  # requests the backend failed this run (permanent or not), a subset of rejected
    retry_later: int = 0  # of those, the transient ones: not finished, the next run tries them again
    cache_hits: int = 0
    backend_calls: int = 0  # conversations sent to the backend, retries included
    seconds: float = 0.0
    aborted: str | None = None  # why the run stopped early (an endpoint-wide failure)
    outcome: str = ""  # one sentence for people, set by conclude()

    @property
    def attempted(self) -> int:
        """Requests this run worked on (written or rejected)."""
        return self.written + sum(self.rejected.values())

    def count_rejects(self, rows: list[dict[str, Any]], reason_class: Any) -> None:
        for r in rows:
            self.rejected[reason_class(r["reason"])] += 1
            if r.get("stage") == "backend":
                self.errors += 1
                self.retry_later += bool(r.get("retryable"))

    def conclude(self, max_error_rate: float) -> int:
        """Set :attr:`outcome` and return the exit status (module docstring)."""
        if not 0 <= max_error_rate <= 1:
            raise DeSTAError(f"max_error_rate must be within [0, 1], got {max_error_rate}")
        todo = self.requests - self.skipped
        left = (
            f"; {self.retry_later} transient failures will be retried by the next run"
            if self.retry_later
            else ""
        )
        if self.aborted is not None:
            self.outcome = (
                f"aborted after {self.written} rows: {self.aborted}. Nothing was stored as rejected "
                "for it; rerun after the fix to do the remaining requests."
            )
            return EXIT_ABORTED
        if todo == 0:
            self.outcome = f"nothing to do: all {self.requests} requests were finished by earlier runs"
            return EXIT_OK
        rate = self.errors / self.attempted if self.attempted else 0.0
        counts = f"{self.written} rows written, {sum(self.rejected.values())} rejected ({self.errors} backend errors)"
        if self.written == 0:
            self.outcome = f"failed: nothing could be generated for {todo} requests: {counts}{left}"
            return EXIT_FAILED
        if rate > max_error_rate:
            self.outcome = (
                f"failed: backend errors on {rate:.0%} of the requests, above the allowed "
                f"{max_error_rate:.0%}: {counts}{left}"
            )
            return EXIT_FAILED
        self.outcome = f"done: {counts}{left}"
        return EXIT_OK

    def reject_lines(self, out: Any = None, top: int = 8) -> list[str]:
        """A one-screen summary of this run's rejects for the console: count and share of each reason
        (most frequent first, at most ``top`` lines), what to change for the common ones, and where the
        rejected rows are. Empty when nothing was rejected."""
        total = sum(self.rejected.values())
        if not total:
            return []
        lines = [f"rejected {total} of {self.attempted} requests this run, by reason:"]
        ranked = self.rejected.most_common()
        for reason, n in ranked[:top]:
            hint = next((h for key, h in REJECT_HINTS if str(reason).startswith(key)), "")
            lines.append(f"  {n:>6}  {n / self.attempted:>4.0%}  {reason}" + (f"  ({hint})" if hint else ""))
        if len(ranked) > top:
            lines.append(f"  {sum(n for _, n in ranked[top:]):>6}        {len(ranked) - top} other reasons")
        if out is not None:
            lines.append(f"rejected rows and answers: {out}/rejects.jsonl; details: desta data report {out}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rejected"] = dict(self.rejected)
        return d


class GenerationAborted(DeSTAError):
    """The run stopped because the backend's endpoint is unusable; ``summary`` says what was done."""

    def __init__(self, message: str, summary: RunSummary) -> None:
        super().__init__(message)
        self.summary = summary
