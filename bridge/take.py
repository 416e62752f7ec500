"""Reliable take and acknowledgement: Redis Lua, one round trip per queue each.

A batch moves atomically from a ready list to this bridge's in-flight list for
that ready list (one in-flight list per (bridge, ready list), so recovery
returns every job to exactly the list it came from, keeping keyed jobs on
their shard and priority level). It leaves the in-flight list only when Kafka
acknowledged every job in it (or the job went to the dead list, in the same
script). Batches are acknowledged oldest first; see :mod:`bridge.batch`.
One take call moves a batch from each of several lists of a queue, and one
ack call trims several of its in-flight lists: calls are paid per queue and
round trip, not per list.

Fencing: both scripts first check that this bridge id is still in the queue's
owners set (the shard's, for a queue with ``shard_slots``: each shard's lists,
index, owners and dead list share its hash tag). A reaper removes a lapsed
bridge from that set in the same script
that returns its in-flight list (:mod:`bridge.reaper`), and bridge ids are
never reused, so a bridge presumed dead can never trim (and so lose) jobs that
another bridge has since put back or taken: its scripts answer "fenced", and
it drops its outstanding batches (the reaper already returned them; what it
produced meanwhile becomes duplicates, never losses).

A take or ack whose reply was lost (the connection broke or timed out) may
have run: a take that ran moved a batch the bridge does not know of, and acks
trim by count, so the next ack would trim that batch's jobs instead of its own
(lost), and an ack run twice trims a batch Kafka has not acknowledged. Neither
is sent again: :class:`OutcomeUnknown` tells the bridge, which retires this id
(its lists go back to ready) before it takes again, as after a fence.

Every bridge script is flagged ``allow-oom`` (Redis >= 7): a Redis at
``maxmemory`` under noeviction refuses growing writes, but the bridge only
moves jobs out of Redis, and it must keep doing so for the backlog to drain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from redis.exceptions import NoScriptError

from bridge.batch import Source
from jobpipe import names
from jobpipe.kept_connection import KeptConnection
from jobpipe.pipelined import evalsha_command, run_script, run_script_calls
from jobpipe.redis_failures import REDIS_FAILURES, may_have_run

# One call takes from several ready lists of one queue (they share its hash
# slot, or a shard's with shard_slots): a bridge woken by one push does not know
# which list it landed on, and one script over all of them costs one round trip
# where a take per list cost one each. The tenant registry is named (last) and
# touched only for a fair queue's one list.
# KEYS: owners, index, then (ready, inflight) per list, then tenants if a tenant
# ARGV: bridge id, n (per list), tenant ('' = none)
_TAKE = """#!lua flags=allow-oom
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return false end
local n, out, last = tonumber(ARGV[2]), {}, #KEYS
if ARGV[3] ~= '' then last = last - 1 end
for k = 3, last, 2 do
  local items = redis.call('RPOP', KEYS[k], n)
  if items then
    redis.call('LPUSH', KEYS[k + 1], unpack(items))
    redis.call('SADD', KEYS[2], KEYS[k + 1])
  else
    items = {}
  end
  out[#out + 1] = items
end
if ARGV[3] ~= '' and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('SREM', KEYS[#KEYS], ARGV[3])
end
return out
"""

# Acknowledges the oldest jobs of several in-flight lists of one queue (of one
# hash slot) at once.
# KEYS: owners, dead, inflight... ; ARGV: bridge id, n per inflight list..., dead records...
_ACK = """#!lua flags=allow-oom
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return -1 end
local lists = #KEYS - 2
for i = 2 + lists, #ARGV, 1000 do
  redis.call('LPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
for k = 1, lists do
  redis.call('LTRIM', KEYS[k + 2], 0, -(tonumber(ARGV[k + 1]) + 1))
end
return 1
"""


class Fenced(Exception):
    """This bridge id was presumed dead and its in-flight lists were returned."""


class OutcomeUnknown(Exception):
    """A take or ack may or may not have run: this id's in-flight lists are no
    longer known (see the module docstring)."""


@contextmanager
def _outcome_known(what: str) -> Iterator[None]:
    """Raise :class:`OutcomeUnknown` for a failure after which ``what`` may have run."""
    try:
        yield
    except REDIS_FAILURES as exc:
        if may_have_run(exc):
            raise OutcomeUnknown(f"{what}: {exc}") from exc
        raise


class Taker:
    """The take and ack scripts, bound to one client and one bridge id."""

    def __init__(self, client: redis.Redis[bytes], bridge_id: str, ns: str,
                 kept: KeptConnection | None = None) -> None:
        self._client = client
        self._kept = kept  # the connection the bridge's calls go on (else a pooled one)
        self.bridge_id = bridge_id
        self._ns = ns
        self._take = client.register_script(_TAKE)
        self._ack = client.register_script(_ACK)

    def take_lists(self, sources: Sequence[Source], n: int) -> list[list[bytes]]:
        """Move up to ``n`` jobs from each of ``sources`` (all of one queue; a
        tenant list only alone) in one script; the jobs taken from each, in order.

        Raises:
            Fenced: this bridge id lost its ownership.
            OutcomeUnknown: the take may have run, its reply was lost.
        """
        keys, args = self._take_call(sources, n)
        with _outcome_known("take"):
            taken = run_script(self._client, self._take, keys, args, self._kept)
        return self._taken(taken)

    def take_command(self, sources: Sequence[Source], n: int) -> tuple[Any, ...]:
        """The ``EVALSHA`` of :meth:`take_lists`, for a connection of its own to
        send (the idle wait's, :mod:`bridge.wake`); read its reply with :meth:`taken_ahead`."""
        return evalsha_command(self._take, *self._take_call(sources, n))

    def taken_ahead(self, reply: Any) -> list[list[bytes]] | None:
        """What a :meth:`take_command` sent elsewhere took, as :meth:`take_lists`
        returns it; ``None`` when it did not run (Redis had lost the script).

        Raises:
            Fenced: this bridge id lost its ownership.
            ResponseError: Redis refused it, as :meth:`take_lists` raises it.
        """
        return self._taken(reply) if _ran(reply) else None

    def _take_call(self, sources: Sequence[Source], n: int) -> tuple[list[str], list[Any]]:
        q, slot, ns = sources[0].queue, sources[0].slot, self._ns
        keys = [names.inflight_owners_key(ns, q, slot), names.inflight_index_key(ns, q, slot)]
        for source in sources:
            keys += (source.key, source.inflight)
        tenant = sources[0].tenant if len(sources) == 1 else None
        if tenant:
            keys.append(names.tenants_key(ns, q))
        return keys, [self.bridge_id, n, tenant or ""]

    def _taken(self, reply: Any) -> list[list[bytes]]:
        if reply is None:
            raise Fenced(self.bridge_id)
        return [list(items) for items in reply]

    def ack(self, acks: Sequence[tuple[Source, int, Sequence[bytes]]]) -> None:
        """Remove the ``n`` oldest in-flight jobs of each ``(source, n, dead_records)``,
        pushing ``dead_records`` to the dead list in the same script.

        One script per queue (per hash slot of a queue with ``shard_slots``),
        whatever the number of its lists, and one round trip in all
        (:func:`jobpipe.pipelined.run_script_calls`).

        Raises:
            Fenced: this bridge id lost its ownership.
            OutcomeUnknown: the ack may have run (for some queues), its reply was lost.
        """
        by_slot: dict[tuple[str, int | None], list[tuple[Source, int, Sequence[bytes]]]] = {}
        for each in acks:
            by_slot.setdefault((each[0].queue, each[0].slot), []).append(each)
        calls = [self._ack_call(q, slot, group) for (q, slot), group in by_slot.items()]
        with _outcome_known("ack"):
            results = run_script_calls(self._client, self._ack, calls, self._kept)
        if any(r == -1 for r in results):
            raise Fenced("ack refused")

    def ack_command(self, acks: Sequence[tuple[Source, int, Sequence[bytes]]]
                    ) -> tuple[Any, ...]:
        """The ``EVALSHA`` of :meth:`ack` for lists of one queue and slot, for a
        connection of its own to send (the idle wait's); read its reply with
        :meth:`acked_ahead`."""
        q, slot = acks[0][0].queue, acks[0][0].slot
        assert all((s.queue, s.slot) == (q, slot) for s, _, _ in acks), "one script call"
        return evalsha_command(self._ack, *self._ack_call(q, slot, acks))

    def acked_ahead(self, reply: Any) -> bool:
        """Whether an :meth:`ack_command` sent elsewhere ran; ``False`` when Redis had
        lost the script (nothing ran: ack again with :meth:`ack`).

        Raises:
            Fenced: this bridge id lost its ownership.
            ResponseError: Redis refused it, as :meth:`ack` raises it.
        """
        if not _ran(reply):
            return False
        if reply == -1:
            raise Fenced("ack refused")
        return True

    def _ack_call(self, q: str, slot: int | None,
                  acks: Sequence[tuple[Source, int, Sequence[bytes]]]
                  ) -> tuple[list[str], list[str | int | bytes]]:
        keys = [names.inflight_owners_key(self._ns, q, slot), names.dead_key(self._ns, q, slot),
                *(source.inflight for source, _, _ in acks)]
        args: list[str | int | bytes] = [self.bridge_id, *(n for _, n, _ in acks)]
        for _, _, dead_records in acks:
            args += dead_records
        return keys, args


def _ran(reply: Any) -> bool:
    """Whether a script sent on another connection ran: ``False`` for a lost
    script (``NOSCRIPT``: nothing ran); any other error reply is raised."""
    if isinstance(reply, NoScriptError):
        return False
    if isinstance(reply, Exception):
        raise reply
    return True
