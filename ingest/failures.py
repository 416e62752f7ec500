"""How Redis failures read to a producer: down (retry), full (backpressure), or a bug.

``redis`` and ``redis.asyncio`` raise the same exception classes, so both
shells share these.
"""

from __future__ import annotations

import redis.exceptions

from jobpipe.connections import REDIS_CLUSTER_DOWN
from jobpipe.errors import IntakeUnavailable
from jobpipe.redact import redact_url

# Worth retrying until the deadline: the server is gone, slow, loading its AOF
# after a restart, or a replica mid-failover.
REDIS_DOWN: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    *REDIS_CLUSTER_DOWN,
)


def is_out_of_memory(exc: Exception) -> bool:
    """Redis at ``maxmemory`` under ``noeviction`` refuses writes: backpressure, not a bug.

    Redis says "OOM command not allowed when used memory > 'maxmemory'" (redis-py
    strips the "OOM" into its ``OutOfMemoryError``); inside MULTI the refusal may
    surface as ``EXECABORT`` naming the OOM.
    """
    message = str(exc)
    return isinstance(exc, redis.exceptions.ResponseError) and (
        message.startswith("OOM") or "maxmemory" in message)


def unavailable(url: str, deadline_s: float, exc: BaseException) -> IntakeUnavailable:
    """The error for a Redis that did not answer before the deadline."""
    return IntakeUnavailable(f"Redis at {redact_url(url)} did not take the jobs within "
                             f"{deadline_s:g}s: {exc}")

