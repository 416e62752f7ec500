"""The HTTP intake over a real socket: every status code."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from ingest import AsyncProducer
from ingest.http import create_app
from jobpipe import names
from jobpipe.devstack.ports import free_port
from jobpipe.envelope import decode
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]

TOKEN = "s3cret-token"
QUEUES = {"default": {"shards": 2}, "small": {"shards": 1, "max_backlog": 1,
                                              "max_job_bytes": 300}}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest_asyncio.fixture(loop_scope="function")
async def intake(make_settings, redis_client):
    settings = make_settings(queues=QUEUES, ingest={"tokens": [TOKEN], "on_full": "raise",
                                                    "max_request_bytes": 4096})
    async with AsyncProducer(settings) as producer:
        server = TestServer(create_app(settings, producer), host="127.0.0.1")
        await server.start_server()
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.port}") as http:
            yield http
        await server.close()


async def _post(http, queue, body, headers=AUTH, raw=None):
    data = raw if raw is not None else orjson.dumps(body)
    async with http.post(f"/v1/queues/{queue}/jobs", data=data,
                         headers={**headers, "Content-Type": "application/json"}) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_one_job_is_accepted_with_its_id(intake, redis_client, namespace):
    status, body, _ = await _post(intake, "default", {"task": "t", "args": {"a": 1},
                                                      "key": "k"})
    assert status == 202
    assert len(body["ids"]) == 1
    raws = [r for s in range(2)
            for r in redis_client.lrange(names.ready_key(namespace, "default", s), 0, -1)]
    assert [decode(r).id for r in raws] == body["ids"]


async def test_a_batch_is_accepted_in_order(intake, redis_client, namespace):
    jobs = [{"task": "t", "args": n, "key": "same"} for n in range(100)]
    status, body, _ = await _post(intake, "default", {"jobs": jobs})
    assert status == 202
    assert len(body["ids"]) == 100
    raws = [r for s in range(2)
            for r in redis_client.lrange(names.ready_key(namespace, "default", s), 0, -1)]
    assert [decode(r).id for r in reversed(raws)] == body["ids"]


@pytest.mark.parametrize(("body", "field"), [
    ({"args": 1}, "task"),
    ({"jobs": [{"task": "t"}, {"task": "t", "priority": "hi"}]}, "jobs[1].priority"),
    ({"jobs": [{"task": "t"}, {"task": "t", "delay_s": -5}]}, "jobs[1]"),
    ({"task": "t", "args": "x" * 400}, ""),
])
async def test_invalid_jobs_get_400_with_field_errors_and_nothing_is_written(
        intake, redis_client, namespace, body, field):
    status, answer, _ = await _post(intake, "small" if "x" * 400 in str(body) else "default",
                                    body)
    assert status == 400
    assert field in [e["field"] for e in answer["errors"]]
    assert list(redis_client.scan_iter(match=f"{namespace}:*")) == []


async def test_body_that_is_not_json_gets_400(intake):
    status, answer, _ = await _post(intake, "default", None, raw=b"{nope")
    assert status == 400
    assert answer["error"] == "body is not valid JSON"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {TOKEN}"}])
async def test_missing_or_wrong_token_gets_401(intake, headers):
    status, _, resp_headers = await _post(intake, "default", {"task": "t"}, headers=headers)
    assert status == 401
    assert resp_headers["WWW-Authenticate"].startswith("Bearer")


async def test_unknown_queue_gets_404(intake):
    status, answer, _ = await _post(intake, "nope", {"task": "t"})
    assert status == 404
    assert "unknown queue 'nope'" in answer["error"]


async def test_body_over_the_cap_gets_413_before_it_is_read(intake):
    status, answer, _ = await _post(intake, "default", None, raw=b"[" + b"1," * 5000 + b"1]")
    assert status == 413
    assert "over the cap of 4096" in answer["error"]


async def test_chunked_body_over_the_cap_gets_413_and_nothing_is_written(
        intake, redis_client, namespace):
    jobs = orjson.dumps({"jobs": [{"task": "t", "args": "x" * 100}] * 100})
    assert len(jobs) > 4096

    async def chunks():  # no Content-Length: the cap must hold while reading
        for start in range(0, len(jobs), 1000):
            yield jobs[start:start + 1000]

    async with intake.post("/v1/queues/default/jobs", data=chunks(),
                           headers={**AUTH, "Content-Type": "application/json"}) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert resp.status == 413
        assert "over the cap of 4096" in (await resp.json())["error"]
    assert not any(redis_client.llen(names.ready_key(namespace, "default", s)) for s in range(2))


async def test_full_queue_gets_429_with_retry_after(intake):
    assert (await _post(intake, "small", {"task": "t"}))[0] == 202
    status, answer, headers = await _post(intake, "small", {"task": "t"})
    assert status == 429
    assert "is full" in answer["error"]
    assert int(headers["Retry-After"]) >= 1


async def test_health_and_openapi(intake):
    async with intake.get("/healthz") as resp:
        assert resp.status == 200
    async with intake.get("/openapi.json") as resp:
        doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    responses = doc["paths"]["/v1/queues/{queue}/jobs"]["post"]["responses"]
    assert set(responses) == {"202", "400", "401", "404", "413", "429", "503"}


async def test_redis_down_gets_503_with_retry_after(make_settings):
    settings = make_settings(queues=QUEUES, ingest={"deadline_s": 0.2})
    settings = replace(settings, redis=replace(
        settings.redis, url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.5))
    async with AsyncProducer(settings) as producer:
        server = TestServer(create_app(settings, producer), host="127.0.0.1")
        await server.start_server()
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.port}") as http:
            status, answer, headers = await _post(http, "default", {"task": "t"}, headers={})
            assert status == 503
            assert "did not take the jobs" in answer["error"]
            assert int(headers["Retry-After"]) >= 1
            async with http.get("/healthz") as resp:
                assert resp.status == 503
        await server.close()


async def test_metrics_endpoint_counts_accepted_jobs(intake):
    status, _, _ = await _post(intake, "default", {"jobs": [{"task": "t"}] * 3})
    assert status == 202
    async with intake.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert 'jobpipe_jobs_enqueued_total{queue="default"}' in text
