"""asyncio glue: ``Interpreter.acall()``, ``Queue.aget()`` and
``Queue.aput()`` (the C methods hand over to the coroutines here).

Queues.  A coroutine awaiting a queue holds no thread: the event loop
watches one descriptor per queue and direction (a ``_QueueWatch``, which
puts and gets in every interpreter signal, see queue_aio.c) and wakes as
many waiting coroutines, oldest first, as the queue can now serve.  Each
then tries ``get_nowait()``/``put`` itself, so an item is only ever taken
by the coroutine that returns it: a cancelled or timed-out waiter loses
nothing and passes its turn on.

Calls.  ``acall()`` runs ``call()`` in a helper thread (calls need an OS
thread to run in; the helpers are kept and reused) and wakes the event
loop with the outcome.  Cancelling the awaiting task interrupts the call
(``interrupt(unwind=True)``) and waits for it to stop, so that when
``CancelledError`` reaches the caller the interpreter is free again.
"""

import asyncio
import collections
import concurrent.futures
import os
import threading

from ._queues import QueueEmpty, QueueFull

__all__ = ['interp_call', 'queue_get', 'queue_put']

# How often a cancelled acall() interrupts its call again while it waits
# for it to stop (an interrupt sent before the call entered its
# interpreter found nothing to interrupt).
_REINTERRUPT_EVERY = 0.05

# Helper threads for acall(): made when no idle one is left, each runs one
# call at a time.  The bound only queues calls beyond that many in flight
# in one interpreter.
_HELPERS_MAX = 1024


def _check_timeout(timeout):
    """The timeout in seconds (None: no limit), validated as get()/put()
    validate it."""
    if timeout is None:
        return None
    if isinstance(timeout, (str, bytes, bytearray)):
        raise TypeError(f'must be real number, not {type(timeout).__name__}')
    t = float(timeout)
    if not t >= 0:  # negative or NaN
        raise ValueError('timeout value must be non-negative')
    return t


# ---------------------------------------------------------------------
# Queues

class _Entry:
    """One awaiting coroutine: fut is what it awaits until woken."""
    __slots__ = ('fut',)

    def __init__(self):
        self.fut = None


class _Waiters:
    """The coroutines of one event loop awaiting one queue for one
    direction, and the watch that tells the loop the queue changed."""

    def __init__(self, loop, queue, put, key):
        self.loop = loop
        self.queue = queue
        self.put = put
        self.key = key
        self.entries = collections.deque()
        self.watch = queue._watch(put)
        try:
            loop.add_reader(self.watch.fileno(), self._readable)
        except BaseException:
            self.watch.close()
            raise

    def _readable(self):
        self.watch.drain()
        self.wake()

    def wake(self):
        """Wake as many waiters, oldest first, as the queue can serve now
        (all of them if it is gone: they find out themselves)."""
        q = self.queue
        try:
            n = q.qsize()
            if self.put:
                n = q.maxsize - n if q.maxsize > 0 else len(self.entries)
        except Exception:
            n = len(self.entries)
        for entry in self.entries:
            if n <= 0:
                break
            fut = entry.fut
            if fut is not None and not fut.done():
                fut.set_result(None)
            n -= 1  # woken now or before: it will take its turn

    def remove(self, entry):
        self.entries.remove(entry)
        if not self.entries:
            _waiters.pop(self.key, None)
            try:
                self.loop.remove_reader(self.watch.fileno())
            finally:
                self.watch.close()


# (loop, queue id, put) -> _Waiters, while some coroutine waits.
_waiters = {}


def _forget_closed_loops():
    """Drop the waiters of loops closed while coroutines still waited
    (their finally clauses never ran): their watches and queue bindings
    would live for ever."""
    for key, waiters in list(_waiters.items()):
        if key[0].is_closed():
            del _waiters[key]
            waiters.entries.clear()
            waiters.watch.close()


async def _wait_for_queue(queue, put, attempt, timeout):
    """Return attempt() (the operation without blocking), awaiting a change
    of the queue each time it would block, for at most timeout seconds;
    then raise what attempt() raises."""
    blocked = QueueFull if put else QueueEmpty
    try:
        return attempt()
    except blocked:
        if timeout == 0:
            raise
    loop = asyncio.get_running_loop()
    key = (loop, queue.id, put)
    waiters = _waiters.get(key)
    if waiters is None:
        _forget_closed_loops()
        waiters = _waiters[key] = _Waiters(loop, queue, put, key)
    entry = _Entry()
    waiters.entries.append(entry)
    done = False
    try:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    # The watch is linked before this try: a change after
                    # it wakes us.
                    try:
                        res = attempt()
                        done = True
                        return res
                    except blocked:
                        pass
                    entry.fut = loop.create_future()
                    await entry.fut
        except TimeoutError:
            res = attempt()  # one last try; else QueueEmpty/QueueFull
            done = True
            return res
    finally:
        woken = entry.fut is not None and entry.fut.done()
        waiters.remove(entry)
        if woken and not done and waiters.entries:
            waiters.wake()  # pass the turn we did not take


async def queue_get(queue, timeout=None):
    """Queue.aget(): see its docstring."""
    return await _wait_for_queue(queue, False, queue.get_nowait,
                                 _check_timeout(timeout))


async def queue_put(queue, obj, timeout=None, *, unbounditems=None):
    """Queue.aput(): see its docstring."""
    timeout = _check_timeout(timeout)
    item = queue._pack(obj, unbounditems)
    await _wait_for_queue(queue, True, lambda: queue._put_packed(item),
                          timeout)


# ---------------------------------------------------------------------
# Calls

_helpers = None
_helpers_lock = threading.Lock()


def _helper_pool():
    global _helpers
    with _helpers_lock:
        if _helpers is None:
            # Imported for its exit hook: one Ctrl-C must interrupt the
            # calls in flight before concurrent.futures joins the helpers
            # (executor._register_exit_hook() orders the two).
            from . import executor  # noqa: F401
            _helpers = concurrent.futures.ThreadPoolExecutor(
                _HELPERS_MAX, thread_name_prefix='subinterpreters-acall')
        return _helpers


def _after_fork_in_child():
    # The helper threads and the event loops' watches stay in the parent.
    global _helpers, _helpers_lock
    _helpers = None
    _helpers_lock = threading.Lock()
    _waiters.clear()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Call:
    """One acall() in flight: runs in a helper thread, interrupted from
    the event loop's thread."""

    def __init__(self, interp, func, args, kwargs):
        self.interp = interp
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.lock = threading.Lock()
        self.state = 'pending'  # -> 'running' -> 'done'; or 'cancelled'

    def run(self):
        with self.lock:
            if self.state == 'cancelled':
                return None
            self.state = 'running'
        try:
            return self.interp.call(self.func, *self.args, **self.kwargs)
        finally:
            with self.lock:
                self.state = 'done'
            self.func = self.args = self.kwargs = None

    def interrupt(self):
        """Stop the call: True while it still has to end, False if it
        will not run or has ended."""
        with self.lock:
            if self.state == 'pending':
                self.state = 'cancelled'
                return False
            if self.state == 'running':
                try:
                    self.interp.interrupt(unwind=True)
                except Exception:
                    pass  # the interpreter is gone: the call fails anyway
                return True
            return False


async def interp_call(interp, func, /, *args, **kwargs):
    """Interpreter.acall(): see its docstring."""
    call = _Call(interp, func, args, kwargs)
    cfut = _helper_pool().submit(call.run)
    fut = asyncio.wrap_future(cfut)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        # The call's outcome is dropped: retrieved whenever it comes.
        fut.add_done_callback(_drop_outcome)
        # Interrupt until the call has stopped, then let the cancellation
        # through: the interpreter is free when the caller sees it.  A
        # second cancel stops the waiting.  interrupt() runs in a helper:
        # it waits for the interpreter's GIL, which a long C call holds.
        pool = _helper_pool()
        while await asyncio.wrap_future(pool.submit(call.interrupt)):
            await asyncio.wait([fut], timeout=_REINTERRUPT_EVERY)
        if not cfut.done() and call.state == 'cancelled':
            cfut.cancel()
        raise


def _drop_outcome(fut):
    if not fut.cancelled():
        fut.exception()
