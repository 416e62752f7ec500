"""What a tracked job's state records cost Redis: script time and memory.

    JOBPIPE_REDIS_URL=redis://127.0.0.1:16379/0 .venv/bin/python scripts/bench_job_states.py

Against a running Redis (``jobpipe dev up``), in a namespace of its own that it
deletes after: 40 calls of 500 jobs moved through queued, in_kafka and
succeeded by :data:`jobpipe.jobstatus.ADVANCE_LUA` (µs a job inside ``EVALSHA``,
from ``INFO commandstats``, which a reset before counts alone only on an
otherwise idle Redis), then ``used_memory`` per record for 200,000 ``succeeded``
records in the hashes against one string key per job with its own TTL (the
layout before). Figures in docs/operations.md (job status, cost).
"""

from __future__ import annotations

import time

from jobpipe import ids, jobstatus
from jobpipe.connections import redis_client
from jobpipe.settings import load_settings
from jobpipe.topology import QueueSpec

CALLS, CALL_JOBS, RECORDS = 40, 500, 200_000
SPEC = QueueSpec("bench", track_status=True)


def main() -> None:
    client = redis_client(load_settings().redis)
    ns = f"benchstates{time.time_ns()}"
    script = client.register_script(jobstatus.ADVANCE_LUA)
    try:
        client.config_resetstat()
        for _ in range(CALLS):
            batch = ids.new_job_ids(CALL_JOBS)
            for state in (jobstatus.QUEUED, jobstatus.IN_KAFKA, jobstatus.SUCCEEDED):
                updates = [jobstatus.Update(i, state, 1, {}) for i in batch]
                for keys, args in jobstatus.advance_calls(ns, SPEC, updates):
                    script(keys=keys, args=args)
        stats = client.info("commandstats")["cmdstat_evalsha"]
        print(f"ADVANCE_LUA: {stats['usec'] / (CALLS * CALL_JOBS * 3):.2f} us a job and state "
              f"inside EVALSHA")
        job_ids = ids.new_job_ids(RECORDS)
        before = client.info("memory")["used_memory"]
        done = [jobstatus.Update(i, jobstatus.SUCCEEDED, 1, {}) for i in job_ids]
        for keys, args in jobstatus.advance_calls(ns, SPEC, done):
            script(keys=keys, args=args)
        hashes = client.info("memory")["used_memory"] - before
        record = jobstatus.new_record(jobstatus.SUCCEEDED, time.time_ns(), {})
        before = client.info("memory")["used_memory"]
        pipe = client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.set(f"{ns}:{{bench}}:job:{job_id}", record, ex=SPEC.status_ttl_s)
        pipe.execute()
        keys_each = client.info("memory")["used_memory"] - before
        print(f"memory a record: {hashes / RECORDS:.0f} B in hashes per 256 ms, "
              f"{keys_each / RECORDS:.0f} B as a key per job")
    finally:
        for key in client.scan_iter(f"{ns}:*", count=10_000):
            client.delete(key)
        client.close()


if __name__ == "__main__":
    main()
