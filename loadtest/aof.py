"""Redis's append-only file during a run: the bytes it appended per job, and its rewrites.

A rewrite forks Redis, and the child writes the whole dataset anew. While it
runs, the pipeline's p99 rises for a second or more (docs/benchmarks.md).
Redis starts one when the AOF is at least ``auto-aof-rewrite-min-size`` and
has grown by ``auto-aof-rewrite-percentage`` of its size after the last
rewrite, so a step missed during one is a miss the box will repeat as the
file grows. The report names the steps a rewrite overlapped. It also gives
the AOF bytes per job, which tell how often the rewrite comes at any rate.

Sampled once a second with the backlog (:mod:`loadtest.backlog_sampler`), from
``INFO persistence`` (summed over the primaries of a Redis Cluster). The
functions below are pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        nodes: the cluster primaries summed (``host:port``, sorted, comma-separated;
            empty for a single Redis). Two samples over different primaries (a
            fail-over came between) are not compared: a promoted replica brings
            its own counts.
    """

    size: int
    rewrites: int
    rewriting: bool
    nodes: str = ""

    def to_list(self) -> list[int | str]:
        """JSON-ready form: ``[size, rewrites, rewriting, nodes]``."""
        return [self.size, self.rewrites, int(self.rewriting), self.nodes]

    def comparable(self, later: AofSample) -> bool:
        """Whether ``later`` counts on from this sample (same primaries, no restart)."""
        return later.nodes == self.nodes and later.rewrites >= self.rewrites


def read_aof(client: redis.Redis[bytes] | redis.RedisCluster[bytes]) -> AofSample | None:
    """The AOF's state now; None when AOF is off or Redis does not say.

    Raises:
        redis.RedisError: Redis did not answer (or the ACL refuses ``INFO``).
    """
    infos: list[Mapping[str, Any]]
    nodes = ""
    if isinstance(client, redis.RedisCluster):
        primaries = sorted(client.get_primaries(), key=lambda node: node.name)
        infos = [client.info("persistence", target_nodes=node) for node in primaries]
        nodes = ",".join(node.name for node in primaries)
    else:
        infos = [client.info("persistence")]
    if not infos or not all(info.get("aof_enabled") and "aof_rewrites" in info
                            for info in infos):
        return None  # AOF off, or a Redis older than 7.0 (no aof_rewrites)
    return AofSample(size=sum(int(info["aof_current_size"]) for info in infos),
                     rewrites=sum(int(info["aof_rewrites"]) for info in infos),
                     rewriting=any(info["aof_rewrite_in_progress"] for info in infos),
                     nodes=nodes)


def rewrite_spans(t_s: Sequence[float],
                  samples: Sequence[AofSample | None]) -> list[tuple[float, float]]:
    """Each rewrite as ``(after, before)``: it ran somewhere within those times.

    It started after the last sample that had not counted it yet (which may be
    several seconds before the first that did, when samples failed between),
    and had ended by the first sample from then on that saw none running (or
    the last sample, if it still ran).
    """
    readings = [(t, s) for t, s in zip(t_s, samples, strict=True) if s is not None]
    spans: list[tuple[float, float]] = []
    for i, ((t_prev, prev), (_, seen)) in enumerate(pairwise(readings)):
        if not prev.comparable(seen) or seen.rewrites == prev.rewrites:
            continue
        ended = next((t for t, s in readings[i + 1:] if not s.rewriting), readings[-1][0])
        spans.extend([(t_prev, ended)] * (seen.rewrites - prev.rewrites))
    return spans


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
                or a.nodes != b.nodes or b.size < a.size):
            continue
        appended += b.size - a.size
        jobs += pb - pa
    return appended / jobs if jobs > 0 else None


def aof_section(t_s: Sequence[float], samples: Sequence[AofSample | None],
                produced: Sequence[int]) -> dict[str, Any] | None:
    """The report's ``redis_aof`` part; None when no sample says anything.

    ``rewrites_s`` holds each rewrite's ``[after, before]`` (:func:`rewrite_spans`);
    a ramp's report adds ``steps_offered_per_s``, the steps they overlapped.
    """
    if not any(s is not None for s in samples):
        return None
    per_job = bytes_per_job(samples, produced)
    return {"bytes_per_job": round(per_job, 1) if per_job is not None else None,
            "rewrites_s": [list(span) for span in rewrite_spans(t_s, samples)]}


def steps_with_rewrites(step_bounds: Sequence[tuple[float, float]],
                        spans: Sequence[Sequence[float]]) -> list[int]:
    """How many rewrites each ``(begin, end)`` step overlapped."""
    return [sum(1 for after, before in spans if after < end and before > begin)
            for begin, end in step_bounds]


def aof_line(section: dict[str, Any] | None) -> str | None:
    """One line for the terminal and the HTML report."""
    if section is None:
        return None
    spans = section["rewrites_s"]
    per_job = section["bytes_per_job"]
    size = f"{per_job:,.0f} bytes appended per job" if per_job is not None else \
        "no bytes per job (no sample pair without a rewrite)"
    if not spans:
        return f"Redis AOF: {size}; no rewrite during the run."
    at = ", ".join(f"{after:.0f}-{before:.0f}" for after, before in spans)
    steps = section.get("steps_offered_per_s")
    during = (" during the steps of " + ", ".join(f"{r:,.0f}" for r in steps) + " jobs/s"
              if steps else "")
    return (f"Redis AOF: {size}; {len(spans)} rewrite(s), running within t = {at} s{during}. "
            "The p99 rises while one runs, and it comes back as the file grows.")
