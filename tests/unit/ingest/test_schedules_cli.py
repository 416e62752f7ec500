"""``jobpipe schedules`` lists next fire times; a bad schedule is one line, no traceback."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobpipe.cli import cli, main

QUEUE = "[queues.default]\n"


def write(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "jobpipe.toml"
    config.write_text(QUEUE + text)
    return config


def test_schedules_lists_next_fire_times_in_each_time_zone(tmp_path: Path) -> None:
    config = write(tmp_path, '[schedules.tick]\nqueue = "default"\ntask = "t"\ninterval_s = 60\n'
                             '[schedules.nightly]\nqueue = "default"\ntask = "r"\n'
                             'cron = "30 2 * * *"\ntimezone = "Europe/Paris"\n')
    result = CliRunner().invoke(cli, ["-c", str(config), "schedules", "-n", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("tick: every 60 s UTC -> default t (misfire skip")
    assert lines[3].startswith("nightly: cron '30 2 * * *' Europe/Paris -> default r")
    tick = [datetime.fromisoformat(line.strip()) for line in lines[1:3]]
    assert tick[1] - tick[0] == timedelta(seconds=60)
    assert all(t.second == 0 and t.utcoffset() is not None for t in tick)
    nightly = [datetime.fromisoformat(line.strip()) for line in lines[4:6]]
    assert all((t.hour, t.minute) in ((2, 30), (3, 0)) for t in nightly)
    assert all(t.utcoffset() in (timedelta(hours=1), timedelta(hours=2)) for t in nightly)


@pytest.mark.parametrize(("schedule", "message"), [
    ('cron = "0 25 * * *"', "schedules.bad.cron: '0 25 * * *' is not a cron expression"),
    ('interval_s = 5\ntenant = "no spaces"', "schedules.bad: queue 'default': tenant"),
])
def test_a_bad_schedule_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          schedule: str, message: str) -> None:
    config = write(tmp_path, f'[schedules.bad]\nqueue = "default"\ntask = "t"\n{schedule}\n')
    with pytest.raises(SystemExit) as stopped:
        main(["-c", str(config), "schedules"])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("jobpipe: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_the_scheduler_refuses_to_start_without_schedules(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["-c", str(write(tmp_path, "")), "scheduler"])
    assert "schedules: none declared" in capsys.readouterr().err
