"""Queues between two interpreters: ping-pong round trips and one-way
throughput of small items (ints).

Each side runs ``exec(script)`` in its own thread (a plain
``threading.Thread``, so the start cost is the same for every
implementation and tiny next to a sample).  The backport's queue is made
with ``syncobj=True`` (ints are shareable, so its fast path, no pickle);
its ``get()`` polls with a 10 ms sleep while the queue is empty, which is
what bounds its ping-pong.  The reference is ``queue.Queue`` between two
threads of one interpreter.
"""

import queue
import time

import _impls
from _harness import Group, Spec, case

PING = '''
for i in range(n):
    ping.put(i)
    pong.get(timeout=60)
'''

PONG = '''
for i in range(n):
    pong.put(ping.get(timeout=60))
'''

PRODUCE = '''
for i in range(n):
    q.put(i)
'''

CONSUME = '''
for i in range(n):
    q.get(timeout=60)
'''


class _TwoInterps:
    def _setup(self, a, b, make_queue):
        self.a, self.b = a, b
        ping, pong = make_queue(), make_queue()
        for interp in (a, b):
            interp.prepare_main(ping=ping, pong=pong, q=ping)

    def _run(self, n, first, second):
        self.a.prepare_main(n=n)
        self.b.prepare_main(n=n)
        t0 = time.perf_counter()
        _impls.run_in_threads([(self.b.exec, (second,)),
                               (self.a.exec, (first,))])
        return time.perf_counter() - t0

    def close(self):
        self.a.close()
        self.b.close()


@case('pingpong/ours', 'ours', 'subinterpreters: Queue ping-pong')
class PingPongOurs(_TwoInterps):
    def __init__(self):
        mod = _impls.ours()
        self._setup(mod.create(), mod.create(), mod.create_queue)

    def run(self, n):
        return self._run(n, PING, PONG)


@case('pingpong/backport', 'backport', 'backport: Queue ping-pong')
class PingPongBackport(_TwoInterps):
    def __init__(self):
        mod = _impls.BACKPORT_QUEUE_MODULE
        self._setup(_impls.backport_interp(mod), _impls.backport_interp(mod),
                    _impls.backport_queue)

    def run(self, n):
        return self._run(n, PING, PONG)


@case('oneway/ours', 'ours', 'subinterpreters: Queue put -> get')
class OneWayOurs(PingPongOurs):
    def run(self, n):
        return self._run(n, PRODUCE, CONSUME)


@case('oneway/backport', 'backport', 'backport: Queue put -> get')
class OneWayBackport(PingPongBackport):
    def run(self, n):
        return self._run(n, PRODUCE, CONSUME)


def _ping(n, ping, pong):
    for i in range(n):
        ping.put(i)
        pong.get(timeout=60)


def _pong(n, ping, pong):
    for i in range(n):
        pong.put(ping.get(timeout=60))


def _produce(n, q):
    for i in range(n):
        q.put(i)


def _consume(n, q):
    for i in range(n):
        q.get(timeout=60)


@case('pingpong/threads', 'base', 'threads: queue.Queue ping-pong')
class PingPongThreads:
    def __init__(self):
        self.ping, self.pong = queue.Queue(), queue.Queue()

    def run(self, n):
        t0 = time.perf_counter()
        _impls.run_in_threads([(_pong, (n, self.ping, self.pong)),
                               (_ping, (n, self.ping, self.pong))])
        return time.perf_counter() - t0

    def close(self):
        pass


@case('oneway/threads', 'base', 'threads: queue.Queue put -> get')
class OneWayThreads(PingPongThreads):
    def run(self, n):
        t0 = time.perf_counter()
        _impls.run_in_threads([(_consume, (n, self.ping)),
                               (_produce, (n, self.ping))])
        return time.perf_counter() - t0


def groups(quick):
    reps = 3 if quick else 7
    target = 0.1 if quick else 0.3
    return [
        Group('queue_pingpong', 'queue ping-pong between two interpreters '
              '(time per round trip)', [
                  Spec('ours', 'pingpong/ours'),
                  Spec('backport', 'pingpong/backport'),
                  Spec('threads', 'pingpong/threads'),
              ], repeats=reps, target=target, rate=True),
        Group('queue_oneway', 'one-way queue throughput, small items '
              '(time per item)', [
                  Spec('ours', 'oneway/ours'),
                  Spec('backport', 'oneway/backport'),
                  Spec('threads', 'oneway/threads'),
              ], repeats=reps, target=target, rate=True),
    ]
