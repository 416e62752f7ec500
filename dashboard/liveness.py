"""Which bridges and workers are alive, and when each was last heard from.

Bridges renew a deadline in ``names.bridges_key`` (a ZSET, id -> deadline in
ms) every ``bridge.heartbeat_interval_s``; the last heartbeat is that deadline
minus ``bridge.heartbeat_timeout_s``. Workers heartbeat to Kafka's group
coordinator, which keeps a member in the group only while its heartbeats
arrive within the session timeout, but does not tell when the last one came;
so each worker also writes its last heartbeat to Redis
(:mod:`consumers.heartbeat`), under the id that is its consumer's
``client.id``. A worker row joins the two: its membership and partitions from
Kafka, its last heartbeat from Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import redis
from confluent_kafka.admin import AdminClient

from jobpipe import names
from jobpipe.settings import Settings


@dataclass(frozen=True, slots=True)
class Bridge:
    """A bridge that has heartbeated: alive while its deadline is ahead."""

    bridge_id: str
    last_heartbeat_ms: int
    alive: bool


@dataclass(frozen=True, slots=True)
class Worker:
    """A worker: a member of the workers consumer group, as its coordinator sees it,
    with its last heartbeat in Redis (``None``: none there, e.g. its consumer's
    ``client.id`` was overridden); or one that heartbeated and is not a member
    (stopped without a clean exit, or between two rebalances)."""

    client_id: str
    host: str
    partitions: int
    last_heartbeat_ms: int | None = None
    in_group: bool = True


def bridges(client: redis.Redis, settings: Settings,  # type: ignore[type-arg]
            now_ms: int) -> list[Bridge]:
    """Every bridge id in the liveness set, newest heartbeat first."""
    timeout_ms = int(settings.bridge.heartbeat_timeout_s * 1000)
    scored = client.zrange(names.bridges_key(settings.namespace), 0, -1, withscores=True)
    found = [Bridge(member.decode(), int(deadline) - timeout_ms, int(deadline) > now_ms)
             for member, deadline in scored]
    return sorted(found, key=lambda b: -b.last_heartbeat_ms)


def workers(admin: AdminClient, settings: Settings, timeout_s: float = 5.0) -> list[Worker]:
    """The members of the workers group; empty when it has none.

    Raises:
        KafkaException: the coordinator did not answer.
    """
    group = names.group_id(settings.namespace, "workers")
    desc: Any = admin.describe_consumer_groups([group])[group].result(timeout=timeout_s)
    return sorted((Worker(m.client_id, m.host.strip("/"), len(m.assignment.topic_partitions))
                   for m in desc.members), key=lambda w: (w.host, w.client_id))


def with_heartbeats(members: list[Worker], beats: dict[str, int]) -> list[Worker]:
    """The group's ``members`` with their last heartbeats (``beats``: worker id -> ms),
    then the workers that heartbeated but are not members, newest first."""
    joined = [replace(m, last_heartbeat_ms=beats.get(m.client_id)) for m in members]
    known = {m.client_id for m in members}
    gone = sorted(((wid, ms) for wid, ms in beats.items() if wid not in known),
                  key=lambda item: -item[1])
    return joined + [Worker(wid, wid.rsplit(":", 1)[0], 0, ms, in_group=False)
                     for wid, ms in gone]

