"""Cross-interpreter queues: the ``concurrent.interpreters`` queue API.

``Queue`` and ``create_queue`` are implemented in C (``_core``); this module
defines the Python-level pieces 3.14 defines in Python -- ``QueueEmpty``,
``QueueFull`` and the ``unbounditems`` sentinels -- and registers them with
the C module of the current interpreter.  The C module imports this module
by itself when an interpreter that never imported it receives a Queue, so
no import is needed before using a queue.
"""

import queue as _stdqueue

from . import _core
from ._core import (
    Queue,
    QueueError,
    QueueNotFoundError,
    ItemInterpreterDestroyed,
    create_queue,
)

__all__ = [
    'UNBOUND', 'UNBOUND_ERROR', 'UNBOUND_REMOVE',
    'create', 'create_queue', 'list_all',
    'Queue',
    'QueueError', 'QueueNotFoundError', 'QueueEmpty', 'QueueFull',
    'ItemInterpreterDestroyed',
]


class QueueEmpty(QueueError, _stdqueue.Empty):
    """Raised from get_nowait() when the queue is empty.

    It is also raised from get() if it times out.
    """


class QueueFull(QueueError, _stdqueue.Full):
    """Raised from put_nowait() when the queue is full.

    It is also raised from put() if it times out.
    """


QueueEmpty.__module__ = QueueFull.__module__ = 'subinterpreters'


class _UnboundSentinel:
    """A value of Queue.put()'s ``unbounditems`` (one instance per name).

    Instances are singletons, pickled by name, so they stay themselves
    when sent to another interpreter.
    """

    __slots__ = ('_name',)
    _NAME = 'UNBOUND_ERROR or subinterpreters.UNBOUND_REMOVE'

    def __new__(cls):
        # As in 3.14: the type of a sentinel cannot be instantiated.
        raise Exception(f'use subinterpreters.{cls._NAME}')

    @classmethod
    def _make(cls, name):
        self = object.__new__(cls)
        object.__setattr__(self, '_name', name)
        return self

    def __repr__(self):
        return f'subinterpreters.{self._name}'

    def __reduce__(self):
        return self._name

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class UnboundItem(_UnboundSentinel):
    """Represents a queue item no longer bound to an interpreter.

    get() returns UNBOUND in place of an item put with
    unbounditems=UNBOUND (the default) by an interpreter that has since
    been destroyed.
    """

    __slots__ = ()
    _NAME = 'UNBOUND'


UNBOUND = UnboundItem._make('UNBOUND')
UNBOUND_ERROR = _UnboundSentinel._make('UNBOUND_ERROR')
UNBOUND_REMOVE = _UnboundSentinel._make('UNBOUND_REMOVE')

# 3.14 spelling (concurrent.interpreters._queues.create).
create = create_queue


def list_all():
    """Return a Queue for every queue that exists, oldest first."""
    queues = []
    for qid in _core._queue_list_ids():
        try:
            queues.append(Queue(qid))
        except QueueNotFoundError:
            pass  # destroyed meanwhile
    return queues


_core._register_queue_types(QueueEmpty, QueueFull,
                            UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE)
