"""HTTP bodies: one job or a batch, every bad field named."""

from __future__ import annotations

import pytest

from ingest.http.schema import FieldErrors, parse_body


def test_one_job_and_a_batch_both_parse():
    assert [r.task for r in parse_body({"task": "a", "args": [1]})] == ["a"]
    batch = parse_body({"jobs": [{"task": "a"}, {"task": "b", "key": "k", "priority": 1}]})
    assert [(r.task, r.options.key) for r in batch] == [("a", None), ("b", "k")]


def test_every_bad_field_is_reported_with_its_path():
    with pytest.raises(FieldErrors) as info:
        parse_body({"jobs": [{"task": ""}, {"task": "b", "priority": "high", "color": 1},
                             "nope"]})
    fields = sorted(e["field"] for e in info.value.errors)
    assert fields == ["jobs[0].task", "jobs[1].color", "jobs[1].priority", "jobs[2]"]


@pytest.mark.parametrize("body", [[], "x", {"jobs": []}, {"jobs": [{"task": "a"}], "x": 1}])
def test_malformed_envelopes_are_field_errors(body):
    with pytest.raises(FieldErrors):
        parse_body(body)
