"""``jobpipe check``: a health check answered by the exit code."""

from __future__ import annotations

import click

from jobpipe.cli.context import CliContext


@click.command()
@click.pass_obj
def check(obj: CliContext) -> None:
    """Exit 0 when Redis is safe for jobs and Kafka answers; else one line and exit 1."""
    from confluent_kafka.admin import AdminClient

    from jobpipe.connections import check_redis_safety, kafka_admin_config, redis_client
    from jobpipe.errors import KafkaUnavailable
    from jobpipe.redact import redact_url

    settings = obj.settings()
    client = redis_client(settings.redis)
    client.ping()
    check_redis_safety(client, settings.redis)
    metadata = AdminClient(kafka_admin_config(settings.kafka)).list_topics(timeout=10)
    if not metadata.brokers:
        raise KafkaUnavailable(f"Kafka at {settings.kafka.bootstrap} reports no brokers")
    click.echo(f"ok: redis {redact_url(settings.redis.url)}, kafka {settings.kafka.bootstrap} "
               f"({len(metadata.brokers)} broker(s))")
