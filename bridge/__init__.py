"""The bridge: drains Redis ready lists into Kafka topics, losing no job.

``Bridge(settings).run()`` moves batches atomically from ready lists to
per-bridge in-flight lists, produces them, and acknowledges each batch only
after Kafka acknowledged every job in it. It also promotes due delayed jobs,
drains fair queues' tenants by weighted deficit round robin under a Kafka lag
bound, returns the in-flight jobs of bridges that stopped heartbeating, and
moves jobs Kafka refuses for good to a dead list.
"""

from bridge.batch import AckOrder, Batch, DeadJob, Source
from bridge.dead import DeadRecord, count_dead, list_dead, requeue_dead
from bridge.fair import FairScheduler, lag_allows
from bridge.service import Bridge

__all__ = [  # noqa: RUF022 (grouped by role, as the style guide asks)
    # the service
    "Bridge",
    # the dead list
    "DeadRecord",
    "count_dead",
    "list_dead",
    "requeue_dead",
    # pure building blocks
    "AckOrder",
    "Batch",
    "DeadJob",
    "FairScheduler",
    "Source",
    "lag_allows",
]
