"""The connections Redis lists under one client name (``CLIENT LIST``)."""

from __future__ import annotations

import time

import redis

# Redis sees a socket close on a later turn of its loop, not at once: CLIENT LIST
# right after close() listed a closed client's connections in one fresh-clone CI run.
CLOSE_SEEN_S = 5.0


def connections_named(redis_client: redis.Redis, name: str) -> list[dict[str, str]]:
    """The connections of clients named ``name``."""
    return [c for c in redis_client.client_list() if c.get("name") == name]


def assert_all_closed(redis_client: redis.Redis, name: str) -> None:
    """Every connection named ``name`` is gone, once Redis has seen the closes."""
    deadline = time.monotonic() + CLOSE_SEEN_S
    while left := connections_named(redis_client, name):
        assert time.monotonic() < deadline, left
        time.sleep(0.01)
