"""subinterpreters.sync: threading's Lock, RLock, Condition, Semaphore,
BoundedSemaphore, Event and Barrier, shared between interpreters.

Modelled on CPython's Lib/test/lock_tests.py.  Sections:

1. Semantics.  Most tests take the ``mod`` fixture and run the same body
   on ``threading`` and on ``subinterpreters.sync``, so that the API
   (arguments, return values, exception types, timeouts) is checked to be
   threading's.  What threading has only on some versions is checked on
   sync alone there (``Barrier(0)`` raises from 3.13 on, ``RLock.locked()``
   exists from 3.14 on).  Then what only sync has: ids, sharing, the
   Condition's lock type, shareable Barrier actions.
2. Across interpreters: identity after every kind of transfer (call()
   arguments and results, prepare_main(), queues, the pool), and threads
   of several interpreters using one primitive.
3. Stress: threads of three interpreters counting under one lock.
4. Interrupts: Interpreter.interrupt() and Ctrl-C end waits, and leave
   the primitive consistent.
5. Closing an interpreter while one of its threads waits (subprocesses).
6. Lifetime and leaks.

Functions run in other interpreters are either stateless (defined here,
importing what they need; test_helpers_are_stateless checks that none
uses this module's globals, which would make it travel by reference and
the target import this test module) or come from ``_defs`` (Barrier
actions).

Timing: a wait that must time out is checked against a lower bound (60%
of its timeout, as lock_tests.py) and an upper bound tens of seconds
away; "promptly" means within PROMPT seconds; waits that must end are
bounded by JOIN seconds, so that a bug fails a test instead of hanging
the suite.
"""

import dis
import gc
import os
import pickle
import re
import signal
import sys
import threading
import time
import types

import pytest

import subinterpreters as interpreters
from subinterpreters import _core, sync

import _defs
from _helpers import check_clean

ExecutionFailed = interpreters.ExecutionFailed
NotShareableError = interpreters.NotShareableError
BrokenBarrierError = threading.BrokenBarrierError

KINDS = ('Lock', 'RLock', 'Semaphore', 'BoundedSemaphore', 'Event',
         'Condition', 'Barrier')

JOIN = 60     # bound on any wait that must end
PROMPT = 10   # an interrupted or released wait ends within this
SHORT = 0.3   # a timeout that is meant to expire

SANITIZED = bool(os.environ.get('SBI_SANITIZE'))
# As test_stress.py: SBI_STRESS_SCALE multiplies the stress counts.
SCALE = float(os.environ.get('SBI_STRESS_SCALE',
                             '0.25' if SANITIZED else '1'))


def scaled(n):
    return max(1, int(n * SCALE))


# ---------------------------------------------------------------------------
# helpers


def new(mod, kind):
    """A new primitive of *kind* from *mod* (threading or sync).
    Semaphores start at 2, barriers have 2 parties."""
    cls = getattr(mod, kind)
    if kind in ('Semaphore', 'BoundedSemaphore', 'Barrier'):
        return cls(2)
    return cls()


class Threads:
    """One daemon thread per callable, started at once.

    ``join()`` waits (bounded), then returns the results in the order of
    the callables, or raises the first exception a thread raised
    (``check=False``: look at ``errors`` instead).  Daemon threads: a
    failing test must not also hang the process exit.
    """

    def __init__(self, *targets):
        self.results = [None] * len(targets)
        self.errors = []
        self.done = []
        self._threads = [
            threading.Thread(target=self._run, args=(i, f), daemon=True)
            for i, f in enumerate(targets)]
        for t in self._threads:
            t.start()

    @classmethod
    def repeat(cls, target, n):
        return cls(*[target] * n)

    def _run(self, i, f):
        try:
            self.results[i] = f()
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.done.append(i)

    def alive(self):
        return [t for t in self._threads if t.is_alive()]

    def join(self, timeout=JOIN, *, check=True):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = self.alive()
        assert not alive, f'{len(alive)} thread(s) still running after ' \
                          f'{timeout} s'
        if check and self.errors:
            raise self.errors[0]
        return self.results


def _raise_first(error_lists):
    for errors in error_lists:
        if errors:
            raise errors[0]


def wait_until(predicate, what, *error_lists, timeout=JOIN):
    """Poll predicate.  Fail after timeout, or at once with the exception
    of a thread that died meanwhile (*error_lists*: Threads.errors, the
    thread_errors fixture) instead of waiting for what it will never do."""
    deadline = time.monotonic() + timeout
    while not predicate():
        _raise_first(error_lists)
        if time.monotonic() > deadline:
            pytest.fail(f'still waiting for {what} after {timeout} s')
        time.sleep(0.005)


def get_from(q, *error_lists, timeout=JOIN):
    """q.get(), failing like wait_until()."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return q.get(timeout=0.05)
        except interpreters.QueueEmpty:
            pass
        _raise_first(error_lists)
        if time.monotonic() > deadline:
            pytest.fail(f'nothing came through the queue in {timeout} s')


def timed(f, *args, **kwargs):
    """(f(*args, **kwargs), seconds it took)."""
    start = time.monotonic()
    result = f(*args, **kwargs)
    return result, time.monotonic() - start


def assert_waited(elapsed, timeout):
    """A wait that timed out after *timeout* seconds really waited."""
    assert elapsed >= timeout * 0.6, \
        f'returned after {elapsed:.3f} s, timeout {timeout} s'
    assert elapsed < timeout + JOIN / 2, \
        f'returned after {elapsed:.3f} s, timeout {timeout} s'


def check_failed_with(exc, name):
    """exc is the ExecutionFailed of an uncaught *name* in the target."""
    assert isinstance(exc, ExecutionFailed), repr(exc)
    assert exc.excinfo.type.__name__ == name, exc.excinfo


def raises_in_target(name, f, *args):
    """f(*args) (an Interpreter.call) fails with *name* in the target."""
    with pytest.raises(ExecutionFailed) as info:
        f(*args)
    check_failed_with(info.value, name)


@pytest.fixture(params=['threading', 'sync'])
def mod(request):
    """The module whose classes a test checks: the same test body on
    threading and on sync proves that sync has threading's API."""
    return threading if request.param == 'threading' else sync


@pytest.fixture(autouse=True)
def _empty_action_log():
    _defs.SYNC_ACTION_LOG.clear()
    yield
    _defs.SYNC_ACTION_LOG.clear()


@pytest.fixture
def thread_errors():
    """Exceptions of threads that end with one (call_in_thread's go to
    threading.excepthook)."""
    caught = []
    old = threading.excepthook
    threading.excepthook = lambda args: caught.append(args.exc_value)
    yield caught
    threading.excepthook = old


# ---------------------------------------------------------------------------
# stateless functions, sent to other interpreters with call()
#
# They must use none of this module's globals: test_helpers_are_stateless
# checks it.


def _attrs(obj):
    return (type(obj).__name__, obj.id, hash(obj))


def _all_same(first, others):
    for other in others:
        if other is not first:
            return False
    return True


def _new(kind):
    from subinterpreters import sync
    if kind in ('Semaphore', 'BoundedSemaphore', 'Barrier'):
        return getattr(sync, kind)(2)
    return getattr(sync, kind)()


def _new_twice(kind):
    from subinterpreters import sync
    if kind in ('Semaphore', 'BoundedSemaphore', 'Barrier'):
        obj = getattr(sync, kind)(2)
    else:
        obj = getattr(sync, kind)()
    return (obj, obj, obj.id)


def _new_with_state(kind):
    """A new primitive, in a state its creator's end must not change."""
    from subinterpreters import sync
    if kind == 'Lock':
        obj = sync.Lock()
        obj.acquire()
    elif kind == 'RLock':
        obj = sync.RLock()
        obj.acquire()       # owned by the calling OS thread
    elif kind == 'Semaphore':
        obj = sync.Semaphore(0)
        obj.release(2)
    elif kind == 'BoundedSemaphore':
        obj = sync.BoundedSemaphore(3)
        obj.acquire()
    elif kind == 'Event':
        obj = sync.Event()
        obj.set()
    elif kind == 'Condition':
        obj = sync.Condition(sync.Lock())
    else:
        obj = sync.Barrier(2)
    return (obj, obj.id)


def _new_barrier_with_action():
    import _defs
    from subinterpreters import sync
    return sync.Barrier(1, action=_defs.sync_action)


def _main_global(name):
    import __main__
    return getattr(__main__, name)


def _is_main_global(name, obj):
    import __main__
    return getattr(__main__, name) is obj


def _get_is_main_global(q, name):
    import __main__
    return q.get(timeout=60) is getattr(__main__, name)


def _put_main_global(q, name):
    import __main__
    q.put(getattr(__main__, name))


def _acquire(obj, *args, **kwargs):
    return obj.acquire(*args, **kwargs)


def _release(obj, *args):
    return obj.release(*args)


def _acquire_release(obj, timeout):
    if obj.acquire(timeout=timeout):
        obj.release()
        return True
    return False


def _locked(obj):
    return obj.locked()


def _set(event):
    event.set()


def _is_set(event):
    return event.is_set()


def _clear(event):
    event.clear()


def _event_wait(event, ready, timeout, results):
    """Wait for event (after telling *ready*, if any); the result goes to
    *results* (a queue) if given, and is returned."""
    import subinterpreters
    if ready is not None:
        ready.put(subinterpreters.get_current().id)
    result = event.wait(timeout)
    if results is not None:
        results.put(result)
    return result


def _cond_wait(cond, ready, timeout, results):
    """cond.wait(timeout), having told *ready* while holding the lock: once
    the notifier holds the lock, this thread is inside wait()."""
    with cond:
        ready.put(1)
        result = cond.wait(timeout)
    if results is not None:
        results.put(result)
    return result


def _cond_wait_for_set(cond, event, ready, timeout):
    with cond:
        ready.put(1)
        return cond.wait_for(event.is_set, timeout)


def _notify(cond, n):
    with cond:
        cond.notify(n)


def _barrier_wait(barrier, timeout):
    return barrier.wait(timeout)


def _barrier_cycles(barrier, n):
    return [barrier.wait() for _ in range(n)]


def _hammer(lock, mv, n, depth, results):
    """n critical sections under lock (taken *depth* times, for RLock
    recursion).  mv[0] is an "inside" flag and mv[8:16] a counter, both
    read and written without atomicity: two threads inside at once show
    up as a violation or a lost count.  Returns the violations seen (and
    puts them in *results* if given)."""
    violations = 0
    for _ in range(n):
        for _ in range(depth):
            lock.acquire()
        if mv[0]:
            violations += 1
        mv[0] = 1
        value = int.from_bytes(mv[8:16], 'little')
        mv[8:16] = (value + 1).to_bytes(8, 'little')
        mv[0] = 0
        for _ in range(depth):
            lock.release()
    if results is not None:
        results.put(violations)
    return violations


def _run_in_threads(func, m, args):
    """func(*args) in m threads of this interpreter at once (one call()
    per interpreter at a time: more threads must start inside it).
    Returns their results; re-raises the first exception."""
    import threading
    results = [None] * m
    errors = []

    def run(i):
        try:
            results[i] = func(*args)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(m)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _block_on(kind, obj, ready):
    """Block on obj with no timeout, after telling *ready*."""
    ready.put(kind)
    if kind in ('Event', 'Barrier'):
        return obj.wait()
    if kind == 'Condition':
        with obj:
            return obj.wait()
    return obj.acquire()


def _noop():
    pass


STATELESS = [
    _attrs, _all_same, _new, _new_twice, _new_with_state,
    _new_barrier_with_action, _main_global, _is_main_global,
    _get_is_main_global, _put_main_global, _acquire, _release,
    _acquire_release, _locked, _set, _is_set, _clear, _event_wait,
    _cond_wait, _cond_wait_for_set, _notify, _barrier_wait,
    _barrier_cycles, _hammer, _run_in_threads, _block_on, _noop,
]


def _global_names(code):
    for ins in dis.get_instructions(code):
        if ins.opname in ('LOAD_GLOBAL', 'LOAD_NAME', 'STORE_GLOBAL',
                          'DELETE_GLOBAL', 'STORE_NAME', 'DELETE_NAME'):
            yield ins.argval
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


@pytest.mark.parametrize('func', STATELESS, ids=lambda f: f.__name__)
def test_helpers_are_stateless(func):
    assert func.__defaults__ is None and not func.__kwdefaults__
    assert func.__closure__ is None
    used = set(_global_names(func.__code__)) & set(globals())
    assert not used, f'{func.__name__} uses module globals {used}'


# ===========================================================================
# 1. Semantics: the same tests on threading and on sync


class TestCommon:

    @pytest.mark.parametrize('kind', ['Lock', 'RLock', 'Condition',
                                      'Semaphore', 'BoundedSemaphore'])
    def test_context_manager_enter_returns_true(self, mod, kind):
        obj = new(mod, kind)
        with obj as entered:
            assert entered is True

    @pytest.mark.parametrize('kind', KINDS)
    def test_repr(self, mod, kind):
        assert isinstance(repr(new(mod, kind)), str)

    def test_no_constructor_arguments(self, mod):
        with pytest.raises(TypeError):
            mod.Lock(1)
        with pytest.raises(TypeError):
            mod.Event(1)


# -- error messages ---------------------------------------------------------

ERROR_CASES = {
    'Lock.release': (RuntimeError, lambda m: m.Lock().release()),
    'RLock.release': (RuntimeError, lambda m: m.RLock().release()),
    'Lock.acquire(False, 1)': (ValueError,
                               lambda m: m.Lock().acquire(False, 1)),
    'RLock.acquire(False, 1)': (ValueError,
                                lambda m: m.RLock().acquire(False, 1)),
    'Semaphore(-1)': (ValueError, lambda m: m.Semaphore(-1)),
    'Semaphore.acquire(False, 1)': (
        ValueError, lambda m: m.Semaphore().acquire(False, 1)),
    'Semaphore.release(0)': (ValueError, lambda m: m.Semaphore().release(0)),
    'BoundedSemaphore.release': (
        ValueError, lambda m: m.BoundedSemaphore(1).release()),
    'Condition.wait': (RuntimeError, lambda m: m.Condition().wait()),
    'Condition.notify': (RuntimeError, lambda m: m.Condition().notify()),
    'Condition.notify_all': (RuntimeError,
                             lambda m: m.Condition().notify_all()),
}


@pytest.mark.parametrize('case', sorted(ERROR_CASES))
def test_error_messages_as_threading(case):
    exc_type, op = ERROR_CASES[case]
    messages = []
    for mod in (threading, sync):
        with pytest.raises(exc_type) as info:
            op(mod)
        messages.append(str(info.value))
    assert messages[1] == messages[0]


# -- Lock and RLock ---------------------------------------------------------


@pytest.mark.parametrize('kind', ['Lock', 'RLock'])
class TestLockAndRLock:
    """What Lock and RLock share (lock_tests.BaseLockTests)."""

    def test_acquire_release_return_values(self, mod, kind):
        lock = getattr(mod, kind)()
        assert lock.acquire() is True
        assert lock.release() is None
        for args, kwargs in [((False,), {}), ((), {'blocking': False}),
                             ((True, 5), {}), ((), {'timeout': 5}),
                             ((), {'blocking': True, 'timeout': -1}),
                             ((False, -1), {})]:
            assert lock.acquire(*args, **kwargs) is True, (args, kwargs)
            lock.release()

    def test_release_unacquired(self, mod, kind):
        lock = getattr(mod, kind)()
        with pytest.raises(RuntimeError):
            lock.release()
        lock.acquire()
        lock.release()
        with pytest.raises(RuntimeError):
            lock.release()

    def test_bad_arguments(self, mod, kind):
        lock = getattr(mod, kind)()
        with pytest.raises(TypeError):
            lock.acquire(True, 1, 2)
        with pytest.raises(TypeError):
            lock.acquire(spam=1)
        lock.acquire()
        with pytest.raises(TypeError):
            lock.release(1)
        lock.release()

    def test_invalid_timeouts(self, mod, kind):
        lock = getattr(mod, kind)()
        for args, kwargs in [((False, 1), {}), ((False, 0), {}),
                             ((), {'blocking': False, 'timeout': 0.5}),
                             ((), {'timeout': -100}), ((), {'timeout': -0.5}),
                             ((), {'timeout': float('nan')})]:
            with pytest.raises(ValueError):
                lock.acquire(*args, **kwargs)
        for timeout in (1e100, threading.TIMEOUT_MAX + 1):
            with pytest.raises(OverflowError):
                lock.acquire(timeout=timeout)
        for timeout in ('1', None):
            with pytest.raises(TypeError):
                lock.acquire(timeout=timeout)
        # nothing above took the lock; TIMEOUT_MAX itself is fine
        assert lock.acquire(timeout=threading.TIMEOUT_MAX) is True
        lock.release()
        with pytest.raises(RuntimeError):
            lock.release()

    def test_try_acquire_contended(self, mod, kind):
        lock = getattr(mod, kind)()
        lock.acquire()
        try:
            got = Threads(lambda: (lock.acquire(False),
                                   lock.acquire(timeout=0))).join()
        finally:
            lock.release()
        assert got == [(False, False)]

    def test_acquire_contended(self, mod, kind):
        lock = getattr(mod, kind)()
        lock.acquire()
        started = []

        def f():
            started.append(1)
            lock.acquire()
            lock.release()

        threads = Threads.repeat(f, 5)
        try:
            wait_until(lambda: len(started) == 5, 'the threads to start')
            time.sleep(0.1)
            assert threads.done == []
        finally:
            lock.release()
        threads.join()

    def test_timeout_expires(self, mod, kind):
        lock = getattr(mod, kind)()
        lock.acquire()
        try:
            [(result, elapsed)] = Threads(
                lambda: timed(lock.acquire, timeout=SHORT)).join()
        finally:
            lock.release()
        assert result is False
        assert_waited(elapsed, SHORT)

    def test_timed_acquire_gets_released_lock(self, mod, kind):
        lock = getattr(mod, kind)()
        lock.acquire()
        waiter = Threads(lambda: _acquire_release(lock, JOIN))
        time.sleep(0.2)
        lock.release()
        assert waiter.join() == [True]

    def test_free_lock_is_taken_at_once(self, mod, kind):
        lock = getattr(mod, kind)()
        result, elapsed = timed(lock.acquire, timeout=JOIN)
        assert result is True
        assert elapsed < JOIN / 2
        lock.release()

    def test_with(self, mod, kind):
        lock = getattr(mod, kind)()
        with lock:
            assert Threads(lambda: lock.acquire(False)).join() == [False]
        assert Threads(lambda: _acquire_release(lock, JOIN)).join() == [True]
        with pytest.raises(ZeroDivisionError):
            with lock:
                1 / 0
        assert Threads(lambda: _acquire_release(lock, JOIN)).join() == [True]

    def test_locked(self, mod, kind):
        lock = getattr(mod, kind)()
        if not hasattr(lock, 'locked'):
            assert mod is threading and kind == 'RLock'
            pytest.skip('threading.RLock.locked() is new in 3.14')
        assert lock.locked() is False
        lock.acquire()
        assert lock.locked() is True
        assert Threads(lock.locked).join() == [True]
        lock.release()
        assert lock.locked() is False

    def test_mutual_exclusion(self, mod, kind):
        lock = getattr(mod, kind)()
        inside = []
        overlaps = []

        def f():
            for _ in range(200):
                with lock:
                    if inside:
                        overlaps.append(1)
                    inside.append(1)
                    time.sleep(0)
                    inside.pop()

        Threads.repeat(f, 6).join()
        assert overlaps == []


class TestLock:
    """Lock only (lock_tests.LockTests)."""

    def test_not_reentrant(self, mod):
        lock = mod.Lock()
        phase = []

        def f():
            lock.acquire()
            phase.append(1)
            lock.acquire()
            phase.append(2)

        t = Threads(f)
        wait_until(lambda: phase, 'the first acquire', t.errors)
        time.sleep(0.1)
        assert phase == [1]
        lock.release()
        t.join()
        assert phase == [1, 2]
        lock.release()

    def test_released_by_another_thread(self, mod):
        lock = mod.Lock()
        lock.acquire()
        Threads(lock.release).join()
        assert lock.acquire(False) is True
        lock.release()

    def test_state_after_timeout(self, mod):
        lock = mod.Lock()
        lock.acquire()
        assert lock.acquire(timeout=0.01) is False
        lock.release()
        assert lock.locked() is False
        assert lock.acquire(blocking=False) is True
        lock.release()


class TestRLock:
    """RLock only (lock_tests.RLockTests)."""

    def test_reentrant(self, mod):
        lock = mod.RLock()
        for _ in range(3):
            assert lock.acquire() is True
        assert lock.acquire(False) is True
        for _ in range(4):
            lock.release()
        with pytest.raises(RuntimeError):
            lock.release()

    def test_held_until_last_release(self, mod):
        lock = mod.RLock()
        lock.acquire()
        lock.acquire()
        lock.release()
        assert Threads(lambda: lock.acquire(False)).join() == [False]
        lock.release()
        assert Threads(lambda: _acquire_release(lock, JOIN)).join() == [True]

    def test_owned_by_another_thread(self, mod):
        lock = mod.RLock()
        owned = threading.Event()
        go = threading.Event()

        def owner():
            lock.acquire()
            owned.set()
            go.wait(JOIN)
            lock.release()

        t = Threads(owner)
        try:
            assert owned.wait(JOIN)
            assert lock.acquire(False) is False
            with pytest.raises(RuntimeError):
                lock.release()
            assert lock.acquire(timeout=0.05) is False
            if hasattr(lock, 'locked'):
                assert lock.locked() is True
        finally:
            go.set()
        t.join()
        assert lock.acquire(False) is True
        lock.release()


# -- Condition --------------------------------------------------------------


class TestCondition:
    """lock_tests.ConditionTests."""

    def test_default_lock_is_reentrant(self, mod):
        cond = mod.Condition()
        assert cond.acquire() is True
        assert cond.acquire() is True
        assert Threads(lambda: cond.acquire(False)).join() == [False]
        cond.release()
        cond.release()
        with pytest.raises(RuntimeError):
            cond.release()

    @pytest.mark.parametrize('kind', ['Lock', 'RLock'])
    def test_given_lock(self, mod, kind):
        lock = getattr(mod, kind)()
        for cond in (mod.Condition(lock), mod.Condition(lock=lock)):
            assert cond.acquire() is True
            assert Threads(lambda: lock.acquire(False)).join() == [False]
            cond.release()
            assert lock.acquire(False) is True
            assert Threads(lambda: cond.acquire(False)).join() == [False]
            lock.release()
            with cond:
                assert Threads(lambda: lock.acquire(False)).join() == [False]

    def test_none_lock(self, mod):
        cond = mod.Condition(None)
        with cond:
            with cond:      # an RLock
                pass

    def test_unacquired(self, mod):
        cond = mod.Condition()
        with pytest.raises(RuntimeError):
            cond.wait()
        with pytest.raises(RuntimeError):
            cond.wait(0.01)
        with pytest.raises(RuntimeError):
            cond.notify()
        with pytest.raises(RuntimeError):
            cond.notify_all()

    def test_notify_without_waiters(self, mod):
        cond = mod.Condition()
        with cond:
            assert cond.notify() is None
            assert cond.notify(0) is None
            assert cond.notify(5) is None
            assert cond.notify_all() is None

    def test_wait_timeout(self, mod):
        cond = mod.Condition()
        with cond:
            result, elapsed = timed(cond.wait, SHORT)
            assert result is False
            assert_waited(elapsed, SHORT)
            assert cond.wait(0) is False
            assert cond.wait(-1) is False
            assert cond.wait(timeout=0.01) is False
            # wait() took the lock back
            assert Threads(lambda: cond.acquire(False)).join() == [False]

    def test_wait_timeout_in_threads(self, mod):
        cond = mod.Condition()

        def f():
            with cond:
                return timed(cond.wait, SHORT)

        for result, elapsed in Threads.repeat(f, 5).join():
            assert result is False
            assert_waited(elapsed, SHORT)

    def test_wait_releases_reentrant_lock_fully(self, mod):
        cond = mod.Condition()
        cond.acquire()
        cond.acquire()
        notifier = Threads(lambda: _notify(cond, 1))
        assert cond.wait(JOIN) is True
        notifier.join()
        cond.release()
        cond.release()          # the recursion level was restored
        with pytest.raises(RuntimeError):
            cond.release()

    @pytest.mark.parametrize('kind', ['Lock', 'RLock'])
    def test_notify_n(self, mod, kind):
        cond = mod.Condition(getattr(mod, kind)())
        n = 5
        entered = []
        woken = []

        def waiter():
            with cond:
                entered.append(1)
                woken.append(cond.wait(JOIN))

        def all_in_wait():
            # A waiter holds the lock from entering until wait() lets it
            # go: once we hold it, every registered waiter is in wait().
            with cond:
                return len(entered) == n

        threads = Threads.repeat(waiter, n)
        try:
            wait_until(all_in_wait, 'the waiters to wait')
            for notify, expected in ((lambda: cond.notify(3), 3),
                                     (cond.notify, 4),
                                     (lambda: cond.notify(0), 4)):
                with cond:
                    notify()
                wait_until(lambda: len(woken) >= expected,
                           f'{expected} waiters to wake')
                time.sleep(0.2)
                assert len(woken) == expected, 'woke too many'
            with cond:
                cond.notify_all()
        finally:
            with cond:
                cond.notify_all()
        threads.join()
        assert woken == [True] * n

    def test_notify_all(self, mod):
        cond = mod.Condition()
        n = 5
        entered = []

        def waiter():
            with cond:
                entered.append(1)
                return cond.wait(JOIN)

        def all_in_wait():
            with cond:
                return len(entered) == n

        threads = Threads.repeat(waiter, n)
        wait_until(all_in_wait, 'the waiters to wait')
        with cond:
            cond.notify_all()
        assert threads.join() == [True] * n

    def test_wait_for(self, mod):
        cond = mod.Condition()
        state = [0]

        def f():
            with cond:
                result = cond.wait_for(lambda: state[0] == 4, JOIN)
                return result, state[0]

        t = Threads(f)
        for _ in range(4):
            time.sleep(0.01)
            with cond:
                state[0] += 1
                cond.notify()
        assert t.join() == [(True, 4)]

    def test_wait_for_timeout(self, mod):
        cond = mod.Condition()
        state = [0]

        def f():
            with cond:
                return timed(cond.wait_for, lambda: state[0] == 4, SHORT)

        t = Threads(f)
        for _ in range(3):      # never reaches 4
            time.sleep(0.01)
            with cond:
                state[0] += 1
                cond.notify()
        [(result, elapsed)] = t.join()
        assert result is False
        assert_waited(elapsed, SHORT)

    def test_wait_for_returns_predicate_value(self, mod):
        cond = mod.Condition()
        with cond:
            assert cond.wait_for(lambda: 'yes') == 'yes'
            assert cond.wait_for(lambda: [], timeout=0.01) == []
            assert cond.wait_for(lambda: 0, timeout=-1) == 0
            assert cond.wait_for(lambda: 0, 0) == 0


# -- Semaphore and BoundedSemaphore -----------------------------------------


@pytest.mark.parametrize('kind', ['Semaphore', 'BoundedSemaphore'])
class TestSemaphores:
    """lock_tests.BaseSemaphoreTests."""

    def test_constructor(self, mod, kind):
        cls = getattr(mod, kind)
        cls()
        cls(0)
        cls(value=3)
        for value in (-1, -sys.maxsize):
            with pytest.raises(ValueError):
                cls(value)
        with pytest.raises(TypeError):
            cls('1')

    def test_default_value_is_one(self, mod, kind):
        sem = getattr(mod, kind)()
        assert sem.acquire(False) is True
        assert sem.acquire(False) is False
        sem.release()

    def test_acquire_release(self, mod, kind):
        sem = getattr(mod, kind)(2)
        assert sem.acquire() is True
        assert sem.acquire(blocking=True, timeout=None) is True
        assert sem.acquire(False) is False
        assert sem.release() is None
        assert sem.acquire(blocking=False) is True
        sem.release()
        sem.release()

    def test_try_acquire_contended(self, mod, kind):
        sem = getattr(mod, kind)(4)
        sem.acquire()
        results = Threads.repeat(
            lambda: (sem.acquire(False), sem.acquire(False)), 5).join()
        flat = sorted(r for pair in results for r in pair)
        assert flat == [False] * 7 + [True] * 3

    def test_acquire_timeout(self, mod, kind):
        sem = getattr(mod, kind)(2)
        with pytest.raises(ValueError):
            sem.acquire(False, timeout=1.0)
        with pytest.raises(ValueError):
            sem.acquire(blocking=False, timeout=0)
        assert sem.acquire(timeout=0.005) is True
        assert sem.acquire(timeout=0.005) is True
        assert sem.acquire(timeout=0.005) is False
        sem.release()
        assert sem.acquire(timeout=0.005) is True
        result, elapsed = timed(sem.acquire, timeout=SHORT)
        assert result is False
        assert_waited(elapsed, SHORT)

    def test_nonpositive_timeouts(self, mod, kind):
        # threading: a timeout <= 0 is a non-blocking attempt (no error)
        sem = getattr(mod, kind)(1)
        for timeout in (0, -1, -0.5):
            assert sem.acquire(timeout=timeout) is True
            result, elapsed = timed(sem.acquire, timeout=timeout)
            assert result is False
            assert elapsed < JOIN / 2
            sem.release()
        sem.acquire()
        with pytest.raises(TypeError):    # only looked at when it waits
            sem.acquire(timeout='1')
        sem.release()

    def test_release_wakes_waiters(self, mod, kind):
        sem = getattr(mod, kind)(3)
        for _ in range(3):
            sem.acquire()
        woken = []

        def f():
            woken.append(sem.acquire(timeout=JOIN))

        threads = Threads.repeat(f, 3)
        time.sleep(0.1)
        assert woken == []
        try:
            sem.release(2)
            wait_until(lambda: len(woken) >= 2, 'two waiters')
            time.sleep(0.2)
            assert woken == [True, True]
        finally:
            sem.release()
        threads.join()
        assert woken == [True] * 3
        assert sem.acquire(False) is False

    def test_release_n(self, mod, kind):
        sem = getattr(mod, kind)(3)
        for _ in range(3):
            sem.acquire()
        for n in (0, -1):
            with pytest.raises(ValueError):
                sem.release(n)
        assert sem.release(2) is None
        assert sem.release(n=1) is None
        assert [sem.acquire(False) for _ in range(4)] == [True] * 3 + [False]

    def test_bounded_concurrency(self, mod, kind):
        sem = getattr(mod, kind)(3)
        counter = threading.Lock()
        inside = [0]
        peak = [0]

        def f():
            for _ in range(50):
                with sem:
                    with counter:
                        inside[0] += 1
                        peak[0] = max(peak[0], inside[0])
                    time.sleep(0.0005)
                    with counter:
                        inside[0] -= 1

        Threads.repeat(f, 8).join()
        assert 1 <= peak[0] <= 3
        assert [sem.acquire(False) for _ in range(4)] == [True] * 3 + [False]

    def test_with(self, mod, kind):
        sem = getattr(mod, kind)(2)

        def use(err=None):
            with sem:
                assert sem.acquire(False) is True
                sem.release()
                with sem:
                    assert sem.acquire(False) is False
                    if err:
                        raise err

        use()
        assert sem.acquire(False) is True
        sem.release()
        with pytest.raises(TypeError):
            use(TypeError)
        assert [sem.acquire(False) for _ in range(3)] == [True, True, False]


class TestSemaphore:

    def test_release_beyond_initial_value(self, mod):
        sem = mod.Semaphore(1)
        sem.release()
        sem.release(3)
        assert [sem.acquire(False) for _ in range(6)] == [True] * 5 + [False]


class TestBoundedSemaphore:

    def test_release_unacquired(self, mod):
        sem = mod.BoundedSemaphore()
        with pytest.raises(ValueError):
            sem.release()
        sem.acquire()
        sem.release()
        with pytest.raises(ValueError):
            sem.release()

    def test_release_n_beyond_bound_changes_nothing(self, mod):
        sem = mod.BoundedSemaphore(3)
        sem.acquire()
        with pytest.raises(ValueError):
            sem.release(2)
        sem.release(1)
        with pytest.raises(ValueError):
            sem.release(1)
        assert [sem.acquire(False) for _ in range(4)] == [True] * 3 + [False]


# -- Event ------------------------------------------------------------------


class TestEvent:
    """lock_tests.EventTests."""

    def test_is_set(self, mod):
        ev = mod.Event()
        assert ev.is_set() is False
        assert ev.set() is None
        assert ev.is_set() is True
        ev.set()
        assert ev.is_set() is True
        assert ev.clear() is None
        assert ev.is_set() is False
        ev.clear()
        assert ev.is_set() is False

    def test_wait_return_values(self, mod):
        ev = mod.Event()
        assert ev.wait(0) is False
        assert ev.wait(-1) is False
        assert ev.wait(timeout=0.01) is False
        ev.set()
        assert ev.wait() is True
        assert ev.wait(None) is True
        assert ev.wait(0) is True
        assert ev.wait(timeout=-1) is True

    def test_bad_timeout(self, mod):
        with pytest.raises(TypeError):
            mod.Event().wait('1')

    def test_wait_timeout(self, mod):
        ev = mod.Event()
        for result, elapsed in Threads.repeat(
                lambda: timed(ev.wait, SHORT), 5).join():
            assert result is False
            assert_waited(elapsed, SHORT)

    def _check_set_wakes_all(self, ev, clear_at_once):
        n = 5
        started = []

        def f():
            started.append(1)
            first = ev.wait(JOIN)
            if clear_at_once:
                return first, True
            return first, ev.wait(JOIN)     # still set: at once

        threads = Threads.repeat(f, n)
        wait_until(lambda: len(started) == n, 'the waiters to start')
        time.sleep(0.3)
        assert threads.done == []
        ev.set()
        if clear_at_once:
            # Issue #13502: woken waiters return True even if the event
            # is cleared before they run again.
            ev.clear()
        assert threads.join() == [(True, True)] * n

    def test_set_wakes_all(self, mod):
        ev = mod.Event()
        self._check_set_wakes_all(ev, False)
        ev.clear()
        self._check_set_wakes_all(ev, False)

    def test_set_then_clear_still_wakes(self, mod):
        self._check_set_wakes_all(mod.Event(), True)


# -- Barrier ----------------------------------------------------------------


class TestBarrier:
    """lock_tests.BarrierTests."""

    N = 4

    def test_constructor(self, mod):
        b = mod.Barrier(3)
        assert (b.parties, b.n_waiting, b.broken) == (3, 0, False)
        b = mod.Barrier(parties=2, action=None, timeout=None)
        assert b.parties == 2
        b = mod.Barrier(2, _defs.sync_action, 5.0)
        assert b.parties == 2

    def test_parties_must_be_positive(self, mod):
        if mod is threading and sys.version_info < (3, 13):
            pytest.skip('threading.Barrier checks parties from 3.13')
        for parties in (0, -1):
            with pytest.raises(ValueError):
                mod.Barrier(parties)

    def test_properties_read_only(self, mod):
        b = mod.Barrier(2)
        for name, value in (('parties', 3), ('n_waiting', 1),
                            ('broken', True)):
            with pytest.raises(AttributeError):
                setattr(b, name, value)
        assert (b.parties, b.n_waiting, b.broken) == (2, 0, False)

    def test_lockstep(self, mod):
        barrier = mod.Barrier(self.N, timeout=JOIN)
        passes = 10
        before = []
        after = []

        def f():
            for i in range(passes):
                before.append(i)
                assert len(after) == i * self.N
                barrier.wait()
                after.append(i)
                assert len(before) == (i + 1) * self.N
                barrier.wait()

        Threads.repeat(f, self.N).join()
        assert (barrier.n_waiting, barrier.broken) == (0, False)

    def test_wait_return_values(self, mod):
        barrier = mod.Barrier(self.N, timeout=JOIN)

        def f():
            return [barrier.wait() for _ in range(5)]

        results = Threads.repeat(f, self.N).join()
        for round_ in zip(*results):
            assert sorted(round_) == list(range(self.N))

    def test_single_party(self, mod):
        barrier = mod.Barrier(1, action=_defs.sync_action)
        assert [barrier.wait() for _ in range(3)] == [0, 0, 0]
        assert len(_defs.SYNC_ACTION_LOG) == 3

    def test_action_runs_once_before_release(self, mod):
        barrier = mod.Barrier(self.N, action=_defs.sync_action, timeout=JOIN)
        passes = 5

        def f():
            for i in range(passes):
                barrier.wait()
                assert len(_defs.SYNC_ACTION_LOG) == i + 1

        Threads.repeat(f, self.N).join()
        assert _defs.SYNC_ACTION_LOG == \
            [interpreters.get_current().id] * passes

    def test_action_raises(self, mod):
        barrier = mod.Barrier(self.N, action=_defs.sync_action_fails,
                              timeout=JOIN)

        def f():
            try:
                barrier.wait()
            except BrokenBarrierError:
                return 'broken'
            except _defs.SpamError:
                return 'action'
            return 'passed'

        results = Threads.repeat(f, self.N).join()
        assert sorted(results) == ['action'] + ['broken'] * (self.N - 1)
        assert barrier.broken is True
        with pytest.raises(BrokenBarrierError):
            barrier.wait()

    def _waiters(self, barrier, n):
        """n threads in barrier.wait(JOIN), each returning the index or
        'broken'."""

        def f():
            try:
                return barrier.wait(JOIN)
            except BrokenBarrierError:
                return 'broken'

        threads = Threads.repeat(f, n)
        wait_until(lambda: barrier.n_waiting == n, f'{n} waiting',
                   threads.errors)
        return threads

    def test_n_waiting(self, mod):
        barrier = mod.Barrier(self.N)
        assert barrier.n_waiting == 0
        waiters = [self._waiters_added(barrier, k) for k in range(1, self.N)]
        assert barrier.n_waiting == self.N - 1
        assert barrier.wait(JOIN) == self.N - 1
        for threads in waiters:
            threads.join()
        wait_until(lambda: barrier.n_waiting == 0, 'the barrier to drain')

    def _waiters_added(self, barrier, total):
        threads = Threads(lambda: barrier.wait(JOIN))
        wait_until(lambda: barrier.n_waiting == total, f'{total} waiting',
                   threads.errors)
        return threads

    def _full_round(self, barrier):
        others = Threads.repeat(lambda: barrier.wait(JOIN),
                                barrier.parties - 1)
        mine = barrier.wait(JOIN)
        indices = sorted(others.join() + [mine])
        assert indices == list(range(barrier.parties))

    def test_abort(self, mod):
        barrier = mod.Barrier(self.N)
        threads = self._waiters(barrier, self.N - 1)
        assert barrier.abort() is None
        assert threads.join() == ['broken'] * (self.N - 1)
        assert barrier.broken is True
        with pytest.raises(BrokenBarrierError):
            barrier.wait(JOIN)
        # reset() mends it
        assert barrier.reset() is None
        assert barrier.broken is False
        self._full_round(barrier)

    def test_abort_idle(self, mod):
        barrier = mod.Barrier(2)
        barrier.abort()
        assert barrier.broken is True
        start = time.monotonic()
        with pytest.raises(BrokenBarrierError):
            barrier.wait()
        assert time.monotonic() - start < JOIN / 2

    def test_reset_while_waiting(self, mod):
        barrier = mod.Barrier(self.N)
        threads = self._waiters(barrier, self.N - 1)
        barrier.reset()
        assert threads.join() == ['broken'] * (self.N - 1)
        assert barrier.broken is False
        wait_until(lambda: barrier.n_waiting == 0, 'the barrier to drain')
        self._full_round(barrier)

    def test_reset_idle(self, mod):
        barrier = mod.Barrier(2)
        barrier.reset()
        assert (barrier.n_waiting, barrier.broken) == (0, False)
        self._full_round(barrier)

    def test_timeout_breaks(self, mod):
        barrier = mod.Barrier(3)
        patient = self._waiters(barrier, 1)
        with pytest.raises(BrokenBarrierError):
            barrier.wait(SHORT)
        assert patient.join() == ['broken']
        assert barrier.broken is True
        with pytest.raises(BrokenBarrierError):
            barrier.wait(JOIN)

    def test_timeout_duration(self, mod):
        barrier = mod.Barrier(2)
        start = time.monotonic()
        with pytest.raises(BrokenBarrierError):
            barrier.wait(SHORT)
        assert_waited(time.monotonic() - start, SHORT)

    def test_default_timeout(self, mod):
        barrier = mod.Barrier(2, timeout=SHORT)
        start = time.monotonic()
        with pytest.raises(BrokenBarrierError):
            barrier.wait()
        assert_waited(time.monotonic() - start, SHORT)
        assert barrier.broken is True

    def test_explicit_timeout_overrides_default(self, mod):
        barrier = mod.Barrier(2, timeout=SHORT)
        other = Threads(lambda: barrier.wait(JOIN))
        time.sleep(3 * SHORT)   # longer than the default timeout
        assert barrier.broken is False
        mine = barrier.wait(JOIN)
        assert sorted(other.join() + [mine]) == [0, 1]

    def test_nonpositive_timeouts_break(self, mod):
        for timeout in (0, -1):
            barrier = mod.Barrier(2)
            with pytest.raises(BrokenBarrierError):
                barrier.wait(timeout)
            assert barrier.broken is True

    def test_broken_barrier_error(self, mod):
        assert issubclass(BrokenBarrierError, RuntimeError)
        barrier = mod.Barrier(2)
        barrier.abort()
        with pytest.raises(BrokenBarrierError) as info:
            barrier.wait()
        assert type(info.value) is threading.BrokenBarrierError


# -- what only sync has -----------------------------------------------------


NOT_SYNC_LOCKS = {
    'threading.Lock': threading.Lock,
    'threading.RLock': threading.RLock,
    'object': object,
    'str': lambda: 'lock',
    'int': lambda: 1,
    'sync.Semaphore': sync.Semaphore,
    'sync.BoundedSemaphore': sync.BoundedSemaphore,
    'sync.Event': sync.Event,
    'sync.Condition': sync.Condition,
    'sync.Barrier': lambda: sync.Barrier(1),
}

SHAREABLE_ACTIONS = {
    'none': None,
    'stateless': _noop,             # travels as code
    'by reference': _defs.sync_action,
}


class TestSyncObjects:

    def test_classes(self):
        for kind in KINDS:
            cls = getattr(sync, kind)
            assert isinstance(cls, type)
            assert type(new(sync, kind)) is cls

    def test_ids(self):
        objs = [new(sync, kind) for kind in KINDS for _ in range(2)]
        ids = [obj.id for obj in objs]
        assert all(type(i) is int for i in ids)
        assert len(set(ids)) == len(ids)
        assert [obj.id for obj in objs] == ids      # stable

    @pytest.mark.parametrize('kind', KINDS)
    def test_id_read_only(self, kind):
        obj = new(sync, kind)
        with pytest.raises(AttributeError):
            obj.id = 1_000_000

    @pytest.mark.parametrize('kind', KINDS)
    def test_equality_and_hash(self, kind):
        a = new(sync, kind)
        b = new(sync, kind)
        assert a == a
        assert not (a != a)
        assert a != b
        assert a != object()
        assert hash(a) == hash(a)
        assert len({a, b, a}) == 2

    @pytest.mark.parametrize('kind', KINDS)
    def test_shareable(self, kind):
        obj = new(sync, kind)
        assert interpreters.is_shareable(obj) is True
        assert interpreters.is_shareable((obj, (obj, 1))) is True

    @pytest.mark.parametrize('kind', KINDS)
    def test_pickles_by_id_within_the_process(self, kind):
        # Loaded while an object for it exists: the same object.
        obj = new(sync, kind)
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            assert pickle.loads(pickle.dumps(obj, proto)) is obj

    def test_pickle_of_a_dropped_primitive_fails_cleanly(self):
        data = pickle.dumps(sync.Lock())
        with pytest.raises(interpreters.InterpreterError,
                           match='no longer exists'):
            pickle.loads(data)

    def test_pickle_from_another_process_fails_cleanly(self, run_python):
        # The same id exists here, but it is another process's pickle.
        lock = sync.Lock()
        rc, out, err = run_python(
            'import pickle, sys\n'
            'from subinterpreters import sync\n'
            'lock = sync.Lock()\n'
            'sys.stdout.write(pickle.dumps(lock, 0).decode("latin-1"))\n')
        assert rc == 0, err
        with pytest.raises(interpreters.InterpreterError,
                           match='another process'):
            pickle.loads(out.encode('latin-1'))
        del lock

    def test_bound_method_crosses(self, new_interp):
        # A bound method is pickled by reference to its object.
        lock = sync.Lock()
        assert new_interp().call(lock.acquire) is True
        assert lock.locked()
        lock.release()

    def test_threading_objects_not_shareable(self):
        for kind in KINDS:
            assert interpreters.is_shareable(new(threading, kind)) is False

    def test_inside_a_pickled_value(self, new_interp):
        # A user object is pickled whole; the primitive in it by id.
        box = _defs.Spam(sync.Lock())
        assert interpreters.is_shareable(box) is False
        back = new_interp().call(_defs.spam_returns_arg, box)
        assert back.value is box.value

    @pytest.mark.parametrize('name', sorted(NOT_SYNC_LOCKS))
    def test_condition_lock_type(self, name):
        # Only a sync.Lock or sync.RLock (threading takes anything).
        bad = NOT_SYNC_LOCKS[name]()
        with pytest.raises(TypeError):
            sync.Condition(bad)
        with pytest.raises(TypeError):
            sync.Condition(lock=bad)

    def test_condition_uses_given_lock(self):
        lock = sync.Lock()
        cond = sync.Condition(lock)
        with cond:
            assert lock.locked() is True
        assert lock.locked() is False
        rlock = sync.RLock()
        cond = sync.Condition(lock=rlock)
        with cond:
            assert rlock.locked() is True
        assert rlock.locked() is False

    def test_barrier_parties_type(self):
        with pytest.raises(TypeError):
            sync.Barrier('2')
        with pytest.raises(TypeError):
            sync.Barrier()

    def test_barrier_action_must_be_shareable(self):
        calls = []

        def nested():
            calls.append(1)

        class Local:
            def method(self):
                pass

        for action in (lambda: calls.append(1), nested, Local().method):
            with pytest.raises(NotShareableError):
                sync.Barrier(2, action=action)
            with pytest.raises(NotShareableError):
                sync.Barrier(2, action)

    @pytest.mark.parametrize('name', sorted(SHAREABLE_ACTIONS))
    def test_barrier_action_shareable(self, name):
        action = SHAREABLE_ACTIONS[name]
        barrier = sync.Barrier(1, action=action)
        assert barrier.wait() == 0
        expected = [interpreters.get_current().id] \
            if action is _defs.sync_action else []
        assert _defs.SYNC_ACTION_LOG == expected


# ===========================================================================
# 2. Across interpreters


@pytest.mark.parametrize('kind', KINDS)
class TestIdentity:
    """One primitive, one object per interpreter: equal ids and hashes
    everywhere, the very same object back in the interpreter that sent
    it."""

    def test_call_arguments_and_results(self, new_interp, kind):
        obj = new(sync, kind)
        interp = new_interp()
        assert interp.call(_defs.spam_returns_arg, obj) is obj
        assert interp.call(_attrs, obj) == (kind, obj.id, hash(obj))
        assert interp.call(_all_same, obj, (obj, obj)) is True
        back = interp.call(_defs.spam_returns_arg, (obj, obj))
        assert back[0] is obj and back[1] is obj
        assert interp.call(_defs.spam_returns_arg, x=obj) is obj

    def test_prepare_main(self, new_interp, kind):
        obj = new(sync, kind)
        interp = new_interp()
        interp.prepare_main(x=obj, y=obj)
        interp.exec(f'assert x is y\n'
                    f'assert x.id == {obj.id}\n'
                    f'assert type(x).__name__ == {kind!r}\n')
        assert interp.call(_is_main_global, 'x', obj) is True
        assert interp.call(_main_global, 'x') is obj
        interp.prepare_main(z=obj)
        interp.exec('assert z is x')

    def test_queue(self, new_interp, kind):
        obj = new(sync, kind)
        q = interpreters.create_queue()
        q.put(obj)
        assert q.get() is obj
        interp = new_interp()
        interp.prepare_main(x=obj)
        q.put(obj)
        assert interp.call(_get_is_main_global, q, 'x') is True
        interp.call(_put_main_global, q, 'x')
        assert q.get(timeout=JOIN) is obj

    def test_between_subinterpreters(self, new_interp, kind):
        obj = new(sync, kind)
        a = new_interp()
        b = new_interp()
        a.prepare_main(x=obj)
        b.prepare_main(x=obj)
        q = interpreters.create_queue()
        a.call(_put_main_global, q, 'x')
        assert b.call(_get_is_main_global, q, 'x') is True
        assert a.call(_attrs, obj) == b.call(_attrs, obj) \
            == (kind, obj.id, hash(obj))

    def test_created_in_subinterpreter(self, new_interp, kind):
        interp = new_interp()
        first, second, oid = interp.call(_new_twice, kind)
        assert first is second
        assert type(first) is getattr(sync, kind)
        assert first.id == oid
        assert interp.call(_attrs, first) == (kind, oid, hash(first))
        assert interp.call(_defs.spam_returns_arg, first) is first

    def test_pool(self, kind):
        obj = new(sync, kind)
        with interpreters.InterpreterPoolExecutor(max_workers=1) as pool:
            assert pool.submit(_defs.spam_returns_arg, obj).result(JOIN) \
                is obj
            assert pool.submit(_attrs, obj).result(JOIN) \
                == (kind, obj.id, hash(obj))


class TestLocksAcrossInterpreters:

    @pytest.mark.timeout(120)
    def test_contended_by_threads_of_three_interpreters(
            self, new_interp, thread_errors):
        # a: one thread; b: two threads; main: two threads
        lock = sync.Lock()
        buf = bytearray(16)
        mv = memoryview(buf)
        results = interpreters.create_queue()
        n = scaled(3000)
        a, b = new_interp(), new_interp()
        args = (lock, mv, n, 1, results)
        sub_threads = [a.call_in_thread(_hammer, *args),
                       b.call_in_thread(_run_in_threads, _hammer, 2, args)]
        mains = Threads.repeat(lambda: _hammer(lock, mv, n, 1, None), 2)
        assert mains.join() == [0, 0]
        for t in sub_threads:
            t.join(JOIN)
            assert not t.is_alive()
        assert thread_errors == []
        assert [get_from(results) for _ in range(3)] == [0] * 3
        assert int.from_bytes(buf[8:16], 'little') == 5 * n
        assert lock.locked() is False

    def test_handoff(self, new_interp):
        lock = sync.Lock()
        interp = new_interp()
        lock.acquire()
        assert interp.call(_acquire, lock, False) is False
        result, elapsed = timed(interp.call, _acquire, lock, True, SHORT)
        assert result is False
        assert_waited(elapsed, SHORT)
        # a thread blocked in the subinterpreter gets it once we let go
        waiter = Threads(lambda: interp.call(_acquire, lock))
        time.sleep(0.2)
        assert waiter.done == []
        lock.release()
        assert waiter.join() == [True]
        assert lock.acquire(False) is False      # the waiter holds it
        # a Lock has no owner: any thread of any interpreter releases it
        interp.call(_release, lock)
        assert lock.acquire(False) is True
        assert interp.call(_locked, lock) is True
        lock.release()
        assert interp.call(_locked, lock) is False
        raises_in_target('RuntimeError', interp.call, _release, lock)

    def test_rlock_reentered_by_same_thread_in_subinterpreter(
            self, new_interp):
        # The owner of an RLock is the OS thread, whatever interpreter it
        # runs in: interp.call() runs in this very thread.
        rlock = sync.RLock()
        interp = new_interp()
        other = new_interp()
        assert rlock.acquire() is True
        assert interp.call(_acquire, rlock, False) is True          # depth 2
        assert interp.call(_acquire, rlock, True, 1) is True        # depth 3
        assert interp.call(_locked, rlock) is True

        def other_thread():
            return (rlock.acquire(False),
                    other.call(_acquire, rlock, False),
                    other.call(_acquire, rlock, True, 0.1))

        assert Threads(other_thread).join() == [(False, False, False)]
        with pytest.raises(RuntimeError):
            Threads(rlock.release).join()
        with pytest.raises(ExecutionFailed) as info:
            Threads(lambda: other.call(_release, rlock)).join()
        check_failed_with(info.value, 'RuntimeError')
        # releases count whatever interpreter the acquisitions were in
        interp.call(_release, rlock)                                # depth 2
        rlock.release()                                             # depth 1
        assert Threads(lambda: rlock.acquire(False)).join() == [False]
        interp.call(_release, rlock)                                # free
        assert rlock.locked() is False
        with pytest.raises(RuntimeError):
            rlock.release()
        assert Threads(
            lambda: other.call(_acquire_release, rlock, JOIN)).join() == [True]

    def test_rlock_owned_by_subinterpreter_thread(self, new_interp):
        rlock = sync.RLock()
        interp = new_interp()
        go = sync.Event()
        ready = interpreters.create_queue()

        def owner():
            # acquired and released by one thread, in the subinterpreter
            assert interp.call(_acquire, rlock) is True
            ready.put(1)
            go.wait(JOIN)
            interp.call(_release, rlock)

        t = Threads(owner)
        try:
            get_from(ready, t.errors)
            assert rlock.acquire(False) is False
            with pytest.raises(RuntimeError):
                rlock.release()
            assert rlock.locked() is True
        finally:
            go.set()
        t.join()
        assert rlock.acquire(False) is True
        rlock.release()

    def test_semaphore(self, new_interp):
        sem = sync.Semaphore(2)
        interp = new_interp()
        assert sem.acquire() and sem.acquire()
        assert interp.call(_acquire, sem, False) is False
        result, elapsed = timed(interp.call, _acquire, sem, timeout=SHORT)
        assert result is False
        assert_waited(elapsed, SHORT)
        waiter = Threads(lambda: interp.call(_acquire, sem, timeout=JOIN))
        time.sleep(0.1)
        sem.release()
        assert waiter.join() == [True]
        assert sem.acquire(False) is False
        interp.call(_release, sem, 2)
        assert [sem.acquire(False) for _ in range(3)] == [True, True, False]

    def test_bounded_semaphore_over_release(self, new_interp):
        sem = sync.BoundedSemaphore(1)
        interp = new_interp()
        raises_in_target('ValueError', interp.call, _release, sem)
        sem.acquire()
        interp.call(_release, sem)
        with pytest.raises(ValueError):
            sem.release()


class TestEventAcrossInterpreters:

    def test_set_in_subinterpreter_wakes_main(self, new_interp):
        ev = sync.Event()
        interp = new_interp()

        def set_later():
            time.sleep(0.2)
            interp.call(_set, ev)

        setter = Threads(set_later)
        result, elapsed = timed(ev.wait, JOIN)
        setter.join()
        assert result is True
        assert elapsed < PROMPT

    def test_set_wakes_waiters_in_other_interpreters(self, new_interp,
                                                     thread_errors):
        ev = sync.Event()
        a, b, setter = new_interp(), new_interp(), new_interp()
        ready = interpreters.create_queue()
        results = interpreters.create_queue()
        args = (ev, ready, JOIN, results)
        threads = [a.call_in_thread(_run_in_threads, _event_wait, 2, args),
                   b.call_in_thread(_event_wait, *args)]
        mains = Threads(lambda: _event_wait(ev, ready, JOIN, None))
        waiting = sorted(get_from(ready, mains.errors, thread_errors)
                         for _ in range(4))
        assert waiting == sorted([a.id, a.id, b.id,
                                  interpreters.get_current().id])
        time.sleep(0.2)
        assert results.qsize() == 0
        start = time.monotonic()
        setter.call(_set, ev)
        assert mains.join() == [True]
        assert [get_from(results, thread_errors) for _ in range(3)] \
            == [True] * 3
        assert time.monotonic() - start < PROMPT
        for t in threads:
            t.join(JOIN)
            assert not t.is_alive()
        assert thread_errors == []

    def test_state_shared(self, new_interp):
        ev = sync.Event()
        interp = new_interp()
        interp.call(_set, ev)
        assert ev.is_set() is True
        ev.clear()
        assert interp.call(_is_set, ev) is False
        ev.set()
        interp.call(_clear, ev)
        assert ev.is_set() is False
        assert interp.call(_event_wait, ev, None, SHORT, None) is False

    def test_set_by_pool_task(self):
        ev = sync.Event()
        with interpreters.InterpreterPoolExecutor(max_workers=2) as pool:
            waiter = pool.submit(_event_wait, ev, None, JOIN, None)
            time.sleep(0.1)
            pool.submit(_set, ev).result(JOIN)
            assert waiter.result(JOIN) is True
        assert ev.wait(0) is True


class TestConditionAcrossInterpreters:

    def test_notify_from_main(self, new_interp):
        cond = sync.Condition()
        interp = new_interp()
        ready = interpreters.create_queue()
        waiter = Threads(lambda: interp.call(_cond_wait, cond, ready, JOIN,
                                             None))
        get_from(ready, waiter.errors)
        with cond:              # the waiter is inside wait() now
            cond.notify()
        assert waiter.join() == [True]

    def test_notify_from_subinterpreter(self, new_interp):
        cond = sync.Condition(sync.Lock())
        interp = new_interp()
        ready = interpreters.create_queue()
        waiter = Threads(lambda: _cond_wait(cond, ready, JOIN, None))
        get_from(ready, waiter.errors)
        interp.call(_notify, cond, 1)
        assert waiter.join() == [True]

    def test_notify_n_and_all(self, new_interp, thread_errors):
        cond = sync.Condition()
        a, b, notifier = new_interp(), new_interp(), new_interp()
        ready = interpreters.create_queue()
        results = interpreters.create_queue()
        args = (cond, ready, JOIN, results)
        threads = [a.call_in_thread(_run_in_threads, _cond_wait, 2, args),
                   b.call_in_thread(_cond_wait, *args)]
        mains = Threads(lambda: _cond_wait(cond, ready, JOIN, results))
        errors = (mains.errors, thread_errors)
        for _ in range(4):
            get_from(ready, *errors)
        try:
            # once we hold the lock, all four are inside wait()
            with cond:
                cond.notify(2)
            assert [get_from(results, *errors) for _ in range(2)] \
                == [True] * 2
            time.sleep(0.2)
            assert results.qsize() == 0, 'notify(2) woke more than 2'
            notifier.call(_notify, cond, 1)
            assert get_from(results, *errors) is True
            time.sleep(0.2)
            assert results.qsize() == 0
        finally:
            with cond:
                cond.notify_all()
        assert get_from(results, *errors) is True
        mains.join()
        for t in threads:
            t.join(JOIN)
            assert not t.is_alive()
        assert thread_errors == []

    def test_wait_for(self, new_interp):
        cond = sync.Condition()
        ev = sync.Event()
        interp = new_interp()
        ready = interpreters.create_queue()
        waiter = Threads(lambda: interp.call(_cond_wait_for_set, cond, ev,
                                             ready, JOIN))
        get_from(ready, waiter.errors)
        with cond:
            cond.notify_all()       # predicate still false: waits on
        time.sleep(0.1)
        assert waiter.done == []
        with cond:
            ev.set()
            cond.notify_all()
        assert waiter.join() == [True]
        ev.clear()
        result, elapsed = timed(interp.call, _cond_wait_for_set, cond, ev,
                                ready, SHORT)
        assert result is False
        assert_waited(elapsed, SHORT)


class TestBarrierAcrossInterpreters:

    @pytest.mark.timeout(180)
    def test_three_interpreters_cycle(self, new_interp):
        n = scaled(1000)
        barrier = sync.Barrier(3, action=_defs.sync_action, timeout=JOIN)
        a, b = new_interp(), new_interp()
        runs = Threads(lambda: _barrier_cycles(barrier, n),
                       lambda: a.call(_barrier_cycles, barrier, n),
                       lambda: b.call(_barrier_cycles, barrier, n))
        indices = runs.join(150)
        for i, round_ in enumerate(zip(*indices)):
            assert sorted(round_) == [0, 1, 2], f'round {i}: {round_}'
        # The action ran once per cycle, in the interpreter of the thread
        # that completed the cycle (the one whose index is parties - 1).
        main_id = interpreters.get_current().id
        logs = [_defs.sync_action_log(), a.call(_defs.sync_action_log),
                b.call(_defs.sync_action_log)]
        for iid, log, mine in zip((main_id, a.id, b.id), logs, indices):
            assert log == [iid] * mine.count(2)
        assert sum(map(len, logs)) == n
        assert (barrier.n_waiting, barrier.broken) == (0, False)

    @pytest.mark.parametrize('last', ['main', 'sub'])
    def test_action_runs_where_barrier_completes(self, new_interp, last):
        barrier = sync.Barrier(2, action=_defs.sync_action)
        interp = new_interp()
        if last == 'sub':
            first = Threads(lambda: barrier.wait(JOIN))
            wait_until(lambda: barrier.n_waiting == 1, 'the first party',
                       first.errors)
            assert interp.call(_barrier_wait, barrier, JOIN) == 1
            expected_main, expected_sub = [], [interp.id]
        else:
            first = Threads(lambda: interp.call(_barrier_wait, barrier, JOIN))
            wait_until(lambda: barrier.n_waiting == 1, 'the first party',
                       first.errors)
            assert barrier.wait(JOIN) == 1
            expected_main, expected_sub = [interpreters.get_current().id], []
        assert first.join() == [0]
        assert _defs.sync_action_log() == expected_main
        assert interp.call(_defs.sync_action_log) == expected_sub

    def test_action_fails_in_subinterpreter(self, new_interp):
        barrier = sync.Barrier(2, action=_defs.sync_action_fails)
        interp = new_interp()
        first = Threads(lambda: barrier.wait(JOIN))
        wait_until(lambda: barrier.n_waiting == 1, 'the first party',
                   first.errors)
        raises_in_target('SpamError', interp.call, _barrier_wait, barrier,
                         JOIN)
        with pytest.raises(BrokenBarrierError):
            first.join()
        assert barrier.broken is True

    def test_abort_from_main(self, new_interp):
        barrier = sync.Barrier(3)
        a, b = new_interp(), new_interp()
        waiters = Threads(*[lambda i=i: i.call(_barrier_wait, barrier, JOIN)
                            for i in (a, b)])
        wait_until(lambda: barrier.n_waiting == 2, 'two parties',
                   waiters.errors)
        barrier.abort()
        waiters.join(check=False)
        assert len(waiters.errors) == 2
        for exc in waiters.errors:
            check_failed_with(exc, 'BrokenBarrierError')
        raises_in_target('BrokenBarrierError', a.call, _barrier_wait,
                         barrier, JOIN)

    def test_timeout_in_subinterpreter_breaks_it_for_main(self, new_interp):
        barrier = sync.Barrier(3)
        interp = new_interp()
        patient = Threads(lambda: barrier.wait(JOIN))
        wait_until(lambda: barrier.n_waiting == 1, 'the first party',
                   patient.errors)
        raises_in_target('BrokenBarrierError', interp.call, _barrier_wait,
                         barrier, SHORT)
        with pytest.raises(BrokenBarrierError):
            patient.join()
        assert barrier.broken is True


# ===========================================================================
# 3. Stress


@pytest.mark.timeout(120)
@pytest.mark.parametrize('kind,depth', [('Lock', 1), ('RLock', 2)])
def test_stress_counter_under_lock(new_interp, kind, depth):
    # 3 interpreters x 4 threads, each counting n times under one lock;
    # the counter is a shared buffer read and written non-atomically.
    # (With a Semaphore(100) for a lock, 1,500 rounds already lose counts
    # and see violations; this takes well under a second with a Lock.)
    n_interps, n_threads, n = 3, 4, scaled(30_000)
    lock = getattr(sync, kind)()
    buf = bytearray(16)
    mv = memoryview(buf)
    args = (lock, mv, n, depth, None)
    interps = [new_interp() for _ in range(n_interps)]
    runs = Threads(*[
        (lambda interp=interp:
            interp.call(_run_in_threads, _hammer, n_threads, args))
        for interp in interps])
    violations = runs.join(100)
    assert violations == [[0] * n_threads] * n_interps
    assert int.from_bytes(buf[8:16], 'little') == n_interps * n_threads * n
    assert buf[0] == 0
    assert lock.locked() is False


# ===========================================================================
# 4. Interrupts


BLOCKING = ['Lock', 'RLock', 'Semaphore', 'Event', 'Condition', 'Barrier']


def blocking_primitive(kind):
    """A primitive that _block_on() blocks on, with no timeout, until
    this thread lets it go."""
    if kind in ('Lock', 'RLock'):
        obj = getattr(sync, kind)()
        obj.acquire()
        return obj
    return {'Semaphore': lambda: sync.Semaphore(0), 'Event': sync.Event,
            'Condition': sync.Condition,
            'Barrier': lambda: sync.Barrier(2)}[kind]()


def let_go(kind, obj):
    """Release whatever is still blocked on obj (cleanup on failure)."""
    try:
        if kind in ('Lock', 'RLock'):
            obj.release()
        elif kind == 'Semaphore':
            obj.release(10)
        elif kind == 'Event':
            obj.set()
        elif kind == 'Condition':
            with obj:
                obj.notify_all()
        else:
            obj.abort()
    except RuntimeError:
        pass


def consistent_lock(interp, lock):
    assert lock.locked() is True            # still ours
    assert interp.call(_acquire, lock, False) is False
    lock.release()
    assert interp.call(_acquire_release, lock, JOIN) is True
    assert lock.locked() is False


def consistent_rlock(interp, rlock):
    # Still owned by this thread, once: other threads can't take it.
    assert Threads(lambda: interp.call(_acquire, rlock, False)).join() \
        == [False]
    rlock.release()
    with pytest.raises(RuntimeError):
        rlock.release()
    assert Threads(lambda: interp.call(_acquire_release, rlock, JOIN)) \
        .join() == [True]


def consistent_semaphore(interp, sem):
    # The interrupted waiter took no permit, and left none behind.
    assert sem.acquire(False) is False
    sem.release()
    assert interp.call(_acquire_release, sem, JOIN) is True
    assert [sem.acquire(False), sem.acquire(False)] == [True, False]


def consistent_event(interp, ev):
    assert ev.is_set() is False
    ev.set()
    assert interp.call(_event_wait, ev, None, JOIN, None) is True


def consistent_condition(interp, cond):
    # wait() took the lock back before raising, and the with released it
    assert cond.acquire(False) is True
    cond.release()
    ready = interpreters.create_queue()
    waiter = Threads(lambda: interp.call(_cond_wait, cond, ready, JOIN, None))
    get_from(ready, waiter.errors)
    with cond:
        cond.notify()
    assert waiter.join() == [True]


def consistent_barrier(interp, barrier):
    # As threading: a waiter that leaves with an exception does not break
    # the barrier.
    wait_until(lambda: barrier.n_waiting == 0, 'the barrier to drain')
    assert barrier.broken is False
    other = Threads(lambda: interp.call(_barrier_wait, barrier, JOIN))
    mine = barrier.wait(JOIN)
    assert sorted(other.join() + [mine]) == [0, 1]


CONSISTENT = {
    'Lock': consistent_lock, 'RLock': consistent_rlock,
    'Semaphore': consistent_semaphore, 'Event': consistent_event,
    'Condition': consistent_condition, 'Barrier': consistent_barrier,
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize('kind', BLOCKING)
def test_interrupt_ends_wait(new_interp, kind):
    obj = blocking_primitive(kind)
    interp = new_interp()
    ready = interpreters.create_queue()
    waiter = Threads(lambda: interp.call(_block_on, kind, obj, ready))
    try:
        assert get_from(ready, waiter.errors) == kind
        time.sleep(0.3)         # blocked in the wait by now
        assert waiter.done == [], 'the wait ended by itself'
        start = time.monotonic()
        assert Threads(interp.interrupt).join() == [True]
        waiter.join(PROMPT, check=False)
        assert time.monotonic() - start < PROMPT
    finally:
        if waiter.alive():
            let_go(kind, obj)
            waiter.join(check=False)
    assert len(waiter.errors) == 1, waiter.errors
    check_failed_with(waiter.errors[0], 'KeyboardInterrupt')
    CONSISTENT[kind](interp, obj)


@pytest.mark.timeout(120)
def test_interrupt_ends_wait_of_call_in_thread(new_interp, thread_errors):
    ev = sync.Event()
    interp = new_interp()
    ready = interpreters.create_queue()
    t = interp.call_in_thread(_event_wait, ev, ready, None, None)
    get_from(ready, thread_errors)
    time.sleep(0.3)
    assert interp.interrupt() is True
    t.join(PROMPT)
    if t.is_alive():
        ev.set()
        t.join(JOIN)
        pytest.fail('interrupt() did not end the wait')
    assert len(thread_errors) == 1
    check_failed_with(thread_errors[0], 'KeyboardInterrupt')
    assert ev.is_set() is False


# -- Ctrl-C (subprocesses) --------------------------------------------------

SIGINT_PRELUDE = '''\
import faulthandler, os, signal, sys, threading, time
faulthandler.dump_traceback_later(30, exit=True)
import subinterpreters as interpreters
from subinterpreters import sync

def sigint_soon(ready=lambda: True):
    def fire():
        while not ready():
            time.sleep(0.01)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=fire, daemon=True).start()

'''

# name: (setup, the blocking statement)
CTRL_C_WAITS = {
    'Event.wait': ('ev = sync.Event()', 'ev.wait()'),
    'Event.wait(timeout)': ('ev = sync.Event()', 'ev.wait(timeout=300)'),
    'Lock.acquire': ('lock = sync.Lock()\nlock.acquire()', 'lock.acquire()'),
    'Lock.acquire(timeout)': ('lock = sync.Lock()\nlock.acquire()',
                              'lock.acquire(timeout=300)'),
    'RLock.acquire': ('rlock = sync.RLock()\n'
                      'holder = threading.Thread(target=rlock.acquire)\n'
                      'holder.start()\n'
                      'holder.join()',
                      'rlock.acquire()'),
    'Semaphore.acquire': ('sem = sync.Semaphore(0)', 'sem.acquire()'),
    'Condition.wait': ('cond = sync.Condition()\ncond.acquire()',
                       'cond.wait()'),
    'Barrier.wait': ('barrier = sync.Barrier(2)', 'barrier.wait()'),
}


def check_uncaught_sigint(rc, out, err, block, expected_rc=-signal.SIGINT):
    # Python ends an uncaught Ctrl-C by killing itself with SIGINT.
    check_clean(rc, out, err, expected_rc=expected_rc)
    assert 'blocking' in out
    assert 'not interrupted' not in out, out
    lines = err.rstrip().splitlines()
    assert lines and lines[-1] == 'KeyboardInterrupt', err
    assert block in err, err        # the traceback points at the wait


@pytest.mark.timeout(120)
@pytest.mark.parametrize('name', sorted(CTRL_C_WAITS))
def test_ctrl_c_ends_wait_in_main_thread(run_python, name):
    setup, block = CTRL_C_WAITS[name]
    code = (SIGINT_PRELUDE + setup + '\n'
            'sigint_soon()\n'
            'print("blocking", flush=True)\n'
            + block + '\n'
            'print("not interrupted", flush=True)\n')
    start = time.monotonic()
    rc, out, err = run_python(code, timeout=90, script=True)
    # The watchdog (30 s) bounds "promptly".
    check_uncaught_sigint(rc, out, err, block)
    assert time.monotonic() - start < 60


@pytest.mark.timeout(120)
def test_ctrl_c_ends_wait_in_call(run_python):
    code = SIGINT_PRELUDE + '''\
interp = interpreters.create()
ev = sync.Event()

def wait_for_event(ev):
    return ev.wait()

sigint_soon(interp.is_running)
print('blocking', flush=True)
interp.call(wait_for_event, ev)
print('not interrupted', flush=True)
'''
    rc, out, err = run_python(code, timeout=90, script=True)
    # 3.12/3.13 keep the "unhandled KeyboardInterrupt" flag in the
    # runtime, and the interrupted code's traceback formatting in the
    # subinterpreter can reset it (see test_faults.py): status 1 then.
    check_uncaught_sigint(rc, out, err, 'interp.call(wait_for_event, ev)',
                          rc if rc in (1, -signal.SIGINT) else -signal.SIGINT)


@pytest.mark.timeout(120)
def test_ctrl_c_leaves_primitives_consistent(run_python):
    code = SIGINT_PRELUDE + '''\
def interrupted(f, *args):
    sigint_soon()
    try:
        f(*args)
    except KeyboardInterrupt:
        return True
    return False

def other_thread(f, *args):
    result = []
    t = threading.Thread(target=lambda: result.append(f(*args)))
    t.start()
    t.join(30)
    return result[0]

lock = sync.Lock()
lock.acquire()
assert interrupted(lock.acquire)
assert lock.locked() and not lock.acquire(False)
lock.release()
assert lock.acquire(False)
lock.release()
print('ok Lock', flush=True)

sem = sync.Semaphore(0)
assert interrupted(sem.acquire)
sem.release()
assert sem.acquire(False) and not sem.acquire(False)
print('ok Semaphore', flush=True)

cond = sync.Condition()
def wait_in_with():
    with cond:
        cond.wait()
assert interrupted(wait_in_with)
assert other_thread(cond.acquire, False)    # the with released it
print('ok Condition', flush=True)

barrier = sync.Barrier(2)
assert interrupted(barrier.wait)
assert barrier.n_waiting == 0 and not barrier.broken
t = threading.Thread(target=barrier.wait, args=(30,))
t.start()
assert barrier.wait(30) in (0, 1)
t.join(30)
print('ok Barrier', flush=True)
'''
    rc, out, err = run_python(code, timeout=90, script=True)
    check_clean(rc, out, err)
    for kind in ('Lock', 'Semaphore', 'Condition', 'Barrier'):
        assert f'ok {kind}' in out, out + err


# ===========================================================================
# 5. Closing an interpreter while one of its threads waits

# exec()'d in the subinterpreter, with obj, kind and w (a pipe) in
# __main__: a threading.Thread that waits on obj forever and writes how
# the wait ended.
CLOSE_WAITER = r'''
import os, threading
import subinterpreters

def waiter():
    os.write(w, b'waiting\n')
    try:
        if kind in ('Lock', 'Semaphore'):
            obj.acquire()
        elif kind == 'Event(timeout)':
            obj.wait(300)
        else:
            obj.wait()
    except BaseException as exc:
        line = (f'{type(exc).__name__} '
                f'{isinstance(exc, subinterpreters.InterpreterError)}')
    else:
        line = 'returned'
    os.write(w, line.encode() + b'\n')

threading.Thread(target=waiter).start()
'''

CLOSE_PRELUDE = r'''
import faulthandler, os, select, threading, time
faulthandler.dump_traceback_later(60, exit=True)
import subinterpreters as interpreters
from subinterpreters import sync

WAITER = {waiter!r}
r, w = os.pipe()

def read_line(timeout=30):
    """A line from the waiters, or None if none comes within timeout."""
    data = b''
    deadline = time.monotonic() + timeout
    while not data.endswith(b'\n'):
        ready, _, _ = select.select(
            [r], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return None
        data += os.read(r, 1)
    return data.decode().strip()

def start_waiter(interp, obj, kind):
    interp.prepare_main(obj=obj, kind=kind, w=w)
    interp.exec(WAITER)
'''

CLOSE_SCRIPT = CLOSE_PRELUDE + r'''
kind = {kind!r}
if kind == 'Lock':
    obj = sync.Lock()
    obj.acquire()
elif kind == 'Semaphore':
    obj = sync.Semaphore(0)
elif kind == 'Barrier':
    obj = sync.Barrier(2)
else:
    obj = sync.Event()
interp = interpreters.create()
start_waiter(interp, obj, kind)
assert read_line() == 'waiting'
time.sleep(0.3)
start = time.monotonic()
interp.close()
print('closed in', round(time.monotonic() - start, 2), flush=True)
print('waiter:', read_line(), flush=True)

# the primitive still works for main
if kind == 'Lock':
    assert obj.locked()
    obj.release()
    assert obj.acquire(timeout=5)
    obj.release()
elif kind == 'Semaphore':
    obj.release()
    assert obj.acquire(timeout=5)
    assert not obj.acquire(False)
elif kind == 'Barrier':
    assert obj.n_waiting == 0, obj.n_waiting
    obj.reset()
    t = threading.Thread(target=obj.wait, args=(30,))
    t.start()
    assert obj.wait(30) in (0, 1)
    t.join(30)
else:
    assert not obj.is_set()
    obj.set()
    assert obj.wait(5)
print('usable', flush=True)
'''


@pytest.mark.timeout(120)
@pytest.mark.parametrize('kind', ['Event', 'Event(timeout)', 'Lock',
                                  'Semaphore', 'Barrier'])
def test_close_ends_wait_of_interpreter_thread(run_python, kind):
    code = CLOSE_SCRIPT.format(waiter=CLOSE_WAITER, kind=kind)
    rc, out, err = run_python(code, timeout=100, script=True)
    check_clean(rc, out, err)
    assert re.search(r'^closed in [\d.]+$', out, re.M), out + err
    match = re.search(r'^waiter: (\w+) (\w+)$', out, re.M)
    assert match, out + err
    name, is_interpreter_error = match.groups()
    assert is_interpreter_error == 'True', \
        f'the wait ended with {name}, not an InterpreterError'
    assert 'usable' in out, out + err


CLOSE_ONE_OF_TWO = CLOSE_PRELUDE + r'''
ev = sync.Event()
a = interpreters.create()
b = interpreters.create()
start_waiter(a, ev, 'Event')
start_waiter(b, ev, 'Event')
assert [read_line(), read_line()] == ['waiting', 'waiting']
time.sleep(0.3)
a.close()
print('a:', read_line(), flush=True)
# b's waiter is still waiting, and a set() wakes it
assert read_line(0.5) is None, 'b was woken too'
ev.set()
print('b:', read_line(), flush=True)
b.close()
'''


@pytest.mark.timeout(120)
def test_close_ends_only_its_own_waits(run_python):
    code = CLOSE_ONE_OF_TWO.format(waiter=CLOSE_WAITER)
    rc, out, err = run_python(code, timeout=100, script=True)
    check_clean(rc, out, err)
    assert re.search(r'^a: \w+ True$', out, re.M), out + err
    assert re.search(r'^b: returned$', out, re.M), out + err


# ===========================================================================
# 6. Lifetime and leaks


def check_new_with_state(kind, obj):
    """Check, in main, the state _new_with_state() gave obj (called in
    this thread), and that obj still works."""
    if kind == 'Lock':
        assert obj.locked() is True
        obj.release()
        assert obj.acquire(False) is True
        obj.release()
    elif kind == 'RLock':
        # acquired by this OS thread, inside the closed interpreter
        assert Threads(lambda: obj.acquire(False)).join() == [False]
        obj.release()
        with pytest.raises(RuntimeError):
            obj.release()
        assert Threads(lambda: _acquire_release(obj, JOIN)).join() == [True]
    elif kind == 'Semaphore':
        assert [obj.acquire(False) for _ in range(3)] == [True, True, False]
    elif kind == 'BoundedSemaphore':
        obj.release()
        with pytest.raises(ValueError):
            obj.release()
    elif kind == 'Event':
        assert obj.is_set() is True
    elif kind == 'Condition':
        with obj:
            obj.notify()
            assert obj.wait(0.01) is False
    else:
        assert obj.parties == 2
        other = Threads(lambda: obj.wait(JOIN))
        mine = obj.wait(JOIN)
        assert sorted(other.join() + [mine]) == [0, 1]


class TestLifetime:

    @pytest.mark.parametrize('kind', KINDS)
    def test_outlives_creating_interpreter(self, new_interp, kind):
        interp = new_interp()
        obj, oid = interp.call(_new_with_state, kind)
        interp.close()
        gc.collect()
        assert obj.id == oid
        check_new_with_state(kind, obj)

    @pytest.mark.parametrize('kind', KINDS)
    def test_kept_alive_by_subinterpreter_only(self, new_interp, kind):
        interp = new_interp()
        obj, oid = _new_with_state(kind)
        interp.prepare_main(x=obj)
        del obj
        gc.collect()
        back = interp.call(_main_global, 'x')
        assert back.id == oid
        assert interp.call(_main_global, 'x') is back
        interp.close()
        check_new_with_state(kind, back)

    def test_kept_alive_by_queue_item(self):
        q = interpreters.create_queue()
        ev = sync.Event()
        ev.set()
        oid = ev.id
        q.put(ev)
        del ev
        gc.collect()
        ev = q.get()
        assert ev.id == oid and ev.is_set()

    def test_condition_keeps_its_lock(self, new_interp):
        lock = sync.Lock()
        cond = sync.Condition(lock)
        interp = new_interp()
        interp.prepare_main(cond=cond)
        del lock
        gc.collect()
        interp.exec('with cond:\n    cond.notify()')
        with cond:
            assert cond.wait(0.01) is False

    def test_barrier_action_outlives_creating_interpreter(self, new_interp):
        interp = new_interp()
        barrier = interp.call(_new_barrier_with_action)
        interp.close()
        assert barrier.wait() == 0
        # the action ran here, in the interpreter completing the barrier
        assert _defs.sync_action_log() == [interpreters.get_current().id]

    def test_no_primitive_left_behind(self, new_interp):
        count = getattr(_core, '_shared_count', None)
        if count is None:
            pytest.skip('no counting hook (_core._shared_count)')
        gc.collect()
        before = count()
        objs = tuple(new(sync, kind) for kind in KINDS) \
            + (sync.Condition(sync.Lock()),
               sync.Barrier(2, action=_defs.sync_action))
        assert count() >= before + len(objs)
        interp = new_interp()
        interp.prepare_main(objs=objs)
        for kind in KINDS:
            interp.call(_new, kind)           # made and dropped there
        q = interpreters.create_queue()
        q.put(objs)
        q.get()
        del objs
        gc.collect()
        assert count() > before               # the subinterpreter's
        interp.close()
        gc.collect()
        assert count() == before


LEAK_SCRIPT = r'''
import gc, os, sys
sys.path[:0] = {path!r}
import subinterpreters as interpreters
from subinterpreters import _core, sync
import _defs

def rss_kb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])

interp = interpreters.create()
interp.exec(f"__import__('sys').path[:] = {{sys.path!r}}")

def make_and_drop():
    from subinterpreters import sync
    lock = sync.Lock()
    lock.acquire()
    ev = sync.Event()
    ev.set()
    sync.Barrier(2)

def make_one():
    from subinterpreters import sync
    return sync.Lock()

def op_local(i):
    lock = sync.Lock()
    lock.acquire()
    lock.release()
    with sync.RLock():
        pass
    ev = sync.Event()
    ev.set()
    ev.wait(0)
    barrier = sync.Barrier(1, action=_defs.spam_minimal)
    barrier.wait()
    sem = sync.BoundedSemaphore(2)
    sem.acquire()
    sem.release()
    cond = sync.Condition(lock)
    with cond:
        cond.notify()

def op_cross(i):
    objs = (sync.Lock(), sync.Event(), sync.Barrier(2))
    assert interp.call(_defs.spam_returns_arg, objs) == objs
    interp.prepare_main(x=objs[1])

def op_sub(i):
    interp.call(make_and_drop)
    interp.call(make_one)

OP = globals()['op_' + {op!r}]
N, ROUNDS = {n}, {rounds}
count = getattr(_core, '_shared_count', None)

def run_round():
    for i in range(N):
        OP(i)
    gc.collect()

def objects():
    interp.exec('x = None')
    gc.collect()
    return count() if count is not None else 0

run_round()                         # warm-up
run_round()
before = objects()
rss = []
for _ in range(ROUNDS):
    run_round()
    rss.append(rss_kb())
after = objects()
print('rss', rss, 'objects', before, after, flush=True)
print('RESULT', rss[-1] - rss[0], after - before, flush=True)
'''

LEAK_OPS = {'local': 10_000, 'cross': 3000, 'sub': 3000}
LEAK_ROUNDS = 5
LEAK_LIMIT_RSS = 4 * 1024       # KB, first to last round


@pytest.mark.timeout(180)
@pytest.mark.parametrize('op', sorted(LEAK_OPS))
def test_create_and_drop_does_not_grow_memory(run_python, op):
    code = LEAK_SCRIPT.format(path=sys.path[:3], op=op, n=LEAK_OPS[op],
                              rounds=LEAK_ROUNDS)
    rc, out, err = run_python(code, timeout=150)
    check_clean(rc, out, err)
    print(out)
    match = re.search(r'^RESULT (-?\d+) (-?\d+)$', out, re.M)
    assert match, out + err
    rss, objects = map(int, match.groups())
    assert objects == 0, f'{objects} primitives left behind\n{out}'
    if not SANITIZED:
        assert rss <= LEAK_LIMIT_RSS, f'{op}: RSS grew by {rss} KB\n{out}'


# ---------------------------------------------------------------------------
# Races the reviews found


def test_abort_during_action_leaves_barrier_broken():
    # abort() while the action runs (here: by the action itself; threading
    # would deadlock on its own lock) breaks the barrier for the waiters;
    # the thread that ran the action returns its index, as threading's
    # does; reset() makes it usable again.
    barrier = sync.Barrier(2, action=_defs.sync_action_aborts)
    _defs.ABORTED_IN_ACTION[:] = [barrier]
    try:
        outcome = []

        def wait():
            try:
                outcome.append(barrier.wait(timeout=JOIN))
            except threading.BrokenBarrierError:
                outcome.append('broken')

        threads = [threading.Thread(target=wait) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN)
        assert sorted(map(str, outcome)) in (['1', 'broken'],
                                              ['0', 'broken'])
        assert barrier.broken
        barrier.reset()
        assert not barrier.broken
        two = sync.Barrier(2, timeout=JOIN)
        t = threading.Thread(target=two.wait)
        t.start()
        two.wait()
        t.join(JOIN)
    finally:
        _defs.ABORTED_IN_ACTION.clear()


CLOSE_WITH_LOCK_HELD = r'''
import os, sys, time
sys.path[:0] = {path!r}
import subinterpreters as interpreters
from subinterpreters import sync

lock = sync.{kind}()
cond = sync.Condition(lock)
r, w = os.pipe()
interp = interpreters.create()
interp.prepare_main(cond=cond, w=w)
interp.exec("""if True:
    import os, threading
    def waiter():
        try:
            with cond:
                os.write(w, b"w")
                cond.wait()
        except BaseException as exc:
            os.write(w, type(exc).__name__.encode())
    threading.Thread(target=waiter).start()
""")
assert os.read(r, 1) == b"w"
with cond:          # held here while the waiter's interpreter closes
    interp.close()
    print("closed", lock.locked(), flush=True)
print("released", lock.locked(), os.read(r, 100).decode(), flush=True)
'''


@pytest.mark.parametrize('kind', ['Lock', 'RLock'])
def test_close_while_condition_lock_held_elsewhere(kind, run_python):
    # The waiter cannot take the lock back (main holds it): close() ends
    # its wait anyway, and its "with cond:" does not let go of main's hold.
    rc, out, err = run_python(
        CLOSE_WITH_LOCK_HELD.format(path=sys.path[:3], kind=kind),
        timeout=60)
    assert rc == 0, f'rc={rc}\n{out}\n{err}'
    assert 'closed True' in out, out
    assert 'released False InterpreterError' in out, out


FORK_PICKLES = r'''
import os, pickle, sys
sys.path[:0] = {path!r}
from subinterpreters import sync
import subinterpreters as interpreters

before = sync.Lock()
before_data = pickle.dumps(before)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    ok = pickle.loads(before_data) is before   # made before the fork
    mine = sync.Lock()                         # same id as the parent's next
    os.write(w, (b"1" if ok else b"0") + pickle.dumps(mine))
    os._exit(0)
os.waitpid(pid, 0)
data = os.read(r, 10000)
after = sync.Lock()                            # the id the child used
print("child loaded the parent's:", data[:1] == b"1")
try:
    pickle.loads(data[1:])
    print("loaded the child's pickle")
except interpreters.InterpreterError as exc:
    print("refused:", exc)
'''


def test_pickles_across_fork(run_python):
    rc, out, err = run_python(FORK_PICKLES.format(path=sys.path[:3]),
                              timeout=60)
    assert rc == 0, f'rc={rc}\n{out}\n{err}'
    assert "child loaded the parent's: True" in out, out
    assert 'refused: ' in out and 'another process' in out, out
