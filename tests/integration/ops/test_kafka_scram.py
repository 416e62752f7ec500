"""A Kafka with a SASL_PLAINTEXT SCRAM-SHA-256 listener: produce and consume work
with ``kafka.config`` carrying the credentials and fail clearly without them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis
from confluent_kafka import Producer

from ingest import Producer as JobProducer
from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_producer_config
from jobpipe.envelope import Job, encode, new_job_id, now_ns, peek_id
from jobpipe.errors import ConfigError, JobpipeError, KafkaUnavailable
from jobpipe.routing import Routes
from jobpipe.settings import Settings, load_settings
from tests.integration.ops.kafka_read import read_all
from tests.integration.ops.scram import (
    add_scram_user,
    sasl_client_config,
    scram_listener_properties,
    wait_until_authenticated,
)
from tests.private_stack import started

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
        kafka_extra_properties=scram_listener_properties("SASL"))
    with started(stack, "Kafka"):
        add_scram_user(stack.kafka_bootstrap, USER, PASSWORD)
        yield f"127.0.0.1:{sasl_port}"


def _settings(bootstrap: str, namespace: str, **security: str) -> Settings:
    return load_settings(None, environ={}, overrides={
        "namespace": namespace,
        "kafka": {"bootstrap": bootstrap, "config": security},
        "queues": {"default": {"partitions": 2, "retry_tiers_s": [1]}},
    })


def _sasl(password: str = PASSWORD, user: str = USER) -> dict[str, str]:
    return sasl_client_config("SASL_PLAINTEXT", user, password)


def test_produce_and_consume_over_scram(sasl_bootstrap, namespace):
    settings = _settings(sasl_bootstrap, namespace, **_sasl())
    wait_until_authenticated(settings.kafka)
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
    started = time.monotonic()
    with pytest.raises(JobpipeError) as caught:
        # Refused credentials end the call once the refusal has lasted
        # REFUSED_FOR_S, long before the 30 s timeout. A client speaking no SASL
        # hears no refusal, only a closed connection: a broker that may be
        # starting, waited for until its timeout.
        apply_topics(settings, **({} if security else {"timeout_s": 3}))
    assert time.monotonic() - started < 20
    assert isinstance(caught.value, ConfigError if security else KafkaUnavailable)
    message = str(caught.value)
    assert "\n" not in message
    assert PASSWORD not in message
    if security:
        assert "auth" in message.lower()


def test_check_names_refused_credentials_in_one_line(sasl_bootstrap, namespace, redis_url):
    """``jobpipe check`` with a wrong password: exit 1 and one line naming the
    broker's refusal (jobpipe.kafka_metadata's rule)."""
    env = {**os.environ, "JOBPIPE_NAMESPACE": namespace, "JOBPIPE_REDIS_URL": redis_url,
           "JOBPIPE_KAFKA_BOOTSTRAP": sasl_bootstrap,
           "JOBPIPE_KAFKA_CONFIG": "{" + ", ".join(
               f'"{k}" = "{v}"' for k, v in _sasl(password="not-the-password-9f3").items()) + "}"}
    done = subprocess.run([sys.executable, "-m", "jobpipe", "check"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"jobpipe: error: Kafka at {sasl_bootstrap} refused this client")
    assert "auth" in line.lower()
    assert "not-the-password-9f3" not in done.stdout + done.stderr


def test_a_bridge_and_a_worker_refused_by_kafka_stop_in_one_line_and_keep_every_job(
        sasl_bootstrap, namespace, redis_url):
    """A wrong password stops ``jobpipe bridge`` and ``jobpipe worker`` with one line
    (jobpipe.kafka_refusal's rule), instead of logging refusals for ever; the jobs
    the bridge took meanwhile are back in the ready list, none lost."""
    wrong = "not-the-password-7c1"
    settings = load_settings(None, environ={}, overrides={
        "namespace": namespace, "redis": {"url": redis_url},
        "queues": {"default": {"partitions": 2}}})
    with JobProducer(settings) as producer:
        ids = set(producer.enqueue_many("default", "noop", [{}] * 5))
    env = {**os.environ, "JOBPIPE_NAMESPACE": namespace, "JOBPIPE_REDIS_URL": redis_url,
           "JOBPIPE_KAFKA_BOOTSTRAP": sasl_bootstrap,
           "JOBPIPE_KAFKA_CONFIG": "{" + ", ".join(
               f'"{k}" = "{v}"' for k, v in _sasl(password=wrong).items()) + "}"}
    stages = [subprocess.Popen([sys.executable, "-m", "jobpipe", *argv], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for argv in (["bridge"], ["worker", "loadtest.tasks"])]
    try:
        ended = [stage.communicate(timeout=60) for stage in stages]
    finally:
        for stage in stages:
            stage.kill()  # by its PID; a no-op once it has exited
            stage.wait(30)
    errs = [err for _, err in ended]
    for stage, (out, err) in zip(stages, ended, strict=True):
        assert stage.returncode == 1, err
        assert "Traceback" not in err
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"jobpipe: error: Kafka at {sasl_bootstrap} refused this client")
        assert "auth" in line.lower()
        assert wrong not in out + err
    assert "returned 5 unacknowledged jobs to ready" in errs[0]  # the bridge had taken them
    client = redis.Redis.from_url(redis_url)
    ready = [key for level in Routes.of(namespace, settings.topology.get("default")).ready
             for key in level]
    assert {peek_id(raw) for key in ready for raw in client.lrange(key, 0, -1)} == ids
    client.close()
