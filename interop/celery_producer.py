"""Sends Celery tasks and a plain Kombu message to an SQS queue for Go.

The Go interop test (celery/interop_test.go) runs this script, then reads the
queue with kombu.NewSubscriber and checks every message against the JSON
manifest this script prints on stdout:

    .cache/venv/bin/python interop/celery_producer.py --queue NAME [--fifo-queue NAME.fifo] [--endpoint URL]

Tasks go through a real Celery app (delay / apply_async) on Kombu's SQS
transport, with task protocol 2 and, from a second app, protocol 1.

Manifest: {"celery": ..., "kombu": ..., "max_body": N, "cases": [...]},
one case per message: its name, protocol, task id, task name, args and
kwargs as sent (datetimes as {"__type__": "datetime", "__value__": iso},
as Kombu's JSON serializer writes them), eta/expires (ISO-8601, or null),
retries, custom headers, and the size of the SQS body sent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from urllib.parse import urlparse

import celery
import kombu
from celery import Celery
from kombu import Connection, Producer
from kombu.transport.SQS import Channel

# SQS's limit on a message body (1 MiB), which ElasticMQ enforces too.
MAX_BODY = 1024 * 1024

UTC = dt.timezone.utc


def broker_for(endpoint: str) -> tuple[str, dict]:
    u = urlparse(endpoint)
    broker = f"sqs://test:test@{u.hostname}:{u.port or 80}"
    options = {
        "region": "us-east-1",
        "is_secure": u.scheme == "https",
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
    }
    return broker, options


def make_app(name: str, endpoint: str, queue: str, protocol: int) -> Celery:
    broker, options = broker_for(endpoint)
    app = Celery(name, broker=broker)
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_default_queue=queue,
        task_protocol=protocol,
        enable_utc=True,
        timezone="UTC",
    )

    @app.task(name="proj.add", shared=False)
    def add(x, y):  # never run here: a Go subscriber consumes the queue
        return x + y

    @app.task(name="proj.echo", shared=False)
    def echo(*args, **kwargs):
        return args, kwargs

    return app


class _Capture:
    """Stands in for the SQS client while measuring: keeps the body, sends nothing."""

    def __init__(self, client):
        self.client = client
        self.bodies = []

    def __getattr__(self, name):
        return getattr(self.client, name)

    def send_message(self, **kwargs):
        self.bodies.append(kwargs["MessageBody"])
        return {"MessageId": "measured"}


def measured_size(app: Celery, n: int) -> int:
    """Size of the SQS body Celery sends for proj.echo("x" * n), without sending it."""
    original = Channel.sqs
    captures = []

    def fake(self, queue=None):
        captures.append(_Capture(original(self, queue)))
        return captures[-1]

    Channel.sqs = fake
    try:
        app.tasks["proj.echo"].apply_async(args=["x" * n])
    finally:
        Channel.sqs = original
    return len([b for c in captures for b in c.bodies][-1])


def largest_fitting(app: Celery) -> tuple[int, int]:
    """The longest string argument whose SQS body fits MAX_BODY, and that body's size."""
    lo, hi = 1, MAX_BODY
    while lo < hi:  # largest n with size(n) <= MAX_BODY
        mid = (lo + hi + 1) // 2
        if measured_size(app, mid) <= MAX_BODY:
            lo = mid
        else:
            hi = mid - 1
    return lo, measured_size(app, lo)


def typed_datetime(t: dt.datetime) -> dict:
    return {"__type__": "datetime", "__value__": t.isoformat()}


def iso(t):
    return None if t is None else t.isoformat()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queue", required=True)
    ap.add_argument(
        "--endpoint",
        default=os.environ.get("KOMBU_TEST_SQS_ENDPOINT", "http://127.0.0.1:9324"),
    )
    ap.add_argument("--fifo-queue", default="", help="also send ordered tasks to this .fifo queue")
    a = ap.parse_args()

    cases = []
    app2 = make_app("producer_v2", a.endpoint, a.queue, 2)
    app1 = make_app("producer_v1", a.endpoint, a.queue, 1)

    def send(case, app, task, args=(), kwargs=None, expect_args=None, expect_kwargs=None, **options):
        sent_at = dt.datetime.now(UTC)
        result = app.tasks[task].apply_async(args=list(args), kwargs=kwargs or {}, **options)
        cases.append(
            {
                "case": case,
                "protocol": app.conf.task_protocol,
                "id": result.id,
                "task": task,
                "args": list(args) if expect_args is None else expect_args,
                "kwargs": (kwargs or {}) if expect_kwargs is None else expect_kwargs,
                "eta": iso(options.get("eta")),
                "countdown": options.get("countdown"),
                "expires": iso(options.get("expires")),
                "retries": options.get("retries", 0),
                "headers": options.get("headers") or {},
                "sent_at": sent_at.isoformat(),
            }
        )
        return result

    now = dt.datetime.now(UTC).replace(microsecond=123456)
    when = dt.datetime(2024, 2, 29, 23, 59, 58, 654321, tzinfo=UTC)
    unicode_text = "héllo wörld ☃ 日本語 🎉 \u0000 \"quoted\" \\ /"
    nested = {
        "a": {"b": [1, {"c": [True, False, None]}], "d": {}},
        "list": [[], [[]], [1.5, "two", None]],
        "ünï": {"ключ": "значение"},
    }

    for app in (app2, app1):
        v = f"v{app.conf.task_protocol}"
        # delay() with two ints, as in Celery's tutorial.
        sent_at = dt.datetime.now(UTC)
        r = app.tasks["proj.add"].delay(2, 3)
        cases.append({"case": f"{v}_delay_add", "protocol": app.conf.task_protocol, "id": r.id,
                      "task": "proj.add", "args": [2, 3], "kwargs": {}, "eta": None,
                      "countdown": None, "expires": None, "retries": 0, "headers": {},
                      "sent_at": sent_at.isoformat()})
        send(f"{v}_ints", app, "proj.echo", [0, -1, 2**31, -(2**63), 2**64 + 1, 10**30])
        send(f"{v}_floats", app, "proj.echo", [1.5, -0.0, 1e300, 5e-324, 0.1 + 0.2, 3.0])
        send(f"{v}_unicode", app, "proj.echo", [unicode_text], {"naïve": "ça va", "😀": "🐍"})
        send(f"{v}_nested_kwargs", app, "proj.echo", [], nested)
        send(f"{v}_none", app, "proj.echo", [None], {"x": None})
        send(
            f"{v}_datetimes", app, "proj.echo", [when, when.date()], {"at": when},
            expect_args=[typed_datetime(when), {"__type__": "date", "__value__": when.date().isoformat()}],
            expect_kwargs={"at": typed_datetime(when)},
        )
        send(f"{v}_countdown", app, "proj.add", [4, 5], countdown=2)
        send(f"{v}_eta_expires", app, "proj.add", [6, 7], eta=now + dt.timedelta(seconds=2),
             expires=now + dt.timedelta(hours=1))
        send(f"{v}_retries", app, "proj.add", [8, 9], retries=3)
        send(f"{v}_headers", app, "proj.add", [1, 1], headers={"x_custom": "yes", "x_number": 7})

    # Compressed payloads, and a callback signature.
    send("v2_gzip", app2, "proj.add", [10, 20], compression="gzip")
    cases[-1]["compression"] = "application/x-gzip"
    send("v2_bzip2", app2, "proj.add", [30, 40], compression="bzip2")
    cases[-1]["compression"] = "application/x-bz2"
    send("v1_gzip", app1, "proj.add", [50, 60], compression="gzip")
    cases[-1]["compression"] = "application/x-gzip"
    send("v2_link", app2, "proj.add", [1, 2], link=app2.tasks["proj.add"].s(10),
         link_error=app2.tasks["proj.echo"].si("failed"))
    cases[-1]["link"] = "proj.add"
    cases[-1]["link_error"] = "proj.echo"

    # A FIFO queue: three tasks in one message group, in order.
    if a.fifo_queue:
        for i in range(3):
            send(f"v2_fifo_{i}", app2, "proj.add", [i, i], queue=a.fifo_queue,
                 MessageGroupId="grp-1", MessageDeduplicationId=f"dedup-{i}")
            cases[-1]["queue"] = a.fifo_queue
            cases[-1]["group"] = "grp-1"
            cases[-1]["dedup"] = f"dedup-{i}"

    # Python's json writes NaN and Infinity, which are not JSON but which Kombu's json.loads
    # reads: the Go side reads them too.
    send("v2_nan", app2, "proj.echo", [float("nan"), float("inf")], expect_args=["NaN", "Infinity"])
    cases[-1]["python_floats"] = True

    # The largest argument that fits SQS's limit after both base64 layers.
    n, size = largest_fitting(app2)
    big = "x" * n
    send("v2_largest", app2, "proj.echo", [big], expect_args=["x" * 16])
    cases[-1]["arg_len"] = n
    cases[-1]["body_size"] = size
    cases[-1]["next_body_size"] = measured_size(app2, n + 1)

    # One byte more is refused by the broker, not silently truncated.
    try:
        app2.tasks["proj.echo"].apply_async(args=["x" * (n + 1)], retry=False)
        oversize = "accepted"
    except Exception as exc:  # noqa: BLE001 - any broker refusal will do
        oversize = type(exc).__name__
    cases[-1]["oversize_send"] = oversize

    # A plain Kombu message, no Celery.
    broker, options = broker_for(a.endpoint)
    payload = {"hello": "wörld", "n": 42, "list": [1, 2.5, None]}
    with Connection(broker, transport_options=options) as conn:
        producer = Producer(conn.default_channel)
        producer.publish(payload, routing_key=a.queue, serializer="json",
                         headers={"source": "kombu", "count": 3}, correlation_id="plain-kombu-1")
    cases.append({"case": "kombu_plain", "id": "plain-kombu-1", "payload": payload,
                  "headers": {"source": "kombu", "count": 3}})

    # The same without the outer base64 layer (sqs_base64_encoding False).
    with Connection(broker, transport_options={**options, "sqs_base64_encoding": False}) as conn:
        producer = Producer(conn.default_channel)
        producer.publish(payload, routing_key=a.queue, serializer="json",
                         headers={"source": "kombu", "count": 3}, correlation_id="plain-kombu-2")
    cases.append({"case": "kombu_raw_envelope", "id": "plain-kombu-2", "payload": payload,
                  "headers": {"source": "kombu", "count": 3}})

    json.dump(
        {"celery": celery.__version__, "kombu": kombu.__version__, "max_body": MAX_BODY, "cases": cases},
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
