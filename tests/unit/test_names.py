"""Every Redis key and topic name comes from jobpipe.names."""

from __future__ import annotations

import pytest

from jobpipe import names


@pytest.mark.parametrize("name", ["email", "a", "Q_1-x", "x" * 100])
def test_valid_queue_names(name: str) -> None:
    assert names.is_valid_queue_name(name)
    assert names.is_valid_namespace(name)


@pytest.mark.parametrize("name", ["", "a.b", "a:b", "a b", "{a}", "x" * 101, "é", "email\n"])
def test_invalid_queue_names(name: str) -> None:
    assert not names.is_valid_queue_name(name)


@pytest.mark.parametrize(("tenant", "ok"), [("acme", True), ("a.b:c@d-e_f", True),
                                             ("", False), ("a b", False), ("x" * 201, False),
                                             ("acme\n", False)])
def test_tenant_names(tenant: str, ok: bool) -> None:
    assert names.is_valid_tenant(tenant) is ok


def test_redis_keys_of_one_queue_share_its_hash_tag() -> None:
    keys = [
        names.ready_key("jp", "email", 3, 1), names.tenant_ready_key("jp", "email", "t"),
        names.tenants_key("jp", "email"), names.delayed_key("jp", "email"),
        names.inflight_key("jp", "email", "b1"), names.dead_key("jp", "email"),
        names.unique_key("jp", "email", "k"), names.done_key("jp", "email", "k"),
        names.paused_tenants_key("jp", "email"), names.parked_key("jp", "email", "t"),
        names.rate_key("jp", "email"), names.rate_key("jp", "email", "t"),
    ]
    assert all(k.startswith("jp:{email}:") for k in keys)
    assert len(set(keys)) == len(keys)


def test_ready_key_names_level_then_shard() -> None:
    assert names.ready_key("jp", "email", 2) == "jp:{email}:ready:0:2"
    assert names.ready_key("jp", "email", 2, 1) == "jp:{email}:ready:1:2"


def test_inflight_keys_round_trip_the_bridge_id_and_source_list() -> None:
    key = names.inflight_key("ns", "q", "host-1-42")
    assert names.bridge_id_from_inflight(key) == "host-1-42"
    assert names.inflight_pattern("ns", "q") == "ns:{q}:inflight:*"
    source = names.ready_key("ns", "q", 3, 1)
    per_source = names.inflight_list_key("host-1-42", source)
    assert per_source.startswith("ns:{q}:inflight:host-1-42:")
    assert names.bridge_id_from_inflight(per_source) == "host-1-42"
    assert names.inflight_source(per_source) == source


def test_a_shard_with_its_own_slot_keeps_its_keys_under_its_tag() -> None:
    source = names.ready_key("ns", "q", 3, 1, own_slot=True)
    assert source == "ns:{q.s3}:ready:1:3"
    per_source = names.inflight_list_key("host-1-42", source)
    assert per_source == "ns:{q.s3}:inflight:host-1-42:ready:1:3"
    assert per_source.startswith(names.inflight_pattern("ns", "q", 3)[:-1])
    assert names.bridge_id_from_inflight(per_source) == "host-1-42"
    assert names.inflight_source(per_source) == source
    for key in (names.delayed_key("ns", "q", 3), names.wake_key("ns", "q", 3),
                names.inflight_index_key("ns", "q", 3), names.inflight_owners_key("ns", "q", 3),
                names.dead_key("ns", "q", 3), names.unique_key("ns", "q", "k", 3)):
        assert key.startswith("ns:{q.s3}:")


def test_namespace_wide_names() -> None:
    assert names.paused_queues_key("jp") == "jp:paused"
    assert names.bridges_key("jp") == "jp:bridges"
    assert names.control_channel("jp") == "jp:control"


def test_topic_names() -> None:
    assert names.main_topic("jp", "email") == "jp.email"
    assert names.main_topic("jp", "email", 2) == "jp.email.p2"
    assert names.retry_topic("jp", "email", 30) == "jp.email.retry.30s"
    assert names.dlq_topic("jp", "email") == "jp.email.dlq"
    assert names.group_id("jp", "workers") == "jp.workers"


@pytest.mark.parametrize(("delay_s", "text"), [
    (0.5, "500ms"), (1, "1s"), (5, "5s"), (90, "90s"), (300, "5m"), (1800, "30m"),
    (3600, "1h"), (7200, "2h"), (1.25, "1250ms"),
])
def test_retry_delays_read_naturally_in_topic_names(delay_s: float, text: str) -> None:
    assert names.format_delay(delay_s) == text
