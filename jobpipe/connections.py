"""Clients for Redis and Kafka, built from settings. No globals: callers own them.

Kafka configs always carry ``acks=all`` and ``enable.idempotence=true`` for
producers, and ``enable.auto.offset.store=false`` for consumers: the stage
stores an offset only after the job is durably handled elsewhere.
"""

from __future__ import annotations

import logging
import typing
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer  # type: ignore[attr-defined]  # stubs lag
from redis.crc import key_slot
from redis.retry import Retry

from jobpipe.errors import ConfigError, UnsafeRedis
from jobpipe.logs import RepeatFilter
from jobpipe.redact import redact_url
from jobpipe.redis_failures import REDIS_DOWN
from jobpipe.settings import KafkaSettings, RedisSettings

log = logging.getLogger(__name__)


def _redis_kwargs(settings: RedisSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
    }
    tls = {"ssl_ca_certs": settings.ssl_ca_certs, "ssl_certfile": settings.ssl_certfile,
           "ssl_keyfile": settings.ssl_keyfile}
    given = {k: v for k, v in tls.items() if v is not None}
    if given and not settings.url.startswith("rediss://"):
        # Checked here, on the final settings: a file and the URL may come from
        # different layers (jobpipe.toml, environment). Unused, it would be a surprise.
        raise ConfigError(f"redis.{next(iter(given))}: only used with a rediss:// URL, "
                          f"and redis.url {redact_url(settings.url)} is not one")
    kwargs.update(given)
    return kwargs


def redis_client(settings: RedisSettings, *, at_most_once: bool = False) -> redis.Redis[bytes]:
    """A blocking Redis client (bytes in, bytes out).

    ``at_most_once``: the client never sends a command again by itself. redis-py's
    cluster client re-runs a command whose connection broke or timed out (up to
    3 times, after refreshing its slot map), and a command whose reply was lost
    may have run: a script that moves or trims by count would run twice. With
    it, that failure reaches the caller, who knows what a re-run would do (the
    bridge, :mod:`bridge.service`). ``MOVED`` and ``ASK`` are still followed:
    a redirected command did not run. A single Redis's ``from_url`` client
    re-runs nothing either way; the setting says so rather than rely on it.

    With ``redis.cluster`` it is redis-py's ``RedisCluster``, seeded from the URL.
    It is typed as ``Redis`` only until the stages are ported to clusters (their
    Lua scripts and multi-key commands are not yet proven there, see
    docs/scaling.md); typing it ``Redis | RedisCluster`` makes mypy list what
    remains, e.g. the producer's use of ``connection_pool``.
    """
    kwargs = _redis_kwargs(settings)
    if at_most_once:
        kwargs["retry"] = Retry(NoBackoff(), 0)
    if settings.cluster:
        cluster: redis.cluster.RedisCluster[bytes] = redis.cluster.RedisCluster.from_url(
            settings.url, **kwargs)
        return typing.cast("redis.Redis[bytes]", cluster)
    return redis.Redis.from_url(settings.url, **kwargs)


class _RoutedCluster(redis.asyncio.cluster.RedisCluster):  # type: ignore[type-arg]
    """redis-py's asyncio ``RedisCluster`` that knows the slots before it routes a command.

    Stock, a command decides its node before the client's lazy initialization
    has run (or re-run, after a ``CLUSTERDOWN`` or every fifth ``MOVED`` closes
    it): without a slot map a keyed command counts as keyless and goes to a
    random primary. Several coroutines starting at once then all meet ``MOVED``,
    the fifth ``MOVED`` closes the client, and that close disconnects the
    connections the other coroutines are writing on (they fail with
    ``'NoneType' object has no attribute 'writelines'``). Waiting for
    the slot map first (a no-op once it is known) routes every command by its key.
    """

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        await self.initialize()
        return await super().execute_command(*args, **kwargs)


def async_redis_client(settings: RedisSettings) -> redis.asyncio.Redis[bytes]:
    """An asyncio Redis client (bytes in, bytes out); with ``redis.cluster`` a
    ``RedisCluster`` that several coroutines may share from the first command on
    (see :class:`_RoutedCluster` and :func:`redis_client`)."""
    if settings.cluster:
        cluster = _RoutedCluster.from_url(settings.url, **_redis_kwargs(settings))
        return typing.cast("redis.asyncio.Redis[bytes]", cluster)
    client = redis.asyncio.Redis.from_url(settings.url, **_redis_kwargs(settings))
    pool = client.connection_pool  # no connection made yet: the class is chosen by the URL
    pool.connection_class = _HIREDIS_PACKING.get(pool.connection_class, pool.connection_class)
    return client


class _HiredisPacking:
    """Commands packed by hiredis, about 0.2 us an argument, where redis-py's
    asyncio connections pack in Python at about 0.9 us (its blocking ones use
    hiredis already): a worker's batch of done markers and job states passes
    thousands of arguments, and ``pack_command`` was 12 % of a tracking worker's
    Python time at 15,000 jobs/s (py-spy)."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        return typing.cast("list[bytes]", self._packer.pack(*args))


class _Connection(_HiredisPacking, redis.asyncio.Connection):
    pass


class _SSLConnection(_HiredisPacking, redis.asyncio.SSLConnection):
    pass


class _UnixConnection(_HiredisPacking, redis.asyncio.UnixDomainSocketConnection):
    pass


_HIREDIS_PACKING: dict[type[Any], type[Any]] = {
    redis.asyncio.Connection: _Connection, redis.asyncio.SSLConnection: _SSLConnection,
    redis.asyncio.UnixDomainSocketConnection: _UnixConnection}


def is_cluster(client: object) -> bool:
    """Whether ``client`` (sync or asyncio) talks to a Redis Cluster."""
    # Asked per script call. The cluster classes derive from a typing.Protocol, whose
    # isinstance() took ~2.3 us (warm) against ~0.3 us for this lookup.
    cls = type(client)
    known = _CLUSTER_CLASSES.get(cls)
    if known is None:
        known = _CLUSTER_CLASSES[cls] = issubclass(
            cls, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))
    return known


_CLUSTER_CLASSES: dict[type, bool] = {}


def node_client(client: redis.Redis[bytes], key: str) -> redis.Redis[bytes]:
    """The client of the one Redis that serves ``key``: ``client`` itself on a single
    Redis, the primary of the key's slot on a cluster (for what only a plain
    connection can do: a blocking wait with ``CLIENT UNBLOCK``)."""
    if isinstance(client, redis.cluster.RedisCluster):
        node = client.get_node_from_key(key)
        return typing.cast("redis.Redis[bytes]", node.redis_connection)
    return client


def group_by_slot(client: object, keys: list[str]) -> list[list[str]]:
    """``keys`` in groups one multi-key command may name together: one group on a
    single Redis, one per hash slot on a cluster (order kept within a group)."""
    if not keys:
        return []
    if not is_cluster(client):
        return [list(keys)]
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(key_slot(key.encode()), []).append(key)
    return list(groups.values())


async def async_pubsub(client: redis.asyncio.Redis[bytes]) -> redis.asyncio.client.PubSub:
    """A pub/sub of ``client``. On a cluster the client learns the slots first: its
    pub/sub picks a node by the channel's slot and fails on a client not yet
    initialized. (Classic PUBLISH reaches every node of a cluster, so any will do.)"""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        await client.initialize()
    return client.pubsub()


def redis_safety_problems(config: dict[str, str]) -> list[str]:
    """What makes a Redis (given its ``CONFIG GET *``) unsafe for jobs, if anything."""
    problems = []
    policy = config.get("maxmemory-policy", "")
    if policy != "noeviction":
        problems.append(f"maxmemory-policy is {policy!r}: an evicting Redis silently drops "
                        "jobs; set it to 'noeviction'")
    if config.get("appendonly", "no") != "yes":
        problems.append("appendonly is 'no': a restart loses every queued job; set "
                        "'appendonly yes'")
    return problems


def _decode_config(raw: dict[Any, Any]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else str(k)):
            (v.decode() if isinstance(v, bytes) else str(v)) for k, v in raw.items()}


def check_redis_safety(client: redis.Redis[bytes], settings: RedisSettings) -> list[str]:
    """Check eviction policy and AOF; raise or warn as ``settings.require_safe`` says.

    Returns:
        The problems found (empty when Redis is safe).

    Raises:
        UnsafeRedis: problems were found and ``require_safe`` is on.
    """
    try:
        config = _decode_config(client.config_get("maxmemory-policy"))
        config.update(_decode_config(client.config_get("appendonly")))
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError) as exc:
        return _unchecked(settings, exc)
    return _judge(config, settings)


def _access_error(settings: RedisSettings, exc: Exception) -> ConfigError:
    """One clear line for a Redis that refuses the safety check's CONFIG GET."""
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return ConfigError(f"redis.url: the Redis user of {redact_url(settings.url)} may not "
                           f"run CONFIG GET (jobpipe checks eviction and AOF at start): {exc}; "
                           "grant +config|get or set redis.require_safe = false")
    return redis_access_error(settings.url, exc)


def redis_access_error(url: str, exc: Exception) -> ConfigError:
    """One clear line for a Redis that refuses our credentials or a command."""
    where = redact_url(url)
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return ConfigError(f"redis.url: the Redis user of {where} may not run a command "
                           f"jobpipe needs: {exc}; grant it in the Redis ACL")
    return ConfigError(f"redis.url: Redis at {where} refused the credentials ({exc}); put "
                       "the user and password in the URL: redis://USER:PASSWORD@host:port/db")


def _unchecked(settings: RedisSettings, exc: Exception) -> list[str]:
    """The check could not run. A least-privilege user (a producer's, see
    :mod:`jobpipe.acl`) may not run CONFIG GET: with ``require_safe = false``
    that is a warning, else one clear line."""
    if isinstance(exc, redis.exceptions.NoPermissionError) and not settings.require_safe:
        problem = "CONFIG GET is not permitted: eviction policy and AOF not checked"
        log.warning("Redis at %s: %s", redact_url(settings.url), problem)
        return [problem]
    raise _access_error(settings, exc) from None


async def check_redis_safety_async(
    client: redis.asyncio.Redis[bytes], settings: RedisSettings
) -> list[str]:
    """The asyncio twin of :func:`check_redis_safety`."""
    try:
        config = _decode_config(await client.config_get("maxmemory-policy"))
        config.update(_decode_config(await client.config_get("appendonly")))
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError) as exc:
        return _unchecked(settings, exc)
    return _judge(config, settings)


async def check_redis_at_start_async(client: redis.asyncio.Redis[bytes],
                                     settings: RedisSettings) -> None:
    """The start-up check of a stage that may start while Redis is down.

    Refused credentials and an unsafe Redis stop it (they will not mend by
    themselves); an unreachable Redis is logged, as it may come back.
    """
    try:
        await check_redis_safety_async(client, settings)
    except REDIS_DOWN as exc:  # refused credentials are a ConfigError by now
        log.warning("Redis at %s not reachable yet (%s)", redact_url(settings.url), exc)


def _judge(config: dict[str, str], settings: RedisSettings) -> list[str]:
    problems = redis_safety_problems(config)
    if problems and settings.require_safe:
        raise UnsafeRedis(f"Redis at {redact_url(settings.url)} is unsafe for jobs: "
                          + "; ".join(problems))
    for problem in problems:
        log.warning("Redis at %s: %s", redact_url(settings.url), problem)
    return problems


#: librdkafka's own log lines, as records of this logger (served by the client's
#: poll) instead of raw ``%3|...|FAIL|`` lines on stderr: a one-shot command
#: whose broker is down prints one error line, not one line per reconnect.
LIBRDKAFKA_LOG = logging.getLogger("jobpipe.librdkafka")


def _librdkafka_line_key(record: logging.LogRecord) -> tuple[Any, ...]:
    # args are (facility, client name, "[thrd:BROKER]: text"): the text varies by
    # milliseconds between attempts, the broker thread does not.
    facility, client, text = (*tuple(record.args or ()), "", "", "")[:3]
    return facility, client, str(text).partition("]")[0]


LIBRDKAFKA_LOG.addFilter(RepeatFilter(_librdkafka_line_key))


def kafka_common_config(settings: KafkaSettings) -> dict[str, Any]:
    """Properties every Kafka client gets: bootstrap, IPv4 preference, logging, pass-through."""
    return {
        "bootstrap.servers": settings.bootstrap,
        # librdkafka tries ::1 first for "localhost"; our brokers listen on IPv4.
        "broker.address.family": "v4",
        "logger": LIBRDKAFKA_LOG,
        **settings.config,
    }


def kafka_producer_config(settings: KafkaSettings, **tuning: Any) -> dict[str, Any]:
    """A producer config with ``acks=all`` and idempotence enforced.

    ``linger.ms`` is 0 unless tuned: a lone record goes out at once, and under
    load librdkafka still batches whatever queued while a request was in flight,
    so batches grow with the backlog without holding a job at a low rate.

    Args:
        tuning: stage-specific properties (``linger.ms``, ``compression.type``).
            They cannot override the safety-critical keys.
    """
    conf = {**kafka_common_config(settings), "linger.ms": 0, **tuning, **settings.producer}
    conf["acks"] = "all"
    conf["enable.idempotence"] = True
    return conf


# A killed worker's partitions move after this long (classic protocol). librdkafka's
# 45 s default left them idle too long for a job queue; 6 s is the lowest a broker
# accepts out of the box (group.min.session.timeout.ms). docs/reliability.md has
# the fail-over figures.
CLASSIC_SESSION_TIMEOUT_MS = 6_000


def _group_protocol_config(protocol: str) -> dict[str, Any]:
    if protocol == "consumer":
        # KIP-848: the broker assigns (incrementally) and times members out after its
        # group.consumer.session.timeout.ms; no client-side timeouts are allowed.
        return {"group.protocol": "consumer"}
    return {
        "group.protocol": "classic",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": CLASSIC_SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": 1_000,
    }


def kafka_consumer_config(settings: KafkaSettings, group_id: str, **tuning: Any) -> dict[str, Any]:
    """A consumer config for at-least-once: offsets are stored by the stage, not on poll."""
    conf = {
        **kafka_common_config(settings),
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 1000,
        **_group_protocol_config(settings.group_protocol),
        **tuning,
        **settings.consumer,
    }
    conf["enable.auto.offset.store"] = False
    return conf


def kafka_admin_config(settings: KafkaSettings) -> dict[str, Any]:
    """An AdminClient config."""
    return kafka_common_config(settings)
