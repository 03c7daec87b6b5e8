"""Imports of the implementations under test, kept lazy.

Each worker process imports only the implementation it measures, so these
helpers are called from the case constructors, never at module level.
"""

import threading


def ours():
    import subinterpreters
    return subinterpreters


def backport():
    """The backport's ``interpreters`` module (interpreters-pep-734)."""
    from interpreters_backport import interpreters
    return interpreters


def backport_queues():
    from interpreters_backport.interpreters import queues
    return queues


def backport_pool():
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


BACKPORT_QUEUE_MODULE = 'interpreters_backport.interpreters.queues'


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
