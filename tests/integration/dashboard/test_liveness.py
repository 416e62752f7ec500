"""Bridges and workers on the dashboard with their last heartbeats, from real processes'
writes: a Bridge and a Worker on threads of this process."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from bridge import Bridge
from consumers.heartbeat import worker_id
from jobpipe import names
from tests.integration.consumers_ops.conftest import wait_for, worker_running
from tests.integration.dashboard.conftest import TOKEN
from tests.integration.dashboard.test_dashboard_with_intake import _call

pytestmark = pytest.mark.integration
WAIT_S = 60.0


def _stats(dashboard_url: str) -> dict[str, Any]:
    """The stats document, asked again while the dashboard answers 503: Kafka can say
    "not leader" for a moment about topics created just before the test."""
    found: list[dict[str, Any]] = []

    def answered() -> bool:
        code, body = _call(dashboard_url + "api/stats", token=TOKEN)
        assert code in (200, 503), body
        if code == 200:
            found.append(json.loads(body))
        return code == 200

    assert wait_for(answered, WAIT_S), "the dashboard kept answering 503"
    return found[0]


def _row(rows: list[dict[str, Any]], key: str, value: str) -> dict[str, Any] | None:
    return next((r for r in rows if r[key] == value), None)


def test_bridges_and_workers_show_with_the_age_of_their_last_heartbeat(
        dash_settings, redis_client, dashboard_url):
    bridge = Bridge(dash_settings)
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    me = worker_id()  # the worker below runs in this process
    try:
        with worker_running(dash_settings):
            def worker_row() -> dict[str, Any] | None:
                row = _row(_stats(dashboard_url)["workers"], "client_id", me)
                return row if row is not None and row["in_group"] else None

            assert wait_for(worker_row, WAIT_S), _stats(dashboard_url)
            row = worker_row()
            assert row is not None
            assert row["partitions"] >= 1
            assert row["seconds_ago"] >= 0
            first = row["last_heartbeat_ms"]
            # Heartbeats keep coming: the last one moves on.
            assert wait_for(lambda: (r := worker_row()) is not None
                            and r["last_heartbeat_ms"] > first, WAIT_S)

            beat = _row(_stats(dashboard_url)["bridges"], "id", bridge.bridge_id)
            assert beat is not None
            assert beat["alive"]
            assert beat["seconds_ago"] >= 0
    finally:
        bridge.stop()
        thread.join(WAIT_S)
    # A worker that stopped cleanly took its heartbeat with it at once. As a static
    # member (the default) it stays in the group, holding its partitions, until its
    # session lapses (6 s): the dashboard shows it until then, as the coordinator does.
    assert redis_client.zscore(names.workers_key(dash_settings.namespace), me) is None
    assert wait_for(lambda: _row(_stats(dashboard_url)["workers"], "client_id", me) is None,
                    WAIT_S)
