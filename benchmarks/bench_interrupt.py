"""Stopping code (issue 17): the time from ``Interpreter.interrupt()`` to
the interrupted ``exec()`` raising in its thread.

* ``interrupt``: code spinning in a pure-Python loop; code in
  ``time.sleep(60)`` (our sleep wakes at once); code that swallows the
  KeyboardInterrupt in a bare ``except:`` and goes on, stopped with
  ``interrupt(unwind=True)``.  Reference: a SIGINT sent to this process
  while its main thread spins, until the KeyboardInterrupt is caught (the
  fastest interruption CPython offers, and only for the main thread).

No backport rows: the backport has no interrupt.
"""

import os
import signal
import threading
import time

import _impls
from _harness import Group, Spec, case

perf_counter = time.perf_counter

SPIN = 'while True: pass'
SLEEP = 'import time; time.sleep(60)'
STUBBORN = '''
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
'''


class _Interrupt:
    """run(n): n times, start code in a thread, interrupt it once it
    runs, and add up the time until exec() has raised there."""
    source, unwind = SPIN, False

    def __init__(self):
        mod = _impls.ours()
        self.interp = mod.create()
        self.failed = mod.ExecutionFailed
        self.run(1)

    def _one(self):
        raised = []

        def target():
            try:
                self.interp.exec(self.source)
            except self.failed:
                raised.append(perf_counter())
        t = threading.Thread(target=target)
        t.start()
        while not self.interp.is_running():
            time.sleep(0.0005)
        time.sleep(0.01)  # well inside the code
        t0 = perf_counter()
        if self.unwind:
            self.interp.interrupt(unwind=True)
        else:
            self.interp.interrupt()
        t.join(30)
        assert raised, 'not interrupted'
        return raised[0] - t0

    def run(self, n):
        return sum(self._one() for _ in range(n))

    def close(self):
        self.interp.close()


@case('interrupt/spin', 'ours', 'interrupt(): a pure-Python loop')
class InterruptSpin(_Interrupt):
    pass


@case('interrupt/sleep', 'ours', 'interrupt(): time.sleep(60)')
class InterruptSleep(_Interrupt):
    source = SLEEP


@case('interrupt/unwind', 'ours',
      'interrupt(unwind=True): a loop that swallows it')
class InterruptUnwind(_Interrupt):
    source, unwind = STUBBORN, True


@case('interrupt/sigint', 'base',
      'SIGINT to the main thread spinning (CPython)')
class InterruptSigint:
    def __init__(self):
        self.run(1)

    def _one(self):
        timer = threading.Timer(0.01, self._kill)
        timer.start()
        try:
            while True:
                pass
        except KeyboardInterrupt:
            t1 = perf_counter()
        timer.join()
        return t1 - self.t0

    def _kill(self):
        self.t0 = perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    def run(self, n):
        old = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return sum(self._one() for _ in range(n))
        finally:
            signal.signal(signal.SIGINT, old)

    def close(self):
        pass


def groups(quick):
    reps = 3 if quick else 5
    return [
        Group('interrupt', 'interrupt() -> exception raised in the '
              'interrupted thread (latency)', [
                  Spec('spin', 'interrupt/spin'),
                  Spec('sleep', 'interrupt/sleep'),
                  Spec('unwind', 'interrupt/unwind'),
                  Spec('sigint', 'interrupt/sigint'),
              ], n=5 if quick else 20, repeats=reps),
    ]
