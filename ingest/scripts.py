"""The Lua script every enqueue runs: backpressure check and all pushes, atomically.

One script, one round trip, for a single job and for a batch of any size and
mix (plain, fair, delayed, unique). Redis runs a script without interleaving
other commands, so the high-water-mark check, the unique windows and the
pushes see one consistent state, and a refused batch writes nothing.

Call layout (built by :class:`ingest.plan.PlanBuilder`)::

    KEYS   the queue's ready lists to count (1..nb), then every key written
    ARGV[1] max_backlog (0 = unbounded)   ARGV[2] nb
    ARGV[3] tenant-list key prefix of a fair queue ('' otherwise)
    ARGV[4] index in KEYS of the fair queue's tenant registry (0 otherwise)
    ARGV[5] 1: the call may have run before (state records may exist), else 0
    ARGV[6..] operations, in order:
        L <key#> <n> <job>*n               LPUSH the n jobs (variadic, in order)
        T <key#> <n> <tenant> <job>*n      LPUSH to a tenant list + SADD registry
        Z <key#> <n> (<score_ms> <job>)*n  ZADD to the delayed set
        U <key#> <ttl_s> <job id>          SET key id NX EX ttl; when the key
                                           exists, skip the next operation
        W <key#>                           ZADD key 0 w: wake the queue's idle
                                           bridges (last; a no-op write while
                                           the member is there, so nothing to AOF)
        S <key#> <ttl_s> <record> <n> <id>*n
                                           a new state record per job id in the
                                           state hash (one HSET, then EXPIRE ttl;
                                           jobpipe.jobstatus), unless the job was
                                           a unique duplicate or, with ARGV[5]
                                           set, a record exists (HMGET first)

Reply: ``{0, backlog, unique...}`` where each ``unique`` is the id stored in
that window (ours, or the first job's on a duplicate); ``{1, backlog}`` when
the queue is at its high-water mark and nothing was written.

Backlog is the number of jobs in the ready lists (tenant lists for fair
queues): the work waiting for the bridge. Delayed jobs are not counted: they
wait on purpose. A fair queue's count costs one LLEN per active tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobpipe.errors import JobpipeError

# Lua's unpack() is limited by the C stack (LUAI_MAXCSTACK = 8000 slots).
_CHUNK = 4000

PUSH_LUA = f"""
local max = tonumber(ARGV[1])
local backlog = 0
if max > 0 then
  for k = 1, tonumber(ARGV[2]) do backlog = backlog + redis.call('LLEN', KEYS[k]) end
  if ARGV[3] ~= '' then
    for _, t in ipairs(redis.call('SMEMBERS', KEYS[tonumber(ARGV[4])])) do
      backlog = backlog + redis.call('LLEN', ARGV[3] .. t)
    end
  end
  if backlog >= max then return {{1, backlog}} end
end
local out = {{0, backlog}}
local i, last_arg, skip, dup, unsure = 6, #ARGV, false, {{}}, ARGV[5] == '1'
local none = {{}}
local function push(cmd, key, first, last, from)
  while first <= last do
    local e = math.min(first + {_CHUNK} - 1, last)
    redis.call(cmd, key, unpack(from or ARGV, first, e))
    first = e + 1
  end
end
while i <= last_arg do
  local op, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'U' then
    local id = ARGV[i + 3]
    if redis.call('SET', key, id, 'NX', 'EX', ARGV[i + 2]) then
      out[#out + 1] = id
    else
      out[#out + 1] = redis.call('GET', key)
      skip = true
      dup[id] = true
    end
    i = i + 4
  elseif op == 'W' then
    redis.call('ZADD', key, 0, 'w')
    i = i + 2
  elseif op == 'S' then
    local last, record, fields = i + 4 + tonumber(ARGV[i + 4]), ARGV[i + 3], {{}}
    for first = i + 5, last, {_CHUNK} do
      local e = math.min(first + {_CHUNK} - 1, last)
      local have = unsure and redis.call('HMGET', key, unpack(ARGV, first, e)) or none
      for j = first, e do
        if not have[j - first + 1] and not dup[ARGV[j]] then
          fields[#fields + 1] = ARGV[j]
          fields[#fields + 1] = record
        end
      end
    end
    if #fields > 0 then
      push('HSET', key, 1, #fields, fields)
      redis.call('EXPIRE', key, ARGV[i + 2])
    end
    i = last + 1
  else
    local n = tonumber(ARGV[i + 2])
    if op == 'L' then
      if not skip then push('LPUSH', key, i + 3, i + 2 + n) end
      i = i + 3 + n
    elseif op == 'T' then
      if not skip then
        push('LPUSH', key, i + 4, i + 3 + n)
        redis.call('SADD', KEYS[tonumber(ARGV[4])], ARGV[i + 3])
      end
      i = i + 4 + n
    elseif op == 'Z' then
      if not skip then
        local first, last = i + 3, i + 2 + 2 * n
        while first <= last do
          local e = math.min(first + {_CHUNK} - 1, last)
          redis.call('ZADD', key, unpack(ARGV, first, e))
          first = e + 1
        end
      end
      i = i + 3 + 2 * n
    else
      return redis.error_reply('jobpipe push: unknown operation ' .. tostring(op))
    end
    skip = false
  end
end
return out
"""

# Every Redis command PUSH_LUA calls: Redis checks each against the caller's ACL
# (ingest.acl grants exactly these). A unit test keeps this in step with the script.
PUSH_LUA_COMMANDS = ("llen", "smembers", "set", "get", "lpush", "sadd", "zadd", "hmget",
                     "hset", "expire")

STATUS_OK = 0
STATUS_FULL = 1


@dataclass(frozen=True, slots=True)
class PushReply:
    """The script's answer.

    Attributes:
        full: the queue was at its high-water mark; nothing was written.
        backlog: jobs waiting in the ready lists before this push (0 when unbounded).
        unique_ids: for each unique job in the call, in order, the id that owns
            the window (differs from the job's own id on a duplicate).
    """

    full: bool
    backlog: int
    unique_ids: list[str]


def parse_reply(reply: object) -> PushReply:
    """Read the script's reply.

    Raises:
        JobpipeError: the reply is not what the script returns (a bug).
    """
    if not isinstance(reply, list) or len(reply) < 2:
        raise JobpipeError(f"unexpected reply from the push script: {reply!r}")
    uniques = [u.decode() if isinstance(u, bytes) else str(u) for u in reply[2:]]
    return PushReply(int(reply[0]) == STATUS_FULL, int(reply[1]), uniques)
