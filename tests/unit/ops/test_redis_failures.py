"""One rule for what a Redis failure means, for every stage: down, full, or refused."""

from __future__ import annotations

import pytest
import redis.exceptions

from jobpipe.redis_failures import is_redis_down, is_transient, may_have_run

DOWN = [
    redis.exceptions.ConnectionError("Error 111 connecting to 10.1.2.3:6379. Refused."),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
    redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"),
    redis.exceptions.ClusterDownError("The cluster is down"),
    redis.exceptions.RedisClusterException("Redis Cluster cannot be connected."),
    redis.exceptions.ClusterError("TTL exhausted."),
    redis.exceptions.MovedError("3999 127.0.0.1:6381"),
]
REFUSED = [
    redis.exceptions.AuthenticationError("invalid username-password pair"),
    redis.exceptions.NoPermissionError("User jp has no permissions to run the 'get' command"),
    redis.exceptions.AuthenticationWrongNumberOfArgsError("wrong number of arguments"),
]
REJECTED = [
    redis.exceptions.ResponseError("Error compiling script (new function): user_script:1"),
    redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
]
FULL = redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")


@pytest.mark.parametrize("exc", DOWN)
def test_a_redis_that_is_down_is_worth_waiting_for(exc: Exception) -> None:
    assert is_redis_down(exc)
    assert is_transient(exc)


@pytest.mark.parametrize("exc", REFUSED + REJECTED)
def test_a_refusal_is_not_down_and_not_transient(exc: Exception) -> None:
    # redis-py's AuthenticationError is a ConnectionError: still a refusal.
    assert not is_redis_down(exc)
    assert not is_transient(exc)


def test_a_full_redis_is_transient_but_not_down() -> None:
    assert not is_redis_down(FULL)
    assert is_transient(FULL)


@pytest.mark.parametrize("exc", DOWN[:2], ids=type)
def test_a_broken_or_timed_out_connection_may_have_run_the_command(exc: Exception) -> None:
    assert may_have_run(exc)


@pytest.mark.parametrize("exc", [*DOWN[2:], *REFUSED, *REJECTED, FULL], ids=type)
def test_an_error_redis_answered_means_the_command_did_not_run(exc: Exception) -> None:
    assert not may_have_run(exc)
