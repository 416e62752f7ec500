"""The retry relay against real Kafka: holds until due, never blocks, keeps order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from consumers.dlq_record import REASON
from consumers.retry_relay import RetryRelay
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.envelope import decode, encode
from jobpipe.settings import Settings
from tests.integration.consumers_ops.conftest import Reader, make_job, produce

pytestmark = pytest.mark.integration

QUEUES = {"default": {"partitions": 2, "retry_tiers_s": [1, 3], "priorities": [3, 1]}}


@pytest.fixture
def relay_settings(make_settings, kafka_cleanup) -> Settings:
    settings = make_settings(queues=QUEUES)
    apply_topics(settings)
    return settings


@pytest.fixture
def running_relay(relay_settings: Settings) -> Iterator[RetryRelay]:
    relay = RetryRelay(relay_settings, list(relay_settings.topology.queues.values()))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    yield relay
    stop.set()
    thread.join(30)
    assert not thread.is_alive()


def test_relay_holds_a_retry_until_due_then_sends_it_to_the_main_topic(
        relay_settings, running_relay, read_topics: Reader):
    ns = relay_settings.namespace
    job = make_job(key="k1", attempt=2)
    produced_at = time.monotonic()
    produce(relay_settings, names.retry_topic(ns, "default", 1), [(b"k1", encode(job))])
    got = read_topics(relay_settings, [names.main_topic(ns, "default")], 1)
    assert len(got) == 1
    arrived, msg = got[0]
    assert arrived - produced_at >= 1.0
    assert arrived - produced_at < 6.0
    assert msg.key() == b"k1"
    assert decode(msg.value()) == job


def test_relay_sends_an_earlier_due_retry_before_a_later_one_written_first(
        relay_settings, running_relay, read_topics: Reader):
    ns = relay_settings.namespace
    slow, fast = make_job(task="slow"), make_job(task="fast")
    produce(relay_settings, names.retry_topic(ns, "default", 3), [(None, encode(slow))])
    started = time.monotonic()
    produce(relay_settings, names.retry_topic(ns, "default", 1), [(None, encode(fast))])
    got = read_topics(relay_settings, [names.main_topic(ns, "default")], 2)
    assert [decode(m.value()).task for _, m in got] == ["fast", "slow"]
    assert got[0][0] - started < 2.9  # the 3 s tier never held the 1 s tier back


def test_relay_keeps_order_within_a_partition(relay_settings, running_relay,
                                              read_topics: Reader):
    ns = relay_settings.namespace
    jobs = [make_job(key="same", args={"i": i}) for i in range(20)]
    produce(relay_settings, names.retry_topic(ns, "default", 1),
            [(b"same", encode(j)) for j in jobs])
    got = read_topics(relay_settings, [names.main_topic(ns, "default")], 20)
    assert [decode(m.value()).id for _, m in got] == [j.id for j in jobs]


def test_relay_sends_a_priority_one_job_to_the_p1_topic(relay_settings, running_relay,
                                                        read_topics: Reader):
    ns = relay_settings.namespace
    job = make_job(priority=1)
    produce(relay_settings, names.retry_topic(ns, "default", 1), [(None, encode(job))])
    got = read_topics(relay_settings, [names.main_topic(ns, "default", 1)], 1)
    assert got
    assert got[0][1].topic() == names.main_topic(ns, "default", 1)
    assert decode(got[0][1].value()).id == job.id


def test_relay_dead_letters_bytes_that_are_not_a_job(relay_settings, running_relay,
                                                     read_topics: Reader):
    ns = relay_settings.namespace
    produce(relay_settings, names.retry_topic(ns, "default", 1), [(b"k", b"{not json")])
    got = read_topics(relay_settings, [names.dlq_topic(ns, "default")], 1)
    assert got
    msg = got[0][1]
    assert msg.value() == b"{not json"
    assert msg.key() == b"k"
    assert dict(msg.headers())[REASON] == b"invalid_json"
