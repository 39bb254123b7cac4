"""Celery app of the watermill-kombu benchmarks.

The worker runs bench.noop tasks and, once BENCH_N of them ran, writes one
JSON line to BENCH_OUT: n, elapsed_s from the first to the last task, cpu_s
of the worker process from worker_ready to the last task, latency
percentiles from the publish time (first argument, µs) and rss_kb. It writes
BENCH_OUT.ready when the worker is ready.

    BENCH_ENDPOINT=http://127.0.0.1:9324 BENCH_N=1000 BENCH_OUT=/tmp/out.json \\
        python -m celery -A bench_celery_app worker -Q q1,q2 --pool solo ...
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import urlparse

from celery import Celery
from celery.signals import worker_ready

_u = urlparse(os.environ.get("BENCH_ENDPOINT", "http://127.0.0.1:9324"))
app = Celery("bench", broker=f"sqs://bench:bench@{_u.hostname}:{_u.port}")
app.conf.update(
    broker_transport_options={"region": "us-east-1", "wait_time_seconds": 1, "polling_interval": 0},
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=10,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    enable_utc=True,
)

N = int(os.environ.get("BENCH_N", "0"))
OUT = os.environ.get("BENCH_OUT", "")
_state = {"count": 0, "first": 0.0, "cpu0": 0.0}
_lats: list[float] = []


@worker_ready.connect
def _ready(**_):
    _state["cpu0"] = time.process_time()
    if OUT:
        with open(OUT + ".ready", "w") as f:
            f.write("ready\n")


@app.task(name="bench.noop")
def noop(ts, pad):
    """Does nothing but count; the last one writes the results."""
    now = time.time()
    if not _state["first"]:
        _state["first"] = now
    if ts:
        _lats.append(now * 1e6 - ts)
    _state["count"] += 1
    if _state["count"] == N and OUT:
        s = sorted(_lats)
        pct = (lambda p: s[int(p * (len(s) - 1))]) if s else (lambda p: 0.0)
        with open("/proc/self/status") as f:
            rss = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
        res = {"n": N, "elapsed_s": now - _state["first"], "cpu_s": time.process_time() - _state["cpu0"],
               "requests": -1, "p50_us": pct(0.5), "p99_us": pct(0.99), "rss_kb": rss}
        tmp = OUT + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(res) + "\n")
        os.replace(tmp, OUT)
