"""Cross-interpreter data: is_shareable(), native transfer through
prepare_main(), and round trips through call().

Reference: CPython 3.14 concurrent.interpreters (what is shareable).  Our deliberate
differences from 3.14: ints of any size are natively shareable (and
really transfer), and a tuple is shareable only if all its items are.
"""

import math
import pickle
import sys
import types

import pytest

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:   # pragma: no cover
    given = None

import subinterpreters as interpreters
from subinterpreters import ExecutionFailed, NotShareableError

import _defs


class SubBytes(bytes):
    """A subclass of a shareable type."""


class SubStr(str):
    pass


class SubInt(int):
    pass


class Cheese:
    def __init__(self, name):
        self.name = name


def _local_function():
    pass


SHAREABLE = [
    None,
    True,
    False,
    b'spam',
    b'',
    'spam',
    '',
    10,
    -10,
    0,
    2**63 - 1,
    -(2**63),
    100.0,
    -0.5,
    (),
    (1, ('spam', 'eggs'), True),
    memoryview(b'spam'),
]

NOT_SHAREABLE = [
    NotImplemented,
    ...,
    type,
    object,
    object(),
    Exception(),
    Cheese,
    Cheese('Wensleydale'),
    SubBytes(b'spam'),
    SubStr('spam'),
    SubInt(3),
    [1, 2],
    {'a': 1},
    {1, 2},
    frozenset({1}),
    bytearray(b'spam'),
    _local_function,
    _local_function.__code__,
    len,
    types.SimpleNamespace(),
    types.MappingProxyType({}),
]


@pytest.mark.parametrize('obj', SHAREABLE, ids=repr)
def test_is_shareable_true(obj):
    assert interpreters.is_shareable(obj) is True


@pytest.mark.parametrize('obj', NOT_SHAREABLE, ids=repr)
def test_is_shareable_false(obj):
    assert interpreters.is_shareable(obj) is False


def test_interpreter_not_shareable():
    assert interpreters.is_shareable(interpreters.get_main()) is False
    assert interpreters.is_shareable(interpreters.create()) is False


@pytest.mark.parametrize('big', [2**64, 2**1000, -(2**1000)], ids=str)
def test_is_shareable_big_int(big):
    # Our behaviour: ints of all sizes are natively shareable.
    assert interpreters.is_shareable(big) is True


def test_is_shareable_arg_count():
    with pytest.raises(TypeError):
        interpreters.is_shareable()
    with pytest.raises(TypeError):
        interpreters.is_shareable(1, 2)


# ---------------------------------------------------------------------------
# native transfer through prepare_main()

NATIVE_VALUES = [
    None, True, False,
    0, 1, -1, 2**31, 2**63 - 1, -(2**63), 2**64, 2**1000, -(2**1000),
    0.0, -0.0, 1.5, 1e308, float('inf'), float('-inf'),
    '', 'spam', 'h\xe9llo \u2603 \U0001f600', 'a\0b', 'x' * 100_000,
    '\udc80',  # lone surrogate: str must not go through UTF-8
    b'', b'spam', b'\x00\xff' * 1000,
    (), (1,), (1, 'two', b'three', None, 4.0, (5, (6,))),
]


@pytest.mark.parametrize('value', NATIVE_VALUES,
                         ids=lambda v: repr(v)[:40])
def test_prepare_main_native_value(value):
    interp = interpreters.create()
    interp.prepare_main(value=value, expected_repr=repr(value),
                        expected_type=type(value).__name__)
    interp.exec(
        'assert type(value).__name__ == expected_type, type(value)\n'
        'assert repr(value) == expected_repr, repr(value)\n'
    )


def test_prepare_main_float_nan():
    interp = interpreters.create()
    interp.prepare_main(value=float('nan'))
    interp.exec('import math; assert type(value) is float and math.isnan(value)')


def test_prepare_main_singletons_are_singletons():
    interp = interpreters.create()
    interp.prepare_main(n=None, t=True, f=False)
    interp.exec('assert n is None and t is True and f is False')


def test_prepare_main_big_int_roundtrip():
    # Our behaviour: 2**1000 crosses natively, no pickle involved (there
    # is no pickle fallback in prepare_main).
    interp = interpreters.create()
    interp.prepare_main(big=2**1000)
    interp.exec('assert big == 2**1000 and type(big) is int')
    assert interp.call(eval, 'big') == 2**1000
    assert interp.call(eval, 'big + 1') == 2**1000 + 1


def test_prepare_main_large_bytes():
    data = bytes(range(256)) * 40_000   # ~10 MB
    interp = interpreters.create()
    interp.prepare_main(data=data)
    interp.exec(
        'assert len(data) == 256 * 40_000\n'
        'assert data == bytes(range(256)) * 40_000\n'
    )


def test_prepare_main_copies_str_and_bytes():
    # The receiver gets its own objects (checked from the receiver: they
    # are not the caller's objects, whose id we pass along).
    s = 'some string ' * 10
    b = b'some bytes ' * 10
    interp = interpreters.create()
    interp.prepare_main(s=s, b=b, sid=id(s), bid=id(b))
    interp.exec('assert id(s) != sid and id(b) != bid')


def test_prepare_main_memoryview_shares_buffer():
    buf = bytearray(b'spam')
    interp = interpreters.create()
    interp.prepare_main(view=memoryview(buf))
    interp.exec(
        'assert type(view) is memoryview\n'
        'assert bytes(view) == b"spam"\n'
        'view[0] = ord("S")\n'
    )
    # Zero copy: the write in the subinterpreter is visible here...
    assert buf == bytearray(b'Spam')
    # ...and the other way round.
    buf[1] = ord('P')
    interp.exec('assert bytes(view) == b"SPam", bytes(view)')
    interp.exec('view.release(); del view')


def test_prepare_main_readonly_memoryview():
    interp = interpreters.create()
    interp.prepare_main(view=memoryview(b'spam'))
    interp.exec(
        'assert bytes(view) == b"spam"\n'
        'assert view.readonly\n'
        'try:\n'
        '    view[0] = 1\n'
        'except TypeError:\n'
        '    pass\n'
        'else:\n'
        '    raise AssertionError("read-only view was writable")\n'
        'del view\n'
    )


@pytest.mark.parametrize('value', [
    (1, [2, 3]),
    ([1],),
    (1, (2, (3, {'a': 1}))),
    ('ok', b'ok', bytearray(b'no')),
    (interpreters.get_main(),),
], ids=repr)
def test_prepare_main_tuple_with_unshareable_item(value):
    # Our behaviour: the whole transfer fails and nothing is bound.
    interp = interpreters.create()
    with pytest.raises(NotShareableError):
        interp.prepare_main(before=1, spam=value, after=2)
    for name in ('before', 'spam', 'after'):
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.exec(name)
        assert excinfo.value.excinfo.type.__name__ == 'NameError'


@pytest.mark.parametrize('value', NOT_SHAREABLE, ids=repr)
def test_prepare_main_refuses_every_non_shareable(value):
    interp = interpreters.create()
    with pytest.raises(NotShareableError):
        interp.prepare_main(spam=value)
    with pytest.raises(ExecutionFailed):
        interp.exec('spam')


def test_not_shareable_error_is_type_error():
    interp = interpreters.create()
    with pytest.raises(TypeError) as excinfo:
        interp.prepare_main(spam=[])
    assert isinstance(excinfo.value, NotShareableError)


def test_deep_tuple():
    value = ()
    for _ in range(200):
        value = (value, 1)
    interp = interpreters.create()
    interp.prepare_main(value=value)
    interp.exec(
        'depth = 0\n'
        'v = value\n'
        'while v:\n'
        '    v, one = v\n'
        '    assert one == 1\n'
        '    depth += 1\n'
        'assert depth == 200, depth\n'
    )


# ---------------------------------------------------------------------------
# round trips through call() (native, stateless function, or pickle)


def _roundtrip(interp, value):
    return interp.call(_defs.spam_returns_arg, value)


ROUNDTRIP_EQUAL = [
    None, True, 10, -10, 2**1000, -(2**1000), 1.5, 'spam!', '\udc80',
    b'spam!', (1, 2, 'spam!'), (1, [2, 3], {'a': (4,)}),
    [1, 2, 3], {'a': 1, 'b': 2}, {1, 2}, frozenset({3}), bytearray(b'ba'),
    complex(1, 2), types.SimpleNamespace(x=42),
    int, object, type, Exception, ModuleNotFoundError,
    len, sys.exit, math.sqrt,
    Ellipsis, NotImplemented,
    _defs.Spam, _defs.SpamError, _defs.Spam(1), _defs.Spam((1, 'x')),
]


@pytest.mark.parametrize('value', ROUNDTRIP_EQUAL, ids=lambda v: repr(v)[:40])
def test_call_roundtrip_equal(new_interp, value):
    interp = new_interp()
    res = _roundtrip(interp, value)
    assert type(res) is type(value)
    assert res == value


@pytest.mark.parametrize('value', [
    None, True, False, Ellipsis, NotImplemented, int, len, _defs.Spam,
], ids=repr)
def test_call_roundtrip_identity(new_interp, value):
    # Singletons, builtin types/functions and classes (pickled by
    # reference) come back as the very same object.
    interp = new_interp()
    assert _roundtrip(interp, value) is value


def test_call_roundtrip_object():
    interp = interpreters.create()
    res = _roundtrip(interp, object())
    assert type(res) is object


def test_call_roundtrip_memoryview():
    interp = interpreters.create()
    res = _roundtrip(interp, memoryview(b'spam!'))
    assert res == memoryview(b'spam!')
    assert bytes(res) == b'spam!'


@pytest.mark.parametrize('exc', [
    Exception('uh-oh!'),
    ModuleNotFoundError('mymodule'),
    ValueError(1, 'two'),
    _defs.SpamError('spam', 42),
], ids=repr)
def test_call_roundtrip_exception(new_interp, exc):
    interp = new_interp()
    res = _roundtrip(interp, exc)
    assert type(res) is type(exc)
    assert res.args == exc.args
    assert res is not exc


def test_call_roundtrip_returns_copy():
    interp = interpreters.create()
    value = [1, [2, 3]]
    res = _roundtrip(interp, value)
    assert res == value
    assert res is not value
    assert res[1] is not value[1]


@pytest.mark.parametrize('value', [
    types.MappingProxyType({}),
    _defs.make_closure(1),
    (lambda: math.pi),   # uses a module global and cannot be pickled
], ids=['mappingproxy', 'closure', 'lambda-using-global'])
def test_call_not_shareable_arg(value):
    interp = interpreters.create()
    with pytest.raises(NotShareableError):
        _roundtrip(interp, value)


def test_call_stateless_function_arg():
    def stateless(x):
        return x + 1
    interp = interpreters.create()
    res = _roundtrip(interp, stateless)
    assert callable(res)
    assert res(1) == 2
    assert res.__name__ == 'stateless'


def test_call_interpreter_arg_pickled(new_interp):
    # Interpreter objects cross by pickle in call(): the target gets its
    # own singleton for the same id.
    interp = new_interp()
    other = interpreters.create()
    res = _roundtrip(interp, other)
    assert res is other
    interp.prepare_main(other_id=other.id)
    interp.exec(
        'import subinterpreters as I\n'
        'assert I.Interpreter(other_id).id == other_id\n'
    )


def test_pickle_of_shareables_unchanged():
    # Sanity: the values used above really are picklable in the caller, so
    # a failure above is the implementation's.
    for value in ROUNDTRIP_EQUAL:
        pickle.dumps(value)


# ---------------------------------------------------------------------------
# property: any nesting of natively shareable values crosses unchanged


@pytest.fixture(scope='module')
def shared_interp():
    interp = interpreters.create()
    yield interp
    try:
        interp.close()
    except Exception:
        pass


if given is not None:
    _scalars = (st.none() | st.booleans() | st.integers()
                | st.integers(min_value=-(2**2000), max_value=2**2000)
                | st.floats(allow_nan=False) | st.text() | st.binary())
    _shareable = st.recursive(
        _scalars, lambda children: st.lists(children, max_size=4).map(tuple),
        max_leaves=12)

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=_shareable)
    def test_property_native_roundtrip(shared_interp, value):
        assert interpreters.is_shareable(value)
        shared_interp.prepare_main(value=value)
        # repr() distinguishes 1 / 1.0 / True / '1' / b'1' and -0.0 / 0.0.
        assert repr(shared_interp.call(eval, 'value')) == repr(value)
        assert repr(shared_interp.call(_defs.spam_returns_arg, value)) \
            == repr(value)
else:   # pragma: no cover
    @pytest.mark.skip(reason='hypothesis is not installed')
    def test_property_native_roundtrip():
        pass


# ---------------------------------------------------------------------------
# builtin functions and classes travel by reference, without pickle


def test_builtins_and_classes_travel_by_reference():
    import collections
    import operator
    interp = interpreters.create()
    assert interp.call(len, 'abc') == 3
    assert interp.call(isinstance, 3, int) is True
    assert interp.call(math.sqrt, 16.0) == 4.0
    assert interp.call(operator.add, 2, 3) == 5
    assert interp.call(issubclass, collections.OrderedDict, dict) is True
    assert interp.call(sorted, [3, 1, 2], key=abs) == [1, 2, 3]
    # Nothing above needed pickle in the interpreter.
    assert interp.call(eval, '"pickle" in __import__("sys").modules') \
        is False
    # And the classes and functions are the interpreter's own.
    assert interp.call(eval, 'f is __import__("builtins").len',
                       {'f': len}) is True
    assert interp.call(eval, 't is __import__("collections").OrderedDict',
                       {'t': collections.OrderedDict}) is True


def test_non_global_builtins_still_pickle_or_fail():
    interp = interpreters.create()
    # A bound builtin method (its self is a list, not a module): pickled.
    assert interp.call([].__len__) == 0
    # A class of __main__-like origin that cannot be found by name.
    local = type('Local', (), {})
    local.__qualname__ = 'f.<locals>.Local'
    with pytest.raises(NotShareableError):
        interp.call(id, local)


def test_class_whose_name_finds_another_object_is_not_sent_by_name():
    # pickle refuses a class that its module and name do not find again;
    # so must the reference path (it falls back to pickle, which fails).
    fake = type('OrderedDict', (), {'__module__': 'collections'})
    interp = interpreters.create()
    with pytest.raises(NotShareableError):
        interp.call(id, fake)
# big payloads: call() arguments and prepare_main() values of 64 KiB or
# more (exact bytes and str, pickled data) are borrowed from the caller,
# who waits, instead of being copied twice; results and queue items are
# still copied.  These must hold whichever way the bytes travel.

BORROW_MIN = 64 * 1024


def _pattern(n, seed=0):
    # A fresh object with recognisable content on every call.
    return bytes((i * 7 + seed) % 251 for i in range(256)) * (n // 256) \
        + bytes(range(n % 256))


def _describe(x, caller_id):
    # Runs in the target (stateless: travels as code).
    return (type(x).__name__, len(x), id(x) != caller_id, hash(x))


def _make_bytes(n):
    # Runs in the target: a fresh bytes only the target holds.
    return bytes(range(256)) * (n // 256)


@pytest.mark.parametrize('n', [BORROW_MIN - 1, BORROW_MIN, BORROW_MIN + 1,
                               3 * 1024 * 1024 + 5])
def test_big_bytes_through_call(n):
    interp = interpreters.create()
    data = _pattern(n)
    refs = sys.getrefcount(data)
    assert interp.call(_describe, data, id(data)) == \
        ('bytes', n, True, hash(data))
    res = interp.call(_roundtrip_func, data)
    assert type(res) is bytes and res == data and res is not data
    assert interp.call(_describe, x=data, caller_id=0)[:2] == ('bytes', n)
    # nothing kept: every pin was dropped again
    assert sys.getrefcount(data) == refs


def _roundtrip_func(x):
    return x


@pytest.mark.parametrize('text', [
    'a' * (BORROW_MIN + 3),                 # 1 byte per character
    '\xe9' * (BORROW_MIN + 3),              # latin-1
    '\u20ac' * (BORROW_MIN // 2 + 3),       # 2 bytes
    '\U0001f600' * (BORROW_MIN // 4 + 3),   # 4 bytes
    'x' * 100 + '\U0001f600' * 20000,
], ids=['ascii', 'latin1', 'ucs2', 'ucs4', 'mixed'])
def test_big_str_through_call_prepare_main_and_result(text):
    interp = interpreters.create()
    refs = sys.getrefcount(text)
    assert interp.call(_describe, text, id(text)) == \
        ('str', len(text), True, hash(text))
    res = interp.call(_roundtrip_func, text)
    assert type(res) is str and res == text
    interp.prepare_main(text=text)
    assert interp.call(eval, 'text') == text
    interp.exec(f'assert len(text) == {len(text)}')
    assert sys.getrefcount(text) == refs


def test_big_bytes_through_prepare_main():
    interp = interpreters.create()
    a, b = _pattern(BORROW_MIN * 3, 1), _pattern(BORROW_MIN * 2, 2)
    refs = sys.getrefcount(a), sys.getrefcount(b)
    interp.prepare_main(a=a, nested=(1, (b, 'x', a)), aid=id(a))
    interp.exec('assert id(a) != aid and nested[1][2] == a '
                'and nested[1][2] is not a')
    assert interp.call(eval, 'a') == a
    assert interp.call(eval, 'nested') == (1, (b, 'x', a))
    assert (sys.getrefcount(a), sys.getrefcount(b)) == refs


def test_big_values_nested_and_repeated():
    interp = interpreters.create()
    big = _pattern(BORROW_MIN + 10)
    value = {'list': [big] * 40, 'tuple': (big, big), big[:5]: big,
             'set': {big}, 'frozen': frozenset({big})}
    assert interp.call(_roundtrip_func, value) == value
    # a cycle makes the whole value travel as one (big) pickle
    cyclic = [big, _pattern(BORROW_MIN * 2, 3)]
    cyclic.append(cyclic)
    res = interp.call(_roundtrip_func, cyclic)
    assert res[0] == big and res[1] == cyclic[1] and res[2] is res


def test_big_bytes_subclass_is_pickled_not_borrowed(new_interp):
    interp = new_interp()
    value = SubBytes(_pattern(BORROW_MIN * 2))
    res = interp.call(_roundtrip_func, value)
    assert type(res) is SubBytes and res == value
    with pytest.raises(NotShareableError):
        interp.prepare_main(value=value)
    assert interpreters.is_shareable(value) is False


def test_big_pickled_value(new_interp):
    # A pickle of 64 KiB or more is borrowed as well.
    interp = new_interp()
    value = _defs.Spam(_pattern(BORROW_MIN * 4))
    assert interp.call(_roundtrip_func, value) == value
    assert interp.call(_roundtrip_func, [value, value]) == [value, value]


class _ClearsList:
    """Pickled in the caller while call() encodes its arguments: drops the
    only references to what the list held before it."""

    def __init__(self, lst):
        self.lst = lst

    def __reduce__(self):
        sizes = [len(x) for x in self.lst[:-1]]
        self.lst.clear()
        import gc
        gc.collect()
        # reuse the freed memory, so that reading it shows
        self.junk = [b'\xff' * (n + 60) for n in sizes for _ in range(4)]
        return (int, ())


def test_big_bytes_freed_by_the_caller_while_encoding():
    # The bytes is encoded, then its only reference goes away before the
    # target decodes: the call must keep it alive (ASan would see a use
    # after free; a release build sees garbage).
    interp = interpreters.create()
    lst = [_pattern(BORROW_MIN * 8, 5), 'a' * (BORROW_MIN * 2), None]
    lst[2] = _ClearsList(lst)
    res = interp.call(_roundtrip_func, lst)
    assert res == [_pattern(BORROW_MIN * 8, 5), 'a' * (BORROW_MIN * 2), 0]
    assert lst == []


@pytest.mark.parametrize('bad', ['reduce_fails', 'load_fails'])
def test_error_after_big_argument(new_interp, bad):
    # An exception after a big payload was borrowed (in the caller's
    # encoding, or in the target's decoding) drops every pin.
    import _fault_defs as F
    interp = new_interp()
    data = _pattern(BORROW_MIN * 4)
    text = 't' * (BORROW_MIN * 2)
    refs = sys.getrefcount(data), sys.getrefcount(text)
    obj = F.ReduceFails() if bad == 'reduce_fails' else F.LoadFails()
    for _ in range(3):
        with pytest.raises(NotShareableError):
            interp.call(_roundtrip_func, data, text, obj)
        with pytest.raises(NotShareableError):
            interp.call(_roundtrip_func, data, kw=(text, obj))
        with pytest.raises(NotShareableError):
            interp.prepare_main(a=data, b=text, c=object())
    assert (sys.getrefcount(data), sys.getrefcount(text)) == refs
    assert interp.call(_roundtrip_func, data) == data


def test_big_result_made_in_target():
    # The result's object dies in the target before the caller decodes:
    # results are copied, never borrowed.
    interp = interpreters.create()
    n = 2 * 1024 * 1024
    for _ in range(3):
        res = interp.call(_make_bytes, n)
        assert res == bytes(range(256)) * (n // 256)
    interp.exec(f'import gc; big = bytes(range(256)) * {n // 256}')
    res = interp.call(eval, 'big')
    interp.exec('del big; gc.collect()')
    assert res == bytes(range(256)) * (n // 256)


def test_big_bytes_through_queue_outlive_sender():
    # Queue items are copied: the putter goes on, drops its objects, and
    # the putting interpreter may even be gone.
    q = interpreters.create_queue()
    q.put(_pattern(BORROW_MIN * 4, 9))
    q.put(('s' * (BORROW_MIN * 2), _pattern(BORROW_MIN + 1, 8)))
    import gc
    gc.collect()
    assert q.get() == _pattern(BORROW_MIN * 4, 9)
    assert q.get() == ('s' * (BORROW_MIN * 2), _pattern(BORROW_MIN + 1, 8))
    interp = interpreters.create()
    interp.prepare_main(q=q)
    # (its items would become UNBOUND if it were closed: the putter's
    # objects die and their memory is reused instead)
    interp.exec(f'q.put(bytes(range(256)) * {BORROW_MIN // 64}); '
                f'q.put("u" * {BORROW_MIN * 2}); '
                'import gc; gc.collect(); '
                f'junk = [b"\\xff" * {BORROW_MIN * 4} for _ in range(4)]; '
                'del junk')
    gc.collect()
    assert q.get() == bytes(range(256)) * (BORROW_MIN // 64)
    assert q.get() == 'u' * (BORROW_MIN * 2)


def test_big_transfers_from_many_threads():
    # Each thread reuses its own scratch buffer; results stay right when
    # threads interleave on different interpreters.
    import threading
    interps = [interpreters.create() for _ in range(4)]
    errors = []

    def worker(k):
        try:
            interp = interps[k]
            for i in range(10):
                data = _pattern(BORROW_MIN * (1 + (i + k) % 20), k + i)
                assert interp.call(_roundtrip_func, data) == data
                assert interp.call(_make_bytes, len(data)) == \
                    bytes(range(256)) * (len(data) // 256)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_class_of_a_script_main_comes_back_as_the_callers(run_python):
    # A class the target loaded from the caller's re-run script lives in
    # '<fake __main__>' there: it must come back as the caller's class
    # (pickle's mapping), not as a by-name reference.
    rc, out, err = run_python('''
        import subinterpreters as interpreters

        class Point:
            def __init__(self, x):
                self.x = x

        if __name__ == '__main__':
            interp = interpreters.create()
            assert interp.call(type, Point(1)) is Point
            q = interpreters.create_queue()
            interp.prepare_main(q=q)
            interp.call(q.put, Point)
            assert q.get(timeout=5) is Point
            print('ok')
        ''', script=True, timeout=60)
    assert rc == 0, (out, err)
    assert out.strip() == 'ok'


def test_interrupt_while_looking_up_a_global_is_not_lost():
    # The interrupt lands in a metaclass property that encoding the result
    # reads; dropping it would make pickle send the class and the call
    # return normally.
    import threading
    interp = interpreters.create()
    interp.exec('import time\n'
                'class Meta(type):\n'
                '    @property\n'
                '    def __module__(cls):\n'
                '        time.sleep(0.5)\n'
                '        return "__main__"\n'
                'class Slow(metaclass=Meta):\n'
                '    pass\n')
    timer = threading.Timer(0.1, interp.interrupt)
    timer.start()
    try:
        with pytest.raises((ExecutionFailed, NotShareableError)):
            interp.call(eval, 'Slow')
    finally:
        timer.join()


@pytest.mark.parametrize('where', ['put', 'call_arg'])
def test_interrupt_while_pickling_stays_an_interrupt(where):
    # An interrupt that lands in a __reduce__ is the interrupt, not a
    # sharing failure (the stress test's random operations found this).
    import threading
    interp = interpreters.create()
    queue = interpreters.create_queue()
    interp.prepare_main(q=queue)
    interp.exec('import time, subinterpreters\n'
                'class Slow:\n'
                '    def __reduce__(self):\n'
                '        time.sleep(0.5)\n'
                '        return (int, ())\n'
                'other = subinterpreters.create()\n')
    code = ('q.put(Slow())' if where == 'put'
            else 'other.call(id, Slow())')
    timer = threading.Timer(0.1, interp.interrupt)
    timer.start()
    try:
        with pytest.raises(ExecutionFailed) as info:
            interp.exec(code)
    finally:
        timer.join()
    assert info.value.excinfo.type.__name__ == 'KeyboardInterrupt', \
        info.value.excinfo
