"""Private Redis servers for the credential, ACL and redaction tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.private_stack import started


@dataclass(frozen=True)
class PasswordRedis:
    port: int
    password: str

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"


@contextmanager
def _private_redis(tmp_path_factory: pytest.TempPathFactory, name: str,
                   config: list[str]) -> Iterator[int]:
    """A redis-server of its own (no Kafka) on a free port; yields the port."""
    from jobpipe.devstack import DevStack, free_port, free_port_block

    stack = DevStack(tmp_path_factory.mktemp(name), redis_port=free_port(),
                     kafka_port=free_port_block(2), redis_extra_config=config)
    with started(stack, "redis-server", redis_only=True):
        yield stack.redis_config.port


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PasswordRedis]:
    password = "Tr0ub4dor-s3cret-9f2c"
    with _private_redis(tmp_path_factory, "password-redis",
                        [f"requirepass {password}"]) as port:
        yield PasswordRedis(port, password)


ADMIN_PASSWORD = "admin-Pa55"


@pytest.fixture(scope="module")
def acl_redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private Redis whose default user is off; user ``admin`` (ADMIN_PASSWORD)
    may do anything and creates the least-privilege users under test."""
    with _private_redis(tmp_path_factory, "acl-redis", [
            "user default off", f"user admin on >{ADMIN_PASSWORD} ~* &* +@all"]) as port:
        yield port
