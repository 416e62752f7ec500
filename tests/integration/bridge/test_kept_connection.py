"""KeptConnection: the bridge's script calls on one connection, kept in step through
error replies and NOSCRIPT, replaced when the server closed it, and never shared
with another thread."""

from __future__ import annotations

import threading

import pytest
import redis

from jobpipe.kept_connection import KeptConnection
from jobpipe.pipelined import run_script, run_script_calls
from tests.integration.client_list import assert_all_closed, connections_named

pytestmark = pytest.mark.integration

_GET = "return redis.call('GET', KEYS[1])"


def _named_client(redis_url: str, name: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, client_name=name, socket_timeout=5.0)


def _client_id(kept: KeptConnection) -> int:
    with kept.connection() as conn:
        conn.send_command("CLIENT", "ID")
        return int(conn.read_response())


def test_calls_of_the_owner_thread_go_on_one_connection(redis_url, redis_client, namespace):
    redis_client.set(f"{namespace}:s", b"v")
    client = _named_client(redis_url, namespace)
    try:
        kept = KeptConnection(client)
        client.script_load(_GET)
        get = client.register_script(_GET)
        for _ in range(5):
            assert run_script(client, get, [f"{namespace}:s"], [], kept) == b"v"
            assert run_script_calls(client, get, [([f"{namespace}:s"], [])] * 3,
                                    kept) == [b"v"] * 3
        # The kept connection is out of the pool: a call through the client opens another.
        assert client.get(f"{namespace}:s") == b"v"
        assert len(connections_named(redis_client, namespace)) == 2
    finally:
        client.close()
    assert_all_closed(redis_client, namespace)  # closed with the client


def test_another_thread_or_a_nested_call_gets_a_pooled_connection(redis_url, namespace):
    client = _named_client(redis_url, namespace)
    try:
        kept = KeptConnection(client)
        with kept.connection() as mine, kept.connection() as nested:
            assert nested is not mine
        theirs = []

        def use() -> None:
            with kept.connection() as conn:
                theirs.append(conn)

        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
        assert theirs
        assert theirs[0] is not mine
        with kept.connection() as again:
            assert again is mine
    finally:
        client.close()


def test_a_connection_closed_by_the_server_is_replaced_before_the_next_call(
        redis_url, redis_client, namespace):
    """Killed between two calls: the next call reconnects, it does not fail (a
    take that failed would count as one whose outcome is unknown)."""
    redis_client.set(f"{namespace}:s", b"v")
    client = _named_client(redis_url, namespace)
    try:
        kept = KeptConnection(client)
        get = client.register_script(_GET)
        first = _client_id(kept)
        redis_client.client_kill_filter(_id=str(first))
        assert run_script(client, get, [f"{namespace}:s"], [], kept) == b"v"
        assert _client_id(kept) != first
    finally:
        client.close()


def test_error_replies_and_noscript_leave_the_connection_in_step(
        redis_url, redis_client, namespace):
    redis_client.set(f"{namespace}:s", b"v")
    redis_client.set(f"{namespace}:t", b"w")
    redis_client.rpush(f"{namespace}:l", b"x")
    client = _named_client(redis_url, namespace)
    try:
        kept = KeptConnection(client)
        get = client.register_script(_GET)
        assert run_script(client, get, [f"{namespace}:s"], [], kept) == b"v"
        connection = _client_id(kept)
        redis_client.script_flush()  # both calls meet NOSCRIPT; both are run again
        assert run_script_calls(client, get, [([f"{namespace}:s"], []), ([f"{namespace}:s"], [])],
                                kept) == [b"v", b"v"]
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            run_script_calls(client, get, [([f"{namespace}:l"], []), ([f"{namespace}:t"], [])],
                             kept)
        # The reply after the error (b"w") was read with it: the next call gets its
        # own, on the same connection.
        assert run_script(client, get, [f"{namespace}:s"], [], kept) == b"v"
        assert _client_id(kept) == connection
    finally:
        client.close()
