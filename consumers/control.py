"""Pause and resume: whole queues, or single tenants of a queue.

A paused queue is a member of ``names.paused_queues_key``; workers pause that
queue's partitions. A paused tenant is a member of the queue's
``names.paused_tenants_key``; workers *park* its jobs (LPUSH to
``names.parked_key``) instead of running them, and the bridge leaves its fair
list alone. Resuming a tenant moves the parked jobs back where the bridge takes
from, oldest first, ahead of newer work, in one Lua script. Every change is
announced on ``names.control_channel`` so workers react at once; they also
re-read the flags every ``worker.control_interval_s``.

Parking checks the pause flag inside the same script: a job parked just after
a resume goes straight back to the ready list instead of being stranded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import orjson
import redis
import redis.asyncio

from jobpipe import names
from jobpipe.connections import async_pubsub
from jobpipe.errors import ConfigError
from jobpipe.routing import Routes, tenant_or_default
from jobpipe.topology import QueueSpec

log = logging.getLogger(__name__)

RESUME_ATTEMPTS = 20
RESUME_CHUNK = 1000  # parked jobs moved per step on a queue with shard_slots

# KEYS: paused tenants, parked, destination, tenants registry (the last two not
# given with ARGV[4] = '1'). ARGV: tenant, raw, fair, caller pushes.
# Returns 1 when parked, 0 when the tenant is not paused (job sent to destination,
# or, with ARGV[4] = '1', left to the caller to send: its destination is on
# another hash slot, a shard of a queue with shard_slots).
PARK_LUA = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
if ARGV[4] == '1' then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[2])
if ARGV[3] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) end
return 0
"""

# KEYS: paused tenants, parked, tenants registry, destinations...
# ARGV: tenant, expected parked length, fair, then the destination index (into
# the destinations) of each parked job from the left; none = all to the first.
# Moves newest first with RPUSH, so the oldest parked job ends up at the right
# end, taken next. Returns the number moved, or -1 if the list changed meanwhile.
RESUME_LUA = """
local n = tonumber(ARGV[2])
if redis.call('LLEN', KEYS[2]) ~= n then return -1 end
for i = 1, n do
  local v = redis.call('LPOP', KEYS[2])
  local dest = 4
  if #ARGV > 3 then dest = 3 + tonumber(ARGV[3 + i]) end
  redis.call('RPUSH', KEYS[dest], v)
end
redis.call('SREM', KEYS[1], ARGV[1])
if ARGV[3] == '1' and n > 0 then redis.call('SADD', KEYS[3], ARGV[1]) end
return n
"""


def _check_tenant(tenant: str) -> None:
    if not names.is_valid_tenant(tenant):
        raise ConfigError(f"tenant {tenant!r}: must be 1-200 of [A-Za-z0-9_.:@-]")


def _announce(op: str, queue: str, tenant: str | None = None) -> bytes:
    return orjson.dumps({"op": op, "queue": queue, "tenant": tenant})


def destination(ns: str, spec: QueueSpec, raw: bytes, tenant: str, spread: int) -> str:
    """The Redis list a job of ``tenant`` goes back to: its fair list, or the ready
    shard and level the producer would have chosen."""
    return Routes.of(ns, spec).of_raw(raw, spread, tenant)[0]


class Controls:
    """A worker's view of the pause flags, and the parking of paused tenants' jobs.

    Args:
        client: an asyncio Redis client.
        ns: the namespace.
        queues: the queues served. Only :meth:`park` needs them (to send a job
            back to the right list if its tenant was resumed meanwhile); the
            flags of every queue with a paused tenant are read regardless.
    """

    def __init__(self, client: redis.asyncio.Redis, ns: str,  # type: ignore[type-arg]
                 queues: Iterable[QueueSpec] = ()) -> None:
        self._client = client
        self._ns = ns
        self._specs = {spec.name: spec for spec in queues}
        self._watched: set[str] = set(self._specs)
        self._paused_queues: frozenset[str] = frozenset()
        self._paused_tenants: dict[str, frozenset[str]] = {}
        self._park = client.register_script(PARK_LUA)
        self._spread = 0
        self.version = 0
        """Bumped whenever a refresh sees a change; cheap to poll."""

    async def refresh(self) -> None:
        """Re-read every pause flag: one pipelined round trip (two when a queue got
        its first paused tenant since the last refresh)."""
        ns = self._ns
        while True:
            watched = sorted(self._watched)
            pipe = self._client.pipeline(transaction=False)
            pipe.smembers(names.paused_queues_key(ns))
            pipe.smembers(names.paused_tenant_queues_key(ns))
            for queue in watched:
                pipe.smembers(names.paused_tenants_key(ns, queue))
            replies: list[Any] = await pipe.execute()
            with_tenants = {m.decode() for m in replies[1]}
            if with_tenants <= self._watched:
                break
            self._watched |= with_tenants
        queues = frozenset(m.decode() for m in replies[0])
        tenants = {q: frozenset(m.decode() for m in r) for q, r in zip(watched, replies[2:],
                                                                        strict=True)}
        if queues != self._paused_queues or tenants != self._paused_tenants:
            self._paused_queues, self._paused_tenants = queues, tenants
            self.version += 1
            log.info("pause flags: queues %s, tenants %s", sorted(queues),
                     {q: sorted(t) for q, t in tenants.items() if t})

    def is_queue_paused(self, queue: str) -> bool:
        """Whether ``queue`` is paused, as of the last refresh."""
        return queue in self._paused_queues

    def has_paused_tenants(self, queue: str) -> bool:
        """Whether any tenant of ``queue`` is paused, as of the last refresh."""
        return bool(self._paused_tenants.get(queue))

    def is_tenant_paused(self, queue: str, tenant: str | None) -> bool:
        """Whether ``tenant`` (``None`` = ``default``) of ``queue`` is paused, as of
        the last refresh."""
        return tenant_or_default(tenant) in self._paused_tenants.get(queue, frozenset())

    async def park(self, raw: bytes, queue: str, tenant: str | None) -> bool:
        """Hold a paused tenant's job in Redis until the tenant is resumed.

        Either way the job is durably in Redis when this returns, so the caller
        may store its offset.

        Returns:
            ``True`` when parked; ``False`` when the tenant had been resumed
            meanwhile and the job went back to the ready list instead.
        """
        tenant = tenant_or_default(tenant)
        ns = self._ns
        spec = self._specs.get(queue)
        self._spread += 1
        dest = (destination(ns, spec, raw, tenant, self._spread) if spec is not None
                else names.parked_key(ns, queue, tenant))  # unknown spec: park regardless
        keys = [names.paused_tenants_key(ns, queue), names.parked_key(ns, queue, tenant), dest,
                names.tenants_key(ns, queue)]
        fair = "1" if spec is not None and spec.fair else "0"
        if spec is not None and spec.shard_slots:
            # Two steps: the offset is stored only after both (a crash between
            # them delivers the job again: a duplicate, never a loss).
            parked = bool(await self._park(keys=keys[:2], args=[tenant, raw, fair, "1"]))
            if not parked:
                await self._client.rpush(dest, raw)
            return parked
        parked = bool(await self._park(keys=keys, args=[tenant, raw, fair, "0"]))
        if not parked and spec is None:
            log.warning("tenant %s of queue %s was resumed while a job was being parked; "
                        "it waits in the parked list for the next resume (pass the queue "
                        "specs to Controls to send it back at once)", tenant, queue)
        return parked

    async def follow(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        """Refresh on every announcement on the control channel, and at least every
        ``interval_s``, until ``stop`` is set. Redis trouble is logged and waited out."""
        pubsub = await async_pubsub(self._client)
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await pubsub.subscribe(names.control_channel(self._ns))
            while not stop.is_set():
                try:
                    await self.refresh()
                    heard = asyncio.ensure_future(pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=interval_s))
                    await asyncio.wait({heard, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    if not heard.done():
                        heard.cancel()  # stopping: the subscription is closed below
                    else:
                        heard.result()
                except (redis.RedisError, OSError) as exc:
                    log.warning("pause flags not refreshed: %s", exc)
                    await asyncio.wait({stopped}, timeout=interval_s)
        finally:
            stopped.cancel()
            await pubsub.aclose()  # type: ignore[attr-defined]


# --- operator actions (sync: the CLI and tests) ------------------------------------------


def pause_queue(client: redis.Redis, ns: str, queue: str) -> None:  # type: ignore[type-arg]
    """Pause ``queue`` on every worker (they pause its partitions)."""
    # The flag first, then the news: a worker that hears it re-reads the flag. Two
    # calls, not one MULTI: on a cluster the flag's node need not be the one published on.
    client.sadd(names.paused_queues_key(ns), queue)
    client.publish(names.control_channel(ns), _announce("pause", queue))


def resume_queue(client: redis.Redis, ns: str, spec: QueueSpec) -> None:  # type: ignore[type-arg]
    """Resume ``spec``'s queue on every worker."""
    client.srem(names.paused_queues_key(ns), spec.name)  # flag first, as in pause_queue
    _wake_bridges(client, ns, spec)
    client.publish(names.control_channel(ns), _announce("resume", spec.name))


def _wake_bridges(client: redis.Redis, ns: str, spec: QueueSpec) -> None:  # type: ignore[type-arg]
    """Raise the queue's bridge wake-ups, as a push does: what waited in its lists
    while paused is taken now, not after an idle bridge's longest wait. A queue
    with ``shard_slots`` has one per shard, each in its own slot: one call each."""
    for slot in spec.slots:
        client.zadd(names.wake_key(ns, spec.name, slot), {names.WAKE_MEMBER: 0})


def pause_tenant(client: redis.Redis, ns: str, queue: str,  # type: ignore[type-arg]
                 tenant: str) -> None:
    """Pause one tenant of ``queue``: its jobs are parked, other tenants run on."""
    _check_tenant(tenant)
    # One call each, in this order (a cluster pipeline may send to several nodes at
    # once): the flags are set before a worker hears of them and re-reads them.
    client.sadd(names.paused_tenants_key(ns, queue), tenant)
    # Never removed on resume: a concurrent pause of another tenant could be missed.
    client.sadd(names.paused_tenant_queues_key(ns), queue)
    client.publish(names.control_channel(ns), _announce("pause", queue, tenant))


def resume_tenant(client: redis.Redis, ns: str, spec: QueueSpec,  # type: ignore[type-arg]
                  tenant: str) -> int:
    """Resume a tenant: its parked jobs go back, oldest first, ahead of newer work.

    Returns:
        How many parked jobs were re-injected.
    """
    _check_tenant(tenant)
    if spec.shard_slots:
        return _resume_to_slots(client, ns, spec, tenant)
    parked = names.parked_key(ns, spec.name, tenant)
    script = client.register_script(RESUME_LUA)
    fair = "1" if spec.fair else "0"
    for _ in range(RESUME_ATTEMPTS):
        jobs: list[bytes] = client.lrange(parked, 0, -1)
        dests: list[str] = []
        index: dict[str, int] = {}
        picks: list[int] = []
        for spread, raw in enumerate(jobs):
            dest = destination(ns, spec, raw, tenant, spread)
            if dest not in index:
                index[dest] = len(dests) + 1
                dests.append(dest)
            picks.append(index[dest])
        if not dests:
            dests = [destination(ns, spec, b"{}", tenant, 0)]
        keys = [names.paused_tenants_key(ns, spec.name), parked,
                names.tenants_key(ns, spec.name), *dests]
        args: list[Any] = [tenant, len(jobs), fair, *([] if spec.fair else picks)]
        moved = int(script(keys=keys, args=args))
        if moved >= 0:
            _wake_bridges(client, ns, spec)  # the bridge left the tenant's list alone
            client.publish(names.control_channel(ns), _announce("resume", spec.name, tenant))
            log.info("tenant %s of queue %s resumed, %d parked jobs re-injected", tenant,
                     spec.name, moved)
            return moved
    raise ConfigError(f"tenant {tenant!r} of queue {spec.name!r}: jobs kept being parked "
                      "while resuming; try again")


def _resume_to_slots(client: redis.Redis, ns: str, spec: QueueSpec,  # type: ignore[type-arg]
                     tenant: str) -> int:
    """:func:`resume_tenant` of a queue with ``shard_slots``, whose parked list (on
    the queue's tag) and ready lists (on the shards' tags) no script may join.

    The flag goes first: from then on the park script sends the tenant's jobs
    to their ready lists, so nothing joins the parked list. Then, newest chunk
    first, until it is empty: read a chunk, push each job to the front of its
    ready list (so the oldest is taken first), and trim exactly that chunk. A
    failure between a push and its trim leaves those jobs in both: the next
    resume pushes them again (duplicates, never a loss).
    """
    parked = names.parked_key(ns, spec.name, tenant)
    client.srem(names.paused_tenants_key(ns, spec.name), tenant)
    moved = 0
    while jobs := client.lrange(parked, 0, RESUME_CHUNK - 1):  # newest first
        by_dest: dict[str, list[bytes]] = {}
        for spread, raw in enumerate(jobs):
            by_dest.setdefault(destination(ns, spec, raw, tenant, spread), []).append(raw)
        for dest, raws in by_dest.items():  # RPUSH in this order: the oldest ends last
            client.rpush(dest, *raws)
        client.ltrim(parked, len(jobs), -1)
        moved += len(jobs)
    for slot in spec.slots:
        client.zadd(names.wake_key(ns, spec.name, slot), {names.WAKE_MEMBER: 0})
    client.publish(names.control_channel(ns), _announce("resume", spec.name, tenant))
    log.info("tenant %s of queue %s resumed, %d parked jobs re-injected", tenant, spec.name,
             moved)
    return moved
