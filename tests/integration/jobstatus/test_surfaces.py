"""Job status over HTTP (behind the intake's tokens), from the asyncio producer and
from the command line, against the real Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from ingest import AsyncProducer
from ingest.http import create_app
from jobpipe.cli import main
from jobpipe.devstack.ports import free_port
from jobpipe.settings import Settings
from tests.conftest import MakeSettings
from tests.redis_modes import BOTH_CLUSTER_SLOW, redis_environ

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUEUES = {"tracked": {"track_status": True}, "plain": {}}


@pytest.fixture
def settings(make_settings: MakeSettings, redis_client: Any) -> Settings:
    return make_settings(queues=QUEUES, ingest={"tokens": [TOKEN]})


async def test_http_get_and_delete_answer_behind_the_tokens(settings: Settings) -> None:
    async with AsyncProducer(settings) as producer:
        job_id = await producer.enqueue("tracked", "t", {"a": 1})
        untracked = await producer.enqueue("plain", "t")
        assert (await producer.status(job_id)).state == "queued"  # type: ignore[union-attr]
        server = TestServer(create_app(settings, producer), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
                async with http.get(f"/v1/jobs/{job_id}") as resp:
                    assert resp.status == 401
                async with http.delete(f"/v1/jobs/{job_id}") as resp:
                    assert resp.status == 401
                async with http.get(f"/v1/jobs/{job_id}", headers=AUTH) as resp:
                    assert resp.status == 200
                    body = await resp.json()
                    assert (body["id"], body["queue"], body["state"]) == (job_id, "tracked",
                                                                          "queued")
                async with http.get(f"/v1/jobs/{untracked}", headers=AUTH) as resp:
                    assert resp.status == 404
                    assert "unknown job" in (await resp.json())["error"]
                async with http.delete(f"/v1/jobs/{job_id}", headers=AUTH) as resp:
                    assert resp.status == 200
                    assert (await resp.json())["state"] == "cancelled"
        finally:
            await server.close()
        final = await producer.wait(job_id, 10)
        assert final.state == "cancelled"



async def test_the_asyncio_producer_looks_up_waits_and_cancels_before_start(
        settings: Settings) -> None:
    async with AsyncProducer(settings) as sender:
        job_id = await sender.enqueue("tracked", "t")
    fresh = AsyncProducer(settings)  # start() never called: these need no safety check
    try:
        assert await fresh.status("0" * 36) is None
        status = await fresh.status(job_id)
        assert status is not None
        assert status.state == "queued"
        cancelled = await fresh.cancel(job_id)
        assert cancelled is not None
        assert cancelled.state == "cancelled"
        assert (await fresh.wait(job_id, 10)).state == "cancelled"
    finally:
        await fresh.close()

def _config(path: Path, settings: Settings, redis_url: str) -> str:
    path.write_text(f'namespace = "{settings.namespace}"\n[redis]\nurl = "{redis_url}"\n'
                    "[queues.tracked]\ntrack_status = true\n")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_job_and_cancel(settings: Settings, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest import Producer

    for variable, value in redis_environ(settings).items():  # the Redis of this mode
        monkeypatch.setenv(variable, value)
    with Producer(settings) as producer:
        job_id = producer.enqueue("tracked", "t", delay_s=600)
    config = _config(tmp_path / "jobpipe.toml", settings, settings.redis.url)
    code, out, _ = _run(capsys, "-c", config, "job", job_id)
    assert code == 0
    assert '"state": "delayed"' in out
    code, out, _ = _run(capsys, "-c", config, "cancel", job_id)
    assert code == 0
    assert out.strip() == f"job {job_id}: cancelled"
    code, out, _ = _run(capsys, "-c", config, "cancel", job_id)
    assert code == 0
    assert "already cancelled" in out
    code, _, err = _run(capsys, "-c", config, "job", "no-such-job")
    assert code == 1
    assert err.strip().splitlines() == [
        "jobpipe: error: unknown job 'no-such-job': no queue with track_status knows it "
        "(never enqueued there, or its record expired)"]
    # The environment outranks the file (tests/services.py may have set it).
    monkeypatch.setenv("JOBPIPE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    for command in ("job", "cancel"):
        code, _, err = _run(capsys, "-c", config, command, job_id)
        assert code == 1
        assert len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
        assert err.startswith("jobpipe: error:")
