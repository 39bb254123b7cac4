"""Celery app for the exchange test: a worker on a queue bound to a Go fanout.

exchange_test.go starts a worker on it:

    KOMBU_EXCHANGE_QUEUE=q KOMBU_EXCHANGE_OUT=/tmp/out.jsonl \\
        python -m celery -A interop.exchange_worker_app worker -Q q --pool solo ...

The task `exchange.record` appends one JSON line to $KOMBU_EXCHANGE_OUT with
its id, arguments and the delivery_info the worker saw (the exchange and
routing key the Go publisher wrote).
"""

from __future__ import annotations

import json
import os
import threading
from urllib.parse import urlparse

from celery import Celery

ENDPOINT = os.environ.get("KOMBU_TEST_SQS_ENDPOINT", "http://127.0.0.1:9324")
QUEUE = os.environ.get("KOMBU_EXCHANGE_QUEUE", "celery")
OUT = os.environ.get("KOMBU_EXCHANGE_OUT", "")

_u = urlparse(ENDPOINT)
app = Celery("exchange", broker=f"sqs://test:test@{_u.hostname}:{_u.port or 80}")
app.conf.update(
    broker_transport_options={
        "region": "us-east-1",
        "is_secure": _u.scheme == "https",
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
    },
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
)

_lock = threading.Lock()


@app.task(bind=True, name="exchange.record")
def record(self, *args, **kwargs):
    info = self.request.delivery_info or {}
    line = json.dumps({
        "id": self.request.id,
        "args": list(args),
        "kwargs": kwargs,
        "exchange": info.get("exchange"),
        "routing_key": info.get("routing_key"),
    })
    with _lock, open(OUT, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return len(args)
