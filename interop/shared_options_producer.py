"""Sends one Celery task with the transport options of a JSON file.

The Go test options_interop_test.go reads the same file with
kombu.ParseTransportOptionsJSON and consumes the task:

    python interop/shared_options_producer.py BROKER_URL OPTIONS_JSON QUEUE PREFIX

The prefix given on the command line replaces the file's queue_name_prefix,
so that each run uses fresh queues. Prints the task id.
"""

import json
import sys

from celery import Celery


def main() -> None:
    broker_url, options_path, queue, prefix = sys.argv[1:5]
    with open(options_path) as f:
        options = json.load(f)
    # JSON object keys are strings; Kombu's backoff policy is keyed by int.
    options["backoff_policy"] = {int(k): v for k, v in options.get("backoff_policy", {}).items()}
    options["queue_name_prefix"] = prefix
    app = Celery("shared_options", broker=broker_url)
    app.conf.broker_transport_options = options
    app.conf.broker_connection_retry_on_startup = True
    result = app.send_task("proj.tasks.flaky", args=(7,), kwargs={"why": "shared options"}, queue=queue)
    print(result.id)


if __name__ == "__main__":
    main()
