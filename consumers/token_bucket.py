"""Token bucket arithmetic, the reference model of the Lua script in
:mod:`consumers.ratelimit`.

A bucket holds at most ``burst`` tokens and gains ``rate_per_s`` a second. A job
takes one token from every bucket it is subject to (its queue's and its
tenant's), all or none; when any bucket is short, nothing is taken and the
caller waits until the emptiest one would have a token.

Pure: no Redis. The Lua script does the same steps on the Redis server's clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def burst_for(rate_per_s: float) -> float:
    """Bucket size for a rate: one second of jobs, and at least one job."""
    return max(1.0, rate_per_s)


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket's stored state: tokens left at ``stamp_ms``."""

    tokens: float
    stamp_ms: float


@dataclass(frozen=True, slots=True)
class Limit:
    """One rate a job is subject to."""

    rate_per_s: float

    @property
    def burst(self) -> float:
        """The bucket size."""
        return burst_for(self.rate_per_s)


def refill(bucket: Bucket | None, limit: Limit, now_ms: float) -> float:
    """Tokens in ``bucket`` at ``now_ms``; a missing bucket is full."""
    if bucket is None:
        return limit.burst
    elapsed_ms = max(0.0, now_ms - bucket.stamp_ms)
    return min(limit.burst, bucket.tokens + elapsed_ms * limit.rate_per_s / 1000)


def take(buckets: list[Bucket | None], limits: list[Limit],
         now_ms: float) -> tuple[list[Bucket] | None, int]:
    """Take one token from each bucket, or none at all.

    Returns:
        ``(new_buckets, 0)`` when every bucket had a token, else ``(None,
        wait_ms)`` with the whole milliseconds until the emptiest bucket has one.
    """
    levels = [refill(b, lim, now_ms) for b, lim in zip(buckets, limits, strict=True)]
    wait_ms = 0.0
    for level, lim in zip(levels, limits, strict=True):
        if level < 1:
            wait_ms = max(wait_ms, (1 - level) * 1000 / lim.rate_per_s)
    if wait_ms > 0:
        return None, max(1, math.ceil(wait_ms))
    return [Bucket(level - 1, now_ms) for level in levels], 0


def idle_ttl_ms(limit: Limit) -> int:
    """How long an untouched bucket is kept: past that it would be full anyway."""
    return math.ceil(limit.burst * 1000 / limit.rate_per_s) + 1000
