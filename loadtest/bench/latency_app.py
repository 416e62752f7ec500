"""The handler of ``jobpipe bench latency``: note when it started, append one record.

Run by ``jobpipe worker loadtest.bench.latency_app``. Each job's args carry the
wall time taken just before its ``enqueue`` (``t``, ns) and the Redis list to
append to (``to``). The record is ``t start kafka_ms``: the handler's start
(ns, read first thing) and the time its Kafka record was written by the bridge
(ms), so the bench can split the latency into before and after Kafka.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis.asyncio

from consumers import App, JobContext

REDIS_URL_ENV = "JPBENCH_REDIS_URL"

app = App("bench-latency")
_clients: list[redis.asyncio.Redis[bytes]] = []


@app.task
async def record(ctx: JobContext, args: dict[str, Any]) -> None:
    """Append ``t start kafka_ms`` to the list ``args["to"]``."""
    started_ns = time.time_ns()
    if not _clients:
        _clients.append(redis.asyncio.Redis.from_url(os.environ[REDIS_URL_ENV]))
    line = f"{args['t']} {started_ns} {ctx.kafka_timestamp_ms or 0}"
    await _clients[0].rpush(args["to"], line)
