"""Failures of the Redis and Kafka client libraries, as jobpipe errors.

The translation happens once, where a command or a supervised process ends
(the CLI entry point and the supervisor), not in every command: a redis-py or
confluent-kafka exception that escapes becomes one line naming the address
and the failure, and its class says whether trying again can help.
"""

from __future__ import annotations

import redis.exceptions
from confluent_kafka import KafkaError, KafkaException

from jobpipe.connections import redis_access_error
from jobpipe.errors import (
    ConfigError,
    JobpipeError,
    KafkaUnavailable,
    RedisRefused,
    RedisUnavailable,
)
from jobpipe.kafka_refusal import is_refusal
from jobpipe.redact import redact_url
from jobpipe.redis_failures import (
    REDIS_FAILURES,
    REDIS_REFUSED,
    is_out_of_memory,
    is_redis_down,
)
from jobpipe.settings import Settings

# librdkafka codes of a broker that is down, slow or not resolvable yet.
_KAFKA_DOWN = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                         KafkaError._TIMED_OUT, KafkaError._RESOLVE,
                         KafkaError._MSG_TIMED_OUT, KafkaError._WAIT_COORD,
                         KafkaError._TIMED_OUT_QUEUE})
# Codes that fail the same way next time: a bad property, a missing ACL (and
# refused credentials: jobpipe.kafka_refusal.is_refusal). Only these stop a
# supervised stage for good.
_KAFKA_REFUSED = frozenset({KafkaError._INVALID_ARG, KafkaError.TOPIC_AUTHORIZATION_FAILED,
                            KafkaError.GROUP_AUTHORIZATION_FAILED,
                            KafkaError.CLUSTER_AUTHORIZATION_FAILED})


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def as_jobpipe_error(exc: BaseException, settings: Settings | None) -> JobpipeError | None:
    """``exc`` as a :class:`JobpipeError` (itself when it is one), or ``None`` when it
    is not a failure jobpipe knows (a bug, or a Redis reply nobody expected): then
    the traceback is the report.

    Args:
        exc: what escaped a command or a stage.
        settings: where the services are (names the address), when loaded.
    """
    if isinstance(exc, JobpipeError):
        return exc
    if isinstance(exc, REDIS_FAILURES):
        return _redis_error(exc, settings)
    if isinstance(exc, KafkaException):
        return _kafka_error(exc, settings)
    return None


def _redis_error(exc: Exception, settings: Settings | None) -> JobpipeError | None:
    """The sorting is :mod:`jobpipe.redis_failures`'; this only words it."""
    url = settings.redis.url if settings is not None else None
    if isinstance(exc, REDIS_REFUSED):
        if url is None:
            return ConfigError(f"redis.url: Redis refused the credentials or a command "
                               f"({_one_line(exc)})")
        return redis_access_error(url, exc)
    where = f"Redis at {redact_url(url)}" if url else "Redis"
    if is_redis_down(exc):
        return RedisUnavailable(f"{where} is unreachable: {_one_line(exc)}")
    if is_out_of_memory(exc):
        return RedisUnavailable(f"{where} is full (maxmemory): {_one_line(exc)}")
    if isinstance(exc, redis.exceptions.ResponseError):
        # Redis's own answer names the problem (a script it rejects, a wrong type):
        # asked again, it answers the same.
        return RedisRefused(f"{where} refused a command: {_one_line(exc)}")
    return None


def _kafka_error(exc: KafkaException, settings: Settings | None) -> JobpipeError:
    where = f"Kafka at {settings.kafka.bootstrap}" if settings is not None else "Kafka"
    error = exc.args[0] if exc.args else None
    if not isinstance(error, KafkaError):
        return KafkaUnavailable(f"{where} failed: {_one_line(exc)}")
    detail = error.str() or error.name()
    if error.code() in _KAFKA_REFUSED or is_refusal(error):
        return ConfigError(f"kafka: {where} refused: {detail} ({error.name()})")
    if error.code() in _KAFKA_DOWN or error.retriable():
        return KafkaUnavailable(f"{where} is unreachable: {detail}")
    return KafkaUnavailable(f"{where} failed: {detail} ({error.name()})")
