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
)

__all__ = [
    'get_current', 'get_main', 'create', 'list_all', 'is_shareable',
    'Interpreter',
    'InterpreterError', 'InterpreterNotFoundError', 'ExecutionFailed',
    'NotShareableError',
    'create_queue', 'Queue', 'QueueEmpty', 'QueueFull',
]


def __getattr__(name):
    # Heavier parts load on first use, so that importing the package in a
    # fresh interpreter stays cheap.
    if name in ('create_queue', 'Queue', 'QueueEmpty', 'QueueFull',
                'QueueError', 'QueueNotFoundError', 'ItemInterpreterDestroyed',
                'UNBOUND', 'UNBOUND_ERROR', 'UNBOUND_REMOVE'):
        from . import _queues
        return getattr(_queues, name)
    if name in ('InterpreterPoolExecutor', 'BrokenInterpreterPool'):
        from . import executor
        return getattr(executor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
