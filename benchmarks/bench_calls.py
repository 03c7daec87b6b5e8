"""Interpreter life cycle and calls: create()+close(), exec("pass"),
call(f, 1, 2), call_in_thread()+join against a bare thread.

The backport (interpreters-pep-734 0.5.0) has ``Interpreter.call(f)`` with
no arguments and no return value; its ``call`` rows measure that (the
closest it offers), plus one row that emulates a call with arguments and a
result through prepare_main() + exec() + a queue.
"""

import threading
import time

import _impls
import _tasks
from _harness import Group, Spec, case


# --- create + close ---------------------------------------------------------

@case('create_close/ours', 'ours', 'subinterpreters: create()+close()')
class CreateCloseOurs:
    def __init__(self):
        self.mod = _impls.ours()

    def run(self, n):
        create = self.mod.create
        t0 = time.perf_counter()
        for _ in range(n):
            create().close()
        return time.perf_counter() - t0

    def close(self):
        pass


@case('create_close/backport', 'backport', 'backport: create()+close()')
class CreateCloseBackport(CreateCloseOurs):
    def __init__(self):
        self.mod = _impls.backport()


# --- exec("pass") ----------------------------------------------------------

@case('exec/ours', 'ours', 'subinterpreters: exec("pass")')
class ExecOurs:
    def __init__(self):
        self.interp = _impls.ours().create()

    def run(self, n):
        run = self.interp.exec
        t0 = time.perf_counter()
        for _ in range(n):
            run('pass')
        return time.perf_counter() - t0

    def close(self):
        self.interp.close()


@case('exec/backport', 'backport', 'backport: exec("pass")')
class ExecBackport(ExecOurs):
    def __init__(self):
        self.interp = _impls.backport().create()


# --- call -------------------------------------------------------------------

@case('call/ours', 'ours', 'subinterpreters: call(add, 1, 2) -> 3')
class CallOurs:
    def __init__(self):
        self.interp = _impls.ours().create()

    def run(self, n):
        call, add = self.interp.call, _tasks.add
        t0 = time.perf_counter()
        for _ in range(n):
            call(add, 1, 2)
        elapsed = time.perf_counter() - t0
        assert call(add, 1, 2) == 3
        return elapsed

    def close(self):
        self.interp.close()


@case('call_noargs/ours', 'ours', 'subinterpreters: call(noop)')
class CallNoArgsOurs(CallOurs):
    def run(self, n):
        call, noop = self.interp.call, _tasks.noop
        t0 = time.perf_counter()
        for _ in range(n):
            call(noop)
        return time.perf_counter() - t0


@case('call_noargs/backport', 'backport',
      'backport: call(noop) (no args, result dropped)')
class CallNoArgsBackport(CallNoArgsOurs):
    def __init__(self):
        self.interp = _impls.backport().create()


@case('call_emulated/backport', 'backport',
      'backport: prepare_main(a=1, b=2) + exec("q.put(a + b)") + q.get()')
class CallEmulatedBackport:
    """A call with arguments and a result, built from what the backport
    has."""

    def __init__(self):
        self.interp = _impls.backport_interp(_impls.BACKPORT_QUEUE_MODULE)
        self.queue = _impls.backport_queue()
        self.interp.prepare_main(q=self.queue)

    def run(self, n):
        prep, run, get = self.interp.prepare_main, self.interp.exec, \
            self.queue.get
        t0 = time.perf_counter()
        for _ in range(n):
            prep(a=1, b=2)
            run('q.put(a + b)')
            get()
        elapsed = time.perf_counter() - t0
        prep(a=1, b=2)
        run('q.put(a + b)')
        assert get() == 3
        return elapsed

    def close(self):
        self.interp.close()


# --- call_in_thread + join vs a bare thread --------------------------------

@case('call_in_thread/ours', 'ours',
      'subinterpreters: call_in_thread(noop).join()')
class CallInThreadOurs:
    def __init__(self):
        self.interp = _impls.ours().create()

    def run(self, n):
        start, noop = self.interp.call_in_thread, _tasks.noop
        t0 = time.perf_counter()
        for _ in range(n):
            start(noop).join()
        return time.perf_counter() - t0

    def close(self):
        self.interp.close()


@case('call_in_thread/backport', 'backport',
      'backport: call_in_thread(noop).join()')
class CallInThreadBackport(CallInThreadOurs):
    def __init__(self):
        self.interp = _impls.backport().create()


@case('thread/base', 'base',
      'threading.Thread(target=noop).start(); join()')
class BareThread:
    def __init__(self):
        pass

    def run(self, n):
        Thread, noop = threading.Thread, _tasks.noop
        t0 = time.perf_counter()
        for _ in range(n):
            t = Thread(target=noop)
            t.start()
            t.join()
        return time.perf_counter() - t0

    def close(self):
        pass


def groups(quick):
    reps = 3 if quick else 7
    target = 0.05 if quick else 0.2
    return [
        Group('create_close', 'create() + close()', [
            Spec('ours', 'create_close/ours'),
            Spec('backport', 'create_close/backport'),
        ], repeats=reps, target=target * 1.5),
        Group('exec', 'exec("pass") in an existing interpreter', [
            Spec('ours', 'exec/ours'),
            Spec('backport', 'exec/backport'),
        ], repeats=reps, target=target),
        Group('call', 'call(f, small args) round trip with the result', [
            Spec('ours', 'call/ours'),
            Spec('backport', 'call_noargs/backport'),
            Spec('backport_emulated', 'call_emulated/backport'),
        ], repeats=reps, target=target,
            note='The backport\'s call() takes no arguments and drops the '
                 'result: its "call" row is call(noop), the closest it has; '
                 'the emulated row does a real round trip with '
                 'prepare_main + exec + queue.'),
        Group('call_noargs', 'call(f) with no arguments, result dropped', [
            Spec('ours', 'call_noargs/ours'),
            Spec('backport', 'call_noargs/backport'),
        ], repeats=reps, target=target),
        Group('call_in_thread', 'call_in_thread(f).join() vs a bare thread', [
            Spec('ours', 'call_in_thread/ours'),
            Spec('thread', 'thread/base'),
            Spec('backport', 'call_in_thread/backport'),
        ], repeats=reps, target=target),
    ]
