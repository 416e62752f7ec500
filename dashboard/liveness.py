"""Which bridges and workers are alive, and when each was last heard from.

Bridges renew a deadline in ``names.bridges_key`` (a ZSET, id -> deadline in
ms) every ``bridge.heartbeat_interval_s``; the last heartbeat is that deadline
minus ``bridge.heartbeat_timeout_s``. Workers heartbeat to Kafka's group
coordinator, which keeps a member in the group only while its heartbeats
arrive within the session timeout; the coordinator does not tell when the last
one came, so a worker shows as a member with its partitions.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """A member of the workers consumer group, as its coordinator sees it."""

    client_id: str
    host: str
    partitions: int


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

