"""The SQS bodies Celery's send_task writes for given options.

    python interop/send_task_cases.py < cases.json

reads a JSON list of cases, each {"protocol": 1 or 2, "args": [...], "kwargs": {...},
"options": {...}}, calls app.send_task("proj.tasks.remote", tuple(args), kwargs, **options) for
each with Celery's own client code (a task name the client has not registered, as a Go
service sends it), and prints the JSON list of the SQS message bodies Kombu's SQS transport
would send. Option values and arguments written {"__datetime__": "<isoformat>"} become
datetimes and {"__float__": "inf"} floats. The task id, reply_to, origin and clock are those pinned by
gen_golden.py (task_id is option "task_id" when given, else gen_golden's task_id(1)).
Used by celery/task_options_test.go.
"""

import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen_golden  # noqa: E402  (pins the clock, origin and delivery tags; records sends)


def option(value):
    if isinstance(value, dict) and '__datetime__' in value:
        return datetime.datetime.fromisoformat(value['__datetime__'])
    if isinstance(value, dict) and '__float__' in value:
        return float(value['__float__'])
    if isinstance(value, list):
        return [option(v) for v in value]
    return value


def main():
    apps = {}
    out = []
    for case in json.load(sys.stdin):
        protocol = case.get('protocol', 2)
        if protocol not in apps:
            apps[protocol] = gen_golden.make_app(protocol=protocol)[0]
        options = {k: option(v) for k, v in case.get('options', {}).items()}
        options.setdefault('task_id', gen_golden.task_id(1))
        options.setdefault('reply_to', gen_golden.REPLY_TO)
        # Positional arguments as the tuple that delay() and apply_async((...)) give.
        args = tuple(option(a) for a in case.get('args') or ())
        kwargs = case.get('kwargs')
        if kwargs is not None:
            kwargs = {k: option(v) for k, v in kwargs.items()}
        apps[protocol].send_task('proj.tasks.remote', args, kwargs, **options)
        out.append(gen_golden.last_sent()['MessageBody'])
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
