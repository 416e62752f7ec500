"""The dev broker's JVM options follow Kafka's own start-script variables."""

from jobpipe.devstack.kafka_broker import DEFAULT_JVM_PERFORMANCE_OPTS, jvm_options


def test_without_variables_the_broker_runs_g1() -> None:
    assert jvm_options({}) == list(DEFAULT_JVM_PERFORMANCE_OPTS)


def test_performance_opts_replace_the_collector_and_kafka_opts_add() -> None:
    options = jvm_options({"KAFKA_JVM_PERFORMANCE_OPTS": "-XX:+UseZGC  -XX:+ZGenerational",
                           "KAFKA_OPTS": "-Xlog:gc:file=gc.log"})
    assert options == ["-XX:+UseZGC", "-XX:+ZGenerational", "-Xlog:gc:file=gc.log"]
    assert "-XX:+UseG1GC" not in options


def test_an_empty_performance_opts_keeps_the_defaults() -> None:
    assert jvm_options({"KAFKA_JVM_PERFORMANCE_OPTS": ""})[:2] == list(
        DEFAULT_JVM_PERFORMANCE_OPTS)
