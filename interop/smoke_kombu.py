"""Round-trips one message through Kombu's SQS transport.

Proves that the interop virtualenv and the ElasticMQ broker work together:
publishes a JSON message to a fresh queue, reads it back, acks it and
deletes the queue. Exits non-zero on any failure.

    .cache/venv/bin/python interop/smoke_kombu.py [ENDPOINT]

ENDPOINT defaults to $KOMBU_TEST_SQS_ENDPOINT, then http://127.0.0.1:9324.
"""

from __future__ import annotations

import os
import sys
import uuid
from urllib.parse import urlparse

from kombu import Connection


def main() -> int:
    endpoint = (
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("KOMBU_TEST_SQS_ENDPOINT", "http://127.0.0.1:9324")
    )
    u = urlparse(endpoint)
    broker = f"sqs://x:y@{u.hostname}:{u.port or 80}"
    options = {
        "region": "us-east-1",
        "is_secure": u.scheme == "https",
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
    }
    name = f"kombu-smoke-{uuid.uuid4().hex[:12]}"
    token = uuid.uuid4().hex

    with Connection(broker, transport_options=options) as conn:
        q = conn.SimpleQueue(name)
        try:
            q.put({"hello": "world", "token": token})
            msg = q.get(block=True, timeout=15)
            if msg.payload != {"hello": "world", "token": token}:
                print(f"smoke: unexpected payload {msg.payload!r}", file=sys.stderr)
                return 1
            msg.ack()
        finally:
            q.close()
            conn.default_channel.queue_delete(name)

    print(f"smoke: kombu {conn.transport_cls} round trip via {endpoint} ok ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
