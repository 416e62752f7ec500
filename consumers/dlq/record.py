"""The dead-letter record: its headers, how it is read back, filtered and replayed.

A DLQ record's value is the envelope with the final error appended (or the raw
bytes as received when they are not a job); its key is the original key; its
headers say why (``jp-reason``, ``jp-error``) and where it came from
(``jp-source-topic``, ``jp-source-partition``, ``jp-source-offset``).

Pure: no Kafka, no Redis. :mod:`consumers.dlq.tools` does the reading and writing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from jobpipe import jobstatus
from jobpipe.envelope import Job, decode, encode
from jobpipe.errors import ConfigError, EnvelopeError

REASON = "jp-reason"
ERROR = "jp-error"
SOURCE_TOPIC = "jp-source-topic"
SOURCE_PARTITION = "jp-source-partition"
SOURCE_OFFSET = "jp-source-offset"

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def dlq_headers(reason: str, error: str, topic: str, partition: int,
                offset: int) -> list[tuple[str, bytes]]:
    """The headers of a DLQ record; ``error`` is cut to its first line."""
    line = error.splitlines()[0] if error else ""
    return [(REASON, reason.encode()), (ERROR, line[:500].encode()),
            (SOURCE_TOPIC, topic.encode()), (SOURCE_PARTITION, str(partition).encode()),
            (SOURCE_OFFSET, str(offset).encode())]


@dataclass(frozen=True, slots=True)
class DlqRecord:
    """One record read back from a DLQ topic.

    Attributes:
        partition, offset: where it sits in the DLQ topic.
        timestamp_ms: when it was dead-lettered.
        key: the original message key.
        value: the record value (envelope or raw bytes).
        headers: ``jp-*`` headers as text.
        job: the decoded job, or ``None`` when the value is not a job.
    """

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    job: Job | None

    @property
    def ref(self) -> str:
        """``PARTITION:OFFSET``, how the CLI names a record."""
        return f"{self.partition}:{self.offset}"

    @property
    def reason(self) -> str:
        """The reason code (``exhausted``, ``rejected``, ``invalid_json`` ...)."""
        return self.headers.get(REASON, "?")

    @property
    def error(self) -> str:
        """The one-line error message."""
        return self.headers.get(ERROR, "")


def make_record(partition: int, offset: int, timestamp_ms: int, key: bytes | None,
                value: bytes, headers: Any) -> DlqRecord:
    """Build a :class:`DlqRecord` from a consumed message's parts (``headers`` as
    confluent gives them: a list of (name, value) pairs, or ``None``)."""
    text = {k: v.decode(errors="replace") if isinstance(v, bytes) else str(v or "")
            for k, v in headers or []}
    try:
        job: Job | None = decode(value)
    except EnvelopeError:
        job = None
    return DlqRecord(partition, offset, timestamp_ms, key, value, text, job)


def parse_since_ms(text: str, now_ms: int) -> int:
    """Epoch milliseconds from ``--since``: a duration back from now (``30s``,
    ``15m``, ``2h``, ``1d``) or an ISO 8601 time (UTC when no offset is given).

    Raises:
        ConfigError: neither form.
    """
    match = _DURATION.match(text.strip())
    if match:
        return now_ms - round(float(match.group(1)) * _UNIT_MS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since: {text!r} is neither a duration (30s, 15m, 2h, 1d) "
                          "nor an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Which records a DLQ command acts on.

    Attributes:
        task: only jobs of this task (undecodable records never match).
        since_ms: only records dead-lettered at or after this time.
        limit: at most this many records.
        refs: only these records, each a job id or ``PARTITION:OFFSET``.
    """

    task: str | None = None
    since_ms: int | None = None
    limit: int | None = None
    refs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit: must be >= 1")

    def matches(self, record: DlqRecord) -> bool:
        """Whether ``record`` passes every filter but the limit."""
        if self.since_ms is not None and record.timestamp_ms < self.since_ms:
            return False
        if self.task is not None and (record.job is None or record.job.task != self.task):
            return False
        if self.refs:
            names = {record.ref, str(record.offset)}
            if record.job is not None:
                names.add(record.job.id)
            return any(ref in names for ref in self.refs)
        return True


def format_time(timestamp_ms: int) -> str:
    """A record time as ISO 8601 UTC to the second."""
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary_line(record: DlqRecord) -> str:
    """One ``dlq ls`` line: ref, time, job id, task, reason, attempts."""
    job = record.job
    job_id = job.id if job else "-"
    task = job.task if job else "-"
    attempts = f"{job.attempt}/{job.max_attempts}" if job else "-"
    return (f"{record.ref:>10}  {format_time(record.timestamp_ms)}  {job_id:36}  "
            f"{task:20}  {record.reason:14}  {attempts}")


def detail(record: DlqRecord) -> dict[str, Any]:
    """Everything ``dlq show`` prints: the record, the full job and error history."""
    out: dict[str, Any] = {"ref": record.ref, "time": format_time(record.timestamp_ms),
                           "reason": record.reason, "error": record.error,
                           "source": {"topic": record.headers.get(SOURCE_TOPIC),
                                      "partition": record.headers.get(SOURCE_PARTITION),
                                      "offset": record.headers.get(SOURCE_OFFSET)},
                           "key": record.key.decode(errors="replace") if record.key else None}
    if record.job is not None:
        out["job"] = record.job.to_dict()
    else:
        out["raw"] = record.value.decode(errors="replace")[:4000]
    return out


def replayed(job: Job, now_ns: int) -> bytes:
    """A DLQ'd job made ready to run again: same id, attempt 1, replay recorded in
    ``meta`` (``replayed_at`` in ns, ``replays`` counting up); errors are kept."""
    meta = dict(job.meta)
    meta["replayed_at"] = str(now_ns)
    meta[jobstatus.REPLAYS_META] = str(replay_generation(job))
    return encode(replace(job, attempt=1, meta=meta))


def replay_generation(job: Job) -> int:
    """The status generation of ``job``'s replay (its replay count once replayed):
    the replay's state records outrank the earlier run's (:mod:`jobpipe.jobstatus`)."""
    return jobstatus.generation(job.meta) + 1
