"""Module-level definitions that tests/test_executor.py sends to the pool.

Functions here that are not stateless travel by pickle, i.e. by reference
(``_executor_defs.name``), so every worker interpreter imports this
module: keep it free of third-party imports (pytest in particular) so that
it imports quickly in an isolated subinterpreter.  Workers can import it
because the pool copies the parent's sys.path, to which conftest.py adds
tests/.
"""

import os
import sys
import time


def mul(x, y):
    return x * y


def capture(*args, **kwargs):
    return args, kwargs


def noop():
    pass


def get_current_name():
    return __name__


def get_current_interpid(*extra):
    import subinterpreters
    return (subinterpreters.get_current().id, *extra)


def fail(exctype, msg=None):
    raise exctype(msg)


def write_msg(fd, msg):
    os.write(fd, msg + b'\0')


def read_msg(fd):
    msg = b''
    while ch := os.read(fd, 1):
        if ch == b'\0':
            return msg
        msg += ch
    return msg


def read_byte(fd):
    """Block until a byte arrives on fd (a task that waits)."""
    return os.read(fd, 1)


def read_then_fail(fd):
    os.read(fd, 1)
    raise ValueError('initializer failed on purpose')


def sleep_and_return(t, value):
    time.sleep(t)
    return value


def burn(n):
    """CPU-bound pure Python."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def import_and_get(modname, attr):
    import importlib
    return getattr(importlib.import_module(modname), attr)


def get_sys_path():
    return list(sys.path)


# -- the __main__ of a worker interpreter ----------------------------------

def init_main_global(value):
    import __main__
    __main__.executor_state = value


def get_main_global():
    import __main__
    return getattr(__main__, 'executor_state', 'uninitialized')


# -- exceptions ------------------------------------------------------------

class CustomError(Exception):
    pass


def raise_with_note(msg, note):
    exc = CustomError(msg)
    exc.add_note(note)
    raise exc


class TwoArgError(Exception):
    """Pickles, but unpickling calls __init__ with one argument: fails."""

    def __init__(self, a, b):
        super().__init__(f'{a}-{b}')


def raise_two_arg():
    raise TwoArgError('x', 'y')


def raise_system_exit(code):
    sys.exit(code)


# -- shipping failures -----------------------------------------------------

class PickleShenanigans:
    """Succeeds with pickle.dumps(), but fails with pickle.loads()."""

    def __init__(self, value):
        if value == 1:
            raise RuntimeError('gotcha')

    def __reduce__(self):
        return (self.__class__, (1,))


def return_lock():
    import threading
    return threading.Lock()


class MyObject:
    def my_method(self):
        pass


def make_dummy_object(_):
    return MyObject()


# -- a module global that shadows a builtin -------------------------------
# A function reading only names that builtins also has looks "stateless";
# it must still see this module's definition, not the builtin.

def compile(*args):  # noqa: A001 (shadows the builtin on purpose)
    return 'module-level compile'


def uses_shadowed_builtin():
    return compile()


class FalseyError(Exception):
    """An exception that is false: 3.12/3.13's Future.result() lost it."""

    def __bool__(self):
        return False


class EmptyError(Exception):
    """An exception whose len() is 0."""

    def __len__(self):
        return 0


def raise_falsey(cls_name, x=None):
    raise globals()[cls_name](x)
