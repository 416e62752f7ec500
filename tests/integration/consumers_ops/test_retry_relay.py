"""The retry relay against real Kafka: holds until due, never blocks, keeps order,
lets jitter spread retries and never skips a held one."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from consumers.dlq.record import REASON
from consumers.group_health import GroupHealth
from consumers.retry.relay import RetryRelay
from consumers.retry.tiers import jitter_header
from jobpipe import names
from jobpipe.admin import apply_topics, member_partitions
from jobpipe.connections import kafka_admin_config
from jobpipe.devstack.processes import poll_until
from jobpipe.envelope import decode, encode
from jobpipe.settings import Settings
from tests.integration.consumers_ops.conftest import Reader, make_job, produce
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]

QUEUES = {"default": {"partitions": 2, "retry_tiers_s": [1, 3], "priorities": [3, 1]}}


@pytest.fixture
def relay_settings(make_settings, kafka_cleanup) -> Settings:
    settings = make_settings(queues=QUEUES)
    apply_topics(settings)
    return settings


@contextlib.contextmanager
def relay_running(settings: Settings) -> Iterator[RetryRelay]:
    relay = RetryRelay(settings, list(settings.topology.queues.values()))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    yield relay
    stop.set()
    thread.join(30)
    assert not thread.is_alive()


@pytest.fixture
def running_relay(relay_settings: Settings) -> Iterator[RetryRelay]:
    with relay_running(relay_settings) as relay:
        yield relay


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


def _committed(settings: Settings, topic: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap,
                         "broker.address.family": "v4",
                         "group.id": names.group_id(settings.namespace, "retry")})
    try:
        return consumer.committed([TopicPartition(topic, partition)], timeout=10)[0].offset
    finally:
        consumer.close()


HOLD_TIER_S = 600  # so long that the held retry cannot come due while the test runs


def test_jitter_lets_a_later_retry_of_the_same_partition_leave_first_and_a_held_one_is_never_skipped(  # noqa: E501
        make_settings, kafka_cleanup, read_topics: Reader):
    settings = make_settings(queues={"default": {"partitions": 1,
                                                 "retry_tiers_s": [HOLD_TIER_S]}})
    apply_topics(settings)
    ns = settings.namespace
    tier = names.retry_topic(ns, "default", HOLD_TIER_S)
    main = names.main_topic(ns, "default")
    late, early = make_job(task="late"), make_job(task="early")
    # "late" is written first and waits its tier delay plus as much jitter (offset 0);
    # "early" was written a tier delay ago without jitter: due at once (offset 1).
    produce(settings, tier, [(b"k", encode(late))], [jitter_header(HOLD_TIER_S)], partition=0)
    written_ms = time.time_ns() // 1_000_000 - HOLD_TIER_S * 1000
    produce(settings, tier, [(b"k", encode(early))], [jitter_header(0.0)], partition=0,
            timestamp_ms=written_ms)
    with relay_running(settings) as relay:
        got = read_topics(settings, [main], 1)
        assert [decode(m.value()).task for _, m in got] == ["early"]
        assert len(relay._waiting) == 1  # "late"
    # Stopped with "late" still held: nothing past it was committed ...
    assert _committed(settings, tier, 0) < 1
    # ... so the next relay reads it again and holds it ("early" is sent again).
    with relay_running(settings) as relay:
        got = read_topics(settings, [main], 2)
        assert poll_until(lambda: len(relay._waiting) == 1, 20, 0.05)  # "late" again
    assert [decode(m.value()).task for _, m in got] == ["early", "early"]


def test_a_stuck_consumer_is_replaced_and_its_held_retry_still_goes_out(
        relay_settings, read_topics: Reader):
    ns = relay_settings.namespace
    job = make_job(task="held")
    admin = AdminClient(kafka_admin_config(relay_settings.kafka))
    group = names.group_id(ns, "retry")
    with relay_running(relay_settings) as relay:
        # Written only once the relay reads its tiers (2 topics x 2 partitions), so it
        # is read while held (6 s: the 3 s tier plus as much jitter), however slow the
        # group join was.
        assert poll_until(lambda: member_partitions(admin, group) == [4], 30, 0.1)
        produce(relay_settings, names.retry_topic(ns, "default", 3), [(b"k", encode(job))],
                [jitter_header(3.0)], partition=0)
        assert poll_until(lambda: len(relay._waiting) == 1, 20, 0.05)
        # Fault injection: its group looks unsettled for ages; the broker answers.
        relay._guard.health = GroupHealth(0.001, now=0.0)
        got = read_topics(relay_settings, [names.main_topic(ns, "default")], 1, timeout_s=40)
        assert len(relay._waiting) == 0
    assert [decode(m.value()).id for _, m in got] == [job.id]
