"""Type stubs for subinterpreters (the concurrent.interpreters API)."""

from ._core import (
    ExecutionFailed as ExecutionFailed,
    Interpreter as Interpreter,
    InterpreterError as InterpreterError,
    InterpreterNotFoundError as InterpreterNotFoundError,
    ItemInterpreterDestroyed as ItemInterpreterDestroyed,
    NotShareableError as NotShareableError,
    QueueError as QueueError,
    QueueNotFoundError as QueueNotFoundError,
    SharedDict as SharedDict,
    create as create,
    get_current as get_current,
    get_main as get_main,
    is_shareable as is_shareable,
    list_all as list_all,
)
from ._queues import (
    UNBOUND as UNBOUND,
    UNBOUND_ERROR as UNBOUND_ERROR,
    UNBOUND_REMOVE as UNBOUND_REMOVE,
    Queue as Queue,
    QueueEmpty as QueueEmpty,
    QueueFull as QueueFull,
    create_queue as create_queue,
)
from . import sync as sync
from ._check import check_import as check_import
from .executor import (
    BrokenInterpreterPool as BrokenInterpreterPool,
    InterpreterPoolExecutor as InterpreterPoolExecutor,
)

__all__: list[str]
