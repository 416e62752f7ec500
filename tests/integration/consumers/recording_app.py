"""A handler module for worker subprocess tests: records executions in Redis.

``REC_PREFIX`` (env) names the keys: ``<prefix>:started`` / ``<prefix>:done``
(sets of job ids), ``<prefix>:starts`` and ``<prefix>:runs`` (hashes id -> handler
calls begun, ended), in the Redis
at ``REC_REDIS_URL`` (env; set for the test process and its worker subprocesses).
"""

from __future__ import annotations

import os
import time

import redis

from consumers import App, JobContext

app = App("recording")
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["REC_REDIS_URL"])
    return _client


@app.task
def record(ctx: JobContext, args: dict) -> None:
    prefix = os.environ["REC_PREFIX"]
    client = _redis()
    client.sadd(f"{prefix}:started", ctx.job_id)
    client.hincrby(f"{prefix}:starts", ctx.job_id, 1)
    sleep_s = args.get("sleep_s", 0)
    if args.get("hold") and not client.exists(f"{prefix}:release"):
        sleep_s = 60  # held until the test kills this worker
    deadline = time.monotonic() + sleep_s
    while time.monotonic() < deadline:
        if args.get("hold") and client.exists(f"{prefix}:release"):
            break
        time.sleep(0.05)
    pipe = client.pipeline()
    pipe.sadd(f"{prefix}:done", ctx.job_id)
    pipe.hincrby(f"{prefix}:runs", ctx.job_id, 1)
    pipe.execute()
