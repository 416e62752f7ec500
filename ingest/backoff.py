"""When to try again: capped exponential backoff with full jitter (pure).

Full jitter (sleep a uniform random time up to the capped exponential) spreads
the retries of many producers after an outage instead of having them hammer a
recovering Redis in step (AWS Architecture Blog, "Exponential Backoff And
Jitter", 2015).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delay before retry number ``attempt`` (0-based).

    Attributes:
        base_s: the first ceiling.
        cap_s: the largest ceiling.
        rng: uniform [0, 1) source (injectable for tests).
    """

    base_s: float = 0.005
    cap_s: float = 0.5
    rng: Callable[[], float] = field(default=random.random)

    def ceiling_s(self, attempt: int) -> float:
        """The largest delay retry ``attempt`` may wait."""
        return float(min(self.cap_s, self.base_s * 2.0 ** min(attempt, 32)))

    def delay_s(self, attempt: int) -> float:
        """A random delay in ``[0, ceiling_s(attempt))``."""
        return self.rng() * self.ceiling_s(attempt)


@dataclass(slots=True)
class Attempts:
    """The retry budget of one enqueue call, for both failure kinds.

    Redis down: retry until ``down_deadline_s`` after the start. Queue full
    (and ``block``): retry until ``block_timeout_s`` after the first refusal.
    The shells pass the monotonic clock in; ``None`` means give up now.
    """

    started_s: float
    down_deadline_s: float
    block: bool
    block_timeout_s: float
    backoff: Backoff = field(default_factory=Backoff)
    _down: int = 0
    _full: int = 0
    _full_since_s: float | None = None

    def after_down(self, now_s: float) -> float | None:
        """Seconds to wait before the next try after a connection failure, or None."""
        left_s = self.started_s + self.down_deadline_s - now_s
        if left_s <= 0:
            return None
        wait_s = self.backoff.delay_s(self._down)
        self._down += 1
        return min(wait_s, left_s)

    def after_full(self, now_s: float) -> float | None:
        """Seconds to wait before the next try after a full queue, or None."""
        if not self.block:
            return None
        if self._full_since_s is None:
            self._full_since_s = now_s
        left_s = self._full_since_s + self.block_timeout_s - now_s
        if left_s <= 0:
            return None
        # Room appears as the bridge drains; poll faster than for an outage.
        wait_s = Backoff(self.backoff.base_s, min(self.backoff.cap_s, 0.05),
                         self.backoff.rng).delay_s(self._full)
        self._full += 1
        return min(wait_s, left_s)
