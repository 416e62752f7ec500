"""Fire times of a schedule, and which are due in one pass (pure: no Redis, no clock).

Times are epoch milliseconds. A pass at ``now`` decides every fire time in
``(last, now]``, where ``last`` is the time the previous pass (of any scheduler)
decided up to:

- a fire time at most ``grace_s`` old runs, each one;
- older ones were missed (every scheduler was down): ``skip`` drops them,
  ``run_once`` runs the latest of them, once (as well as those on time).

A schedule never seen before starts at its next fire time: nothing is back-filled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from cronsim import CronSim

from jobpipe.schedule import ScheduleSpec

FIRE_KEY_PREFIX = "schedule"
# Counting missed fire times walks them; a long outage of a per-second cron
# stops counting here rather than spending a pass on it.
MAX_MISSED_COUNTED = 100_000


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass does for one schedule.

    Attributes:
        fire: fire times to enqueue, oldest first.
        missed: how many fire times were missed by more than the grace period
            (counted up to :data:`MAX_MISSED_COUNTED`).
        skipped: how many of those are not run (all but one with ``run_once``).
    """

    fire: list[int]
    missed: int
    skipped: int


def fire_key(schedule: str, fire_ms: int) -> str:
    """The idempotency key of one fire: the same for every scheduler, so one enqueue wins."""
    return f"{FIRE_KEY_PREFIX}:{schedule}:{fire_ms}"


def fires_after(spec: ScheduleSpec, after_ms: int) -> Iterator[int]:
    """Fire times strictly after ``after_ms``, in order, without end."""
    if spec.interval_s is not None:
        step = spec.interval_s * 1000
        fire = (after_ms // step + 1) * step
        while True:
            yield fire
            fire += step
    assert spec.cron is not None
    # CronSim starts strictly after the whole second it is given, which is
    # after ``after_ms`` too (cron fire times are whole seconds).
    for dt in CronSim(spec.cron, _at(spec, after_ms)):
        yield round(dt.timestamp() * 1000)


def latest_at_or_before(spec: ScheduleSpec, at_ms: int) -> int:
    """The last fire time at or before ``at_ms``."""
    if spec.interval_s is not None:
        step = spec.interval_s * 1000
        return at_ms // step * step
    assert spec.cron is not None
    # Reversed, CronSim starts strictly before a whole second it is given.
    start = _at(spec, (at_ms // 1000 + 1) * 1000)
    return round(next(CronSim(spec.cron, start, reverse=True)).timestamp() * 1000)


def due(spec: ScheduleSpec, last_ms: int | None, now_ms: int) -> Pass:
    """The fire times a pass at ``now_ms`` enqueues, after one that decided up to ``last_ms``."""
    if last_ms is None or last_ms >= now_ms:
        return Pass([], 0, 0)
    on_time_from = max(last_ms, now_ms - round(spec.grace_s * 1000))
    fire: list[int] = []
    for t in fires_after(spec, on_time_from):
        if t > now_ms:
            break
        fire.append(t)
    missed = _count_missed(spec, last_ms, on_time_from)
    if missed and spec.misfire == "run_once":
        fire.insert(0, latest_at_or_before(spec, on_time_from))
        return Pass(fire, missed, missed - 1)
    return Pass(fire, missed, missed)


def _count_missed(spec: ScheduleSpec, last_ms: int, on_time_from: int) -> int:
    """Fire times in ``(last_ms, on_time_from]``: after the last pass, before the grace."""
    if on_time_from <= last_ms:
        return 0
    if spec.interval_s is not None:
        step = spec.interval_s * 1000
        return min(MAX_MISSED_COUNTED, on_time_from // step - last_ms // step)
    count = 0
    for t in fires_after(spec, last_ms):
        if t > on_time_from or count == MAX_MISSED_COUNTED:
            break
        count += 1
    return count


def next_fires(spec: ScheduleSpec, now_ms: int, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``now_ms``, in the schedule's time zone."""
    out: list[datetime] = []
    for t in fires_after(spec, now_ms):
        if len(out) == count:
            break
        out.append(_at(spec, t))
    return out


def _at(spec: ScheduleSpec, ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, spec.zone)
