"""A job's state, looked up by id: the record, its forward-only rule, lookup and cancel.

Queues with ``track_status`` keep one record per job, a field of a hash shared
with the jobs made in the same 256 ms (:func:`jobpipe.names.job_states_key`; the
layout is above :data:`ADVANCE_LUA`).
The producer writes a job's first record as it pushes the job (``ingest/``);
the bridge and the worker then write in batches with :data:`ADVANCE_LUA`, which
moves a record only forward: each state has a rank ``attempt * 10 + stage`` (queued 1, in
Kafka 2, running 3, retrying 4) and the final states (succeeded, failed,
cancelled) outrank everything of their generation. At-least-once delivery can
hand a worker a job again; its "running" then ranks below the "succeeded"
already written and changes nothing.

A replay from the DLQ (``jobpipe dlq replay``) is the one way a job runs again
after a final state: it starts a new *generation* (:func:`generation`, the
job's replay count), whose every state outranks the earlier generations', so a
replayed job's "failed" record moves on to "in Kafka", "running" and its new
outcome. Within a generation the rule above holds, so a re-delivery of either
generation still never moves a final state back. A cancel request of an
earlier generation does not carry over to the replay.

A cancel request is kept in the record's header: a job that has not started
becomes ``cancelled`` at once and is skipped when it reaches a worker; a
running one keeps ``running`` until its worker has stopped it (see
``consumers/``). The job's id also joins the queue's set of cancel requests
(:func:`jobpipe.names.cancel_requests_key`), so a worker asks the set, one
small ``SMISMEMBER`` per batch, and reads the records of the few ids in it,
not the whole record of every job it admits. The set only narrows the search:
the record decides (a replay drops an earlier generation's request from the
record, not from the set). It lives at least as long as the records of its
requests (each request extends its TTL to :func:`record_ttl_s`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from jobpipe import names
from jobpipe.envelope import Job, decode, peek_id
from jobpipe.errors import EnvelopeError
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec

QUEUED, DELAYED, IN_KAFKA, RUNNING, RETRYING = "queued", "delayed", "in_kafka", "running", \
    "retrying"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})
_STAGE = {QUEUED: 1, DELAYED: 1, IN_KAFKA: 2, RUNNING: 3, RETRYING: 4}
FINAL_RANK = 10**12  # above any attempt's stages
GENERATION_SPAN = 10**13  # above FINAL_RANK; Lua's doubles stay exact to ~900 generations
REPLAYS_META = "replays"  # the job's meta field counting its DLQ replays (consumers.dlq.record)
POLL_S = 0.05  # wait_for: how often a waiting caller looks again


def rank(state: str, attempt: int, generation: int = 0) -> int:
    """The order of states: a record only ever moves to a higher rank."""
    if state in FINAL_STATES:
        return generation * GENERATION_SPAN + FINAL_RANK
    return generation * GENERATION_SPAN + attempt * 10 + _STAGE[state]


def generation(meta: Mapping[str, str]) -> int:
    """A job's generation: how many times it was replayed from the DLQ (0: never)."""
    count = meta.get(REPLAYS_META)
    if count is None:  # the common case, one dict lookup
        return 0
    try:
        return max(0, int(count))
    except ValueError:  # a hand-made meta value: the job still runs, as generation 0
        return 0


# A record is one field of a hash (:func:`jobpipe.names.job_states_key`: the jobs
# made in the same 256 ms share one), the job id its field name, its value
# ``<rank>|<cancel>|<state>|<attempt>|<at>|<details>``, ``rank`` as text (ranks
# reach 15+ digits; Lua's doubles hold them exactly), ``cancel`` the ns of a
# cancel request or empty, ``details`` the state's own fields as a JSON object or
# empty. Each write replaces the whole state, so no field of an older state
# lingers. A batch's records cost one HMGET and one HSET per hash, where a key
# per job cost a command per job, each with its own TTL to keep: a hash expires
# whole, :func:`record_ttl_s` after its last write.
#
# KEYS: the state hashes. ARGV[1]: ttl_s; then, for each key in order, its
# number of groups and the groups, each: n, rank, body (:func:`record_body`),
# then the n job ids. Jobs moving to the same state at the same time share one
# group, so a batch passes a few arguments besides its ids. A record moves only
# to a higher rank and keeps its cancel request, unless the new rank starts a
# later generation (a replay): that drops the earlier generation's request. An
# id named twice in one call moves at most to its higher rank.
ADVANCE_LUA = """
local ttl, a, moved = ARGV[1], 2, 0
for b = 1, #KEYS do
  local key, p, wrote = KEYS[b], a + 1, false
  -- group by group: a later group reads what an earlier one wrote, so a job
  -- named in two groups (states) moves to the higher rank only
  for g = 1, tonumber(ARGV[a]) do
    local n, r, body = tonumber(ARGV[p]), tonumber(ARGV[p + 1]), ARGV[p + 2]
    local head = ARGV[p + 1] .. '|'
    -- per group, not per job: where the group's generation starts, and the whole
    -- record of a job with no cancel request (the common case: no concatenation)
    local genstart, plain = math.floor(r / SPAN) * SPAN, head .. '|' .. body
    for first = p + 3, p + 2 + n, 2000 do  -- unpack's stack limit: 2 fields a job
      local last = math.min(first + 1999, p + 2 + n)
      local records = redis.call('HMGET', key, unpack(ARGV, first, last))
      local fields, m = {}, 0
      for i = first, last do
        local cur, rank, cancel = records[i - first + 1], 0, ''
        if cur then
          local x, c = string.match(cur, '^(%d+)|(%d*)|')
          rank, cancel = tonumber(x), c
        end
        if r > rank then
          local record = plain
          if cancel ~= '' and rank >= genstart then record = head .. cancel .. '|' .. body end
          fields[m + 1], fields[m + 2], m = ARGV[i], record, m + 2
        end
      end
      if m > 0 then
        redis.call('HSET', key, unpack(fields, 1, m))
        moved, wrote = moved + m / 2, true
      end
    end
    p = p + 3 + n
  end
  if wrote then redis.call('EXPIRE', key, ttl) end
  a = p
end
return moved
""".replace("SPAN", str(GENERATION_SPAN))

# KEYS[1]: the record's hash, KEYS[2]: its queue's set of cancel requests. ARGV:
# now_ns, FINAL_RANK, ttl_s, GENERATION_SPAN, job id.
# Reply: 'none' (no record), 'final' (already over), 'requested' (running: its
# worker stops it), 'cancelled' (had not started: cancelled now). Final is
# within the record's generation: the final rank of its generation. Either
# request also adds the id to the set, whose TTL never shrinks below ttl_s
# (TTL -1: none yet), so it outlives every record holding a request.
CANCEL_LUA = """
local cur = redis.call('HGET', KEYS[1], ARGV[5])
if not cur then return 'none' end
local rank, rest = string.match(cur, '^(%d+)|%d*|(.*)$')
local r, span = tonumber(rank), tonumber(ARGV[4])
local final = r - r % span + tonumber(ARGV[2])
if r >= final then return 'final' end
redis.call('SADD', KEYS[2], ARGV[5])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
local state, attempt = string.match(rest, '^([%a_]+)|(%d+)|')
if state == 'running' then
  redis.call('HSET', KEYS[1], ARGV[5], rank .. '|' .. ARGV[1] .. '|' .. rest)
  return 'requested'
end
-- as text: Redis turns a Lua number into a reply with 14 significant digits only
redis.call('HSET', KEYS[1], ARGV[5], string.format('%d', final) .. '|' .. ARGV[1] ..
           '|cancelled|' .. attempt .. '|' .. ARGV[1] .. '|')
return 'cancelled'
"""


def record_ttl_s(spec: QueueSpec) -> int:
    """How long a queue's state hash is kept after its last write: every record
    in it lives at least this long after its own last change. A queue that keeps
    results keeps its records for the longer of ``status_ttl_s`` and
    ``result_ttl_s``: a hash holds the records of many jobs and has one TTL."""
    return max(spec.status_ttl_s, spec.result_ttl_s) if spec.keep_results else spec.status_ttl_s


def record_body(state: str, attempt: int, at_ns: int, fields: Mapping[str, str | int]) -> str:
    """A record after its rank and cancel request: state, attempt, time, details."""
    details = orjson.dumps(fields).decode() if fields else ""
    return f"{state}|{attempt}|{at_ns}|{details}"


def cancel_asked(record: bytes | None) -> bool:
    """Whether a record (``HGET``/``HMGET`` reply) holds a cancel request."""
    return record is not None and record.split(b"|", 2)[1] != b""


def succeeded_in(record: bytes | None, generation_: int) -> bool:
    """Whether a record (``HGET``/``HMGET`` reply) says its job succeeded in
    generation ``generation_`` or a later one: it then stands in for the job's
    done marker (``consumers.idempotency``)."""
    # Most are not: no parsing. ``find``: a bytes ``in`` costs twice as much.
    if record is None or record.find(_SUCCEEDED_FIELD) < 0:
        return False
    head, _, state, _ = record.split(b"|", 3)
    return state == _SUCCEEDED and int(head) >= rank(SUCCEEDED, 0, generation_)


_SUCCEEDED = SUCCEEDED.encode()
_SUCCEEDED_FIELD = b"|" + _SUCCEEDED + b"|"


def new_record(state: str, at_ns: int, fields: Mapping[str, str | int]) -> str:
    """The whole record of a job just enqueued (attempt 1, no cancel request)."""
    return f"{rank(state, 1)}||{record_body(state, 1, at_ns, fields)}"


@dataclass(frozen=True, slots=True)
class Update:
    """One state change of one job, to be written with others in one call.

    Attributes:
        job_id, state, attempt: the job and where it is now.
        fields: what else the record says in this state.
        generation: the job's :func:`generation` (0 until it is replayed).
    """

    job_id: str
    state: str
    attempt: int
    fields: Mapping[str, str | int]
    generation: int = 0

    @classmethod
    def of(cls, job: Job, state: str, fields: Mapping[str, str | int] | None = None) -> Update:
        """``job`` (its id, attempt and generation) moving to ``state``."""
        return cls(job.id, state, job.attempt, fields or {}, generation(job.meta))


@dataclass(frozen=True, slots=True)
class SameUpdate:
    """The same state change of several jobs, with no fields: a batch's successes
    that keep no result, written without an :class:`Update` per job.

    Attributes:
        job_ids: the jobs, all of one ``attempt`` and ``generation``.
    """

    job_ids: Sequence[str]
    state: str
    attempt: int
    generation: int = 0


# Jobs per ADVANCE_LUA call at most: Redis runs a script to its end while every
# other client waits (a producer's enqueue among them), so a bridge or worker
# batch of thousands of jobs goes as several calls of a few ms at most each.
ADVANCE_MAX_JOBS = 500

Call = tuple[list[str], list[str | int]]  # KEYS, ARGV of one ADVANCE_LUA call
_Group = tuple[int, str]  # rank, body


def advance_calls(namespace: str, spec: QueueSpec, updates: Iterable[Update | SameUpdate],
                  most: int = ADVANCE_MAX_JOBS) -> list[Call]:
    """The :data:`ADVANCE_LUA` calls writing ``updates`` (of one queue's jobs), in
    order, of at most ``most`` jobs each."""
    now = time.time_ns()
    hashes: dict[str, dict[_Group, list[str]]] = {}
    # Most updates carry no fields (a success keeping no result): their group
    # depends on state, attempt and generation only, so it is built once.
    plain: dict[tuple[str, int, int], _Group] = {}
    for up in updates:
        if isinstance(up, Update) and up.fields:
            group = _group(up.state, up.attempt, up.generation, now, up.fields)
        else:
            bare = (up.state, up.attempt, up.generation)
            group = plain.get(bare) or plain.setdefault(bare, _group(*bare, now, {}))
        if isinstance(up, SameUpdate):
            for key, ids in by_state_hash(namespace, spec.name, up.job_ids).items():
                _add(hashes, key, group, *ids)
        else:
            _add(hashes, names.job_states_key(namespace, spec.name, up.job_id), group, up.job_id)
    return _calls(record_ttl_s(spec), hashes, most)


def advance_all_calls(namespace: str, spec: QueueSpec, raws: Sequence[bytes], state: str,
                      at_ns: int | None = None, most: int = ADVANCE_MAX_JOBS) -> list[Call]:
    """The :data:`ADVANCE_LUA` calls moving every job of ``raws`` (encoded jobs;
    attempt 1) to ``state`` as of ``at_ns`` (default: now) in its generation, e.g.
    the bridge's ``in_kafka``. A replayed job can reach the bridge again (parked
    while its tenant was paused, then resumed), so the generation is read, but
    only from an envelope naming the replay counter: the others are read by id
    alone."""
    now = time.time_ns() if at_ns is None else at_ns
    by_generation: dict[int, list[str]] = {}
    if b"".join(raws).find(_REPLAYS_FIELD) < 0:  # the usual batch: no replay, one search
        by_generation[0] = [job_id for raw in raws if (job_id := peek_id(raw)) is not None]
    else:
        for raw in raws:
            if (job_id := peek_id(raw)) is not None:
                gen = 0 if raw.find(_REPLAYS_FIELD) < 0 else _raw_generation(raw)
                by_generation.setdefault(gen, []).append(job_id)
    hashes: dict[str, dict[_Group, list[str]]] = {}
    for gen, ids in by_generation.items():
        group = _group(state, 1, gen, now, {})
        for key, part in by_state_hash(namespace, spec.name, ids).items():
            _add(hashes, key, group, *part)
    return _calls(record_ttl_s(spec), hashes, most)


def by_state_hash(namespace: str, queue: str, job_ids: Iterable[str]) -> dict[str, list[str]]:
    """``job_ids`` (of one queue) by the hash that holds their records, in order
    within each (:func:`~jobpipe.names.by_id_hash`)."""
    return names.by_id_hash(job_ids, partial(names.job_states_key, namespace, queue))


def _add(hashes: dict[str, dict[_Group, list[str]]], key: str, group: _Group,
         *job_ids: str) -> None:
    groups = hashes.get(key)
    if groups is None:
        hashes[key] = {group: [*job_ids]}
        return
    ids = groups.get(group)
    if ids is None:
        groups[group] = [*job_ids]
    else:
        ids += job_ids


def _calls(ttl_s: int, hashes: dict[str, dict[_Group, list[str]]], most: int) -> list[Call]:
    """``hashes`` (key, then group, then ids) as calls of at most ``most`` ids each;
    a hash or group split across calls goes on in the next one."""
    calls: list[Call] = []
    keys: list[str] = []
    args: list[str | int] = [ttl_s]
    room = most
    for key, groups in hashes.items():
        count_at, count = -1, 0
        for (rank_, body), ids in groups.items():
            start = 0
            while start < len(ids):
                if room == 0:
                    calls.append((keys, args))
                    keys, args, room, count_at = [], [ttl_s], most, -1
                if count_at < 0:
                    keys.append(key)
                    count_at, count = len(args), 0
                    args.append(0)
                part = ids[start : start + room]
                count += 1
                args[count_at] = count
                args += (len(part), rank_, body, *part)
                start += len(part)
                room -= len(part)
    if keys:
        calls.append((keys, args))
    return calls


_REPLAYS_FIELD = orjson.dumps(REPLAYS_META)  # as an envelope's meta names it


def _raw_generation(raw: bytes) -> int:
    try:
        return generation(decode(raw).meta)
    except EnvelopeError:  # the bridge sends it on as it is; its record stays as it was
        return 0


def _group(state: str, attempt: int, generation: int, now: int,
           fields: Mapping[str, str | int]) -> _Group:
    """One argument group of :data:`ADVANCE_LUA` but its ids: rank and body."""
    return rank(state, attempt, generation), record_body(state, attempt, now, fields)


def result_fields(spec: QueueSpec, value: Any) -> dict[str, str | int]:
    """What a succeeded job's record keeps of its return value (``keep_results``)."""
    if not spec.keep_results:
        return {}
    try:
        text = orjson.dumps(value)
    except TypeError as exc:
        return {"result_dropped": f"not JSON-serializable: {exc}"}
    if len(text) > spec.result_max_bytes:
        return {"result_dropped": f"{len(text)} bytes, over result_max_bytes "
                                  f"{spec.result_max_bytes}"}
    return {"result": text.decode()}


@dataclass(frozen=True, slots=True)
class JobStatus:
    """Where a tracked job is.

    Attributes:
        job_id, queue: the job.
        state: ``queued``, ``delayed``, ``in_kafka``, ``running``, ``retrying``,
            ``succeeded``, ``failed`` or ``cancelled``.
        attempt: the attempt this state belongs to.
        at_ns: when the job entered this state (ns since the epoch).
        details: the state's own fields: ``run_at`` (delayed), ``worker`` and
            ``started_at`` (running), ``next_at`` and ``error`` (retrying),
            ``reason`` and ``error`` (failed), ``result`` or ``result_dropped``
            (succeeded), ``cancel`` (when cancelling was asked).
    """

    job_id: str
    queue: str
    state: str
    attempt: int
    at_ns: int
    details: dict[str, Any]

    @property
    def final(self) -> bool:
        """Whether the job is over (succeeded, failed or cancelled)."""
        return self.state in FINAL_STATES

    @property
    def result(self) -> Any:
        """The kept return value of a succeeded job (``None`` when none was kept)."""
        text = self.details.get("result")
        return None if text is None else orjson.loads(text)

    def to_json(self) -> dict[str, Any]:
        """The status as a JSON object (the HTTP and CLI answer)."""
        out: dict[str, Any] = {"id": self.job_id, "queue": self.queue, "state": self.state,
                               "attempt": self.attempt, "at": self.at_ns}
        for field, value in self.details.items():
            out[field] = orjson.loads(value) if field == "result" else value
        return out

    @classmethod
    def from_record(cls, job_id: str, queue: str, record: bytes) -> JobStatus:
        """Read a record as Redis returned it (``HGET``; layout above :data:`ADVANCE_LUA`)."""
        _rank, cancel, state, attempt, at_ns, text = record.decode().split("|", 5)
        details: dict[str, Any] = orjson.loads(text) if text else {}
        if cancel:
            details["cancel"] = int(cancel)
        return cls(job_id, queue, state, int(attempt), int(at_ns), details)


def _reads(redis: Any, settings: Settings, job_id: str) -> tuple[list[QueueSpec], Any]:
    """A pipeline reading the job's record in every queue with ``track_status``."""
    specs = [spec for spec in settings.topology.queues.values() if spec.track_status]
    pipe = redis.pipeline(transaction=False)
    for spec in specs:
        pipe.hget(names.job_states_key(settings.namespace, spec.name, job_id), job_id)
    return specs, pipe


def _found(job_id: str, specs: Sequence[QueueSpec], records: Sequence[Any]) -> JobStatus | None:
    for spec, record in zip(specs, records, strict=True):
        if record:
            return JobStatus.from_record(job_id, spec.name, record)
    return None


def lookup(redis: Any, settings: Settings, job_id: str) -> JobStatus | None:
    """The state of job ``job_id``, or ``None`` when no tracking queue knows it.

    One pipeline of ``HGET`` over the queues with ``track_status``.
    """
    specs, pipe = _reads(redis, settings, job_id)
    return _found(job_id, specs, pipe.execute()) if specs else None


async def lookup_async(redis: Any, settings: Settings, job_id: str) -> JobStatus | None:
    """:func:`lookup` on a redis.asyncio client."""
    specs, pipe = _reads(redis, settings, job_id)
    return _found(job_id, specs, await pipe.execute()) if specs else None


def _cancel_args(settings: Settings,
                 status: JobStatus) -> tuple[list[str], list[int | str]]:
    spec, ns = settings.topology.get(status.queue), settings.namespace
    keys = [names.job_states_key(ns, status.queue, status.job_id),
            names.cancel_requests_key(ns, status.queue)]
    return keys, [time.time_ns(), FINAL_RANK, record_ttl_s(spec), GENERATION_SPAN, status.job_id]


def cancel(redis: Any, settings: Settings, job_id: str) -> tuple[str, JobStatus | None]:
    """Ask to cancel a job: ``(outcome, status after)``; outcome as :data:`CANCEL_LUA`."""
    status = lookup(redis, settings, job_id)
    if status is None:
        return "none", None
    keys, args = _cancel_args(settings, status)
    outcome = redis.register_script(CANCEL_LUA)(keys=keys, args=args)
    return _text(outcome), lookup(redis, settings, job_id)


async def cancel_async(redis: Any, settings: Settings, job_id: str) -> tuple[str, JobStatus | None]:
    """:func:`cancel` on a redis.asyncio client."""
    status = await lookup_async(redis, settings, job_id)
    if status is None:
        return "none", None
    keys, args = _cancel_args(settings, status)
    outcome = await redis.register_script(CANCEL_LUA)(keys=keys, args=args)
    return _text(outcome), await lookup_async(redis, settings, job_id)


def wait_for(redis: Any, settings: Settings, job_id: str, timeout_s: float) -> JobStatus:
    """Wait until the job is over; returns its final status.

    Raises:
        TimeoutError: it was not over within ``timeout_s`` (or is unknown).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        status = lookup(redis, settings, job_id)
        if status is not None and status.final:
            return status
        if time.monotonic() >= deadline:
            raise TimeoutError(_not_over(job_id, status, timeout_s))
        time.sleep(POLL_S)


async def wait_for_async(redis: Any, settings: Settings, job_id: str,
                    timeout_s: float) -> JobStatus:
    """:func:`wait_for` on a redis.asyncio client."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await lookup_async(redis, settings, job_id)
        if status is not None and status.final:
            return status
        if time.monotonic() >= deadline:
            raise TimeoutError(_not_over(job_id, status, timeout_s))
        await asyncio.sleep(POLL_S)


def _not_over(job_id: str, status: JobStatus | None, timeout_s: float) -> str:
    where = "unknown" if status is None else status.state
    return f"job {job_id} not over after {timeout_s}s (state: {where})"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
