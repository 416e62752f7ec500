"""A private Redis that requires a password, for the credential and redaction tests."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PasswordRedis]:
    from jobpipe.devstack import DevStack, free_port, free_port_block

    password = "Tr0ub4dor-s3cret-9f2c"
    stack = DevStack(tmp_path_factory.mktemp("password-redis"), redis_port=free_port(),
                     kafka_port=free_port_block(2),
                     redis_extra_config=[f"requirepass {password}"])
    with started(stack, "redis-server", redis_only=True):
        yield PasswordRedis(stack.redis_config.port, password)


ADMIN_PASSWORD = "admin-Pa55"


@pytest.fixture(scope="module")
def acl_redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private Redis whose default user is off; user ``admin`` (ADMIN_PASSWORD)
    may do anything and creates the least-privilege users under test."""
    from jobpipe.devstack import DevStack, free_port, free_port_block

    stack = DevStack(tmp_path_factory.mktemp("acl-redis"), redis_port=free_port(),
                     kafka_port=free_port_block(2),
                     redis_extra_config=["user default off",
                                         f"user admin on >{ADMIN_PASSWORD} ~* &* +@all"])
    with started(stack, "redis-server", redis_only=True):
        yield stack.redis_config.port
