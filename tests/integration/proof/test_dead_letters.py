"""The ledger reads dead-letter topics back from a real broker."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_producer_config
from jobpipe.envelope import Job, encode, new_job_id
from loadtest.dead_letters import read_dead_letters
from loadtest.ledger import dead_lettered_ids_from_kafka

pytestmark = pytest.mark.integration


def test_dead_letters_are_read_with_their_reason_and_id(settings, kafka_cleanup):
    apply_topics(settings)
    ns = settings.namespace
    producer = Producer(kafka_producer_config(settings.kafka))
    ids = [new_job_id() for _ in range(5)]
    for job_id in ids:
        job = Job(id=job_id, queue="default", task="t", args={})
        producer.produce(names.dlq_topic(ns, "default"), encode(job),
                         headers=[("jp-reason", b"exhausted"), ("jp-error", b"boom"),
                                  ("jp-source-topic", names.main_topic(ns, "default").encode()),
                                  ("jp-source-partition", b"1"), ("jp-source-offset", b"7")])
    producer.produce(names.dlq_topic(ns, "default"), b"\xff garbage",
                     headers=[("jp-reason", b"invalid_json")])
    assert producer.flush(30) == 0

    letters = read_dead_letters(settings)
    assert len(letters) == 6
    reasons = sorted(d.reason or "" for d in letters)
    assert reasons == ["exhausted"] * 5 + ["invalid_json"]
    garbage = next(d for d in letters if d.reason == "invalid_json")
    assert garbage.job_id is None
    assert garbage.value == b"\xff garbage"
    first = next(d for d in letters if d.reason == "exhausted")
    assert (first.source_partition, first.source_offset) == (1, 7)
    assert dead_lettered_ids_from_kafka(settings, ["default"]) == set(ids)


def test_no_dead_letter_topic_means_no_dead_letters(settings):
    assert read_dead_letters(settings) == []
