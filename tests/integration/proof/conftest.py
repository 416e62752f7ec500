"""Fixtures of the chaos tests: a private stack each, and a pipeline on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.proof.harness import Pipeline
from tests.private_stack import PrivateStack


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

