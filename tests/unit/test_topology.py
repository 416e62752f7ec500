"""Queue topology: retry tier choice, shard choice, validation."""

from __future__ import annotations

import pytest

from jobpipe.errors import ConfigError
from jobpipe.topology import QueueSpec, Topology, shard_for


def test_attempt_n_waits_tier_n_and_the_last_tier_repeats() -> None:
    spec = QueueSpec("q", retry_tiers_s=(5.0, 30.0, 300.0))
    assert [spec.retry_delay_s(a) for a in range(1, 7)] == [5.0, 30.0, 300.0, 300.0,
                                                            300.0, 300.0]


def test_topics_of_a_queue_cover_levels_tiers_and_dlq() -> None:
    spec = QueueSpec("q", retry_tiers_s=(1.0, 60.0), priorities=(4, 1))
    assert spec.topics("ns") == ["ns.q", "ns.q.p1", "ns.q.retry.1s", "ns.q.retry.1m",
                                 "ns.q.dlq"]
    assert list(spec.levels) == [0, 1]


def test_a_keyed_job_always_lands_on_the_same_shard() -> None:
    first = shard_for(b"user-42", 8, 0)
    assert all(shard_for(b"user-42", 8, spread) == first for spread in range(100))
    assert shard_for(b"user-42", 8, 0) == 3  # crc32: stable across processes and versions


def test_unkeyed_jobs_spread_over_every_shard() -> None:
    assert {shard_for(None, 4, n) for n in range(8)} == {0, 1, 2, 3}


def test_keys_spread_over_shards() -> None:
    shards = {shard_for(f"k{i}".encode(), 4, 0) for i in range(100)}
    assert shards == {0, 1, 2, 3}


@pytest.mark.parametrize(("fields", "needle"), [
    ({"name": "bad.name"}, "queue name"),
    ({"partitions": 0}, "partitions"),
    ({"retry_tiers_s": ()}, "retry_tiers_s"),
    ({"retry_tiers_s": (30.0, 5.0)}, "increase"),
    ({"retry_tiers_s": (0.0,)}, "retry_tiers_s"),
    ({"priorities": (0,)}, "priorities"),
    ({"fair": True, "priorities": (2, 1)}, "fair"),
    ({"max_backlog": 0}, "max_backlog"),
])
def test_invalid_specs_are_refused_naming_the_field(fields: dict[str, object],
                                                    needle: str) -> None:
    args: dict[str, object] = {"name": "q", **fields}
    with pytest.raises(ConfigError, match=needle):
        QueueSpec(**args)  # type: ignore[arg-type]


def test_topology_get_and_select() -> None:
    topo = Topology({"a": QueueSpec("a"), "b": QueueSpec("b")})
    assert topo.get("a").name == "a"
    assert [s.name for s in topo.select(None)] == ["a", "b"]
    assert [s.name for s in topo.select(["b"])] == ["b"]
    with pytest.raises(ConfigError, match="unknown queue 'c'"):
        topo.get("c")


def test_a_topology_needs_a_queue() -> None:
    with pytest.raises(ConfigError):
        Topology({})
