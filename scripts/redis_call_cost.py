"""CPU per Redis round trip, the ways the stages send one, with a gap between calls.

    JOBPIPE_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python scripts/redis_call_cost.py \
        [--calls 1000] [--gap-ms 5] [--rounds 2]

Each way sends the same one-field ``EVALSHA`` (an ``HSET`` and an ``EXPIRE``, as a
done-marker write) ``--calls`` times, sleeping ``--gap-ms`` between calls (5 ms:
a stage at 200 jobs/s; 0: back to back), and prints the process CPU
(``time.process_time``) per call, median of the rounds:

- ``async pool``: :func:`jobpipe.pipelined.run_script_async`, a pooled connection;
- ``async kept``: a redis-py connection kept out of the pool, written and read
  through its ``send_packed_command`` and ``read_response`` under one
  ``asyncio.timeout`` per call (the worker's done-marker reads before
  ``DirectCalls``, as ``DirectReads`` sent them);
- ``async direct``: :class:`jobpipe.direct_calls.DirectCalls` (the worker's
  done markers);
- ``sync pool``: :func:`jobpipe.pipelined.run_script`, a pooled connection;
- ``sync kept``: the same on a :class:`jobpipe.kept_connection.KeptConnection`
  (the bridge's take and ack).

The ways alternate within each round. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio
import uvloop

from jobpipe.direct_calls import DirectCalls
from jobpipe.kept_connection import KeptConnection
from jobpipe.pipelined import run_script, run_script_async, run_script_calls_async

_MARK = "redis.call('HSET', KEYS[1], ARGV[1], 1) redis.call('EXPIRE', KEYS[1], 60) return 1"
_KEY = "jobpipe-call-cost"


def _sync_round(url: str, calls: int, gap_s: float, kept: bool) -> float:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        script = client.register_script(_MARK)
        connection = KeptConnection(client) if kept else None
        run_script(client, script, [_KEY], ["0"], connection)  # loaded, connected
        cpu = 0.0
        for i in range(calls):
            start = time.process_time()
            run_script(client, script, [_KEY], [str(i)], connection)
            cpu += time.process_time() - start
            time.sleep(gap_s)
        return cpu / calls
    finally:
        client.delete(_KEY)
        client.close()


async def _async_round(url: str, calls: int, gap_s: float, way: str) -> float:
    client = redis.asyncio.Redis.from_url(url, socket_timeout=5)
    try:
        script = client.register_script(_MARK)
        call: Callable[[str], Awaitable[object]]
        if way == "direct":
            line = DirectCalls(client)

            def call(arg: str) -> Awaitable[object]:
                return run_script_calls_async(client, script, [([_KEY], [arg])], line)
        elif way == "kept":
            sha = script.sha  # type: ignore[attr-defined]  # stubs omit it
            await client.script_load(_MARK)  # type: ignore[no-untyped-call]
            conn = await client.connection_pool.get_connection()
            conn.socket_timeout = None  # bounded per call below, as DirectReads did

            async def call(arg: str) -> object:
                async with asyncio.timeout(5):
                    await conn.send_packed_command(
                        conn.pack_commands([("EVALSHA", sha, 1, _KEY, arg)]),
                        check_health=False)
                    return await conn.read_response()
        else:
            def call(arg: str) -> Awaitable[object]:
                return run_script_async(client, script, [_KEY], [arg])
        await call("0")  # loaded, connected
        cpu = 0.0
        for i in range(calls):
            start = time.process_time()
            await call(str(i))
            cpu += time.process_time() - start
            await asyncio.sleep(gap_s)
        return cpu / calls
    finally:
        await client.delete(_KEY)
        await client.aclose()  # type: ignore[attr-defined]  # stubs lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    url = os.environ.get("JOBPIPE_REDIS_URL", "redis://127.0.0.1:6379/0")
    gap_s = opts.gap_ms / 1000
    ways: dict[str, Callable[[], float]] = {
        "async pool": lambda: uvloop.run(_async_round(url, opts.calls, gap_s, "pool")),
        "async kept": lambda: uvloop.run(_async_round(url, opts.calls, gap_s, "kept")),
        "async direct": lambda: uvloop.run(_async_round(url, opts.calls, gap_s, "direct")),
        "sync pool": lambda: _sync_round(url, opts.calls, gap_s, False),
        "sync kept": lambda: _sync_round(url, opts.calls, gap_s, True),
    }
    figures: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(opts.rounds):
        for name, way in ways.items():
            figures[name].append(way())
    print(f"CPU per call, {opts.calls} calls {opts.gap_ms:g} ms apart, "
          f"median of {opts.rounds} rounds (each round's figure in brackets):")
    for name, values in figures.items():
        each = ", ".join(f"{v * 1e6:.0f}" for v in values)
        print(f"  {name:13s} {statistics.median(values) * 1e6:6.0f} us   [{each}]")


if __name__ == "__main__":
    main()
