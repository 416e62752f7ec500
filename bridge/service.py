"""The bridge loop: take -> produce -> ack, plus heartbeats, recovery and promotion.

A plain single-threaded loop (the lag monitor has its own thread): each
iteration takes batches while fewer than ``max_batches_in_flight`` are
outstanding, hands each to Kafka in one call, serves delivery reports, and
acknowledges complete batches oldest first. It takes only when the lists may
hold jobs: :class:`bridge.sources.Rotation` forgets a list once a take left it
empty, until a wake-up, a promotion or a heartbeat rouses it. So waiting for
reports costs no Redis command, and a lone push costs one take call per queue.
With nothing to take and nothing in flight it blocks until a push or a due
delayed job wakes it (:mod:`bridge.wake`), not on a poll interval. When the
broker is unreachable the reports stop, the in-flight bound is reached and taking stops: Redis
buffers, nothing times out (``message.timeout.ms=0``), and the loop resumes by
itself when Kafka answers. SIGTERM (via :meth:`Bridge.stop`): stop taking,
wait for the outstanding reports, acknowledge, return anything left to ready.

At a low rate each job is taken in the write of the idle wait it ends (the
take sent ahead, :mod:`bridge.wake`), and its ack rides in the write of the
next one: a trickle of jobs costs the bridge one round trip to Redis a job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bridge.backlog import measure_backlog, publish_backlog
from bridge.batch import AckOrder, Batch, Source
from bridge.dead import encode_record
from bridge.delayed import Promoter
from bridge.fair import lag_allows
from bridge.lag import LagMonitor
from bridge.pace import Pace
from bridge.reaper import Reaper, default_bridge_name, new_bridge_id
from bridge.relay import Relay
from bridge.sources import Rotation, Taken
from bridge.take import Fenced, OutcomeUnknown, Taker
from bridge.wake import NOT_SENT, Waker, wake_client_name
from jobpipe import jobstatus, metrics
from jobpipe.connections import check_redis_safety, redis_client
from jobpipe.errors import ConfigError
from jobpipe.jobstatus import ADVANCE_LUA, advance_all_calls
from jobpipe.kept_connection import KeptConnection
from jobpipe.pipelined import run_script_calls
from jobpipe.redis_failures import REDIS_FAILURES, is_transient
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec

log = logging.getLogger(__name__)

# What an ack script call acknowledges: per in-flight list, (list, jobs, dead records).
Acks = list[tuple[Source, int, list[bytes]]]

MAX_BATCH_SIZE = 5000  # Lua unpack() limit is ~8000 values per call
BACKLOG_INTERVAL_S = 1.0
# A fair queue held back by its Kafka lag gets no wake-up when the lag drops:
# look again this often while one is held back.
LAG_RECHECK_S = 0.05
# run_until_idle checks for idleness at least this often.
IDLE_CHECK_S = 0.05
# While batches are in flight and the lists are empty, the longest wait for a
# report before looking whether a push woke the bridge (a select, no Redis command).
REPORT_SLICE_S = 0.001
# Longest wait for the reports of a trickle's take (bridge.pace), flushed at
# once: while Kafka is slow or away the loop goes on after it.
TRICKLE_FLUSH_S = 0.05
# At exit with refused credentials, how long reports may still come (over a
# connection authenticated before the refusals) before in-flight jobs go back.
REFUSED_REPORT_WAIT_S = 1.0
_ACK_AT_EXIT_FAILURES: tuple[type[Exception], ...] = (Fenced, OutcomeUnknown, *REDIS_FAILURES)


class Bridge:
    """Moves jobs from Redis lists to Kafka topics without losing any.

    Args:
        settings: where Redis and Kafka are, topology and ``[bridge]`` tuning.
        queues: names of the queues to bridge (default: all).
        bridge_id: a stable name for this bridge (``[A-Za-z0-9_-]``). A bridge
            started again under the same name returns its predecessor's
            in-flight jobs at once instead of after the heartbeat timeout.
        shutdown_timeout_s: on stop, how long to wait for Kafka's reports
            before returning unacknowledged jobs to ready (they may then be
            delivered twice, never lost).
    """

    def __init__(self, settings: Settings, queues: list[str] | None = None,
                 bridge_id: str | None = None, shutdown_timeout_s: float = 30.0) -> None:
        if settings.bridge.batch_size > MAX_BATCH_SIZE:
            raise ConfigError(f"bridge.batch_size: at most {MAX_BATCH_SIZE}")
        self.settings = settings
        self.specs: list[QueueSpec] = settings.topology.select(queues)
        self.name = bridge_id or default_bridge_name()
        self.bridge_id = new_bridge_id(self.name)
        self.shutdown_timeout_s = shutdown_timeout_s
        self._stop = threading.Event()
        self._acks = AckOrder()
        self._acked: dict[str, int] = defaultdict(int)
        self._sent: dict[str, int] = defaultdict(int)
        self._inflight: dict[str, int] = defaultdict(int)
        self._child = metrics.LabelChildren()  # a few metric updates per batch
        self._ready_total = 0
        self._log_at: dict[str, float] = {}
        # A take or ack may have run unseen: this id's lists are unknown until retired.
        self._unsure = False
        self._unregistered = False  # a new id not yet announced (after a fence)
        self._ahead: Taken = []  # what the take sent ahead of the last wait took, unsent
        # Settled batches (out of _acks) whose ack rides in the next idle wait's write.
        self._riding: tuple[Acks, list[list[Batch]]] | None = None

    # --- lifecycle ---------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to finish (safe from a signal handler or another thread)."""
        self._stop.set()
        waker: Waker | None = getattr(self, "_waker", None)  # None before run starts
        if waker is not None:
            waker.interrupt()

    def run(self) -> None:
        """Bridge until :meth:`stop`, then drain what is in flight and return."""
        self._start()
        try:
            while not self._stop.is_set():
                self._step_safely(self.settings.bridge.idle_wait_s)
        finally:
            self._shutdown()

    def run_until_idle(self, timeout_s: float) -> bool:
        """Bridge until nothing waits in the ready lists, no due delayed job
        remains and every batch is acknowledged, or ``timeout_s`` passes.

        Returns:
            True when idle was reached, False on timeout or :meth:`stop`.
        """
        deadline = time.monotonic() + timeout_s
        self._start()
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                busy = self._step_safely(min(IDLE_CHECK_S, self.settings.bridge.idle_wait_s))
                if not busy and self._idle():
                    return True
            return False
        finally:
            self._shutdown()

    def _start(self) -> None:
        s = self.settings
        ns = s.namespace
        # Never re-run by redis-py: a take or ack whose reply was lost is
        # OutcomeUnknown, settled by retiring this id (_step_safely).
        self._client = redis_client(s.redis, at_most_once=True)
        check_redis_safety(self._client, s.redis)
        self._tracked = {spec.name: spec for spec in self.specs if spec.track_status}
        self._advance = self._client.register_script(ADVANCE_LUA)
        queues = [spec.name for spec in self.specs]
        slots = [(spec.name, slot) for spec in self.specs for slot in spec.slots]
        self._reaper = Reaper(self._client, ns, slots, self.bridge_id,
                              s.bridge.heartbeat_timeout_s)
        self._reaper.register()
        earlier = self._reaper.claim_name(self.name)
        if earlier:
            log.info("bridge %s: recovering earlier incarnations %s", self.name, earlier)
        self._reaper.claim_lapsed()
        self._reaper.sweep()
        # The take, ack and state scripts of every batch: on one kept connection,
        # at a low rate one of each per job (jobpipe/kept_connection.py).
        self._kept = KeptConnection(self._client)
        self._taker = Taker(self._client, self.bridge_id, ns, self._kept)
        self._rotation = Rotation(self._client, ns, self.specs, self.bridge_id,
                                  s.bridge.batch_size)
        self._promoter = Promoter(self._client, ns, self.specs)
        self._waker = Waker(self._client, ns, self.specs, wake_client_name(self.name))
        # The ack rides with the wait where the take does (one queue, one slot), but
        # for queues with track_status: their states follow the ack at once.
        self._acks_ride = not self._tracked and self._rotation.planned_take(1) is not None
        self._relay = Relay(s, s.bridge.log_interval_s)
        self._pace = Pace()
        self._lag = LagMonitor(s, [q for q in self.specs if q.fair and q.max_kafka_lag],
                               lambda q: self._acked[q])
        self._lag.start()
        now = time.monotonic()
        self._next_beat = now + s.bridge.heartbeat_interval_s
        self._next_promote = now
        self._next_backlog = now
        log.info("bridge %s started on queues %s", self.bridge_id, ", ".join(queues))

    def _shutdown(self) -> None:
        # Refused credentials get no report (but see REFUSED_REPORT_WAIT_S); what
        # is in flight goes back to ready below.
        refused = self._relay.refusals.answer() is not None
        deadline = time.monotonic() + (REFUSED_REPORT_WAIT_S if refused
                                       else self.shutdown_timeout_s)
        try:
            # After a take or ack of unknown outcome an ack may trim jobs that are
            # not its own: the retire below returns every in-flight job instead.
            if not self._unsure:
                self._ack_riding()
                while len(self._acks) and time.monotonic() < deadline:
                    self._relay.poll(0.05)
                    self._settle_and_ack(time.monotonic())
        except _ACK_AT_EXIT_FAILURES as exc:
            log.warning("bridge %s: could not acknowledge at exit (%s)", self.bridge_id, exc)
        unacked = len(self._acks) > 0 or self._riding is not None
        try:
            moved = self._reaper.retire()
            if unacked or moved:
                log.warning("bridge %s: returned %d unacknowledged jobs to ready (Kafka may "
                            "also have them: at-least-once)", self.bridge_id, moved)
            # Lists no heartbeat swept yet (an incarnation of this bridge that was
            # fenced just before the exit): returned now, not at the next bridge's start.
            swept = self._reaper.sweep()
            if swept:
                log.warning("bridge %s: returned %d jobs of unregistered bridges to ready",
                            self.bridge_id, swept)
        except REDIS_FAILURES as exc:
            log.error("bridge %s: Redis failed at exit; another bridge will return its "
                      "in-flight jobs after the heartbeat timeout (%s)", self.bridge_id, exc)
        self._lag.stop()
        self._relay.flush(0)
        self._waker.close()
        self._client.close()
        log.info("bridge %s stopped", self.bridge_id)

    # --- the loop ----------------------------------------------------------------

    def _step_safely(self, idle_wait_s: float) -> bool:
        try:
            if self._unsure:  # before any take: the next ack would trim by a wrong count
                self._retire_unsure()
            if self._unregistered:  # a new id, announced here: Redis may fail (then again)
                self._reaper.register()
                self._unregistered = False
            return self._step(idle_wait_s)
        except Fenced:
            self._reincarnate("was presumed dead (missed heartbeats); its in-flight "
                              "batches were returned to ready by another bridge")
            return True
        except OutcomeUnknown as exc:
            log.warning("bridge %s: %s; its in-flight lists go back to ready once Redis "
                        "answers", self.bridge_id, exc)
            self._unsure = True
            self._relay.poll(0.5)
            return True
        except REDIS_FAILURES as exc:
            if not is_transient(exc):
                raise  # refused for good (NOPERM, credentials, a rejected script): stop
            self._log_once("redis", "Redis unavailable (%s); retrying", exc)
            self._relay.poll(0.5)
            self._rotation.rouse()
            return True

    def _step(self, idle_wait_s: float) -> bool:
        """One iteration; with nothing to do, wait up to ``idle_wait_s`` for work."""
        now = time.monotonic()
        b = self.settings.bridge
        if now >= self._next_beat:
            self._next_beat = now + b.heartbeat_interval_s
            self._heartbeat()
            self._rotation.rouse()  # a lapsed bridge's jobs may be back in the lists
        if now >= self._next_promote:
            self._next_promote = now + b.delayed_interval_s
            for q, promo in self._promoter.promote().items():
                metrics.JOBS_PROMOTED.labels(q).inc(promo.moved)
                self._rotation.rouse()
        if now >= self._next_backlog:
            self._next_backlog = now + BACKLOG_INTERVAL_S
            self._publish_backlog()
        if self._relay.fatal:
            self._relay.restart()
        refused = self._relay.refusals.answer()
        if refused is not None:
            raise refused  # the supervisor stops the command with it, in one line
        # Waiting for reports takes nothing: the rotation knows which lists a
        # take left empty, and only a wake-up (or the like) rouses them.
        took = self._take() if self._ahead or self._rotation.may_hold_jobs else 0
        if took or len(self._acks):
            trickle = bool(took) and not self._pace.pouring
            if trickle:
                self._relay.flush(TRICKLE_FLUSH_S)  # no linger for a trickle
            elif took:
                self._relay.poll(0)
            else:
                self._wait_for_report()
            self._settle_and_ack(time.monotonic(), ride=trickle)
            return True
        self._relay.poll(0)  # error callbacks
        self._wait_for_work(now, idle_wait_s)
        return bool(self._ahead)

    def _take(self) -> int:
        """Take batches while the in-flight bound allows and a list may hold
        jobs; returns how many. Lists that gave full batches stay due, so at the
        bound the rest is taken after an ack."""
        took = jobs = 0
        ahead, self._ahead = self._ahead, []
        if ahead:
            now = time.monotonic()
            for source, items in ahead:
                self._send(Batch(source, items, now))
                jobs += len(items)
            took += len(ahead)
        if self._rotation.may_hold_jobs:
            # No idle wait comes while lists may hold jobs: an ack waiting for one
            # goes on its own (else its batches would hold the in-flight bound).
            self._ack_riding()
        while not self._stop.is_set():
            room = self.settings.bridge.max_batches_in_flight - len(self._acks)
            if room <= 0:
                break
            got = self._rotation.take_next(self._taker.take_lists, self._lag_allows, room)
            if not got:
                break
            now = time.monotonic()
            for source, items in got:
                self._send(Batch(source, items, now))
                jobs += len(items)
            took += len(got)
        if jobs:
            self._pace.took(jobs, time.monotonic())
        return took

    def _lag_recheck_due(self, now: float) -> bool:
        held_since = self._rotation.held_since
        return held_since is not None and now >= held_since + LAG_RECHECK_S

    def _wait_for_report(self) -> None:
        """Batches are in flight and the lists were empty: serve Kafka's reports
        (``poll`` returns as soon as one is served) and, between slices, look at
        the armed wake-up, so a push is taken at once without a take per slice."""
        self._waker.arm(self.settings.bridge.idle_wait_s)
        self._relay.poll(REPORT_SLICE_S)
        if self._waker.woken() or self._lag_recheck_due(time.monotonic()):
            self._rotation.rouse()

    def _wait_for_work(self, now: float, idle_wait_s: float) -> None:
        """Block until a push, a due delayed job, the next heartbeat or ``idle_wait_s``."""
        longest_s = min(idle_wait_s, self._next_beat - now)
        held_since = self._rotation.held_since
        if held_since is not None:
            longest_s = min(longest_s, held_since + LAG_RECHECK_S - now)
        room = self.settings.bridge.max_batches_in_flight  # nothing is in flight
        planned = self._rotation.planned_take(room)
        ahead = None if planned is None else self._taker.take_command(
            planned, self.settings.bridge.batch_size)
        first = None if self._riding is None else (
            self._taker.ack_command(self._riding[0]), self._rode)
        if not self._waker.wait(max(longest_s, 0.0), ahead, first):
            self._next_promote = time.monotonic()  # a delayed job may be due now
        self._rotation.rouse()
        reply = self._waker.ahead_reply
        if planned is not None and reply is not NOT_SENT:
            taken = self._taker.taken_ahead(reply)
            if taken is not None:  # sent by the next _take, before any other take
                self._ahead = self._rotation.took_ahead(planned, taken)

    def _send(self, batch: Batch) -> None:
        q = batch.source.queue
        n = len(batch.items)
        self._acks.add(batch)
        self._sent[q] += n
        self._inflight[q] += n
        child = self._child
        child(metrics.BRIDGE_BATCH_SIZE, q).observe(n)
        child(metrics.BRIDGE_INFLIGHT, q).set(self._inflight[q])
        self._relay.send(batch)

    def _settle_and_ack(self, now: float, ride: bool = False) -> None:
        """Acknowledge the batches Kafka has; with ``ride``, in the next idle wait's
        write where it can (a trickle: the bridge waits next)."""
        self._ack_riding()
        for batch in self._acks:
            self._relay.settle(batch)
            self._relay.resend_due(batch, now)
        prefixes = self._acks.ackable()
        if not prefixes:
            return
        acks: Acks = []
        for prefix in prefixes:
            source: Source = prefix[0].source
            dead = [encode_record(d, source.key) for b in prefix for d in b.dead]
            acks.append((source, sum(len(b.items) for b in prefix), dead))
        if ride and self._acks_ride:
            for prefix in prefixes:
                self._acks.remove(prefix)
            self._riding = (acks, prefixes)
            return
        self._taker.ack(acks)
        for prefix in prefixes:
            self._acks.remove(prefix)
        self._record_acks(prefixes, now)

    def _ack_riding(self, acked: bool = False) -> None:
        """Send the ack waiting for an idle wait on its own, unless it was
        ``acked`` in one. Kept on a failure (sent again only if it surely did not
        run: after an unknown outcome the id is retired first, and
        :meth:`_reincarnate` drops it)."""
        if self._riding is not None:
            if not acked:
                self._taker.ack(self._riding[0])
            prefixes, self._riding = self._riding[1], None
            self._record_acks(prefixes, time.monotonic())

    def _rode(self, reply: Any) -> None:
        """Read the reply of the ack sent first in the idle wait's write
        (:data:`~bridge.wake.NOT_SENT`: not sent, so sent now on its own)."""
        self._ack_riding(acked=reply is not NOT_SENT and self._taker.acked_ahead(reply))

    def _record_acks(self, prefixes: Sequence[list[Batch]], now: float) -> None:
        """Bookkeeping for batches Redis acknowledged (out of :attr:`_acks` already)."""
        for prefix in prefixes:
            for batch in prefix:
                self._record_ack(batch, now)
        self._relay.healthy()
        if self._tracked:  # after the bookkeeping: a refusal here stops the bridge
            self._write_states(prefixes)

    def _write_states(self, prefixes: Sequence[list[Batch]]) -> None:
        """Jobs of queues with ``track_status`` are in Kafka now: script calls of at
        most :data:`~jobpipe.jobstatus.ADVANCE_MAX_JOBS` jobs, one round trip."""
        delivered: dict[str, list[bytes]] = {}
        for prefix in prefixes:
            if prefix[0].source.queue in self._tracked:
                dead = {d.raw for b in prefix for d in b.dead}
                delivered.setdefault(prefix[0].source.queue, []).extend(
                    raw for b in prefix for raw in b.items if raw not in dead)
        calls = []
        for q, raws in delivered.items():
            calls += advance_all_calls(self.settings.namespace, self._tracked[q], raws,
                                       jobstatus.IN_KAFKA)
        try:
            if calls:
                run_script_calls(self._client, self._advance, calls, self._kept)
        except REDIS_FAILURES as exc:
            if not is_transient(exc):
                raise
            log.warning("writing job states failed: %s", exc)  # a lookup is behind, nothing lost

    def _record_ack(self, batch: Batch, now: float) -> None:
        q = batch.source.queue
        n = len(batch.items)
        self._acked[q] += n
        self._inflight[q] -= n
        child = self._child
        child(metrics.BRIDGE_INFLIGHT, q).set(self._inflight[q])
        child(metrics.JOBS_BRIDGED, q).inc(n - len(batch.dead))
        child(metrics.PRODUCE_SECONDS, q).observe(now - batch.started_s)
        for dead in batch.dead:
            child(metrics.BRIDGE_DEAD, q, dead.reason).inc()
            log.error("job moved to the dead list of %s: %s (%s)", q, dead.reason, dead.error)

    def _lag_allows(self, spec: QueueSpec) -> bool:
        reading = self._lag.reading(spec.name)
        if reading is None:
            return lag_allows(None, 0, spec.max_kafka_lag)
        return lag_allows(reading.lag, self._sent[spec.name] - reading.acked_before,
                          spec.max_kafka_lag)

    # --- liveness ----------------------------------------------------------------

    def _heartbeat(self) -> None:
        if not self._reaper.beat():
            raise Fenced(self.bridge_id)
        lapsed = self._reaper.claim_lapsed()
        if lapsed:
            log.warning("bridges %s missed their heartbeat; returning their in-flight jobs",
                        lapsed)
        self._reaper.sweep()

    def _retire_unsure(self) -> None:
        """After a take or ack of unknown outcome: return every list of this id to
        ready and drop it from the owners sets (so a late script of it is fenced),
        then go on under a new id. What Kafka has of the dropped batches becomes
        duplicates. A failure here leaves the bridge unsure: tried again next step."""
        self._reaper.retire()
        self._unsure = False
        self._reincarnate("took or acknowledged with an unknown outcome; it returned its "
                          "in-flight lists to ready")

    def _reincarnate(self, why: str) -> None:
        """Drop every outstanding batch (its jobs are back in ready) and continue
        under a new id; rebinding rouses every list."""
        self._ahead = []  # taken under the old id: its retire, or whoever fenced it, returns it
        dropped = self._acks.clear()
        if self._riding is not None:
            dropped += [batch for prefix in self._riding[1] for batch in prefix]
            self._riding = None
        for batch in dropped:  # late delivery reports reach batches nothing acks any more
            self._inflight[batch.source.queue] -= len(batch.items)
        old = self.bridge_id
        self.bridge_id = new_bridge_id(self.name)
        log.warning("bridge %s %s (%d batches in flight); continuing as %s",
                    old, why, len(dropped), self.bridge_id)
        self._reaper.bridge_id = self.bridge_id
        self._taker.bridge_id = self.bridge_id
        self._rotation.rebind(self.bridge_id)
        self._unregistered = True  # announced by _step_safely, where a failure is retried

    # --- observation -------------------------------------------------------------

    def _publish_backlog(self) -> None:
        backlog = measure_backlog(self._client, self.settings.namespace, self.specs)
        publish_backlog(backlog)
        self._ready_total = sum(states["ready"] for states in backlog.values())

    def _idle(self) -> bool:
        if len(self._acks) or self._riding or self._rotation.empty_streak < 1:
            return False
        self._publish_backlog()
        return self._ready_total == 0 and self._promoter.due_count() == 0

    def _log_once(self, what: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._log_at.get(what, -1e9) >= self.settings.bridge.log_interval_s:
            self._log_at[what] = now
            log.warning(msg, *args)

    @property
    def acked_jobs(self) -> dict[str, int]:
        """Jobs acknowledged by Kafka (or dead-listed) per queue, by this bridge."""
        return dict(self._acked)
