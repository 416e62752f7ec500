"""Admission: turn a batch of Kafka messages into runnable jobs.

Each message is decoded once (orjson). Bad input never stops a partition: an
undecodable envelope, an unknown task or a job on the wrong queue's topic goes
to the DLQ with its reason code. Redeliveries of completed jobs are found with
one read per queue per batch and skipped: an ``MGET`` of done markers, or on a
queue with ``track_status`` the batch's records, which also name the jobs someone
asked to cancel (skipped too). Jobs of a paused tenant are parked in Redis. Everything not
runnable is handed to ``settle`` (offset done) once it is safely elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, Message

from consumers.accounting import BatchMetrics
from consumers.control import Controls
from consumers.idempotency import DoneMarkers
from consumers.lanes import Item, Lane
from consumers.offsets import TPO, OffsetTracker
from consumers.redis_trouble import RedisTrouble
from consumers.registry import App
from consumers.retry.sink import FailureSink, MessageOrigin
from consumers.states import JobStates
from jobpipe.envelope import decode, encode
from jobpipe.errors import EnvelopeError
from jobpipe.jobstatus import cancel_asked
from jobpipe.routing import tenant_or_default

log = logging.getLogger(__name__)


def _unset(offset: int) -> None:
    raise AssertionError("no partition yet")


class Admission:
    """Prepares message batches for the lanes.

    Args:
        app: the handlers.
        lanes_by_topic: lane of each main topic.
        markers: done markers.
        sink: where bad input is dead-lettered.
        controls: queue and tenant pause state (:mod:`consumers.control`), or ``None``.
        stats: batch metrics.
        settle: called on the loop with ``(topic, partition, offset)`` of a
            message that needs no run (duplicate, parked, dead-lettered).
        tracker: where the offset of every message taken in is recorded.
        delivered: wraps a loop callback so the producer thread may call it.
        delivering: records of bad input waiting for Kafka to take them to the
            DLQ; shared with the runner, which settles them.
        states: job states of queues with ``track_status``, or ``None``.
        cancelled: accounts for a job skipped because it was cancelled.
    """

    def __init__(self, app: App, lanes_by_topic: dict[str, Lane], markers: DoneMarkers,
                 sink: FailureSink, controls: Controls | None, stats: BatchMetrics,
                 settle: Callable[[TPO], None], tracker: OffsetTracker,
                 delivered: Callable[[TPO], Callable[[], None]], delivering: set[TPO],
                 states: JobStates | None = None,
                 cancelled: Callable[[Item], None] | None = None,
                 trouble: RedisTrouble | None = None) -> None:
        self._trouble = trouble or RedisTrouble()
        self._tasks = app.tasks
        self._lanes = lanes_by_topic
        self._markers = markers
        self._sink = sink
        self._controls = controls
        self._stats = stats
        self._settle = settle
        self._tracker = tracker
        self._delivered = delivered
        self._states = states
        self._cancelled = cancelled
        self.delivering = delivering

    async def prepare(self, msgs: list[Message]) -> list[Item]:
        """Decode, check and de-duplicate one batch; returns the runnable jobs in order."""
        by_queue: dict[str, list[Item]] = {}
        tasks, lanes, tracker = self._tasks, self._lanes, self._tracker
        # A batch comes in runs of one partition: look up its tracker, lane and
        # queue list once per run, not once per message.
        run_topic, run_partition = "", -1
        add: Callable[[int], None] = _unset
        lane: Lane | None = None
        queue_items: list[Item] = []
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", err)
                continue
            topic: str = msg.topic()  # type: ignore[assignment]  # set on every message
            partition: int = msg.partition()  # type: ignore[assignment]
            offset: int = msg.offset()  # type: ignore[assignment]
            if partition != run_partition or topic != run_topic or lane is None:
                run_topic, run_partition = topic, partition
                add = tracker.partition(topic, partition).add
                lane = lanes[topic]
                queue_items = by_queue.setdefault(lane.spec.name, [])
            add(offset)
            raw = msg.value() or b""
            try:
                job = decode(raw)
            except EnvelopeError as exc:
                self._dead(lane, raw, exc.reason, str(exc), (topic, partition, offset), msg)
                continue
            if job.queue != lane.spec.name:
                self._dead(lane, raw, "unknown_queue",
                           f"job {job.id} names queue {job.queue!r} but came from {topic}",
                           (topic, partition, offset), msg)
                continue
            task = tasks.get(job.task)
            if task is None:
                self._dead(lane, raw, "unknown_task", f"no handler for task {job.task!r}",
                           (topic, partition, offset), msg)
                continue
            queue_items.append(Item(topic, partition, offset, msg.key(), job, task, lane,
                                    msg.timestamp()[1]))
        runnable: list[Item] = []
        for queue, items in by_queue.items():
            if not items:
                continue
            if self._states is not None and queue in self._states.tracked:
                # One read says both which jobs are cancelled and (where the records
                # stand in for done markers) which are done.
                try:
                    records = await self._states.records(queue, [i.job.id for i in items])
                except Exception as exc:  # run them: at-least-once beats stalling
                    self._trouble.note("reading job records (running the batch unchecked)",
                                       exc)
                    runnable.extend(items)
                    continue
                fresh = await self._unseen(queue, items, records)
                runnable.extend(self._not_cancelled(fresh, {
                    item.job.id for item, record in zip(items, records, strict=True)
                    if cancel_asked(record)}))
            else:
                runnable.extend(await self._unseen(queue, items))
        controls = self._controls
        if (controls is not None and runnable
                and any(controls.has_paused_tenants(q) for q in by_queue)):
            runnable = await self._park_paused(controls, runnable)
        return runnable

    async def _unseen(self, queue: str, items: list[Item],
                      records: Sequence[bytes | None] | None = None) -> list[Item]:
        spec = items[0].lane.spec
        if spec.idempotency_ttl_s <= 0:
            return items
        try:
            seen = await self._markers.seen(spec, [i.job for i in items], records)
        except Exception as exc:  # Redis trouble: run them (at-least-once beats stalling)
            self._trouble.note("idempotency check (running the batch unchecked)", exc)
            return items
        fresh = [i for i, s in zip(items, seen, strict=True) if not s]
        if len(fresh) != len(items):
            for item, s in zip(items, seen, strict=True):
                if s:
                    log.debug("job %s already done: skipped", item.job.id)
                    self._settle((item.topic, item.partition, item.offset))
            self._stats.duplicates(queue, len(items) - len(fresh))
        return fresh

    def _not_cancelled(self, items: list[Item], cancel_asked: set[str]) -> list[Item]:
        """``items`` but those someone asked to cancel (each accounted as cancelled)."""
        assert self._cancelled is not None
        if not cancel_asked:
            return items
        keep = []
        for item in items:
            if item.job.id in cancel_asked:
                self._cancelled(item)
            else:
                keep.append(item)
        return keep

    async def _park_paused(self, controls: Controls, items: list[Item]) -> list[Item]:
        keep: list[Item] = []
        for item in items:
            queue, tenant = item.job.queue, tenant_or_default(item.job.tenant)
            if not controls.is_tenant_paused(queue, tenant):
                keep.append(item)
                continue
            await controls.park(encode(item.job), queue, tenant)
            log.info("job %s of paused tenant %s parked", item.job.id, tenant)
            self._settle((item.topic, item.partition, item.offset))
        return keep

    def _dead(self, lane: Lane, raw: bytes, reason: str, message: str, tpo: TPO,
              msg: Message) -> None:
        topic, partition, offset = tpo
        log.error("dead-lettering %s[%d]@%d: %s", topic, partition, offset, message)
        self._stats.dead_lettered(lane.spec.name, reason)
        self.delivering.add(tpo)
        self._sink.dead_letter(lane.spec.name, raw, reason, message,
                               MessageOrigin(topic, partition, offset, msg.key()),
                               self._delivered(tpo))
