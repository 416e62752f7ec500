"""The HTTP intake on any request body: never a 5xx, always a clear 4xx (real Redis)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import AsyncProducer
from ingest.http import create_app
from tests.unit.proof.strategies import JSON_VALUES

pytestmark = pytest.mark.integration

CAP_BYTES = 64 * 1024
FIELDS = ["task", "args", "key", "tenant", "priority", "delay_s", "run_at",
          "idempotency_key", "unique_for_s", "max_attempts"]
JOB_LIKE = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), JSON_VALUES,
                           max_size=6)
BODIES = (
    st.binary(max_size=300)
    | JSON_VALUES.map(orjson.dumps)
    | JOB_LIKE.map(orjson.dumps)
    | st.builds(lambda task, job: orjson.dumps({**job, "task": task}), st.text(max_size=8),
                JOB_LIKE)
    | st.lists(JOB_LIKE, max_size=5).map(lambda jobs: orjson.dumps({"jobs": jobs}))
    | st.integers(min_value=1, max_value=1100).map(
        lambda d: b'{"task":"t","args":' + b"[" * d + b"]" * d + b"}")
    | st.just(b'{"task":"t","args":"' + b"x" * (CAP_BYTES + 10) + b'"}')
    | st.just(b'{"task":"caf\xc3","args":1}')
)
QUEUES = st.sampled_from(["default", "default", "default", "unknown", "x" * 150, "%ff", "a.b"])
CLIENT_ERRORS = {400, 401, 404, 405, 413, 414, 415, 422, 429}


def test_random_bodies_get_202_or_a_clear_4xx(make_settings, redis_client):
    settings_ = make_settings(ingest={"max_request_bytes": CAP_BYTES})
    loop = asyncio.new_event_loop()
    producer = AsyncProducer(settings_)
    loop.run_until_complete(producer.start())
    client = TestClient(TestServer(create_app(settings_, producer)), loop=loop)
    loop.run_until_complete(client.start_server())
    seen: dict[int, int] = {}

    async def post(queue: str, body: bytes) -> tuple[int, bytes]:
        response = await client.post(f"/v1/queues/{queue}/jobs", data=body,
                                     headers={"Content-Type": "application/json"})
        return response.status, await response.read()

    @given(QUEUES, BODIES)
    @settings(max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    def check(queue: str, body: bytes) -> None:
        status, raw = loop.run_until_complete(post(queue, body))
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (status, raw[:300], body[:200])
        assert status == 202 or status in CLIENT_ERRORS, (status, raw[:300])
        if status == 202:
            assert orjson.loads(raw)["ids"]
        elif status != 405:
            reply = orjson.loads(raw)
            assert isinstance(reply["error"], str)
            assert reply["error"]
            assert "Traceback" not in raw.decode("utf-8", "replace")

    try:
        check()
    finally:
        loop.run_until_complete(client.close())
        loop.run_until_complete(producer.close())
        loop.close()
    print(f"[http intake] statuses={dict(sorted(seen.items()))}")
    assert 202 in seen
    assert 400 in seen
