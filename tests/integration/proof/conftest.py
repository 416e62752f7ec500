"""Fixtures of the chaos tests: a private stack each, and a pipeline on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.proof.harness import Pipeline
from tests.integration.proof.private_stack import PrivateStack, stack_available


@pytest.fixture
def make_stack(tmp_path) -> Iterator[Callable[..., PrivateStack]]:
    """Start a private Redis + Kafka (options: appendfsync, maxmemory_bytes)."""
    why = stack_available()
    if why is not None:
        pytest.skip(f"no private stack: {why}")
    stacks: list[PrivateStack] = []

    def make(**options: Any) -> PrivateStack:
        stack = PrivateStack(tmp_path / f"stack{len(stacks)}", **options)
        stacks.append(stack)
        return stack.up()

    yield make
    for stack in stacks:
        stack.down()


@pytest.fixture
def make_pipeline(tmp_path, make_stack) -> Iterator[Callable[..., Pipeline]]:
    """Build a pipeline (settings + ledger + process control) on a private stack."""
    pipelines: list[Pipeline] = []

    def make(stack: PrivateStack | None = None, **config: Any) -> Pipeline:
        stack = stack or make_stack()
        pipeline = Pipeline(tmp_path / f"run{len(pipelines)}", stack,
                            f"c{uuid.uuid4().hex[:8]}", **config)
        pipelines.append(pipeline)
        pipeline.apply_topics()
        return pipeline

    yield make
    for pipeline in pipelines:
        pipeline.stop_all()
