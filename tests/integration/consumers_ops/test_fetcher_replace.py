"""A worker's consumer whose group membership is stuck is replaced, against real Kafka:
its partitions are reported lost, a new member takes them over, and every message
is fetched again from the last committed offset."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from consumers.fetcher import TP, Fetcher
from consumers.group_health import GroupHealth
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.envelope import encode
from jobpipe.settings import Settings
from tests.integration.consumers_ops.conftest import make_job, produce

pytestmark = pytest.mark.integration


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


async def _no_revoke(tps: list[TP]) -> dict[TP, int]:
    return {}


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("worker", [
    pytest.param({"membership": "dynamic"}, id="dynamic"),
    # Static membership: the new consumer must take over the same member name,
    # the one claimed on this host (the default) or one given.
    pytest.param({}, id="static-claimed"),
    pytest.param({"instance_id": "replace-test"}, id="static-named"),
])
def test_a_stuck_consumer_is_replaced_and_its_partitions_fetched_again(
        make_settings, kafka_cleanup, loop, worker):
    settings: Settings = make_settings(queues={"default": {"partitions": 2}}, worker=worker)
    apply_topics(settings)
    topic = names.main_topic(settings.namespace, "default")
    fetched: list[bytes] = []
    lost: list[TP] = []
    fetcher = Fetcher(settings, [topic], loop,
                      # Partition-end events (enable.partition.eof) come along; they are no jobs.
                      lambda msgs: fetched.extend(m.value() for m in msgs if m.error() is None),
                      _no_revoke, lost.extend, lambda tps: None, lambda error: None)
    fetcher.start()
    try:
        jobs = [make_job() for _ in range(10)]
        produce(settings, topic, [(None, encode(j)) for j in jobs])
        _wait(lambda: len(fetched) == 10, 30, "the first fetch")
        assigned = set(fetcher.assignment)
        # Fault injection: the group looks unsettled for ages while the broker answers.
        fetcher._guard.health = GroupHealth(0.001, now=0.0)
        _wait(lambda: len(fetched) == 20, 40, "the new consumer to fetch them again")
        assert set(lost) == assigned  # the loop was told, so their jobs are dropped
        assert sorted(fetched[10:]) == sorted(encode(j) for j in jobs)  # nothing stored
        assert fetcher.assignment == assigned
    finally:
        fetcher.stop()
        fetcher.join(30)
