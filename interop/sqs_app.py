"""A Celery app on Kombu's SQS transport pointed at the local ElasticMQ.

Shared by the Celery worker apps the Go tests start (run from the repository
root as `celery -A interop.<module> worker`).
"""

import os
from urllib.parse import urlparse

from celery import Celery


def elasticmq_app(name: str, default_queue: str, **conf) -> Celery:
    """Returns a Celery app whose broker is the ElasticMQ at KOMBU_TEST_SQS_ENDPOINT.

    Any keyword argument is added to the app's configuration.
    """
    endpoint = urlparse(os.environ.get("KOMBU_TEST_SQS_ENDPOINT", "http://127.0.0.1:9324"))
    app = Celery(name, broker=f"sqs://test:test@{endpoint.hostname}:{endpoint.port or 80}")
    app.conf.update(
        broker_transport_options={
            "region": "us-east-1",
            "is_secure": endpoint.scheme == "https",
            "wait_time_seconds": 1,
            "polling_interval": 0.1,
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=default_queue,
        worker_hijack_root_logger=False,
        **conf,
    )
    return app
