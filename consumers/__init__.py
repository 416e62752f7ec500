"""jobpipe consumers: the worker runtime that runs jobs from Kafka.

    from consumers import App, JobContext, Worker

    app = App("mail")

    @app.task("send_email")
    async def send_email(ctx: JobContext, args: dict) -> None: ...

    Worker(settings, app).run()
"""

# --- handlers ---------------------------------------------------------------------
from consumers.context import JobContext
from consumers.registry import App, Task, load_app

# --- failures ---------------------------------------------------------------------
from consumers.retry import Timeout

# --- running ----------------------------------------------------------------------
from consumers.worker import Worker
from jobpipe.errors import Reject, Retry

__all__ = [
    "App",
    "JobContext",
    "Reject",
    "Retry",
    "Task",
    "Timeout",
    "Worker",
    "load_app",
]
