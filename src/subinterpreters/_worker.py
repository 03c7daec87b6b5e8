"""The part of InterpreterPoolExecutor that runs inside worker interpreters.

A worker interpreter imports this module when a task fails; the class
below also travels by reference to it.  So it must stay cheap to import in
a fresh isolated interpreter: nothing at module level; ``pickle`` and the
core are imported when needed.  Nothing here may import
``concurrent.futures`` or ``subinterpreters.executor``.

Contract with the executor (``subinterpreters.executor``):

* ``run(fn, args, kwargs)`` is what every task and initializer runs as,
  through ``Interpreter.call``.  It returns the task's result, or a
  ``TaskFailed`` when the task raised (any ``BaseException``).  It never
  raises itself, except for errors in building the ``TaskFailed``.
* ``run`` and ``set_sys_path(path)`` are stateless (builtins only), so
  they travel as code; ``set_sys_path`` needs nothing importable in the
  target, ``run`` imports this module by name when it needs it.
* ``run_chunk(fn, chunk)`` is a task function: ``map(..., chunksize=n)``
  ships ``n`` calls at once.
* Results travel as ``Interpreter.call`` ships them; the core maps
  objects of the parent's ``__main__`` script (re-run here as
  ``'<fake __main__>'``) back to the parent's ``__main__``.  A failed
  task's exception is pickled here (``TaskFailed.pickled``) so that the
  parent can fall back to ``ExecutionFailed`` when it does not unpickle
  there; the parent reads ``'<fake __main__>'`` in it as ``__main__``.
"""

# The module name the core gives to a script re-run in a worker so that
# pickles referring to the parent's ``__main__`` can be loaded there.
FAKE_MAIN = '<fake __main__>'


def set_sys_path(path):
    """Replace the current interpreter's sys.path (stateless: builtins
    only, so it is shipped as code)."""
    __import__('sys').path[:] = path


class TaskFailed:
    """What ``run()`` returns when the task raised.

    Plain attributes only, so that it pickles by reference to this module:
    ``pickled`` is the exception pickled in the worker (``None`` if it
    could not be pickled and unpickled there), and ``excinfo`` is the
    core's snapshot of it (``_core._excinfo()``: what
    ``ExecutionFailed.excinfo`` holds), from which the parent builds the
    ``ExecutionFailed``.
    """

    __slots__ = ('pickled', 'excinfo')

    def __init__(self, pickled, excinfo):
        self.pickled = pickled
        self.excinfo = excinfo

    def __reduce__(self):
        return (TaskFailed, (self.pickled, self.excinfo))


def run(fn, args, kwargs):
    """Call ``fn(*args, **kwargs)``; return its result or a TaskFailed.

    Stateless (it reads builtins only), so it travels as code: much
    cheaper per task than a pickled reference.  This module is imported
    only when the task failed.
    """
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        return __import__('subinterpreters._worker',
                          fromlist=['failure']).failure(exc)


def run_chunk(fn, chunk):
    """Task function for ``map(..., chunksize=n)``: the results of
    ``fn(*args)`` for each ``args`` in ``chunk``, as a list."""
    return [fn(*args) for args in chunk]


def failure(exc):
    """Snapshot exc for the parent.  Runs in the worker, in an except
    block; never raises (short of MemoryError)."""
    tb = exc.__traceback__
    if tb is not None:
        # Skip run()'s own frame: the traceback starts in the task.
        exc.__traceback__ = tb.tb_next
    from subinterpreters import _core
    excinfo = _core._excinfo(exc)
    try:
        import pickle
        pickled = pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
        # Prove it loads (an __init__ with required arguments breaks it),
        # so that the parent rarely has to fall back.
        pickle.loads(pickled)
    except BaseException:
        pickled = None
    return TaskFailed(pickled, excinfo)
