"""Where a failed job goes next: a retry tier, or the dead-letter topic.

Pure: no Kafka, no Redis. :mod:`consumers.retry.sink` does the producing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from jobpipe.errors import HandlerError, JobpipeError, Reject, Retry
from jobpipe.topology import QueueSpec

DEFAULT_RETRY_ON: tuple[type[BaseException], ...] = (Exception,)


class Timeout(HandlerError):
    """An async job ran past its time limit and was cancelled (retryable)."""

    retryable = True


@dataclass(frozen=True, slots=True)
class Decision:
    """The fate of a failed job.

    Attributes:
        retry: ``True`` for a retry tier, ``False`` for the DLQ.
        delay_s: the tier's delay (retries only).
        reason: DLQ reason code (``exhausted``, ``rejected``, ``timeout``,
            ``not_retryable``); ``""`` for retries.
        jitter_s: extra wait on top of the tier delay, drawn at random up to the
            queue's ``retry_jitter`` share of it (retries only).
    """

    retry: bool
    delay_s: float | None = None
    reason: str = ""
    jitter_s: float = 0.0


def tier_for_delay(spec: QueueSpec, delay_s: float) -> float:
    """The smallest retry tier at or above ``delay_s`` (the largest if none is)."""
    for tier in spec.retry_tiers_s:
        if tier >= delay_s:
            return tier
    return spec.retry_tiers_s[-1]


def is_retryable(exc: BaseException, retry_on: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` may be retried: ``Reject`` and non-retryable jobpipe errors never
    are; ``Retry`` and ``Timeout`` always are; anything else when it is in ``retry_on``."""
    if isinstance(exc, Retry | Timeout):
        return True
    if isinstance(exc, JobpipeError):
        return exc.retryable
    return isinstance(exc, retry_on)


def decide(
    spec: QueueSpec,
    attempt: int,
    max_attempts: int,
    exc: BaseException,
    retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON,
    uniform: Callable[[], float] = random.random,
) -> Decision:
    """Choose retry tier or DLQ for a job whose attempt ``attempt`` raised ``exc``.

    Args:
        spec: the job's queue.
        attempt: the attempt that failed (1 on first delivery).
        max_attempts: the job's own limit.
        exc: what the handler raised.
        retry_on: exception types the task retries (others go to the DLQ).
        uniform: a random draw in [0, 1) for the jitter.
    """
    if isinstance(exc, Reject):
        return Decision(retry=False, reason="rejected")
    if not is_retryable(exc, retry_on):
        return Decision(retry=False, reason="not_retryable")
    if attempt >= max_attempts:
        return Decision(retry=False, reason="timeout" if isinstance(exc, Timeout) else "exhausted")
    if isinstance(exc, Retry) and exc.delay_s is not None:
        delay_s = tier_for_delay(spec, exc.delay_s)
    else:
        delay_s = spec.retry_delay_s(attempt)
    return Decision(retry=True, delay_s=delay_s, jitter_s=delay_s * spec.retry_jitter * uniform())
