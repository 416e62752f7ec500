"""Rate limits per queue and per tenant, shared by every worker through Redis.

One Lua script (one round trip) refills and takes from the queue's bucket and
the tenant's bucket together, on the Redis server's clock so workers on
different machines agree. A limited job waits (sleeps the time the script
says, then asks again); it is never spun through the retry topics. While
Redis is down it waits too (a limit is not lifted by an outage); a refusal
stops the worker (:mod:`consumers.redis_trouble`). The arithmetic is
:mod:`consumers.token_bucket`'s.
"""

from __future__ import annotations

import asyncio
import logging
import random

import redis.asyncio

from consumers.redis_trouble import RedisTrouble
from consumers.token_bucket import Limit, idle_ttl_ms
from jobpipe import names
from jobpipe.redis_failures import REDIS_FAILURES, is_transient
from jobpipe.routing import tenant_or_default
from jobpipe.topology import QueueSpec

log = logging.getLogger(__name__)
# How long a job waits before asking a Redis that did not answer again.
REDIS_DOWN_WAIT_MS = 1000


# KEYS: one bucket per limit. ARGV: rate_per_s, burst, idle_ttl_ms for each key.
# Returns 0 when a token was taken from every bucket, else the wait in ms.
TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = burst
  else
    tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  end
  levels[i] = tokens
  if tokens < 1 then
    wait = math.max(wait, (1 - tokens) * 1000 / rate)
  end
end
if wait > 0 then
  return math.max(1, math.ceil(wait))
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', string.format('%.6f', levels[i] - 1),
             'ts', string.format('%.3f', now))
  redis.call('PEXPIRE', key, ARGV[3 * i])
end
return 0
"""


class RateLimiter:
    """Token buckets in Redis, shared by every worker of a namespace.

    Args:
        client: an asyncio Redis client.
        ns: the namespace.
        trouble: what a failed call leads to (:mod:`consumers.redis_trouble`).
    """

    def __init__(self, client: redis.asyncio.Redis, ns: str,  # type: ignore[type-arg]
                 trouble: RedisTrouble | None = None) -> None:
        self._trouble = trouble or RedisTrouble()
        self._ns = ns
        self._take = client.register_script(TAKE_LUA)

    def _buckets(self, spec: QueueSpec, tenant: str | None) -> tuple[list[str], list[float]]:
        keys: list[str] = []
        args: list[float] = []
        for rate, key in ((spec.rate_limit_per_s, names.rate_key(self._ns, spec.name)),
                          (spec.tenant_rate_limit_per_s,
                           names.rate_key(self._ns, spec.name, tenant_or_default(tenant)))):
            if rate is not None:
                limit = Limit(rate)
                keys.append(key)
                args.extend((rate, limit.burst, idle_ttl_ms(limit)))
        return keys, args

    async def acquire(self, spec: QueueSpec, tenant: str | None) -> None:
        """Return once a job of ``spec`` (and ``tenant``) may run; wait while limited.

        A queue without limits returns at once, without calling Redis.

        Raises:
            redis.exceptions.RedisError: Redis refused the call (the worker stops).
        """
        keys, args = self._buckets(spec, tenant)
        if not keys:
            return
        while True:
            try:
                wait_ms = int(await self._take(keys=keys, args=args))
            except REDIS_FAILURES as exc:
                self._trouble.note("taking a rate-limit token", exc)
                if not is_transient(exc):
                    raise
                wait_ms = REDIS_DOWN_WAIT_MS
            if wait_ms <= 0:
                return
            # A little jitter so workers woken together do not all ask at once.
            await asyncio.sleep(wait_ms / 1000 * random.uniform(1.0, 1.2))
