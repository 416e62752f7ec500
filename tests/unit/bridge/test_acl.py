"""The bridge's ACL rules follow its Lua scripts and the topology."""

from __future__ import annotations

import re

from bridge import acl


def test_every_command_of_every_bridge_script_is_granted() -> None:
    rules = acl.bridge_acl_rules("jp", [])
    for script in acl._SCRIPTS:
        # redis.call('X' ...) in any case: what Redis checks against the ACL
        called = {c.lower() for c in re.findall(r"call\('(\w+)'", script)}
        assert called
        assert {f"+{c}" for c in called} <= set(rules)
    assert rules[0] == "-@all"
    assert not {"+@all", "+flushall", "+keys", "+hset", "+set"} & set(rules)

