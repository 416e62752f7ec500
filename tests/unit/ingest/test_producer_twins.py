"""Producer and AsyncProducer are one API in two shells: this fails when they drift.

Both shells wrap the same sans-I/O core (:class:`ingest.intake.Intake`), and the
blocking one is generated from the asyncio one by ``scripts/unasync.py``: the
committed ``ingest/producer.py`` must be exactly what the script gives. What they
may not do either is accept options other than :data:`jobpipe.options.OPTION_NAMES`.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest import AsyncProducer, Producer
from ingest.cli import enqueue as enqueue_command
from jobpipe.options import OPTION_NAMES

UNASYNC = Path(__file__).resolve().parents[3] / "scripts" / "unasync.py"
CONTEXT = {"__enter__": "__aenter__", "__exit__": "__aexit__"}


def methods(cls: type, public: bool) -> dict[str, Callable[..., Any]]:
    out = {}
    for name, value in vars(cls).items():
        if not callable(value) or name.startswith("__"):
            continue
        if name.startswith("_") != (not public):
            continue
        out[name] = value
    return out


def shape(function: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    signature = inspect.signature(function)
    return [(p.name, p.kind, p.default, p.annotation) for p in signature.parameters.values()
            ] + [("return", None, None, signature.return_annotation)]


def test_both_shells_have_the_same_public_methods_with_the_same_signatures() -> None:
    sync, aio = methods(Producer, public=True), methods(AsyncProducer, public=True)
    assert set(sync) == set(aio)
    for name in sync:
        assert shape(sync[name]) == shape(aio[name]), name
        assert not inspect.iscoroutinefunction(sync[name]), name
        assert inspect.iscoroutinefunction(aio[name]), name
    for plain, async_name in CONTEXT.items():
        assert hasattr(Producer, plain)
        assert hasattr(AsyncProducer, async_name)


def test_the_blocking_producer_is_what_unasync_generates() -> None:
    check = subprocess.run([sys.executable, str(UNASYNC), "--check"], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_a_hand_edit_of_the_blocking_producer_is_caught(tmp_path: Path) -> None:
    import runpy

    unasync = runpy.run_path(str(UNASYNC))
    source = (UNASYNC.parents[1] / "ingest" / "aio.py").read_text()
    generated = unasync["generate"](source)
    for word in ("async def", "async with", "await ", "asyncio", "aclose"):
        assert word not in generated, word
    edited = source.replace("async def ping(self) -> None:",
                            "async def ping(self, timeout_s: float = 1.0) -> None:")
    assert unasync["generate"](edited) != generated
    with pytest.raises(ValueError, match="matched nothing"):
        unasync["generate"](source.replace("asyncio.Lock()", "Lock()"))


def test_both_shells_are_built_from_the_same_private_steps() -> None:
    assert set(methods(Producer, public=False)) == set(methods(AsyncProducer, public=False))


def test_the_enqueue_methods_take_exactly_the_job_options() -> None:
    for cls in (Producer, AsyncProducer):
        for name in ("enqueue", "enqueue_many"):
            parameters = inspect.signature(getattr(cls, name)).parameters.values()
            keyword_only = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
            assert keyword_only == set(OPTION_NAMES), f"{cls.__name__}.{name}"


def test_the_enqueue_command_offers_only_job_options() -> None:
    flags = {p.name for p in enqueue_command.params if p.name is not None
             and p.name not in ("queue", "task", "args_json")}
    assert flags <= set(OPTION_NAMES)
