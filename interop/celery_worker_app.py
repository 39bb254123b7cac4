"""Celery app for the Go → Celery interop test.

celery/interop_worker_test.go starts a real worker on it:

    KOMBU_INTEROP_QUEUE=q KOMBU_INTEROP_OUT=/tmp/out.jsonl \\
        python -m celery -A interop.celery_worker_app worker -Q q --pool solo ...

Each task run appends one JSON line to $KOMBU_INTEROP_OUT describing what
the worker saw: task name, request id, args and kwargs (with their Python
type names), retries, eta, expires, custom headers and the time it ran.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading

from interop.sqs_app import elasticmq_app

QUEUE = os.environ.get("KOMBU_INTEROP_QUEUE", "celery")
OUT = os.environ.get("KOMBU_INTEROP_OUT", "")

app = elasticmq_app("interop", QUEUE, enable_utc=True, timezone="UTC")

_lock = threading.Lock()

# Request attributes that are Celery's own rather than custom headers.
_KNOWN = {
    "id", "task", "args", "kwargs", "retries", "eta", "expires", "lang", "shadow",
    "root_id", "parent_id", "group", "group_index", "timelimit", "argsrepr",
    "kwargsrepr", "origin", "ignore_result", "replaced_task_nesting", "stamped_headers",
    "stamps", "callbacks", "errbacks", "chain", "chord", "delivery_info", "reply_to",
    "correlation_id", "hostname", "is_eager", "headers", "called_directly", "utc",
    "loglevel", "logfile", "_children", "_protected", "properties", "taskset",
    "priority", "content_type", "content_encoding", "_fields", "time_limit",
    "soft_time_limit",
}


def _plain(v):
    """JSON-ready form of a value, datetimes in Kombu's typed form."""
    if isinstance(v, dt.datetime):
        return {"__type__": "datetime", "__value__": v.isoformat()}
    if isinstance(v, dt.date):
        return {"__type__": "date", "__value__": v.isoformat()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _types(v):
    if isinstance(v, dict):
        return {str(k): type(x).__name__ for k, x in v.items()}
    return [type(x).__name__ for x in v]


@app.task(bind=True, name="tasks.record")
def record(self, *args, **kwargs):
    r = self.request
    headers = {}
    for k, v in vars(r).items():
        if k not in _KNOWN and not k.startswith("_"):
            headers[k] = _plain(v)
    line = {
        "task": self.name,
        "id": r.id,
        "args": _plain(list(args)),
        "kwargs": _plain(kwargs),
        "arg_types": _types(args),
        "kwarg_types": _types(kwargs),
        "retries": r.retries,
        "eta": r.eta if r.eta is None or isinstance(r.eta, str) else r.eta.isoformat(),
        "expires": r.expires if r.expires is None or isinstance(r.expires, str) else r.expires.isoformat(),
        "headers": headers,
        "parent_id": r.parent_id,
        "root_id": r.root_id,
        "delivery_info": _plain(r.delivery_info or {}),
        "ran_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    if OUT:
        with _lock, open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, default=repr) + "\n")
    return len(args)
