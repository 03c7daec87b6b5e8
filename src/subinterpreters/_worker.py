"""The part of InterpreterPoolExecutor that runs inside worker interpreters.

A worker interpreter imports this module when a task fails, returns
something other than a scalar, or is a chunk of ``map()``; the classes
below also travel by reference to it.  So it must stay cheap to import in
a fresh isolated interpreter: only ``sys`` at module level; ``pickle`` and
``traceback`` are imported when needed.  Nothing here may import
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
* ``main_attr(qualname)`` runs in the *parent*: it resolves a class or
  function that the worker knew as ``'<fake __main__>'.qualname`` (a
  definition from the parent's ``__main__`` script) in the parent's real
  ``__main__``.
"""

import sys

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
    could not be pickled and unpickled there), and the other fields are
    the strings the parent needs to build an ``ExecutionFailed`` (the same
    fields as ``ExecutionFailed.excinfo``).
    """

    __slots__ = ('pickled', 'type_name', 'type_qualname', 'type_module',
                 'msg', 'errdisplay')

    def __init__(self, pickled, type_name, type_qualname, type_module, msg,
                 errdisplay):
        self.pickled = pickled
        self.type_name = type_name
        self.type_qualname = type_qualname
        self.type_module = type_module
        self.msg = msg
        self.errdisplay = errdisplay

    def __reduce__(self):
        return (TaskFailed, (self.pickled, self.type_name,
                             self.type_qualname, self.type_module, self.msg,
                             self.errdisplay))


class PickledResult:
    """A result the worker pickled itself (see ``run()``); the parent
    calls ``pickle.loads(data)``."""

    __slots__ = ('data',)

    def __init__(self, data):
        self.data = data

    def __reduce__(self):
        return (PickledResult, (self.data,))


def run(fn, args, kwargs):
    """Call ``fn(*args, **kwargs)``; return its result or a TaskFailed.

    Stateless (it reads builtins only), so it travels as code: much
    cheaper per task than a pickled reference.  This module is imported
    only when the task failed or returned something other than a scalar.
    """
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        return __import__('subinterpreters._worker',
                          fromlist=['failure']).failure(exc)
    if result is None or type(result) in (bool, int, float, str, bytes):
        return result
    return __import__('subinterpreters._worker',
                      fromlist=['finish']).finish(fn, result)


def finish(fn, result):
    """The value run() returns for a result that is not a scalar."""
    if (getattr(fn, '__module__', None) == FAKE_MAIN
            or getattr(type(result), '__module__', None) == FAKE_MAIN):
        # The core pickles a result by reference to its class's module,
        # and the parent cannot import '<fake __main__>'.  Pickle it here,
        # naming such definitions by their __main__ qualname.
        try:
            return PickledResult(dumps(result)[0])
        except Exception:
            pass  # let the core report the unshareable result
    return result


def run_chunk(fn, chunk):
    """Task function for ``map(..., chunksize=n)``: the results of
    ``fn(*args)`` for each ``args`` in ``chunk``, as a list (or that list
    pickled here, as finish() decides for fn)."""
    return finish(fn, [fn(*args) for args in chunk])


def failure(exc):
    """Snapshot exc for the parent.  Runs in the worker, in an except
    block; never raises (short of MemoryError)."""
    tp = type(exc)
    name = getattr(tp, '__name__', None)
    qualname = getattr(tp, '__qualname__', name)
    module = getattr(tp, '__module__', None)
    if module == FAKE_MAIN:
        module = '__main__'
    try:
        msg = str(exc)
    except BaseException:
        msg = None
    try:
        import traceback
        # Skip run()'s own frame: the traceback starts in the task.
        tb = exc.__traceback__
        tb = tb.tb_next if tb is not None else None
        errdisplay = ''.join(
            traceback.format_exception(tp, exc, tb)).rstrip('\n')
    except BaseException:
        errdisplay = None
    try:
        pickled, refers_to_main = dumps(exc)
        if not refers_to_main:
            # Prove it loads (an __init__ with required arguments breaks
            # it), so that the parent rarely has to fall back.  References
            # to the parent's __main__ only resolve there.
            import pickle
            pickle.loads(pickled)
    except BaseException:
        pickled = None
    return TaskFailed(pickled, name, qualname, module, msg, errdisplay)


def dumps(obj):
    """Return ``(data, refers_to_main)``: ``pickle.dumps(obj)``, except that
    classes and functions from the re-run '<fake __main__>' script are
    written as references to the unpickler's ``__main__``."""
    import io
    import pickle

    class Pickler(pickle.Pickler):
        refers_to_main = False

        def reducer_override(self, obj):
            if ((isinstance(obj, type) or type(obj) is _FunctionType)
                    and getattr(obj, '__module__', None) == FAKE_MAIN):
                qualname = getattr(obj, '__qualname__', None)
                if isinstance(qualname, str) and '<locals>' not in qualname:
                    self.refers_to_main = True
                    return (main_attr, (qualname,))
            return NotImplemented

    buf = io.BytesIO()
    pickler = Pickler(buf, pickle.HIGHEST_PROTOCOL)
    pickler.dump(obj)
    return buf.getvalue(), pickler.refers_to_main


_FunctionType = type(set_sys_path)


def main_attr(qualname):
    """Look up qualname ('Outer.Inner' allowed) in ``sys.modules['__main__']``
    of the interpreter that unpickles the reference."""
    obj = sys.modules['__main__']
    for part in qualname.split('.'):
        obj = getattr(obj, part)
    return obj
