"""docs/envelope.schema.json and jobpipe.envelope.decode agree on what a job is.

A job that follows the schema decodes; an envelope decode() rejects, the schema
rejects too. Where they differ on purpose or by necessity, the difference is
pinned here and written down in docs/envelope.md, so either side drifting fails.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ingest.intake import MAX_TASK_CHARS
from jobpipe import names
from jobpipe.envelope import Job, decode, encode, new_job_id, now_ns
from jobpipe.errors import EnvelopeError
from jobpipe.options import MAX_IDEMPOTENCY_KEY_CHARS
from tests.envelope_schema import doc_examples, problems, schema

NOW_NS = 1_764_633_600_000_000_000  # 2025-12-02, in the schema's unit
INT64_MAX = 2**63 - 1


_DROP = object()  # _job(field=_DROP) leaves the field out


def _job(**fields: Any) -> dict[str, Any]:
    """A schema-following envelope, ``key`` not first, as another language may write it."""
    base: dict[str, Any] = {"id": str(uuid.uuid4()), "queue": "email", "task": "send",
                            "args": {"to": "a@example.com"}, "attempt": 1, "max_attempts": 3,
                            "enqueued_at": NOW_NS, "key": None}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not _DROP}


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("definition", ["envelope", "redis_delayed_member",
                                        "redis_dead_record", "kafka_main_record",
                                        "kafka_retry_record", "kafka_dlq_record"])
def test_every_part_of_the_wire_has_an_example_in_the_doc(definition: str) -> None:
    assert definition in {name for name, _ in doc_examples()}


def test_every_example_in_the_doc_follows_the_schema_and_its_jobs_decode() -> None:
    examples = doc_examples()
    assert examples
    for name, example in examples:
        assert problems(example, name) == [], (name, example)
        if name in ("envelope", "redis_delayed_member"):
            decode(orjson.dumps(example))
        elif name in ("kafka_main_record", "kafka_retry_record"):
            decode(orjson.dumps(example["value"]))


# --- what follows the schema runs --------------------------------------------------------

VALID = {
    "minimal (no key, no args)": _job(key=_DROP, args=_DROP),
    "key last, args null": _job(key="order-42", args=None),
    "every field": _job(key="k", tenant="acme.eu:team@x", priority=2, attempt=3,
                        max_attempts=7, run_at=NOW_NS + 10**9, idem="pay-9",
                        errors=[{"type": "ValueError", "message": "boom", "traceback": "...",
                                 "worker": "host:1", "at": NOW_NS}],
                        meta={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-"
                                             "b7ad6b7169203331-01"}),
    "explicit priority 0": _job(priority=0),
    "largest integers": _job(attempt=INT64_MAX, max_attempts=INT64_MAX,
                             enqueued_at=INT64_MAX, run_at=INT64_MAX),
    "unicode everywhere": _job(key="ключ", task="отправить", args={"ü": ["日本", "\u2028"]}),
    "uppercase uuid": _job(id=str(uuid.uuid4()).upper()),
    "args nested 200 deep": _job(args=json.loads("[" * 200 + "]" * 200)),
    "longest names": _job(queue="q" * 100, task="t" * MAX_TASK_CHARS, tenant="t" * 200,
                          idem="i" * MAX_IDEMPOTENCY_KEY_CHARS),
}


@pytest.mark.parametrize("envelope", VALID.values(), ids=VALID.keys())
def test_a_schema_following_envelope_decodes_to_the_same_fields(envelope: dict[str, Any]) -> None:
    assert problems(envelope) == []
    raw = json.dumps(envelope, ensure_ascii=False).encode()  # not orjson: a foreign writer
    wire = decode(raw).to_dict()
    for field, value in envelope.items():
        assert wire.get(field, {"priority": 0, "key": None}.get(field)) == value, field


@settings(deadline=None)  # a shared 2-core box: no timing in tests
@given(st.builds(
    Job, id=st.uuids().map(str), queue=st.from_regex(r"[A-Za-z0-9_-]{1,30}", fullmatch=True),
    task=st.text(min_size=1, max_size=30),
    args=st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
                      | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
                      lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                      max_leaves=20),
    key=st.none() | st.text(),
    tenant=st.none() | st.from_regex(r"[A-Za-z0-9_.:@-]{1,30}", fullmatch=True),
    priority=st.integers(0, 9), attempt=st.integers(1, 50), max_attempts=st.integers(1, 50),
    enqueued_at=st.integers(10**18, 2**63 - 1),
    run_at=st.none() | st.integers(10**18, 2**63 - 1),
    idem=st.none() | st.text(min_size=1, max_size=30),
    meta=st.dictionaries(st.text(), st.text(), max_size=3)))
def test_every_envelope_encode_writes_follows_the_schema(job: Job) -> None:
    assert problems(json.loads(encode(job))) == []


def test_a_job_the_producer_would_write_follows_the_schema() -> None:
    job = Job(id=new_job_id(), queue="email", task="send", args=[1, "x"], enqueued_at=now_ns())
    assert problems(json.loads(encode(job))) == []


# --- what decode() rejects, the schema rejects -------------------------------------------

REJECTED: dict[str, tuple[Any, str]] = {
    "an array": ([1, 2], "not_an_object"),
    "a string": ("job", "not_an_object"),
    "null": (None, "not_an_object"),
    **{f"no {f}": (_job(**{f: _DROP}), "missing_field")
       for f in ("id", "queue", "task", "attempt", "max_attempts", "enqueued_at")},
    "id null": (_job(id=None), "missing_field"),
    "id a number": (_job(id=7), "wrong_type"),
    "queue a list": (_job(queue=["email"]), "wrong_type"),
    "task an object": (_job(task={"name": "send"}), "wrong_type"),
    "attempt a string": (_job(attempt="1"), "wrong_type"),
    "attempt a boolean": (_job(attempt=True), "wrong_type"),
    "attempt a fraction": (_job(attempt=1.5), "wrong_type"),
    "attempt 0": (_job(attempt=0), "wrong_type"),
    "max_attempts 0": (_job(max_attempts=0), "wrong_type"),
    "max_attempts false": (_job(max_attempts=False), "wrong_type"),
    "enqueued_at a date string": (_job(enqueued_at="2025-12-02T00:00:00Z"), "wrong_type"),
    "enqueued_at past 64 bits": (_job(enqueued_at=2**64), "wrong_type"),
    "key a number": (_job(key=42), "wrong_type"),
    "tenant a number": (_job(tenant=5), "wrong_type"),
    "priority a string": (_job(priority="1"), "wrong_type"),
    "priority a boolean": (_job(priority=True), "wrong_type"),
    "run_at a string": (_job(run_at="soon"), "wrong_type"),
    "idem a number": (_job(idem=9), "wrong_type"),
    "errors an object": (_job(errors={"type": "E"}), "wrong_type"),
    "meta a list": (_job(meta=["traceparent"]), "wrong_type"),
}


@pytest.mark.parametrize(("envelope", "reason"), REJECTED.values(), ids=REJECTED.keys())
def test_what_decode_rejects_the_schema_rejects(envelope: Any, reason: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        decode(json.dumps(envelope).encode())
    assert caught.value.reason == reason
    assert problems(envelope) != []


# --- where they differ: each case is a section of docs/envelope.md -----------------------


@pytest.mark.parametrize("raw", [
    b'{"id":"%s","queue":"q","task":"t","attempt":1.0,"max_attempts":3,"enqueued_at":%d}',
    b'{"id":"%s","queue":"q","task":"t","attempt":1,"max_attempts":3e0,"enqueued_at":%d}',
], ids=["1.0", "3e0"])
def test_integers_written_as_decimals_pass_the_schema_but_not_decode(raw: bytes) -> None:
    raw = raw % (str(uuid.uuid4()).encode(), NOW_NS)
    assert problems(json.loads(raw)) == []  # JSON Schema: 1.0 is an integer
    with pytest.raises(EnvelopeError, match="wrong type"):
        decode(raw)


def test_args_nested_past_254_levels_pass_the_schema_but_not_decode() -> None:
    envelope = _job(args=json.loads("[" * 300 + "]" * 300))
    assert problems(envelope) == []
    with pytest.raises(EnvelopeError, match="nested deeper than 254") as caught:
        decode(json.dumps(envelope).encode())
    assert caught.value.reason == "invalid_json"


def test_a_lone_surrogate_passes_the_schema_but_not_decode() -> None:
    raw = json.dumps(_job(args="\ud800")).encode()  # json writes it as the escape \ud800
    assert problems(json.loads(raw)) == []
    with pytest.raises(EnvelopeError) as caught:
        decode(raw)
    assert caught.value.reason == "invalid_json"


STRICTER = {
    "an unknown field (a typo)": _job(max_attempt=3),
    "enqueued_at in milliseconds": _job(enqueued_at=NOW_NS // 1_000_000),
    "run_at in seconds": _job(run_at=NOW_NS // 10**9),
    "an id that is not a UUID": _job(id="job-1"),
    "a negative priority": _job(priority=-1),
    "an optional field null": _job(tenant=None),
    "a tenant with a space": _job(tenant="acme corp"),
    "a queue with a dot": _job(queue="a.b"),
    "an empty task": _job(task=""),
    "an empty idem": _job(idem=""),
    "a meta value that is a number": _job(meta={"replays": 1}),
    "an error entry that is a string": _job(errors=["boom"]),
}


@pytest.mark.parametrize("envelope", STRICTER.values(), ids=STRICTER.keys())
def test_the_schema_is_stricter_than_decode_where_the_doc_says(envelope: dict[str, Any]) -> None:
    decode(json.dumps(envelope).encode())
    assert problems(envelope) != []


@pytest.mark.parametrize(("name", "valid"), [("email", True), ("a_b-9", True), ("", False),
                                             ("a.b", False), ("a:b", False), ("q" * 101, False)])
def test_the_queue_pattern_is_the_one_of_names(name: str, valid: bool) -> None:
    assert names.is_valid_queue_name(name) is valid
    assert (problems(_job(queue=name)) == []) is valid


@pytest.mark.parametrize(("tenant", "valid"), [("acme", True), ("a.b:c@d-e_f", True),
                                               ("", False), ("a b", False), ("a/b", False),
                                               ("t" * 201, False)])
def test_the_tenant_pattern_is_the_one_of_names(tenant: str, valid: bool) -> None:
    assert names.is_valid_tenant(tenant) is valid
    assert (problems(_job(tenant=tenant)) == []) is valid


@pytest.mark.parametrize(("args_depth", "refused"), [(253, False), (254, True)])
def test_the_depth_limit_holds_at_its_edge_in_compact_bytes(args_depth: int,
                                                            refused: bool) -> None:
    # Compact bytes: the fewest a job so deep can have (the check is skipped below them).
    envelope = _job(args=json.loads("[" * args_depth + "]" * args_depth))
    raw = json.dumps(envelope, separators=(",", ":")).encode()
    if refused:
        with pytest.raises(EnvelopeError, match="nested deeper than 254"):
            decode(raw)
    else:
        assert orjson.loads(encode(decode(raw))) == orjson.loads(raw)


def test_the_fewest_bytes_nested_too_deep_are_refused_as_too_deep() -> None:
    raw = b"[" * 255 + b"]" * 255  # 510 bytes: two per level, the least there can be
    with pytest.raises(EnvelopeError, match="nested deeper than 254"):
        decode(raw)
