"""What a Lua script asks of Redis, read from its source."""

from __future__ import annotations

import re

_CALL = re.compile(r"redis\.p?call\('([A-Za-z]+)'")


def lua_commands(script: str) -> set[str]:
    """The Redis commands a Lua script calls (``redis.call('X', ...)``), lower case:
    what Redis checks against the caller's ACL."""
    return {c.lower() for c in _CALL.findall(script)}
