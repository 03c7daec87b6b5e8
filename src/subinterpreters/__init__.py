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


if get_current().id == 0:
    _guard_fork()


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
