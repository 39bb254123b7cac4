"""Celery side of `make demo`.

As a Celery app (`python -m celery -A interop.demo_app worker -Q demo-celery`), it runs
the tasks the Go demo (examples/demo) enqueues on `demo-celery`, prints each result, and
reports it back to Go as a `demo.result` task on `demo-results`.

As a script (`python -m interop.demo_app produce`), it sends a few Celery tasks to the
`demo-go` queue, which the Go demo consumes.

The broker is $DEMO_SQS_ENDPOINT (default http://127.0.0.1:9324, the local ElasticMQ).
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

from celery import Celery

ENDPOINT = os.environ.get("DEMO_SQS_ENDPOINT", "http://127.0.0.1:9324")
TO_GO = "demo-go"
TO_CELERY = "demo-celery"
RESULTS = "demo-results"

_u = urlparse(ENDPOINT)
app = Celery("demo", broker=f"sqs://test:test@{_u.hostname}:{_u.port or 80}")
app.conf.update(
    broker_transport_options={
        "region": "us-east-1",
        "is_secure": _u.scheme == "https",
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
    },
    broker_connection_retry_on_startup=True,
    task_default_queue=TO_CELERY,
    enable_utc=True,
    timezone="UTC",
)


def call_text(name, args, kwargs):
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


@app.task(bind=True, name="tasks.mul")
def mul(self, x, y):
    result = x * y
    print(f"[go → celery] {call_text(self.name, self.request.args, self.request.kwargs)} = {result}", flush=True)
    app.send_task(
        "demo.result",
        args=[self.request.id, self.name, list(self.request.args), dict(self.request.kwargs), result],
        queue=RESULTS,
    )
    return result


def produce() -> int:
    sends = [
        ("proj.add", [2, 3], {}),
        ("proj.greet", ["wörld"], {"punctuation": "!"}),
        ("proj.resize", [], {"image": "cat.png", "size": [640, 480], "quality": 0.85}),
    ]
    for name, args, kwargs in sends:
        app.send_task(name, args=args, kwargs=kwargs, queue=TO_GO)
        print(f"[python] sent {call_text(name, args, kwargs)} to {TO_GO}", flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["produce"]:
        print("usage: python -m interop.demo_app produce", file=sys.stderr)
        sys.exit(2)
    sys.exit(produce())
