"""Property tests of the envelope decoder: any bytes, no crash, a clear reason."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobpipe.envelope import Job, decode, encode, peek_id, peek_key
from jobpipe.errors import EnvelopeError
from tests.unit.proof.strategies import (
    BAD_ENVELOPES,
    deeply_nested,
    invalid_utf8,
    jobs,
    oversized,
    truncated,
    wrong_typed,
)

REASONS = {"invalid_json", "not_an_object", "missing_field", "wrong_type"}


def _decode_or_reason(raw: bytes) -> Job | str:
    """Decode, or return the reason; any other exception fails the test."""
    error: EnvelopeError | None = None
    try:
        return decode(raw)
    except EnvelopeError as exc:
        error = exc
    assert error.reason in REASONS, error.reason
    assert error.detail, "an EnvelopeError must say what is wrong"
    assert error.raw == raw, "the raw bytes travel with the error (for the DLQ record)"
    assert "\n" not in str(error), "one-line message"
    return error.reason


@given(jobs())
def test_encode_decode_round_trips_any_valid_job(job):
    assert decode(encode(job)) == job


@given(jobs())
def test_peek_key_reads_the_key_of_any_valid_job(job):
    expected = None if job.key is None else job.key.encode()
    assert peek_key(encode(job)) == expected


@given(jobs())
def test_peek_id_reads_the_id_of_any_valid_job(job):
    assert peek_id(encode(job)) == job.id


@given(BAD_ENVELOPES)
@settings(max_examples=500)
def test_decoder_never_crashes_on_bad_bytes(raw):
    result = _decode_or_reason(raw)
    if isinstance(result, Job):  # mutations can still be valid: they must re-encode
        assert decode(encode(result)) == result
    assert peek_key(raw) is None or isinstance(peek_key(raw), bytes)


@given(truncated())
def test_truncated_envelopes_are_invalid_json(raw):
    assert _decode_or_reason(raw) == "invalid_json"


@given(invalid_utf8())
def test_invalid_utf8_is_invalid_json(raw):
    assert _decode_or_reason(raw) == "invalid_json"


@given(deeply_nested())
@settings(max_examples=30)
def test_deeply_nested_input_is_refused_or_decoded_without_recursion_error(raw):
    result = _decode_or_reason(raw)
    if isinstance(result, Job):  # whatever decodes must survive the retry path
        assert decode(encode(result)) == result


@given(oversized())
@settings(max_examples=5, suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
def test_oversized_envelopes_decode_or_fail_cleanly(raw):
    result = _decode_or_reason(raw)
    assert isinstance(result, Job) or result == "invalid_json"


@given(wrong_typed())
def test_wrong_typed_or_missing_fields_get_a_field_reason(raw):
    result = _decode_or_reason(raw)
    assert isinstance(result, Job) or result in {"missing_field", "wrong_type",
                                                 "not_an_object"}


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "invalid_json"),
    (b"null", "not_an_object"),
    (b"[]", "not_an_object"),
    (b'"job"', "not_an_object"),
    (b"{}", "missing_field"),
    (b'{"id":1,"queue":"q","task":"t","attempt":1,"max_attempts":1,"enqueued_at":1}',
     "wrong_type"),
    (b'{"id":"i","queue":"q","task":"t","attempt":true,"max_attempts":1,"enqueued_at":1}',
     "wrong_type"),
    (b'{"id":"i","queue":"q","task":"t","attempt":0,"max_attempts":1,"enqueued_at":1}',
     "wrong_type"),
    (b'{"id":"i","queue":"q","task":"t","attempt":1,"max_attempts":1,"enqueued_at":1,'
     b'"attempt":99999999999999999999999}', "wrong_type"),  # too big for int: a float
    (b"\xef\xbb\xbf{}", "invalid_json"),
    # orjson reads 1024 levels but writes only 254: such a job could never be retried.
    (b'{"id":"i","queue":"q","task":"t","attempt":1,"max_attempts":1,"enqueued_at":1,'
     b'"args":' + b"[" * 300 + b"]" * 300 + b"}", "invalid_json"),
])
def test_known_bad_envelopes_get_their_reason(raw, reason):
    assert _decode_or_reason(raw) == reason


@given(st.binary(min_size=1, max_size=64))
def test_peek_key_never_raises(raw):
    key = peek_key(raw)
    assert key is None or isinstance(key, bytes)
