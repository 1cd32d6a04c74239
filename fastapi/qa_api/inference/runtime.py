"""A served model: its pipeline (pipeline.py) run by the process's scheduler (scheduler.py).

The pipeline computes (encode, batch, forward, decode); the scheduler decides when and where:
one inference thread for every model, one tokenizer thread, windows of all requests sharing the
device, deadlines, cancellation. scheduler.py's docstring says why each of those is so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qa_api.inference.pipeline import Pipeline
from qa_api.inference.scheduler import Progress, Scheduler, SchedulerConfig, Submission
from qa_api.inference.types import QAQuery, QAResult


class QARuntime:
    """Answers QAQuery objects with one model's pipeline, run by `scheduler` (`alone`: its own)."""

    def __init__(self, pipeline: Pipeline, scheduler: Scheduler) -> None:
        self.name = pipeline.name
        self.pipeline = pipeline
        self.scheduler = scheduler

    @classmethod
    def alone(cls, pipeline: Pipeline, config: SchedulerConfig) -> QARuntime:
        """A runtime with a scheduler of its own (tests, tools)."""
        return cls(pipeline, Scheduler(config))

    @property
    def queue_depth(self) -> int:
        return self.scheduler.queue_depth(self.name)

    @property
    def tokens_per_s(self) -> float | None:
        """The measured speed the deadline check uses (None before warm-up or a first batch)."""
        return self.scheduler.tokens_per_s(self.name)

    def submit(
        self,
        queries: Sequence[QAQuery],
        timeout_s: float,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Submission:
        """Queue the queries together under one deadline (OverloadedError if they do not fit)."""
        return self.scheduler.submit(self.pipeline, queries, timeout_s, on_progress)

    def answer(self, query: QAQuery, timeout: float = 3600.0) -> QAResult:
        """Blocking convenience for in-process callers (CLI, warm-up)."""
        submission = self.submit([query], timeout)
        try:
            return submission.results[0].result(timeout)
        finally:
            submission.cancel()  # no-op once answered; drops the work on a timeout

    def warm_up_shapes(self, max_seq_len: int) -> None:
        """One forward pass at every padded length, on the inference thread; sets the speed."""
        measured = self.scheduler.call(lambda: self.pipeline.warm_up(max_seq_len)).result()
        self.scheduler.record(self.name, measured)

    def close(self, timeout: float | None = None) -> None:
        """Stop the scheduler after the admitted work: every runtime sharing it stops too."""
        self.scheduler.close(timeout)
