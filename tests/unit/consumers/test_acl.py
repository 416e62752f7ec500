"""The worker's ACL rules follow its Lua scripts and the topology."""

from __future__ import annotations

from consumers import acl
from jobpipe.lua import lua_commands


def test_every_command_of_every_worker_script_is_granted() -> None:
    rules = acl.worker_acl_rules("jp", [])
    for script in acl._SCRIPTS:
        called = lua_commands(script)
        assert called
        assert {f"+{c}" for c in called} <= set(rules)
    assert rules[0] == "-@all"
    assert not {"+@all", "+flushall", "+keys", "+rpop", "+ltrim"} & set(rules)


def test_lua_commands_reads_every_call_of_a_script() -> None:
    script = "redis.call('HGET', k) if x then redis.pcall('sadd', k, v) end redis.call('TIME')"
    assert lua_commands(script) == {"hget", "sadd", "time"}

