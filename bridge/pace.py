"""Whether jobs trickle or pour in: how the bridge hands a take to Kafka.

When jobs pour in, a take finds what arrived since the last one and many small
produce requests follow; the broker pays per request as much as per job. At
40,000 jobs/s offered on a 2-core box, with ``linger.ms`` 0 the broker used
7-9 µs of CPU per job, with 0.5-2 ms 2.0-3.0 µs, and the pipeline did 15-20 %
more (docs/benchmarks.md). A linger delays a lone job too, though: 0.5 ms
raised the p50 at 200 jobs/s from 1.6-1.7 to 2.6-2.7 ms. So the bridge's
producer lingers (``bridge.linger_ms``) and a take of a trickle is flushed at
once (``flush`` overrides ``linger.ms``): only a pour waits for the linger, and
its batches grow with the rate. The worker fetches what each produce request
brought, so its batches grow too: at 20,000 jobs/s, a 3 ms linger instead of
1 ms cut the CPU of all processes from 76-78 to 67-69 µs per job, for 1-2 ms
more e2e p50 (docs/benchmarks.md).
"""

from __future__ import annotations

import math

# Jobs per second above which a take counts as part of a pour. At 200 jobs/s
# (the latency benchmark) four jobs within 2 ms are rare; at the rates where the
# per-request cost shows (tens of thousands a second) every take is above it.
BUSY_PER_S = 2000.0


class Pace:
    """The arrival rate of one bridge's takes, as trickle or pour."""

    def __init__(self) -> None:
        self._last_take_s = -math.inf
        self.pouring = False

    def took(self, jobs: int, now: float) -> None:
        """A take at ``now`` (monotonic seconds) found ``jobs`` jobs."""
        since = now - self._last_take_s
        self._last_take_s = now
        self.pouring = jobs > BUSY_PER_S * since
