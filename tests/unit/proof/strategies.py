"""Hypothesis strategies: valid jobs, and every shape of bad envelope bytes."""

from __future__ import annotations

import orjson
from hypothesis import strategies as st

from jobpipe.envelope import Job, encode

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
COUNT = st.integers(min_value=1, max_value=2**31)
JSON_SCALARS = st.none() | st.booleans() | INT64 | st.text(max_size=20) | st.floats(
    allow_nan=False, allow_infinity=False)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)
SHORT_TEXT = st.text(min_size=1, max_size=30)


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    """Any job ``encode`` can carry."""
    return Job(
        id=draw(SHORT_TEXT),
        queue=draw(SHORT_TEXT),
        task=draw(SHORT_TEXT),
        args=draw(JSON_VALUES),
        key=draw(st.none() | st.text(max_size=30)),
        tenant=draw(st.none() | SHORT_TEXT),
        priority=draw(st.integers(min_value=0, max_value=9)),
        attempt=draw(COUNT),
        max_attempts=draw(COUNT),
        enqueued_at=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        run_at=draw(st.none() | st.integers(min_value=0, max_value=2**63 - 1)),
        idem=draw(st.none() | SHORT_TEXT),
        errors=draw(st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=20),
                                             max_size=3), max_size=3)),
        meta=draw(st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3)),
    )


FIELDS = ("key", "id", "queue", "task", "args", "tenant", "priority", "attempt",
          "max_attempts", "enqueued_at", "run_at", "idem", "errors", "meta")


@st.composite
def wrong_typed(draw: st.DrawFn) -> bytes:
    """A valid job with one field replaced by any JSON value, or removed."""
    obj = draw(jobs()).to_dict()
    name = draw(st.sampled_from(FIELDS))
    if draw(st.booleans()):
        obj.pop(name, None)
    else:
        obj[name] = draw(JSON_VALUES)
    return orjson.dumps(obj)


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    raw = encode(draw(jobs()))
    return raw[: draw(st.integers(min_value=0, max_value=len(raw) - 1))]


@st.composite
def invalid_utf8(draw: st.DrawFn) -> bytes:
    raw = bytearray(encode(draw(jobs())))
    at = draw(st.integers(min_value=0, max_value=len(raw)))
    bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                                b"\xc0\xaf", b"\x80"]))
    raw[at:at] = bad
    return bytes(raw)


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(min_value=100, max_value=20_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    args = opener * depth + b"1" + closer * depth
    prefix = (b'{"key":null,"id":"x","queue":"q","task":"t","attempt":1,"max_attempts":1,'
              b'"enqueued_at":1,"args":')
    return draw(st.sampled_from([args, prefix + args + b"}"]))


@st.composite
def oversized(draw: st.DrawFn) -> bytes:
    size = draw(st.integers(min_value=1_000_000, max_value=4_000_000))
    obj = draw(jobs()).to_dict()
    obj["args"] = "x" * size
    raw = orjson.dumps(obj)
    return raw if draw(st.booleans()) else raw[:-1]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid envelope with a few random bytes overwritten."""
    raw = bytearray(encode(draw(jobs())))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[at] = draw(st.integers(min_value=0, max_value=255))
    return bytes(raw)


BAD_ENVELOPES = (st.binary(max_size=200) | truncated() | invalid_utf8() | deeply_nested()
                 | wrong_typed() | mutated() | JSON_VALUES.map(orjson.dumps))
