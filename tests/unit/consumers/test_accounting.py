"""Per-batch metrics of finished jobs."""

from prometheus_client import REGISTRY

from consumers.accounting import BatchMetrics


def _sample(name: str, labels: dict[str, str]) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_end_to_end_ends_when_each_handler_returned_not_at_the_flush() -> None:
    labels = {"queue": "accounting-e2e"}
    before = _sample("jobpipe_job_end_to_end_seconds_sum", labels)
    seconds = 1_000_000_000
    BatchMetrics().finished("accounting-e2e", "t", [0.001, 0.002],
                            enqueued_at_ns=[10 * seconds, 10 * seconds],
                            finished_ns=[10 * seconds + seconds // 4, 11 * seconds])
    assert _sample("jobpipe_job_end_to_end_seconds_sum", labels) - before == 1.25
    assert _sample("jobpipe_job_end_to_end_seconds_bucket", {**labels, "le": "0.25"}) >= 1
    assert _sample("jobpipe_jobs_processed_total", {**labels, "task": "t"}) >= 2
