"""Loopback ports: finding free ones, and waiting for one to answer."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable

from jobpipe.devstack.processes import poll_until
from jobpipe.errors import StackError

# Below Linux's ephemeral range (32768-60999), so outgoing connections do not
# take a port between the moment it is picked and the moment a server binds it.
_BLOCK_RANGE = (20_000, 32_000)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: a port held only by connections in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port nothing is bound to right now (outside the ephemeral range)."""
    return free_port_block(1)


def free_port_block(size: int, attempts: int = 200, *, shadow_offset: int = 0) -> int:
    """The first port of ``size`` consecutive free loopback ports.

    A Kafka node needs two ports (PLAINTEXT and CONTROLLER), three nodes six.

    Args:
        size: how many consecutive ports.
        attempts: random blocks tried.
        shadow_offset: when not 0, the block ``shadow_offset`` higher must be
            free too (a Redis Cluster node's bus listens on its port + 10000),
            and also below the ephemeral range.

    Raises:
        StackError: no such block was found.
    """
    low, high = _BLOCK_RANGE
    high -= shadow_offset
    offsets = (0, shadow_offset) if shadow_offset else (0,)
    for _ in range(attempts):
        base = random.randrange(low, high - size)
        if all(_bindable(base + off + i) for off in offsets for i in range(size)):
            return base
    raise StackError(f"no block of {size} free loopback ports found")


def port_answers(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout_s).close()
    except OSError:
        return False
    return True


def port_is_free(port: int, grace_s: float = 5.0) -> bool:
    """Whether no server listens on ``127.0.0.1:port`` (waiting up to ``grace_s``).

    A connect test, not a bind test: after a server is killed, its accepted
    connections linger (FIN-WAIT-2) until the clients close them, and they make
    a plain bind fail although the restarted server (SO_REUSEADDR) binds fine.
    The grace covers a server killed a moment ago whose listener was seen to
    answer once more (CI saw it right after a kill -9 of the broker).
    """
    return poll_until(lambda: not port_answers(port), grace_s, 0.1)


def wait_port(port: int, timeout_s: float, alive: Callable[[], bool] | None = None) -> None:
    """Wait until ``127.0.0.1:port`` accepts connections.

    Args:
        port: the port.
        timeout_s: give up after this long.
        alive: a callable returning False once the server died (fail fast).

    Raises:
        StackError: the server died or did not answer in time.
    """
    deadline = time.monotonic() + timeout_s
    while not port_answers(port):
        if alive is not None and not alive():
            raise StackError(f"the server for port {port} exited before it answered")
        if time.monotonic() > deadline:
            raise StackError(f"nothing answered on 127.0.0.1:{port} within {timeout_s:.0f} s")
        time.sleep(0.1)
