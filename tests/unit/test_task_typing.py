"""mypy checks a job's args against its task: the typed enqueue is proved by running mypy.

The snippet below is checked with the project's strict mypy settings; every
line marked ``# wrong`` must be an error and no other line may be one, so a
TaskRef that stopped carrying its args type (or a bound enqueue that took
``Any``) fails this test, and so does one that rejects a valid dict literal.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.services import ROOT

SNIPPET = textwrap.dedent('''
    from typing import TypedDict

    from consumers import App, JobContext
    from ingest import AsyncProducer, Producer
    from jobpipe.tasks import TaskRef


    class Email(TypedDict):
        to: str
        subject: str


    SEND_EMAIL: TaskRef[Email] = TaskRef("mail", "send_email")
    app = App("mail")


    @app.task(queue="mail")
    def send_email(ctx: JobContext, args: Email) -> None: ...


    @app.task(SEND_EMAIL)
    def implements_ref(ctx: JobContext, args: Email) -> None: ...


    @app.task(SEND_EMAIL)  # wrong: the handler takes other args than the ref declares
    def implements_wrong(ctx: JobContext, args: int) -> None: ...


    def produce(producer: Producer) -> None:
        job_id: str = send_email.using(producer).enqueue({"to": "a@b", "subject": "hi"}, key="a")
        SEND_EMAIL.using(producer).enqueue({"to": "a@b.example", "subject": "hi"})
        ids: list[str] = send_email.using(producer).enqueue_many([{"to": "a", "subject": "b"}])
        producer.enqueue("mail", "send_email", {"anything": 1})
        send_email.using(producer).enqueue({"to": "a@b.example"})  # wrong: subject missing
        send_email.using(producer).enqueue({"to": 42, "subject": "hi"})  # wrong: to not a str
        send_email.using(producer).enqueue("a@b.example")  # wrong: args is not an Email
        send_email.using(producer).enqueue({"to": "a", "subject": "b"}, priorty=1)  # wrong
        send_email.using(producer).enqueue({"to": "a", "subject": "b"}, key=3)  # wrong: key
        SEND_EMAIL.using(producer).enqueue_many([{"to": 1, "subject": "b"}])  # wrong: to
        send_email(None, {"to": "a", "subject": "b"})  # wrong: a handler still needs a ctx


    async def produce_async(producer: AsyncProducer) -> None:
        job_id: str = await send_email.using(producer).enqueue({"to": "a", "subject": "hi"})
        await SEND_EMAIL.using(producer).enqueue({"to": 1, "subject": "hi"})  # wrong: to
        await send_email.using(producer).enqueue_many([{"to": "a", "subject": 2}])  # wrong
        not_awaited: str = send_email.using(producer).enqueue({"to": "a", "subject": "hi"})  # wrong
''')


def test_mypy_rejects_exactly_the_wrong_args(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    path = tmp_path / "snippet.py"
    path.write_text(SNIPPET)
    # The project's settings (strict) and its cache, so a warm run takes seconds.
    out, err, _ = api.run(["--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(ROOT / ".mypy_cache"), str(path)])
    errors = {int(m.group(1)) for m in re.finditer(r"snippet\.py:(\d+): error", out)}
    wrong = {n for n, line in enumerate(SNIPPET.splitlines(), 1) if "# wrong" in line}
    assert wrong, "the snippet marks the lines that must fail"
    assert errors == wrong, f"mypy said:\n{out}{err}"
