"""The aiohttp application of ``jobpipe ingest-server``.

Status codes: 202 accepted (ids in request order), 400 with field-level
errors, 401 bad token, 404 unknown queue, 413 body over the cap (judged from
``Content-Length`` before a byte of the body is read; a chunked body is cut off
once the read passes the cap), 429 queue full and 503
Redis unavailable, both with ``Retry-After``. ``GET /v1/jobs/{id}`` answers a
job's state and ``DELETE /v1/jobs/{id}`` asks to cancel it (both behind the
same tokens; 404 for an id no queue with ``track_status`` knows). ``/healthz``, ``/openapi.json``
and ``/metrics`` (Prometheus) sit beside the intake route.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from ingest.aio import AsyncProducer
from ingest.http.exposure import check_exposure
from ingest.http.openapi import OPENAPI
from ingest.http.schema import FieldErrors, parse_body
from ingest.intake import InvalidJobs
from jobpipe.errors import ConfigError, IntakeUnavailable, JobRejected, QueueFull, UnknownQueue
from jobpipe.http_access import bearer_authorised
from jobpipe.metrics import render_metrics
from jobpipe.redis_failures import REDIS_DOWN
from jobpipe.settings import IngestSettings, Settings

log = logging.getLogger(__name__)

PRODUCER: web.AppKey[AsyncProducer] = web.AppKey("producer", AsyncProducer)
RETRY_AFTER_FULL_S = 1
RETRY_AFTER_DOWN_S = 5


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), headers=headers,
                        content_type="application/json")


def _error(status: int, message: str, **extra: Any) -> web.Response:
    headers = extra.pop("headers", None)
    return _json(status, {"error": message, **extra}, headers)


def create_app(settings: Settings, producer: AsyncProducer) -> web.Application:
    """Build the intake application around a started :class:`AsyncProducer`.

    Args:
        settings: ``[ingest]`` gives the tokens and the request size cap.
        producer: used for every enqueue; the caller starts and closes it.
    """
    tokens = tuple(t.encode() for t in settings.ingest.tokens)
    cap_bytes = settings.ingest.max_request_bytes

    def authorised(request: web.Request) -> bool:
        return bearer_authorised(request.headers.get("Authorization", ""), tokens)

    async def post_jobs(request: web.Request) -> web.Response:
        if not authorised(request):
            return _error(401, "missing or invalid bearer token",
                          headers={"WWW-Authenticate": 'Bearer realm="jobpipe"'})
        length = request.content_length
        if length is not None and length > cap_bytes:
            return _error(413, f"body of {length} bytes is over the cap of {cap_bytes}")
        try:
            raw = await request.read()  # client_max_size stops a chunked body at the cap
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body is over the cap of {cap_bytes} bytes")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _error(400, "body is not valid JSON", errors=[{"field": "", "message":
                                                                  str(exc)}])
        queue = request.match_info["queue"]
        try:
            ids = await producer.enqueue_jobs(queue, parse_body(body))
        except FieldErrors as exc:
            return _error(400, "invalid job", errors=exc.errors)
        except UnknownQueue as exc:
            return _error(404, str(exc))
        except InvalidJobs as exc:
            single = "jobs" not in body
            errors = [{"field": "" if single else f"jobs[{i}]", "message": m}
                      for i, m in exc.problems]
            return _error(400, "invalid job", errors=errors)
        except JobRejected as exc:
            return _error(400, str(exc), errors=[{"field": "", "message": str(exc)}])
        except QueueFull as exc:
            return _error(429, str(exc), headers={"Retry-After": str(RETRY_AFTER_FULL_S)})
        except IntakeUnavailable as exc:
            return _error(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_DOWN_S)})
        except ConfigError as exc:  # Redis refused the server's credentials: its operator's fix
            log.error("%s", exc)
            return _error(500, str(exc))
        return _json(202, {"ids": ids})

    async def job(request: web.Request) -> web.Response:
        if not authorised(request):
            return _error(401, "missing or invalid bearer token",
                          headers={"WWW-Authenticate": 'Bearer realm="jobpipe"'})
        job_id = request.match_info["job_id"]
        try:
            if request.method == "DELETE":
                status = await producer.cancel(job_id)
            else:
                status = await producer.status(job_id)
        except REDIS_DOWN as exc:
            return _error(503, f"Redis unavailable: {exc}",
                          headers={"Retry-After": str(RETRY_AFTER_DOWN_S)})
        if status is None:
            return _error(404, f"unknown job {job_id!r} (no queue with track_status knows it)")
        return _json(200, status.to_json())

    async def healthz(request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(producer.ping(), timeout=2.0)
        except Exception as exc:  # any failure means "not ready"; say which
            return _json(503, {"status": "redis unavailable", "error": str(exc)})
        return _json(200, {"status": "ok"})

    async def openapi(request: web.Request) -> web.Response:
        return _json(200, OPENAPI)

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = render_metrics()
        # Prometheus' type carries "; charset=utf-8", which aiohttp wants apart.
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application(client_max_size=cap_bytes)
    app[PRODUCER] = producer
    app.router.add_post("/v1/queues/{queue}/jobs", post_jobs)
    app.router.add_get("/v1/jobs/{job_id}", job)
    app.router.add_delete("/v1/jobs/{job_id}", job)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/metrics", metrics)
    return app


def server_tls_context(ingest: IngestSettings) -> ssl.SSLContext | None:
    """The HTTPS context of ``ingest.http_tls_*``, or None for plain HTTP."""
    if ingest.http_tls_certfile is None or ingest.http_tls_keyfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(ingest.http_tls_certfile, ingest.http_tls_keyfile)
    except ssl.SSLError as exc:
        raise ConfigError(f"ingest.http_tls_certfile: cannot use it with http_tls_keyfile "
                          f"as a PEM certificate and key: {exc}") from None
    return context


def run_server(settings: Settings, *, insecure: bool = False,
               extend: Callable[[web.Application], None] | None = None) -> None:
    """Serve the intake on ``ingest.http_host:http_port`` (uvloop) until interrupted.

    Full queues answer 429 at once: the server forces ``on_full = "raise"`` so
    a request never holds a connection while it waits for room.

    Args:
        insecure: allow a non-loopback address without tokens (see
            :mod:`ingest.http.exposure`).
        extend: given the application before it starts, to serve more beside
            the intake (``jobpipe dashboard --with-intake`` mounts ``/ui``).
    """
    import uvloop

    check_exposure(settings.ingest, insecure)
    served = replace(settings, ingest=replace(settings.ingest, on_full="raise"))

    async def main() -> None:
        async with AsyncProducer(served) as producer:
            app = create_app(served, producer)
            if extend is not None:
                extend(app)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            tls = server_tls_context(served.ingest)
            site = web.TCPSite(runner, served.ingest.http_host, served.ingest.http_port,
                               ssl_context=tls)
            await site.start()
            log.info("ingest server listening on %s://%s:%d", "http" if tls is None else "https",
                     served.ingest.http_host, served.ingest.http_port)
            try:
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()

    uvloop.run(main())
