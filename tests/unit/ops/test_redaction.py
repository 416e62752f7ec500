"""One redaction helper hides a Redis password wherever a URL is shown."""

from __future__ import annotations

import pytest

from jobpipe.redact import redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("redis://jp:hunter2@127.0.0.1:6379/0", "redis://jp:***@127.0.0.1:6379/0"),
    ("rediss://jp:hu%40nter2@redis.example:6380/1", "rediss://jp:***@redis.example:6380/1"),
    ("redis://jp@127.0.0.1:6379/0", "redis://jp@127.0.0.1:6379/0"),
    ("redis://127.0.0.1:6379/0?password=hunter2&ssl_cert_reqs=none",
     "redis://127.0.0.1:6379/0?password=***&ssl_cert_reqs=none"),
    ("unix://:hunter2@/run/redis.sock?db=0", "unix://:***@/run/redis.sock?db=0"),
])
def test_the_password_is_replaced_and_the_rest_kept(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_ingest_errors_use_the_same_helper() -> None:
    from ingest.failures import unavailable

    message = str(unavailable("redis://jp:hunter2@127.0.0.1:1/0", 1.0, OSError("refused")))
    assert "hunter2" not in message
    assert "redis://jp:***@127.0.0.1:1/0" in message


def test_a_refused_url_in_the_settings_is_named_without_its_password() -> None:
    from jobpipe.errors import ConfigError
    from jobpipe.settings import load_settings

    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"JOBPIPE_REDIS_URL": "http://jp:hunter2@127.0.0.1:1/0"})
    assert "hunter2" not in str(caught.value)
    assert "http://jp:***@127.0.0.1:1/0" in str(caught.value)
