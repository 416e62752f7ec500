"""The dashboard's aiohttp application: static files and JSON endpoints, mounted at ``/ui``.

The page and its scripts carry no data and are served to anyone; every
``/ui/api/`` endpoint wants one of ``ingest.tokens`` as a bearer token, like
the intake. The page asks for the token once and keeps it in the tab's
``sessionStorage`` (or reads it from the address's ``#token=`` fragment, which
browsers never send to a server).

Errors answer ``{"error": "one line"}``: 400 bad input, 401 bad token, 404
unknown queue, record or job, 503 Redis or Kafka unavailable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import redis
from aiohttp import web

from dashboard.backend import Backend
from jobpipe.errors import ConfigError, ServiceUnavailable
from jobpipe.http_access import bearer_authorised

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
BACKEND: web.AppKey[Backend] = web.AppKey("backend", Backend)
DLQ_LIST_LIMIT = 100
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json(status, {"error": message})


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is ``{}``."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=orjson.dumps({"error": f"body is not valid JSON: {exc}"})
                                 .decode(), content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}',
                                 content_type="application/json")
    return body


def create_app(settings_tokens: tuple[str, ...], backend: Backend) -> web.Application:
    """The application around a :class:`Backend`, to mount at ``/ui`` (its routes are
    relative to it); it closes the backend when the server cleans up.

    Args:
        settings_tokens: ``ingest.tokens``; empty = no authentication.
    """
    tokens = tuple(t.encode() for t in settings_tokens)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/ui/api/") and not bearer_authorised(
                request.headers.get("Authorization", ""), tokens):
            return _error(401, "missing or invalid bearer token (the tokens of ingest.tokens)")
        try:
            return await handler(request)
        except ConfigError as exc:  # bad tenant, missing DLQ topic...
            return _error(400, str(exc))
        except ServiceUnavailable as exc:
            return _error(503, str(exc))
        except (redis.RedisError, OSError) as exc:
            return _error(503, f"Redis unavailable: {exc}")

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    def spec_of(request: web.Request) -> Any:
        queue = request.match_info["queue"]
        spec = backend.spec(queue)
        if spec is None:
            known = ", ".join(sorted(backend.settings.topology.queues))
            raise web.HTTPNotFound(text=orjson.dumps(
                {"error": f"unknown queue {queue!r} (declared: {known})"}).decode(),
                content_type="application/json")
        return spec

    def tenant_of(body: dict[str, Any]) -> str | None:
        tenant = body.get("tenant")
        if tenant in (None, ""):
            return None
        if not isinstance(tenant, str):
            raise ConfigError("tenant: must be a string")
        return tenant

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def stats(request: web.Request) -> web.Response:
        return _json(200, await run(backend.stats))

    async def pause(request: web.Request) -> web.Response:
        spec, body = spec_of(request), await _body(request)
        return _json(200, {"message": await run(backend.pause, spec, tenant_of(body))})

    async def resume(request: web.Request) -> web.Response:
        spec, body = spec_of(request), await _body(request)
        return _json(200, {"message": await run(backend.resume, spec, tenant_of(body))})

    async def dlq_list(request: web.Request) -> web.Response:
        spec = spec_of(request)
        return _json(200, {"records": await run(backend.dlq_list, spec, DLQ_LIST_LIMIT)})

    async def dlq_show(request: web.Request) -> web.Response:
        spec, ref = spec_of(request), request.match_info["ref"]
        found = await run(backend.dlq_show, spec, ref)
        if found is None:
            return _error(404, f"no DLQ record {ref!r} in queue {spec.name}")
        return _json(200, found)

    async def dlq_replay(request: web.Request) -> web.Response:
        spec, body = spec_of(request), await _body(request)
        refs = body.get("refs")
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            return _error(400, "refs: a non-empty list of job ids or PARTITION:OFFSET")
        return _json(200, {"message": await run(backend.dlq_replay, spec, tuple(refs))})

    async def dlq_purge(request: web.Request) -> web.Response:
        return _json(200, {"message": await run(backend.dlq_purge, spec_of(request))})

    async def job(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        found = await run(backend.job, job_id)
        if found is None:
            return _error(404, f"no state record of job {job_id!r} (only queues with "
                               "track_status keep one, for status_ttl_s)")
        return _json(200, found)

    async def close(app: web.Application) -> None:
        backend.close()

    app = web.Application(middlewares=[guard])
    app[BACKEND] = backend
    app.on_cleanup.append(close)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/stats", stats)
    app.router.add_post("/api/queues/{queue}/pause", pause)
    app.router.add_post("/api/queues/{queue}/resume", resume)
    app.router.add_get("/api/queues/{queue}/dlq", dlq_list)
    app.router.add_get("/api/queues/{queue}/dlq/{ref}", dlq_show)
    app.router.add_post("/api/queues/{queue}/dlq/replay", dlq_replay)
    app.router.add_post("/api/queues/{queue}/dlq/purge", dlq_purge)
    app.router.add_get("/api/jobs/{job_id}", job)
    return app


def standalone_app(ui: web.Application) -> web.Application:
    """A server of its own for the dashboard: ``/ui`` and a way there from ``/``."""

    async def to_ui(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")

    root = web.Application()
    root.router.add_get("/", to_ui)
    root.router.add_get("/ui", to_ui)
    root.add_subapp("/ui", ui)
    return root
