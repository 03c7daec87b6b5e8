"""Multiple interpreters in one process, each with its own GIL.

A drop-in implementation of Python 3.14's ``concurrent.interpreters``
(PEP 734) for CPython 3.12 and newer::

    import subinterpreters as interpreters
"""

from ._core import (
    create,
    list_all,
    get_current,
    get_main,
    is_shareable,
    Interpreter,
    InterpreterError,
    InterpreterNotFoundError,
    ExecutionFailed,
    NotShareableError,
    SharedDict,
)

__all__ = [
    'get_current', 'get_main', 'create', 'list_all', 'is_shareable',
    'Interpreter',
    'InterpreterError', 'InterpreterNotFoundError', 'ExecutionFailed',
    'NotShareableError',
    'create_queue', 'Queue', 'QueueEmpty', 'QueueFull',
    'SharedDict',
    'check_import',
]

from . import sync  # noqa: E402  (subinterpreters.sync.Lock, ...)

import collections.abc as _abc
_abc.MutableMapping.register(SharedDict)
del _abc


def _guard_fork():
    # CPython 3.12/3.13 crash the child of os.fork() while subinterpreters
    # exist (PyOS_AfterFork_Child clears them without a thread state).
    # Fail in the parent with a clear error instead.
    import functools
    import os
    real_fork = getattr(os, 'fork', None)
    if real_fork is None or getattr(real_fork, '_subinterpreters_guard',
                                    False):
        return

    @functools.wraps(real_fork)
    def fork():
        from . import _core
        # Closed interpreters kept for reuse are ended first (they are
        # subinterpreters too, as far as the child is concerned), and none
        # is parked until the fork is done.
        try:
            # Inside the try: an interrupt right after it must not leave
            # the count raised (_fork_end() does nothing without it).
            n = _core._fork_begin()
            if n:
                raise RuntimeError(
                    f'os.fork() while {n} subinterpreter(s) exist would '
                    'crash the child process (a CPython 3.12/3.13 bug); '
                    'close them first, or use the "spawn" or "forkserver" '
                    'start method')
            return real_fork()
        finally:
            _core._fork_end()

    fork._subinterpreters_guard = True
    os.fork = fork


_stopped_after_ctrl_c = False


def _ended_by_ctrl_c():
    """Is the program ending because of a KeyboardInterrupt nobody caught?
    PyErr_Print() records it in sys.last_exc; its outermost frame is the
    script's (or runpy's, for -m).  Not in the REPL (sys.ps1), where
    last_exc is only the last error shown."""
    import sys
    exc = getattr(sys, 'last_exc', None)
    if not isinstance(exc, KeyboardInterrupt) or hasattr(sys, 'ps1'):
        return False
    tb = exc.__traceback__
    name = tb.tb_frame.f_globals.get('__name__') if tb is not None else None
    return name in ('__main__', 'runpy')


def _stop_after_ctrl_c():
    """A threading exit hook (main interpreter): when the program ends
    because of a Ctrl-C nobody caught, stop what runs in our interpreters
    -- every pool's queued and running tasks, call_in_thread() calls --
    instead of waiting for them, so that one Ctrl-C ends the program.  A
    normal exit waits for threads, as Python does."""
    global _stopped_after_ctrl_c
    if _stopped_after_ctrl_c:
        return
    _stopped_after_ctrl_c = True
    try:
        if not _ended_by_ctrl_c():
            return
        from . import _core
        _core._note_ctrl_c_exit()
        import sys
        executor = sys.modules.get(__name__ + '.executor')
        pool_interps = set()
        for pool in list(getattr(executor, '_live_pools', ())):
            pool_interps.update(s.interp for s in tuple(pool._workers)
                                if s.interp is not None)
            pool._stop(timeout=_STOP_WAIT)
        me = get_current()
        for interp in list_all():
            try:
                if (interp.id != 0 and interp != me
                        and interp not in pool_interps
                        and interp.is_running()):
                    interp.interrupt(unwind=True)
            except InterpreterError:
                pass  # closed meanwhile
    except Exception as exc:  # never keep Python from joining its threads
        try:
            import sys
            print(f'subinterpreters: stopping work after Ctrl-C failed: '
                  f'{exc!r}', file=sys.stderr)
        except Exception:
            pass


# How long the exit hook waits for each pool's interrupted tasks (seconds);
# Python then waits for the threads as usual.
_STOP_WAIT = 5.0


if get_current().id == 0:
    _guard_fork()
    import threading as _threading
    try:
        _threading._register_atexit(_stop_after_ctrl_c)
    except RuntimeError:
        pass  # imported while the interpreter shuts down
    del _threading


def __getattr__(name):
    # Heavier parts load on first use, so that importing the package in a
    # fresh interpreter stays cheap.
    if name in ('create_queue', 'Queue', 'QueueEmpty', 'QueueFull',
                'QueueError', 'QueueNotFoundError', 'ItemInterpreterDestroyed',
                'UNBOUND', 'UNBOUND_ERROR', 'UNBOUND_REMOVE'):
        from . import _queues
        return getattr(_queues, name)
    if name == 'check_import':
        from ._check import check_import
        return check_import
    if name in ('InterpreterPoolExecutor', 'BrokenInterpreterPool'):
        from . import executor
        return getattr(executor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
