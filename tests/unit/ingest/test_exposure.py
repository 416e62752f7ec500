"""The HTTP intake listens beyond loopback only with tokens, or with --insecure."""

from __future__ import annotations

import logging

import pytest

from ingest.http.exposure import check_exposure
from jobpipe.errors import ConfigError
from jobpipe.http_access import bearer_authorised, is_loopback
from jobpipe.settings import IngestSettings


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
    ("10.0.0.5", False), ("intake.example", False),
])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_no_tokens_beyond_loopback_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        check_exposure(IngestSettings(http_host="0.0.0.0"), insecure=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "'0.0.0.0'" in message
    assert "--insecure" in message


def test_tokens_or_loopback_need_no_flag(caplog: pytest.LogCaptureFixture) -> None:
    check_exposure(IngestSettings(http_host="0.0.0.0", tokens=("t",)), insecure=False)
    check_exposure(IngestSettings(http_host="127.0.0.1"), insecure=False)
    assert not caplog.records


def test_insecure_serves_without_tokens_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_exposure(IngestSettings(http_host="0.0.0.0"), insecure=True)
    assert "WITHOUT authentication" in caplog.text


def test_bearer_tokens_are_checked_and_none_means_open() -> None:
    tokens = [b"alpha", b"beta"]
    assert bearer_authorised("Bearer beta", tokens)
    assert bearer_authorised("bearer  alpha ", tokens)
    assert not bearer_authorised("Bearer gamma", tokens)
    assert not bearer_authorised("Basic alpha", tokens)
    assert not bearer_authorised("Bearer ", tokens)
    assert not bearer_authorised("", tokens)
    assert bearer_authorised("", [])
