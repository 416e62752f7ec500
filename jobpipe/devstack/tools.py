"""The programs the dev stack runs, and what to do when one is missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterable

from jobpipe.errors import StackError

INSTALL_COMMANDS: dict[str, str] = {
    "redis-server": "apt-get install -y redis-server",
    "redis-cli": "apt-get install -y redis-tools",
    "java": "apt-get install -y openjdk-17-jre-headless",
    "mvn": "apt-get install -y maven",
    "openssl": "apt-get install -y openssl",
    "docker": "see https://docs.docker.com/engine/install/",
}


def find_tool(name: str, path: str | None = None) -> str:
    """The absolute path of the program ``name``.

    Args:
        name: a program such as ``redis-server``, ``java`` or ``mvn``.
        path: a ``PATH``-style search path (``$PATH`` when ``None``); tests pass
            one without the tool to see the message.

    Raises:
        StackError: one line naming the tool and the command that installs it.
    """
    found = shutil.which(name, path=path)
    if found is None:
        how = INSTALL_COMMANDS.get(name, f"install {name}")
        raise StackError(f"{name} is not installed (not on PATH); install it with: {how}")
    return found


def require_tools(names: Iterable[str], path: str | None = None) -> dict[str, str]:
    """Find every program in ``names``; the first missing one raises.

    Raises:
        StackError: see :func:`find_tool`.
    """
    return {name: find_tool(name, path) for name in names}
