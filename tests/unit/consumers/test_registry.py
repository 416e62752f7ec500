import pytest

import consumers
from consumers import App, JobContext
from jobpipe.errors import ConfigError


def test_exports_match_all():
    exported = {name for name in dir(consumers) if not name.startswith("_")}
    assert set(consumers.__all__) <= exported
    for name in consumers.__all__:
        assert getattr(consumers, name) is not None


def test_task_registration_forms():
    app = App("t")

    @app.task
    async def plain(ctx: JobContext, args: object) -> None: ...

    @app.task("named", timeout_s=2, retry_on=(OSError,))
    def sync_one(ctx: JobContext, args: object) -> None: ...

    assert app.tasks["plain"].is_async
    task = app.tasks["named"]
    assert not task.is_async
    assert task.timeout_s == 2
    assert task.retry_on == (OSError,)


def test_duplicate_and_invalid_tasks_are_config_errors():
    app = App("t")
    app.task("x")(lambda ctx, args: None)
    with pytest.raises(ConfigError, match="twice"):
        app.task("x")(lambda ctx, args: None)
    with pytest.raises(ConfigError, match="timeout_s"):
        app.task("y", timeout_s=0)(lambda ctx, args: None)
