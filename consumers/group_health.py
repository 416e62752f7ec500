"""Is a consumer's group membership stuck? Read from librdkafka's statistics.

librdkafka can get stuck after its group coordinator stopped answering for a
while (a frozen broker): the coordinator connection keeps its requests queued
and never sends them, the member never rejoins, and the worker runs nothing
until restarted. A consumer whose group has not been ``up``/``steady`` for
``stuck_after_s`` is suspect, and the cluster is asked for metadata (by a fresh
client: the stuck one's connections may be stuck too) every quarter of that. A
broker that is down or frozen (sockets open, no answers) is waited for. Once it
answers, the group gets half of ``stuck_after_s`` more to settle by itself
(right after a thaw it usually does); a consumer still unsettled then is stuck,
and its owner replaces it.

A static member (``group.instance.id``) can also lose its name: when another
consumer joins the group under the same name, the coordinator fences the
older one, and librdkafka makes that a fatal error, after which the client
is useless. Names claimed per host (:mod:`consumers.member_name`) collide
only across hosts that share a hostname and not their /tmp; the member
fenced then says so once and is replaced by a dynamic one.

GroupHealth is pure (fed the parsed statistics JSON); GuardedConsumer is the
consumer the worker's fetcher and the retry relay use, which does the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from jobpipe import metrics
from jobpipe.connections import kafka_admin_config, kafka_consumer_config
from jobpipe.settings import KafkaSettings

log = logging.getLogger(__name__)


class GroupHealth:
    """When the group last looked healthy, when the broker was asked, and whether the
    consumer is stuck.

    Args:
        stuck_after_s: how long the group may be joining, rebalancing or
            looking for its coordinator before its owner asks the broker.
        now: the monotonic time the consumer was created (joining starts then).
    """

    __slots__ = ("_answered_at", "_healthy_at", "_probed_at", "state", "stuck_after_s")

    def __init__(self, stuck_after_s: float, now: float) -> None:
        self.stuck_after_s = stuck_after_s
        self.state = "unknown"  # the last reported "<state>/<join_state>", for logs
        self._healthy_at = now
        self._probed_at = float("-inf")
        self._answered_at: float | None = None  # first answer of this unhealthy spell

    def observe(self, stats: dict[str, Any], now: float) -> None:
        """Take one statistics report (``statistics.interval.ms``)."""
        cgrp = stats.get("cgrp") or {}
        self.state = f"{cgrp.get('state')}/{cgrp.get('join_state')}"
        if self.state == "up/steady":
            self._healthy_at = now
            self._answered_at = None

    def suspect(self, now: float) -> bool:
        """Unhealthy for longer than ``stuck_after_s``, and the broker was not asked in
        the last quarter of that: time to ask it."""
        return (now - self._healthy_at > self.stuck_after_s
                and now - self._probed_at > self.stuck_after_s / 4)

    def probed(self, now: float, answered: bool) -> None:
        """The broker was asked at ``now``; whether it answered."""
        self._probed_at = now
        if not answered:
            self._answered_at = None
        elif self._answered_at is None:
            self._answered_at = now

    def stuck(self, now: float) -> bool:
        """Still unhealthy although the broker has been answering for half of
        ``stuck_after_s``."""
        return (self._answered_at is not None
                and now - self._answered_at >= self.stuck_after_s / 2)

    def unhealthy_s(self, now: float) -> float:
        """Seconds since the group last looked healthy."""
        return now - self._healthy_at


def is_stuck(kafka: KafkaSettings, health: GroupHealth, topic: str, who: str) -> bool:
    """Whether a consumer is stuck (see the module): when ``health`` says its group is
    suspect, asks the cluster for ``topic``'s metadata (5 s at most) through a fresh
    client, since a stuck consumer's own broker connections may be stuck too."""
    now = time.monotonic()
    if not health.suspect(now):
        return False
    try:
        AdminClient(kafka_admin_config(kafka)).list_topics(topic, timeout=5.0)
    except KafkaException as exc:
        health.probed(now, answered=False)
        log.warning("%s: group not settled for %.0f s (%s) and the broker does not answer "
                    "(%s); waiting for it", who, health.unhealthy_s(now), health.state, exc)
        return False
    health.probed(now, answered=True)
    if not health.stuck(now):
        log.warning("%s: group not settled for %.0f s (%s); the broker answers, giving "
                    "the group a moment", who, health.unhealthy_s(now), health.state)
        return False
    log.error("%s: group not settled for %.0f s (%s) although the broker answers; "
              "replacing the consumer", who, health.unhealthy_s(now), health.state)
    metrics.CONSUMERS_REPLACED.labels(who).inc()
    return True


# Broker errors that mean "another member holds this group.instance.id": the classic
# coordinator fences the older holder; KIP-848's refuses the newcomer.
_NAME_TAKEN_CODES = (KafkaError.FENCED_INSTANCE_ID, KafkaError.UNRELEASED_INSTANCE_ID)
# A consumer reports a fatal error as code _FATAL with the cause in its text,
# "Fatal error: <librdkafka's description of the cause>: ..." (the Python client
# exposes no rd_kafka_fatal_error()); KafkaError(code).str() is that description.
_NAME_TAKEN_TEXTS = tuple(f"Fatal error: {KafkaError(code).str()}:" for code in _NAME_TAKEN_CODES)


def name_taken(err: KafkaError | None) -> bool:
    """Whether a consumer error is the fatal one of a static member whose name another
    member of the group holds."""
    return (err is not None and err.code() == KafkaError._FATAL
            and err.str().startswith(_NAME_TAKEN_TEXTS))


class Generations:
    """Numbers the consumers an owner creates one after another, so the callbacks of
    a replaced one (its close revoking its old partitions) are ignored."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current = 0

    def next(self) -> Callable[[Callable[..., None]], Callable[..., None]]:
        """Start a new generation; returns ``bind``, which wraps a callback so it
        runs only while this generation is the current one."""
        self.current += 1
        gen = self.current

        def bind(fn: Callable[..., None]) -> Callable[..., None]:
            return lambda *args: fn(*args) if gen == self.current else None

        return bind


Rebalance = Callable[[Consumer, list[TopicPartition]], None]


class GuardedConsumer:
    """One consumer-group member that replaces itself when its membership is stuck,
    or when it is a static member whose name another member took.

    Create it on the thread that will use it (after any fork). ``consumer`` is
    the current client; :meth:`renew_if_stuck` and :meth:`renew_if_name_taken`,
    called from the owner's poll loop, swap it for a fresh one: the old
    assignment goes to ``on_lost`` first (its unfinished work is re-read), and
    the old client is closed on a side thread with its callbacks ignored.

    Args:
        kafka: where Kafka is. stuck_after_s: see :class:`GroupHealth`.
        group, topics: the group id and the topics to subscribe to.
        who: the owner's name in logs and ``jobpipe_consumers_replaced_total``.
        on_assign, on_revoke, on_lost: rebalance callbacks.
        on_stats: also given each parsed statistics report (every 5 s).
        conf: extra consumer properties (``group.instance.id`` for a static member).
    """

    def __init__(self, kafka: KafkaSettings, stuck_after_s: float, group: str,
                 topics: list[str], who: str, *, on_assign: Rebalance, on_revoke: Rebalance,
                 on_lost: Rebalance, on_stats: Callable[[dict[str, Any]], None] | None = None,
                 **conf: Any) -> None:
        self._kafka, self._stuck_after_s, self._group = kafka, stuck_after_s, group
        self._topics, self._who = topics, who
        self._on_assign, self._on_revoke, self._on_lost = on_assign, on_revoke, on_lost
        self._on_stats = on_stats
        self._conf = conf
        self._generations = Generations()
        # What the current client holds, as its callbacks said: a fenced client
        # forgets its assignment without calling any of them.
        self._held: dict[tuple[str, int], TopicPartition] = {}
        self.health = GroupHealth(stuck_after_s, time.monotonic())
        self.consumer = self._new()

    def renew_if_stuck(self) -> bool:
        """Replace the consumer if it is stuck; True when it was."""
        if not is_stuck(self._kafka, self.health, self._topics[0], self._who):
            return False
        self._replace()
        return True

    def renew_if_name_taken(self, msgs: list[Message]) -> bool:
        """Replace a static member whose name another member holds (``msgs``, just
        consumed, carry the fatal error) by a dynamic one; True when it was.

        The fenced client can commit nothing more: what it had not committed is
        re-delivered to whoever gets those partitions (at-least-once). The new
        member has no name to lose, so this happens (and is logged) once.
        """
        name = self._conf.get("group.instance.id")
        if name is None or not any(name_taken(m.error()) for m in msgs):
            return False
        log.warning("%s: another member of group %s uses the static member name %r, so "
                    "this one goes on with dynamic membership; give each worker its own "
                    "worker.instance_id, or set worker.membership = \"dynamic\"",
                    self._who, self._group, name)
        del self._conf["group.instance.id"]
        self._replace()
        return True

    def _replace(self) -> None:
        """Swap the client for a fresh one: the old assignment is lost first (its
        unfinished work is re-read), the old client closed on a side thread."""
        old = self.consumer
        lost, self._held = list(self._held.values()), {}
        self._on_lost(old, lost)
        self.consumer = self._new()
        threading.Thread(target=old.close, name="jobpipe-replaced-consumer-close",
                         daemon=True).start()  # close() may block on a dead coordinator

    def _new(self) -> Consumer:
        bind = self._generations.next()
        self.health = GroupHealth(self._stuck_after_s, time.monotonic())
        consumer = Consumer(kafka_consumer_config(
            self._kafka, self._group,
            **{**self._conf, "statistics.interval.ms": 5000, "stats_cb": bind(self._stats)}))
        consumer.subscribe(self._topics, on_assign=bind(self._assigned),
                           on_revoke=bind(self._revoked), on_lost=bind(self._lost))
        return consumer

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._held.update({(tp.topic, tp.partition): tp for tp in partitions})
        self._on_assign(consumer, partitions)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_revoke(consumer, partitions)
        self._forget(partitions)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_lost(consumer, partitions)
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._held.pop((tp.topic, tp.partition), None)

    def _stats(self, raw: str) -> None:
        try:
            stats = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:  # statistics are best effort
            log.debug("bad statistics: %s", exc)
            return
        self.health.observe(stats, time.monotonic())
        if self._on_stats is not None:
            self._on_stats(stats)
