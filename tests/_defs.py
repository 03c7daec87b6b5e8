"""Module-level definitions sent to other interpreters by the tests.

Functions and classes that are not "stateless" travel by pickle, i.e. by
reference (``_defs.name``), so the receiving interpreter must be able to
import this module: use the ``new_interp`` fixture, which copies
``sys.path`` into the new interpreter.  Keep this module free of
third-party imports (pytest in particular) so that it imports quickly in
an isolated subinterpreter.
"""


# -- stateless functions (no globals except builtins, no defaults, no
#    closure): transferred by marshal, run with the target's __main__
#    dict as globals.

def spam_minimal():
    pass


def spam_returns_arg(x):
    return x


def spam_returns_shareable():
    return (1, None)


def spam_returns_list():
    return [1, 2, 3]


def spam_returns_stateless_func():
    return (lambda x: x * 3)


def spam_returns_closure():
    x = 42
    return (lambda: x)


def spam_raises():
    raise Exception('spam!')


def raise_exc(exc):
    raise exc


def spam_full_args(a, b, /, c, d, *args, e, f, **kwargs):
    return (a, b, c, d, e, f, args, kwargs)


def exec_in_ns(script, ns):
    """Mutates its argument; returns (result, ns without builtins)."""
    res = exec(script, ns, ns)
    ns.pop('__builtins__', None)
    return res, ns


def append_to(lst, item):
    lst.append(item)
    return lst


def get_global(name):
    return globals().get(name)


def set_global(name, value):
    globals()[name] = value


def get_interp_id():
    import subinterpreters
    return subinterpreters.get_current().id


def write_to_fd(fd, data):
    import os
    os.write(fd, data)


def spin(n):
    """CPU-bound, stateless."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


# -- functions that are NOT stateless: pickled by reference

def spam_full_args_with_defaults(a=-1, b=-2, /, c=-3, d=-4, *args,
                                 e=-5, f=-6, **kwargs):
    return (a, b, c, d, e, f, args, kwargs)


def get_module_name():
    # Uses a module global (__name__ of this module), so it is pickled
    # and runs in the target's own import of _defs.
    return __name__


def make_closure(value):
    def closure():
        return value
    return closure


COUNTER = 0


def bump_counter():
    global COUNTER
    COUNTER += 1
    return COUNTER


class Spam:
    """A user class with value equality."""

    @staticmethod
    def noop():
        pass

    @classmethod
    def from_values(cls, *values):
        return cls(values)

    def __init__(self, value):
        self.value = value

    def __call__(self, *args, **kwargs):
        return (self.value, args, kwargs)

    def __eq__(self, other):
        if not isinstance(other, Spam):
            return NotImplemented
        return self.value == other.value

    def __hash__(self):
        return hash(self.value)

    def __repr__(self):
        return f'Spam({self.value!r})'

    def run(self, *args, **kwargs):
        return (self.value, args, kwargs)


class SpamError(Exception):
    pass


def _refuse_unpickle(*args):
    raise RuntimeError('this object cannot be unpickled')


class UnpicklableInTarget:
    """Pickles fine, but unpickling always fails (in any interpreter)."""

    def __reduce__(self):
        return (_refuse_unpickle, ())


class CallableUnpicklableInTarget(UnpicklableInTarget):
    def __call__(self):
        return 'called'
