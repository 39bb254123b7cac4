#!/usr/bin/env python3
"""Generate the golden Kombu SQS vectors in testdata/golden.

Each vector is a message body exactly as Kombu's SQS transport hands it to
SendMessage (``<name>.sqs``), and a description of what it decodes to
(``<name>.json``), worked out by Kombu and Celery themselves: the body is
passed back through the transport's own receive path and Celery's worker
strategy, so the Go tests check against the Python implementation rather than
against a re-statement of it.

No broker is needed: the transport's boto3 client is replaced by a recorder
that keeps the SendMessage parameters and pretends every queue exists.

Usage (in a throwaway virtualenv):

    make venv
    .cache/venv/bin/python interop/gen_golden.py

The other way round, bodies written by the Go side are read back as a worker would
(the Go test TestKombuReadsGoBodies does this in every test run):

    .cache/venv/bin/python interop/gen_golden.py --check-go DIR

The task ids, delivery tags, reply_to, origin and clock are pinned so that a
second run writes byte-identical files.
"""

import base64
import datetime
import itertools
import json
import os
import sys
import uuid

import celery
import celery.app.amqp
import kombu
from celery import Celery
from celery.worker.strategy import hybrid_to_proto2, proto1_to_proto2
from kombu import Connection, Producer
from kombu.transport import SQS as sqs_transport

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'testdata', 'golden')
ACCOUNT_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/'
FIXED_NOW = datetime.datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=datetime.timezone.utc)
REPLY_TO = '7d1c3a0e-5b7f-3c55-9d0c-2a1f0e9b8c41'
ORIGIN = 'gen4242@golden-host'


class RecordingSQS:
    """Stands in for the boto3 SQS client: every queue exists, sends are kept."""

    def __init__(self):
        self.sent = []

    def list_queues(self, QueueNamePrefix=''):
        if not QueueNamePrefix:
            return {'QueueUrls': []}
        return {'QueueUrls': [ACCOUNT_URL + QueueNamePrefix]}

    def get_queue_attributes(self, QueueUrl, AttributeNames=()):
        return {'Attributes': {'ApproximateNumberOfMessages': '0'}}

    def create_queue(self, QueueName, Attributes=None, **kwargs):
        return {'QueueUrl': ACCOUNT_URL + QueueName}

    def send_message(self, **params):
        self.sent.append(params)
        return {'MessageId': str(uuid.uuid4())}


RECORDER = RecordingSQS()
sqs_transport.Channel.sqs = lambda self, queue=None: RECORDER

_tags = itertools.count(1)


def _pinned_uuid(prefix):
    n = next(_tags)
    return str(uuid.UUID(f'{prefix}{n:012x}'.rjust(32, '0')[-32:], version=4))


sqs_transport.Channel._next_delivery_tag = lambda self: _pinned_uuid('d0')
celery.app.amqp.anon_nodename = lambda *a, **kw: ORIGIN


def task_id(n):
    return str(uuid.UUID(f'{n:032x}', version=4))


def last_sent():
    return RECORDER.sent[-1]


def make_app(protocol=2, transport_options=None):
    app = Celery('proj', broker='sqs://', set_as_current=False)
    app.conf.task_protocol = protocol
    app.conf.broker_transport_options = transport_options or {}
    app.now = lambda: FIXED_NOW

    @app.task(name='proj.tasks.add')
    def add(x, y):
        return x + y

    @app.task(name='proj.tasks.process')
    def process(*args, **kwargs):
        return None

    return app, add, process


def kombu_decode(body, queue, transport_options=None):
    """Run a SQS body through the transport's receive path, as the worker does."""
    receipt = 'AQEB' + base64.b64encode(f'receipt-{queue}'.encode()).decode()
    sqs_message = {
        'MessageId': '11111111-2222-4333-8444-555555555555',
        'ReceiptHandle': receipt,
        'Body': body,
        'Attributes': {'ApproximateReceiveCount': '1'},
    }
    with Connection('sqs://', transport_options=transport_options or {}) as conn:
        chan = conn.default_channel
        payload = chan._message_to_python(sqs_message, queue, ACCOUNT_URL + queue)
        message = chan.Message(payload, channel=chan)
        return sqs_message, payload, message


def plain(value):
    """Make a Kombu/Celery structure JSON-serialisable for the description."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return {'__bytes_base64__': base64.b64encode(value).decode()}
    if isinstance(value, (datetime.datetime, datetime.date)):
        return {'__isoformat__': value.isoformat()}
    return value


def describe(name, description, queue, transport_options=None, error=None):
    sent = last_sent()
    body = sent['MessageBody']
    sqs_message, payload, message = kombu_decode(body, queue, transport_options)
    props = dict(message.properties)
    info = dict(props.get('delivery_info') or {})
    info.pop('sqs_message', None)
    info.pop('sqs_queue', None)
    props['delivery_info'] = info
    raw = 'content-type' not in payload and 'headers' not in payload

    try:
        envelope = json.loads(base64.b64decode(body, validate=True))
        outer_base64 = True
    except Exception:
        envelope = json.loads(body) if body.lstrip().startswith('{') else None
        outer_base64 = False
    if not isinstance(envelope, dict) or 'properties' not in envelope:
        envelope = None

    desc = {
        'name': name,
        'description': description,
        'kombu_version': kombu.__version__,
        'celery_version': celery.__version__,
        'queue': queue,
        'sqs_message': {k: sqs_message[k] for k in ('MessageId', 'ReceiptHandle')},
        'send_params': {k: v for k, v in sent.items() if k not in ('QueueUrl', 'MessageBody')},
        'outer_base64': outer_base64,
        'raw': raw,
        'envelope': envelope,
        'envelope_keys': list(envelope) if envelope else None,
        'properties_keys': list(envelope['properties']) if envelope else None,
        'headers_keys': list(envelope['headers']) if envelope else None,
        'content_type': message.content_type,
        'content_encoding': message.content_encoding,
        'headers': plain(message.headers),
        'properties': plain(props),
        'payload_base64': base64.b64encode(message.body if isinstance(message.body, bytes)
                                           else message.body.encode()).decode(),
    }
    try:
        desc['payload_text'] = (message.body if isinstance(message.body, str)
                                else message.body.decode('utf-8'))
    except UnicodeDecodeError:
        desc['payload_text'] = None
    if error:
        desc['error'] = error
    elif message.content_type == 'application/json':
        # The JSON value as plain JSON: Kombu's typed values stay {"__type__", "__value__"}.
        desc['decoded'] = json.loads(message.body)
        # Arguments are compared in their wire form (Kombu's typed values undecoded), which is
        # what Go sees; decoding them is the task's business.
        decoded = desc['decoded']
        task = None
        if message.headers.get('task'):
            args, kwargs, embed = decoded
            task = {'protocol': 2, 'headers': plain(message.headers),
                    'args': plain(args), 'kwargs': plain(kwargs), 'embed': plain(embed)}
        elif isinstance(decoded, dict) and 'task' in decoded:
            # As the worker's strategy does: a body dict with args is converted as a
            # hybrid message (the usual case for protocol 1), otherwise as protocol 1.
            convert = hybrid_to_proto2 if 'args' in decoded else proto1_to_proto2
            (args, kwargs, embed), headers, _, utc = convert(message, dict(decoded))
            task = {'protocol': 1, 'headers': plain(headers), 'args': plain(args),
                    'kwargs': plain(kwargs), 'embed': plain(embed), 'utc': utc}
        if task:
            task['correlation_id'] = props.get('correlation_id')
            task['reply_to'] = props.get('reply_to')
            desc['task'] = task

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + '.sqs'), 'w', encoding='utf-8', newline='') as f:
        f.write(body)
    with open(os.path.join(OUT, name + '.json'), 'w', encoding='utf-8', newline='\n') as f:
        json.dump(desc, f, indent=2, ensure_ascii=False)
        f.write('\n')
    print(f'{name}: {len(body)} bytes')


def send_raw(body):
    """A body that no Kombu producer wrote, e.g. from another SQS client."""
    RECORDER.sent.append({'QueueUrl': ACCOUNT_URL + 'q1', 'MessageBody': body})


def main():
    app, add, process = make_app()
    add.apply_async((2, 3), task_id=task_id(1), reply_to=REPLY_TO)
    describe('celery_v2_add', 'add.delay(2, 3): Celery task protocol 2, default queue', 'celery')

    process.apply_async(
        args=['héllo wörld ✓ 日本語', None, 1.5, -2.25e-10, 12345678901234567890, True,
              [1, [2, [3, {'deep': [None]}]]]],
        kwargs={'text': 'ünïcödé \u2028 "quoted" <tag> & \\back', 'none': None,
                'float': 3.141592653589793, 'int': -7, 'nested': {'a': [1, 2.5, {'b': None}], 'c': {}},
                'when': datetime.datetime(2024, 2, 29, 12, 30, 45, 123456, tzinfo=datetime.timezone.utc),
                'day': datetime.date(2024, 2, 29), 'empty': [], 'emoji': '😀'},
        task_id=task_id(2), reply_to=REPLY_TO)
    describe('celery_v2_kwargs', 'Protocol 2 with unicode, None, floats, big ints, nested values and '
             'datetimes (Kombu-typed) in args and kwargs', 'celery')

    add.apply_async((4, 5), countdown=10, task_id=task_id(3), reply_to=REPLY_TO)
    describe('celery_v2_countdown', 'apply_async(countdown=10): eta = now + 10 s', 'celery')

    add.apply_async((6, 7), eta=datetime.datetime(2025, 3, 15, 8, 0, tzinfo=datetime.timezone.utc),
                    expires=datetime.datetime(2025, 3, 16, 8, 0, 0, 250000, tzinfo=datetime.timezone.utc),
                    task_id=task_id(4), reply_to=REPLY_TO)
    describe('celery_v2_eta_expires', 'apply_async with eta and expires datetimes', 'celery')

    add.apply_async((1, 1), task_id=task_id(5), reply_to=REPLY_TO, expires=60,
                    time_limit=30, soft_time_limit=20.5, ignore_result=True, shadow='alias.add',
                    headers={'x-custom': 'value', 'x-number': 7}, priority=5, retries=3,
                    root_id=task_id(50), parent_id=task_id(51), group_id=task_id(52), group_index=1)
    describe('celery_v2_options', 'Protocol 2 with time limits, ignore_result, shadow, custom headers, '
             'priority, retries, root/parent/group ids and relative expires', 'celery')

    add.apply_async((8, 9), task_id=task_id(6), reply_to=REPLY_TO, queue='tasks.fifo',
                    MessageGroupId='group-1', MessageDeduplicationId='dedup-1')
    describe('celery_v2_fifo', 'Protocol 2 to a FIFO queue with MessageGroupId and '
             'MessageDeduplicationId, which Kombu keeps in the properties too', 'tasks.fifo')

    add.apply_async((1, 2), task_id=task_id(7), reply_to=REPLY_TO,
                    link=add.si(10, 20).set(task_id=task_id(70)),
                    link_error=add.si(0, 0).set(task_id=task_id(71)))
    describe('celery_v2_callbacks', 'Protocol 2 with a link and a link_error signature', 'celery')

    app1, add1, process1 = make_app(protocol=1)
    add1.apply_async((2, 3), task_id=task_id(8), reply_to=REPLY_TO)
    describe('celery_v1_add', 'add.apply_async((2, 3)) with task_protocol=1', 'celery')

    add1.apply_async((2, 3), task_id=task_id(9), reply_to=REPLY_TO, countdown=30, expires=120)
    describe('celery_v1_eta_expires', 'Protocol 1 with countdown and expires: naive isoformat, utc true',
             'celery')

    with Connection('sqs://') as conn:
        producer = Producer(conn)
        producer.publish({'hello': 'world'}, routing_key='q1')
        describe('kombu_plain', "Producer.publish({'hello': 'world'}, routing_key='q1')", 'q1')

        producer.publish('hello text ✓', routing_key='q1')
        describe('kombu_text_plain', 'A str body without serializer: text/plain', 'q1')

        producer.publish(b'\x00\x01\xfe\xffbinary', routing_key='q1')
        describe('kombu_binary', 'A bytes body without serializer: application/data, binary', 'q1')

        producer.publish({'compressed': 'yes', 'pad': 'x' * 64}, routing_key='q1', compression='gzip')
        describe('kombu_gzip', "compression='gzip' (Kombu's application/x-gzip is zlib data)", 'q1')

        producer.publish({'compressed': 'bz2'}, routing_key='q1', compression='bzip2')
        describe('kombu_bzip2', "compression='bzip2': application/x-bz2", 'q1')

        producer.publish({'pickled': True}, routing_key='q1', serializer='pickle')
        describe('kombu_pickle', 'serializer=pickle: application/x-python-serialize', 'q1',
                 error='unsupported_content_type')

        producer.publish({'hello': 'world'}, routing_key='q1', headers={'h1': 'v', 'h2': [1, 'x'], 'h3': None},
                         correlation_id='corr-1', reply_to='reply-q', priority=3, delivery_mode=1)
        describe('kombu_headers_properties', 'Producer.publish with headers, correlation_id, reply_to, '
                 'priority and delivery_mode', 'q1')

    raw_opts = {'sqs_base64_encoding': False}
    with Connection('sqs://', transport_options=raw_opts) as conn:
        Producer(conn).publish({'hello': 'raw'}, routing_key='q1')
        describe('kombu_raw_json_envelope', 'sqs_base64_encoding=False: the envelope JSON is the SQS body',
                 'q1', raw_opts)

    utf8_opts = {'body_encoding': 'utf-8'}
    with Connection('sqs://', transport_options=utf8_opts) as conn:
        Producer(conn).publish({'hello': 'utf-8 ✓'}, routing_key='q1')
        describe('kombu_body_encoding_utf8', "body_encoding='utf-8': the inner body is not base64", 'q1',
                 utf8_opts)

    null_opts = {'body_encoding': None}
    with Connection('sqs://', transport_options=null_opts) as conn:
        Producer(conn).publish({'hello': 'null'}, routing_key='q1')
        describe('kombu_body_encoding_null', 'body_encoding=None: body_encoding is null and the inner body '
                 'is not base64', 'q1', null_opts)

    app2, add2, _ = make_app(transport_options=raw_opts)
    add2.apply_async((2, 3), task_id=task_id(10), reply_to=REPLY_TO)
    describe('celery_v2_raw_json_envelope', 'add.delay(2, 3) with sqs_base64_encoding=False', 'celery', raw_opts)

    send_raw('hello from another client')
    describe('raw_text', 'A plain text body no Kombu producer wrote', 'q1')

    send_raw('{"event": "created", "id": 42}')
    describe('raw_json_object', 'A JSON object without properties: passed through as is', 'q1')

    send_raw('aGVsbG8=')
    describe('raw_base64_text', 'Plain text that happens to be valid base64 is decoded anyway', 'q1')

    send_raw(base64.b64encode(b'[1, 2, 3]').decode())
    describe('raw_base64_json_array', 'Base64 of a JSON array: not an envelope', 'q1')


def check_go(directory):
    """Read SQS bodies written by the Go test TestKombuReadsGoBodies as a Celery worker would."""
    from celery.worker.request import Request

    app, add, _ = make_app()

    @app.task(name='proj.tasks.quiet', ignore_result=True)
    def quiet():
        return None

    names = sorted(f for f in os.listdir(directory) if f.endswith('.sqs'))
    if not names:
        raise SystemExit(f'no .sqs files in {directory}')
    for name in names:
        with open(os.path.join(directory, name), encoding='utf-8') as f:
            body = f.read()
        _, payload, message = kombu_decode(body, 'celery')
        decoded = message.decode()
        if message.headers.get('task'):
            args, kwargs, _ = decoded
            opts = {}
        else:
            (args, kwargs, _), headers, _, utc = hybrid_to_proto2(message, decoded)
            opts = dict(body=(args, kwargs, {}), headers=headers, decoded=True, utc=utc)
        req = Request(message, app=app, task=add, **opts)
        # A task sent without ignore_result follows the worker's declaration of the task.
        if '_links' not in name:
            assert Request(message, app=app, task=quiet, **opts).ignore_result is True, name
        # A shadow name replaces the task name in the request.
        expected = 'shadowed' if '_links' in name else 'proj.tasks.add'
        assert req.name == expected and req.id == message.properties['correlation_id'], name
        assert add(*args) == 5, name
        assert isinstance(kwargs['when'], datetime.datetime), name
        if '_links' in name:  # written WithParent("p-1", "r-1"), WithShadow, WithIgnoreResult
            assert (req.parent_id, req.root_id) == ('p-1', 'r-1'), (name, req.parent_id, req.root_id)
            assert req.ignore_result is True, name
        print(f'{name}: task {req.id} eta={req.eta} expires={req.expires} '
              f'time_limits={req.time_limits} reply_to={req.reply_to}: ok')


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--check-go':
        sys.exit(check_go(sys.argv[2]))
    sys.exit(main())
