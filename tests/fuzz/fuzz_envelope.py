"""Fuzz target: the envelope decoder (and the HTTP intake's request parsing).

Run (coverage-guided, needs the ``fuzz`` extra: ``pip install -e .[fuzz]``)::

    python tests/fuzz/fuzz_envelope.py -atheris_runs=100000

Any exception other than the typed, one-line errors below is a crash, and
atheris stops with the input that caused it. Without atheris installed the
seeds in :data:`SEEDS` still run through :func:`check_one` in the test suite
(``tests/fuzz/test_fuzz_seeds.py``).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

try:
    import atheris
except ImportError:  # the seeds still run under pytest without it
    atheris = None

if atheris is not None:
    with atheris.instrument_imports():
        from ingest.http.schema import FieldErrors, parse_body
        from jobpipe.envelope import Job, decode, encode, peek_key
        from jobpipe.errors import EnvelopeError, JobpipeError
else:
    from ingest.http.schema import FieldErrors, parse_body
    from jobpipe.envelope import Job, decode, encode, peek_key
    from jobpipe.errors import EnvelopeError, JobpipeError

REASONS = frozenset({"invalid_json", "not_an_object", "missing_field", "wrong_type"})

SEEDS: tuple[bytes, ...] = (
    b"",
    b"{}",
    b"null",
    b'{"key":null,"id":"0190","queue":"default","task":"t","args":{"n":1},"attempt":1,'
    b'"max_attempts":5,"enqueued_at":1}',
    b'{"key":"k\\u00e9","id":"0190","queue":"q","task":"t","args":[1,2.5,"x",null,true],'
    b'"attempt":2,"max_attempts":5,"enqueued_at":1,"tenant":"t1","priority":1,"run_at":5,'
    b'"idem":"i","errors":[{"type":"E","message":"m"}],"meta":{"a":"b"}}',
    b'{"key":"k","id":1}',
    b'{"jobs":[{"task":"t","args":1},{"task":7},"x"],"more":1}',
    b'{"task":"t","priority":true,"delay_s":"5","tenant":3}',
    b"\xff\xfe",
    b"[" * 2000,
)


def check_one(data: bytes) -> None:
    """Feed one input to every parser; raise AssertionError on a contract breach."""
    job: Job | None = None
    error: EnvelopeError | None = None
    try:
        job = decode(data)
    except EnvelopeError as exc:
        error = exc
    if error is not None:
        assert error.reason in REASONS, f"unknown reason {error.reason!r}"
        assert error.raw == data
        assert "\n" not in str(error)
    else:
        assert isinstance(job, Job)
        again = decode(encode(job))  # a decoded job must survive the retry path
        assert again == job, (again, job)
    key = peek_key(data)
    assert key is None or isinstance(key, bytes)
    check_intake(data)


def check_intake(data: bytes) -> None:
    """The HTTP intake's body parsing, as ``POST /v1/queues/{q}/jobs`` does it:
    orjson, then :func:`ingest.http.schema.parse_body`. It may refuse (400 with
    field errors) but never crash."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return  # the intake answers 400 "body is not valid JSON"
    with contextlib.suppress(FieldErrors, JobpipeError):
        for request in parse_body(body):
            assert isinstance(request.task, str)
            assert request.task


_VALUES = (b"null", b"true", b"0", b"-1", b"1.5", b'""', b'"x"', b"[]", b"{}", b"[1]",
           b'{"a":1}', b"18446744073709551616", b'"\\ud800"')
_FIELDS = (b"key", b"id", b"queue", b"task", b"args", b"tenant", b"priority", b"attempt",
           b"max_attempts", b"enqueued_at", b"run_at", b"idem", b"errors", b"meta")


def build_input(data: bytes) -> bytes:
    """Turn fuzzer bytes into an envelope-shaped input.

    orjson is C and not instrumented, so raw bytes rarely get past the JSON
    parser; the first byte picks a shape built around a valid envelope.
    """
    if atheris is None or len(data) < 2:
        return data
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 4)
    seed = SEEDS[3 + fdp.ConsumeIntInRange(0, 1)]
    if mode == 0:  # raw bytes
        return fdp.ConsumeBytes(fdp.remaining_bytes())
    if mode == 1:  # truncated
        return seed[: fdp.ConsumeIntInRange(0, len(seed))]
    if mode == 2:  # bytes spliced in
        at = fdp.ConsumeIntInRange(0, len(seed))
        return seed[:at] + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16)) + seed[at:]
    if mode == 3:  # one field set to a chosen or fuzzed value
        name = _FIELDS[fdp.ConsumeIntInRange(0, len(_FIELDS) - 1)]
        value = (_VALUES[fdp.ConsumeIntInRange(0, len(_VALUES) - 1)] if fdp.ConsumeBool()
                 else fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 32)))
        return seed[:-1] + b',"' + name + b'":' + value + b"}"
    depth = fdp.ConsumeIntInRange(0, 1100)  # nested args
    return seed[:-1] + b',"args":' + b"[" * depth + b"]" * depth + b"}"


def fuzz_one(data: bytes) -> None:
    """The atheris entry point."""
    check_one(build_input(data))


def main() -> None:
    """Run atheris over :func:`fuzz_one`."""
    if atheris is None:
        sys.exit("atheris is not installed: pip install -e '.[fuzz]'")
    atheris.Setup(sys.argv, fuzz_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
