"""Lua scripts queued on a pipeline, alike on a single Redis and on a Redis Cluster.

A script queued the redis-py way (``script(client=pipe)``) makes the pipeline
ask ``SCRIPT EXISTS`` first: a second round trip per pipeline.
:func:`run_script_calls` sends bare ``EVALSHA`` calls instead. Redis looks a
script up before it runs any of it, so a call answered NOSCRIPT (a restart, a
``SCRIPT FLUSH``, a fail-over: script caches are not replicated) ran nothing,
while the others ran once: exactly the NOSCRIPT calls are run again, alone,
through the script (which loads it). The pipeline as a whole is never sent
again, as the calls that ran would run twice.

A cluster pipeline may send its calls to several nodes and follows redirects
itself, so on a cluster the script's body goes along (``EVAL``): a few hundred
bytes more per call, and never NOSCRIPT.

One call alone (:func:`run_script`) is a bare ``EVALSHA`` packed by hiredis and
written on a pooled connection, or on one the caller keeps
(:mod:`jobpipe.kept_connection`, :mod:`jobpipe.direct_calls`). redis-py's
script call wraps each command in a retry wrapper and event and observability
hooks, and packs each argument in Python: a producer's 15-job push took ~117 us
of CPU that way and ~50-57 this way (blocking client), a one-field script ~103
and ~69 us on an asyncio client.
It fails as redis-py's call does, minus its retries: a broken connection
raises, and the caller (who knows whether a second run is safe) decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import hiredis
import redis.asyncio.cluster
import redis.cluster
from redis.commands.core import AsyncScript, Script
from redis.exceptions import NoScriptError, ResponseError

from jobpipe.connections import is_cluster
from jobpipe.kept_connection import KeptConnection, pooled

if TYPE_CHECKING:
    from jobpipe.direct_calls import DirectCalls

ScriptCall = tuple[Sequence[Any], Sequence[Any]]  # keys, args


def run_script(client: Any, script: Script, keys: Sequence[Any], args: Sequence[Any],
               kept: KeptConnection | None = None) -> Any:
    """``script(keys=keys, args=args)`` on a blocking client: a bare ``EVALSHA``
    on a single Redis; through the script on a cluster (which routes it) and
    after NOSCRIPT (nothing ran; the script loads itself).

    Args:
        kept: on a single Redis, send on this connection rather than a pooled one.
    """
    if not is_cluster(client):
        with kept.connection() if kept else pooled(client.connection_pool) as conn:
            try:
                conn.send_packed_command([_evalsha(script, keys, args)], check_health=False)
                return conn.read_response()
            except NoScriptError:
                pass
    return script(keys=keys, args=args)


async def run_script_async(client: Any, script: AsyncScript, keys: Sequence[Any],
                           args: Sequence[Any]) -> Any:
    """:func:`run_script` on an asyncio client."""
    if not is_cluster(client):
        pool = client.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command([_evalsha(script, keys, args)], check_health=False)
            return await conn.read_response()
        except NoScriptError:
            pass
        finally:
            await pool.release(conn)
    return await script(keys=keys, args=args)


def _evalsha(script: Script | AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> bytes:
    """The call in RESP. hiredis takes ``str``, ``bytes``, ``int`` (exactly: not
    ``bool``), ``float`` and ``memoryview``, as every caller passes."""
    packed: bytes = hiredis.pack_command(evalsha_command(script, keys, args))
    return packed


def evalsha_command(script: Script | AsyncScript, keys: Sequence[Any],
                    args: Sequence[Any]) -> tuple[Any, ...]:
    """The arguments of an ``EVALSHA`` of ``script`` (never loads it)."""
    return ("EVALSHA", cast(Any, script).sha, len(keys), *keys, *args)


def run_script_calls(client: Any, script: Script, calls: Sequence[ScriptCall],
                     kept: KeptConnection | None = None) -> list[Any]:
    """Run ``script`` once per ``(keys, args)`` of ``calls`` in one round trip (a
    blocking client, plain or cluster); the results, in order.

    One call is :func:`run_script`. A
    failure other than NOSCRIPT raises the first one, as a pipeline does; the
    calls without one ran.

    Args:
        kept: on a single Redis, send on this connection rather than a pipeline's.
    """
    if len(calls) == 1:
        return [run_script(client, script, calls[0][0], calls[0][1], kept)]
    results: list[Any]
    if kept is not None and not is_cluster(client):
        with kept.connection() as conn:
            conn.send_packed_command([_evalsha(script, keys, args) for keys, args in calls],
                                     check_health=False)
            results = [_reply_or_error(conn) for _ in calls]
    else:
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            _queue(pipe, script, keys, args)
        results = pipe.execute(raise_on_error=False)
    for i in _not_run(results):
        results[i] = script(keys=calls[i][0], args=calls[i][1])
    return results


async def run_script_calls_async(client: Any, script: AsyncScript, calls: Sequence[ScriptCall],
                                 direct: DirectCalls | None = None) -> list[Any]:
    """:func:`run_script_calls` on an asyncio client.

    Args:
        direct: on a single Redis, send the calls over its connection instead
            (:mod:`jobpipe.direct_calls`); only for a script that may run twice.
    """
    if direct is not None and not is_cluster(client):
        replies = await direct.execute(
            [evalsha_command(script, keys, args) for keys, args in calls], raise_on_error=False)
        for i in _not_run(replies):
            replies[i] = await script(keys=calls[i][0], args=calls[i][1])
        return replies
    if len(calls) == 1:
        return [await run_script_async(client, script, calls[0][0], calls[0][1])]
    pipe = client.pipeline(transaction=False)
    for keys, args in calls:
        _queue(pipe, script, keys, args)
    results: list[Any] = await pipe.execute(raise_on_error=False)
    for i in _not_run(results):
        results[i] = await script(keys=calls[i][0], args=calls[i][1])
    return results


def _reply_or_error(conn: Any) -> Any:
    """The next reply on ``conn``; an error reply returned, not raised, so every
    reply of the round trip is read."""
    try:
        return conn.read_response()
    except ResponseError as exc:
        return exc


def _queue(pipe: Any, script: Script | AsyncScript, keys: Sequence[Any],
           args: Sequence[Any]) -> None:
    if _on_cluster(pipe):
        pipe.execute_command("EVAL", _lua(script), len(keys), *keys, *args)
    else:  # not script(client=pipe): that makes the pipeline ask SCRIPT EXISTS first
        pipe.execute_command("EVALSHA", cast(Any, script).sha, len(keys), *keys, *args)


def _not_run(results: list[Any]) -> list[int]:
    """The calls Redis answered NOSCRIPT (they ran nothing); raises the first other
    failure, as a pipeline does."""
    failed = next((r for r in results
                   if isinstance(r, Exception) and not isinstance(r, NoScriptError)), None)
    if failed is not None:
        raise failed
    return [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]


def _lua(script: Script | AsyncScript) -> str | bytes:
    # The type stubs omit the attributes redis-py keeps the script's source (and SHA) in.
    source: str | bytes = cast(Any, script).script
    return source


def _on_cluster(pipe: object) -> bool:
    return isinstance(pipe, (redis.cluster.ClusterPipeline,
                             redis.asyncio.cluster.ClusterPipeline))
