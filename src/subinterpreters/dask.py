"""Dask tasks on interpreter pools: ``InterpreterPoolPlugin``.

::

    from distributed import Client
    import dask
    from subinterpreters.dask import InterpreterPoolPlugin

    client = Client(n_workers=2)
    client.register_plugin(InterpreterPoolPlugin())
    with dask.annotate(executor="interpreters"):
        futures = client.map(cpu_bound, range(100))

Each worker gets an ``InterpreterPoolExecutor`` named ``"interpreters"``;
tasks annotated with that executor run in its interpreters, one GIL each,
so pure-Python tasks use every core of the worker's machine from one
worker process.

How a task gets there.  A worker hands tasks to an executor that is not a
thread pool as ``_run_task_simple(task, data, delay)``, which calls
``task(data)`` and reports the outcome (timings, size, the error message).
The pool keeps that report in the worker's interpreter, run by a thread of
the pool's own, and sends only ``task(data)`` into an interpreter: the
Task and its dependencies' data pickled with cloudpickle (functions of the
client's ``__main__`` travel by value, as Dask sends them), the result or
the exception (with its traceback, through tblib) pickled back.  So the
client gets results and exceptions exactly as from the default executor.

What a task cannot do in an interpreter: use an extension module that
does not support subinterpreters (numpy, pandas: ``python -m
subinterpreters check``), or the worker itself (``get_worker()``,
``worker_client()``, actors).
"""

import concurrent.futures

from distributed import WorkerPlugin

from . import _dask_task
from .executor import InterpreterPoolExecutor

__all__ = ['InterpreterPoolPlugin']


class InterpreterPoolPlugin(WorkerPlugin):
    """A worker plugin that installs an ``InterpreterPoolExecutor`` as the
    executor *name* of every worker it is registered with (*max_workers*
    interpreters; None: the worker's number of threads).  Tasks submitted
    under ``dask.annotate(executor=name)`` then run in it."""

    def __init__(self, name='interpreters', max_workers=None):
        if not isinstance(name, str) or not name:
            raise TypeError(f'name must be a non-empty str, got {name!r}')
        if max_workers is not None and (
                not isinstance(max_workers, int) or max_workers <= 0):
            raise ValueError('max_workers must be a positive int or None, '
                             f'got {max_workers!r}')
        self.name = name
        self.max_workers = max_workers

    def setup(self, worker):
        workers = self.max_workers or worker.state.nthreads
        old = worker.executors.get(self.name)
        worker.executors[self.name] = _WorkerPool(
            workers, thread_name_prefix=f'Dask-{self.name}')
        if isinstance(old, _WorkerPool):
            old.shutdown(wait=False, cancel_futures=True)

    def teardown(self, worker):
        pool = worker.executors.get(self.name)
        if isinstance(pool, _WorkerPool):
            del worker.executors[self.name]
            pool.shutdown(wait=False, cancel_futures=True)


def _is_run_task_simple(fn):
    return (getattr(fn, '__name__', None) == '_run_task_simple' and
            getattr(fn, '__module__', None) == 'distributed.worker')


class _InInterpreter:
    """Stands for a worker's Task in ``_run_task_simple()``: calling it
    runs the task in an interpreter of the pool."""

    __slots__ = ('pool', 'task')

    def __init__(self, pool, task):
        self.pool = pool
        self.task = task

    def __call__(self, data):
        import cloudpickle
        blob = cloudpickle.dumps((self.task, data), protocol=5)
        future = InterpreterPoolExecutor.submit(self.pool, _dask_task.run,
                                                blob)
        del blob
        ok, payload, *tb = future.result()
        value = cloudpickle.loads(payload)
        if ok:
            return value
        if tb[0] is not None:
            import tblib
            value = value.with_traceback(
                tblib.Traceback.from_dict(tb[0]).as_traceback())
        try:
            raise value
        finally:
            value = None


class _WorkerPool(InterpreterPoolExecutor):
    """The executor the plugin installs: an InterpreterPoolExecutor that
    turns the worker's ``_run_task_simple`` into a report made here around
    a task run in an interpreter."""

    def __init__(self, max_workers=None, thread_name_prefix=''):
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix)
        # Runs the worker's reports; each waits for its task.
        self._reports = concurrent.futures.ThreadPoolExecutor(
            self._max_workers,
            thread_name_prefix=f'{thread_name_prefix}-report')

    def submit(self, fn, /, *args, **kwargs):
        if _is_run_task_simple(fn) and len(args) == 3 and not kwargs:
            task, data, delay = args
            return self._reports.submit(fn, _InInterpreter(self, task),
                                        data, delay)
        return super().submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._reports.shutdown(wait=False, cancel_futures=cancel_futures)
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            self._reports.shutdown(wait=True)
