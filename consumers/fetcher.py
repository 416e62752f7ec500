"""The Kafka side of a worker process: one consumer, owned by one thread.

Every consumer call (``consume``, ``store_offsets``, ``pause``, ``commit``,
``close``) runs on this thread, never on the event loop. The event loop talks
to it through thread-safe requests: offsets to store, topics to pause, and
arbitrary calls (:meth:`Fetcher.call`). Rebalance callbacks run here too; a
revoke waits (bounded) for the loop to finish the revoked partitions' jobs and
stores what finished, then commits it synchronously. A consumer whose group
membership stays stuck, or whose static member name another member took (see
:mod:`consumers.group_health`), is replaced.

The consumer is a static group member by default, named by
``worker.instance_id`` or else by a slot it claims on this host
(:mod:`consumers.member_name`), held from construction until the thread ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumers.first_fetch import FirstFetch
from consumers.group_health import GuardedConsumer
from consumers.heartbeat import worker_id
from consumers.member_name import MemberSlot, claim
from jobpipe import metrics, names
from jobpipe.errors import ConfigError
from jobpipe.kafka_refusal import Refusals
from jobpipe.settings import Settings

log = logging.getLogger(__name__)

TP = tuple[str, int]
# Longest wait of one fetch for its first message. A message ends the wait as
# it arrives; this only bounds how late offsets to store and calls are served.
FETCH_WAIT_S = 0.05
# Longest slice of a fetch's wait before the stop flag is looked at again: how
# long a stop may wait on an idle consumer (see fetch_available).
STOP_CHECK_S = 0.25
RevokeFn = Callable[[list[TP]], Coroutine[Any, Any, dict[TP, int]]]
PartitionsFn = Callable[[list[TP]], None]


def fetch_available(consumer: Consumer, batch_max: int, wait_s: float,
                    stop: threading.Event | None = None) -> list[Message]:
    """What is already fetched, up to ``batch_max``; when nothing is, wait up to
    ``wait_s`` for the first message and take what came with it.

    ``consume(batch_max, timeout)`` waits for a *full* batch or the timeout:
    at 20k jobs/s that held every job ~50 ms in the worker's fetcher, and a
    lone retry for the whole idle wait in the retry relay. Under load the
    first call returns full batches anyway.

    librdkafka cannot be woken from another thread, so a long wait is taken in
    slices of at most ``STOP_CHECK_S`` and ends early once ``stop`` is set: a
    stopping process does not sit out its idle interval. Only the stop flag is
    looked at between slices, so a message still ends the wait the moment it
    arrives and nothing else runs more often than ``wait_s`` says.
    """
    msgs: list[Message] = consumer.consume(batch_max, 0)
    if msgs:
        return msgs
    deadline = time.monotonic() + wait_s
    while True:
        left = deadline - time.monotonic()
        msgs = consumer.consume(1, max(0.0, min(left, STOP_CHECK_S)))
        if msgs or left <= STOP_CHECK_S or (stop is not None and stop.is_set()):
            break
    if msgs and batch_max > 1:
        msgs += consumer.consume(batch_max - 1, 0)
    return msgs


def _is_eof(msg: Message) -> bool:
    """An end-of-partition event (``enable.partition.eof``): at a low rate one
    follows nearly every job, and handing it to the loop would cost a wake-up."""
    err = msg.error()
    return err is not None and err.code() == KafkaError._PARTITION_EOF


class Fetcher:
    """Runs the process's consumer on a dedicated thread.

    Args:
        settings: all settings (Kafka, worker section).
        topics: main topics to subscribe to.
        loop: the event loop that receives messages.
        on_messages: called on the loop with each non-empty batch.
        on_revoke: coroutine run on the loop for revoked partitions; returns
            the offsets to store for them.
        on_lost: called on the loop with lost partitions.
        on_assign: called on the loop with newly assigned partitions (after any
            loss reported before it: both go through one FIFO).
        on_refused: called on the loop, once, when Kafka's refusals of the
            consumer's credentials are the answer (:mod:`jobpipe.kafka_refusal`);
            the thread goes on until :meth:`stop`, so the worker stops in its
            usual order (running jobs finish, their offsets are committed).
    """

    def __init__(self, settings: Settings, topics: list[str], loop: asyncio.AbstractEventLoop,
                 on_messages: Callable[[list[Message]], None], on_revoke: RevokeFn,
                 on_lost: PartitionsFn, on_assign: PartitionsFn,
                 on_refused: Callable[[ConfigError], None]) -> None:
        self._settings = settings
        self._topics = topics
        self._loop = loop
        self._on_messages = on_messages
        self._on_revoke = on_revoke
        self._on_lost = on_lost
        self._on_assign = on_assign
        self._on_refused = on_refused
        self._refusals = Refusals(settings.kafka.bootstrap)
        self._refused = False
        self._lock = threading.Lock()
        self._to_store: dict[TP, int] = {}
        self._calls: list[tuple[Callable[[Consumer], Any], asyncio.Future[Any]]] = []
        self._wanted_paused: set[str] = set()
        self._paused: set[TP] = set()
        self.assignment: set[TP] = set()
        self.first_fetch = FirstFetch()
        self.first_fetched: int | None = None  # ``handed`` once every first fetch was
        self.fetching = True
        self.handed = 0  # messages handed to the loop (this thread writes)
        self.prepared = 0  # messages the loop has taken in (the loop writes)
        self.backlog_max = 4 * settings.worker.batch_max
        self._stop = threading.Event()
        self._closing = False
        self._group = names.group_id(settings.namespace, "workers")
        # Claimed here, on the caller's thread, so that a lock directory we may not
        # use stops the worker with its one-line error before anything runs.
        self._slot: MemberSlot | None = None
        if settings.worker.membership == "static" and settings.worker.instance_id is None:
            self._slot = claim(self._group)
            log.info("static group member %r (slot %d of this host)", self._slot.name,
                     self._slot.index)
        self._thread = threading.Thread(target=self._run, name="jobpipe-fetcher", daemon=True)

    # --- called from the loop ----------------------------------------------------------

    def start(self) -> None:
        """Start the thread (creates the consumer there)."""
        self._thread.start()

    def store(self, offsets: dict[TP, int]) -> None:
        """Offsets to store (the next message to read, per partition)."""
        if offsets:
            with self._lock:
                self._to_store.update(offsets)

    def set_paused_topics(self, topics: set[str]) -> None:
        """Topics whose partitions must not be fetched (control pause or full buffer)."""
        with self._lock:
            self._wanted_paused = set(topics)

    def call(self, fn: Callable[[Consumer], Any]) -> asyncio.Future[Any]:
        """Run ``fn(consumer)`` on the consumer thread; the future resolves on the loop."""
        fut: asyncio.Future[Any] = self._loop.create_future()
        with self._lock:
            self._calls.append((fn, fut))
        return fut

    def stop(self) -> None:
        """Stop fetching, store pending offsets, commit synchronously and close."""
        self._stop.set()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the thread to finish closing the consumer."""
        self._thread.join(timeout_s)

    # --- the consumer thread -----------------------------------------------------------

    def _run(self) -> None:
        try:
            self._consume()
        finally:
            if self._slot is not None:
                self._slot.release()  # the consumer is closed: the next worker may have it

    def _consume(self) -> None:
        self._guard = GuardedConsumer(
            self._settings.kafka, self._settings.worker.group_stuck_s, self._group,
            self._topics, "worker", on_assign=self._assigned, on_revoke=self._revoked,
            on_lost=self._lost, on_stats=self._on_stats, **self._consumer_conf())
        consumer = self._guard.consumer
        try:
            while not self._stop.is_set():
                self._service(consumer)
                if not self._refused:
                    refused = self._refusals.answer()
                    if refused is not None:
                        self._refused = True
                        self._loop.call_soon_threadsafe(self._on_refused, refused)
                if self._guard.renew_if_stuck():
                    consumer = self._guard.consumer
                    continue
                if not self.fetching:
                    # Every partition is paused: consume only serves callbacks; a
                    # straggler is dropped unstored, so it is simply re-delivered.
                    consumer.consume(1, 0.05)
                    continue
                if self.handed - self.prepared > self.backlog_max:
                    time.sleep(0.002)  # the loop is behind: let it catch up
                    continue
                msgs = fetch_available(consumer, self._settings.worker.batch_max, FETCH_WAIT_S,
                                       self._stop)
                if self._guard.renew_if_name_taken(msgs):
                    consumer = self._guard.consumer  # what came with the fence is re-read
                    continue
                seen = msgs
                if msgs and all(_is_eof(m) for m in msgs):
                    msgs = []  # nothing for the loop to do
                if self.first_fetched is None:  # a paused partition delivers nothing
                    self.first_fetch.seen(self._paused | {(m.topic() or "", m.partition() or 0)
                                                          for m in seen})
                    if self.first_fetch.done:
                        self.first_fetched = self.handed + len(msgs)
                if msgs:
                    self.handed += len(msgs)
                    self._loop.call_soon_threadsafe(self._on_messages, msgs)
        except Exception:
            log.exception("consumer thread failed")
            raise
        finally:
            self._closing = True
            self._service(consumer)
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._NO_OFFSET:
                    log.warning("final commit failed: %s", exc)
            consumer.close()
            log.info("consumer closed")

    def _consumer_conf(self) -> dict[str, Any]:
        worker = self._settings.worker
        conf: dict[str, Any] = {
            "auto.commit.interval.ms": max(100, int(worker.commit_interval_s * 1000)),
            "enable.partition.eof": True,  # an empty partition says so (FirstFetch)
            "client.id": worker_id(),  # the id of its heartbeats (consumers.heartbeat)
            # Only refusals: librdkafka logs the rest itself (its FAIL lines), and
            # confluent-kafka drops what reaches no error_cb.
            "error_cb": self._refusals.heard}
        name = worker.instance_id if self._slot is None else self._slot.name
        if name is not None:
            conf["group.instance.id"] = name
        return conf

    def _service(self, consumer: Consumer) -> None:
        with self._lock:
            to_store, self._to_store = self._to_store, {}
            calls, self._calls = self._calls, []
            wanted = self._wanted_paused
        self._store(consumer, to_store)
        self._reconcile_pause(consumer, wanted)
        for fn, fut in calls:
            try:
                result = fn(consumer)
            except Exception as exc:
                self._resolve(fut, None, exc)
            else:
                self._resolve(fut, result, None)

    def _resolve(self, fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        def done() -> None:
            if fut.done():
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(done)

    def _store(self, consumer: Consumer, offsets: dict[TP, int]) -> None:
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()
               if (t, p) in self.assignment]
        if not tps:
            return
        try:
            consumer.store_offsets(offsets=tps)
        except KafkaException as exc:
            log.warning("store_offsets failed: %s", exc)

    def _reconcile_pause(self, consumer: Consumer, wanted: set[str]) -> None:
        want = {tp for tp in self.assignment if tp[0] in wanted or not self.fetching}
        to_pause = want - self._paused
        to_resume = self._paused - want
        if to_pause:
            consumer.pause([TopicPartition(t, p) for t, p in to_pause])
        if to_resume:
            consumer.resume([TopicPartition(t, p) for t, p in to_resume])
        self._paused = want

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        self.assignment.update(tps)
        self.first_fetch.assigned(tps)
        log.info("assigned %d partitions", len(tps))
        self._loop.call_soon_threadsafe(self._on_assign, tps)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        log.info("revoking %d partitions", len(tps))
        if not self._closing and not self._loop.is_closed():
            timeout_s = self._settings.worker.revoke_timeout_s + 5
            try:
                fut = asyncio.run_coroutine_threadsafe(self._on_revoke(tps), self._loop)
                offsets = fut.result(timeout_s)
            except Exception as exc:  # loop gone or too slow: store nothing more
                log.warning("revoke handling failed (%s); committing what was stored", exc)
                offsets = {}
            self._store(consumer, offsets)
            commit = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            if commit:
                try:
                    consumer.commit(offsets=commit, asynchronous=False)
                except KafkaException as exc:
                    log.warning("commit on revoke failed: %s", exc)
        self._forget(tps)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        log.warning("lost %d partitions; their unfinished jobs will be re-delivered", len(tps))
        if not self._loop.is_closed():
            # Through the same FIFO as assignments: a session that expired (a
            # frozen broker) is lost and re-assigned in quick succession, and a
            # loss handled after the new assignment would drop its jobs for good.
            self._loop.call_soon_threadsafe(self._on_lost, tps)
        self._forget(tps)

    def _forget(self, tps: list[TP]) -> None:
        self.assignment.difference_update(tps)
        self.first_fetch.forget(tps)
        self._paused.difference_update(tps)
        with self._lock:
            for tp in tps:
                self._to_store.pop(tp, None)

    @staticmethod
    def _on_stats(stats: dict[str, Any]) -> None:
        try:
            for topic, body in stats.get("topics", {}).items():
                lag = 0
                for part in body.get("partitions", {}).values():
                    if part.get("partition", -1) >= 0 and part.get("fetch_state") == "active":
                        lag += max(0, int(part.get("consumer_lag_stored", 0)))
                metrics.CONSUMER_LAG.labels(topic).set(lag)
        except Exception as exc:  # stats are best effort
            log.debug("bad statistics: %s", exc)
