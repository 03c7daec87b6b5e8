"""What a Dask task runs inside a worker's interpreter (see dask.py).

Kept apart from ``subinterpreters.dask`` so that an interpreter of the
pool imports neither ``distributed`` nor ``subinterpreters.executor``: only
``cloudpickle`` (pure Python, a dependency of Dask), and whatever the task
itself needs (``dask._task_spec`` to rebuild the Task).
"""


def run(blob):
    """Run the pickled (task, data) of a Dask worker: ``task(data)``.

    Returns ``(True, pickled result)`` or ``(False, pickled exception,
    traceback as a dict or None)``: the worker rebuilds both, so the client
    sees what the default executor would have given it.  Both are pickled
    with cloudpickle, which carries functions and classes of the client's
    ``__main__`` by value."""
    import cloudpickle
    task, data = cloudpickle.loads(blob)
    del blob
    try:
        result = task(data)
    except Exception as exc:
        return (False,) + _pickle_exception(cloudpickle, exc)
    return True, cloudpickle.dumps(result, protocol=5)


def _pickle_exception(cloudpickle, exc):
    try:
        import tblib
        tb = tblib.Traceback(exc.__traceback__.tb_next).as_dict()
    except Exception:
        tb = None
    try:
        return cloudpickle.dumps(exc.with_traceback(None), protocol=5), tb
    except Exception as why:
        # Not picklable: the same type is out of reach, its text is not.
        return cloudpickle.dumps(RuntimeError(
            f'{type(exc).__module__}.{type(exc).__qualname__}: {exc} '
            f'(the exception could not be pickled: {why})')), tb
