"""DLQ tools against real Kafka, on records produced in the worker's DLQ format."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from consumers.dlq.record import DlqFilter, dlq_headers
from consumers.dlq.tools import list_records, purge_records, replay_records
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.cli import main
from jobpipe.envelope import Job, decode, encode
from jobpipe.settings import Settings
from tests.integration.consumers_ops.conftest import Reader, make_job
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]

HOUR_MS = 3_600_000


@pytest.fixture
def dlq_settings(make_settings, kafka_cleanup) -> Settings:
    settings = make_settings(queues={"default": {"partitions": 2, "retry_tiers_s": [1],
                                                 "priorities": [3, 1]}})
    apply_topics(settings)
    return settings


def _failed(task: str, **fields) -> Job:
    job = make_job(task=task, attempt=3, max_attempts=3, **fields)
    job.errors = [{"type": "ValueError", "message": f"boom {i}", "traceback": "tb",
                   "worker": "w1", "at": 1} for i in range(3)]
    return job


def _dead_letter(settings: Settings, records: list[tuple[bytes | None, bytes, str]],
                 timestamp_ms: int | None = None) -> None:
    """Produce DLQ records as the worker does: (key, value, reason)."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap,
                         "broker.address.family": "v4", "enable.idempotence": True})
    topic = names.dlq_topic(settings.namespace, "default")
    for i, (key, value, reason) in enumerate(records):
        headers = dlq_headers(reason, "ValueError: boom 2\nmore", names.main_topic(
            settings.namespace, "default"), 0, i)
        producer.produce(topic, value=value, key=key, headers=headers,
                         timestamp=timestamp_ms or 0)
    assert producer.flush(30) == 0


def _spec(settings: Settings):
    return settings.topology.get("default")


def test_ls_lists_every_record_with_reason_and_attempts(dlq_settings):
    jobs = [_failed("send", key=f"k{i}") for i in range(3)]
    _dead_letter(dlq_settings, [(j.key.encode(), encode(j), "exhausted") for j in jobs]
                 + [(None, b"\xffnot json", "invalid_json")])
    listed = list_records(dlq_settings, _spec(dlq_settings), DlqFilter())
    assert len(listed) == 4
    by_id = {item.record.job.id: item.record for item in listed if item.record.job}
    assert set(by_id) == {j.id for j in jobs}
    assert all(r.reason == "exhausted" and r.error == "ValueError: boom 2"
               for r in by_id.values())
    bad = [item.record for item in listed if item.record.job is None]
    assert bad[0].reason == "invalid_json"
    assert bad[0].value == b"\xffnot json"


def test_ls_filters_by_task_since_and_limit(dlq_settings):
    now_ms = time.time_ns() // 1_000_000
    old = _failed("send")
    _dead_letter(dlq_settings, [(None, encode(old), "exhausted")], now_ms - 2 * HOUR_MS)
    _dead_letter(dlq_settings, [(None, encode(_failed(t)), "rejected")
                                for t in ("send", "send", "bill")])
    spec = _spec(dlq_settings)
    assert len(list_records(dlq_settings, spec, DlqFilter(task="send"))) == 3
    recent = list_records(dlq_settings, spec, DlqFilter(since_ms=now_ms - HOUR_MS))
    assert len(recent) == 3
    assert old.id not in {i.record.job.id for i in recent}
    assert len(list_records(dlq_settings, spec, DlqFilter(limit=2))) == 2
    assert list_records(dlq_settings, spec, DlqFilter(since_ms=now_ms + HOUR_MS)) == []


def test_show_finds_a_record_by_job_id_or_ref_with_its_error_history(dlq_settings):
    jobs = [_failed("send") for _ in range(3)]
    _dead_letter(dlq_settings, [(None, encode(j), "exhausted") for j in jobs])
    spec = _spec(dlq_settings)
    [found] = list_records(dlq_settings, spec, DlqFilter(refs=(jobs[1].id,)))
    assert found.record.job == jobs[1]
    assert [e["message"] for e in found.record.job.errors] == ["boom 0", "boom 1", "boom 2"]
    [again] = list_records(dlq_settings, spec, DlqFilter(refs=(found.record.ref,)))
    assert again.record.job.id == jobs[1].id


def test_replay_keeps_the_id_resets_the_attempt_and_is_not_repeated(dlq_settings,
                                                                     read_topics: Reader):
    jobs = [_failed("send", key="k"), _failed("send", priority=1), _failed("bill")]
    _dead_letter(dlq_settings, [(j.key.encode() if j.key else None, encode(j), "exhausted")
                                for j in jobs])
    spec, ns = _spec(dlq_settings), dlq_settings.namespace
    first = replay_records(dlq_settings, spec, DlqFilter(task="send"))
    assert sorted(first.replayed) == sorted([jobs[0].id, jobs[1].id])
    assert replay_records(dlq_settings, spec, DlqFilter(task="send")).replayed == []
    rest = replay_records(dlq_settings, spec, DlqFilter())
    assert rest.replayed == [jobs[2].id]
    assert rest.already == 2
    assert replay_records(dlq_settings, spec, DlqFilter()).replayed == []

    got = read_topics(dlq_settings, [names.main_topic(ns, "default"),
                                     names.main_topic(ns, "default", 1)], 3)
    back = {decode(m.value()).id: (m, decode(m.value())) for _, m in got}
    assert set(back) == {j.id for j in jobs}
    for job in jobs:
        msg, again = back[job.id]
        assert again.attempt == 1
        assert again.meta["replays"] == "1"
        assert int(again.meta["replayed_at"]) > 0
        assert again.errors == job.errors
        assert again.task == job.task
        assert msg.topic() == names.main_topic(ns, "default", job.priority)
    assert back[jobs[0].id][0].key() == b"k"
    listed = list_records(dlq_settings, spec, DlqFilter())
    assert all(item.replayed for item in listed)


def test_purge_deletes_records_before_a_time_or_all(dlq_settings):
    now_ms = time.time_ns() // 1_000_000
    _dead_letter(dlq_settings, [(b"k", encode(_failed("send")), "exhausted")],
                 now_ms - 2 * HOUR_MS)
    _dead_letter(dlq_settings, [(b"k", encode(_failed("send")), "exhausted")])
    spec = _spec(dlq_settings)
    assert sum(purge_records(dlq_settings, spec, now_ms - HOUR_MS).values()) == 1
    assert len(list_records(dlq_settings, spec, DlqFilter())) == 1
    assert sum(purge_records(dlq_settings, spec).values()) == 1
    assert list_records(dlq_settings, spec, DlqFilter()) == []


def test_cli_lists_replays_and_reports_errors_in_one_line(dlq_settings, monkeypatch, capsys):
    monkeypatch.setenv("JOBPIPE_NAMESPACE", dlq_settings.namespace)
    monkeypatch.setenv("JOBPIPE_REDIS_URL", dlq_settings.redis.url)
    monkeypatch.setenv("JOBPIPE_KAFKA_BOOTSTRAP", dlq_settings.kafka.bootstrap)
    monkeypatch.delenv("JOBPIPE_CONFIG", raising=False)
    monkeypatch.chdir("/")
    job = _failed("send")
    _dead_letter(dlq_settings, [(None, encode(job), "exhausted")])
    main(["dlq", "ls", "default"])
    out = capsys.readouterr().out
    assert job.id in out
    assert "exhausted" in out
    assert "3/3" in out
    main(["dlq", "show", "default", job.id])
    assert "boom 1" in capsys.readouterr().out
    main(["dlq", "replay", "default", "--task", "send"])
    assert "replayed 1 job(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["dlq", "ls", "nope"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("jobpipe: error: unknown queue 'nope'")
    assert err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["dlq", "ls", "default", "--since", "yesterday-ish"])
    assert "--since" in capsys.readouterr().err
