"""What the worker does when Redis fails one of its commands while it runs jobs.

Done markers, job states, pause flags and rate limits never stall jobs on a
Redis that is down or full: each caller logs it and goes its own way (runs
the batch unchecked, drops a state write, keeps the last flags, waits and asks
again). A refusal (``NOPERM``, credentials, a script Redis rejects) would be
answered the same way every time, so the worker stops with it, one line as
at start, instead of logging it forever. Which is which is
:mod:`jobpipe.redis_failures`' rule.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from jobpipe.redis_failures import REDIS_FAILURES, is_transient

log = logging.getLogger(__name__)
# One warning per kind of trouble this often: a Redis that is down fails every batch.
LOG_INTERVAL_S = 10.0


class RedisTrouble:
    """The worker's answer to a failed Redis command.

    Args:
        stop: asks the worker to stop (a refusal); by default nothing stops,
            the refusal is only logged (a user of the clients outside a worker).
    """

    def __init__(self, stop: Callable[[], None] = lambda: None) -> None:
        self._stop = stop
        self._logged_at: dict[str, float] = {}
        self.refusal: Exception | None = None
        """The first refusal seen: the worker ends with it."""

    def note(self, what: str, exc: Exception) -> None:
        """``what`` (e.g. "writing done markers") failed with ``exc``: log a
        transient failure, or keep a refusal and ask the worker to stop."""
        if isinstance(exc, REDIS_FAILURES) and not is_transient(exc):
            if self.refusal is None:
                self.refusal = exc
                log.error("%s: Redis refused (%s); stopping", what, exc)
                self._stop()
            return
        now = time.monotonic()
        if now - self._logged_at.get(what, -LOG_INTERVAL_S) >= LOG_INTERVAL_S:
            self._logged_at[what] = now
            log.warning("%s failed: %s", what, exc)

    @property
    def refused(self) -> bool:
        """Whether a refusal was seen (the worker is stopping)."""
        return self.refusal is not None
