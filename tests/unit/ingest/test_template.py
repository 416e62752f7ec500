"""Template-built envelopes are byte-identical to jobpipe.envelope.encode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.template import EnvelopeTemplate
from jobpipe.envelope import Job, decode, encode, peek_key
from jobpipe.errors import NotSerializable

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def _pair(args, **fields):
    job = Job(id="01a20868-3700-7382-b410-8cc2742304b4", queue="q", task="t\u00e9\"x",
              args=args, enqueued_at=123, **fields)
    template = EnvelopeTemplate(queue=job.queue, task=job.task, key=job.key, tenant=job.tenant,
                                priority=job.priority, max_attempts=job.max_attempts,
                                enqueued_at_ns=job.enqueued_at, run_at_ns=job.run_at,
                                idem=job.idem, meta=job.meta)
    return template.render(job.id, args), encode(job)


@given(json_values)
def test_template_bytes_equal_encode_for_any_args(args):
    mine, theirs = _pair(args)
    assert mine == theirs


@pytest.mark.parametrize("fields", [
    {},
    {"key": "user-1"},
    {"key": 'we"ird\\key'},
    {"tenant": "acme", "priority": 2, "run_at": 10**18, "idem": "i-1", "max_attempts": 9},
    {"meta": {"traceparent": "00-abc-def-01"}},
])
def test_template_bytes_equal_encode_for_every_option(fields):
    mine, theirs = _pair({"a": 1}, **fields)
    assert mine == theirs
    assert decode(mine).key == fields.get("key")
    assert peek_key(mine) == (fields["key"].encode() if "key" in fields else None)


def test_render_many_names_the_first_bad_args():
    template = EnvelopeTemplate(queue="q", task="t", key=None, tenant=None, priority=0,
                                max_attempts=5, enqueued_at_ns=1, run_at_ns=None, idem=None)
    with pytest.raises(NotSerializable, match=r"args\[1\]"):
        template.render_many(["a", "b"], [1, {1, 2}])
