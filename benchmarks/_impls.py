"""Imports of the implementations under test, kept lazy.

Each worker process imports only the implementation it measures, so these
helpers are called from the case constructors, never at module level.
"""

import sys
import threading

# The reference implementation each benchmark compares ours with: CPython's
# own C code.  On 3.14+ that is the standard library itself
# (concurrent.interpreters, concurrent.futures.InterpreterPoolExecutor);
# before, the PyPI backport interpreters-pep-734 (on 3.13 a thin layer over
# CPython's private _interpreters).  Its worker and rows keep the key
# 'backport'; REFERENCE is the name tables print.
STDLIB = sys.version_info >= (3, 14)
REFERENCE = 'stdlib' if STDLIB else 'backport'


def ours():
    import subinterpreters
    return subinterpreters


def backport():
    """The reference's ``interpreters`` module."""
    if STDLIB:
        from concurrent import interpreters
    else:
        from interpreters_backport import interpreters
    return interpreters


def backport_queue():
    """A new queue of the reference whose shareable items cross without
    pickle (the backport needs syncobj=True for that; 3.14 always does)."""
    if STDLIB:
        return backport().create_queue()
    from interpreters_backport.interpreters import queues
    return queues.create(syncobj=True)


def backport_pool():
    if STDLIB:
        from concurrent.futures import InterpreterPoolExecutor
    else:
        from interpreters_backport.concurrent.futures import (
            InterpreterPoolExecutor)
    return InterpreterPoolExecutor


def backport_interp(*modules):
    """A new backport interpreter with ``modules`` imported in it.

    The backport's C layer refuses to share a queue or a memoryview with an
    interpreter that has not imported the module defining it yet.
    """
    interp = backport().create()
    for mod in modules:
        interp.exec(f'import {mod}')
    return interp


BACKPORT_QUEUE_MODULE = ('concurrent.interpreters._queues' if STDLIB else
                         'interpreters_backport.interpreters.queues')


def run_in_threads(targets):
    """Start one thread per (callable, args) and join them all; re-raise the
    first failure."""
    errors = []

    def wrap(fn, args):
        try:
            fn(*args)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
