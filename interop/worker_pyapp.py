"""Celery app shared by the Go worker interop test's Python side.

celery/worker_interop_test.go runs a Celery worker on it for the Python steps of a
chain, and interop/worker_client.py calls the Go worker's tasks through it:

    KOMBU_WORKER_GO_QUEUE=goq KOMBU_WORKER_PY_QUEUE=pyq \\
        python -m celery -A interop.worker_pyapp worker -Q pyq --pool solo ...

The Go tasks are declared here with bodies that never run in Python: the
declarations only give the client .delay() and .s(), and route the tasks to
the Go worker's queue. Results go to the Redis backend at
$KOMBU_TEST_REDIS_URL (redis://127.0.0.1:6379/0 by default), with
result_extended when $KOMBU_RESULT_EXTENDED is 1.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from celery import Celery

ENDPOINT = os.environ.get("KOMBU_TEST_SQS_ENDPOINT", "http://127.0.0.1:9324")
REDIS_URL = os.environ.get("KOMBU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
GO_QUEUE = os.environ.get("KOMBU_WORKER_GO_QUEUE", "go-tasks")
PY_QUEUE = os.environ.get("KOMBU_WORKER_PY_QUEUE", "py-tasks")

_u = urlparse(ENDPOINT)
app = Celery("worker_interop", broker=f"sqs://test:test@{_u.hostname}:{_u.port or 80}", backend=REDIS_URL)
app.conf.update(
    broker_transport_options={
        "region": "us-east-1",
        "is_secure": _u.scheme == "https",
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
    },
    broker_connection_retry_on_startup=True,
    task_default_queue=PY_QUEUE,
    task_routes={"interop.go.*": {"queue": GO_QUEUE}, "interop.py.*": {"queue": PY_QUEUE}},
    enable_utc=True,
    timezone="UTC",
    worker_hijack_root_logger=False,
    result_expires=3600,
    result_extended=os.environ.get("KOMBU_RESULT_EXTENDED") == "1",
)


def _go_only(*_args, **_kwargs):
    raise RuntimeError("this task runs in the Go worker")


# Go tasks (see celery/worker_interop_test.go).
add = app.task(name="interop.go.add")(_go_only)
double = app.task(name="interop.go.double")(_go_only)
ran_at = app.task(name="interop.go.ran_at")(_go_only)
flaky = app.task(name="interop.go.flaky")(_go_only)
boom = app.task(name="interop.go.boom")(_go_only)
sleepy = app.task(name="interop.go.sleepy")(_go_only)


# Python tasks, run by the Celery worker.
@app.task(name="interop.py.add_ten")
def add_ten(x):
    return x + 10


@app.task(name="interop.py.on_error")
def on_error(task_id):
    """An errback: Celery passes the failed task's id."""
    return {"failed": task_id, "state": app.AsyncResult(task_id).state}


# Chords (worker_chord_interop_test.go): Go tasks...
tsum = app.task(name="interop.go.tsum")(_go_only)
collect = app.task(name="interop.go.collect")(_go_only)


# ...and Python ones.
@app.task(name="interop.py.add")
def py_add(x, y):
    return x + y


@app.task(name="interop.py.tsum")
def py_tsum(values):
    return sum(values)


@app.task(name="interop.py.collect")
def py_collect(values):
    return values


@app.task(name="interop.py.fail")
def py_fail(msg):
    raise ValueError(msg)


@app.task(name="interop.py.tsum_counted")
def py_tsum_counted(values, counter):
    """A chord body that counts its calls in Redis, to show it runs once."""
    app.backend.client.incr(counter)
    app.backend.client.expire(counter, 3600)
    return sum(values)


# Task options (worker_options_interop_test.go): the Go tasks, and Python ones with the same
# options as a reference.
autoflaky = app.task(name="interop.go.autoflaky")(_go_only)
limited = app.task(name="interop.go.limited")(_go_only)


@app.task(name="interop.py.autoflaky", bind=True, autoretry_for=(KeyError,), retry_backoff=True,
          retry_jitter=False, max_retries=3)
def py_autoflaky(self, key):
    """Fails with KeyError until its third retry; returns when each run started."""
    import time

    app.backend.client.rpush(key, repr(time.time()))
    app.backend.client.expire(key, 3600)
    if self.request.retries < 3:
        raise KeyError(key)
    return [float(x) for x in app.backend.client.lrange(key, 0, -1)]


@app.task(name="interop.py.limited", rate_limit="5/s")
def py_limited():
    import time

    return time.time()


# Extended results (worker_extended_interop_test.go): a Go task and Python ones.
echo = app.task(name="interop.go.echo")(_go_only)


@app.task(name="interop.py.echo")
def py_echo(*args, **kwargs):
    return len(args) + len(kwargs)


@app.task(name="interop.py.flaky", bind=True, max_retries=3)
def py_flaky(self, arg):
    """interop.go.flaky's twin: retried after 0.5 s until its third retry."""
    if self.request.retries < 3:
        raise self.retry(countdown=0.5, exc=RuntimeError("not yet"))
    return {"retries": self.request.retries, "args": [arg]}
