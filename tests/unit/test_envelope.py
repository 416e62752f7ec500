"""The job envelope: round trip, key peeking, decode errors, time-ordered ids."""

from __future__ import annotations

import orjson
import pytest

from jobpipe.envelope import Job, decode, encode, new_job_id, now_ns, peek_key
from jobpipe.errors import EnvelopeError


def make_job(**fields: object) -> Job:
    base: dict[str, object] = {"id": new_job_id(), "queue": "email", "task": "send",
                               "args": {"to": "a@example.com"}, "enqueued_at": now_ns()}
    base.update(fields)
    return Job(**base)  # type: ignore[arg-type]


def test_a_full_job_survives_encode_and_decode() -> None:
    job = make_job(key="user-1", tenant="acme", priority=2, attempt=3, max_attempts=7,
                   run_at=now_ns() + 10**9, idem="order-9",
                   errors=[{"type": "ValueError", "message": "boom"}], meta={"trace": "x"})
    assert decode(encode(job)) == job


def test_a_minimal_job_survives_and_leaves_out_empty_fields() -> None:
    job = make_job()
    raw = encode(job)
    assert decode(raw) == job
    wire = orjson.loads(raw)
    assert set(wire) == {"key", "id", "queue", "task", "args", "attempt", "max_attempts",
                         "enqueued_at"}


def test_key_is_the_first_field_on_the_wire() -> None:
    assert encode(make_job(key="k")).startswith(b'{"key":"k"')
    assert encode(make_job()).startswith(b'{"key":null')


def test_idempotency_key_defaults_to_the_job_id() -> None:
    job = make_job()
    assert job.idempotency_key == job.id
    assert make_job(idem="explicit").idempotency_key == "explicit"


@pytest.mark.parametrize("key", ["user-1", "ünïcode", "with space", ""])
def test_peek_key_reads_plain_keys_without_decoding(key: str) -> None:
    assert peek_key(encode(make_job(key=key))) == key.encode()


def test_peek_key_is_none_for_a_job_without_key() -> None:
    assert peek_key(encode(make_job())) is None


@pytest.mark.parametrize("key", ['quo"te', "back\\slash", "new\nline", "tab\t"])
def test_peek_key_falls_back_to_a_full_parse_for_escaped_keys(key: str) -> None:
    assert peek_key(encode(make_job(key=key))) == key.encode()


def test_peek_key_reads_keys_of_bytes_not_written_by_encode() -> None:
    raw = orjson.dumps({"id": "x", "key": "later"})
    assert peek_key(raw) == b"later"


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'{"key": 5}', b""])
def test_peek_key_gives_none_for_bytes_that_are_no_job(raw: bytes) -> None:
    assert peek_key(raw) is None


def _wire(**changes: object) -> bytes:
    obj = make_job().to_dict()
    for name, value in changes.items():
        if value is _DROP:
            del obj[name]
        else:
            obj[name] = value
    return orjson.dumps(obj)


_DROP = object()


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{not json", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"[" * 300 + b"]" * 300, "invalid_json"),
    (b'"a string"', "not_an_object"),
    (b"[1, 2]", "not_an_object"),
    (b"null", "not_an_object"),
    (_wire(id=_DROP), "missing_field"),
    (_wire(task=_DROP), "missing_field"),
    (_wire(enqueued_at=None), "missing_field"),
    (_wire(queue=5), "wrong_type"),
    (_wire(attempt="1"), "wrong_type"),
    (_wire(attempt=True), "wrong_type"),
    (_wire(max_attempts=0), "wrong_type"),
    (_wire(key=7), "wrong_type"),
    (_wire(errors={"not": "a list"}), "wrong_type"),
    (_wire(meta=["x"]), "wrong_type"),
])
def test_decode_errors_carry_their_reason_and_the_raw_bytes(raw: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        decode(raw)
    assert caught.value.reason == reason
    assert caught.value.raw == raw
    assert str(caught.value).startswith(f"{reason}: ")
    assert "\n" not in str(caught.value)


def test_job_ids_are_unique_and_sort_in_creation_order() -> None:
    ids = [new_job_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_encode_refuses_arguments_json_cannot_carry() -> None:
    with pytest.raises(TypeError):
        encode(make_job(args={"when": object()}))
