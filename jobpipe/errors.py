"""Every error jobpipe raises, under one root.

    JobpipeError                     root; the CLI prints it as one line, exit 1
    ├── ConfigError                  a settings file, key or value is wrong
    ├── EnvelopeError                bytes that are not a valid job (carries reason, raw)
    ├── JobRejected                  bad input refused before anything was written
    │   ├── UnknownQueue
    │   ├── JobTooLarge
    │   └── NotSerializable
    ├── QueueFull                    backpressure: the queue is past its high-water mark
    ├── IntakeUnavailable            Redis did not answer before the deadline
    │   └── NotReplicated            written, but not confirmed on redis.wait_replicas replicas
    ├── StackError                   the dev stack cannot start or a tool is missing
    ├── UnsafeRedis                  Redis evicts keys or has no AOF
    ├── RedisRefused                 Redis answered a command with an error for good
    ├── ServiceUnavailable           Redis or Kafka did not answer (names the address)
    │   ├── RedisUnavailable
    │   └── KafkaUnavailable
    └── HandlerError                 raised by handlers to steer retries
        ├── Retry                    retry after delay_s (retryable)
        └── Reject                   never retry: straight to the DLQ

`retryable` is data on the class: the worker reads it to pick a retry tier
or the DLQ, and the process supervisor to restart a child (retryable) or stop
with the error (permanent: wrong settings or credentials).
"""

from __future__ import annotations


class JobpipeError(Exception):
    """Root of every jobpipe error."""

    retryable: bool = False


class ConfigError(JobpipeError):
    """A settings file, key or value is invalid; the message names which."""


class EnvelopeError(JobpipeError):
    """Bytes that do not decode to a valid job envelope.

    Attributes:
        reason: a short machine-readable code, e.g. ``invalid_json``.
        raw: the offending bytes (kept for the DLQ record).
    """

    def __init__(self, reason: str, detail: str, raw: bytes = b"") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.raw = raw


class JobRejected(JobpipeError):
    """A job refused before anything was written (bad input)."""


class UnknownQueue(JobRejected):
    """The queue is not declared in the topology."""


class JobTooLarge(JobRejected):
    """The encoded job is over the size cap."""


class NotSerializable(JobRejected):
    """The job arguments are not JSON-serialisable."""


class QueueFull(JobpipeError):
    """The queue is past its high-water mark (backpressure)."""

    retryable = True


class IntakeUnavailable(JobpipeError):
    """Redis did not accept the job before the deadline."""

    retryable = True


class NotReplicated(IntakeUnavailable):
    """Fewer replicas than ``redis.wait_replicas`` confirmed the jobs in time.

    The primary holds them (they may still run), but a fail-over now could lose
    them: the call is not counted as durable, and not re-sent (that would
    duplicate them).
    """

    retryable = False


class StackError(JobpipeError):
    """The local dev stack cannot start, or a tool it needs is missing."""


class UnsafeRedis(JobpipeError):
    """Redis is configured so that it may silently drop jobs."""


class RedisRefused(JobpipeError):
    """Redis answered a command with an error that will not go away by trying again
    (a script it rejects, a key of the wrong type); the message names the address."""


class ServiceUnavailable(JobpipeError):
    """Redis or Kafka did not answer; the message names the address and the failure."""

    retryable = True


class RedisUnavailable(ServiceUnavailable):
    """Redis could not be reached or did not answer in time."""


class KafkaUnavailable(ServiceUnavailable):
    """The Kafka broker did not answer in time."""


class HandlerError(JobpipeError):
    """Base of the errors a handler raises to steer its job."""


class Retry(HandlerError):
    """Retry the job after ``delay_s`` seconds (the nearest retry tier at or above it)."""

    retryable = True

    def __init__(self, delay_s: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class Reject(HandlerError):
    """Never retry this job: it goes straight to the dead-letter topic."""

    retryable = False
