"""Periodic jobs as declared under ``[schedules.NAME]``: pure data, checked once.

Which fire times are due, and what a missed one becomes, is :mod:`ingest.schedules`;
this module only says what a schedule is, so settings can reject a bad one at
load time with one line naming the schedule and the key.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronsim import CronSim, CronSimError

from jobpipe import names
from jobpipe.errors import ConfigError

MISFIRE_POLICIES = ("skip", "run_once")
_EPOCH = "1970-01-01T00:00:00"


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """One periodic job.

    Attributes:
        name: schedule name, ``[A-Za-z0-9_-]``; part of each fire's idempotency key.
        queue: the declared queue its jobs go to.
        task: the task name of its jobs.
        args: the job arguments (any TOML value), the same at every fire.
        cron: a 5-field (minute) or 6-field (second first) cron expression, read
            in ``timezone``; give ``cron`` or ``interval_s``, not both.
        interval_s: fire every this many whole seconds, at multiples of it since
            the Unix epoch (so every scheduler agrees without talking).
        timezone: IANA zone name the cron expression is read in; ``UTC`` unless set.
        misfire: what fire times missed by more than ``grace_s`` (every
            scheduler down) become: ``skip`` (none runs) or ``run_once`` (the
            latest of them runs, once).
        grace_s: a fire time this late or less still runs (each one).
        key, tenant, priority, max_attempts: job options, as for ``enqueue``.
    """

    name: str
    queue: str = ""
    task: str = ""
    args: Any = None
    cron: str | None = None
    interval_s: int | None = None
    timezone: str = "UTC"
    misfire: str = "skip"
    grace_s: float = 30.0
    key: str | None = None
    tenant: str | None = None
    priority: int | None = None
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        where = f"schedules.{self.name}"
        if not names.is_valid_queue_name(self.name):
            raise ConfigError(f"{where}: schedule name must be 1-100 of [A-Za-z0-9_-]")
        if not self.queue:
            raise ConfigError(f"{where}.queue: required")
        if not self.task:
            raise ConfigError(f"{where}.task: required")
        if (self.cron is None) == (self.interval_s is None):
            raise ConfigError(f"{where}: give cron or interval_s (exactly one)")
        if self.interval_s is not None and self.interval_s < 1:
            raise ConfigError(f"{where}.interval_s: must be a whole number of seconds >= 1")
        try:
            zone = zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where}.timezone: unknown time zone {self.timezone!r} "
                              "(an IANA name such as 'Europe/Paris' or 'UTC')") from None
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.fromisoformat(_EPOCH).replace(tzinfo=zone))
            except CronSimError as exc:
                raise ConfigError(f"{where}.cron: {self.cron!r} is not a cron expression: "
                                  f"{exc}") from None
        if self.misfire not in MISFIRE_POLICIES:
            raise ConfigError(f"{where}.misfire: must be one of {', '.join(MISFIRE_POLICIES)}, "
                              f"not {self.misfire!r}")
        if self.grace_s < 0:
            raise ConfigError(f"{where}.grace_s: must be >= 0")

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The time zone the cron expression is read in."""
        return zoneinfo.ZoneInfo(self.timezone)
