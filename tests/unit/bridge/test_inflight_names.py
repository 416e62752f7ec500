"""In-flight list keys name their bridge and lead back to the list they came from."""

from __future__ import annotations

import pytest

from jobpipe import names


@pytest.mark.parametrize("source", [
    names.ready_key("ns", "q", 3, 1),
    names.tenant_ready_key("ns", "q", "acme:eu.west@x"),
])
def test_inflight_key_round_trips(source):
    key = names.inflight_list_key("host-1.ab12cd34", source)
    assert names.inflight_source(key) == source
    assert names.bridge_id_from_inflight(key) == "host-1.ab12cd34"
    assert key.startswith(names.inflight_pattern("ns", "q")[:-1])
    assert "{q}" in key  # same cluster slot as the queue's other keys


def test_plain_inflight_key_still_names_its_bridge():
    assert names.bridge_id_from_inflight(names.inflight_key("ns", "q", "b1")) == "b1"
