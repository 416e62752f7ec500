"""The consumer group protocol in every consumer's librdkafka config."""

from __future__ import annotations

from jobpipe.connections import kafka_consumer_config
from jobpipe.settings import KafkaSettings


def test_the_consumer_protocol_leaves_timeouts_and_assignment_to_the_broker() -> None:
    conf = kafka_consumer_config(KafkaSettings(group_protocol="consumer"), "g")
    assert conf["group.protocol"] == "consumer"
    for key in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
        assert key not in conf  # librdkafka refuses them with group.protocol=consumer


def test_the_classic_default_keeps_short_client_side_timeouts() -> None:
    conf = kafka_consumer_config(KafkaSettings(), "g")
    assert conf["group.protocol"] == "classic"
    assert conf["partition.assignment.strategy"] == "cooperative-sticky"
    assert conf["session.timeout.ms"] == 6_000
