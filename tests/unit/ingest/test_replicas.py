"""What a confirmed push (push script + WAIT on one connection) sends, and what its replies mean."""

from __future__ import annotations

import pytest
import redis.exceptions

from ingest.replicas import Redirected, Target, commands, judge
from ingest.scripts import PUSH_LUA, PushReply
from jobpipe.errors import ConfigError, IntakeUnavailable, NotReplicated
from jobpipe.settings import RedisSettings, load_settings

SETTINGS = RedisSettings(wait_replicas=1, wait_timeout_s=0.25)
KEY = "jp:{q}:ready:0:0"


def test_the_push_goes_by_body_then_wait_and_behind_asking_after_an_ask() -> None:
    plain = commands([KEY], ["a"], SETTINGS, Target(KEY))
    assert plain == [("EVAL", PUSH_LUA, 1, KEY, "a"), ("WAIT", 1, 250)]
    ask = Redirected("127.0.0.1", 7001, ask=True)
    assert commands([KEY], ["a"], SETTINGS, Target(KEY, ask))[0] == ("ASKING",)


def test_a_push_confirmed_on_enough_replicas_is_its_reply() -> None:
    assert judge([[0, 3], 1], SETTINGS, KEY) == PushReply(False, 3, [])
    assert judge([b"OK", [0, 3], 2], SETTINGS, KEY) == PushReply(False, 3, [])


def test_too_few_replicas_is_one_line_naming_redis_the_list_and_the_count() -> None:
    with pytest.raises(NotReplicated) as caught:
        judge([[0, 0], 0], SETTINGS, KEY)
    message = str(caught.value)
    assert isinstance(caught.value, IntakeUnavailable)
    assert "\n" not in message
    assert "redis://127.0.0.1:16379/0" in message
    assert KEY in message
    assert "0 of 1 replicas within 0.25s" in message


def test_a_full_queue_wrote_nothing_so_the_wait_count_does_not_matter() -> None:
    assert judge([[1, 10], 0], SETTINGS, KEY) == PushReply(True, 10, [])


def test_moved_and_ask_are_redirections_tryagain_is_raised() -> None:
    moved = redis.exceptions.MovedError("3999 127.0.0.1:7002")
    ask = redis.exceptions.AskError("3999 127.0.0.1:7003")
    assert judge([moved, 0], SETTINGS, KEY) == Redirected("127.0.0.1", 7002, ask=False)
    assert judge([ask, 0], SETTINGS, KEY) == Redirected("127.0.0.1", 7003, ask=True)
    with pytest.raises(redis.exceptions.TryAgainError):
        judge([redis.exceptions.TryAgainError("busy"), 0], SETTINGS, KEY)


@pytest.mark.parametrize(("env", "problem"), [
    ({"JOBPIPE_REDIS_WAIT_REPLICAS": "-1"}, "redis.wait_replicas: must be >= 0"),
    ({"JOBPIPE_REDIS_WAIT_TIMEOUT_S": "0"}, "redis.wait_timeout_s: must be > 0"),
    ({"JOBPIPE_REDIS_WAIT_REPLICAS": "1", "JOBPIPE_REDIS_WAIT_TIMEOUT_S": "5"},
     "under redis.socket_timeout_s (5)"),
])
def test_bad_wait_settings_are_one_line_naming_the_key(env: dict[str, str],
                                                       problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ=env)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_wait_timeout_only_matters_when_waiting() -> None:
    assert load_settings(None, environ={"JOBPIPE_REDIS_SOCKET_TIMEOUT_S": "0.5"}).redis \
        .wait_timeout_s == 1.0
