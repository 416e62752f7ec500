"""TaskRef: what a producer needs to address a task, checked where it is made."""

from __future__ import annotations

import pytest

from consumers import App
from jobpipe.errors import ConfigError
from jobpipe.options import OPTION_NAMES
from jobpipe.tasks import EnqueueOptions, TaskRef


def test_the_keyword_options_are_the_job_options() -> None:
    assert tuple(EnqueueOptions.__annotations__) == OPTION_NAMES


@pytest.mark.parametrize(("queue", "name"), [("bad queue", "t"), ("", "t"), ("q", "")])
def test_a_ref_names_a_valid_queue_and_a_task(queue: str, name: str) -> None:
    with pytest.raises(ConfigError, match="TaskRef"):
        TaskRef(queue, name)


def test_the_queue_decorator_returns_a_ref_that_still_runs_the_handler() -> None:
    app = App("t")

    @app.task(queue="mail")
    def send(ctx: object, args: int) -> int:
        return args + 1

    assert (send.queue, send.name) == ("mail", "send")
    assert isinstance(send, TaskRef)
    assert send(None, 1) == 2  # type: ignore[arg-type]
    assert app.tasks["send"].fn is send.fn
    assert not app.tasks["send"].is_async


def test_a_declared_ref_registers_its_name_and_keeps_the_handler() -> None:
    app = App("t")
    ref: TaskRef[int] = TaskRef("mail", "send_email")

    async def handler(ctx: object, args: int) -> None: ...

    assert app.task(ref)(handler) is handler  # type: ignore[arg-type]
    assert app.tasks["send_email"].fn is handler
    assert app.tasks["send_email"].is_async
