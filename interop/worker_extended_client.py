"""Celery client side of the Go worker's extended result test
(celery/worker_extended_interop_test.go).

    KOMBU_RESULT_EXTENDED=1 python interop/worker_extended_client.py CASE

calls a Go task and its Python twin with the same arguments, waits for both, and prints
one JSON object with what AsyncResult reads of each ("go" and "py"): state, name, args,
kwargs (as Python reprs, so that big integers stay exact), worker, retries, queue, and the
keys of the stored document in their order. Cases:

    success   interop.go.echo / interop.py.echo with big integers, floats and nesting
    retry     interop.go.flaky / interop.py.flaky: retried three times, then succeed
    failure   interop.go.boom / interop.py.fail: fail at once
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interop.worker_pyapp import app, boom, echo, flaky, py_echo, py_fail, py_flaky  # noqa: E402

TIMEOUT = float(os.environ.get("KOMBU_WORKER_CLIENT_TIMEOUT", "30"))

ARGS = (2**70, 0.1, "x", [1, None, {"f": -2.5e-7}])
KWARGS = {"k": {"n": 1.5, "big": -(2**65)}, "s": "t"}


def view(result):
    result.get(timeout=TIMEOUT, propagate=False)
    raw = app.backend.get(app.backend.get_key_for_task(result.id))
    return {
        "state": result.state,
        "name": result.name,
        "args": repr(result.args),
        "kwargs": repr(result.kwargs),
        "worker": result.worker,
        "retries": result.retries,
        "queue": result.queue,
        "date_done": result.date_done.isoformat() if result.date_done else None,
        "keys": list(json.loads(raw)),
    }


def both(go, py):
    return {"go": view(go), "py": view(py)}


def case_success():
    return both(echo.apply_async(ARGS, KWARGS), py_echo.apply_async(ARGS, KWARGS))


def case_retry():
    return both(flaky.delay("x"), py_flaky.delay("x"))


def case_failure():
    return both(boom.delay("bad"), py_fail.delay("bad"))


if __name__ == "__main__":
    if not app.conf.result_extended:
        sys.exit("KOMBU_RESULT_EXTENDED=1 is required")
    print(json.dumps(globals()["case_" + sys.argv[1]]()))
