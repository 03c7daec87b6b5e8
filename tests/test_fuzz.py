"""Fuzzing with hypothesis.

1. Round trips: random nested values come back equal -- same types all
   the way down, nan-aware, sign of zero kept -- through prepare_main()
   (natively shareable values only: None, bool, int, float, str, bytes,
   tuple), call() arguments and results (every picklable container:
   list, dict, set, frozenset, complex, bytearray too) and queues (put in
   one interpreter, get in another).  Each value is also described inside
   the target and compared, so that a fault on the way in cannot be
   hidden by the inverse fault on the way back.
2. API fuzz: random values of random types passed to every public
   function and method (create_queue, Queue(), put/get and their
   arguments, Interpreter(), exec with its timeout, call, call_in_thread,
   prepare_main, is_shareable, interrupt, the pool's submit) give a Python
   exception or a correct result, never a crash, a hang or a
   BaseException, and leave the interpreters idle and usable.

A few interpreters are created once per module and reused.  Hypothesis
profiles are registered below as ``subinterpreters-<name>``; the
``default`` one runs more than 10,000 cases in all, in about 80 s per
Python on 2 cores.  ``SBI_FUZZ_PROFILE`` picks another: ``sanitize``
(30%, the default under ``SBI_SANITIZE``), ``quick`` (10%) or ``long``
(10 times, ``make stress``).  Failures print the example and a
``@reproduce_failure`` blob.
"""

import math
import os
import sys

import pytest

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, given, settings   # noqa: E402
from hypothesis import strategies as st                # noqa: E402

import subinterpreters as interpreters                 # noqa: E402
from subinterpreters import InterpreterPoolExecutor    # noqa: E402

import _fault_defs as F                                # noqa: E402

# ---------------------------------------------------------------------------
# profiles: examples per test = base count x scale

_SCALE = {'default': 1.0, 'sanitize': 0.3, 'quick': 0.1, 'long': 10.0}
for _name, _scale in _SCALE.items():
    settings.register_profile(
        f'subinterpreters-{_name}', deadline=None, database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture,
                               HealthCheck.too_slow,
                               HealthCheck.data_too_large])
# Sanitizer builds run about 3 times slower: fewer cases there.
PROFILE = os.environ.get(
    'SBI_FUZZ_PROFILE', 'sanitize' if os.environ.get('SBI_SANITIZE')
    else 'default')
if PROFILE not in _SCALE:
    raise ValueError(f'SBI_FUZZ_PROFILE must be one of {sorted(_SCALE)}')
_BASE = settings.get_profile(f'subinterpreters-{PROFILE}')


def examples(n):
    """Settings for a test that runs n examples in the default profile."""
    return settings(_BASE, max_examples=max(10, int(n * _SCALE[PROFILE])))


# The default profile's counts, checked by test_enough_cases.
COUNTS = {
    'prepare_main': 2000,
    'call': 2500,
    'queue': 2000,
    'api': 4000,
}


def test_enough_cases():
    assert sum(COUNTS.values()) >= 10_000


# ---------------------------------------------------------------------------
# equality: exact types, nan == nan, -0.0 != 0.0, order of lists and dicts


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items()))
    if isinstance(a, (set, frozenset)):
        if a != b:
            return False
        by_value = {x: x for x in b}
        return all(same(x, by_value[x]) for x in a)
    return a == b


# Described inside the target (stateless: travels as code), compared with
# the same description made here.
def describe(value):
    def d(x):
        t = type(x).__name__
        if isinstance(x, float):
            return (t, x.hex())
        if isinstance(x, complex):
            return (t, x.real.hex(), x.imag.hex())
        if isinstance(x, int):
            return (t, hex(x))
        if isinstance(x, (tuple, list)):
            return (t, [d(y) for y in x])
        if isinstance(x, dict):
            return (t, [(d(k), d(v)) for k, v in x.items()])
        if isinstance(x, (set, frozenset)):
            return (t, sorted(repr(d(y)) for y in x))
        return (t, x)
    return d(value)


def describe_main_v():
    # describe(__main__.v), in the target
    import __main__

    def d(x):
        t = type(x).__name__
        if isinstance(x, float):
            return (t, x.hex())
        if isinstance(x, int):
            return (t, hex(x))
        if isinstance(x, tuple):
            return (t, [d(y) for y in x])
        return (t, x)
    return d(__main__.v)


def identity(x):
    return x


def identity_kw(*, x):
    return x


def relay(src, dst):
    item = src.get_nowait()
    dst.put_nowait(item)
    return 1


# ---------------------------------------------------------------------------
# strategies

# Non-BMP characters often, surrogates sometimes.
_text = (st.text()
         | st.text(st.characters(min_codepoint=0x10000), max_size=8)
         | st.text(st.characters(codec=None, categories=['Cs']),
                   max_size=4))
_ints = (st.integers()
         | st.integers(min_value=-(2**64), max_value=2**64)
         | st.integers(min_value=-(2**4000), max_value=2**4000))
_floats = st.floats(allow_nan=True, allow_infinity=True)

native_scalars = (st.none() | st.booleans() | _ints | _floats | _text
                  | st.binary())
native = st.recursive(
    native_scalars,
    lambda children: st.lists(children, max_size=5).map(tuple),
    max_leaves=20)

_hashable_scalars = (st.none() | st.booleans() | _ints
                     | st.floats(allow_nan=False) | _text | st.binary()
                     | st.complex_numbers(allow_nan=False))
hashable = st.recursive(
    _hashable_scalars,
    lambda children: (st.lists(children, max_size=4).map(tuple)
                      | st.frozensets(children, max_size=4)),
    max_leaves=8)

full_scalars = (native_scalars | st.complex_numbers(allow_nan=True)
                | st.binary().map(bytearray))
full = st.recursive(
    full_scalars,
    lambda children: (st.lists(children, max_size=5)
                      | st.lists(children, max_size=5).map(tuple)
                      | st.dictionaries(hashable, children, max_size=5)
                      | st.sets(hashable, max_size=5)
                      | st.frozensets(hashable, max_size=5)),
    max_leaves=25)


# ---------------------------------------------------------------------------
# shared interpreters, queues and pool


@pytest.fixture(scope='module')
def interps():
    created = []
    for _ in range(2):
        interp = interpreters.create()
        interp.exec(f"__import__('sys').path[:] = {list(sys.path)!r}")
        created.append(interp)
    yield created
    for interp in created:
        try:
            interp.close()
        except Exception:
            pass


@pytest.fixture(scope='module')
def queues():
    return interpreters.create_queue(), interpreters.create_queue()


@pytest.fixture(scope='module')
def pool():
    executor = InterpreterPoolExecutor(max_workers=2)
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------
# 1. round trips


@examples(COUNTS['prepare_main'])
@given(value=native)
def test_prepare_main_roundtrip(interps, value):
    interp = interps[0]
    assert interpreters.is_shareable(value)
    interp.prepare_main(v=value)
    assert interp.call(describe_main_v) == describe(value)
    assert same(interp.call(eval, 'v'), value)


@examples(COUNTS['call'])
@given(value=full)
def test_call_roundtrip(interps, value):
    interp = interps[1]
    assert interp.call(describe, value) == describe(value)
    assert same(interp.call(identity, value), value)
    assert same(interp.call(identity_kw, x=value), value)


@examples(COUNTS['queue'])
@given(value=full)
def test_queue_roundtrip(interps, queues, value):
    q1, q2 = queues
    # main -> main
    q1.put(value)
    assert same(q1.get_nowait(), value)
    # main -> interpreter -> main
    q1.put(value)
    assert interps[1].call(relay, q1, q2) == 1
    assert same(q2.get_nowait(), value)
    assert q1.qsize() == q2.qsize() == 0


# ---------------------------------------------------------------------------
# 2. random arguments to every public function and method


class BadIndex:
    def __index__(self):
        raise ValueError('BadIndex')


class BadFloat:
    def __float__(self):
        raise ValueError('BadFloat')


class BadBool:
    def __bool__(self):
        raise ValueError('BadBool')


class BadStr:
    def __str__(self):
        raise ValueError('BadStr')

    __repr__ = __str__


class BadHash:
    def __hash__(self):
        raise ValueError('BadHash')


class BadEq:
    def __eq__(self, other):
        raise ValueError('BadEq')

    __hash__ = object.__hash__


class StrSub(str):
    pass


class IntSub(int):
    pass


# Awkward objects, built fresh for each use.  Hypothesis only sees their
# names (Weird tokens), because it hashes and repr()s what it draws.
WEIRD = {
    'BadIndex': BadIndex, 'BadFloat': BadFloat, 'BadBool': BadBool,
    'BadStr': BadStr, 'BadHash': BadHash, 'BadEq': BadEq,
    'StrSub': lambda: StrSub('x'), 'IntSub': lambda: IntSub(3),
    'object': object, 'ReduceFails': F.ReduceFails,
    'LoadFails': F.LoadFails, 'LoadsOnlyInMain': lambda: F.LoadsOnlyInMain(1),
    'Ellipsis': lambda: Ellipsis, 'NotImplemented': lambda: NotImplemented,
    'type': lambda: type, 'int': lambda: int, 'len': lambda: len,
    'module': lambda: sys, 'lambda': lambda: (lambda: 1),
    'nan': lambda: float('nan'), 'inf': lambda: float('inf'),
    '-inf': lambda: -float('inf'), '-1': lambda: -1, '-1.5': lambda: -1.5,
    '0': lambda: 0, '0.0': lambda: 0.0, '1e-9': lambda: 1e-9,
    '1e300': lambda: 1e300, '2**63': lambda: 2**63,
    '-2**63': lambda: -(2**63), '2**64': lambda: 2**64,
    '2**1000': lambda: 2**1000, "''": lambda: '', "'\\x00'": lambda: '\x00',
    "b''": lambda: b'', "'pass'": lambda: 'pass', "b'pass'": lambda: b'pass',
    "'x = 1'": lambda: 'x = 1', "'1/0'": lambda: '1/0',
    "'raise SystemExit'": lambda: 'raise SystemExit',
    "'import sys'": lambda: 'import sys',
    'code': lambda: compile('y = 2', '<fuzz>', 'exec'),
    'evalcode': lambda: compile('3', '<fuzz>', 'eval'),
    'Queue': lambda: interpreters.create_queue(),
    'Interpreter': lambda: interpreters.get_current(),
    'UNBOUND': lambda: interpreters.UNBOUND,
    'UNBOUND_ERROR': lambda: interpreters.UNBOUND_ERROR,
    'UNBOUND_REMOVE': lambda: interpreters.UNBOUND_REMOVE,
}


class Weird:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f'<{self.name}>'


def real(value):
    """value with every Weird token replaced by a fresh object."""
    if isinstance(value, Weird):
        return WEIRD[value.name]()
    if isinstance(value, list):
        return [real(x) for x in value]
    if isinstance(value, tuple):
        return tuple(real(x) for x in value)
    if isinstance(value, dict):
        return {real(k): real(v) for k, v in value.items()
                if not isinstance(k, Weird)}
    return value


weird = st.sampled_from(sorted(WEIRD)).map(Weird)
anything = st.deferred(lambda: (
    weird
    | st.none() | st.booleans() | _ints | _floats | _text | st.binary()
    | st.lists(anything, max_size=3)
    | st.lists(anything, max_size=3).map(tuple)
    | st.dictionaries(_text | _ints, anything, max_size=3)))

# Extra positional arguments and keywords: usually none, sometimes junk.
junk_args = (st.just(()) | st.just(())
             | st.lists(anything, max_size=2).map(tuple))
junk_kwargs = (st.just({}) | st.just({})
               | st.dictionaries(st.text(max_size=5), anything, max_size=2))
# Arguments of call(): anything, a few of them.
args = st.lists(anything, max_size=3).map(tuple)
kwargs = st.dictionaries(st.sampled_from(['x', 'y', 'key', 'default'])
                         | st.text(max_size=5), anything, max_size=2)
unbound_values = (st.none()
                  | st.sampled_from(['UNBOUND', 'UNBOUND_ERROR',
                                     'UNBOUND_REMOVE']).map(Weird)
                  | anything)
# timeouts: what a user might pass, good and bad
timeouts = (st.none() | st.sampled_from([0, 0.0, -1, 1e-9, 0.01, True])
            | st.sampled_from(['nan', 'inf', '-inf', '1e300', '2**64',
                               "'pass'", 'BadFloat', 'BadIndex']).map(Weird)
            | st.floats(min_value=0, max_value=0.05)
            | st.floats(max_value=0, allow_nan=False))
# Callables that finish quickly whatever their arguments; builtins that
# could block or print are left out.
callables = (st.sampled_from([identity, describe, len, repr, str, int,
                              sorted, abs, hash, divmod, eval, F.identity,
                              F.raise_value_error, None, 5, 'len'])
             | st.sampled_from(['LoadsOnlyInMain', 'ReduceFails',
                                'lambda', 'type']).map(Weird))
codes = weird | _text | st.binary() | callables


def _drain(q):
    while True:
        try:
            q.get_nowait()
        except interpreters.QueueEmpty:
            return
        except Exception:
            pass    # an item that fails to load: it is consumed anyway


def _check_idle(interps):
    for interp in interps:
        assert interp.is_running() is False
        assert interp.call(identity, 7) == 7


OPS = ['create_queue', 'Queue', 'put', 'put_nowait', 'get', 'get_nowait',
       'queue_misc', 'Interpreter', 'exec', 'exec_timeout', 'call',
       'call_in_thread', 'prepare_main', 'is_shareable', 'interrupt',
       'submit']


def optional(**strategies):
    """A dict of keyword arguments, each present or not."""
    return st.fixed_dictionaries({}, optional=strategies)


@examples(COUNTS['api'])
@given(data=st.data(), op=st.sampled_from(OPS))
def test_api_random_arguments(interps, queues, pool, data, op):
    def draw(strategy):
        return real(data.draw(strategy))

    interp = interps[data.draw(st.integers(0, len(interps) - 1))]
    q, _ = queues
    try:
        if op == 'create_queue':
            new = interpreters.create_queue(
                *draw(junk_args),
                **draw(optional(maxsize=_ints | anything,
                                unbounditems=unbound_values)),
                **draw(junk_kwargs))
            assert isinstance(new, interpreters.Queue)
            new.put_nowait(1)
            assert new.get_nowait() == 1
        elif op == 'Queue':
            obj = interpreters.Queue(draw(_ints | anything),
                                     *draw(junk_args), **draw(junk_kwargs))
            assert isinstance(obj.id, int)
        elif op == 'put':
            # q is unbounded: put() never blocks.
            q.put(draw(anything), *draw(junk_args),
                  **draw(optional(block=st.booleans() | anything,
                                  timeout=timeouts,
                                  unbounditems=unbound_values)),
                  **draw(junk_kwargs))
        elif op == 'put_nowait':
            q.put_nowait(draw(anything), *draw(junk_args),
                         **draw(optional(unbounditems=unbound_values)),
                         **draw(junk_kwargs))
        elif op == 'get':
            # An item is there, so even a blocking get() returns at once.
            q.put_nowait(('item', 1))
            got = q.get(*draw(junk_args),
                        **draw(optional(block=st.booleans() | anything,
                                        timeout=timeouts)),
                        **draw(junk_kwargs))
            assert got == ('item', 1)
        elif op == 'get_nowait':
            if data.draw(st.booleans()):
                q.put_nowait(draw(anything))
            q.get_nowait(*draw(junk_args), **draw(junk_kwargs))
        elif op == 'queue_misc':
            name = data.draw(st.sampled_from(['qsize', 'empty', 'full',
                                              'id', 'maxsize',
                                              'unbounditems', '__reduce__',
                                              '__repr__', '__hash__']))
            attr = getattr(q, name)
            if callable(attr):
                attr(*draw(junk_args), **draw(junk_kwargs))
        elif op == 'Interpreter':
            obj = interpreters.Interpreter(
                draw(st.integers(-2, 50) | _ints | anything),
                *draw(junk_args),
                **draw(optional(_whence=st.sampled_from(
                                    [None, 'unknown', 'stdlib', '_interp',
                                     'capi', 'legacy']) | anything,
                                _ownsref=st.booleans() | anything)),
                **draw(junk_kwargs))
            # Only harmless questions: it may be one of ours.
            assert isinstance(obj.id, int)
            obj.is_running()
            obj.whence
            del obj
        elif op == 'exec':
            interp.exec(draw(codes), *draw(junk_args),
                        **draw(optional(timeout=timeouts)),
                        **draw(junk_kwargs))
        elif op == 'exec_timeout':
            code = data.draw(st.sampled_from(
                ['pass', 'for _ in range(10_000): pass', 'x = 1']))
            interp.exec(code, timeout=draw(timeouts))
        elif op == 'call':
            interp.call(draw(callables), *draw(args), **draw(kwargs))
        elif op == 'call_in_thread':
            # Failures go to threading.excepthook; silence them here.
            import threading
            old = threading.excepthook
            threading.excepthook = lambda args: None
            try:
                t = interp.call_in_thread(draw(callables), *draw(args),
                                          **draw(kwargs))
                t.join(30)
                assert not t.is_alive()
            finally:
                threading.excepthook = old
        elif op == 'prepare_main':
            ns = draw(st.none()
                      | st.dictionaries(_text, anything, max_size=3)
                      | st.lists(st.tuples(_text, anything), max_size=2)
                      | anything)
            interp.prepare_main(ns, *draw(junk_args),
                                **draw(st.dictionaries(
                                    st.text(min_size=1, max_size=5),
                                    anything, max_size=2)))
        elif op == 'is_shareable':
            result = interpreters.is_shareable(draw(anything),
                                               *draw(junk_args))
            assert result in (True, False)
        elif op == 'interrupt':
            assert interp.interrupt(*draw(junk_args),
                                    **draw(junk_kwargs)) is False
        elif op == 'submit':
            future = pool.submit(draw(callables), *draw(args),
                                 **draw(kwargs))
            try:
                future.result(timeout=60)
            except TimeoutError:
                raise AssertionError('pool task hung')
            except Exception:
                pass
    except AssertionError:
        raise
    except Exception:
        pass    # any ordinary exception is a fine answer
    finally:
        _drain(q)
    _check_idle(interps)
