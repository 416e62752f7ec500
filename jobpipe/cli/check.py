"""``jobpipe check``: a health check answered by the exit code."""

from __future__ import annotations

import click

from jobpipe.cli.context import CliContext

TIMEOUT_S = 10.0


@click.command()
@click.pass_obj
def check(obj: CliContext) -> None:
    """Exit 0 when Redis is safe for jobs and Kafka answers; else one line and exit 1."""
    from confluent_kafka.admin import AdminClient

    from jobpipe.connections import check_redis_safety, kafka_admin_config, redis_client
    from jobpipe.errors import KafkaUnavailable
    from jobpipe.kafka_metadata import BrokerWatch, fetch_metadata
    from jobpipe.redact import redact_url

    settings = obj.settings()
    client = redis_client(settings.redis)
    client.ping()
    check_redis_safety(client, settings.redis)
    watch = BrokerWatch(settings.kafka.bootstrap)
    admin = AdminClient({**kafka_admin_config(settings.kafka), **watch.config()})
    metadata = fetch_metadata(admin, watch, TIMEOUT_S)
    if not metadata.brokers:
        raise KafkaUnavailable(f"Kafka at {settings.kafka.bootstrap} reports no brokers")
    click.echo(f"ok: redis {redact_url(settings.redis.url)}, kafka {settings.kafka.bootstrap} "
               f"({len(metadata.brokers)} broker(s))")
