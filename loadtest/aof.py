"""Redis's append-only file during a run: the bytes it appended per job, and its rewrites.

A rewrite forks Redis, and the child writes the whole dataset anew. While it
runs, the pipeline's p99 rises for a second or more (docs/benchmarks.md). The
rewrite comes back each time the file has grown by
``auto-aof-rewrite-percentage`` past ``auto-aof-rewrite-min-size``, so a step
missed during one is a miss the box will repeat at that rate. The report names
the steps a rewrite overlapped. It also gives the AOF bytes per job, which
tell how often the rewrite comes at any rate.

Sampled once a second with the backlog (:mod:`loadtest.backlog_sampler`), from
``INFO persistence`` (summed over the primaries of a Redis Cluster). The
functions below are pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import redis


@dataclass(frozen=True, slots=True)
class AofSample:
    """One reading of ``INFO persistence``.

    Attributes:
        size: ``aof_current_size``, bytes (the base and every incremental file).
        rewrites: ``aof_rewrites``, rewrites started since Redis started.
        rewriting: a rewrite was running at the time.
    """

    size: int
    rewrites: int
    rewriting: bool

    def to_list(self) -> list[int]:
        """JSON-ready form: ``[size, rewrites, rewriting]``."""
        return [self.size, self.rewrites, int(self.rewriting)]


def read_aof(client: redis.Redis[bytes] | redis.RedisCluster[bytes]) -> AofSample | None:
    """The AOF's state now; None when AOF is off or Redis does not say.

    Raises:
        redis.RedisError: Redis did not answer (or the ACL refuses ``INFO``).
    """
    if isinstance(client, redis.RedisCluster):
        reply: Any = client.info("persistence", target_nodes=redis.RedisCluster.PRIMARIES)
        infos = list(reply.values()) if all(isinstance(v, dict) for v in reply.values()) \
            else [reply]
    else:
        infos = [client.info("persistence")]
    if not infos or not all(info.get("aof_enabled") and "aof_rewrites" in info
                            for info in infos):
        return None  # AOF off, or a Redis older than 7.0 (no aof_rewrites)
    return AofSample(size=sum(int(info["aof_current_size"]) for info in infos),
                     rewrites=sum(int(info["aof_rewrites"]) for info in infos),
                     rewriting=any(info["aof_rewrite_in_progress"] for info in infos))


def rewrite_starts(t_s: Sequence[float], samples: Sequence[AofSample | None]) -> list[float]:
    """When rewrites started: for each, the time of the first sample that saw it.

    A rewrite started between that sample and the one before (a second apart).
    """
    starts: list[float] = []
    prev: AofSample | None = None
    for t, sample in zip(t_s, samples, strict=True):
        if sample is None:
            continue
        if prev is not None and sample.rewrites > prev.rewrites:
            starts.extend([t] * (sample.rewrites - prev.rewrites))
        prev = sample
    return starts


def bytes_per_job(samples: Sequence[AofSample | None], produced: Sequence[int]) -> float | None:
    """AOF bytes appended per job that reached Kafka.

    Only pairs of consecutive samples with no rewrite running or finished between
    them count: a rewrite swaps the files, and the size then jumps down. Each
    job's bytes are appended at three moments (pushed, taken, marked done), so
    the figure is an average over the run, not per interval.
    """
    appended = jobs = 0
    for (a, b), (pa, pb) in zip(pairwise(samples), pairwise(produced), strict=True):
        if (a is None or b is None or a.rewriting or b.rewriting or a.rewrites != b.rewrites
                or b.size < a.size):
            continue
        appended += b.size - a.size
        jobs += pb - pa
    return appended / jobs if jobs > 0 else None


def aof_section(t_s: Sequence[float], samples: Sequence[AofSample | None],
                produced: Sequence[int]) -> dict[str, Any] | None:
    """The report's ``redis_aof`` part; None when no sample says anything."""
    if not any(s is not None for s in samples):
        return None
    per_job = bytes_per_job(samples, produced)
    return {"bytes_per_job": round(per_job, 1) if per_job is not None else None,
            "rewrite_starts_s": rewrite_starts(t_s, samples)}


def steps_with_rewrites(step_bounds: Sequence[tuple[float, float]],
                        starts: Sequence[float]) -> list[int]:
    """How many rewrites each step overlapped, by when they were first seen.

    A rewrite seen at ``t`` started within the second before it, and runs about
    a second or more (more on a larger dataset): taken as ``t - 1`` to ``t + 1``.
    """
    return [sum(1 for t in starts if t - 1.0 < end and t + 1.0 > begin)
            for begin, end in step_bounds]


def aof_line(section: dict[str, Any] | None) -> str | None:
    """One line for the terminal and the HTML report."""
    if section is None:
        return None
    starts = section["rewrite_starts_s"]
    per_job = section["bytes_per_job"]
    size = f"{per_job:,.0f} bytes appended per job" if per_job is not None else \
        "no bytes per job (no sample pair without a rewrite)"
    if not starts:
        return f"Redis AOF: {size}; no rewrite during the run."
    at = ", ".join(f"{t:.0f}" for t in starts)
    steps = section.get("steps_offered_per_s")
    during = (" during the steps of " + ", ".join(f"{r:,.0f}" for r in steps) + " jobs/s"
              if steps else "")
    return (f"Redis AOF: {size}; {len(starts)} rewrite(s), first seen at t = {at} s{during}. "
            "The p99 rises while one runs, and it comes back as the file grows.")
