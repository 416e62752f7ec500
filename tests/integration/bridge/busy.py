"""Make one real Redis busy for a while, so a command sent meanwhile runs late.

A Lua loop that spins until Redis's own clock says ``seconds`` passed keeps the
node from serving anyone (below ``busy-reply-threshold``, 5 s by default, it
does not even answer BUSY). A command sent during it waits in its socket and
runs right after: a client with a shorter socket timeout gives up first, so
the command runs while its sender never sees the reply. That is a take or ack
whose outcome is unknown, as a slow Redis or a reset connection makes one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobpipe.connections import node_client

_SPIN = """
local t0 = redis.call('TIME')
local start = tonumber(t0[1]) * 1000000 + tonumber(t0[2])
local now = start
while now - start < tonumber(ARGV[1]) do
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
return 1
"""
PROBE_TIMEOUT_S = 0.1


def _plain_client(node: redis.Redis, timeout_s: float | None) -> redis.Redis:
    """A client of ``node`` alone that never retries (a retry would run late too)."""
    kw = node.connection_pool.connection_kwargs
    return redis.Redis(host=kw["host"], port=kw["port"], db=kw.get("db", 0),
                       socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0))


@contextmanager
def busy(client: redis.Redis, key: str, seconds: float = 1.5,
         attempts: int = 20) -> Iterator[None]:
    """Within the block, the Redis that serves ``key`` is busy for a good part of
    ``seconds`` (it was seen busy when the block starts); the block's exit waits
    for the spin to end."""
    node = node_client(client, key)
    spinner = _plain_client(node, None)
    probe = _plain_client(node, PROBE_TIMEOUT_S)
    try:
        for _ in range(attempts):
            thread = threading.Thread(
                target=spinner.eval, args=(_SPIN, 0, int(seconds * 1_000_000)), daemon=True)
            thread.start()
            if _seen_busy(probe, thread):
                try:
                    yield
                finally:
                    thread.join(timeout=60)
                return
            thread.join(timeout=60)
        raise AssertionError(f"Redis never seen busy in {attempts} spins")
    finally:
        spinner.close()
        probe.close()


def _seen_busy(probe: redis.Redis, spinning: threading.Thread) -> bool:
    """Whether a PING went unanswered while the spin ran (polls; False if it ended first)."""
    while spinning.is_alive():
        try:
            probe.ping()
        except redis.exceptions.TimeoutError:
            return True
        time.sleep(0.005)  # a polling interval, not a wait for an outcome
    return False
