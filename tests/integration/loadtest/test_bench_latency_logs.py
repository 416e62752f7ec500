"""`jobpipe bench latency --log-dir`: a short round that keeps its stages' logs."""

import pytest

from jobpipe.cli import main

pytestmark = pytest.mark.integration


def test_a_round_keeps_the_bridges_and_workers_log_where_asked(services, redis_url, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.setenv("JOBPIPE_REDIS_URL", redis_url)
    monkeypatch.setenv("JOBPIPE_KAFKA_BOOTSTRAP", services.kafka_bootstrap)
    monkeypatch.delenv("JOBPIPE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    logs = tmp_path / "logs"
    main(["bench", "latency", "--systems", "jobpipe", "--runs", "1", "--rate", "50",
          "--duration", "1", "--warmup", "0", "--quiet", "0", "--idle-cpu", "0",
          "--log-dir", str(logs)])
    assert "round 1  jobpipe" in capsys.readouterr().out
    (log,) = logs.glob("*.log")
    text = log.read_text()
    assert "bridge.service" in text  # started and stopped, with its pid
    assert "consumers.fetcher" in text  # partitions assigned: a rebalance would show
