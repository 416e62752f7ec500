"""Heartbeats, and returning the in-flight jobs of bridges presumed dead.

Every bridge id is ``<name>.<random>``: a *name* (``--bridge-id``, stable across
restarts) plus a suffix new to each incarnation. Ids are never reused, which is
what makes the proof below work.

Liveness lives in ``names.bridges_key`` (a ZSET, id -> deadline in ms, Redis
clock). Any live bridge periodically:

1. claims lapsed ids: one script removes every id whose deadline passed;
2. sweeps each queue's in-flight index: a list whose owner id is no longer in
   the ZSET is returned, in one script per list, to the RIGHT end (the front)
   of the ready list it came from, in its original order, after removing the
   owner from the queue's owners set (the fence, see :mod:`bridge.take`).
   A queue with ``shard_slots`` has an index and an owners set per shard,
   under that shard's hash tag with its lists: a bridge registers in each, and
   is fenced in each whose lists are returned (as in each queue's).

Why no job is lost or stranded: a list exists only after a take by a
registered id (registration precedes taking), so an id missing from the ZSET
was removed and will never come back. Its lists can no longer be written by
their owner (fenced in the same script that moves them), and each move is
atomic, so every job is either still in the in-flight list or back in ready.
A reaper that dies mid-sweep leaves the rest for the next sweep.

A restarted bridge with the same name claims its earlier incarnations at once
(:meth:`Reaper.claim_name`), so it recovers its own jobs without waiting for
the heartbeat timeout.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket

import redis

from jobpipe import names
from jobpipe.errors import ConfigError

log = logging.getLogger(__name__)

_HEARTBEAT = """#!lua flags=allow-oom
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '0' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
return 1
"""

_OWN = """#!lua flags=allow-oom
return redis.call('SADD', KEYS[1], ARGV[1])
"""

_CLAIM_LAPSED = """#!lua flags=allow-oom
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms)
for _, id in ipairs(ids) do redis.call('ZREM', KEYS[1], id) end
return ids
"""

# KEYS: inflight, source, owners, index, then tenants if a tenant
# ARGV: owner id, tenant ('' = none)
_RECOVER = """#!lua flags=allow-oom
redis.call('SREM', KEYS[3], ARGV[1])
local n = redis.call('LLEN', KEYS[1])
local moved = 0
while moved < n do
  local chunk = redis.call('LRANGE', KEYS[1], moved, moved + 999)
  redis.call('RPUSH', KEYS[2], unpack(chunk))
  moved = moved + #chunk
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[4], KEYS[1])
if n > 0 and ARGV[2] ~= '' then redis.call('SADD', KEYS[5], ARGV[2]) end
return n
"""


def default_bridge_name() -> str:
    """``<host>-<pid>``: unique on this host, not reused by a restart."""
    host = "".join(c if c.isalnum() or c in "_-" else "-" for c in socket.gethostname())
    return f"{host[:60] or 'bridge'}-{os.getpid()}"


def new_bridge_id(name: str) -> str:
    """A fresh incarnation id of bridge ``name``.

    Raises:
        ConfigError: ``name`` is not 1-80 of ``[A-Za-z0-9_-]``.
    """
    if not names.is_valid_queue_name(name) or len(name) > 80:
        raise ConfigError(f"bridge id: {name!r} must be 1-80 of [A-Za-z0-9_-]")
    return f"{name}.{secrets.token_hex(4)}"


def tenant_of(ns: str, queue: str, source_key: str) -> str:
    """The tenant of a tenant list key, or ``''`` for a ready list."""
    prefix = names.tenant_ready_key(ns, queue, "")
    return source_key[len(prefix):] if source_key.startswith(prefix) else ""


class Reaper:
    """Heartbeat of one bridge id, and recovery of dead bridges' in-flight jobs."""

    def __init__(self, client: redis.Redis[bytes], ns: str,
                 slots: list[tuple[str, int | None]], bridge_id: str, timeout_s: float) -> None:
        self._client = client
        self._ns = ns
        self._slots = slots  # (queue, shard with its own hash tag, or None)
        self.bridge_id = bridge_id
        self._timeout_ms = int(timeout_s * 1000)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._claim = client.register_script(_CLAIM_LAPSED)
        self._recover = client.register_script(_RECOVER)
        self._own = client.register_script(_OWN)

    def register(self) -> None:
        """Announce this id (heartbeat first, then ownership of each queue)."""
        self._heartbeat(keys=[names.bridges_key(self._ns)],
                        args=[self.bridge_id, self._timeout_ms, "1"])
        for q, slot in self._slots:  # one call each: the keys live on different slots
            self._own(keys=[names.inflight_owners_key(self._ns, q, slot)], args=[self.bridge_id])

    def beat(self) -> bool:
        """Renew the heartbeat. False when this id was claimed (presumed dead)."""
        return bool(self._heartbeat(keys=[names.bridges_key(self._ns)],
                                    args=[self.bridge_id, self._timeout_ms, "0"]))

    def claim_name(self, name: str) -> list[str]:
        """Claim every registered incarnation of ``name`` (a restart of it)."""
        key = names.bridges_key(self._ns)
        prefix = f"{name}.".encode()
        mine = [m for m in self._client.zrange(key, 0, -1)
                if m.startswith(prefix) and m.decode() != self.bridge_id]
        if mine:
            self._client.zrem(key, *mine)
        return [m.decode() for m in mine]

    def claim_lapsed(self) -> list[str]:
        """Remove every id whose heartbeat deadline passed; returns them."""
        ids = self._claim(keys=[names.bridges_key(self._ns)])
        return [i.decode() for i in ids]

    def sweep(self) -> int:
        """Return the in-flight lists of ids no longer registered; jobs moved."""
        moved = 0
        for q, slot in self._slots:
            index = names.inflight_index_key(self._ns, q, slot)
            keys = [k.decode() for k in self._client.smembers(index)]
            if not keys:
                continue
            # Read the index before the live set: see the module docstring.
            live = {m.decode() for m in self._client.zrange(names.bridges_key(self._ns), 0, -1)}
            for key in keys:
                owner = names.bridge_id_from_inflight(key)
                if owner in live:
                    continue
                moved += self.recover_list(q, slot, key, owner)
        return moved

    def recover_list(self, queue: str, slot: int | None, key: str, owner: str) -> int:
        """Return one in-flight list to the front of its ready list (atomic)."""
        source = names.inflight_source(key)
        tenant = tenant_of(self._ns, queue, source)
        keys = [key, source, names.inflight_owners_key(self._ns, queue, slot),
                names.inflight_index_key(self._ns, queue, slot)]
        if tenant:
            keys.append(names.tenants_key(self._ns, queue))
        n = int(self._recover(keys=keys, args=[owner, tenant]))
        if n:
            log.warning("returned %d in-flight jobs of bridge %s to %s", n, owner, source)
        return n

    def retire(self) -> int:
        """Clean exit: return whatever is left in this id's lists, then unregister."""
        self._client.zrem(names.bridges_key(self._ns), self.bridge_id)
        moved = 0
        for q, slot in self._slots:
            index = names.inflight_index_key(self._ns, q, slot)
            for raw in self._client.smembers(index):
                key = raw.decode()
                if names.bridge_id_from_inflight(key) == self.bridge_id:
                    moved += self.recover_list(q, slot, key, self.bridge_id)
            self._client.srem(names.inflight_owners_key(self._ns, q, slot), self.bridge_id)
        return moved
