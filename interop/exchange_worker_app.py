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

from interop.sqs_app import elasticmq_app

QUEUE = os.environ.get("KOMBU_EXCHANGE_QUEUE", "celery")
OUT = os.environ.get("KOMBU_EXCHANGE_OUT", "")

app = elasticmq_app("exchange", QUEUE)

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
