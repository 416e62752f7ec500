"""The error a producer raises when Redis did not take its jobs in time.

What counts as "Redis is down" (retry until the deadline) and "Redis is full"
(backpressure) is :mod:`jobpipe.redis_failures`', the one rule of every stage.
"""

from __future__ import annotations

from jobpipe.errors import IntakeUnavailable
from jobpipe.redact import redact_url


def unavailable(url: str, deadline_s: float, exc: BaseException) -> IntakeUnavailable:
    """The error for a Redis that did not answer before the deadline."""
    return IntakeUnavailable(f"Redis at {redact_url(url)} did not take the jobs within "
                             f"{deadline_s:g}s: {exc}")
