"""Celery's argsrepr and kwargsrepr headers for task arguments given as JSON.

    python interop/argsrepr.py < cases.json

reads a JSON list of [args, kwargs] pairs, each the JSON text of the
arguments, decodes them with Kombu's JSON decoder (as a Celery worker would
see them), builds the task message with Celery's own client code
(app.amqp.as_task_v2, args as the tuple delay() gives) and prints the JSON
list of [argsrepr, kwargsrepr] it wrote. Used by celery/task_repr_test.go.
"""

from __future__ import annotations

import json
import sys

from celery import Celery
from kombu.utils.json import loads

app = Celery("argsrepr", set_as_current=False)

out = []
for args, kwargs in json.load(sys.stdin):
    msg = app.amqp.as_task_v2("00000000-0000-0000-0000-000000000000", "repr.task",
                              args=tuple(loads(args)), kwargs=loads(kwargs))
    out.append([msg.headers["argsrepr"], msg.headers["kwargsrepr"]])
json.dump(out, sys.stdout)
