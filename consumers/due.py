"""Retry tier decisions: which tier a topic is, when its head job is due, where it goes.

Pure: no Kafka, no Redis. :mod:`consumers.retry_relay` does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from jobpipe import names
from jobpipe.errors import EnvelopeError
from jobpipe.topology import QueueSpec


@dataclass(frozen=True, slots=True)
class TierRoute:
    """What a retry tier topic is: the queue it belongs to and its delay."""

    spec: QueueSpec
    delay_s: float

    @property
    def delay_ms(self) -> int:
        """The tier delay in whole milliseconds."""
        return round(self.delay_s * 1000)


def tier_routes(ns: str, specs: list[QueueSpec]) -> dict[str, TierRoute]:
    """Map every retry tier topic of ``specs`` to its queue and delay.

    Built from :func:`jobpipe.names.retry_topic`, so a topic name is never parsed.
    """
    return {names.retry_topic(ns, spec.name, delay_s): TierRoute(spec, delay_s)
            for spec in specs for delay_s in spec.retry_tiers_s}


def wait_ms(timestamp_ms: int | None, delay_ms: int, now_ms: int) -> int:
    """Milliseconds until a message written at ``timestamp_ms`` is due (0 = due now).

    A message without a timestamp is due at once. A timestamp in the future
    (producer clock ahead of ours) never holds a job longer than the tier delay.
    """
    if timestamp_ms is None or timestamp_ms <= 0:
        return 0
    return max(0, min(timestamp_ms + delay_ms - now_ms, delay_ms))


def priority_level(raw: bytes, spec: QueueSpec) -> int:
    """The priority level of an encoded job, reading only what routing needs.

    A level beyond the queue's levels is clamped to its lowest one, so the job
    still runs rather than being sent to a topic that does not exist.

    Raises:
        EnvelopeError: ``invalid_json``, ``not_an_object`` or ``wrong_type``.
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("invalid_json", str(exc), raw) from exc
    if not isinstance(obj, dict):
        got = type(obj).__name__
        raise EnvelopeError("not_an_object", f"expected a JSON object, got {got}", raw)
    level = obj.get("priority") or 0
    if not isinstance(level, int) or isinstance(level, bool) or level < 0:
        raise EnvelopeError("wrong_type", "field 'priority' must be an integer >= 0", raw)
    return min(level, len(spec.priorities) - 1)


def next_wake_s(due_ms: list[int], now_ms: int, idle_s: float) -> float:
    """How long the relay may block in poll: until the earliest held partition is
    due, at most ``idle_s``."""
    if not due_ms:
        return idle_s
    return max(0.0, min(idle_s, (min(due_ms) - now_ms) / 1000))
