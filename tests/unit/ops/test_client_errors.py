"""Client-library failures become jobpipe errors whose class says whether to try again."""

from __future__ import annotations

import pytest
import redis.exceptions
from confluent_kafka import KafkaError, KafkaException

from jobpipe.client_errors import as_jobpipe_error
from jobpipe.errors import ConfigError, KafkaUnavailable, RedisRefused, RedisUnavailable
from jobpipe.settings import load_settings

SETTINGS = load_settings(None, environ={"JOBPIPE_REDIS_URL": "redis://jp:hunter2@10.1.2.3:6379/0",
                                        "JOBPIPE_KAFKA_BOOTSTRAP": "10.1.2.4:9092"})


@pytest.mark.parametrize("exc", [
    redis.exceptions.ConnectionError("Error 111 connecting to 10.1.2.3:6379.\nrefused."),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
])
def test_redis_down_is_retryable_and_names_the_redacted_address(exc: Exception) -> None:
    error = as_jobpipe_error(exc, SETTINGS)
    assert isinstance(error, RedisUnavailable)
    assert error.retryable
    assert str(error).startswith("Redis at redis://jp:***@10.1.2.3:6379/0 is unreachable: ")
    assert "\n" not in str(error)


def test_refused_redis_credentials_are_permanent() -> None:
    error = as_jobpipe_error(redis.exceptions.AuthenticationError("invalid password"), SETTINGS)
    assert isinstance(error, ConfigError)
    assert not error.retryable
    assert "hunter2" not in str(error)


@pytest.mark.parametrize(("code", "kind", "retryable"), [
    (KafkaError._TRANSPORT, KafkaUnavailable, True),
    (KafkaError._ALL_BROKERS_DOWN, KafkaUnavailable, True),
    (KafkaError._TIMED_OUT, KafkaUnavailable, True),
    (KafkaError.SASL_AUTHENTICATION_FAILED, ConfigError, False),
    (KafkaError._INVALID_ARG, ConfigError, False),
    (KafkaError.TOPIC_AUTHORIZATION_FAILED, ConfigError, False),
    (KafkaError._FATAL, KafkaUnavailable, True),
])
def test_kafka_errors_are_sorted_into_transient_and_permanent(code: int, kind: type,
                                                              retryable: bool) -> None:
    error = as_jobpipe_error(KafkaException(KafkaError(code, "what librdkafka said")), SETTINGS)
    assert isinstance(error, kind)
    assert error.retryable is retryable
    assert "Kafka at 10.1.2.4:9092" in str(error)
    assert "what librdkafka said" in str(error)


def test_a_sasl_handshake_broken_on_this_side_is_retryable() -> None:
    """librdkafka gives it the code of refused credentials (_AUTHENTICATION)."""
    broken = KafkaError(KafkaError._AUTHENTICATION, "SASL SCRAM-SHA-256 mechanism handshake "
                        "failed: Local: Broker transport failure: broker's supported mechanisms: ")
    error = as_jobpipe_error(KafkaException(broken), SETTINGS)
    assert isinstance(error, KafkaUnavailable)
    assert error.retryable


@pytest.mark.parametrize("exc", [
    redis.exceptions.NoPermissionError(
        "User jp-bridge has no permissions to run the 'bzpopmin' command"),
    redis.exceptions.AuthenticationError("WRONGPASS invalid username-password pair"),
])
def test_a_refusing_redis_acl_is_permanent_and_names_the_address(exc: Exception) -> None:
    error = as_jobpipe_error(exc, SETTINGS)
    assert isinstance(error, ConfigError)
    assert not error.retryable
    assert "redis://jp:***@10.1.2.3:6379/0" in str(error)
    assert "hunter2" not in str(error)


@pytest.mark.parametrize("exc", [
    redis.exceptions.ResponseError("user_script:3: Script attempted to access nonexistent "
                                   "global variable 'x' script: 1f0a, on @user_script:3."),
    redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
])
def test_a_command_redis_rejects_for_good_is_one_permanent_line(exc: Exception) -> None:
    error = as_jobpipe_error(exc, SETTINGS)
    assert isinstance(error, RedisRefused)
    assert not error.retryable
    assert str(error).startswith("Redis at redis://jp:***@10.1.2.3:6379/0 refused a command: ")
    assert "\n" not in str(error)


@pytest.mark.parametrize("exc", [
    redis.exceptions.ClusterDownError("The cluster is down"),
    redis.exceptions.RedisClusterException("Redis Cluster cannot be connected."),
    redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
])
def test_a_cluster_re_forming_or_a_full_redis_is_retryable(exc: Exception) -> None:
    error = as_jobpipe_error(exc, SETTINGS)
    assert isinstance(error, RedisUnavailable)
    assert error.retryable


def test_anything_else_is_left_for_a_traceback() -> None:
    assert as_jobpipe_error(ValueError("a bug"), SETTINGS) is None
    assert as_jobpipe_error(redis.exceptions.DataError("Invalid input of type"), SETTINGS) is None
