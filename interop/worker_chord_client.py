"""Celery client side of the Go worker's chord tests (worker_chord_interop_test.go).

    python interop/worker_chord_client.py CASE

runs a chord with a real Celery client (app in interop/worker_pyapp.py) and
prints one JSON object describing what the client saw. Cases:

    go_header   chord(Go add x10)(Python tsum)
    py_header   chord(Python add x10)(Go tsum)
    mixed       chord(Go and Python add, alternating)(Python collect), then
                the same with the Go collect as body
    fail        chord(Go add, Go boom, Go add)(Python tsum, with an errback)
    py_fail     the same in Python only, as a reference of Celery's own error
    big         chord(Go add x100)(Python tsum_counted): the body's calls
    group_body  chord(Go add x4)(group(Python tsum, Go collect)), and a Go task
                with a group as its link
    nested      chord(group(Go add x2), Go add)(Python collect): a header
                that nests a group; nested_py the same in Python only
    chain_body  chord(Go add x4)(chain(Python tsum, Go double, Python add_ten))
    chain_fail  chain(Go boom, Python add_ten): the failure reaches the chain's
                last result; chord(Go add, chain(Go boom, Go double))(Python
                tsum): the failure reaches the chord
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from celery import chain, chord, group, uuid  # noqa: E402

from interop.worker_pyapp import (  # noqa: E402
    add, add_ten, app, boom, collect, double, on_error, py_add, py_collect, py_fail, py_tsum, py_tsum_counted,
    tsum,
)

TIMEOUT = float(os.environ.get("KOMBU_WORKER_CLIENT_TIMEOUT", "30"))
SUFFIXES = (".j", ".t", ".s", ".d")


def chord_keys_left(group_id, wait=3.0):
    """The chord's state keys still in Redis, after waiting up to wait seconds for cleanup."""
    backend = app.backend
    keys = [backend.get_key_for_group(group_id, s) for s in SUFFIXES]
    deadline = time.monotonic() + wait
    while True:
        left = [k.decode() if isinstance(k, bytes) else k for k in keys if backend.client.exists(k)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def run(header, body):
    r = chord(header)(body)
    got = r.get(timeout=TIMEOUT)
    gid = r.parent.id
    return {"result": got, "body_id": r.id, "group_id": gid, "state": r.state,
            "header": [c.id for c in r.parent.results], "left": chord_keys_left(gid)}


def case_go_header():
    return run([add.s(i, i) for i in range(10)], py_tsum.s())


def case_py_header():
    return run([py_add.s(i, i) for i in range(10)], tsum.s())


def case_mixed():
    header = [(add if i % 2 == 0 else py_add).s(i, i) for i in range(10)]
    out = run(header, py_collect.s())
    header = [(add if i % 2 else py_add).s(i, i) for i in range(10)]
    out["go_body"] = run(header, collect.s())
    return out


def failing(header):
    eb_id = uuid()
    body = py_tsum.s()
    body.link_error(on_error.s().set(task_id=eb_id))
    r = chord(header)(body)
    out = {"body_id": r.id, "group_id": r.parent.id, "header": [c.id for c in r.parent.results]}
    # r.get() raises the failed header task's own exception first (Celery checks the
    # parents); the body's own result holds the ChordError.
    try:
        r.get(timeout=TIMEOUT)
    except Exception as e:  # noqa: BLE001 - the point is what Celery raises
        out["parent_raised"] = f"{type(e).__module__}.{type(e).__name__}: {e}"
    body = app.AsyncResult(r.id)
    try:
        out["result"] = body.get(timeout=TIMEOUT)
    except Exception as e:  # noqa: BLE001 - the point is what Celery raises
        out["raised"] = type(e).__name__
        out["module"] = type(e).__module__
        out["message"] = str(e)
    out["state"] = body.state
    out["traceback"] = body.traceback
    out["errback"] = app.AsyncResult(eb_id).get(timeout=TIMEOUT)
    return out


def case_fail():
    return failing([add.s(1, 1), boom.s("broken"), add.s(2, 2)])


def case_py_fail():
    return failing([py_add.s(1, 1), py_fail.s("broken"), py_add.s(2, 2)])


def case_big():
    counter = "kombu-test-chord-calls-" + uuid()
    out = run([add.s(i, i) for i in range(100)], py_tsum_counted.s(counter))
    time.sleep(3)  # a second call of the body would come by now
    out["calls"] = int(app.backend.client.get(counter) or 0)
    out.pop("header")
    return out


def case_group_body():
    r = chord([add.s(i, i) for i in range(4)])(group(py_tsum.s(), collect.s()))
    out = {"result": r.get(timeout=TIMEOUT), "left": chord_keys_left(r.parent.id if r.parent else "")}
    ids = [uuid(), uuid()]
    link = add.apply_async((2, 3), link=group(add_ten.s().set(task_id=ids[0]), double.s().set(task_id=ids[1])))
    link.get(timeout=TIMEOUT)
    out["link"] = [app.AsyncResult(i).get(timeout=TIMEOUT) for i in ids]
    return out


def case_nested():
    r = chord([group(add.s(1, 1), add.s(2, 2)), add.s(3, 3)])(py_collect.s())
    gid = r.parent.id
    return {"result": r.get(timeout=TIMEOUT), "left": chord_keys_left(gid)}


def case_chain_body():
    r = chord([add.s(i, i) for i in range(4)])(chain(py_tsum.s(), double.s(), add_ten.s()))
    return {"result": r.get(timeout=TIMEOUT)}


def case_nested_py():
    r = chord([group(py_add.s(1, 1), py_add.s(2, 2)), py_add.s(3, 3)])(py_collect.s())
    gid = r.parent.id
    return {"result": r.get(timeout=TIMEOUT), "left": chord_keys_left(gid)}


def case_chain_fail():
    out = {}
    r = chain(boom.s("broken"), add_ten.s()).apply_async()
    try:
        r.get(timeout=TIMEOUT)
    except Exception as e:  # noqa: BLE001 - the point is what Celery raises
        out["chain_raised"] = f"{type(e).__module__}.{type(e).__name__}: {e}"
    # get() raises as soon as the failed step's FAILURE is stored (Celery checks the parents);
    # the worker stores the later steps' FAILURE right after, as Celery's worker does.
    deadline = time.monotonic() + 10
    while app.AsyncResult(r.id).state == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.05)
    out["chain_last_state"] = app.AsyncResult(r.id).state
    member = chain(boom.s("broken"), double.s())
    c = chord([add.s(1, 1), member])(py_tsum.s())
    try:
        app.AsyncResult(c.id).get(timeout=TIMEOUT)
    except Exception as e:  # noqa: BLE001
        out["chord_raised"] = f"{type(e).__module__}.{type(e).__name__}: {e}"
    out["member_id"] = c.parent.results[1].id
    out["left"] = chord_keys_left(c.parent.id)
    return out


if __name__ == "__main__":
    case = sys.argv[1]
    t0 = time.monotonic()
    result = globals()["case_" + case]()
    result["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(result, default=repr))
