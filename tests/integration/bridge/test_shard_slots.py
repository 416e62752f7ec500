"""A queue with ``shard_slots`` on a real Redis Cluster of 3 primaries: its shards
land on more than one primary, and jobs flow to Kafka with every id, keyed jobs
in order, through a bridge kill -9 and its restart."""

from __future__ import annotations

from collections import defaultdict

import pytest

from ingest import Producer
from jobpipe import names
from jobpipe.admin import apply_topics
from tests.integration.bridge.jobs import consume, id_counts
from tests.integration.bridge.procs import kill_9_mid_move_then_drain, write_config
from tests.redis_modes import CLUSTER

pytestmark = [pytest.mark.integration, pytest.mark.chaos,
              pytest.mark.parametrize("redis_mode", [CLUSTER])]
SHARDS = 6
QUEUES = {"hot": {"partitions": 6, "shards": SHARDS, "shard_slots": True}}
KEYS = [f"k{i}" for i in range(12)]
PER_KEY = 400
UNKEYED = 5_000


def _primary_of_slot(client, slot: int) -> str:
    """The primary serving ``slot``, as CLUSTER NODES reports it."""
    for address, node in client.cluster_nodes().items():
        ranges = [(int(r[0]), int(r[-1])) for r in node["slots"]]  # [first, last] or [one]
        if "master" in node["flags"] and any(a <= slot <= b for a, b in ranges):
            return str(address)
    raise AssertionError(f"no primary serves slot {slot}")


def _fill(settings) -> tuple[list[str], dict[str, list[str]]]:
    """Keyed jobs (each key's in order) interleaved with unkeyed batches."""
    ids: list[str] = []
    by_key: dict[str, list[str]] = defaultdict(list)
    with Producer(settings) as producer:
        for start in range(0, PER_KEY, 100):
            for key in KEYS:
                got = producer.enqueue_many("hot", "t", [{"seq": i} for i in
                                                         range(start, start + 100)], key=key)
                by_key[key] += got
                ids += got
            ids += producer.enqueue_many("hot", "t", [{"n": i} for i in
                                                      range(UNKEYED * start // PER_KEY,
                                                            UNKEYED * (start + 100) // PER_KEY)])
    return ids, by_key


def test_shards_spread_over_primaries_and_jobs_survive_a_bridge_kill_9(
        make_settings, redis_client, kafka_cleanup, tmp_path):
    bridge_cfg = {"batch_size": 50, "max_batches_in_flight": 2}
    settings = make_settings(queues=QUEUES, bridge=bridge_cfg)
    ns = settings.namespace
    apply_topics(settings)
    config = write_config(tmp_path / "jobpipe.toml", QUEUES, bridge_cfg)

    ready_lists = [names.ready_key(ns, "hot", shard, own_slot=True) for shard in range(SHARDS)]
    slots = [int(redis_client.cluster_keyslot(key)) for key in ready_lists]
    assert len(set(slots)) == SHARDS  # one hash slot per shard
    primaries = {_primary_of_slot(redis_client, slot) for slot in slots}
    print(f"\nshards' slots {slots} on {len(primaries)} primaries")
    assert len(primaries) > 1

    ids, by_key = _fill(settings)
    n_jobs = len(ids)
    assert n_jobs == len(KEYS) * PER_KEY + UNKEYED
    lengths = [int(redis_client.llen(key)) for key in ready_lists]
    assert sum(lengths) == n_jobs
    assert all(lengths)

    stranded = kill_9_mid_move_then_drain(settings, config, redis_client, "hot", n_jobs,
                                          tmp_path / "bridge.log")

    messages = consume(settings, [names.main_topic(ns, "hot")], expect=n_jobs, timeout_s=120)
    counts = id_counts(messages)
    missing = set(ids) - set(counts)
    duplicates = sum(c - 1 for c in counts.values())
    print(f"kill -9 mid-move of {n_jobs} jobs: {stranded} in flight at the kill; "
          f"lost {len(missing)}, duplicates {duplicates}")
    assert not missing
    assert set(counts) == set(ids)
    assert duplicates <= stranded
    # Per key, the first delivery of each job follows the order of enqueueing
    # (a job returned by recovery may come again later: a duplicate).
    seen: dict[str, list[str]] = defaultdict(list)
    for message in sorted(messages, key=lambda m: (m["_partition"], m["_offset"])):
        key = message["key"]
        if key is not None and message["id"] not in seen[key]:
            seen[key].append(message["id"])
    for key in KEYS:
        assert seen[key] == by_key[key], f"key {key} out of order"
