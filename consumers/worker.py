"""The Worker: one process's consumer, admission, runners and controls, wired together.

    worker = Worker(settings, app, queues=["email"])
    worker.run()                  # until SIGTERM / SIGINT / stop()
    worker.run_until_idle(30.0)   # tests and the load test

Shutdown (SIGTERM or ``stop()``): stop fetching, drop jobs not yet started,
let running jobs finish for up to ``shutdown_timeout_s``, store and commit
what finished, close. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections import deque

import uvloop
from confluent_kafka import Message

from consumers.accounting import BatchMetrics
from consumers.admission import Admission
from consumers.cancelling import cancel_until_ended
from consumers.control import Controls
from consumers.fetcher import TP, Fetcher
from consumers.first_fetch import START_HOLD_MAX_S
from consumers.followup import FollowUps
from consumers.heartbeat import heartbeat_loop, worker_id
from consumers.idempotency import DoneMarkers
from consumers.idle import caught_up
from consumers.lanes import Lane, Lanes
from consumers.offsets import TPO, OffsetTracker
from consumers.producing import DeliveringProducer
from consumers.ratelimit import RateLimiter
from consumers.redis_trouble import RedisTrouble
from consumers.registry import App
from consumers.retry.relay import RetryRelay
from consumers.retry.sink import FailureSink
from consumers.runner import Runner
from consumers.states import JobStates
from jobpipe import names
from jobpipe.connections import async_redis_client, check_redis_at_start_async
from jobpipe.errors import ConfigError, JobpipeError
from jobpipe.gc_tuning import collect_young_less_often
from jobpipe.settings import Settings

log = logging.getLogger(__name__)
IDLE_QUIET_S = 0.3  # run_until_idle: locally idle this long before asking the broker


class Worker:
    """Runs an :class:`App`'s handlers on jobs of some queues.

    Args:
        settings: all settings.
        app: the handlers.
        queues: queue names to serve (default: every declared queue).
        retry_relay: also run the retry relay of these queues in this process.
    """

    def __init__(self, settings: Settings, app: App, queues: list[str] | None = None,
                 retry_relay: bool = True) -> None:
        self.settings = settings
        self.app = app
        self.specs = settings.topology.select(queues)
        self.retry_relay = retry_relay
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._revoked: set[TP] = set()  # partitions given up, until assigned again

    # --- public ------------------------------------------------------------------------

    def run(self) -> None:
        """Run until SIGTERM, SIGINT or :meth:`stop`; returns after a clean shutdown."""
        collect_young_less_often()
        uvloop.run(self._main(idle_timeout_s=None, signals=True))

    async def async_run(self) -> None:
        """Run on the caller's event loop (any thread) until :meth:`stop`; installs no
        signal handlers, for embedding."""
        await self._main(idle_timeout_s=None, signals=False)

    def run_until_idle(self, timeout_s: float = 60.0) -> bool:
        """Run until no job is waiting (group lag 0 on its topics), none is running and
        offsets are committed; ``False`` if that did not happen within ``timeout_s``."""
        collect_young_less_often()
        return bool(uvloop.run(self._main(idle_timeout_s=timeout_s, signals=False)))

    def stop(self) -> None:
        """Ask a running worker to shut down gracefully (any thread)."""
        self._stop_requested.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)

    # --- one process -------------------------------------------------------------------

    async def _main(self, idle_timeout_s: float | None, signals: bool) -> bool:
        loop = asyncio.get_running_loop()
        self._loop, self._stopping = loop, asyncio.Event()
        if self._stop_requested.is_set():
            self._stopping.set()
        s, ns = self.settings, self.settings.namespace
        lane_list = [Lane(spec, level, names.main_topic(ns, spec.name, level))
                     for spec in self.specs for level in spec.levels]
        lanes = Lanes(lane_list, buffer_max=max(2 * s.worker.batch_max, 2 * s.worker.concurrency))
        lanes.held = True  # until the first fetches are in (see consumers.first_fetch)
        redis = async_redis_client(s.redis)
        try:  # wrong credentials would otherwise only warn once a second, forever
            await check_redis_at_start_async(redis, s.redis)
        except JobpipeError:
            await redis.aclose()  # type: ignore[attr-defined]
            raise
        producer = DeliveringProducer(s.kafka)
        stats, tracker = BatchMetrics(), OffsetTracker()
        sink = FailureSink(producer, ns)
        trouble = RedisTrouble(stop=self._stopping.set)  # a refusal ends this run
        controls, limiter = Controls(redis, ns, self.specs), RateLimiter(redis, ns, trouble)
        states = JobStates(redis, ns, self.specs, trouble)
        arrivals: deque[list[Message]] = deque()
        arrived = asyncio.Event()

        def on_messages(msgs: list[Message]) -> None:
            arrivals.append(msgs)
            arrived.set()

        refused: list[ConfigError] = []  # by Kafka, for good: this run ends with it
        stop_run = self._stopping.set

        def on_refused(error: ConfigError) -> None:
            log.error("%s; stopping", error)
            refused.append(error)
            stop_run()

        # The fetcher's rebalance callbacks reach the runner built just below;
        # its thread (the only caller) starts once both exist.
        fetcher = Fetcher(s, [lane.topic for lane in lane_list], loop, on_messages,
                          lambda tps: self._revoke(runner, tps),
                          lambda tps: self._lose(runner, tps), self._revoked.difference_update,
                          on_refused)
        control_topics: set[str] = set()

        def push_pause() -> None:
            fetcher.set_paused_topics(control_topics | lanes.full_topics())

        delivering: set[TPO] = set()  # one set: bad input and failures alike
        # One for admission's reads and the runner's writes: one connection of its own.
        markers = DoneMarkers(redis, ns)
        runner = Runner(lanes, tracker, sink, FollowUps(producer, s.topology, ns, loop),
                        markers, limiter, stats, s.worker.concurrency,
                        store=fetcher.store, delivering=delivering, on_pause_change=push_pause,
                        states=states if states.tracked else None, trouble=trouble)
        admission = Admission(self.app, lanes.by_topic, markers, sink, controls,
                              stats, runner.settle, tracker, runner.delivered, delivering,
                              states if states.tracked else None, runner.cancelled, trouble)
        tasks = runner.start()

        async def admission_loop() -> None:
            while True:
                if not arrivals:
                    arrived.clear()
                    await arrived.wait()
                    continue
                msgs = arrivals.popleft()
                taken = len(msgs)
                if self._revoked:
                    # Fetched before their partition was lost or revoked: not ours.
                    # Tracking them would leave offsets that never complete, and
                    # hold that partition's commits for good if it comes back.
                    msgs = [m for m in msgs if (m.topic(), m.partition()) not in self._revoked]
                items = await admission.prepare(msgs) if msgs else []
                fetcher.prepared += taken
                if self._revoked:  # lost or revoked while they were being prepared
                    items = [i for i in items if (i.topic, i.partition) not in self._revoked]
                if self._stopping is not None and self._stopping.is_set():
                    continue  # not started, not stored: re-delivered after restart
                for item in items:
                    lanes.push(item)
                if lanes.changed:
                    push_pause()
                runner.wake(len(items))

        async def control_loop() -> None:
            while controls is not None:
                try:
                    await controls.refresh()
                except Exception as exc:
                    trouble.note("reading pause flags", exc)
                paused = {sp.name for sp in self.specs if controls.is_queue_paused(sp.name)}
                resumed = False
                for lane in lane_list:
                    was, lane.paused = lane.paused, lane.spec.name in paused
                    resumed |= was and not lane.paused
                control_topics.clear()
                control_topics.update(ln.topic for ln in lane_list if ln.paused)
                push_pause()
                if resumed:
                    runner.wake(len(runner.slots))
                await asyncio.sleep(min(1.0, s.worker.control_interval_s))

        async def release_when_fetched() -> None:
            # Every partition's first fetch is in the lanes (or the wait is over):
            # from here the lottery draws among all the lanes that hold work.
            deadline = time.monotonic() + START_HOLD_MAX_S
            while time.monotonic() < deadline:
                fetched = fetcher.first_fetched
                if fetched is not None and fetcher.prepared >= fetched:
                    break
                await asyncio.sleep(0.01)
            lanes.held = False
            runner.wake(len(runner.slots))

        tasks += [asyncio.create_task(admission_loop(), name="admission"),
                  asyncio.create_task(control_loop(), name="pause-flags"),
                  asyncio.create_task(release_when_fetched(), name="first-fetch"),
                  asyncio.create_task(heartbeat_loop(redis, ns, worker_id(), trouble),
                                      name="heartbeat")]
        relay_stop, relay_thread = self._start_relay()
        fetcher.start()
        if signals:
            self._install_signals(loop)
        log.info("worker %d serving %s (concurrency %d)", os.getpid(),
                 ", ".join(sp.name for sp in self.specs), s.worker.concurrency)
        idle = False
        try:
            if idle_timeout_s is None:
                await self._stopping.wait()
            else:
                idle = await self._wait_idle(idle_timeout_s, arrivals, fetcher, runner, lanes,
                                             producer)
        finally:
            await self._shutdown(fetcher, runner, lanes, arrivals, producer, tasks)
            relay_stop.set()
            if relay_thread is not None:
                await asyncio.to_thread(relay_thread.join, 30)
            await redis.aclose()  # type: ignore[attr-defined]
        refusal = trouble.refusal or next(iter(refused), None)
        if refusal is not None:
            raise refusal  # one line from the CLI or the supervisor, as at start
        return idle

    async def _revoke(self, runner: Runner, tps: list[TP]) -> dict[TP, int]:
        gone = set(tps)
        self._revoked |= gone
        runner.lanes.drop(lambda i: (i.topic, i.partition) in gone)
        deadline = time.monotonic() + self.settings.worker.revoke_timeout_s
        while runner.busy(gone) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await runner.flush()
        offsets = {}
        for tp in tps:
            committable = runner.tracker.partition(*tp).committable
            if committable is not None:
                offsets[tp] = committable
            runner.tracker.drop(*tp)
        log.info("revoked %d partitions, storing %d offsets", len(tps), len(offsets))
        return offsets

    def _lose(self, runner: Runner, tps: list[TP]) -> None:
        gone = set(tps)
        self._revoked |= gone
        runner.lanes.drop(lambda i: (i.topic, i.partition) in gone)
        for tp in tps:
            runner.tracker.drop(*tp)

    async def _wait_idle(self, timeout_s: float, arrivals: deque[list[Message]],
                         fetcher: Fetcher, runner: Runner, lanes: Lanes,
                         producer: DeliveringProducer) -> bool:
        assert self._stopping is not None
        deadline = time.monotonic() + timeout_s
        ns = self.settings.namespace
        main = [lane.topic for lane in lanes.all]
        retry = ([t for sp in self.specs for t in sp.retry_topics(ns)]
                 if self.retry_relay else [])
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and not self._stopping.is_set():
            await asyncio.sleep(0.05)
            if (arrivals or fetcher.handed != fetcher.prepared or lanes.waiting()
                    or runner.busy() or runner.has_unflushed() or producer.pending()):
                quiet_since = time.monotonic()
                continue
            # Ask the broker only after a quiet spell: the check blocks the fetcher
            # thread, and a busy process is idle for a moment between every fetch.
            if time.monotonic() - quiet_since < IDLE_QUIET_S:
                continue
            quiet_since = time.monotonic()
            await runner.flush()
            try:
                if await fetcher.call(lambda c: caught_up(c, self.settings, main, retry)):
                    return True
            except Exception as exc:
                log.debug("idle check failed: %s", exc)
        return False

    async def _shutdown(self, fetcher: Fetcher, runner: Runner, lanes: Lanes,
                        arrivals: deque[list[Message]], producer: DeliveringProducer,
                        tasks: list[asyncio.Task[None]]) -> None:
        log.info("shutting down: finishing running jobs")
        assert self._stopping is not None
        self._stopping.set()
        fetcher.fetching = False
        dropped = lanes.drop(lambda i: True)
        fetcher.prepared += sum(len(m) for m in arrivals)
        arrivals.clear()
        deadline = time.monotonic() + self.settings.worker.shutdown_timeout_s
        while runner.busy() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if runner.busy():
            log.warning("shutdown timeout: abandoning running jobs (they will be re-delivered)")
        await runner.flush()
        await cancel_until_ended(tasks)
        fetcher.stop()
        await asyncio.to_thread(fetcher.join)
        await asyncio.to_thread(producer.close)
        runner.close()
        log.info("worker stopped (%d waiting jobs left for re-delivery)", dropped)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        def on_signal(signum: int) -> None:
            assert self._stopping is not None
            if self._stopping.is_set():
                log.warning("second signal: exiting at once")
                os._exit(1)
            log.info("signal %d: graceful shutdown", signum)
            self._stopping.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)

    def _start_relay(self) -> tuple[threading.Event, threading.Thread | None]:
        stop = threading.Event()
        if not self.retry_relay:
            return stop, None
        relay = RetryRelay(self.settings, self.specs)
        thread = threading.Thread(target=relay.run, args=(stop,), name="jobpipe-retry-relay",
                                  daemon=True)
        thread.start()
        return stop, thread
