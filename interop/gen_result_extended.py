#!/usr/bin/env python3
"""Generate celery/testdata/result_extended.json: the result documents Celery 5.7's own
backend code stores with result_extended=True, for the Go encoder's tests
(celery/result_extended_test.go).

Each case stores a state through the backend's store_result / mark_as_* methods, with a
request built as Celery's worker builds it (a Context of the message's request dict), a
request as on_unknown_task makes it, and a chain step's request as _fail_chain makes it.
The backend is Celery's KeyValueStoreBackend (whose _store_result the Redis backend uses)
over an in-memory dict, and the clock is pinned, so that a second run writes the same file.

    .cache/venv/bin/python interop/gen_result_extended.py
"""

import datetime
import json
import os
from collections import deque

from celery import Celery
from celery.app.task import Context
from celery.backends.base import KeyValueStoreBackend
from celery.utils.objects import Bunch

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc)


class MemoryBackend(KeyValueStoreBackend):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def mget(self, keys):
        return [self.data.get(k) for k in keys]

    def set(self, key, value):
        self.data[key] = value

    def delete(self, key):
        self.data.pop(key, None)


app = Celery("gen", set_as_current=False)
app.conf.result_extended = True
app.conf.result_serializer = "json"
app.now = lambda: NOW
backend = MemoryBackend(app=app)


def stored(task_id):
    raw = backend.get(backend.get_key_for_task(task_id))
    return raw.decode() if isinstance(raw, bytes) else raw


def worker_request(task_id, **extra):
    """A request as the worker's Request._context makes it for a received protocol 2 task."""
    d = {
        "lang": "py", "task": "proj.tasks.add", "id": task_id, "shadow": None, "eta": None,
        "expires": None, "group": None, "group_index": None, "retries": 2,
        "timelimit": [None, None], "root_id": task_id, "parent_id": None,
        "argsrepr": "", "kwargsrepr": "", "origin": "gen1@host", "ignore_result": False,
        "args": [2, 18446744073709551617, 0.1, "x"], "kwargs": {"z": {"a": [None, True]}, "b": 1.5},
        "hostname": "celery@host",
        "delivery_info": {"exchange": "", "routing_key": "tasks", "priority": 0, "redelivered": False},
    }
    d.update(extra)
    return Context(d)


def exc(message):
    return ValueError(message)


cases = []


def case(name, task_id, store):
    store()
    cases.append({"name": name, "task_id": task_id, "doc": stored(task_id)})


tid = "00000000-0000-4000-8000-000000000001"
case("success", tid, lambda: backend.mark_as_done(tid, {"sum": 5}, request=worker_request(tid)))

tid2 = "00000000-0000-4000-8000-000000000002"
case("started", tid2, lambda: backend.store_result(
    tid2, {"pid": 42, "hostname": "celery@host"}, "STARTED", request=worker_request(tid2)))

tid3 = "00000000-0000-4000-8000-000000000003"
case("retry", tid3, lambda: backend.mark_as_retry(
    tid3, exc("not yet"), "Traceback (most recent call last):\nRetry\n",
    request=worker_request(tid3, group="g-1", parent_id="p-1")))

tid4 = "00000000-0000-4000-8000-000000000004"
case("failure", tid4, lambda: backend.mark_as_failure(
    tid4, exc("broke"), "Traceback (most recent call last):\nValueError: broke\n",
    request=worker_request(tid4, retries=0, errbacks=None, chord=None, chain=None), call_errbacks=False))

tid5 = "00000000-0000-4000-8000-000000000005"
case("stamped", tid5, lambda: backend.mark_as_done(tid5, None, request=worker_request(
    # Celery builds stamps in stamped_headers order (amqp.as_task_v2); "extra" is not stamped.
    tid5, stamped_headers=["on", "flag", "missing"], stamps={"on": "v", "flag": [1, "a"], "extra": 3})))

tid6 = "00000000-0000-4000-8000-000000000006"


def unknown():
    # As Consumer.on_unknown_task.
    request = Bunch(name="proj.tasks.nope", chord=None, root_id=tid6, correlation_id=tid6,
                    reply_to="r", errbacks=None)
    from celery.exceptions import NotRegistered
    backend.mark_as_failure(tid6, NotRegistered("proj.tasks.nope"), request=request)


case("unknown", tid6, unknown)

tid7 = "00000000-0000-4000-8000-000000000007"


def chain_step():
    step = app.signature("proj.tasks.mul", args=(3, 0.5), kwargs={"k": "v"},
                         options={"task_id": tid7, "group_id": "g-7"})
    backend._fail_chain(deque([dict(step)]), exc("upstream"), "Traceback (most recent call last):\n")


case("chain_step", tid7, chain_step)

out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "celery", "testdata", "result_extended.json")
with open(out, "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} cases to {out}")
