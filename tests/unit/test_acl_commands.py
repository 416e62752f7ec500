"""``jobpipe acl bridge|worker``: one ACL SETUSER line for the chosen queues, no password."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from jobpipe.cli import cli


@pytest.mark.parametrize(("stage", "granted", "never"), [
    ("bridge", {"~shop:bridges", "~shop:{mail}:ready:0:0", "~shop:{mail}:inflight:*",
                "+client|unblock", "+config|get"}, (":done", ":job:")),
    ("worker", {"~shop:{mail}:done:*", "~shop:{mail}:done-ids:*", "~shop:{mail}:rate",
                "%R~shop:paused", "&shop:control", "+subscribe", "~shop:workers", "+zadd"},
     ("inflight", "bridges")),
])
def test_the_command_grants_the_chosen_queues_only(tmp_path, stage: str, granted: set[str],
                                                  never: tuple[str, ...]) -> None:
    config = tmp_path / "jobpipe.toml"
    config.write_text('namespace = "shop"\n[queues.mail]\nshards = 1\n[queues.sms]\n')
    result = CliRunner().invoke(cli, ["-c", str(config), "acl", stage, "--queues", "mail"])
    assert result.exit_code == 0, result.output
    rules = result.stdout.split()
    assert rules[:5] == ["ACL", "SETUSER", f"jobpipe-{stage}", "reset", "-@all"]
    assert granted <= set(rules)
    assert not any("{sms}" in r or any(n in r for n in never) for r in rules)
    assert ">" not in result.stdout
