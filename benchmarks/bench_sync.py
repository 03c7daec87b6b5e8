"""subinterpreters.sync and SharedDict against what a program would use
without them: threading's primitives between threads of one interpreter,
a dict behind a threading.Lock, and multiprocessing.Manager().dict().

* ``sync_lock``: uncontended ``Lock.acquire()`` + ``release()`` in one
  thread, ``sync.Lock`` vs ``threading.Lock``.
* ``event_pingpong``: round trips of two Events between two sides, each
  side waiting for the other's ``set()`` and clearing it (two set() ->
  wake-up latencies per round trip).  Ours: two subinterpreters, each
  running ``exec(script)`` in its own thread (as bench_queues.py), with
  two ``sync.Event`` objects.  Reference: ``threading.Event`` between two
  threads of one interpreter.
* ``shdict_get`` / ``shdict_set``: ``d['key']`` and ``d['key'] = i`` with
  a small int value, in one thread: a SharedDict vs a dict whose every
  access takes a ``threading.Lock`` (what sharing a dict between threads
  needs), a ``multiprocessing.Manager().dict()`` proxy (what sharing a
  dict between processes needs), and a plain dict (no sharing at all, for
  scale).
* ``shdict_incr``: ``incr('n')`` from two subinterpreters at once (one
  thread each, half of the operations each), vs ``with lock: d['n'] += 1``
  from two threads of one interpreter; time per increment and aggregate
  increments per second.  Also ``incr()`` from one thread alone.

The backport has no synchronization primitives nor a shared dict: no
backport rows here.
"""

import itertools
import threading
import time

import _impls
from _harness import Group, Spec, case

perf_counter = time.perf_counter


# --- uncontended Lock acquire + release ------------------------------------

def _lock_loop(lock, n):
    acquire, release = lock.acquire, lock.release
    t0 = perf_counter()
    for _ in itertools.repeat(None, n):
        acquire()
        release()
    return perf_counter() - t0


@case('lock/ours', 'ours', 'subinterpreters.sync.Lock acquire+release')
class LockOurs:
    def __init__(self):
        from subinterpreters import sync
        self.lock = sync.Lock()

    def run(self, n):
        return _lock_loop(self.lock, n)

    def close(self):
        pass


@case('lock/threads', 'base', 'threading.Lock acquire+release')
class LockThreads(LockOurs):
    def __init__(self):
        self.lock = threading.Lock()


# --- Event ping-pong --------------------------------------------------------

PING = '''
for i in range(n):
    ping.set()
    if not pong.wait(60):
        raise RuntimeError('no pong in 60 s')
    pong.clear()
'''

PONG = '''
for i in range(n):
    if not ping.wait(60):
        raise RuntimeError('no ping in 60 s')
    ping.clear()
    pong.set()
'''


@case('event/ours', 'ours',
      'subinterpreters: sync.Event ping-pong, two interpreters')
class EventPingPongOurs:
    def __init__(self):
        mod = _impls.ours()
        from subinterpreters import sync
        self.a, self.b = mod.create(), mod.create()
        ping, pong = sync.Event(), sync.Event()
        for interp in (self.a, self.b):
            interp.prepare_main(ping=ping, pong=pong)

    def run(self, n):
        self.a.prepare_main(n=n)
        self.b.prepare_main(n=n)
        t0 = perf_counter()
        _impls.run_in_threads([(self.b.exec, (PONG,)),
                               (self.a.exec, (PING,))])
        return perf_counter() - t0

    def close(self):
        self.a.close()
        self.b.close()


def _ping(n, ping, pong):
    for i in range(n):
        ping.set()
        if not pong.wait(60):
            raise RuntimeError('no pong in 60 s')
        pong.clear()


def _pong(n, ping, pong):
    for i in range(n):
        if not ping.wait(60):
            raise RuntimeError('no ping in 60 s')
        ping.clear()
        pong.set()


@case('event/threads', 'base', 'threading.Event ping-pong, two threads')
class EventPingPongThreads:
    def __init__(self):
        self.ping, self.pong = threading.Event(), threading.Event()

    def run(self, n):
        t0 = perf_counter()
        _impls.run_in_threads([(_pong, (n, self.ping, self.pong)),
                               (_ping, (n, self.ping, self.pong))])
        return perf_counter() - t0

    def close(self):
        pass


# --- SharedDict get / set ---------------------------------------------------

KEY = 'key'
VALUE = 12345


def _get_loop(d, n):
    t0 = perf_counter()
    for _ in itertools.repeat(None, n):
        d[KEY]
    return perf_counter() - t0


def _set_loop(d, n):
    t0 = perf_counter()
    for i in range(n):
        d[KEY] = i
    return perf_counter() - t0


def _locked_get_loop(d, lock, n):
    t0 = perf_counter()
    for _ in itertools.repeat(None, n):
        with lock:
            d[KEY]
    return perf_counter() - t0


def _locked_set_loop(d, lock, n):
    t0 = perf_counter()
    for i in range(n):
        with lock:
            d[KEY] = i
    return perf_counter() - t0


@case('shdict_get/ours', 'ours', "SharedDict: d['key'] (small int)")
class ShDictGetOurs:
    def __init__(self):
        self.d = _impls.ours().SharedDict({KEY: VALUE})

    def run(self, n):
        elapsed = _get_loop(self.d, n)
        assert self.d[KEY] == VALUE
        return elapsed

    def close(self):
        pass


@case('shdict_set/ours', 'ours', "SharedDict: d['key'] = i")
class ShDictSetOurs(ShDictGetOurs):
    def run(self, n):
        elapsed = _set_loop(self.d, n)
        assert self.d[KEY] == n - 1
        return elapsed


@case('shdict_get/locked', 'base',
      "dict + threading.Lock: with lock: d['key']")
class DictGetLocked:
    def __init__(self):
        self.d = {KEY: VALUE}
        self.lock = threading.Lock()

    def run(self, n):
        return _locked_get_loop(self.d, self.lock, n)

    def close(self):
        pass


@case('shdict_set/locked', 'base',
      "dict + threading.Lock: with lock: d['key'] = i")
class DictSetLocked(DictGetLocked):
    def run(self, n):
        return _locked_set_loop(self.d, self.lock, n)


@case('shdict_get/dict', 'base', "plain dict, not shared: d['key']")
class DictGetPlain(DictGetLocked):
    def run(self, n):
        return _get_loop(self.d, n)


@case('shdict_set/dict', 'base', "plain dict, not shared: d['key'] = i")
class DictSetPlain(DictGetLocked):
    def run(self, n):
        return _set_loop(self.d, n)


@case('shdict_get/manager', 'base',
      "multiprocessing.Manager().dict(): d['key']")
class DictGetManager:
    def __init__(self):
        import multiprocessing
        self.manager = multiprocessing.Manager()
        self.d = self.manager.dict({KEY: VALUE})

    def run(self, n):
        return _get_loop(self.d, n)

    def close(self):
        self.manager.shutdown()


@case('shdict_set/manager', 'base',
      "multiprocessing.Manager().dict(): d['key'] = i")
class DictSetManager(DictGetManager):
    def run(self, n):
        return _set_loop(self.d, n)


# --- contended incr() -------------------------------------------------------

INCR = '''
for i in range(n):
    d.incr('n')
'''


@case('incr/ours', 'ours',
      "SharedDict.incr('n') from 2 interpreters at once")
class IncrOurs:
    def __init__(self):
        mod = _impls.ours()
        self.d = mod.SharedDict()
        self.a, self.b = mod.create(), mod.create()
        for interp in (self.a, self.b):
            interp.prepare_main(d=self.d)

    def run(self, n):
        self.d['n'] = 0
        self.a.prepare_main(n=n // 2)
        self.b.prepare_main(n=n - n // 2)
        t0 = perf_counter()
        _impls.run_in_threads([(self.a.exec, (INCR,)),
                               (self.b.exec, (INCR,))])
        elapsed = perf_counter() - t0
        assert self.d['n'] == n, (self.d['n'], n)
        return elapsed

    def close(self):
        self.a.close()
        self.b.close()


@case('incr/ours_single', 'ours', "SharedDict.incr('n') from one thread")
class IncrOursSingle:
    def __init__(self):
        self.d = _impls.ours().SharedDict()

    def run(self, n):
        incr = self.d.incr
        t0 = perf_counter()
        for _ in itertools.repeat(None, n):
            incr('n')
        return perf_counter() - t0

    def close(self):
        pass


def _locked_incr(d, lock, n):
    for _ in itertools.repeat(None, n):
        with lock:
            d['n'] += 1


@case('incr/threads', 'base',
      "dict + threading.Lock: with lock: d['n'] += 1, from 2 threads")
class IncrThreads:
    def __init__(self):
        self.d = {'n': 0}
        self.lock = threading.Lock()

    def run(self, n):
        self.d['n'] = 0
        t0 = perf_counter()
        _impls.run_in_threads([(_locked_incr, (self.d, self.lock, n // 2)),
                               (_locked_incr, (self.d, self.lock,
                                               n - n // 2))])
        elapsed = perf_counter() - t0
        assert self.d['n'] == n
        return elapsed

    def close(self):
        pass


def groups(quick):
    reps = 3 if quick else 7
    target = 0.1 if quick else 0.3
    return [
        Group('sync_lock', 'uncontended Lock acquire()+release() (time per '
              'pair)', [
                  Spec('ours', 'lock/ours'),
                  Spec('threads', 'lock/threads'),
              ], repeats=reps, target=target),
        Group('event_pingpong', 'Event ping-pong: set() -> wake-up, two '
              'per round trip (time per round trip)', [
                  Spec('ours', 'event/ours'),
                  Spec('threads', 'event/threads'),
              ], repeats=reps, target=target, rate=True),
        Group('shdict_get', "shared dict read, d['key'] with a small int "
              '(time per get)', [
                  Spec('ours', 'shdict_get/ours'),
                  Spec('locked', 'shdict_get/locked'),
                  Spec('manager', 'shdict_get/manager'),
                  Spec('dict', 'shdict_get/dict'),
              ], repeats=reps, target=target, rate=True),
        Group('shdict_set', "shared dict write, d['key'] = i (time per set)",
              [
                  Spec('ours', 'shdict_set/ours'),
                  Spec('locked', 'shdict_set/locked'),
                  Spec('manager', 'shdict_set/manager'),
                  Spec('dict', 'shdict_set/dict'),
              ], repeats=reps, target=target, rate=True),
        Group('shdict_incr', 'contended counter: increments from two '
              'interpreters / threads at once (time per increment)', [
                  Spec('ours', 'incr/ours'),
                  Spec('threads', 'incr/threads'),
                  Spec('ours_single', 'incr/ours_single'),
              ], repeats=reps, target=target, rate=True,
            note='Rates are increments per second over both sides; each '
                 'sample includes starting the two threads (tens of µs).'),
    ]
