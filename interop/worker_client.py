"""Celery client side of the Go worker interop test.

    python interop/worker_client.py CASE

calls the Go worker's tasks with a real Celery client (app in
interop/worker_pyapp.py) and prints one JSON object describing what the
client saw. Cases:

    add     add.delay(2, 3).get()
    eta     ran_at.apply_async(countdown=2): when it was due and when it ran
    expires ran_at.apply_async(countdown=2, expires=1): the state it ends in
    retry   flaky.delay(): a task the Go worker retries three times
    chain   chain(add_ten.s(1), double.s(), add_ten.s()).get()
    fail    boom.delay("..."): the exception Python raises
    group   group(add.s(1, 1), add.s(2, 2)).get()
    timelimit sleepy.apply_async(time_limit=1, soft_time_limit=0.5): what Python raises
    links   a Go task's link (callback) and link_error (errback), both Python tasks
    chain_link_error  a Go task's link, a chain of Python tasks with an errback, whose second step fails
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from celery import chain, group  # noqa: E402
from celery.exceptions import TaskRevokedError  # noqa: E402

from interop.worker_pyapp import add, add_ten, boom, double, flaky, on_error, py_fail, ran_at, sleepy  # noqa: E402

TIMEOUT = float(os.environ.get("KOMBU_WORKER_CLIENT_TIMEOUT", "30"))


def now():
    return dt.datetime.now(dt.timezone.utc).timestamp()


def case_add():
    r = add.delay(2, 3)
    return {"id": r.id, "result": r.get(timeout=TIMEOUT), "state": r.state}


def case_eta():
    sent = now()
    r = ran_at.apply_async(countdown=2)
    due = sent + 2
    got = r.get(timeout=TIMEOUT)
    return {"id": r.id, "sent": sent, "due": due, "ran": got["ran"], "state": r.state}


def case_expires():
    r = ran_at.apply_async(countdown=2, expires=1)
    out = {"id": r.id}
    try:
        out["result"] = r.get(timeout=TIMEOUT)
    except TaskRevokedError as e:
        out["raised"] = type(e).__name__
        out["message"] = str(e)
    out["state"] = r.state
    # The document as stored, before Celery turns the exception back into a Python one.
    out["meta"] = json.loads(r.backend.client.get(r.backend.get_key_for_task(r.id)))
    out["ttl"] = r.backend.client.ttl(r.backend.get_key_for_task(r.id))
    return out


def case_retry():
    started = now()
    r = flaky.delay("x")
    got = r.get(timeout=TIMEOUT)
    return {"id": r.id, "result": got, "state": r.state, "elapsed": now() - started}


def case_chain():
    r = chain(add_ten.s(1), double.s(), add_ten.s()).apply_async()
    got = r.get(timeout=TIMEOUT)
    ids = []
    node = r
    while node is not None:
        ids.append(node.id)
        node = node.parent
    return {"result": got, "state": r.state, "ids": ids}


def case_fail():
    r = boom.delay("the Go task broke")
    out = {"id": r.id}
    try:
        r.get(timeout=TIMEOUT)
    except Exception as e:  # noqa: BLE001 - the point is what Celery raises
        out["raised"] = type(e).__name__
        out["module"] = type(e).__module__
        out["message"] = str(e)
    out["state"] = r.state
    out["traceback"] = r.traceback
    return out


def case_group():
    r = group(add.s(1, 1), add.s(2, 2), add.s(3, 3)).apply_async()
    return {"result": r.get(timeout=TIMEOUT), "ids": [c.id for c in r.results]}


def case_timelimit():
    started = now()
    r = sleepy.apply_async(time_limit=1, soft_time_limit=0.5)
    out = {"id": r.id}
    try:
        r.get(timeout=TIMEOUT)
    except Exception as e:  # noqa: BLE001 - the point is what Celery raises
        out["raised"] = type(e).__name__
        out["module"] = type(e).__module__
        out["args"] = list(e.args)
    out["elapsed"] = now() - started
    out["state"] = r.state
    return out


def case_links():
    from celery import uuid

    cb_id, eb_id = uuid(), uuid()
    ok = add.apply_async((2, 3), link=add_ten.s().set(task_id=cb_id))
    bad = boom.apply_async(("broken",), link_error=on_error.s().set(task_id=eb_id))
    callback = ok.app.AsyncResult(cb_id).get(timeout=TIMEOUT)
    errback = bad.app.AsyncResult(eb_id).get(timeout=TIMEOUT)
    ok.get(timeout=TIMEOUT)
    children = [c.id for c in ok.children or []]
    return {"ok_id": ok.id, "bad_id": bad.id, "callback": callback, "errback": errback,
            "callback_id": cb_id, "children": children}


def case_chain_link_error():
    from celery import uuid

    eb_id = uuid()
    # Celery applies a chain's link_error to each of its steps: the errback runs when the
    # second step fails, though the Go worker sends the chain.
    link = chain(add_ten.s(), py_fail.s()).on_error(on_error.s().set(task_id=eb_id))
    ok = add.apply_async((2, 3), link=link)
    ok.get(timeout=TIMEOUT)
    errback = ok.app.AsyncResult(eb_id).get(timeout=TIMEOUT)
    return {"ok_id": ok.id, "errback": errback}


if __name__ == "__main__":
    case = sys.argv[1]
    t0 = time.monotonic()
    result = globals()["case_" + case]()
    result["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(result, default=repr))
