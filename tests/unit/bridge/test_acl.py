"""The bridge's ACL rules follow its Lua scripts and the topology."""

from __future__ import annotations

import re

from click.testing import CliRunner

from bridge import acl
from jobpipe.cli import cli


def test_every_command_of_every_bridge_script_is_granted() -> None:
    rules = acl.bridge_acl_rules("jp", [])
    for script in acl._SCRIPTS:
        # redis.call('X' ...) in any case: what Redis checks against the ACL
        called = {c.lower() for c in re.findall(r"call\('(\w+)'", script)}
        assert called
        assert {f"+{c}" for c in called} <= set(rules)
    assert rules[0] == "-@all"
    assert not {"+@all", "+flushall", "+keys", "+hset", "+set"} & set(rules)


def test_the_cli_prints_the_keys_of_the_chosen_queues_only(tmp_path) -> None:
    config = tmp_path / "jobpipe.toml"
    config.write_text('namespace = "shop"\n[queues.mail]\nshards = 1\n[queues.sms]\n')
    result = CliRunner().invoke(cli, ["-c", str(config), "acl", "bridge", "--queues", "mail"])
    assert result.exit_code == 0, result.output
    rules = result.stdout.split()
    assert rules[:5] == ["ACL", "SETUSER", "jobpipe-bridge", "reset", "-@all"]
    assert {"~shop:bridges", "~shop:{mail}:ready:0:0", "~shop:{mail}:inflight:*",
            "+client|unblock", "+config|get"} <= set(rules)
    assert not any("{sms}" in r or ":done:" in r or ":job:" in r for r in rules)
    assert ">" not in result.stdout
