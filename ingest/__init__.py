"""Producers: hand jobs to Redis in microseconds, one round trip per call.

    from ingest import Producer

    with Producer(settings) as producer:
        job_id = producer.enqueue("email", "send_welcome", {"user": 42}, key="user-42")
        ids = producer.enqueue_many("email", "send_digest", [{"user": u} for u in users])

``AsyncProducer`` is the asyncio twin (``async with AsyncProducer(settings)``).
``jobpipe ingest-server`` serves the same over HTTP for other languages.
"""

from ingest.aio import AsyncProducer
from ingest.intake import Intake, InvalidJobs, JobRequest
from ingest.producer import Producer
from ingest.spool import Spool
from jobpipe.errors import (
    IntakeUnavailable,
    JobRejected,
    JobTooLarge,
    NotReplicated,
    NotSerializable,
    QueueFull,
    UnknownQueue,
    UnsafeRedis,
)
from jobpipe.options import JobOptions

__all__ = [
    "AsyncProducer",
    "Intake",
    "IntakeUnavailable",
    "InvalidJobs",
    "JobOptions",
    "JobRejected",
    "JobRequest",
    "JobTooLarge",
    "NotReplicated",
    "NotSerializable",
    "Producer",
    "QueueFull",
    "Spool",
    "UnknownQueue",
    "UnsafeRedis",
]
