"""What a failed Redis command means: Redis is down (try again), full, or refused for good.

One rule for every stage and for the command line: producers retry a Redis
that is down until their deadline, the bridge and the worker wait it out, and
:mod:`jobpipe.client_errors` turns what escapes into one line. A refusal
(credentials, an ACL without a command or key, a script Redis rejects) fails
the same way every time, so a stage stops with it instead of retrying forever.
``redis`` and ``redis.asyncio`` raise the same exception classes.
"""

from __future__ import annotations

import redis.exceptions

#: How a Redis Cluster reads as down, on top of a single Redis's connection errors:
#: no seed node answers (``RedisClusterException``), slots are unserved while a
#: replica takes over (``CLUSTERDOWN``), or redis-py gave up following a slot
#: being migrated (``ClusterError``: "TTL exhausted" after its own TRYAGAIN and
#: redirect retries, seen while a slot's keys moved), or a redirection a pipeline
#: does not follow (``MOVED``, ``ASK``: the slot is moving).
REDIS_CLUSTER_DOWN: tuple[type[Exception], ...] = (
    redis.exceptions.RedisClusterException, redis.exceptions.ClusterDownError,
    redis.exceptions.ClusterError, redis.exceptions.AskError)

#: Redis is down: gone, slow, loading its AOF after a restart (``LOADING`` is a
#: ``ConnectionError``), a replica mid-failover (``READONLY``, ``TRYAGAIN``), or a
#: cluster without a primary for a slot. Trying again can help. Refused
#: credentials are a ``ConnectionError`` too in redis-py: :func:`is_redis_down`
#: leaves them out.
REDIS_DOWN: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    *REDIS_CLUSTER_DOWN,
)

#: Redis refused who we are or what we asked: no or wrong password (``NOAUTH``,
#: ``WRONGPASS``) or an ACL user without a command or key (``NOPERM``).
REDIS_REFUSED: tuple[type[Exception], ...] = (
    redis.exceptions.AuthenticationError,
    redis.exceptions.AuthenticationWrongNumberOfArgsError,
    redis.exceptions.NoPermissionError,
)

#: Every failure a Redis command can end with (a cluster's own are not ``RedisError``).
REDIS_FAILURES: tuple[type[Exception], ...] = (
    redis.exceptions.RedisError, redis.exceptions.RedisClusterException)


def is_redis_down(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis is down (worth trying again), not that it refused us."""
    return isinstance(exc, REDIS_DOWN) and not isinstance(exc, REDIS_REFUSED)


def may_have_run(exc: BaseException) -> bool:
    """Whether a command that failed with ``exc`` may have run all the same: the
    connection broke or timed out once the command may have been sent, so its
    reply is lost, not its effect. An error Redis answered (``MOVED``,
    ``CLUSTERDOWN``, ``READONLY``, ``LOADING``, ``OOM``, ``NOPERM``...) means it
    did not run, though redis-py files ``LOADING`` and refused credentials
    under ``ConnectionError``."""
    answered = (*REDIS_REFUSED, redis.exceptions.BusyLoadingError)
    return (isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError))
            and not isinstance(exc, answered))


def is_out_of_memory(exc: BaseException) -> bool:
    """Redis at ``maxmemory`` under ``noeviction`` refuses writes: full for now, not a bug.

    Redis says "OOM command not allowed when used memory > 'maxmemory'" (redis-py
    strips the "OOM" into its ``OutOfMemoryError``); inside MULTI the refusal may
    surface as ``EXECABORT`` naming the OOM.
    """
    message = str(exc)
    return isinstance(exc, redis.exceptions.ResponseError) and (
        message.startswith("OOM") or "maxmemory" in message)


def is_transient(exc: BaseException) -> bool:
    """Whether a stage should wait and try again: Redis is down or full. Anything
    else Redis answered (a refusal, a script it rejects, a wrong type) will be
    answered the same way next time."""
    return is_redis_down(exc) or is_out_of_memory(exc)
