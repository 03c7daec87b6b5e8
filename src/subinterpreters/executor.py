"""InterpreterPoolExecutor: 3.14's ``concurrent.futures`` pool of
interpreters, for 3.12 and 3.13.

Owns: the executor class, its worker threads and the worker interpreters
they create.  What runs *inside* a worker interpreter lives in
``_worker.py``, which stays cheap to import there.

Model.  Each worker is a thread of the creating interpreter that owns one
interpreter (``create()``) for its life: the thread sets the interpreter's
``sys.path`` to the pool's snapshot, runs the initializer, then runs each
task as ``interp.call(_worker.run, fn, args, kwargs)``; it closes the
interpreter when it exits.  ``max_tasks_per_worker`` swaps in a fresh
interpreter after that many tasks.  The queueing, idle-worker reuse and
shutdown protocol are ThreadPoolExecutor's (this is a subclass, so asyncio
accepts it as its default executor), but 3.12/3.13's ThreadPoolExecutor has
no per-worker context hooks (3.14's WorkerContext), so the worker loop is
our own.  Workers are registered in ``concurrent.futures.thread``'s exit
machinery, so they are joined (and close their interpreters) before the
process's non-daemon threads, as for ThreadPoolExecutor.

Speed.  A tiny task costs about as much as one ``Interpreter.call``, and
everything around it runs under the creating interpreter's GIL, shared by
the submitting thread and every worker: so the per-task path avoids
Python-level machinery where it can do the same thing cheaper (the
Future's Condition, the idle semaphore once every worker exists, a lock
round per state change, per-call submit() in map()).  Each shortcut keeps
the behaviour of the code it replaces; its comment says which.

Threads.  ``submit``/``map``/``shutdown`` may be called from any thread
of the creating interpreter.  ``_WorkerState`` fields are written only by
their worker thread; ``future`` and ``interp`` are also read by other
threads, under ``_WorkerState.lock``.
"""

import collections
import contextvars
import functools
import io
import itertools
import os
import pickle
import queue
import sys
import threading
import time
import weakref
from _thread import RLock as _RLock
from concurrent.futures import _base
from concurrent.futures import thread as _thread

from . import _worker
from ._core import (
    ExecutionFailed,
    InterpreterError,
    InterpreterNotFoundError,
    NotShareableError,
    create as _create_interpreter,
)

__all__ = ['InterpreterPoolExecutor', 'BrokenInterpreterPool']

# Every pool not yet collected, for _stop_after_ctrl_c() in __init__.py.
_live_pools = weakref.WeakSet()
# How often _stop() interrupts again the tasks it waits for (seconds).
_STOP_POLL = 0.05


def _register_exit_hook():
    # Again after concurrent.futures.thread's own hook, which joins the
    # workers: threading runs these hooks in reverse order, so this copy
    # runs first (the hook acts once).  Main interpreter only.
    from . import _stop_after_ctrl_c, get_current
    if get_current().id != 0:
        return
    try:
        threading._register_atexit(_stop_after_ctrl_c)
    except RuntimeError:
        pass  # the interpreter is shutting down already


_register_exit_hook()


class BrokenInterpreterPool(_thread.BrokenThreadPool):
    """Raised when a worker interpreter failed to initialize (its
    initializer raised or could not be shipped); the pool is then unusable.
    """


_BROKEN_MSG = ('A thread initializer failed, the thread pool is not '
               'usable anymore')


def _default_max_workers():
    # As 3.14: process_cpu_count() is new in 3.13.
    count = getattr(os, 'process_cpu_count', os.cpu_count)()
    return min(32, (count or os.cpu_count() or 1) + 4)


# ---------------------------------------------------------------------------
# failures coming back from a worker


def _execution_failed(failed):
    """The ExecutionFailed for a _worker.TaskFailed: the excinfo the core
    took in the worker."""
    return ExecutionFailed(failed.excinfo)


class _MainUnpickler(pickle.Unpickler):
    """Reads the worker's '<fake __main__>' (the parent's script, re-run
    there) as this interpreter's ``__main__``."""

    def find_class(self, module, name):
        if module == _worker.FAKE_MAIN:
            module = '__main__'
        return super().find_class(module, name)


def _exception_from(failed):
    """The exception a failed task raises in the caller: the original
    exception (unpickled) with the ExecutionFailed as its __cause__, or the
    ExecutionFailed itself when the original cannot be rebuilt here."""
    cause = _execution_failed(failed)
    if failed.pickled is None:
        return cause
    try:
        exc = _MainUnpickler(io.BytesIO(failed.pickled)).load()
    except Exception:
        return cause
    if not isinstance(exc, BaseException):
        return cause
    exc.__cause__ = cause  # also sets __suppress_context__
    return exc


# ---------------------------------------------------------------------------
# workers


_PENDING = _base.PENDING
_RUNNING = _base.RUNNING
_FINISHED = _base.FINISHED


class _Condition(threading.Condition):
    """A threading.Condition over a new RLock, cheaper to create.

    ``Condition.__init__`` binds five lock methods per instance (about
    two thirds of the cost of a Future); here they are looked up through
    the lock when used, which only waiting and ``wait()``/``as_completed()``
    do.  Behaves as ``threading.Condition(threading.RLock())``.
    """

    def __init__(self):
        self._lock = _RLock()
        self._waiters = collections.deque()

    def acquire(self, *args, **kwargs):
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        return self._lock.release()

    def _release_save(self):
        return self._lock._release_save()

    def _acquire_restore(self, state):
        return self._lock._acquire_restore(state)

    def _is_owned(self):
        return self._lock._is_owned()


class _TaskFuture(_base.Future):
    """A Future whose cancel() also stops a task that is already running:
    the worker's interpreter is interrupted (KeyboardInterrupt in the
    task), the future becomes cancelled at once, and the worker goes on
    with the next task.

    Also the per-task fast path: a cheaper ``__init__`` (same attributes
    as ``Future.__init__``), and ``_start``/``_settle`` for the worker,
    which do what ``set_running_or_notify_cancel`` and
    ``cancelled()``+``set_result``/``set_exception`` do, with one lock
    round each.
    """

    _worker = None  # the _WorkerState running this future, once running

    def __init__(self):
        self._condition = _Condition()
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._waiters = []
        self._done_callbacks = []

    def cancel(self):
        with self._condition._lock:
            if self._state != _RUNNING:
                running = False
            else:
                running = True
                self._state = _base.CANCELLED_AND_NOTIFIED
                for waiter in self._waiters:
                    waiter.add_cancelled(self)
                self._condition.notify_all()
        if not running:
            return super().cancel()
        worker = self._worker
        if worker is not None:
            worker.interrupt(self)
        self._invoke_callbacks()
        return True

    def _Future__get_result(self):
        # What result() returns or raises.  3.12/3.13's Future tests "if
        # self._exception:", which loses an exception whose __bool__ or
        # __len__ says false (result() returned None); 3.14 tests "is not
        # None", as here.
        if self._exception is not None:
            try:
                raise self._exception
            finally:
                self = None  # no cycle through the traceback's frame
        return self._result

    def _start(self, worker):
        """set_running_or_notify_cancel(), also recording the worker (for
        cancel()) when the future starts running."""
        with self._condition._lock:
            if self._state == _PENDING:
                self._state = _RUNNING
                self._worker = worker
                return True
        return self.set_running_or_notify_cancel()  # cancelled (or bug)

    def _settle(self, result, exc):
        """Set the outcome of a task that ran, unless cancel() interrupted
        it meanwhile (then the outcome is not reported)."""
        cond = self._condition
        with cond._lock:
            self._worker = None
            if self._state != _RUNNING:
                return
            if exc is None:
                self._result = result
                self._state = _FINISHED
                for waiter in self._waiters:
                    waiter.add_result(self)
            else:
                self._exception = exc
                self._state = _FINISHED
                for waiter in self._waiters:
                    waiter.add_exception(self)
            if cond._waiters:
                cond.notify_all()
        if self._done_callbacks:
            self._invoke_callbacks()


# A work item in the queue is a tuple (future, fn, args, kwargs): cheaper
# to make than an object, and only this module reads the queue (shutdown()
# is ours too).  map() passes _NO_KWARGS, which nothing may change.
_NO_KWARGS = {}

# map() submits its calls in batches of this many (see _submit_calls).
_SUBMIT_BATCH = 64


class _InitFailed(Exception):
    """Internal: the worker could not (re)create its interpreter."""


# Looked up once: the worker loop uses them for every task.
_run = _worker.run
_TaskFailed = _worker.TaskFailed


class _WorkerState:
    """One worker thread's interpreter and its current task.

    Written only by the worker thread.  ``interp`` and ``future`` change
    under ``lock``, so that another thread holding ``lock`` sees a
    consistent pair: the interpreter running ``future`` right now (the
    seam for cancelling a running task with ``Interpreter.interrupt()``).
    """

    def __init__(self, sys_path, initializer, initargs, max_tasks,
                 isolated=True):
        self.lock = threading.Lock()
        self.interp = None      # the worker's Interpreter, or None
        self.future = None      # the Future being run in interp, or None
        self.tasks_done = 0     # tasks run by the current interpreter
        self.lost = False       # interp was closed behind our back
        self.sys_path = sys_path
        self.initializer = initializer
        self.initargs = initargs
        self.max_tasks = max_tasks
        self.isolated = isolated

    def start(self):
        """Create and initialize this worker's interpreter.  Raises
        _InitFailed (the interpreter closed again) with the cause set."""
        assert self.interp is None
        try:
            interp = _create_interpreter(isolated=self.isolated)
        except BaseException as exc:
            raise _InitFailed() from exc
        with self.lock:
            self.interp = interp
            self.tasks_done = 0
            self.lost = False
        try:
            interp.call(_worker.set_sys_path, self.sys_path)
            if self.initializer is not None:
                res = interp.call(_worker.run, self.initializer,
                                  self.initargs, {})
                if type(res) is _worker.TaskFailed:
                    raise _exception_from(res)
        except BaseException as exc:
            self.stop()
            raise _InitFailed() from exc

    def stop(self):
        """Close the interpreter, if any.  Never raises."""
        with self.lock:
            interp, self.interp = self.interp, None
        if interp is not None:
            try:
                interp.close()
            except InterpreterNotFoundError:
                pass  # someone else closed it
            except Exception:
                _base.LOGGER.critical('Could not close a worker interpreter',
                                      exc_info=True)

    def run(self, future, fn, args, kwargs):
        """Run one work item in the interpreter and settle its future."""
        if not future._start(self):
            return
        with self.lock:
            self.future = future
        try:
            res = self.interp.call(_run, fn, args, kwargs)
            if type(res) is _TaskFailed:
                exc = _exception_from(res)
            else:
                exc = None
        except NotShareableError as e:
            # The task, an argument or the result could not be shipped.
            e.add_note(f'(while running task {fn!r} in a worker '
                       f'interpreter)')
            exc = e
            res = None
        except InterpreterNotFoundError as e:
            # Someone closed our interpreter: fail this task, and get a
            # new interpreter before the next one.
            self.lost = True
            exc = e
            res = None
        except BaseException as e:
            # call() itself failed (InterpreterError, MemoryError, ...).
            exc = e
            res = None
        finally:
            with self.lock:
                self.future = None
            self.tasks_done += 1
        future._settle(res, exc)
        exc = None  # break the cycle through the traceback

    def interrupt(self, future):
        """Interrupt the task of future if this worker is still running it
        (called by _TaskFuture.cancel() from any thread).  Holding the lock
        keeps the worker from starting its next task meanwhile."""
        with self.lock:
            if self.future is future and self.interp is not None:
                try:
                    self.interp.interrupt(unwind=True)
                except InterpreterError:
                    pass  # the interpreter is gone: nothing to stop

    def recycle_due(self):
        """True if the interpreter must be replaced before the next task."""
        return self.lost or (self.max_tasks is not None
                             and self.tasks_done >= self.max_tasks)


def _worker_main(executor_ref, state, work_queue):
    """Body of a worker thread (see the module docstring)."""
    try:
        try:
            state.start()
        except _InitFailed as exc:
            _initializer_failed(executor_ref, exc)
            return
        while True:
            try:
                item = work_queue.get_nowait()
            except queue.Empty:
                # Idle: let submit() reuse this worker instead of adding
                # one -- unless the pool has all its workers (then submit()
                # no longer looks, and threads are never removed).
                executor = executor_ref()
                if (executor is not None
                        and len(executor._threads) < executor._max_workers):
                    executor._idle_semaphore.release()
                del executor
                item = work_queue.get(block=True)

            if item is not None:
                state.run(*item)
                del item  # drop references to the task and its arguments
                if state.recycle_due():
                    state.stop()
                    try:
                        state.start()
                    except _InitFailed as exc:
                        _initializer_failed(executor_ref, exc)
                        return
                continue

            executor = executor_ref()
            # Exit if the process is exiting, the executor was collected, or
            # it was shut down; wake the next worker the same way.
            if _thread._shutdown or executor is None or executor._shutdown:
                if executor is not None:
                    executor._shutdown = True
                work_queue.put(None)
                return
            del executor
    except BaseException:
        _base.LOGGER.critical('Exception in worker', exc_info=True)
    finally:
        state.stop()
        executor = executor_ref()
        if executor is not None:
            executor._workers.discard(state)
        del executor


def _initializer_failed(executor_ref, exc):
    # Log the real failure (with its ExecutionFailed/NotShareableError
    # cause chain), not our internal wrapper.
    _base.LOGGER.critical('Exception in initializer:',
                          exc_info=exc.__cause__ or exc)
    executor = executor_ref()
    if executor is not None:
        executor._initializer_failed()


# ---------------------------------------------------------------------------
# the executor


def _in_script_rerun():
    """True when called (indirectly) from the top level of a script that a
    worker interpreter is re-running as '<fake __main__>' to find the
    parent's __main__ functions."""
    frame = sys._getframe(2)
    while frame is not None:
        if (frame.f_code.co_name == '<module>'
                and frame.f_globals.get('__name__') == _worker.FAKE_MAIN):
            return True
        frame = frame.f_back
    return False


def _unwrap_context_run(fn, args, kwargs):
    """(f, args, kwargs) for fn = functools.partial(ctx.run, f, ...) -- what
    asyncio.to_thread() and loop.run_in_executor() callers submit to the
    loop's default executor -- or for partial(contextvars.Context.run, ctx,
    f, ...): a Context cannot enter another interpreter, so f runs there
    alone (context variables set by the caller are not seen).  Any other
    partial is returned as it is."""
    run, pargs = fn.func, fn.args
    if run is contextvars.Context.run:
        if len(pargs) < 2 or not isinstance(pargs[0], contextvars.Context):
            return fn, args, kwargs
        pargs = pargs[1:]
    elif not (pargs and getattr(run, '__name__', None) == 'run' and
              isinstance(getattr(run, '__self__', None), contextvars.Context)):
        return fn, args, kwargs
    return pargs[0], pargs[1:] + args, {**fn.keywords, **kwargs}


class InterpreterPoolExecutor(_thread.ThreadPoolExecutor):
    """A ThreadPoolExecutor whose workers each run tasks in their own
    interpreter (with its own GIL), so pure-Python tasks run in parallel.

    Tasks, arguments and results cross interpreters the way
    ``Interpreter.call()`` ships them: natively, as code (stateless
    functions) or by pickle.  What cannot be shipped fails that task's
    future with ``NotShareableError``.
    """

    BROKEN = BrokenInterpreterPool

    def __init__(self, max_workers=None, thread_name_prefix='',
                 initializer=None, initargs=(), *, max_tasks_per_worker=None,
                 isolated=True):
        """Initializes a new InterpreterPoolExecutor instance.

        Args:
            max_workers: The maximum number of worker interpreters (and
                threads); default min(32, CPU count + 4).
            thread_name_prefix: An optional name prefix for the threads.
            initializer: A callable run in each new worker interpreter
                before its first task.  Scripts (str) are not supported.
            initargs: A tuple of arguments for the initializer.
            max_tasks_per_worker: If given, a worker replaces its
                interpreter with a fresh one (and reruns the initializer)
                after this many tasks.
            isolated: True (the default) gives each worker an isolated
                interpreter with its own GIL.  False gives legacy ones
                (``create(isolated=False)``): they share the main
                interpreter's GIL, so tasks do not run in parallel, but
                they can import single-phase extension modules.
        """
        if _in_script_rerun():
            raise RuntimeError(
                'an InterpreterPoolExecutor was created while a worker '
                'interpreter re-ran the main script to find its functions; '
                "guard the script's entry point with "
                "\"if __name__ == '__main__':\"")
        if max_workers is None:
            max_workers = _default_max_workers()
        if max_workers <= 0:
            raise ValueError('max_workers must be greater than 0')
        if isinstance(initializer, str):
            raise TypeError('scripts not supported')
        if initializer is not None and not callable(initializer):
            # 3.14 only fails later, in the worker; fail early instead.
            raise TypeError('initializer must be a callable')
        if max_tasks_per_worker is not None:
            if not isinstance(max_tasks_per_worker, int) or isinstance(
                    max_tasks_per_worker, bool):
                raise TypeError('max_tasks_per_worker must be an int')
            if max_tasks_per_worker < 1:
                raise ValueError('max_tasks_per_worker must be >= 1')
        if not isinstance(isolated, bool):
            raise TypeError(f'isolated must be True or False, not '
                            f'{type(isolated).__name__}')
        if not thread_name_prefix:
            thread_name_prefix = ('InterpreterPoolExecutor-%d'
                                  % self._counter())
        super().__init__(max_workers, thread_name_prefix)
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._max_tasks_per_worker = max_tasks_per_worker
        self._isolated = isolated
        self._sys_path = list(sys.path)
        # _WorkerState of each live worker (the seam for interrupting
        # running tasks).  Workers add and remove themselves; iterate over
        # a snapshot (tuple(self._workers)).
        self._workers = set()
        _live_pools.add(self)

    def submit(self, fn, /, *args, **kwargs):
        if type(fn) is functools.partial:
            fn, args, kwargs = _unwrap_context_run(fn, args, kwargs)
        with self._shutdown_lock, _thread._global_shutdown_lock:
            self._check_submit(fn)
            future = _TaskFuture()
            self._work_queue.put((future, fn, args, kwargs))
            self._adjust_thread_count()
            return future
    submit.__doc__ = _base.Executor.submit.__doc__

    def _check_submit(self, fn):
        # Needs self._shutdown_lock.
        if self._broken:
            raise BrokenInterpreterPool(self._broken)
        if self._shutdown:
            raise RuntimeError('cannot schedule new futures after shutdown')
        if _thread._shutdown:
            raise RuntimeError('cannot schedule new futures after '
                               'interpreter shutdown')
        if isinstance(fn, str):
            raise TypeError('scripts not supported')

    def _submit_calls(self, fn, calls, futures):
        """submit(fn, *args) for each args in the iterator calls, appending
        the futures to futures.  The same as calling submit() for each
        (when calls raises, the calls before are submitted), but the locks
        are taken once per batch: map() of tiny tasks spent a good part of
        its time in submit()."""
        put = self._work_queue.put
        adjust = self._adjust_thread_count
        while True:
            batch = []
            try:
                # extend() keeps what it got when the iterator raises.
                batch.extend(itertools.islice(calls, _SUBMIT_BATCH))
            finally:
                if batch:
                    with self._shutdown_lock, _thread._global_shutdown_lock:
                        self._check_submit(fn)
                        for args in batch:
                            future = _TaskFuture()
                            put((future, fn, args, _NO_KWARGS))
                            futures.append(future)
                            adjust()
            if len(batch) < _SUBMIT_BATCH:
                return

    def map(self, fn, *iterables, timeout=None, chunksize=1,
            buffersize=None):
        """Returns an iterator equivalent to map(fn, iter).

        Args:
            fn: A callable that will take as many arguments as there are
                passed iterables.
            timeout: The maximum number of seconds to wait. If None, then
                there is no limit on the wait time.
            chunksize: If greater than one, the iterables are cut into
                chunks of this size and each chunk is one task for a
                worker, which saves a round trip per item.  An exception
                then fails its whole chunk.
            buffersize: If not None, at most this many tasks (chunks) are
                submitted ahead of the results consumed, so the iterables
                may be endless (new in 3.14).

        Raises:
            TimeoutError: If the entire result iterator could not be
                generated before the given timeout.
            Exception: If fn(*args) raises for any values.
        """
        if buffersize is not None:
            if not isinstance(buffersize, int):
                raise TypeError('buffersize must be an integer or None')
            if buffersize < 1:
                raise ValueError('buffersize must be None or > 0')
        if chunksize < 1:
            raise ValueError('chunksize must be >= 1.')
        if isinstance(fn, str):
            raise TypeError('scripts not supported')
        if chunksize == 1:
            return self._ordered_results(fn, zip(*iterables), timeout,
                                         buffersize)
        calls = ((fn, chunk)
                 for chunk in _chunks(zip(*iterables), chunksize))
        return itertools.chain.from_iterable(self._ordered_results(
            _worker.run_chunk, calls, timeout, buffersize))

    def _ordered_results(self, fn, calls, timeout, buffersize):
        """Submit fn(*args) for each args in calls (all at once, or keeping
        buffersize ahead) and return an iterator over the results in order.
        The iterator holds the executor weakly; closing it cancels what is
        not yet done."""
        end_time = None if timeout is None else time.monotonic() + timeout
        calls = iter(calls)
        if buffersize is not None:
            calls_now = itertools.islice(calls, buffersize)
        else:
            calls_now = calls
        # Submitted here, before the first next(): map() is eager.
        futures = collections.deque()
        self._submit_calls(fn, calls_now, futures)
        executor_ref = weakref.ref(self)

        def results():
            try:
                while futures:
                    if buffersize is not None:
                        # Refill first, so that the buffer stays busy.
                        executor = executor_ref()
                        args = next(calls, None) if executor else None
                        if args is not None:
                            futures.append(executor.submit(fn, *args))
                        del executor, args
                    if end_time is None:
                        yield _result_or_cancel(futures.popleft())
                    else:
                        yield _result_or_cancel(
                            futures.popleft(), end_time - time.monotonic())
            finally:
                for future in futures:
                    future.cancel()

        return results()

    def _drain_work_queue(self, settle):
        # Needs self._shutdown_lock.  Takes every queued task off the
        # queue and settles its future with settle(future).
        while True:
            try:
                item = self._work_queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                settle(item[0])

    def __exit__(self, exc_type, exc_val, exc_tb):
        # Ctrl-C (or SystemExit) out of the with block: one press must end
        # the program, so queued tasks are cancelled and running ones
        # interrupted instead of waited for.  Anything else (an exception,
        # a cancelled coroutine, a closed generator) waits for them, as
        # ThreadPoolExecutor does.
        if exc_type is not None and issubclass(
                exc_type, (KeyboardInterrupt, SystemExit)):
            self._stop()
        else:
            self.shutdown(wait=True)
        return False

    def _stop(self, timeout=None):
        """Shut down, cancelling queued tasks and interrupting running
        ones until every worker has ended (a task that was just being
        taken off the queue when the first interrupt went out gets the
        next), or timeout seconds have passed."""
        self.shutdown(wait=False, cancel_futures=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(t.is_alive() for t in list(self._threads)):
            if deadline is not None and time.monotonic() >= deadline:
                return
            for state in tuple(self._workers):
                future = state.future
                if future is not None:
                    future.cancel()
            for t in list(self._threads):
                t.join(_STOP_POLL)

    def shutdown(self, wait=True, *, cancel_futures=False):
        # ThreadPoolExecutor's, for our work items.
        with self._shutdown_lock:
            self._shutdown = True
            if cancel_futures:
                self._drain_work_queue(lambda future: future.cancel())
            # Wake a worker blocked in get(); each exiting worker wakes the
            # next.
            self._work_queue.put(None)
        if cancel_futures:
            # Beyond ThreadPoolExecutor: running tasks are interrupted too,
            # so that shutdown returns promptly.
            for state in tuple(self._workers):
                future = state.future
                if future is not None:
                    future.cancel()
        if wait:
            for t in self._threads:
                t.join()
    shutdown.__doc__ = _base.Executor.shutdown.__doc__

    def _adjust_thread_count(self):
        # Nothing to do once every worker exists (the common case, checked
        # first: the idle semaphore costs more than a task's bookkeeping).
        num_threads = len(self._threads)
        if num_threads >= self._max_workers:
            return
        # Reuse an idle worker if there is one.
        if self._idle_semaphore.acquire(timeout=0):
            return

        # When the executor is collected, the weakref callback wakes the
        # workers so that they exit (and close their interpreters).
        def weakref_cb(_, q=self._work_queue):
            q.put(None)

        thread_name = '%s_%d' % (self._thread_name_prefix or self,
                                 num_threads)
        state = _WorkerState(self._sys_path, self._initializer,
                             self._initargs, self._max_tasks_per_worker,
                             self._isolated)
        t = threading.Thread(name=thread_name, target=_worker_main,
                             args=(weakref.ref(self, weakref_cb), state,
                                   self._work_queue))
        self._workers.add(state)
        t.start()
        self._threads.add(t)
        _thread._threads_queues[t] = self._work_queue

    def _initializer_failed(self):
        with self._shutdown_lock:
            self._broken = _BROKEN_MSG
            self._drain_work_queue(lambda future: future.set_exception(
                BrokenInterpreterPool(self._broken)))


def _result_or_cancel(future, timeout=None):
    """future.result(timeout), cancelling the future if that raises (a
    timeout).  Keeps no reference to the future or its result."""
    try:
        # Fast path: the outcome is set before the state, under the GIL.
        if future._state == _FINISHED and future._exception is None:
            return future._result
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise
    finally:
        del future


def _chunks(iterable, size):
    it = iter(iterable)
    while chunk := tuple(itertools.islice(it, size)):
        yield chunk
