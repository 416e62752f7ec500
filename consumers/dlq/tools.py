"""DLQ tools: list, show, replay and purge a queue's dead-letter topic.

Reading never joins a consumer group: partitions are assigned directly and
read up to the end they had when the command started. Replay progress lives
in Kafka (see :mod:`consumers.dlq.progress`) and is committed only after Kafka
acknowledged every replayed job, so an interrupted replay is resumed, never
repeated. Purge deletes a prefix of each partition (Kafka can delete nothing
else), up to the end or up to a time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from consumers.dlq.progress import ReplayProgress
from consumers.dlq.record import DlqFilter, DlqRecord, make_record, replay_generation, replayed
from jobpipe import jobstatus, names
from jobpipe.connections import (
    kafka_admin_config,
    kafka_consumer_config,
    kafka_producer_config,
    redis_client,
)
from jobpipe.envelope import now_ns
from jobpipe.errors import ConfigError, KafkaUnavailable
from jobpipe.kafka_metadata import BrokerWatch, fetch_metadata
from jobpipe.pipelined import run_script_calls
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Listed:
    """A DLQ record and whether it was already replayed."""

    record: DlqRecord
    replayed: bool


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What a replay did.

    Attributes:
        replayed: job ids sent back to the main topic, in order.
        already: matching records skipped because an earlier replay sent them.
        not_jobs: matching records that are not jobs (cannot be replayed).
        deferred: matching records left for the next run (progress too scattered
            to record in one commit).
    """

    replayed: list[str]
    already: int
    not_jobs: int
    deferred: int

    def summary(self) -> str:
        """One line for the operator (``jobpipe dlq replay``, the dashboard)."""
        return (f"replayed {len(self.replayed)} job(s); {self.already} already replayed, "
                f"{self.not_jobs} not jobs, {self.deferred} left for the next run")


class _Dlq:
    """The DLQ topic of one queue, with a client of the replay group."""

    def __init__(self, settings: Settings, spec: QueueSpec) -> None:
        self.settings = settings
        self.spec = spec
        self.topic = names.dlq_topic(settings.namespace, spec.name)
        group = names.group_id(settings.namespace, "dlq-replay")
        self._watch = BrokerWatch(self.settings.kafka.bootstrap)
        self.consumer = Consumer(kafka_consumer_config(
            settings.kafka, group, **{"enable.auto.commit": False, "enable.partition.eof": True},
            **self._watch.config()))
        self.skipped = 0

    def close(self) -> None:
        self.consumer.close()

    def partitions(self) -> dict[int, tuple[int, int]]:
        """Each partition's (low, high) watermark offsets."""
        meta = fetch_metadata(self.consumer, self._watch, TIMEOUT_S, self.topic)
        topic = meta.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise ConfigError(f"DLQ topic {self.topic} does not exist (run: jobpipe topics "
                              "apply)")
        return {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                       timeout=TIMEOUT_S)
                for p in sorted(topic.partitions)}

    def progress(self, bounds: dict[int, tuple[int, int]]) -> dict[int, ReplayProgress]:
        """Replay progress of each partition."""
        committed = self.consumer.committed([TopicPartition(self.topic, p) for p in bounds],
                                            timeout=TIMEOUT_S)
        out = {}
        for tp in committed:
            progress = ReplayProgress.decode(max(tp.offset, 0), tp.metadata)
            progress.floor(bounds[tp.partition][0])
            out[tp.partition] = progress
        return out

    def read(self, flt: DlqFilter, bounds: dict[int, tuple[int, int]],
             skip: dict[int, ReplayProgress] | None = None) -> list[DlqRecord]:
        """Matching records, oldest first, at most ``flt.limit``. Matching records
        already done in ``skip`` are counted in ``self.skipped`` instead."""
        starts = {p: low for p, (low, high) in bounds.items() if high > low}
        if flt.since_ms is not None and starts:
            found = self.consumer.offsets_for_times(
                [TopicPartition(self.topic, p, flt.since_ms) for p in starts], timeout=TIMEOUT_S)
            starts = {tp.partition: max(tp.offset, starts[tp.partition])
                      for tp in found if tp.offset >= 0}
        todo = {p for p, start in starts.items() if start < bounds[p][1]}
        if not todo:
            return []
        self.consumer.assign([TopicPartition(self.topic, p, starts[p]) for p in todo])
        found_by_p: dict[int, list[DlqRecord]] = {p: [] for p in todo}
        deadline = time.monotonic() + TIMEOUT_S
        while todo:
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"reading {self.topic} timed out after {TIMEOUT_S}s")
            for msg in self.consumer.consume(500, timeout=0.5):
                p, offset = msg.partition(), msg.offset()
                err = msg.error()
                if p is None or offset is None or p not in todo:
                    if err is not None:
                        log.warning("reading %s: %s", self.topic, err)
                    continue
                if err is None and offset < bounds[p][1]:
                    _, ts_ms = msg.timestamp()
                    record = make_record(p, offset, ts_ms, msg.key(), msg.value() or b"",
                                         msg.headers())
                    if flt.matches(record):
                        if skip is not None and skip[p].is_done(offset):
                            self.skipped += 1
                        else:
                            found_by_p[p].append(record)
                if offset + 1 >= bounds[p][1] or (flt.limit and len(found_by_p[p]) >= flt.limit):
                    todo.discard(p)
        self.consumer.unassign()
        records = sorted((r for rs in found_by_p.values() for r in rs),
                         key=lambda r: (r.timestamp_ms, r.partition, r.offset))
        return records[: flt.limit] if flt.limit else records


def list_records(settings: Settings, spec: QueueSpec, flt: DlqFilter) -> list[Listed]:
    """The DLQ records of ``spec`` matching ``flt``, oldest first.

    Raises:
        ConfigError: the DLQ topic does not exist.
        KafkaUnavailable: Kafka did not answer.
    """
    dlq = _Dlq(settings, spec)
    try:
        bounds = dlq.partitions()
        progress = dlq.progress(bounds)
        return [Listed(r, progress[r.partition].is_done(r.offset))
                for r in dlq.read(flt, bounds)]
    finally:
        dlq.close()


def replay_records(settings: Settings, spec: QueueSpec, flt: DlqFilter) -> ReplayReport:
    """Send matching, not yet replayed DLQ jobs back to their main topic.

    Each job keeps its id, restarts at attempt 1 and has ``meta["replayed_at"]``
    and ``meta["replays"]`` set; its error history is kept. Progress is
    committed after Kafka acknowledged the jobs, so running it again never
    sends a job twice.

    Raises:
        ConfigError: the DLQ topic does not exist.
        KafkaUnavailable: Kafka did not answer or refused a job (progress of
            the acknowledged ones is kept).
    """
    dlq = _Dlq(settings, spec)
    producer = Producer(kafka_producer_config(settings.kafka))
    try:
        bounds = dlq.partitions()
        progress = dlq.progress(bounds)
        todo = dlq.read(flt, bounds, skip=progress)
        sent, not_jobs, deferred = _send(settings, spec, producer, todo, progress)
        acked: list[DlqRecord] = []
        failures: list[str] = []
        for record, outcome in sent:
            if outcome:
                failures.append(f"{record.ref}: {outcome}")
            else:
                acked.append(record)
        commit = {}
        for record in acked:
            progress[record.partition].mark(record.offset)
            commit[record.partition] = progress[record.partition]
        if commit:
            dlq.consumer.commit(offsets=[
                TopicPartition(dlq.topic, p, prog.watermark, metadata=prog.encode())
                for p, prog in commit.items()], asynchronous=False)
        if spec.track_status:
            _record_in_kafka(settings, spec, acked)
        if failures:
            raise KafkaUnavailable(f"{len(failures)} jobs not replayed ({failures[0]}); "
                                   f"{len(acked)} were")
        return ReplayReport([r.job.id for r in acked if r.job], dlq.skipped, not_jobs, deferred)
    finally:
        producer.flush(TIMEOUT_S)
        dlq.close()


def _record_in_kafka(settings: Settings, spec: QueueSpec, acked: list[DlqRecord]) -> None:
    """Move the replayed jobs' state records to "in Kafka" of their new generation
    (out of "failed", and past an old cancel request). Best effort, like every
    stage's state write: the worker's next write moves them on anyway."""
    updates = [jobstatus.Update(r.job.id, jobstatus.IN_KAFKA, 1, {}, replay_generation(r.job))
               for r in acked if r.job is not None]
    if not updates:
        return
    client = redis_client(settings.redis)
    try:
        run_script_calls(client, client.register_script(jobstatus.ADVANCE_LUA),
                         jobstatus.advance_calls(settings.namespace, spec, updates))
    except Exception as exc:  # the jobs are replayed: a stale record must not undo that
        log.warning("replay: writing the replayed jobs' states failed: %s", exc)
    finally:
        client.close()


def _send(settings: Settings, spec: QueueSpec, producer: Producer, todo: list[DlqRecord],
          progress: dict[int, ReplayProgress]) -> tuple[list[tuple[DlqRecord, str]], int, int]:
    """Produce each replayable record; return (record, error or "") pairs once every
    delivery report is in, and the counts of non-jobs and deferred records."""
    outcomes: dict[tuple[int, int], str] = {}
    sent: list[DlqRecord] = []
    not_jobs = deferred = 0
    trial = {p: ReplayProgress(prog.watermark, set(prog.done)) for p, prog in progress.items()}
    for record in todo:
        if record.job is None:
            not_jobs += 1
            continue
        trial[record.partition].mark(record.offset)
        if not trial[record.partition].fits():
            deferred += 1
            trial[record.partition].done.discard(record.offset)
            continue
        level = min(record.job.priority, len(spec.priorities) - 1)

        def on_delivery(err: object, _msg: object, where: tuple[int, int] = (
                record.partition, record.offset)) -> None:
            outcomes[where] = "" if err is None else str(err)

        producer.produce(names.main_topic(settings.namespace, spec.name, level),
                         value=replayed(record.job, now_ns()), key=record.key,
                         on_delivery=on_delivery)
        sent.append(record)
        producer.poll(0)
    if producer.flush(TIMEOUT_S) > 0:
        log.warning("replay: some jobs were not acknowledged in %ss", TIMEOUT_S)
    return ([(r, outcomes.get((r.partition, r.offset), "no acknowledgement"))
             for r in sent], not_jobs, deferred)


def purge_records(settings: Settings, spec: QueueSpec,
                  before_ms: int | None = None) -> dict[int, int]:
    """Delete DLQ records: all of them, or those written before ``before_ms``.

    Returns:
        Records deleted per partition.
    """
    dlq = _Dlq(settings, spec)
    try:
        bounds = dlq.partitions()
        ends = {p: high for p, (_low, high) in bounds.items()}
        if before_ms is not None:
            found = dlq.consumer.offsets_for_times(
                [TopicPartition(dlq.topic, p, before_ms) for p in bounds], timeout=TIMEOUT_S)
            ends = {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition]
                    for tp in found}
    finally:
        dlq.close()
    targets = [TopicPartition(dlq.topic, p, end) for p, end in ends.items()
               if end > bounds[p][0]]
    if not targets:
        return {}
    admin = AdminClient(kafka_admin_config(settings.kafka))
    deleted: dict[int, int] = {}
    for tp, future in admin.delete_records(targets, request_timeout=TIMEOUT_S).items():
        try:
            low = future.result().low_watermark
        except KafkaException as exc:
            raise KafkaUnavailable(f"could not purge {dlq.topic}[{tp.partition}]: {exc}") from exc
        deleted[tp.partition] = low - bounds[tp.partition][0]
    return deleted
