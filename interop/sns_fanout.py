"""Kombu 5.7 with supports_fanout: fanout exchanges through SNS, for the Go tests.

    python interop/sns_fanout.py produce EXCHANGE COUNT [GROUPS]
    python interop/sns_fanout.py consume EXCHANGE QUEUE... --count N [--timeout S]

The endpoint (moto: SQS and SNS on one port) is $KOMBU_TEST_MOTO_ENDPOINT.

produce declares EXCHANGE as a fanout exchange and publishes COUNT JSON
messages {"i": i, "group": g} to it, one Producer.publish each (Kombu's
_put_fanout: one SNS Publish). With GROUPS (comma-separated), the messages go
round-robin to those MessageGroupId values (a .fifo exchange needs them; Kombu
uses "default" otherwise). It prints {"kombu": version, "sent": [...]} as JSON.

consume binds each QUEUE to the fanout EXCHANGE, as a Kombu consumer does
(queue_bind creates the topic, basic_consume subscribes the queue), prints the
line "ready" once every queue is subscribed, then collects COUNT messages per
queue and prints them as JSON: {queue: [{"payload", "exchange", "routing_key",
"content_type", "group"}...]}. It exits non-zero when they do not all arrive
within the timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from urllib.parse import urlparse

import kombu
from kombu import Connection, Exchange, Queue


def connection() -> Connection:
    endpoint = os.environ.get("KOMBU_TEST_MOTO_ENDPOINT", "http://127.0.0.1:9400")
    u = urlparse(endpoint)
    options = {
        "region": "us-east-1",
        "is_secure": u.scheme == "https",
        "supports_fanout": True,
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
        "visibility_timeout": 30,
    }
    return Connection(f"sqs://test:test@{u.hostname}:{u.port or 80}", transport_options=options)


def produce(args) -> int:
    groups = [g for g in (args.groups or "").split(",") if g]
    sent = []
    with connection() as conn:
        ex = Exchange(args.exchange, type="fanout")
        producer = conn.Producer(exchange=ex)
        ex.declare(channel=producer.channel)
        for i in range(args.count):
            body = {"i": i}
            props = {}
            if groups:
                body["group"] = groups[i % len(groups)]
                props["MessageGroupId"] = body["group"]
            producer.publish(body, exchange=ex, routing_key="", serializer="json",
                             headers={"origin": "kombu"}, **props)
            sent.append(body)
    json.dump({"kombu": kombu.__version__, "sent": sent}, sys.stdout)
    return 0


def consume(args) -> int:
    got: dict[str, list] = {q: [] for q in args.queues}
    with connection() as conn:
        ex = Exchange(args.exchange, type="fanout")

        def on_message(queue_name):
            def cb(body, message):
                di = message.delivery_info
                got[queue_name].append({
                    "payload": body,
                    "exchange": di.get("exchange"),
                    "routing_key": di.get("routing_key"),
                    "content_type": message.content_type,
                    "group": message.properties.get("MessageGroupId"),
                    "headers": message.headers,
                })
                message.ack()
            return cb

        consumers = []
        for name in args.queues:
            c = conn.Consumer([Queue(name, ex)], callbacks=[on_message(name)], accept=["json"])
            c.consume()
            consumers.append(c)
        print("ready", flush=True)
        deadline = time.monotonic() + args.timeout
        while any(len(v) < args.count for v in got.values()):
            if time.monotonic() > deadline:
                print(json.dumps({q: len(v) for q, v in got.items()}), file=sys.stderr)
                return 1
            try:
                conn.drain_events(timeout=1)
            except (socket.timeout, TimeoutError):
                pass
        for c in consumers:
            c.cancel()
    json.dump(got, sys.stdout)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("exchange")
    p.add_argument("count", type=int)
    p.add_argument("groups", nargs="?")
    c = sub.add_parser("consume")
    c.add_argument("exchange")
    c.add_argument("queues", nargs="+")
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    return produce(args) if args.cmd == "produce" else consume(args)


if __name__ == "__main__":
    sys.exit(main())
