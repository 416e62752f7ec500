"""A stopping consumer does not sit out its idle wait.

librdkafka cannot be woken from another thread, so :func:`fetch_available`
waits in short slices and looks at the stop flag between them. The wait here
is ten minutes; the stop must end it within the two-minute deadline.
"""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from consumers.fetcher import fetch_available
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_consumer_config

pytestmark = pytest.mark.integration

IDLE_WAIT_S = 600.0
DEADLINE_S = 120.0


def test_setting_stop_ends_an_idle_fetch(make_settings, kafka_cleanup) -> None:
    settings = make_settings(queues={"default": {"partitions": 1}})
    apply_topics(settings)
    consumer = Consumer(kafka_consumer_config(settings.kafka, names.group_id(
        settings.namespace, "fetch-stop")))
    consumer.assign([TopicPartition(names.main_topic(settings.namespace, "default"), 0)])
    stop = threading.Event()
    fetched: list[list[Message]] = []
    thread = threading.Thread(
        target=lambda: fetched.append(fetch_available(consumer, 10, IDLE_WAIT_S, stop)))
    try:
        thread.start()
        stop.set()
        thread.join(DEADLINE_S)
        assert not thread.is_alive(), "the fetch sat out its idle wait after stop"
        assert fetched == [[]]
    finally:
        stop.set()
        thread.join()
        consumer.close()
