"""The Celery worker of examples/go-to-celery.

    cd examples/go-to-celery && SQS_ENDPOINT=http://127.0.0.1:9324 \\
        python -m celery -A worker worker -Q example-go-to-celery --pool solo

The Go program starts it itself. Each task prints one line starting with
"RESULT " on stdout, which the Go program shows.
"""

import os
from urllib.parse import urlparse

from celery import Celery

endpoint = urlparse(os.environ.get("SQS_ENDPOINT", "http://127.0.0.1:9324"))

app = Celery("billing", broker=f"sqs://test:test@{endpoint.hostname}:{endpoint.port}")
app.conf.update(
    broker_transport_options={
        "region": "us-east-1",
        "is_secure": endpoint.scheme == "https",
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
    },
    broker_connection_retry_on_startup=True,
    task_default_queue=os.environ.get("QUEUE", "example-go-to-celery"),
    worker_redirect_stdouts=False,
    worker_hijack_root_logger=False,
)


@app.task(bind=True, name="billing.tasks.invoice")
def invoice(self, customer, amount, vat=0.2):
    total = round(amount * (1 + vat), 2)
    print(f"RESULT invoice({customer!r}, {amount!r}, vat={vat!r}) = {total} "
          f"[task {self.request.id}, retries {self.request.retries}]", flush=True)
    return total
