"""Sends a few Celery tasks for the Go router of examples/celery-to-go to run.

    SQS_ENDPOINT=http://127.0.0.1:9324 QUEUE=example-celery-to-go python send_tasks.py [N]

The Go program runs it itself; it prints the id of each task it sent, one a line.
Nothing defines the task here: send_task only needs its name, as in any Celery
client that calls tasks implemented elsewhere.
"""

import os
import sys
from urllib.parse import urlparse

from celery import Celery

endpoint = urlparse(os.environ.get("SQS_ENDPOINT", "http://127.0.0.1:9324"))
queue = os.environ.get("QUEUE", "example-celery-to-go")

app = Celery("shop", broker=f"sqs://test:test@{endpoint.hostname}:{endpoint.port}")
app.conf.broker_transport_options = {"region": "us-east-1", "is_secure": endpoint.scheme == "https"}

n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
for i in range(n):
    result = app.send_task(
        "shop.tasks.charge",
        args=(f"order-{i + 1}", 10 * (i + 1)),
        kwargs={"currency": "EUR"},
        queue=queue,
    )
    print(result.id, flush=True)
