"""jobpipe: Redis intake, Kafka durability, sharded workers with retries and DLQ.

This package is the shared contract; the stages live in ``ingest``, ``bridge``
and ``consumers`` and talk to each other only through Redis and Kafka.
"""

from importlib.metadata import PackageNotFoundError, version

# Envelope
from jobpipe.envelope import Job, decode, encode, new_job_id

# Errors
from jobpipe.errors import (
    ConfigError,
    EnvelopeError,
    IntakeUnavailable,
    JobpipeError,
    JobRejected,
    JobTooLarge,
    KafkaUnavailable,
    NotReplicated,
    NotSerializable,
    QueueFull,
    RedisRefused,
    RedisUnavailable,
    Reject,
    Retry,
    ServiceUnavailable,
    StackError,
    UnknownQueue,
    UnsafeRedis,
)

# Settings and topology
from jobpipe.settings import Settings, load_settings
from jobpipe.topology import QueueSpec, Topology

try:
    __version__ = version("jobpipe")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "ConfigError",
    "EnvelopeError",
    "IntakeUnavailable",
    "Job",
    "JobRejected",
    "JobTooLarge",
    "JobpipeError",
    "KafkaUnavailable",
    "NotReplicated",
    "NotSerializable",
    "QueueFull",
    "QueueSpec",
    "RedisRefused",
    "RedisUnavailable",
    "Reject",
    "Retry",
    "ServiceUnavailable",
    "Settings",
    "StackError",
    "Topology",
    "UnknownQueue",
    "UnsafeRedis",
    "__version__",
    "decode",
    "encode",
    "load_settings",
    "new_job_id",
]
