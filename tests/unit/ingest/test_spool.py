"""The spool keeps calls in order and survives a torn last line."""

from __future__ import annotations

import orjson

from ingest.plan import PushPlan
from ingest.spool import Spool


def _plan(n: int) -> PushPlan:
    return PushPlan("q", ["k1"], [0, 0, "", 0, 0, "L", 1, 1, b'{"key":null,"id":"%d"}' % n],
                    [str(n)])


def test_appended_calls_come_back_in_order(tmp_path):
    spool = Spool(tmp_path / "d" / "spool.jsonl")
    assert not spool.pending
    for n in range(3):
        spool.append(_plan(n))
    calls = spool.read()
    assert [c.args[-1] for c in calls] == [f'{{"key":null,"id":"{n}"}}' for n in range(3)]
    assert Spool(spool.path).pending  # a new producer sees what an old one left


def test_keep_rewrites_the_rest_and_empty_removes_the_file(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    for n in range(3):
        spool.append(_plan(n))
    spool.keep(spool.read()[2:])
    assert [c.jobs for c in spool.read()] == [1]
    spool.keep([])
    assert not spool.pending
    assert not spool.path.exists()


def test_a_torn_last_line_is_skipped(tmp_path, caplog):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append(_plan(1))
    with spool.path.open("ab") as fh:
        fh.write(b'{"queue":"q","ke')
    assert len(spool.read()) == 1
    assert "unreadable line 2" in caplog.text


def test_a_spooled_call_is_sent_again_as_one_that_may_have_run(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append(_plan(1))
    assert spool.read()[0].args[:6] == [0, 0, "", 0, 1, "L"]


def test_a_call_spooled_by_an_earlier_jobpipe_is_read_in_the_scripts_layout(tmp_path):
    # Before the records flag (a 4-argument header) and the state hashes: string
    # records started by "S <key prefix> <ttl> <record> <n> <id>...", before "W".
    job = '{"key":null,"id":"a"}'
    tracked = [0, 0, "", 0, "L", 1, 1, job, "S", "ns:{q}:job:", 60, "1||queued|1|5|", 1, "a",
               "W", 2]
    plain = [0, 0, "", 0, "L", 1, 1, job, "W", 2]
    path = tmp_path / "spool.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"queue": "q", "keys": ["k1", "w"], "args": a,
                                            "jobs": 1}) + b"\n" for a in (tracked, plain)))
    spool = Spool(path)
    assert [c.args for c in spool.read()] == [[0, 0, "", 0, 1, "L", 1, 1, job, "W", 2]] * 2
    spool.keep(spool.read())  # rewritten in the current format, read as it is
    assert [c.args for c in spool.read()] == [[0, 0, "", 0, 1, "L", 1, 1, job, "W", 2]] * 2
