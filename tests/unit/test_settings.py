"""Settings: precedence defaults < file < environment < flags, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobpipe.errors import ConfigError
from jobpipe.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobpipe.toml"
    path.write_text(text)
    return path


def test_defaults_point_at_the_dev_stack() -> None:
    settings = load_settings(None, environ={})
    assert settings == Settings()
    assert settings.redis.url == "redis://127.0.0.1:16379/0"
    assert settings.kafka.bootstrap == "127.0.0.1:19092"
    assert list(settings.topology.queues) == ["default"]


def test_file_beats_defaults_env_beats_file_flags_beat_env(tmp_path: Path) -> None:
    path = write(tmp_path, '[bridge]\nbatch_size = 10\nlinger_ms = 7\nidle_wait_s = 1\n'
                           '[worker]\nconcurrency = 3\n')
    env = {"JOBPIPE_BRIDGE_BATCH_SIZE": "20", "JOBPIPE_BRIDGE_LINGER_MS": "8"}
    settings = load_settings(path, environ=env, overrides={"bridge": {"batch_size": 30}})
    assert settings.bridge.batch_size == 30  # flag
    assert settings.bridge.linger_ms == 8  # environment
    assert settings.bridge.idle_wait_s == 1.0  # file (an int accepted for a float)
    assert settings.worker.concurrency == 3  # file
    assert settings.bridge.heartbeat_interval_s == 1.0  # default


def test_environment_shortcuts_and_namespace() -> None:
    env = {"JOBPIPE_REDIS_URL": "redis://h:1/2", "JOBPIPE_KAFKA_BOOTSTRAP": "k:9",
           "JOBPIPE_NAMESPACE": "other", "JOBPIPE_INGEST_ON_FULL": "block"}
    settings = load_settings(None, environ=env)
    assert (settings.redis.url, settings.kafka.bootstrap) == ("redis://h:1/2", "k:9")
    assert settings.namespace == "other"
    assert settings.ingest.on_full == "block"


def test_config_file_is_found_through_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'namespace = "fromfile"\n')
    assert load_settings(None, environ={"JOBPIPE_CONFIG": str(path)}).namespace == "fromfile"


def test_queues_are_read_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[queues.email]\npartitions = 3\nretry_tiers_s = [1, 2]\n"
                           "[queues.bulk]\npriorities = [4, 1]\n")
    topology = load_settings(path, environ={}).topology
    assert topology.get("email").partitions == 3
    assert topology.get("email").retry_tiers_s == (1.0, 2.0)
    assert topology.get("bulk").priorities == (4, 1)


def test_the_example_file_loads() -> None:
    settings = load_settings(ROOT / "jobpipe.toml.example", environ={})
    assert set(settings.topology.queues) == {"email", "reports", "imports"}
    assert settings.topology.get("imports").fair


def one_line_error(path: Path | None, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_misspelt_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[bridge]\nbatch_sise = 10\n")
    message = one_line_error(path, environ={})
    assert str(path) in message
    assert "'batch_sise'" in message
    assert "unknown key" in message


def test_a_misspelt_queue_key_names_the_queue_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[queues.email]\npartitons = 3\n")
    message = one_line_error(path, environ={})
    assert str(path) in message
    assert "queues.email" in message
    assert "'partitons'" in message


def test_an_unknown_section_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[bridges]\nbatch_size = 1\n")
    message = one_line_error(path, environ={})
    assert str(path) in message
    assert "unknown section 'bridges'" in message


@pytest.mark.parametrize(("text", "needle"), [
    ('[bridge]\nbatch_size = "ten"\n', "bridge.batch_size: expected int, got str"),
    ("[bridge]\nbatch_size = true\n", "bridge.batch_size: expected int, got bool"),
    ("[worker]\nconcurrency = 1.5\n", "worker.concurrency: expected int, got float"),
    ('[ingest]\ntokens = "abc"\n', "ingest.tokens: expected a list"),
    ("[kafka]\nconfig = 3\n", "kafka.config: expected a table"),
    ("[redis]\nurl = 5\n", "redis.url"),
    ("namespace = 5\n", "namespace: expected str, got int"),
    ("[ingest]\nhttp_host = 8\n", "ingest.http_host: expected str, got int"),
    ("bridge = 3\n", "[bridge] must be a table"),
])
def test_wrong_types_are_named(tmp_path: Path, text: str, needle: str) -> None:
    message = one_line_error(write(tmp_path, text), environ={})
    assert needle in message


def test_a_directory_given_as_the_settings_file_is_named(tmp_path: Path) -> None:
    assert f"{tmp_path}: is a directory" in one_line_error(tmp_path, environ={})


def test_an_unreadable_settings_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[bridge]\nbatch_size = 10\n")
    path.chmod(0)
    try:
        path.read_bytes()
    except PermissionError:
        pass
    else:
        pytest.skip("this user (root) reads files whatever their mode")
    assert f"{path}: cannot read the settings file" in one_line_error(path, environ={})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[bridge\n")
    assert str(path) in one_line_error(path, environ={})


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert f"{path}: settings file not found" in one_line_error(path, environ={})


@pytest.mark.parametrize("queue", ["a.b", "with space", "x" * 101, "ä"])
def test_invalid_queue_names_are_refused(tmp_path: Path, queue: str) -> None:
    path = write(tmp_path, f'[queues."{queue}"]\npartitions = 1\n')
    assert "queue name" in one_line_error(path, environ={})


def test_an_invalid_value_names_the_key(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, '[bridge]\ncompression = "lzma"\n'), environ={})
    assert "bridge.compression" in message


def test_an_invalid_namespace_from_the_environment_is_refused() -> None:
    assert "namespace" in one_line_error(None, environ={"JOBPIPE_NAMESPACE": "a.b"})


def test_a_misspelt_environment_key_is_named() -> None:
    message = one_line_error(None, environ={"JOBPIPE_BRIDGE_BATCHSIZE": "3"})
    assert "environment" in message
    assert "'batchsize'" in message


@pytest.mark.parametrize("var", ["JOBPIPE_WORKR_CONCURRENCY", "JOBPIPE_REDISURL",
                                 "JOBPIPE_NAMESPACES", "JOBPIPE_BRIDGE"])
def test_a_misspelt_environment_variable_is_named(var: str) -> None:
    message = one_line_error(None, environ={var: "3"})
    assert f"environment: {var} is not a jobpipe setting" in message


def test_variables_that_are_not_settings_are_left_alone() -> None:
    from jobpipe.metrics import HOST_ENV
    from jobpipe.settings import OTHER_VARIABLES

    assert HOST_ENV in OTHER_VARIABLES
    env = {"JOBPIPE_CONFIG": "", "JOBPIPE_METRICS_HOST": "0.0.0.0", "JOBPIPE_APP": "app.tasks",
           "JOBPIPE_REDIS_URL": "redis://127.0.0.1:1/0", "PATH": "/bin"}
    assert load_settings(None, environ=env).redis.url == "redis://127.0.0.1:1/0"


def test_text_fields_take_environment_values_as_given() -> None:
    env = {"JOBPIPE_INGEST_SPOOL_PATH": "2024", "JOBPIPE_INGEST_HTTP_HOST": "127.0.0.1",
           "JOBPIPE_INGEST_TOKENS": '["t1", "t2"]', "JOBPIPE_WORKER_CONCURRENCY": "7",
           "JOBPIPE_KAFKA_CONFIG": '{"socket.timeout.ms" = 500}'}
    settings = load_settings(None, environ=env)
    assert settings.ingest.spool_path == "2024"
    assert settings.ingest.tokens == ("t1", "t2")
    assert settings.worker.concurrency == 7
    assert settings.kafka.config == {"socket.timeout.ms": "500"}


@pytest.mark.parametrize("section", ["config", "producer"])
@pytest.mark.parametrize(("key", "value"), [("acks", "1"), ("enable.idempotence", "false")])
def test_turning_off_acks_all_or_idempotence_is_refused(tmp_path: Path, section: str,
                                                        key: str, value: str) -> None:
    path = write(tmp_path, f'[kafka.{section}]\n"{key}" = "{value}"\n')
    message = one_line_error(path, environ={})
    assert f"kafka.{section}.{key}" in message
    assert "acks=all" in message


def test_consumer_properties_pass_through_as_strings(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka.consumer]\n"fetch.min.bytes" = 10000\n')
    assert load_settings(path, environ={}).kafka.consumer == {"fetch.min.bytes": "10000"}


def test_replication_settings_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "[kafka]\nreplication_factor = 1\nmin_insync_replicas = 2\n")
    assert "min_insync_replicas" in one_line_error(path, environ={})


def test_flags_are_checked_like_the_file() -> None:
    message = one_line_error(None, environ={}, overrides={"worker": {"procesess": 2}})
    assert message.startswith("flags")
    assert "'procesess'" in message


def test_redis_tls_files_come_from_the_file_or_the_environment(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("pem")
    path = write(tmp_path, f'[redis]\nurl = "rediss://h:6380/0"\n'
                           f'ssl_ca_certs = "{tmp_path / "ca.pem"}"\n')
    env = {"JOBPIPE_REDIS_SSL_CERTFILE": str(tmp_path / "client.pem"),
           "JOBPIPE_REDIS_SSL_KEYFILE": str(tmp_path / "client.key")}
    redis = load_settings(path, environ=env).redis
    assert (redis.ssl_ca_certs, redis.ssl_certfile, redis.ssl_keyfile) == (
        str(tmp_path / "ca.pem"), str(tmp_path / "client.pem"), str(tmp_path / "client.key"))


@pytest.mark.parametrize(("redis", "message"), [
    ({"ssl_ca_certs": "/nonexistent/ca.pem"}, "redis.ssl_ca_certs: no such file"),
    ({"ssl_certfile": __file__}, "set both or neither"),
])
def test_bad_redis_tls_files_fail_in_one_line(redis: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(None, environ={}, overrides={"redis": {"url": "rediss://h:1/0", **redis}})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("ingest", "message"), [
    ({"http_tls_certfile": "/nonexistent/server.pem", "http_tls_keyfile": __file__},
     "ingest.http_tls_certfile: no such file"),
    ({"http_tls_keyfile": __file__}, "set both or neither"),
])
def test_bad_intake_tls_files_fail_in_one_line(ingest: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(None, environ={}, overrides={"ingest": ingest})
    assert "\n" not in str(caught.value)


def test_a_redis_tls_file_on_a_plain_url_is_an_error_not_ignored() -> None:
    from jobpipe.connections import redis_client

    settings = load_settings(None, environ={}, overrides={
        "redis": {"url": "redis://u:pw@h:1/0", "ssl_ca_certs": __file__}})
    with pytest.raises(ConfigError, match="only used with a rediss://") as caught:
        redis_client(settings.redis)
    assert "pw" not in str(caught.value)


def test_none_spells_an_unbounded_number_but_stays_a_string_where_one_is_expected(
        tmp_path: Path) -> None:
    path = write(tmp_path, '[queues.q]\nmax_backlog = "none"\ntimeout_s = "none"\n'
                           '[ingest]\nspool_path = "none"\n')
    settings = load_settings(path, environ={})
    assert settings.topology.get("q").max_backlog is None  # not the default 1,000,000
    assert settings.topology.get("q").timeout_s is None
    assert settings.ingest.spool_path == "none"  # a file called none
    env = {"JOBPIPE_BRIDGE_BATCH_SIZE": "none"}
    with pytest.raises(ConfigError, match=r"bridge\.batch_size"):
        load_settings(None, environ=env)  # not optional: "none" is a wrong type


def test_client_side_group_timeouts_are_refused_with_the_consumer_protocol(
        tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\ngroup_protocol = "consumer"\n'
                           '[kafka.consumer]\n"session.timeout.ms" = 6000\n')
    message = one_line_error(path, environ={})
    assert "kafka.consumer.session.timeout.ms" in message
    assert "group_protocol" in message


def test_the_classic_default_takes_client_side_group_timeouts(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka.consumer]\n"session.timeout.ms" = 6000\n')
    kafka = load_settings(path, environ={}).kafka
    assert (kafka.group_protocol, kafka.consumer) == ("classic", {"session.timeout.ms": "6000"})


def test_an_unknown_group_protocol_is_named() -> None:
    message = one_line_error(None, environ={"JOBPIPE_KAFKA_GROUP_PROTOCOL": "eager"})
    assert "kafka.group_protocol" in message


def test_each_worker_process_gets_its_own_static_member_name() -> None:
    named = load_settings(environ={"JOBPIPE_WORKER_INSTANCE_ID": "pod-7"}).worker
    claimed = load_settings(environ={}).worker
    assert named.process(2).instance_id == "pod-7-2"
    assert claimed.process(2).instance_id is None  # each process claims its own


def test_membership_is_static_by_default_and_dynamic_on_request() -> None:
    assert load_settings(environ={}).worker.membership == "static"
    dynamic = load_settings(environ={"JOBPIPE_WORKER_MEMBERSHIP": "dynamic"}).worker
    assert (dynamic.membership, dynamic.instance_id) == ("dynamic", None)


@pytest.mark.parametrize(("environ", "needle"), [
    ({"JOBPIPE_WORKER_MEMBERSHIP": "sticky"}, "worker.membership: must be 'static' or 'dynamic'"),
    ({"JOBPIPE_WORKER_MEMBERSHIP": "dynamic", "JOBPIPE_WORKER_INSTANCE_ID": "pod-7"},
     "worker.instance_id: a member name is static membership"),
])
def test_a_wrong_membership_is_named(environ: dict[str, str], needle: str) -> None:
    assert needle in one_line_error(None, environ=environ)


def test_a_redis_cluster_is_chosen_by_a_setting_and_one_redis_stays_the_default() -> None:
    assert load_settings(None, environ={}).redis.cluster is False
    settings = load_settings(None, environ={"JOBPIPE_REDIS_URL": "redis://10.0.0.5:7000",
                                            "JOBPIPE_REDIS_CLUSTER": "true"})
    assert settings.redis.cluster is True


@pytest.mark.parametrize(("url", "message"), [
    ("unix:///run/redis.sock", "is a unix socket; with redis.cluster = true it must name"),
    ("redis://127.0.0.1:7000/2", "selects database 2; a Redis Cluster has only database 0"),
])
def test_a_cluster_url_that_cannot_name_a_cluster_node_fails_in_one_line(
        url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, environ={"JOBPIPE_REDIS_URL": url, "JOBPIPE_REDIS_CLUSTER": "true"})
