"""``jobpipe scheduler``: enqueue each fire time of the declared schedules, once.

Any number of schedulers may run. Each pass reads the clock of Redis (so
schedulers on hosts whose clocks disagree still agree), asks
:func:`ingest.schedules.due` what to fire, and enqueues each fire time with the
idempotency key :func:`ingest.schedules.fire_key`, as a unique job: the push
script claims that key with ``SET NX`` and writes the job in the same atomic
call, so racing schedulers enqueue it once, and workers skip a redelivery of it.
Then the pass records, per schedule, the time it decided up to (``ZADD GT``
keeps the latest), which is where the next pass, of any scheduler, starts.

A scheduler killed between the two only leaves fire times that the next pass
decides again, and their claims turn the repeats away. A claim lives as long
as its queue's ``idempotency_ttl_s``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import redis

from ingest.producer import Producer
from ingest.schedules import due, fire_key, fires_after
from jobpipe import metrics, names
from jobpipe.connections import redis_client
from jobpipe.errors import ConfigError, JobpipeError, JobRejected
from jobpipe.options import JobOptions
from jobpipe.redis_failures import REDIS_DOWN
from jobpipe.schedule import ScheduleSpec
from jobpipe.settings import Settings

log = logging.getLogger(__name__)

RETRIED: tuple[type[Exception], ...] = (*REDIS_DOWN, JobpipeError)
# Longest sleep between passes: a new fire time is never noticed later than this.
MAX_WAIT_S = 1.0


def check_schedules(settings: Settings) -> None:
    """Build each schedule's job once, without sending it, so a bad one fails at start.

    Raises:
        ConfigError: naming the schedule and what is wrong with its job.
    """
    from ingest.intake import Intake

    intake = Intake(settings)
    for spec in settings.schedules.values():
        try:
            intake.plan_many(spec.queue, spec.task, (spec.args,), _options(spec, "check"))
        except JobRejected as exc:
            raise ConfigError(f"schedules.{spec.name}: {exc}") from None


def _options(spec: ScheduleSpec, idempotency_key: str) -> JobOptions:
    return JobOptions(key=spec.key, tenant=spec.tenant, priority=spec.priority,
                      idempotency_key=idempotency_key, max_attempts=spec.max_attempts)


class Scheduler:
    """Runs passes over every declared schedule until :meth:`stop`.

    Args:
        settings: namespace, topology, ``[schedules]`` and ``[redis]``.
        client: a redis-py client to use instead of one built from settings.
    """

    def __init__(self, settings: Settings, *, client: redis.Redis[bytes] | None = None) -> None:
        if not settings.schedules:
            raise ConfigError("schedules: none declared (add a [schedules.NAME] table)")
        check_schedules(settings)
        # No spool: a pass that cannot reach Redis is simply tried again by the
        # next one, and a long outage is what the missed-fire policy is for.
        settings = replace(settings, ingest=replace(settings.ingest, spool_path=None))
        self.settings = settings
        self._redis = client if client is not None else redis_client(settings.redis)
        self._own_client = client is None
        self._producer = Producer(settings, client=self._redis)
        self._last_key = names.schedules_last_key(settings.namespace)
        self._stop = threading.Event()
        self._failing = False

    def run_pass(self) -> int:
        """Decide every schedule up to Redis's clock now; returns the milliseconds
        until the next fire time of any of them."""
        now_ms = self._redis_now_ms()
        specs = list(self.settings.schedules.values())
        lasts = self._redis.zmscore(self._last_key,  # type: ignore[no-untyped-call]
                                    [s.name for s in specs])
        decided: dict[str, int] = {}
        for spec, last in zip(specs, lasts, strict=True):
            step = due(spec, None if last is None else int(last), now_ms)
            if step.missed:
                log.warning("schedule %s: %d fire times missed by more than %.0f s "
                            "(misfire=%s: %d skipped)", spec.name, step.missed, spec.grace_s,
                            spec.misfire, step.skipped)
                metrics.SCHEDULE_MISSED.labels(spec.name).inc(step.missed)
                metrics.SCHEDULE_SKIPPED.labels(spec.name).inc(step.skipped)
            for fire_ms in step.fire:
                self._enqueue(spec, fire_ms)
                metrics.SCHEDULE_FIRES.labels(spec.name).inc()
            decided[spec.name] = now_ms
        self._redis.zadd(self._last_key, decided, gt=True)  # type: ignore[arg-type]
        return min(next(fires_after(s, now_ms)) for s in specs) - now_ms

    def _enqueue(self, spec: ScheduleSpec, fire_ms: int) -> None:
        ttl_s = self.settings.topology.get(spec.queue).idempotency_ttl_s
        self._producer.enqueue(spec.queue, spec.task, spec.args, key=spec.key,
                               tenant=spec.tenant, priority=spec.priority,
                               max_attempts=spec.max_attempts,
                               idempotency_key=fire_key(spec.name, fire_ms),
                               unique_for_s=ttl_s)

    def run(self) -> None:
        """Run passes until :meth:`stop`; Redis trouble is logged and tried again."""
        log.info("scheduler: %d schedules (%s)", len(self.settings.schedules),
                 ", ".join(self.settings.schedules))
        while not self._stop.is_set():
            wait_s = MAX_WAIT_S
            try:
                wait_s = min(MAX_WAIT_S, self.run_pass() / 1000)
                if self._failing:
                    log.info("scheduler: Redis answers again")
                    self._failing = False
            except RETRIED as exc:
                if not self._failing:
                    log.warning("scheduler: pass failed, retrying: %s", exc)
                    self._failing = True
            self._stop.wait(wait_s)

    def _redis_now_ms(self) -> int:
        seconds, micros = self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current pass."""
        self._stop.set()

    def close(self) -> None:
        """Release the connections."""
        self._producer.close()
        if self._own_client:
            self._redis.close()
