"""SCRAM-SHA-256 on a dev-stack Kafka: the listener's properties, a user, the client side."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from jobpipe.connections import kafka_admin_config
from jobpipe.settings import KafkaSettings

MECHANISM = "SCRAM-SHA-256"


def scram_listener_properties(listener: str) -> dict[str, str]:
    """``server.properties`` entries enabling SCRAM on the listener named ``listener``."""
    return {"sasl.enabled.mechanisms": MECHANISM,
            f"listener.name.{listener.lower()}.{MECHANISM.lower()}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"}


def add_scram_user(plain_bootstrap: str, user: str, password: str) -> None:
    """Store a SCRAM credential. KRaft keeps them in its metadata log; we add it
    through the (broker-internal) PLAINTEXT listener, as an operator would."""
    admin = AdminClient({"bootstrap.servers": plain_bootstrap, "broker.address.family": "v4"})
    upsert = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), password.encode())
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)


def sasl_client_config(protocol: str, user: str, password: str) -> dict[str, str]:
    """librdkafka properties of a SCRAM client (``SASL_PLAINTEXT`` or ``SASL_SSL``)."""
    return {"security.protocol": protocol, "sasl.mechanism": MECHANISM,
            "sasl.username": user, "sasl.password": password}


def wait_until_authenticated(kafka: KafkaSettings, timeout_s: float = 30.0) -> None:
    """Wait until the broker accepts these credentials: a new SCRAM credential
    reaches the listener a moment after the upsert returns."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            AdminClient(kafka_admin_config(kafka)).list_topics(timeout=5)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
