"""The job envelope: one orjson object, encoded once by the producer.

The bridge forwards the bytes to Kafka untouched; only the worker decodes them.
``key`` is always the first field so the bridge can read the partition key from
the first bytes without decoding the job (see :func:`peek_key`).

Wire fields (optional ones are omitted when empty, to keep jobs small):

    key           ordering/partition key or null (always present, always first)
    id            UUIDv7 string: unique and time-ordered
    queue, task   where it goes and which handler runs it
    args          any JSON value
    tenant        fairness/pausing unit (optional)
    priority      priority level index, 0 = highest (optional, default 0)
    attempt       1 on first delivery, +1 per retry
    max_attempts  after this many failures the job is dead-lettered
    enqueued_at   ns since the epoch, wall clock, set by the producer
    run_at        ns since the epoch; a delayed job is not run before (optional)
    idem          explicit idempotency key (optional; the id is used otherwise)
    errors        failure history, appended on each retry (optional)
    meta          small string map: trace context, replay marks (optional)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from jobpipe.errors import EnvelopeError
from jobpipe.ids import new_job_ids

_NULL_KEY_PREFIX = b'{"key":null'
_KEY_PREFIX = b'{"key":"'
# The first two fields as encode() writes them: key (null, or text without
# escapes) and id (text without escapes), the id captured.
_HEAD = re.compile(rb'\{"key":(?:null|"[^"\\]*"),"id":"([^"\\]*)"')
# orjson reads JSON nested up to 1024 levels but writes only up to 254, so a job
# nested deeper would decode and then fail to re-encode on its way to a retry
# topic. decode() refuses it (the full check runs only past this many brackets).
_MAX_ENCODABLE_DEPTH = 254


def new_job_id() -> str:
    """Return a fresh UUIDv7 string: unique, and sortable by creation time
    (:func:`jobpipe.ids.new_job_ids` makes them in bulk)."""
    return new_job_ids(1)[0]


def now_ns() -> int:
    """Wall-clock nanoseconds since the epoch, the unit of every job timestamp."""
    return time.time_ns()


@dataclass(slots=True)
class Job:
    """One unit of work, as it travels through Redis and Kafka.

    Times are integers in nanoseconds since the Unix epoch (wall clock):
    ``enqueued_at``, ``run_at`` and each error's ``at``. The wire names carry no
    unit, to stay short and stable; a third-party producer must write ns there
    (docs/envelope.md).
    """

    id: str
    queue: str
    task: str
    args: Any = None
    key: str | None = None
    tenant: str | None = None
    priority: int = 0
    attempt: int = 1
    max_attempts: int = 5
    enqueued_at: int = 0  # ns since the epoch
    run_at: int | None = None  # ns since the epoch
    idem: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """The key that marks this job done: the explicit one, else the job id."""
        return self.idem or self.id

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a dict, ``key`` first, empty optional fields left out."""
        out: dict[str, Any] = {
            "key": self.key,
            "id": self.id,
            "queue": self.queue,
            "task": self.task,
            "args": self.args,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "enqueued_at": self.enqueued_at,
        }
        if self.tenant is not None:
            out["tenant"] = self.tenant
        if self.priority:
            out["priority"] = self.priority
        if self.run_at is not None:
            out["run_at"] = self.run_at
        if self.idem is not None:
            out["idem"] = self.idem
        if self.errors:
            out["errors"] = self.errors
        if self.meta:
            out["meta"] = self.meta
        return out


def encode(job: Job) -> bytes:
    """Encode a job to its wire bytes.

    Raises:
        TypeError: ``args`` (or ``meta``) holds something JSON cannot carry.
    """
    return orjson.dumps(job.to_dict())


_REQUIRED: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("id", str),
    ("queue", str),
    ("task", str),
    ("attempt", int),
    ("max_attempts", int),
    ("enqueued_at", int),
)
_OPTIONAL: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("key", str),
    ("tenant", str),
    ("priority", int),
    ("run_at", int),
    ("idem", str),
    ("errors", list),
    ("meta", dict),
)


def decode(raw: bytes) -> Job:
    """Decode wire bytes to a :class:`Job`.

    Raises:
        EnvelopeError: with ``reason`` one of ``invalid_json``, ``not_an_object``,
            ``missing_field``, ``wrong_type``; it carries the raw bytes.
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("invalid_json", str(exc), raw) from exc
    # A level opens and closes: so deep a job has at least twice as many bytes.
    # Most jobs are shorter, and skip the two counts (0.65 us of a 4 us decode).
    if (len(raw) > 2 * _MAX_ENCODABLE_DEPTH
            and raw.count(b"[") + raw.count(b"{") > _MAX_ENCODABLE_DEPTH):
        try:
            orjson.dumps(obj)
        except TypeError as exc:
            raise EnvelopeError("invalid_json", f"nested deeper than {_MAX_ENCODABLE_DEPTH} "
                                "levels", raw) from exc
    if type(obj) is not dict:
        got = type(obj).__name__
        raise EnvelopeError("not_an_object", f"expected a JSON object, got {got}", raw)
    # The worker decodes every job: one lookup per field and exact type tests
    # (orjson builds exact str/int/list/dict, and ``type(x) is int`` excludes
    # bool). Anything unusual goes through _check for the precise reason.
    get: Callable[[str], Any] = obj.get
    id_, queue, task = get("id"), get("queue"), get("task")
    attempt, max_attempts, enqueued_at = get("attempt"), get("max_attempts"), get("enqueued_at")
    key, tenant, priority, run_at = get("key"), get("tenant"), get("priority"), get("run_at")
    idem, errors, meta = get("idem"), get("errors"), get("meta")
    if not (type(id_) is str and type(queue) is str and type(task) is str
            and type(attempt) is int and type(max_attempts) is int
            and type(enqueued_at) is int and attempt >= 1 and max_attempts >= 1
            and (key is None or type(key) is str) and (tenant is None or type(tenant) is str)
            and (priority is None or type(priority) is int)
            and (run_at is None or type(run_at) is int) and (idem is None or type(idem) is str)
            and (errors is None or type(errors) is list)
            and (meta is None or type(meta) is dict)):
        _check(obj, raw)
    return Job(id_, queue, task, get("args"), key, tenant, priority or 0, attempt,
               max_attempts, enqueued_at, run_at, idem, errors or [], meta or {})


def _check(obj: dict[str, Any], raw: bytes) -> None:
    """Raise the :class:`EnvelopeError` that says what is wrong with ``obj``."""
    for name, kind in _REQUIRED:
        value = obj.get(name)
        if value is None:
            raise EnvelopeError("missing_field", f"field {name!r} is missing", raw)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise EnvelopeError("wrong_type", f"field {name!r} has the wrong type", raw)
    for name, kind in _OPTIONAL:
        value = obj.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise EnvelopeError("wrong_type", f"field {name!r} has the wrong type", raw)
    if obj["attempt"] < 1 or obj["max_attempts"] < 1:
        raise EnvelopeError("wrong_type", "attempt and max_attempts must be >= 1", raw)


def peek_id(raw: bytes) -> str | None:
    """A job's id without decoding the whole job (``None`` when it has none).

    :func:`encode` writes ``id`` right after ``key``: the fast path reads it
    there, with one regular-expression match (the bridge reads every tracked
    job's id: one C call costs a third of the slices and tests it replaced).
    Escapes, other layouts and other writers' bytes fall back to a full JSON
    parse (a nested object's ``"id"`` must never be taken for the job's).
    """
    head = _HEAD.match(raw)
    if head is not None:
        try:
            return head[1].decode()
        except UnicodeDecodeError:
            pass
    return _parsed_text(raw, "id")


def peek_key(raw: bytes) -> bytes | None:
    """Return a job's partition key as bytes without decoding the whole job.

    The fast path reads it from the first bytes (``key`` is always first); a key
    with escapes, or bytes not written by :func:`encode`, fall back to a full
    JSON parse. Bytes that are not a job at all give ``None``: the worker
    dead-letters them, the bridge only needs to move them.
    """
    if raw.startswith(_NULL_KEY_PREFIX):
        return None
    if raw.startswith(_KEY_PREFIX):
        end = raw.find(b'"', len(_KEY_PREFIX))
        if end > 0:
            candidate = raw[len(_KEY_PREFIX) : end]
            # find, not ``in``: a bytes ``in`` first tries its operand as an int and
            # clears the TypeError, twice the cost (CPython 3.11)
            if candidate.find(b"\\") < 0:
                return candidate
    key = _parsed_text(raw, "key")
    return None if key is None else key.encode()


def _parsed_text(raw: bytes, field: str) -> str | None:
    """A text field of the job, by a full parse (``None``: absent, or not a job)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = obj.get(field) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None
