"""Celery client side of the Go worker's task option tests (worker_options_interop_test.go).

    python interop/worker_options_client.py CASE

calls a Go task and a Python task declared with the same options, and prints
one JSON object with what each did. Cases:

    autoretry   autoretry_for, retry_backoff=True, retry_jitter=False,
                max_retries=3: when each run started
    ratelimit   six tasks with rate_limit="5/s": when each started
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from celery import uuid  # noqa: E402

from interop.worker_pyapp import autoflaky, limited, py_autoflaky, py_limited  # noqa: E402

TIMEOUT = float(os.environ.get("KOMBU_WORKER_CLIENT_TIMEOUT", "30"))


def case_autoretry():
    go = autoflaky.delay("kombu-test-autoretry-" + uuid())
    py = py_autoflaky.delay("kombu-test-autoretry-" + uuid())
    return {"go": go.get(timeout=TIMEOUT), "py": py.get(timeout=TIMEOUT)}


def case_ratelimit():
    go = [limited.delay() for _ in range(6)]
    py = [py_limited.delay() for _ in range(6)]
    return {"go": sorted(r.get(timeout=TIMEOUT) for r in go),
            "py": sorted(r.get(timeout=TIMEOUT) for r in py)}


if __name__ == "__main__":
    case = sys.argv[1]
    t0 = time.monotonic()
    result = globals()["case_" + case]()
    result["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(result, default=repr))
