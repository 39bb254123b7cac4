"""Python clients of the watermill-kombu benchmarks (run by `make bench`).

Each command prints one JSON line on stdout with n, elapsed_s, cpu_s (process
CPU time over the measured window), p50_us/p99_us and rss_kb (VmHWM). The
Go side starts these as child processes and adds the request counts seen by
its counting proxy.

    bench_clients.py kombu-consume ENDPOINT QUEUES N
    bench_clients.py kombu-publish ENDPOINT QUEUES N SIZE
    bench_clients.py celery-publish ENDPOINT QUEUES N SIZE
    bench_clients.py envelope SQS_BODY_FILE [NUMBER]
"""

from __future__ import annotations

import json
import os
import sys
import time
import timeit
from urllib.parse import urlparse


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _pct(v: list[float]) -> tuple[float, float]:
    if not v:
        return 0.0, 0.0
    s = sorted(v)
    return s[int(0.5 * (len(s) - 1))], s[int(0.99 * (len(s) - 1))]


def _emit(n, elapsed, cpu, lats, lost=0):
    p50, p99 = _pct(lats)
    print(json.dumps({"n": n, "elapsed_s": elapsed, "cpu_s": cpu, "requests": -1,
                      "p50_us": p50, "p99_us": p99, "rss_kb": _rss_kb(), "lost": lost}), flush=True)


def _connection(endpoint: str):
    from kombu import Connection

    u = urlparse(endpoint)
    return Connection(f"sqs://bench:bench@{u.hostname}:{u.port}", transport_options={
        "region": "us-east-1", "wait_time_seconds": 1, "polling_interval": 0,
    })


def kombu_consume(endpoint: str, queues: str, n: int) -> None:
    """Kombu Consumer with prefetch 10, acking each message, until n were handled."""
    from kombu import Consumer, Queue

    state = {"count": 0, "first": 0.0, "last": 0.0}
    lats: list[float] = []

    def on_message(body, message):
        now = time.time()
        if not state["first"]:
            state["first"] = now
        state["last"] = now
        ts = int(message.headers.get("bench_ts") or 0)
        if ts:
            lats.append(now * 1e6 - ts)
        message.ack()
        state["count"] += 1

    with _connection(endpoint) as conn:
        qs = [Queue(q, routing_key=q) for q in queues.split(",")]
        with Consumer(conn, qs, callbacks=[on_message], accept=["json"], prefetch_count=10):
            cpu0 = time.process_time()
            print("READY", flush=True)
            quiet = 0
            while state["count"] < n:
                try:
                    conn.drain_events(timeout=2)
                    quiet = 0
                except TimeoutError:
                    # Stop short, as the Go clients do, if a few messages are stuck in flight.
                    quiet += 2
                    if state["count"] * 100 >= n * 98 or quiet >= 30:
                        break
            cpu = time.process_time() - cpu0
    _emit(state["count"], state["last"] - state["first"], cpu, lats, lost=n - state["count"])


def _payload(size: int):
    return [[int(time.time() * 1e6), "x" * size], {}, {}]


def kombu_publish(endpoint: str, queues: str, n: int, size: int) -> None:
    """Kombu Producer.publish of n JSON messages, round-robin over the queues."""
    qs = queues.split(",")
    lats = []
    with _connection(endpoint) as conn:
        producer = conn.Producer(serializer="json")
        for q in qs:  # declare (look up) the queues first
            producer.publish(_payload(size), routing_key=q)
        cpu0 = time.process_time()
        start = time.time()
        for i in range(n):
            t = time.perf_counter()
            producer.publish(_payload(size), routing_key=qs[i % len(qs)])
            lats.append((time.perf_counter() - t) * 1e6)
        elapsed = time.time() - start
        cpu = time.process_time() - cpu0
    _emit(n, elapsed, cpu, lats)


def celery_publish(endpoint: str, queues: str, n: int, size: int) -> None:
    """Celery apply_async (delay with a queue) of n bench.noop tasks, round-robin."""
    os.environ["BENCH_ENDPOINT"] = endpoint
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_celery_app import noop

    qs = queues.split(",")
    pad = "x" * size
    for q in qs:
        noop.apply_async((0, pad), queue=q)
    lats = []
    cpu0 = time.process_time()
    start = time.time()
    for i in range(n):
        t = time.perf_counter()
        noop.apply_async((int(time.time() * 1e6), pad), queue=qs[i % len(qs)])
        lats.append((time.perf_counter() - t) * 1e6)
    elapsed = time.time() - start
    cpu = time.process_time() - cpu0
    _emit(n, elapsed, cpu, lats)


def envelope(body_file: str, number: int) -> None:
    """Kombu's own encode and decode of the SQS body in body_file, timed with timeit."""
    from kombu import Connection
    from kombu.asynchronous.aws.sqs.message import AsyncMessage
    from kombu.serialization import dumps as kdumps
    from kombu.transport.SQS import Channel as SQSChannel
    from kombu.transport.virtual import Message
    from kombu.utils.json import dumps, loads

    raw = open(body_file).read()
    ch = Connection("memory://").default_channel
    env = loads(SQSChannel._optional_b64_decode(SQSChannel, raw.encode()).decode())
    payload = loads(ch.decode_body(env["body"], "base64"))
    headers = env["headers"]
    props = {k: v for k, v in env["properties"].items()
             if k not in ("delivery_info", "body_encoding", "delivery_tag", "priority", "delivery_mode")}

    def encode():
        ctype, cenc, body = kdumps(payload, serializer="json")
        msg = ch.prepare_message(body, 0, ctype, cenc, dict(headers), dict(props))
        msg["properties"]["delivery_info"] = {"exchange": "", "routing_key": "celery"}
        msg["properties"]["delivery_tag"] = "00000000-0000-0000-0000-000000000000"
        msg["body"], msg["properties"]["body_encoding"] = ch.encode_body(msg["body"], "base64")
        return AsyncMessage().encode(dumps(msg))

    def decode(b):
        text = SQSChannel._optional_b64_decode(SQSChannel, b.encode()).decode()
        m = Message(loads(text), channel=ch)
        return m.decode()

    encoded = encode()
    assert decode(encoded) == payload
    out = {}
    for name, fn in (("encode", encode), ("decode", lambda: decode(raw)),
                     ("encode+decode", lambda: decode(encode()))):
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number
        out[name] = best * 1e6
    print(json.dumps(out), flush=True)


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "kombu-consume":
        kombu_consume(args[0], args[1], int(args[2]))
    elif cmd == "kombu-publish":
        kombu_publish(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "celery-publish":
        celery_publish(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "envelope":
        envelope(args[0], int(args[1]) if len(args) > 1 else 2000)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
