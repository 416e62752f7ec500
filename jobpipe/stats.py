"""Read a namespace's state from Redis and Kafka into a :class:`Snapshot`.

Redis: ready (every shard and level, or every tenant list of a fair queue),
delayed, in-flight (summed over every bridge), the bridge's dead list, parked
jobs of paused tenants, paused queues and tenants, live bridges. Kafka: lag of
the workers group on main topics and of the retry group on retry topics (end
offset minus committed offset, or minus the start offset when the group has
committed nothing), and the DLQ size (end minus start offsets).

Reading is a few pipelined Redis round trips and three admin requests; it
never joins a consumer group, so it does not disturb the workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from jobpipe import names
from jobpipe.connections import kafka_admin_config, redis_client
from jobpipe.errors import KafkaUnavailable
from jobpipe.settings import Settings
from jobpipe.stats_model import QueueSnapshot, Snapshot
from jobpipe.topology import QueueSpec

Offsets = dict[tuple[str, int], int]


@dataclass(frozen=True, slots=True)
class _RedisCounts:
    ready: int
    delayed: int
    inflight: int
    dead: int
    parked: int
    paused_tenants: tuple[str, ...]
    tenants_waiting: int


class StatsCollector:
    """Takes snapshots of one namespace; owns its Redis and Kafka admin clients.

    Args:
        settings: where to look and which queues exist.
        queues: restrict to these queues (default: every declared queue).
        timeout_s: per Kafka request.
    """

    def __init__(self, settings: Settings, queues: list[str] | None = None,
                 timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.specs = settings.topology.select(queues)
        self.timeout_s = timeout_s
        self.groups = (names.group_id(settings.namespace, "workers"),
                       names.group_id(settings.namespace, "retry"))
        self._redis = redis_client(settings.redis)
        self._admin = AdminClient(kafka_admin_config(settings.kafka))

    @property
    def redis(self) -> redis.Redis[bytes]:
        """The Redis client it reads with, for a caller sampling more of the same Redis."""
        return self._redis

    def close(self) -> None:
        """Release the Redis connection."""
        self._redis.close()

    def snapshot(self) -> Snapshot:
        """Read everything once.

        Raises:
            KafkaUnavailable: Kafka did not answer within ``timeout_s``.
            redis.RedisError: Redis did not answer (redis-py's own error).
        """
        ns = self.settings.namespace
        taken_at_s, wall_s = time.monotonic(), time.time()
        paused = {m.decode() for m in self._redis.smembers(names.paused_queues_key(ns))}
        bridges = int(self._redis.zcount(names.bridges_key(ns), int(wall_s * 1000), "+inf"))
        counts = {spec.name: self._redis_counts(spec) for spec in self.specs}
        kafka = self._kafka_state()
        queues = tuple(self._queue(spec, counts[spec.name], kafka, spec.name in paused)
                       for spec in self.specs)
        return Snapshot(ns, taken_at_s, wall_s, bridges, queues)

    # --- Redis ------------------------------------------------------------------

    def _redis_counts(self, spec: QueueSpec) -> _RedisCounts:
        ns, q, r = self.settings.namespace, spec.name, self._redis
        # The index, not a SCAN: a SCAN walks the whole keyspace (a tracked queue's
        # job records too), ~1 ms of Redis per 500 keys on every snapshot. One
        # index per shard with shard_slots.
        inflight_keys = [k.decode() for slot in spec.slots
                         for k in r.smembers(names.inflight_index_key(ns, q, slot))]
        pipe = r.pipeline(transaction=False)
        pipe.smembers(names.paused_tenants_key(ns, q))
        pipe.smembers(names.tenants_key(ns, q))
        for slot in spec.slots:  # one of each per shard with shard_slots
            pipe.zcard(names.delayed_key(ns, q, slot))
            pipe.llen(names.dead_key(ns, q, slot))
        for key in inflight_keys:
            pipe.llen(key)
        paused_raw, tenants_raw, *counts = pipe.execute()
        n_slots = len(spec.slots)
        delayed = sum(counts[0 : 2 * n_slots : 2])
        dead = sum(counts[1 : 2 * n_slots : 2])
        inflight = counts[2 * n_slots :]
        paused_tenants = tuple(sorted(t.decode() for t in paused_raw))
        tenants = sorted(t.decode() for t in tenants_raw)
        ready_keys = ([names.tenant_ready_key(ns, q, tenant) for tenant in tenants] if spec.fair
                      else [names.ready_key(ns, q, shard, level, own_slot=spec.shard_slots)
                            for level in spec.levels for shard in range(spec.shards)])
        parked_keys = [names.parked_key(ns, q, tenant) for tenant in paused_tenants]
        # Counted here, not from the pipeline: a cluster pipeline keeps no command_stack.
        n_ready = len(ready_keys)
        pipe = r.pipeline(transaction=False)
        for list_key in [*ready_keys, *parked_keys]:
            pipe.llen(list_key)
        lengths = pipe.execute() if ready_keys or parked_keys else []
        return _RedisCounts(ready=sum(lengths[:n_ready]), delayed=int(delayed),
                            inflight=sum(inflight), dead=int(dead),
                            parked=sum(lengths[n_ready:]), paused_tenants=paused_tenants,
                            tenants_waiting=len(tenants))

    # --- Kafka ------------------------------------------------------------------

    def _kafka_state(self) -> dict[str, Any]:
        ns = self.settings.namespace
        try:
            metadata = self._admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise KafkaUnavailable(f"Kafka at {self.settings.kafka.bootstrap} did not answer "
                                   f"a metadata request: {exc}") from exc
        wanted = {t for spec in self.specs for t in spec.topics(ns)}
        tps = [TopicPartition(t, p) for t, meta in metadata.topics.items()
               if t in wanted and not meta.error for p in meta.partitions]
        state: dict[str, Any] = {"end": {}, "start": {}, "committed": {}}
        if not tps:
            return state
        state["end"] = self._list_offsets(tps, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        state["start"] = self._list_offsets(tps, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        main = {names.main_topic(ns, s.name, lvl) for s in self.specs for lvl in s.levels}
        dlq = {names.dlq_topic(ns, s.name) for s in self.specs}
        workers, retry = self.groups
        state["committed"] = {
            workers: self._committed(workers, [tp for tp in tps if tp.topic in main]),
            retry: self._committed(retry, [tp for tp in tps
                                           if tp.topic not in main and tp.topic not in dlq]),
        }
        return state

    def _list_offsets(self, tps: list[TopicPartition], spec: OffsetSpec) -> Offsets:
        futures = self._admin.list_offsets({tp: spec for tp in tps},
                                           request_timeout=self.timeout_s)
        try:
            return {(tp.topic, tp.partition): int(f.result().offset)
                    for tp, f in futures.items()}
        except KafkaException as exc:
            raise KafkaUnavailable(f"Kafka did not list offsets: {exc}") from exc

    def _committed(self, group: str, tps: list[TopicPartition]) -> Offsets:
        if not tps:
            return {}
        request = [ConsumerGroupTopicPartitions(group, tps)]
        futures = self._admin.list_consumer_group_offsets(request,
                                                          request_timeout=self.timeout_s)
        try:
            result = futures[group].result()
        except KafkaException as exc:
            raise KafkaUnavailable(f"Kafka did not list offsets of group {group}: {exc}") from exc
        return {(tp.topic, tp.partition): int(tp.offset) for tp in result.topic_partitions
                if tp.offset >= 0}

    def _queue(self, spec: QueueSpec, counts: _RedisCounts, kafka: dict[str, Any],
               paused: bool) -> QueueSnapshot:
        ns = self.settings.namespace
        end: Offsets = kafka["end"]
        start: Offsets = kafka["start"]
        workers, retry = self.groups
        main = [names.main_topic(ns, spec.name, level) for level in spec.levels]
        retries = spec.retry_topics(ns)
        dlq = names.dlq_topic(ns, spec.name)

        def lag(group: str, topics: list[str]) -> dict[str, int]:
            committed: Offsets = kafka["committed"].get(group, {})
            return {topic: sum(max(0, e - committed.get(tp, start.get(tp, 0)))
                               for tp, e in end.items() if tp[0] == topic)
                    for topic in topics}

        def total(offsets: Offsets, topics: list[str]) -> int:
            return sum(o for tp, o in offsets.items() if tp[0] in topics)

        dlq_end = total(end, [dlq])
        return QueueSnapshot(
            queue=spec.name, ready=counts.ready, delayed=counts.delayed,
            inflight=counts.inflight, dead=counts.dead, parked=counts.parked, paused=paused,
            paused_tenants=counts.paused_tenants, tenants_waiting=counts.tenants_waiting,
            lag={workers: lag(workers, main), retry: lag(retry, retries)},
            produced_total=total(end, main),
            committed_total=total(kafka["committed"].get(workers, {}), main),
            dlq_size=dlq_end - total(start, [dlq]), dlq_end_total=dlq_end,
        )


def take_snapshot(settings: Settings, queues: list[str] | None = None) -> Snapshot:
    """One snapshot with short-lived clients (for scripts and tests)."""
    collector = StatsCollector(settings, queues)
    try:
        return collector.snapshot()
    finally:
        collector.close()

