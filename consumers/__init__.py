"""jobpipe consumers: the worker runtime that runs jobs from Kafka.

    from consumers import App, JobContext, Worker

    app = App("mail")

    @app.task("send_email")
    async def send_email(ctx: JobContext, args: dict) -> None: ...

    Worker(settings, app).run()
"""

# --- handlers ---------------------------------------------------------------------
from consumers.context import JobContext

# --- operator controls ------------------------------------------------------------
from consumers.control import Controls, pause_queue, pause_tenant, resume_queue, resume_tenant
from consumers.ratelimit import RateLimiter
from consumers.registry import App, Task, load_app

# --- failures ---------------------------------------------------------------------
from consumers.retry.policy import Timeout
from consumers.retry.relay import RetryRelay

# --- running ----------------------------------------------------------------------
from consumers.worker import Worker
from jobpipe.errors import Reject, Retry

__all__ = [
    "App",
    "Controls",
    "JobContext",
    "RateLimiter",
    "Reject",
    "Retry",
    "RetryRelay",
    "Task",
    "Timeout",
    "Worker",
    "load_app",
    "pause_queue",
    "pause_tenant",
    "resume_queue",
    "resume_tenant",
]
