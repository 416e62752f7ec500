"""A Kafka with a SASL_PLAINTEXT SCRAM-SHA-256 listener: produce and consume work
with ``kafka.config`` carrying the credentials and fail clearly without them."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_admin_config, kafka_producer_config
from jobpipe.envelope import Job, encode, new_job_id, now_ns
from jobpipe.errors import KafkaUnavailable, StackError
from jobpipe.settings import Settings, load_settings
from tests.integration.ops.kafka_read import read_all
from tests.services import skip_unless_ci

pytestmark = pytest.mark.integration

USER, PASSWORD = "jp", "scram-Secr3t"


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory):
    from jobpipe.devstack import DevStack, ExtraListener, free_port, free_port_block

    kafka_port = free_port_block(2)
    sasl_port = free_port_block(2)
    stack = DevStack(
        tmp_path_factory.mktemp("scram"), redis_port=free_port(), kafka_port=kafka_port,
        kafka_extra_listeners=[ExtraListener("SASL", "SASL_PLAINTEXT", sasl_port)],
        kafka_extra_properties={
            "sasl.enabled.mechanisms": "SCRAM-SHA-256",
            "listener.name.sasl.scram-sha-256.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        })
    try:
        stack.kafka.java = stack.kafka.java or "java"
        stack.kafka.ensure_jars()
        stack.start_kafka()
    except StackError as exc:
        stack.down()
        skip_unless_ci(f"no local Kafka: {exc}")
    try:
        # KRaft keeps SCRAM credentials in its metadata log; add ours through the
        # (broker-internal) PLAINTEXT listener, as an operator would.
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{kafka_port}",
                             "broker.address.family": "v4"})
        upsert = UserScramCredentialUpsertion(
            USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), PASSWORD.encode())
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=30)
        yield f"127.0.0.1:{sasl_port}"
    finally:
        stack.down()


def _settings(bootstrap: str, namespace: str, **security: str) -> Settings:
    return load_settings(None, environ={}, overrides={
        "namespace": namespace,
        "kafka": {"bootstrap": bootstrap, "config": security},
        "queues": {"default": {"partitions": 2, "retry_tiers_s": [1]}},
    })


def _sasl(password: str = PASSWORD, user: str = USER) -> dict[str, str]:
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": user, "sasl.password": password}


def _wait_for_credentials(settings: Settings) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            AdminClient(kafka_admin_config(settings.kafka)).list_topics(timeout=5)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_produce_and_consume_over_scram(sasl_bootstrap, namespace):
    settings = _settings(sasl_bootstrap, namespace, **_sasl())
    _wait_for_credentials(settings)
    apply_topics(settings)
    topic = f"{namespace}.default"
    producer = Producer(kafka_producer_config(settings.kafka))
    ids = set()
    for i in range(30):
        job = Job(id=new_job_id(), queue="default", task="t", args={"i": i},
                  enqueued_at=now_ns())
        ids.add(job.id)
        producer.produce(topic, encode(job))
    assert producer.flush(30) == 0
    assert {j.id for j in read_all(settings.kafka, topic, expect=30)} == ids


@pytest.mark.parametrize("security", [{}, _sasl(password="wrong"), _sasl(user="nobody")],
                         ids=["no-sasl", "wrong-password", "unknown-user"])
def test_without_the_right_credentials_topics_apply_fails_in_one_line(
        sasl_bootstrap, namespace, security):
    settings = _settings(sasl_bootstrap, namespace, **security)
    with pytest.raises(KafkaUnavailable) as caught:
        apply_topics(settings, timeout_s=8)
    message = str(caught.value)
    assert "\n" not in message
    assert PASSWORD not in message
    if security:
        assert "auth" in message.lower()
