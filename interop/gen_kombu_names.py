#!/usr/bin/env python3
"""Record how Kombu's SQS transport turns queue names into SQS queue names.

For every (queue_name_prefix, queue name) pair below, a real SQS Channel of
the pinned Kombu (interop/requirements.txt) is asked for its own answer:

* ``entity``: ``Channel.entity_name(name)``, the name without the prefix;
* ``canonical``: ``Channel.canonical_queue_name(name)``, the SQS queue name
  Kombu uses, with the channel's ``queue_name_prefix``;
* ``name_fifo`` / ``canonical_fifo``: whether the Kombu name and the SQS name
  end in ``.fifo`` (Kombu picks FIFO behaviour from the name's suffix).

The channels are built with a predefined queue, so constructing them makes
no AWS call and needs no broker. The result is written to
testdata/kombu_names.json (or to stdout with ``-``), which naming_test.go
reads; TestKombuNamesFileIsCurrent runs this script again and compares.

Usage:  .cache/venv/bin/python interop/gen_kombu_names.py [OUTPUT|-]
"""

import json
import os
import string
import sys

import kombu
from kombu import Connection

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'testdata', 'kombu_names.json')

# Queue names: Celery's own, separators people use, every ASCII punctuation
# character alone and inside a name, white space, non-ASCII letters and
# symbols, and every way a ".fifo" suffix can appear.
NAMES = [
    'celery',
    'default',
    'celery.pidbox',
    'celeryev.8b4a7f2e-3d1c-4a8e-9f1b-2c3d4e5f6a7b',
    'worker1@example.com.celery.pidbox',
    'reply.celery.pidbox',
    'a.b:c@d.fifo',
    'my.queue',
    'my-queue',
    'my_queue',
    'MixedCase.Queue',
    'tasks:high',
    'tasks/low',
    'proj.tasks.add',
    'a..b',
    '.leading.dot',
    'trailing.dot.',
    'with space',
    ' ',
    'tab\there',
    'new\nline',
    'x' * 80,
    'x' * 81,
    '',
    # FIFO suffixes
    'queue.fifo',
    'queue.fifo.fifo',
    'queue.FIFO',
    'queue-fifo',
    'queue_fifo',
    'queuefifo',
    '.fifo',
    'fifo',
    'a.b.c.fifo',
    'a:b.fifo',
    'q.fifo ',
    'q.fif',
    'fo',
    'ifo',
    # non-ASCII
    'café',
    'очередь.задачи',
    '队列.任务',
    'emoji🎉.queue',
    'ﬁ.ligature',
    'full\uff0ewidth',
    'nbsp\u00a0space',
    'en\u2013dash',
    'e\u0301combining',
]
# Every ASCII punctuation character, alone and between letters.
NAMES += list(string.punctuation)
NAMES += ['a' + c + 'b' for c in string.punctuation]
NAMES += ['a' + c + 'b.fifo' for c in string.punctuation]

PREFIXES = [
    '',
    'dev-',
    'dev.',
    'dev:',
    'prod_',
    'team.app.',
    'a b ',
    'x.fi',  # with 'fo' the prefixed name ends in '.fifo'
    'p.fifo.',
    'préfixe.',
]


def channel(prefix):
    conn = Connection('sqs://', transport_options={
        'region': 'us-east-1',
        'queue_name_prefix': prefix,
        # With predefined queues the channel does not list queues on start.
        'predefined_queues': {'unused': {'url': 'https://sqs.us-east-1.amazonaws.com/123456789012/unused'}},
    })
    return conn, conn.default_channel


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    cases = []
    for prefix in PREFIXES:
        conn, chan = channel(prefix)
        try:
            assert chan.queue_name_prefix == prefix
            names = NAMES if prefix == '' else [n for n in NAMES if n.isascii()][:60] + ['fo', 'café', 'q.fifo']
            for name in dict.fromkeys(names):
                canonical = chan.canonical_queue_name(name)
                cases.append({
                    'prefix': prefix,
                    'name': name,
                    'entity': chan.entity_name(name),
                    'canonical': canonical,
                    'name_fifo': name.endswith('.fifo'),
                    'canonical_fifo': canonical.endswith('.fifo'),
                })
        finally:
            conn.release()
    doc = {
        'generator': 'interop/gen_kombu_names.py',
        'kombu_version': kombu.__version__,
        'cases': cases,
    }
    text = json.dumps(doc, ensure_ascii=False, indent=1) + '\n'
    if out == '-':
        sys.stdout.write(text)
    else:
        with open(out, 'w', encoding='utf-8') as f:
            f.write(text)


if __name__ == '__main__':
    main()
