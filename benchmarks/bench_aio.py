"""asyncio and Dask (issue 16): what an event loop pays to use another
interpreter, and what a Dask worker gains from an interpreter pool.

* ``acall``: ``await interp.acall(f)`` of a tiny function, one after the
  other, vs ``interp.call(f)`` outside any loop (its cost without the
  loop's hand-off) and ``await asyncio.to_thread(f)`` (what an asyncio
  program uses to keep the loop free for blocking work).
* ``aget``: a round trip through two queues between an event loop in the
  main interpreter and a subinterpreter echoing in its own thread
  (``await q1.aput(i)``; ``await q2.aget()``), vs the same with blocking
  ``put()``/``get()`` (no loop) and with ``await
  asyncio.to_thread(q2.get)`` (a thread per waiting get, what one would
  do without ``aget``).  Time per round trip: two wake-ups.
* ``dask``: 8 CPU-bound pure-Python tasks (``_tasks``-sized work) per
  sample on a ``LocalCluster`` already running: one worker with two
  threads (the default executor), the same worker with our plugin and
  the tasks annotated ``executor="interpreters"``, and two single-thread
  worker processes.  Needs dask and distributed in the venv (else the
  rows report as not runnable).

No backport rows: the backport has no asyncio API.
"""

import asyncio
import time

import _impls
from _harness import Group, Spec, case

perf_counter = time.perf_counter


def tiny():
    return 1


# --- acall --------------------------------------------------------------------

@case('acall/ours', 'ours', 'await interp.acall(f)')
class AcallOurs:
    def __init__(self):
        self.interp = _impls.ours().create()
        self.interp.call(tiny)  # warm: code cached, helper thread made
        asyncio.run(self.interp.acall(tiny))

    def run(self, n):
        async def loop():
            acall = self.interp.acall
            t0 = perf_counter()
            for _ in range(n):
                await acall(tiny)
            return perf_counter() - t0
        return asyncio.run(loop())

    def close(self):
        self.interp.close()


@case('acall/call', 'ours', 'interp.call(f), no event loop')
class AcallSync(AcallOurs):
    def run(self, n):
        call = self.interp.call
        t0 = perf_counter()
        for _ in range(n):
            call(tiny)
        return perf_counter() - t0


@case('acall/to_thread', 'base', 'await asyncio.to_thread(f)')
class AcallToThread:
    def __init__(self):
        asyncio.run(asyncio.to_thread(tiny))

    def run(self, n):
        async def loop():
            t0 = perf_counter()
            for _ in range(n):
                await asyncio.to_thread(tiny)
            return perf_counter() - t0
        return asyncio.run(loop())

    def close(self):
        pass


# --- aget round trips ---------------------------------------------------------

ECHO = '''
while (x := q1.get()) is not None:
    q2.put(x)
'''


@case('aget/ours', 'ours', 'await q1.aput(i); await q2.aget()')
class AgetOurs:
    def __init__(self):
        import threading
        mod = _impls.ours()
        self.q1, self.q2 = mod.create_queue(), mod.create_queue()
        self.interp = mod.create()
        self.interp.prepare_main(q1=self.q1, q2=self.q2)
        self.thread = threading.Thread(target=self.interp.exec,
                                       args=(ECHO,))
        self.thread.start()

    async def _round_trips(self, n):
        aput, aget = self.q1.aput, self.q2.aget
        t0 = perf_counter()
        for i in range(n):
            await aput(i)
            await aget()
        return perf_counter() - t0

    def run(self, n):
        return asyncio.run(self._round_trips(n))

    def close(self):
        self.q1.put(None)
        self.thread.join()
        self.interp.close()


@case('aget/blocking', 'ours', 'q1.put(i); q2.get(), no event loop')
class AgetBlocking(AgetOurs):
    def run(self, n):
        put, get = self.q1.put, self.q2.get
        t0 = perf_counter()
        for i in range(n):
            put(i)
            get()
        return perf_counter() - t0


@case('aget/to_thread', 'ours',
      'q1.put(i); await asyncio.to_thread(q2.get)')
class AgetToThread(AgetOurs):
    async def _round_trips(self, n):
        put, get = self.q1.put, self.q2.get
        t0 = perf_counter()
        for i in range(n):
            put(i)
            await asyncio.to_thread(get)
        return perf_counter() - t0


# --- Dask ---------------------------------------------------------------------

def busy(seed):
    # About 20 ms of pure Python on this machine.
    total = seed
    for i in range(300_000):
        total = (total * 31 + i) % 1_000_003
    return total


class _Cluster:
    """A LocalCluster started once per case; run(n) computes n rounds of
    8 tasks."""
    TASKS = 8
    n_workers, threads, plugin = 1, 2, False

    def __init__(self):
        import dask
        from distributed import Client, LocalCluster
        self.dask = dask
        self.cluster = LocalCluster(
            n_workers=self.n_workers, threads_per_worker=self.threads,
            processes=True, host='127.0.0.1', dashboard_address=None)
        self.client = Client(self.cluster)
        if self.plugin:
            from subinterpreters.dask import InterpreterPoolPlugin
            self.client.register_plugin(InterpreterPoolPlugin())
        self.run(1)  # warm: imports in the workers and their interpreters

    def run(self, n):
        import contextlib
        t0 = perf_counter()
        for r in range(n):
            with (self.dask.annotate(executor='interpreters')
                  if self.plugin else contextlib.nullcontext()):
                futures = self.client.map(busy, range(self.TASKS),
                                          pure=False)
            self.client.gather(futures)
        return perf_counter() - t0

    def close(self):
        self.client.close()
        self.cluster.close()


@case('dask/interpreters', 'ours',
      '1 worker x 2 threads, tasks in its interpreter pool')
class DaskOurs(_Cluster):
    plugin = True


@case('dask/threads', 'base', '1 worker x 2 threads (default executor)')
class DaskThreads(_Cluster):
    pass


@case('dask/processes', 'base', '2 worker processes x 1 thread')
class DaskProcesses(_Cluster):
    n_workers, threads = 2, 1


def groups(quick):
    reps = 3 if quick else 5
    target = 0.1 if quick else 0.3
    return [
        Group('acall', 'a tiny function called from an event loop (time '
              'per call)', [
                  Spec('ours', 'acall/ours'),
                  Spec('call', 'acall/call'),
                  Spec('to_thread', 'acall/to_thread'),
              ], repeats=reps, target=target, rate=True),
        Group('aget', 'queue round trip loop <-> subinterpreter (time per '
              'round trip, two wake-ups)', [
                  Spec('ours', 'aget/ours'),
                  Spec('blocking', 'aget/blocking'),
                  Spec('to_thread', 'aget/to_thread'),
              ], repeats=reps, target=target, rate=True),
        Group('dask', 'Dask LocalCluster: 8 CPU-bound pure-Python tasks '
              '(~20 ms each) per round (time per round)', [
                  Spec('ours', 'dask/interpreters'),
                  Spec('threads', 'dask/threads'),
                  Spec('processes', 'dask/processes'),
              ], n=2 if quick else 5, repeats=reps, timeout=600),
    ]
