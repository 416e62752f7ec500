"""Job options: the one type every way of enqueueing uses, validated in one place.

Producers (sync and asyncio), the HTTP intake, ``jobpipe enqueue`` and a
handler's follow-up jobs (``ctx.enqueue``) all build a :class:`JobOptions` and
call :meth:`JobOptions.resolve`, so a job is held to the same rules whichever
way it comes in. Options never share a namespace with job arguments: ``args``
is one value and every option is keyword-only. Pure logic: no Redis here, so
every rule is unit-tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime

from jobpipe import names
from jobpipe.errors import JobRejected
from jobpipe.routing import tenant_or_default
from jobpipe.topology import QueueSpec

MAX_IDEMPOTENCY_KEY_CHARS = 512



@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job options as the caller gave them (see :meth:`resolve`).

    Attributes:
        key: ordering/partition key; jobs with the same key keep their order.
        tenant: fairness and pausing unit (fair queues use ``"default"`` when unset).
        priority: level index, 0 = highest (default 0).
        delay_s: run no earlier than this many seconds from now.
        run_at: run no earlier than this time (aware ``datetime`` or epoch seconds).
        idempotency_key: marks the job done once, and names its unique window.
        unique_for_s: drop a second enqueue of ``idempotency_key`` within this window.
        max_attempts: attempts before the job is dead-lettered (default: the queue's).
    """

    key: str | None = None
    tenant: str | None = None
    priority: int | None = None
    delay_s: float | None = None
    run_at: datetime | float | None = None
    idempotency_key: str | None = None
    unique_for_s: float | None = None
    max_attempts: int | None = None

    def wrong_types(self) -> list[tuple[str, str]]:
        """``(option, what it must be)`` for every option set to a value of the wrong type.

        The type rules of every way in (the HTTP intake names each bad field
        with it; :meth:`resolve` starts with it).
        """
        problems = []
        for name, must, kinds in _TYPES:  # a plain loop: this runs on every enqueue
            value = getattr(self, name)
            if value is not None and (value is True or value is False
                                      or not isinstance(value, kinds)):
                problems.append((name, must))
        return problems

    def resolve(self, spec: QueueSpec, now_ns: int) -> Resolved:
        """Check every option against the queue and fill in the defaults.

        Raises:
            JobRejected: one message naming the option and what is wrong.
        """
        where = f"queue {spec.name!r}"
        wrong = self.wrong_types()
        if wrong:
            name, must = wrong[0]
            raise JobRejected(f"{where}: {name} {must}, not {getattr(self, name)!r}")
        tenant = self.tenant
        if tenant is not None and not names.is_valid_tenant(tenant):
            raise JobRejected(f"{where}: tenant {tenant!r} must be 1-200 of [A-Za-z0-9_.:@-]")
        if spec.fair:
            tenant = tenant_or_default(tenant)
        priority = 0 if self.priority is None else self.priority
        if not 0 <= priority < len(spec.priorities):
            top = len(spec.priorities) - 1
            raise JobRejected(f"{where}: priority must be an integer in 0..{top}, "
                              f"not {priority!r}")
        max_attempts = spec.max_attempts if self.max_attempts is None else self.max_attempts
        if max_attempts < 1:
            raise JobRejected(f"{where}: max_attempts must be an integer >= 1, "
                              f"not {max_attempts!r}")
        run_at_ns = self._run_at_ns(where, now_ns)
        idem = self.idempotency_key
        if idem is not None and not 0 < len(idem) <= MAX_IDEMPOTENCY_KEY_CHARS:
            raise JobRejected(f"{where}: idempotency_key must be a non-empty string of at most "
                              f"{MAX_IDEMPOTENCY_KEY_CHARS} characters")
        unique_ttl_s = None
        if self.unique_for_s is not None:
            if self.unique_for_s <= 0:
                raise JobRejected(f"{where}: unique_for_s must be > 0, not {self.unique_for_s!r}")
            if idem is None:
                raise JobRejected(f"{where}: unique_for_s needs an idempotency_key")
            unique_ttl_s = max(1, math.ceil(self.unique_for_s))
        return Resolved(self.key, tenant, priority, max_attempts, run_at_ns, idem, unique_ttl_s)

    def _run_at_ns(self, where: str, now_ns: int) -> int | None:
        if self.delay_s is not None and self.run_at is not None:
            raise JobRejected(f"{where}: give delay_s or run_at, not both")
        if self.delay_s is not None:
            if not math.isfinite(self.delay_s):
                raise JobRejected(f"{where}: delay_s must be a number, not {self.delay_s!r}")
            if self.delay_s < 0:
                raise JobRejected(f"{where}: delay_s must be >= 0, not {self.delay_s!r}")
            at_ns = now_ns + round(self.delay_s * 1e9)
        elif self.run_at is not None:
            at_ns = _epoch_ns(self.run_at, where)
        else:
            return None
        # Due already: straight to the ready lists, no detour through the ZSET.
        return at_ns if at_ns > now_ns else None


@dataclass(frozen=True, slots=True)
class Resolved:
    """Options after validation; ``run_at_ns`` is set only for a job due later."""

    key: str | None
    tenant: str | None
    priority: int
    max_attempts: int
    run_at_ns: int | None
    idem: str | None
    unique_ttl_s: int | None


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(JobOptions))
"""Every job option, in declaration order: the keyword-only parameters of the
producers' ``enqueue`` methods and the option fields of an HTTP job."""


# The type each option must have when set; a bool is never one of them, though
# Python counts it as an int. Ranges and combinations are checked by
# JobOptions.resolve once the types are right.
_TYPES: tuple[tuple[str, str, tuple[type, ...]], ...] = (
    ("key", "must be a string", (str,)),
    ("tenant", "must be a string", (str,)),
    ("priority", "must be an integer", (int,)),
    ("delay_s", "must be a number", (int, float)),
    ("run_at", "must be an aware datetime or epoch seconds", (int, float, datetime)),
    ("idempotency_key", "must be a string", (str,)),
    ("unique_for_s", "must be a number", (int, float)),
    ("max_attempts", "must be an integer", (int,)),
)


def _epoch_ns(run_at: datetime | float, where: str) -> int:
    if isinstance(run_at, datetime):
        if run_at.tzinfo is None:
            raise JobRejected(f"{where}: run_at must be timezone-aware")
        return round(run_at.timestamp() * 1e9)
    if not math.isfinite(run_at) or run_at < 0:
        raise JobRejected(f"{where}: run_at must be an aware datetime or epoch seconds >= 0, "
                          f"not {run_at!r}")
    return round(run_at * 1e9)
