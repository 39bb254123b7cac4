"""Calls the tasks of examples/go-worker from Python, with a plain Celery app.

    SQS_ENDPOINT=http://127.0.0.1:9324 python examples/go-worker/client.py
"""

import os
from urllib.parse import urlparse

from celery import Celery

endpoint = urlparse(os.environ.get("SQS_ENDPOINT", "http://127.0.0.1:9324"))
app = Celery(
    "proj",
    broker=f"sqs://test:test@{endpoint.hostname}:{endpoint.port}",
    backend=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
)
app.conf.broker_transport_options = {"region": "us-east-1", "is_secure": endpoint.scheme == "https"}
# The Go worker's tasks go to its queue.
app.conf.task_routes = {"proj.tasks.*": {"queue": os.environ.get("QUEUE", "go-tasks")}}

print("add(2, 3) =", app.send_task("proj.tasks.add", (2, 3)).get(timeout=30))
print("add(a=4, b=5) =", app.send_task("proj.tasks.add", kwargs={"a": 4, "b": 5}).get(timeout=30))
print("shout('hello') =", app.send_task("proj.tasks.shout", ("hello",), countdown=1).get(timeout=30))
try:
    app.send_task("proj.tasks.divide", (1, 0)).get(timeout=30)
except ValueError as e:
    print("divide(1, 0) raised ValueError:", e)
