import pytest

from consumers.retry.policy import Decision, Timeout, decide, tier_for_delay
from jobpipe.errors import ConfigError, KafkaUnavailable, Reject, Retry
from jobpipe.topology import QueueSpec

SPEC = QueueSpec("q", retry_tiers_s=(1.0, 5.0, 30.0), retry_jitter=0)


def test_attempt_n_goes_to_tier_n():
    assert decide(SPEC, 1, 5, ValueError("x")) == Decision(True, 1.0)
    assert decide(SPEC, 2, 5, ValueError("x")) == Decision(True, 5.0)
    assert decide(SPEC, 4, 5, ValueError("x")) == Decision(True, 30.0)  # last tier repeats


def test_retry_delay_picks_smallest_tier_at_or_above():
    assert tier_for_delay(SPEC, 2) == 5.0
    assert tier_for_delay(SPEC, 5) == 5.0
    assert tier_for_delay(SPEC, 999) == 30.0
    assert decide(SPEC, 1, 5, Retry(delay_s=3)) == Decision(True, 5.0)


@pytest.mark.parametrize(("exc", "reason"), [
    (Reject("no"), "rejected"),
    (ConfigError("bad"), "not_retryable"),
])
def test_non_retryable_errors_go_to_the_dlq(exc, reason):
    assert decide(SPEC, 1, 5, exc) == Decision(False, None, reason)


def test_exhausted_attempts_go_to_the_dlq():
    assert decide(SPEC, 5, 5, ValueError("x")) == Decision(False, None, "exhausted")
    assert decide(SPEC, 3, 3, Timeout("slow")) == Decision(False, None, "timeout")


def test_retry_on_chooses_which_exceptions_retry():
    only_io = (OSError,)
    assert decide(SPEC, 1, 5, ConnectionError("x"), only_io).retry
    assert decide(SPEC, 1, 5, ValueError("x"), only_io) == Decision(False, None, "not_retryable")
    assert decide(SPEC, 1, 5, KafkaUnavailable("x"), only_io).retry  # retryable by class


def test_jitter_adds_up_to_the_queue_share_of_the_tier_delay():
    spec = QueueSpec("q", retry_tiers_s=(10.0,), retry_jitter=0.25)
    assert decide(spec, 1, 5, ValueError("x"), uniform=lambda: 0.0).jitter_s == 0.0
    assert decide(spec, 1, 5, ValueError("x"), uniform=lambda: 0.5).jitter_s == 1.25
    assert decide(spec, 1, 5, Retry(delay_s=3), uniform=lambda: 0.999).jitter_s < 2.5


def test_jitter_spreads_jobs_that_failed_together():
    spec = QueueSpec("q", retry_tiers_s=(10.0,))  # default jitter: 20%
    waits = {decide(spec, 1, 5, ValueError("x")).jitter_s for _ in range(200)}
    assert len(waits) > 100
    assert all(0 <= w < 2.0 for w in waits)


@pytest.mark.parametrize("jitter", [-0.1, 1.5])
def test_jitter_outside_zero_to_one_is_a_config_error(jitter):
    with pytest.raises(ConfigError, match="retry_jitter"):
        QueueSpec("q", retry_jitter=jitter)
