"""The spool keeps calls in order and survives a torn last line."""

from __future__ import annotations

from ingest.plan import PushPlan
from ingest.spool import Spool


def _plan(n: int) -> PushPlan:
    return PushPlan("q", ["k1"], [0, 0, "", 0, "L", 1, 1, b'{"key":null,"id":"%d"}' % n],
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
