"""The functions the benchmarks run inside interpreters, pools and threads.

Every function here is stateless on purpose (no globals, closures or
defaults; builtins only), so that each implementation can ship it the
cheapest way it knows: ``subinterpreters`` sends such functions as code,
the backport's ``Interpreter.call()`` accepts only functions like these,
and the process and interpreter pools pickle them by reference (the
benchmark workers put this directory on ``PYTHONPATH``, so every
interpreter and child process can import this module).
"""


def noop():
    pass


def add(a, b):
    return a + b


def size(data):
    return len(data)


def echo(data):
    return data


def tiny(x):
    return x + 1


def spin(n):
    """Pure-Python CPU work, about linear in n."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
