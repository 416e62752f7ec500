"""The producer's ACL rules follow the push script and the topology."""

from __future__ import annotations

import re

from click.testing import CliRunner

from ingest.acl import producer_acl_rules, producer_key_patterns
from ingest.scripts import PUSH_LUA, PUSH_LUA_COMMANDS
from jobpipe.cli import cli
from jobpipe.topology import QueueSpec


def test_every_command_of_the_push_script_is_granted() -> None:
    # Commands appear quoted in upper case, directly in redis.call('X', ...) or
    # through a helper (push('LPUSH', ...)); options (NX, EX) and the plan's
    # op codes (L, T, Z, U) are shorter than three letters.
    called = {c.lower() for c in re.findall(r"'([A-Z]{3,})'", PUSH_LUA)}
    assert called == set(PUSH_LUA_COMMANDS)
    assert {"lpush", "zadd", "set", "sadd"} <= called
    rules = producer_acl_rules("jp", [QueueSpec("q")])
    assert rules[0] == "-@all"
    assert {f"+{c}" for c in called} <= set(rules)


def test_keys_are_exactly_those_of_the_granted_queues() -> None:
    spec = QueueSpec("q", shards=2, priorities=(2, 1))
    assert producer_key_patterns("jp", spec) == [
        "jp:{q}:ready:0:0", "jp:{q}:ready:0:1", "jp:{q}:ready:1:0", "jp:{q}:ready:1:1",
        "jp:{q}:delayed", "jp:{q}:unique:*", "jp:{q}:wake"]
    fair = producer_key_patterns("jp", QueueSpec("f", shards=1, fair=True))
    assert fair[-2:] == ["jp:{f}:tenants", "jp:{f}:t:*"]
    rules = producer_acl_rules("jp", [spec])
    assert not any(r.startswith("~") and "{f}" in r for r in rules)
    assert not any(r in ("+@all", "+flushall", "+keys", "+config|get") for r in rules)


def test_the_cli_prints_a_setuser_command_without_a_password(tmp_path) -> None:
    config = tmp_path / "jobpipe.toml"
    config.write_text('namespace = "shop"\n[queues.mail]\nshards = 1\n[queues.sms]\n')
    result = CliRunner().invoke(cli, ["-c", str(config), "acl", "producer", "--queues", "mail",
                                      "--user", "mailer"])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert line.startswith("ACL SETUSER mailer reset -@all ")
    assert "~shop:{mail}:ready:0:0" in line
    assert "{sms}" not in line
    assert ">" not in line


def test_the_scheduler_user_gets_its_clock_its_progress_key_and_its_queues_only(
        tmp_path) -> None:
    config = tmp_path / "jobpipe.toml"
    config.write_text('namespace = "shop"\n[queues.mail]\nshards = 1\n[queues.sms]\n'
                      '[schedules.digest]\nqueue = "mail"\ntask = "t"\ninterval_s = 60\n')
    result = CliRunner().invoke(cli, ["-c", str(config), "acl", "scheduler"])
    assert result.exit_code == 0, result.output
    rules = result.stdout.split()
    assert rules[:5] == ["ACL", "SETUSER", "jobpipe-scheduler", "reset", "-@all"]
    assert {"+time", "+zmscore", "+zadd", "~shop:schedules:last", "~shop:{mail}:ready:0:0"
            } <= set(rules)
    assert not any("{sms}" in r for r in rules)
