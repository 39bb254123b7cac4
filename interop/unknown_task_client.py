"""Sends tasks nobody registered and reports what a Celery client sees.

    python interop/unknown_task_client.py QUEUE N

sends N tasks named "interop.nobody.registered" to QUEUE with the app of
interop/worker_pyapp.py (SQS broker, Redis results), waits for each result and
prints one JSON object: {"ids": [...], "raised": [...], "messages": [...]}.
A Celery 5.7 worker, and the Go worker, fail such a task with NotRegistered.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interop.worker_pyapp import app  # noqa: E402

TIMEOUT = float(os.environ.get("KOMBU_WORKER_CLIENT_TIMEOUT", "30"))


def main() -> None:
    queue, n = sys.argv[1], int(sys.argv[2])
    results = [app.send_task("interop.nobody.registered", args=[i], queue=queue) for i in range(n)]
    out = {"ids": [], "raised": [], "messages": []}
    for r in results:
        out["ids"].append(r.id)
        try:
            r.get(timeout=TIMEOUT)
            out["raised"].append(None)
            out["messages"].append(None)
        except Exception as e:  # noqa: BLE001 - the point is which exception
            out["raised"].append(type(e).__name__)
            out["messages"].append(str(e))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
