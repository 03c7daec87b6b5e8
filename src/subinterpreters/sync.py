"""Synchronisation primitives shared by every interpreter of the process.

``Lock``, ``RLock``, ``Condition``, ``Semaphore``, ``BoundedSemaphore``,
``Event`` and ``Barrier`` have the API and the semantics of the
``threading`` classes of the same names, and they cross interpreters:
pass one to ``Interpreter.call()``, ``prepare_main()``, a queue or an
``InterpreterPoolExecutor`` and the other interpreter gets an object for
the same primitive (equal, with the same ``id``).  An ``RLock`` (and a
``Condition``'s lock) is owned by an OS thread, whichever interpreter it
runs in.  Waits release the GIL and end with ``KeyboardInterrupt`` on
Ctrl-C (main thread) or ``Interpreter.interrupt()``, and with
``InterpreterError`` when the waiting thread's interpreter is closed.
"""

from threading import BrokenBarrierError

from ._core import (
    _sync_Lock as Lock,
    _sync_RLock as RLock,
    _sync_Condition as Condition,
    _sync_Semaphore as Semaphore,
    _sync_BoundedSemaphore as BoundedSemaphore,
    _sync_Event as Event,
    _sync_Barrier as Barrier,
)

__all__ = [
    'Lock', 'RLock', 'Condition', 'Semaphore', 'BoundedSemaphore', 'Event',
    'Barrier', 'BrokenBarrierError',
]
