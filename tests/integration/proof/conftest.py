"""Fixtures of the chaos tests: a private stack (one of their own, or one shared by
those whose faults spare Redis and Kafka), and a pipeline on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.proof.harness import Pipeline
from tests.private_stack import PrivateStack


@pytest.fixture(scope="session")
def calm_stack(tmp_path_factory) -> Iterator[PrivateStack]:
    """One private stack for the chaos tests that kill workers and bridges or fail
    handlers but never touch Redis or Kafka: each saves a stack's start (~4 s).
    Started by the first test that asks; each pipeline on it has its own namespace."""
    stack = PrivateStack(tmp_path_factory.mktemp("calm-stack")).up()
    yield stack
    stack.down()


@pytest.fixture
def make_pipeline(tmp_path) -> Iterator[Callable[..., Pipeline]]:
    """Build a pipeline (settings + ledger + process control) on ``stack``: the
    test's own (``make_stack``) when its fault strikes Redis or Kafka, else
    ``calm_stack``."""
    pipelines: list[Pipeline] = []

    def make(stack: PrivateStack, **config: Any) -> Pipeline:
        pipeline = Pipeline(tmp_path / f"run{len(pipelines)}", stack,
                            f"c{uuid.uuid4().hex[:8]}", **config)
        pipelines.append(pipeline)
        pipeline.apply_topics()
        return pipeline

    yield make
    for pipeline in pipelines:
        pipeline.stop_all()

