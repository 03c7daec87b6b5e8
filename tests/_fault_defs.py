"""Objects that fail at one step of a cross-interpreter transfer, for
test_faults.py.  Pickled by reference, so the receiving interpreter must
import this module (use the ``new_interp`` fixture).  No third-party
imports: this module is imported inside subinterpreters.
"""


def _interp_id():
    # Which interpreter are we in?  (Imported lazily: cheap enough, and it
    # keeps this module importable without the package.)
    import subinterpreters
    return subinterpreters.get_current().id


class ReduceFails:
    """Cannot be pickled: __reduce__ raises (in the sender)."""

    def __reduce__(self):
        raise ValueError('ReduceFails.__reduce__')


def fail_load(*args):
    raise ValueError('fail_load')


class LoadFails:
    """Pickles fine; unpickling raises (in the receiver)."""

    def __reduce__(self):
        return (fail_load, ())


def load_only_in_main(value):
    if _interp_id() != 0:
        raise ValueError('load_only_in_main: not in main')
    return LoadsOnlyInMain(value)


def load_only_outside_main(value):
    if _interp_id() == 0:
        raise ValueError('load_only_outside_main: in main')
    return LoadsOnlyOutsideMain(value)


class LoadsOnlyInMain:
    """Pickles fine; unpickling fails outside the main interpreter.
    Callable (returns its value), to stand for a function."""

    def __init__(self, value=None):
        self.value = value

    def __call__(self):
        return self.value

    def __reduce__(self):
        return (load_only_in_main, (self.value,))


class LoadsOnlyOutsideMain:
    """Pickles fine; unpickling fails in the main interpreter."""

    def __init__(self, value=None):
        self.value = value

    def __reduce__(self):
        return (load_only_outside_main, (self.value,))


class StrFails(Exception):
    """An exception whose str() raises."""

    def __str__(self):
        raise RuntimeError('StrFails.__str__')


class ReprFails:
    def __repr__(self):
        raise RuntimeError('ReprFails.__repr__')

    def __reduce__(self):
        raise ValueError('ReprFails.__reduce__')


class UnpicklableError(Exception):
    """An exception carrying an unpicklable argument."""

    def __init__(self):
        import threading
        super().__init__(threading.Lock())


# -- callables run in the target


def identity(x):
    return x


def raise_value_error(msg):
    raise ValueError(msg)


def raise_exc(exc_type_name):
    import builtins
    raise getattr(builtins, exc_type_name)('raised in target')


def raise_str_fails():
    raise StrFails()


def raise_unpicklable_error():
    raise UnpicklableError()


def return_lock():
    import threading
    return threading.Lock()


def return_reduce_fails():
    return ReduceFails()


def return_loads_only_outside_main():
    return LoadsOnlyOutsideMain(42)


def return_repr_fails():
    return ReprFails()


def deep_list(depth):
    x = []
    for _ in range(depth):
        x = [x]
    return x


def main_names():
    import __main__
    return sorted(n for n in vars(__main__) if not n.startswith('__'))
