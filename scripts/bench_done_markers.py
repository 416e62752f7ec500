"""What done markers cost Redis: memory per marker, and the AOF rewrite they lengthen.

    JOBPIPE_REDIS_URL=redis://127.0.0.1:16379/0 .venv/bin/python scripts/bench_done_markers.py \
        [--rate 30000] [--markers 400000,800000]

Against a running Redis with AOF on (``jobpipe dev up``), otherwise idle, in a
namespace of its own that it deletes after. It marks jobs done through the
worker's own :class:`consumers.idempotency.DoneMarkers`, with ids made as a
producer at ``--rate`` jobs/s would make them (so each 256 ms hash holds what
it would hold at that rate), and after each count in ``--markers`` prints the
``used_memory`` added per marker and the wall time of a ``BGREWRITEAOF`` (the
rewrite writes every marker again). Figures in docs/benchmarks.md ("Done
markers in memory") and the planner's default (``loadtest/capacity.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import redis

from consumers.idempotency import DoneMarkers
from jobpipe import ids, names
from jobpipe.connections import async_redis_client, redis_client
from jobpipe.envelope import Job
from jobpipe.settings import load_settings
from jobpipe.topology import QueueSpec

SPEC = QueueSpec("bench")
BATCH = 500  # jobs per mark call, as a worker's flush marks a batch


def _rewrite_s(client: redis.Redis[bytes]) -> float:
    """Wall time of a ``BGREWRITEAOF`` started once no other rewrite runs."""
    while client.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.05)
    start = time.monotonic()
    client.bgrewriteaof()
    while client.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.01)
    return time.monotonic() - start


async def _mark(markers: DoneMarkers, first_ns: int, done: int, n: int, rate: float) -> None:
    """Mark jobs ``done`` to ``done + n`` of a producer sending ``rate`` jobs/s
    from ``first_ns`` on."""
    for at in range(done, done + n, BATCH):
        count = min(BATCH, done + n - at)
        made_ns = first_ns + int(at / rate * 1e9)
        jobs = [Job(job_id, SPEC.name, "bench") for job_id in ids.new_job_ids(count, made_ns)]
        await markers.mark([(SPEC, jobs)])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=30_000.0)
    parser.add_argument("--markers", default="400000,800000")
    options = parser.parse_args()
    settings = load_settings()
    client = redis_client(settings.redis)
    aclient = async_redis_client(settings.redis)
    ns = f"benchmarkers{time.time_ns()}"
    markers = DoneMarkers(aclient, ns)
    base = int(client.info("memory")["used_memory"])
    first_ns, done = time.time_ns(), 0
    print(f"markers at {options.rate:,.0f} jobs/s, AOF {client.config_get('appendonly')}")
    try:
        for total in (int(x) for x in options.markers.split(",")):
            await _mark(markers, first_ns, done, total - done, options.rate)
            done = total
            added = int(client.info("memory")["used_memory"]) - base
            print(f"{done:>10,} markers: {added / 1e6:,.1f} MB, {added / done:,.0f} B each; "
                  f"BGREWRITEAOF {_rewrite_s(client):.2f} s")
    finally:
        for key in client.scan_iter(match=names.namespace_pattern(ns), count=1000):
            client.delete(key)
        await aclient.aclose()  # type: ignore[attr-defined]
        client.close()


if __name__ == "__main__":
    asyncio.run(main())
