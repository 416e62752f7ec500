"""Lua scripts queued on a pipeline, alike on a single Redis and on a Redis Cluster.

On a single Redis, redis-py loads a pipeline's scripts before sending it. A
cluster pipeline does not: an ``EVALSHA`` reaching a node without the script (a
new node, or a promoted replica, as script caches are not replicated) fails with
NOSCRIPT, and the pipeline cannot simply be sent again (the scripts that did run
would run twice). So on a cluster the script's body goes along (``EVAL``): a few
hundred bytes more per call, and never NOSCRIPT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio.cluster
import redis.cluster
from redis.commands.core import AsyncScript, Script


def queue_script(pipe: Any, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Queue one call of ``script`` on a blocking pipeline (plain or cluster)."""
    if _on_cluster(pipe):
        pipe.execute_command("EVAL", _lua(script), len(keys), *keys, *args)
    else:
        script(keys=keys, args=args, client=pipe)


async def queue_script_async(pipe: Any, script: AsyncScript, keys: Sequence[Any],
                             args: Sequence[Any]) -> None:
    """Queue one call of ``script`` on an asyncio pipeline (plain or cluster)."""
    if _on_cluster(pipe):
        pipe.execute_command("EVAL", _lua(script), len(keys), *keys, *args)
    else:
        await script(keys=keys, args=args, client=pipe)


def _lua(script: Script | AsyncScript) -> str | bytes:
    # The type stubs omit the attribute redis-py keeps the script's source in.
    source: str | bytes = cast(Any, script).script
    return source


def _on_cluster(pipe: object) -> bool:
    return isinstance(pipe, (redis.cluster.ClusterPipeline,
                             redis.asyncio.cluster.ClusterPipeline))
