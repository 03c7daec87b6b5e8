"""subinterpreters.SharedDict: a MutableMapping whose keys and values live
outside every interpreter.

Sections:

1. The mapping API against a plain dict as oracle: a hypothesis state
   machine and a seeded random walk run the same operations on both and
   compare after every step -- types included all the way down (1 is not
   1.0, -0.0 is not 0.0), order included.  Big tables (rebuilds, holes)
   and the rest of the API (construction, errors of arity, comparison,
   repr) separately.
2. Keys: equal exactly when they are equal as dict keys (1 == 1.0 == True
   == 1+0j, -0.0 == 0.0, frozensets in any order, tuples of these, big
   ints, shareable objects by identity); the key as first stored is kept.
3. Insertion order: after overwrites, deletes, re-inserts, popitem(),
   setdefault(), incr() and update().
4. Copies: what is read is a fresh copy; what was stored is copied in.
5. Errors: NotShareableError and TypeError (unhashable) and their
   messages, KeyError, incr() on non-numbers; a failed operation changes
   nothing.
6. Across interpreters: every transfer (call() arguments and results,
   prepare_main(), queues, the pool) gives an object for the same dict;
   keys made of shareable objects match across interpreters; a SharedDict
   inside a SharedDict; lifetimes (made in a subinterpreter that is then
   closed).
7. Stress: 3 interpreters x 2 threads counting with incr() and with a
   sync.Lock-guarded read-modify-write; concurrent churn with readers.
8. Leaks: _core._shared_count() goes back to where it was; memory (traced
   and RSS) does not grow over repeated operations (subprocesses, as
   test_leaks.py).

Functions run in other interpreters come from ``_defs`` (shd_*): they are
stateless, so they travel as code.  Nothing here depends on timing: every
wait is bounded by JOIN seconds only so that a bug fails a test instead
of hanging the suite.
"""

import collections.abc
import gc
import math
import os
import pickle
import random
import re
import threading

import pytest

import subinterpreters as interpreters
from subinterpreters import NotShareableError, SharedDict, _core, sync

import _defs
from _helpers import check_clean

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, settings                   # noqa: E402
from hypothesis import strategies as st                        # noqa: E402
from hypothesis.stateful import (                              # noqa: E402
    RuleBasedStateMachine, invariant, precondition, rule)

ExecutionFailed = interpreters.ExecutionFailed

JOIN = 120     # bound on any wait that must end

SANITIZED = bool(os.environ.get('SBI_SANITIZE'))
# As test_stress.py: SBI_STRESS_SCALE multiplies the stress counts (the
# exact totals asked for are kept by default).
SCALE = float(os.environ.get('SBI_STRESS_SCALE',
                             '0.25' if SANITIZED else '1'))


def scaled(n):
    return max(1, int(n * SCALE))


# ---------------------------------------------------------------------------
# helpers


def typed(x):
    """x as a structure that compares equal only when the types match all
    the way down (1 != 1.0, -0.0 != 0.0), order of lists, tuples and dicts
    included, sets in any order."""
    t = type(x)
    if t in (tuple, list):
        return (t.__name__, tuple(typed(e) for e in x))
    if t in (set, frozenset):
        return (t.__name__, frozenset(typed(e) for e in x))
    if t is dict:
        return ('dict', tuple((typed(k), typed(v)) for k, v in x.items()))
    if t in (float, complex):
        return (t.__name__, repr(x))
    if t in (bytearray,):
        return (t.__name__, bytes(x))
    if t is SharedDict:
        return ('SharedDict', x.id)
    return (t.__name__, x)


def typed_items(mapping):
    return [(typed(k), typed(v)) for k, v in mapping.items()]


def assert_same(d, oracle):
    """d (a SharedDict) holds what oracle (a dict) holds, in its order,
    through every way of reading it."""
    want = typed_items(oracle)
    assert len(d) == len(oracle)
    assert [(typed(k), typed(v)) for k, v in d.items()] == want
    assert [typed(k) for k in d] == [k for k, _ in want]
    assert [typed(k) for k in d.keys()] == [k for k, _ in want]
    assert [typed(v) for v in d.values()] == [v for _, v in want]
    assert typed(d.copy()) == typed(oracle)
    assert d == oracle
    assert not (d != oracle)


class Threads:
    """One daemon thread per callable, started at once; join() returns
    their results in order or raises the first exception one raised."""

    def __init__(self, *targets):
        self.results = [None] * len(targets)
        self.errors = []
        self._threads = [
            threading.Thread(target=self._run, args=(i, f), daemon=True)
            for i, f in enumerate(targets)]
        for t in self._threads:
            t.start()

    def _run(self, i, f):
        try:
            self.results[i] = f()
        except BaseException as exc:
            self.errors.append(exc)

    def join(self, timeout=JOIN):
        for t in self._threads:
            t.join(timeout)
        alive = [t for t in self._threads if t.is_alive()]
        assert not alive, f'{len(alive)} thread(s) still running'
        if self.errors:
            raise self.errors[0]
        return self.results


def shared_count():
    gc.collect()
    return _core._shared_count()


# ===========================================================================
# 1. The mapping API against a dict


NUMBERS = (int, float, complex, bool)

# A small pool of keys, so that random operations hit existing keys often,
# with many that are equal across types.
KEY_POOL = [
    0, 1, 2, -1, 1.0, 2.0, -1.0, True, False, 0.0, -0.0, 0j, 1 + 0j,
    complex(-0.0, 0.0), 0.5, complex(0.5, -0.0), 1.5, float('inf'),
    complex(0, 1), complex(-0.0, 1), 2**64, float(2**64), 2**64 + 1,
    -2**63, float(-2**63), 2**63, 10**30, -10**30, 2**1000,
    None, '', 'a', 'b', 'é', '€', '😀', 'a\x00', b'', b'a', b'\x00\xff',
    (), (1,), (1.0,), (True, 'a'), (1, (2, (3,))), ((),),
    frozenset(), frozenset({1, 2}), frozenset({2.0, True}),
    frozenset({(1, 2), 'x'}), frozenset({frozenset({1}), None}),
]

scalar_keys = st.one_of(
    st.sampled_from(KEY_POOL),
    st.integers(-5, 5),
    st.integers(),
    st.floats(allow_nan=False, width=16),
    st.complex_numbers(allow_nan=False, max_magnitude=4),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.booleans(),
    st.none(),
)
keys_st = st.recursive(
    scalar_keys,
    lambda inner: st.one_of(st.tuples(inner, inner),
                            st.lists(inner, max_size=3).map(tuple),
                            st.frozensets(inner, max_size=3)),
    max_leaves=6)

scalar_values = st.one_of(
    st.none(), st.booleans(), st.integers(),
    st.floats(allow_nan=False), st.complex_numbers(allow_nan=False),
    st.text(max_size=5), st.binary(max_size=5),
    st.binary(max_size=5).map(bytearray),
)
values_st = st.recursive(
    scalar_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(keys_st, inner, max_size=3),
        st.sets(keys_st, max_size=3),
        st.frozensets(keys_st, max_size=3)),
    max_leaves=8)
numbers_st = st.one_of(
    st.integers(-10, 10), st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.booleans())
# Non-numbers too, for incr()'s TypeError.
incr_args_st = st.one_of(numbers_st, st.sampled_from(['x', None, b'1', ()]))

MISSING = object()


def oracle_incr(o, key, delta, default):
    cur = o[key] if key in o else default
    if type(cur) not in NUMBERS or type(delta) not in NUMBERS:
        raise TypeError('incr() adds numbers')
    o[key] = new = cur + delta
    return new


def both(f_d, f_o):
    """Run f_d() and f_o(); they must both return equal (typed) results
    or both raise the same exception type.  Returns the result."""
    try:
        want = ('ok', f_o())
    except Exception as exc:
        want = ('raise', type(exc))
    try:
        got = ('ok', f_d())
    except Exception as exc:
        got = ('raise', type(exc))
    if want[0] == 'ok' and got[0] == 'ok':
        assert typed(got[1]) == typed(want[1]), (got, want)
    else:
        assert got == want
    return got


class SharedDictMachine(RuleBasedStateMachine):

    def __init__(self):
        super().__init__()
        self.d = SharedDict()
        self.o = {}

    @rule(k=keys_st, v=values_st)
    def setitem(self, k, v):
        self.d[k] = v
        self.o[k] = v

    @rule(k=keys_st)
    def getitem(self, k):
        both(lambda: self.d[k], lambda: self.o[k])

    @rule(k=keys_st)
    def delitem(self, k):
        def f(m):
            del m[k]
        both(lambda: f(self.d), lambda: f(self.o))

    @precondition(lambda self: self.o)
    @rule(data=st.data())
    def delitem_existing(self, data):
        k = data.draw(st.sampled_from(list(self.o)))
        # An equal key of another type finds it too.
        if type(k) in (int, bool) and abs(k) < 2**53:
            k = data.draw(st.sampled_from([k, float(k), complex(k)]))
        del self.d[k]
        del self.o[k]

    @rule(k=keys_st)
    def contains(self, k):
        assert (k in self.d) == (k in self.o)

    @rule(k=keys_st, default=st.one_of(st.just(MISSING), values_st))
    def get(self, k, default):
        if default is MISSING:
            both(lambda: self.d.get(k), lambda: self.o.get(k))
        else:
            both(lambda: self.d.get(k, default),
                 lambda: self.o.get(k, default))

    @rule(k=keys_st, default=st.one_of(st.just(MISSING), values_st))
    def pop(self, k, default):
        if default is MISSING:
            both(lambda: self.d.pop(k), lambda: self.o.pop(k))
        else:
            both(lambda: self.d.pop(k, default),
                 lambda: self.o.pop(k, default))

    @rule()
    def popitem(self):
        both(self.d.popitem, self.o.popitem)

    @rule(k=keys_st, default=st.one_of(st.just(MISSING), values_st))
    def setdefault(self, k, default):
        if default is MISSING:
            both(lambda: self.d.setdefault(k),
                 lambda: self.o.setdefault(k))
        else:
            both(lambda: self.d.setdefault(k, default),
                 lambda: self.o.setdefault(k, default))

    @rule(pairs=st.lists(st.tuples(keys_st, values_st), max_size=4),
          kwargs=st.dictionaries(st.text(max_size=2), values_st,
                                 max_size=2),
          form=st.sampled_from(['list', 'dict', 'shareddict', 'iter']))
    def update(self, pairs, kwargs, form):
        if form == 'dict':
            arg = dict(pairs)
        elif form == 'shareddict':
            arg = SharedDict(pairs)
        elif form == 'iter':
            arg = iter(pairs)
            self.d.update(arg, **kwargs)
            self.o.update(pairs, **kwargs)
            return
        else:
            arg = pairs
        self.d.update(arg, **kwargs)
        self.o.update(dict(pairs) if form == 'shareddict' else arg,
                      **kwargs)

    @rule(k=keys_st, delta=st.one_of(st.just(MISSING), incr_args_st),
          default=st.one_of(st.just(MISSING), incr_args_st))
    def incr(self, k, delta, default):
        kwargs = {}
        if delta is not MISSING:
            kwargs['delta'] = delta
        if default is not MISSING:
            kwargs['default'] = default
        both(lambda: self.d.incr(k, **kwargs),
             lambda: oracle_incr(self.o, k, kwargs.get('delta', 1),
                                 kwargs.get('default', 0)))

    @rule()
    def clear(self):
        self.d.clear()
        self.o.clear()

    @rule()
    def iterate_while_mutating(self):
        # Iteration is over a snapshot: mutating meanwhile is fine.
        seen = []
        for k in self.d:
            seen.append(typed(k))
            self.d[k] = self.d[k]
        assert seen == [typed(k) for k in self.o]

    @invariant()
    def same(self):
        assert_same(self.d, self.o)


TestStateMachine = SharedDictMachine.TestCase
TestStateMachine.settings = settings(
    max_examples=scaled(60), stateful_step_count=40, deadline=None,
    database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow,
                           HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])


def test_random_walk_against_dict():
    # A seeded walk over a small pool of keys (hits existing keys often,
    # and keys equal across types), longer than the state machine's.
    rng = random.Random(20240607)
    d, o = SharedDict(), {}
    ops = ['set', 'set', 'set', 'del', 'pop', 'popitem', 'setdefault',
           'incr', 'update', 'get', 'clear']
    for step in range(scaled(6000)):
        op = rng.choice(ops)
        k = rng.choice(KEY_POOL)
        v = rng.choice([None, step, step * 0.5, str(step), [step],
                        (step, 'x'), {'s': step}, {step}, b'b'])
        if op == 'set':
            d[k] = v
            o[k] = v
        elif op == 'del':
            both(lambda: d.__delitem__(k), lambda: o.__delitem__(k))
        elif op == 'pop':
            both(lambda: d.pop(k, 'dflt'), lambda: o.pop(k, 'dflt'))
        elif op == 'popitem':
            both(d.popitem, o.popitem)
        elif op == 'setdefault':
            both(lambda: d.setdefault(k, v), lambda: o.setdefault(k, v))
        elif op == 'incr':
            delta = rng.choice([1, -2, 0.5, True, 1j])
            both(lambda: d.incr(k, delta),
                 lambda: oracle_incr(o, k, delta, 0))
        elif op == 'update':
            pairs = [(rng.choice(KEY_POOL), step) for _ in range(3)]
            d.update(pairs)
            o.update(pairs)
        elif op == 'get':
            both(lambda: d.get(k), lambda: o.get(k))
        elif op == 'clear' and rng.random() < 0.2:
            d.clear()
            o.clear()
        if step % 50 == 0 or op in ('popitem', 'clear'):
            assert_same(d, o)
    assert_same(d, o)


@pytest.mark.parametrize('n', [1, 7, 8, 100, 5000])
def test_big_tables_against_dict(n):
    # Growth, holes left by deletions, re-insertion and popitem() through
    # several index rebuilds.
    d, o = SharedDict(), {}
    for i in range(n):
        d[i] = o[i] = str(i)
    assert_same(d, o)
    for i in range(0, n, 2):
        del d[i]
        del o[i]
    assert_same(d, o)
    for i in range(0, n, 4):
        d[i] = o[i] = ('again', i)
        d[float(i + 1)] = o[float(i + 1)] = 'overwritten'
    assert_same(d, o)
    for i in range(n // 3):
        assert d.popitem() == o.popitem()
    assert_same(d, o)
    # Delete everything but the first, then grow again.
    for k in list(o)[1:]:
        del d[k]
        del o[k]
    assert_same(d, o)
    for i in range(n, 2 * n):
        d[(i, 'x')] = o[(i, 'x')] = i
    assert_same(d, o)
    while o:
        assert typed(d.popitem()) == typed(o.popitem())
    assert len(d) == 0
    with pytest.raises(KeyError):
        d.popitem()


def test_many_deletes_and_reinserts_of_one_key():
    # Every cycle leaves a hole; the table must rebuild, not fill up.
    d = SharedDict(first=0)
    for i in range(scaled(20000)):
        d['k'] = i
        del d['k']
        d[i % 5] = i
    assert list(d) == ['first', 0, 1, 2, 3, 4]
    assert d[4] == scaled(20000) - 1 - (scaled(20000) - 1 - 4) % 5


class TestApi:

    def test_is_a_mutable_mapping(self):
        d = SharedDict()
        assert isinstance(d, collections.abc.MutableMapping)
        assert isinstance(d, collections.abc.Mapping)
        assert not isinstance(d, dict)
        assert issubclass(SharedDict, collections.abc.MutableMapping)

    def test_construction_like_dict(self):
        pairs = [(1, 'a'), ('b', [2]), ((3, 4), {5: 6})]
        cases = [
            lambda: ((), {}),
            lambda: ((pairs,), {}),
            lambda: ((dict(pairs),), {}),
            lambda: ((iter(pairs),), {}),
            lambda: ((dict(pairs).items(),), {}),
            lambda: ((), {'x': 1, 'y': (2,)}),
            lambda: ((pairs,), {'x': 1, 'b': 'kw wins'}),
            lambda: (([('k', 1), ('k', 2), (1, 'a'), (True, 'b')],), {}),
            lambda: ((['ab', 'cd'],), {}),   # strings of length 2: pairs
        ]
        for case in cases:
            args, kwargs = case()
            d = SharedDict(*args, **kwargs)
            args, kwargs = case()
            assert typed_items(d) == typed_items(dict(*args, **kwargs))

    def test_construction_from_shareddict_and_mapping(self):
        src = SharedDict({1: 'a', 'b': 2})
        d = SharedDict(src)
        assert d == src and d.id != src.id
        d['new'] = 1
        assert 'new' not in src

        class Mapping(collections.abc.Mapping):
            def __getitem__(self, k):
                return {'m': 1, 'n': 2}[k]

            def __iter__(self):
                return iter(['m', 'n'])

            def __len__(self):
                return 2
        assert SharedDict(Mapping()) == {'m': 1, 'n': 2}

    def test_construction_errors(self):
        for args, exc in [((1, 2), TypeError), ((5,), TypeError),
                          (([1],), TypeError), (([(1,)],), ValueError),
                          (([(1, 2, 3)],), ValueError),
                          (([([], 1)],), TypeError)]:
            with pytest.raises(exc):
                SharedDict(*args)
            with pytest.raises(exc):
                dict(*args)

    def test_construction_error_messages_as_dict(self):
        for arg in ([1], [(1,)], [(1, 2), 'abc']):
            with pytest.raises(Exception) as want:
                dict(arg)
            with pytest.raises(type(want.value)) as got:
                SharedDict(arg)
            assert str(got.value) == str(want.value)

    def test_ids(self):
        a, b = SharedDict(), SharedDict()
        assert type(a.id) is int and type(b.id) is int
        assert a.id != b.id
        assert a.id > 0 and b.id > 0
        with pytest.raises(AttributeError):
            a.id = 5

    def test_unhashable(self):
        with pytest.raises(TypeError):
            hash(SharedDict())
        with pytest.raises(TypeError):
            {SharedDict(): 1}
        assert not isinstance(SharedDict(), collections.abc.Hashable)

    @pytest.mark.parametrize('proto', range(pickle.HIGHEST_PROTOCOL + 1))
    def test_pickles_by_id_within_the_process(self, proto):
        d = SharedDict(a=1)
        assert pickle.loads(pickle.dumps(d, proto)) is d
        assert pickle.loads(pickle.dumps([d], proto))[0] is d
        data = pickle.dumps(SharedDict(), proto)
        with pytest.raises(interpreters.InterpreterError,
                           match='no longer exists'):
            pickle.loads(data)

    def test_get_pop_setdefault_defaults(self):
        d = SharedDict(a=1)
        assert d.get('a') == 1
        assert d.get('x') is None
        assert d.get('x', 5) == 5
        sentinel = object()             # not shareable: returned as is
        assert d.get('x', sentinel) is sentinel
        assert d.pop('x', sentinel) is sentinel
        assert d.setdefault('s') is None
        assert 's' in d and d['s'] is None
        assert d.setdefault('s', 5) is None
        assert d.setdefault('t', [1]) == [1]
        assert d.pop('a') == 1 and 'a' not in d

    def test_arity_errors(self):
        d = SharedDict()
        for call in (lambda: d.get(), lambda: d.get(1, 2, 3),
                     lambda: d.pop(), lambda: d.pop(1, 2, 3),
                     lambda: d.setdefault(), lambda: d.setdefault(1, 2, 3),
                     lambda: d.update(1, 2), lambda: d.popitem(1),
                     lambda: d.clear(1), lambda: d.copy(1),
                     lambda: d.keys(1), lambda: d.incr(),
                     lambda: d.incr('k', 1, 0, 4),
                     lambda: d.incr('k', bogus=1)):
            with pytest.raises(TypeError):
                call()
        assert len(d) == 0

    def test_incr(self):
        d = SharedDict()
        assert d.incr('n') == 1
        assert d.incr('n') == 2
        assert d.incr('n', 5) == 7
        assert d.incr('n', delta=-10) == -3
        assert d.incr('f', 0.5) == 0.5
        assert type(d['f']) is float
        assert d.incr('c', 1j, default=2) == 2 + 1j
        assert d.incr(key='k', delta=2, default=40) == 42
        assert d.incr('b', True, default=False) == 1
        assert type(d['b']) is int           # bool + bool is an int
        assert d.incr('big', 2**100) == 2**100
        assert d.incr('big', 2**100) == 2**101
        d['i'] = 3
        assert d.incr('i', 0.25) == 3.25 and type(d['i']) is float
        assert dict(d) == {'n': -3, 'f': 0.5, 'c': 2 + 1j, 'k': 42,
                           'b': 1, 'big': 2**101, 'i': 3.25}
        # default only applies when the key is missing
        assert d.incr('n', 1, 100) == -2

    def test_incr_with_equal_keys(self):
        d = SharedDict()
        d.incr(1)
        d.incr(1.0)
        d.incr(True, 2)
        d.incr(1 + 0j)
        assert typed_items(d) == [(typed(1), typed(5))]

    def test_update_forms(self):
        d = SharedDict()
        d.update()
        d.update({})
        d.update([])
        d.update(a=1)
        d.update({'b': 2}, c=3)
        d.update([('d', 4)], a=5)
        d.update(SharedDict(e=6))
        d.update(zip('fg', (7, 8)))
        assert list(d.items()) == [('a', 5), ('b', 2), ('c', 3), ('d', 4),
                                   ('e', 6), ('f', 7), ('g', 8)]
        d.update(d)
        assert len(d) == 7

    def test_update_is_atomic(self):
        d = SharedDict(a=1)
        before = list(d.items())
        for bad in ([('x', 1), ('y', object())],
                    [('x', 1), (object(), 2)],
                    [('x', 1), ([], 2)],
                    [('x', 1), ('y',)],
                    {'x': 1, 'a': 2, 'z': lambda: 0}):
            with pytest.raises((NotShareableError, TypeError, ValueError)):
                d.update(bad)
            assert list(d.items()) == before
        with pytest.raises(NotShareableError):
            d.update({'x': 1}, y=object())
        assert list(d.items()) == before

    def test_update_from_failing_iterable_changes_nothing(self):
        def pairs():
            yield ('x', 1)
            raise ZeroDivisionError
        d = SharedDict(a=1)
        with pytest.raises(ZeroDivisionError):
            d.update(pairs())
        assert dict(d) == {'a': 1}

    def test_keys_values_items_are_snapshots(self):
        d = SharedDict(a=1, b=2)
        ks, vs, its = d.keys(), d.values(), d.items()
        d['c'] = 3
        del d['a']
        assert list(ks) == ['a', 'b']
        assert list(vs) == [1, 2]
        assert list(its) == [('a', 1), ('b', 2)]
        # They are views of a dict copy: set operations work.
        assert d.keys() & {'b', 'z'} == {'b'}
        assert ('b', 2) in d.items()

    def test_iteration_is_over_a_snapshot(self):
        d = SharedDict((i, i) for i in range(10))
        seen = []
        for k in d:
            seen.append(k)
            del d[k]
            d[k + 100] = k
        assert seen == list(range(10))
        assert list(d) == list(range(100, 110))
        it = iter(d)
        d.clear()
        assert list(it) == list(range(100, 110))

    def test_copy_is_a_plain_dict(self):
        d = SharedDict({1: [1], 'b': {2: 3}})
        c = d.copy()
        assert type(c) is dict
        assert c == {1: [1], 'b': {2: 3}}
        c[1].append(2)
        c['new'] = 1
        assert d == {1: [1], 'b': {2: 3}}
        assert dict(d) == {1: [1], 'b': {2: 3}}

    def test_equality(self):
        a = SharedDict({1: 'x', 'y': [2]})
        b = SharedDict({'y': [2], 1.0: 'x'})
        assert a == a and not (a != a)
        assert a == b and b == a and not (a != b)
        assert a == {1: 'x', 'y': [2]} and {1: 'x', 'y': [2]} == a
        assert a == {True: 'x', 'y': [2]}
        assert a != {1: 'x'} and {1: 'x'} != a
        assert a != {1: 'x', 'y': (2,)}
        b['z'] = 0
        assert a != b
        assert SharedDict() == {} and SharedDict() == SharedDict()
        assert a != [(1, 'x'), ('y', [2])]
        assert a != 1 and a != None      # noqa: E711
        with pytest.raises(TypeError):
            a < b                         # noqa: B015
        with pytest.raises(TypeError):
            a <= {}                       # noqa: B015

    def test_repr(self):
        d = SharedDict({1: 'a', 'b': (2,)})
        assert repr(d) == "SharedDict({1: 'a', 'b': (2,)})"
        assert repr(SharedDict()) == 'SharedDict({})'

    def test_repr_of_self_containing(self):
        d = SharedDict()
        try:
            d['self'] = d
            assert repr(d) == "SharedDict({'self': SharedDict({...})})"
            assert d['self'] is d
        finally:
            del d['self']     # else it keeps itself alive (a cycle)

    def test_bool_and_len(self):
        d = SharedDict()
        assert not d and len(d) == 0
        d[None] = None
        assert d and len(d) == 1

    def test_mixin_methods_of_mutable_mapping(self):
        # MutableMapping's generic methods, built on SharedDict's basic
        # ones, agree with SharedDict's own.
        MM = collections.abc.MutableMapping
        d = SharedDict([(1, 'a'), (2, 'b')])
        assert MM.pop(d, 1) == 'a'
        assert MM.get(d, 2) == 'b' and MM.get(d, 1) is None
        assert MM.__contains__(d, 2) and not MM.__contains__(d, 1)
        assert MM.setdefault(d, 3, 'c') == 'c'
        MM.update(d, [(4, 'd')], e=5)
        assert list(MM.keys(d)) == list(d.keys()) == [2, 3, 4, 'e']
        assert list(MM.items(d)) == list(d.items())
        assert list(MM.values(d)) == list(d.values())
        assert MM.__eq__(d, {2: 'b', 3: 'c', 4: 'd', 'e': 5})
        assert MM.popitem(d) == (2, 'b')       # the generic one: first key
        MM.clear(d)
        assert len(d) == 0


# ===========================================================================
# 2. Keys


EQUAL_KEYS = [
    [1, 1.0, True, 1 + 0j, complex(1, -0.0)],
    [0, 0.0, -0.0, False, 0j, complex(-0.0, -0.0)],
    [-1, -1.0, complex(-1, 0)],
    [0.5, complex(0.5, 0), complex(0.5, -0.0)],
    [2**53, float(2**53)],
    [2**63, float(2**63), complex(2**63, 0)],
    [-2**63, float(-2**63)],
    [2**64, float(2**64)],
    [9_200_000_000_000_000_000, 9.2e18],
    [2**1000, float(2**1000)],
    [-2**1000, float(-2**1000)],
    [float('inf'), complex(float('inf'), 0)],
    [float('-inf'), complex(float('-inf'), -0.0)],
    [complex(0.0, 1), complex(-0.0, 1)],
    [(1, 'a'), (True, 'a'), (1.0, 'a'), (1 + 0j, 'a')],
    [(0, (0.0, (-0.0,))), (False, (0j, (0,)))],
    [frozenset({1, 2, 3}), frozenset({3, 2, 1}), frozenset({3.0, 2, True})],
    [frozenset({'a', (1, 2), frozenset({0})}),
     frozenset({frozenset({-0.0}), (1.0, 2), 'a'})],
    [frozenset(range(100)), frozenset(range(99, -1, -1)),
     frozenset(float(i) for i in range(100))],
    [(frozenset({1, 2}),), (frozenset({2, 1.0}),)],
]

DIFFERENT_KEYS = [
    1, 2, 0, -1, 0.5, 0.25, 1.5, 1e-300, None, '', '1', 'a', 'A', 'é',
    'e\u0301', '€', '😀', 'a\x00', '\x00a', b'', b'1', b'a', b'a\x00',
    (), ((),), (1,), (1, 2), (2, 1), ((1,), 2), (1, (2,)), ('a', 'b'),
    ('ab',), (b'a',), frozenset(), frozenset({()}), frozenset({1}),
    frozenset({1, 2}), frozenset({(1, 2)}), frozenset({(2, 1)}),
    frozenset({frozenset()}), frozenset({'a'}), frozenset({b'a'}),
    2**53 + 1, 2**63 - 1, 2**64 + 1, 2**64 - 1, 10**30, -10**30,
    10**30 + 1, 2**1000 + 1, -2**63 - 1, float('inf'), float('-inf'),
    complex(0, 1), complex(0, -1), complex(1, 1), complex(1, -1),
    complex(0.5, 1e-300), 1e19,
    10**19 + 1, 'None', 'True',
]


def test_different_keys_sanity():
    # The table above really is made of keys different as dict keys.
    assert len(set(DIFFERENT_KEYS)) == len(DIFFERENT_KEYS)
    for group in EQUAL_KEYS:
        assert len(set(group)) == 1, group
        assert all(k == group[0] for k in group)


@pytest.mark.parametrize('group', EQUAL_KEYS, ids=lambda g: repr(g[0])[:30])
def test_equal_keys_are_one_key(group):
    for first in group:
        d = SharedDict()
        d[first] = 'first'
        for i, other in enumerate(group):
            assert other in d
            assert d[other] == 'first'
            assert d.get(other) == 'first'
        for i, other in enumerate(group):
            d[other] = i
        assert len(d) == 1
        # The key as first stored is kept (as a dict does).
        [(k, v)] = d.items()
        assert typed(k) == typed(first)
        assert v == len(group) - 1
        for other in group:
            d2 = SharedDict({first: 1})
            del d2[other]
            assert len(d2) == 0
            d2 = SharedDict({first: 1})
            assert d2.pop(other) == 1 and not d2
            d2 = SharedDict({first: 1})
            assert d2.setdefault(other, 2) == 1
            assert d2.incr(other) == 2
            assert typed(list(d2)) == typed([first])


def test_different_keys_are_different():
    d = SharedDict()
    o = {}
    for i, k in enumerate(DIFFERENT_KEYS):
        d[k] = i
        o[k] = i
    assert len(d) == len(DIFFERENT_KEYS)
    assert typed_items(d) == typed_items(o)
    for i, k in enumerate(DIFFERENT_KEYS):
        assert d[k] == i, k


def test_all_key_groups_together_against_dict():
    d, o = SharedDict(), {}
    for group in EQUAL_KEYS + [[k] for k in DIFFERENT_KEYS]:
        for i, k in enumerate(group):
            d[k] = (i, repr(k))
            o[k] = (i, repr(k))
    assert_same(d, o)


def test_keys_round_trip_with_their_types():
    keys = [True, False, 2, 1.5, -2.0, 2**200, -2**200, complex(1, 2),
            'str', b'bytes', None, (1, 2.0, ('x', b'y', None)),
            frozenset({1, 2.5, 'a', (3, 4)}), frozenset(), (),
            'a\udc80b', '\U0010ffff']
    d = SharedDict((k, None) for k in keys)
    assert [typed(k) for k in d] == [typed(k) for k in keys]
    assert [typed(k) for k, _ in d.items()] == [typed(k) for k in keys]
    assert [typed(k) for k in d.copy()] == [typed(k) for k in keys]


def test_negative_zero_key_kept_as_stored():
    d = SharedDict()
    d[-0.0] = 'a'
    d[0] = 'b'
    [k] = d
    assert type(k) is float and math.copysign(1, k) == -1
    assert d[0.0] == 'b' and d[False] == 'b'


def test_key_hash_collisions_in_python_are_not_equal():
    # hash(-1) == hash(-2) in CPython; and strings vs bytes of equal
    # content: different keys whatever the hashes.
    d = SharedDict({-1: 'a', -2: 'b', 'x': 'c', b'x': 'd'})
    assert (d[-1], d[-2], d['x'], d[b'x']) == ('a', 'b', 'c', 'd')


def test_string_kinds():
    # Equal strings are always of the same kind in CPython; strings built
    # in different ways are one key.
    s1 = 'ab€'
    s2 = ''.join(['a', 'b', '\u20ac'])
    s3 = 'xab€'[1:]
    d = SharedDict({s1: 1})
    assert d[s2] == 1 and d[s3] == 1
    wide = '😀' + 'a'
    d[wide[1:]] = 2                   # 'a' from a 4-byte string
    assert d['a'] == 2
    assert len(d) == 2


SHAREABLE_KINDS = ['Lock', 'RLock', 'Semaphore', 'BoundedSemaphore',
                   'Event', 'Condition', 'Barrier', 'queue']


def make_shareable(kind):
    if kind == 'queue':
        return interpreters.create_queue()
    if kind in ('Semaphore', 'BoundedSemaphore', 'Barrier'):
        return getattr(sync, kind)(2)
    return getattr(sync, kind)()


@pytest.mark.parametrize('kind', SHAREABLE_KINDS)
def test_shareable_objects_as_keys(kind):
    a, b = make_shareable(kind), make_shareable(kind)
    d = SharedDict()
    d[a] = 'a'
    d[b] = 'b'
    d[(a, 1)] = 'tuple'
    d[frozenset({a, b})] = 'set'
    assert len(d) == 4
    assert d[a] == 'a' and d[b] == 'b'
    assert d[(a, 1.0)] == 'tuple'
    assert d[frozenset({b, a})] == 'set'
    keys = list(d)
    assert keys[0] is a and keys[1] is b
    assert keys[2][0] is a
    assert a in d and make_shareable(kind) not in d


def test_shareable_keys_keep_their_objects_alive():
    # The dict holds what it stores: a queue or lock used only as a key
    # survives its last Python reference and still works when read back.
    d = SharedDict()
    q = interpreters.create_queue()
    lock = sync.Lock()
    qid, lid = q.id, lock.id
    d[q] = 'q'
    d[('lock', lock)] = 'lock'
    del q, lock
    gc.collect()
    q2, (_, lock2) = list(d)
    assert q2.id == qid and lock2.id == lid
    q2.put(5)
    assert q2.get() == 5
    assert lock2.acquire(False) is True
    lock2.release()
    assert d[q2] == 'q'


def test_nan_keys_are_one_key():
    # Documented difference from dict (which matches NaN keys only by
    # identity, something copies cannot keep): every NaN is one key.
    nan = float('nan')
    d = SharedDict({nan: 1})
    assert d[float('nan')] == 1
    d[float('-nan')] = 2
    d[complex(nan, 0)] = 3
    assert len(d) == 1 and d[nan] == 3
    [k] = d
    assert type(k) is float and math.isnan(k)
    d[(nan, 1)] = 'tuple'
    assert d[(float('nan'), 1.0)] == 'tuple'


def test_shareable_keys_of_different_kinds_do_not_collide():
    objs = [make_shareable(kind) for kind in SHAREABLE_KINDS]
    objs += [make_shareable(kind) for kind in SHAREABLE_KINDS]
    d = SharedDict()
    for i, obj in enumerate(objs):
        d[obj] = i
    assert len(d) == len(objs)
    assert [d[obj] for obj in objs] == list(range(len(objs)))
    # A queue and a sync object may have the same number as id.
    assert all(k is obj for k, obj in zip(d, objs))


# ===========================================================================
# 3. Insertion order


class TestOrder:

    def test_insertion_order(self):
        d = SharedDict()
        keys = ['z', 3, (1,), 'a', None, frozenset({2}), 1.5, b'b']
        for k in keys:
            d[k] = 0
        assert list(d) == keys

    def test_overwrite_keeps_position(self):
        d = SharedDict(a=1, b=2, c=3)
        d['a'] = 10
        d.update(b=20)
        d.setdefault('c', 30)
        d.incr('a')
        assert list(d.items()) == [('a', 11), ('b', 20), ('c', 3)]

    def test_delete_and_reinsert_moves_to_the_end(self):
        d = SharedDict(a=1, b=2, c=3)
        del d['a']
        d['a'] = 4
        assert list(d) == ['b', 'c', 'a']
        d.pop('b')
        d.setdefault('b', 5)
        assert list(d) == ['c', 'a', 'b']
        del d['c']
        d.incr('c')
        assert list(d.items()) == [('a', 4), ('b', 5), ('c', 1)]

    def test_reinsert_with_an_equal_key_of_another_type(self):
        d = SharedDict({1: 'a', 2: 'b'})
        del d[1.0]
        d[True] = 'c'
        assert typed(list(d)) == typed([2, True])

    def test_popitem_last_inserted(self):
        d = SharedDict()
        for k in 'abcde':
            d[k] = k.upper()
        assert d.popitem() == ('e', 'E')
        del d['d']
        assert d.popitem() == ('c', 'C')
        d['a'] = 'again'                      # overwrite: no move
        assert d.popitem() == ('b', 'B')
        d['x'] = 'X'
        del d['a']
        d['a'] = 'A2'
        assert d.popitem() == ('a', 'A2')
        assert d.popitem() == ('x', 'X')
        with pytest.raises(KeyError):
            d.popitem()
        d['n'] = 1
        assert d.popitem() == ('n', 1)

    def test_popitem_empty_message(self):
        with pytest.raises(KeyError) as got:
            SharedDict().popitem()
        with pytest.raises(KeyError) as want:
            {}.popitem()
        assert got.value.args == want.value.args

    def test_popitem_after_holes_in_the_middle(self):
        d, o = SharedDict(), {}
        for i in range(50):
            d[i] = o[i] = i
        for i in range(10, 40):
            del d[i]
            del o[i]
        inserted = 0
        while o:
            assert d.popitem() == o.popitem()
            if len(o) % 7 == 0 and inserted < 10:
                k = 1000 + inserted
                inserted += 1
                d[k] = o[k] = 'x'
                assert list(d) == list(o)
        assert not d

    def test_update_order(self):
        d = SharedDict(b=0)
        d.update([('c', 1), ('a', 2), ('b', 3)], z=4, a=5)
        assert list(d.items()) == [('b', 3), ('c', 1), ('a', 5), ('z', 4)]

    def test_clear_then_new_order(self):
        d = SharedDict(a=1, b=2)
        d.clear()
        assert len(d) == 0 and list(d) == []
        d['b'] = 1
        d['a'] = 2
        assert list(d) == ['b', 'a']
        d.clear()
        d.clear()
        assert not d and len(d) == 0


# ===========================================================================
# 4. Copies


class TestCopies:

    def test_stored_value_is_a_copy(self):
        v = [1, [2], {'k': {3}}]
        d = SharedDict(k=v)
        v.append(4)
        v[1].append(5)
        v[2]['k'].add(6)
        assert d['k'] == [1, [2], {'k': {3}}]

    def test_read_value_is_a_fresh_copy(self):
        d = SharedDict(k=[1, [2]], b=bytearray(b'ab'), s={1}, m={'x': [1]})
        for read in (lambda: d['k'], lambda: d.get('k'),
                     lambda: d.copy()['k'], lambda: list(d.values())[0],
                     lambda: dict(d.items())['k'],
                     lambda: d.setdefault('k', None)):
            r = read()
            assert r == [1, [2]]
            assert r is not d['k']
            r.append(3)
            r[1].append(4)
            assert d['k'] == [1, [2]]
        b = d['b']
        assert type(b) is bytearray and b == b'ab'
        b[0] = ord('z')
        assert d['b'] == bytearray(b'ab')
        s = d['s']
        s.add(2)
        assert d['s'] == {1}
        m = d['m']
        m['x'].append(2)
        m['y'] = 0
        assert d['m'] == {'x': [1]}

    def test_popped_value_is_what_was_stored(self):
        d = SharedDict(k=[1])
        r = d.pop('k')
        assert r == [1]
        d['k'] = r
        r.append(2)
        assert d.popitem() == ('k', [1])

    def test_tuple_key_read_back_is_equal(self):
        k = (1, 'a', (2.5, b'x'))
        d = SharedDict({k: 1})
        [k2] = d
        assert k2 == k

    def test_values_keep_types(self):
        values = [None, True, False, 0, -1, 2**100, 1.5, -0.0, float('inf'),
                  complex(1, -0.0), '', 'é😀', b'', b'\x00', bytearray(b'x'),
                  (), [], {}, set(), frozenset(), (1, [2, (3, {4: (5,)})]),
                  {'a': [1, {2}], (1, 2): frozenset({3})}, [[[[]]]]]
        d = SharedDict()
        for i, v in enumerate(values):
            d[i] = v
        for i, v in enumerate(values):
            assert typed(d[i]) == typed(v), v

    def test_nan_value(self):
        d = SharedDict(n=float('nan'), c=complex(1, float('nan')))
        assert math.isnan(d['n'])
        assert math.isnan(d['c'].imag)

    def test_mutated_read_value_in_a_subinterpreter(self, new_interp):
        d = SharedDict(k=[1, 2])
        interp = new_interp()
        assert interp.call(_defs.shd_mutate_read_value, d, 'k') == [1, 2]
        assert d['k'] == [1, 2]


# ===========================================================================
# 5. Errors


class Unshareable:
    def __repr__(self):
        return '<Unshareable thing>'


UNSHAREABLE = [object(), Unshareable(), len, threading.Lock(), 1 .__class__,
               lambda: 1, iter([]), memoryview(b'x'), Ellipsis,
               NotImplemented, range(3), slice(1), (1, object()),
               [object()], {'a': object()}, {1: [Unshareable()]},
               frozenset({Unshareable()})]


class TestErrors:

    @pytest.mark.parametrize('value', UNSHAREABLE,
                             ids=lambda v: type(v).__name__)
    def test_unshareable_value_names_the_key(self, value):
        d = SharedDict(a=1)
        for key in ('the key', ('tuple', 'key', 42), 123456789):
            for store in (lambda: d.__setitem__(key, value),
                          lambda: d.setdefault(key, value),
                          lambda: d.update([(key, value)]),
                          lambda: d.update({key: value}),
                          lambda: SharedDict({key: value})):
                with pytest.raises(NotShareableError) as info:
                    store()
                assert repr(key) in str(info.value), str(info.value)
            assert key not in d
        assert dict(d) == {'a': 1}

    def test_unshareable_value_error_for_keyword(self):
        with pytest.raises(NotShareableError) as info:
            SharedDict(x=1, spam=object())
        assert "'spam'" in str(info.value)
        d = SharedDict()
        with pytest.raises(NotShareableError) as info:
            d.update(eggs=Unshareable())
        assert "'eggs'" in str(info.value)
        assert not d

    def test_unshareable_value_replacing_keeps_the_old_one(self):
        d = SharedDict(k='old')
        with pytest.raises(NotShareableError):
            d['k'] = object()
        assert d['k'] == 'old' and list(d) == ['k']

    UNSHAREABLE_KEYS = [object(), Unshareable(), len, threading.Lock(),
                        Ellipsis, range(3), (1, Unshareable()),
                        frozenset({Unshareable()}), ((1, (2, object())),)]

    @pytest.mark.parametrize('key', UNSHAREABLE_KEYS,
                             ids=lambda v: type(v).__name__)
    def test_unshareable_key_is_named(self, key):
        # The message names the offending key, as it does a value's key.
        d = SharedDict()
        for op in (lambda: d.__setitem__(key, 1),
                   lambda: d.setdefault(key, 1),
                   lambda: d.update([(key, 1)]),
                   lambda: d.incr(key),
                   lambda: SharedDict([(key, 1)])):
            with pytest.raises(NotShareableError) as info:
                op()
            assert repr(key) in str(info.value), str(info.value)
        assert not d

    @pytest.mark.parametrize('key', UNSHAREABLE_KEYS,
                             ids=lambda v: type(v).__name__)
    def test_unshareable_key_names_its_type(self, key):
        d = SharedDict()
        with pytest.raises(NotShareableError) as info:
            d[key] = 1
        leaf = key
        while isinstance(leaf, (tuple, frozenset)):
            leaf = next(iter(leaf)) if isinstance(leaf, frozenset) \
                else leaf[-1]
        assert type(leaf).__name__ in str(info.value), str(info.value)

    @pytest.mark.parametrize('key', UNSHAREABLE_KEYS,
                             ids=lambda v: type(v).__name__)
    def test_lookups_with_unshareable_keys(self, key):
        # A key of a type that cannot be stored is not there, as in a dict:
        # lookups say so (False, None, KeyError, the default) and change
        # nothing.
        d = SharedDict(a=1)
        assert (key in d) is False
        assert d.get(key) is None
        assert d.get(key, 'dflt') == 'dflt'
        assert d.pop(key, 'dflt') == 'dflt'
        for op in (lambda: d[key], lambda: d.pop(key),
                   lambda: d.__delitem__(key)):
            with pytest.raises(KeyError) as info:
                op()
            assert info.value.args == (key,)
        assert dict(d) == {'a': 1}

    UNHASHABLE_KEYS = [[], [1], {}, {1: 2}, set(), bytearray(b'x'),
                       (1, []), (1, (2, {})), SharedDict()]

    @pytest.mark.parametrize('key', UNHASHABLE_KEYS,
                             ids=lambda v: type(v).__name__)
    def test_unhashable_keys_raise_type_error_like_dict(self, key):
        d = SharedDict(a=1)
        o = {'a': 1}
        for op in (lambda m: m.__setitem__(key, 1),
                   lambda m: m[key], lambda m: key in m,
                   lambda m: m.get(key), lambda m: m.pop(key),
                   lambda m: m.pop(key, None), lambda m: m.__delitem__(key),
                   lambda m: m.setdefault(key, 1),
                   lambda m: m.update([(key, 1)]),
                   lambda m: type(m)([(key, 1)])):
            with pytest.raises(TypeError) as want:
                op(o)
            with pytest.raises(TypeError) as got:
                op(d)
            assert not isinstance(got.value, NotShareableError)
            assert str(got.value) == str(want.value)
        with pytest.raises(TypeError):
            d.incr(key)
        assert dict(d) == {'a': 1}

    def test_missing_key_error_is_the_key(self):
        d = SharedDict({1: 'x'})
        for key in ('missing', 2, (1, 2), (), ('a',), frozenset({7}),
                    None, 1.5):
            for op in (lambda: d[key], lambda: d.pop(key),
                       lambda: d.__delitem__(key)):
                with pytest.raises(KeyError) as info:
                    op()
                assert info.value.args == (key,)
                assert info.value.args[0] is key
        assert dict(d) == {1: 'x'}

    def test_incr_non_numbers(self):
        d = SharedDict(s='str', n=None, l=[1], b=b'1', t=(1,), i=1)
        for key in ('s', 'n', 'l', 'b', 't'):
            with pytest.raises(TypeError) as info:
                d.incr(key)
            assert repr(key) in str(info.value)
        for delta in ('1', None, [1], b'1', (1,), object()):
            with pytest.raises(TypeError):
                d.incr('i', delta)
            with pytest.raises(TypeError):
                d.incr('missing', delta)
        for default in ('0', None, [0], object()):
            with pytest.raises(TypeError):
                d.incr('missing', 1, default)
        # Subclasses of numbers are not numbers to incr() (they are not
        # storable either).
        class MyInt(int):
            pass
        with pytest.raises((TypeError, NotShareableError)):
            d.incr('i', MyInt(1))
        assert 'missing' not in d
        assert d == {'s': 'str', 'n': None, 'l': [1], 'b': b'1',
                     't': (1,), 'i': 1}

    def test_incr_overflowing_float(self):
        d = SharedDict(f=1e308)
        assert d.incr('f', 1e308) == float('inf')
        with pytest.raises(OverflowError):
            d.incr('g', 10**400, 0.5)
        assert 'g' not in d

    def test_setdefault_with_unshareable_default_on_existing_key(self):
        # As dict.setdefault(): the existing value, whatever the default.
        d = SharedDict(k=[1])
        assert d.setdefault('k', object()) == [1]
        assert dict(d) == {'k': [1]}
        with pytest.raises(NotShareableError) as info:
            d.setdefault('new', object())
        assert "'new'" in str(info.value)
        assert dict(d) == {'k': [1]}

    def test_recursive_value(self):
        lst = []
        lst.append(lst)
        d = SharedDict()
        with pytest.raises((NotShareableError, RecursionError)):
            d['k'] = lst
        assert not d

    def test_deeply_nested_key(self):
        key = ()
        for _ in range(100000):
            key = (key,)
        d = SharedDict()
        with pytest.raises((RecursionError, NotShareableError)):
            d[key] = 1
        assert key not in d          # a key that cannot be stored is absent
        assert d.get(key, 'dflt') == 'dflt'
        assert not d


# ===========================================================================
# 6. Across interpreters


class TestAcrossInterpreters:

    def test_sub_writes_main_reads(self, new_interp):
        d = SharedDict()
        interp = new_interp()
        items = [('s', 'v'), (1, [1, 2]), (2**100, {'a': (1.5, None)}),
                 (frozenset({1, 2}), {3}), ((1, 'x'), bytearray(b'b')),
                 (-0.0, -0.0), (None, complex(1, 2))]
        for k, v in items:
            interp.call(_defs.shd_set, d, k, v)
        assert typed_items(d) == typed_items(dict(items))
        # Keys equal in another interpreter's objects find the same entry.
        assert interp.call(_defs.shd_lookup, d,
                           [1.0, True, 2**100, frozenset({2.0, 1}),
                            (True, 'x'), 0, 'missing']) == [
            [1, 2], [1, 2], {'a': (1.5, None)}, {3}, bytearray(b'b'),
            -0.0, 'KeyError']

    def test_main_writes_sub_reads(self, new_interp):
        d = SharedDict({'a': [1], (2, 3): 'b'})
        interp = new_interp()
        assert interp.call(_defs.shd_get, d, 'a') == [1]
        assert interp.call(_defs.shd_get, d, (2.0, 3)) == 'b'
        d['a'] = 'changed'
        assert interp.call(_defs.shd_get, d, 'a') == 'changed'
        name, did, items = interp.call(_defs.shd_describe, d)
        assert name == 'SharedDict' and did == d.id
        assert items == [('a', 'changed'), ((2, 3), 'b')]

    def test_fresh_interpreter_without_our_module(self):
        # No sys.path copy, no import of subinterpreters in the target:
        # the SharedDict argument loads it.
        interp = interpreters.create()
        d = SharedDict(a=1)
        interp.call(_defs.shd_set, d, 'b', 2)
        assert interp.call(_defs.shd_describe, d) == (
            'SharedDict', d.id, [('a', 1), ('b', 2)])

    def test_call_args_and_results_give_the_same_object(self, new_interp):
        d = SharedDict(x=1)
        interp = new_interp()
        assert interp.call(_defs.spam_returns_arg, d) is d
        assert interp.call(_defs.shd_same_object, d, d) is True
        back = interp.call(_defs.spam_returns_arg, [d, {'k': d}])
        assert back[0] is d and back[1]['k'] is d

    def test_prepare_main(self, new_interp, exec_output):
        d = SharedDict(x=1)
        interp = new_interp()
        interp.prepare_main(d=d, pair=(d, 2))
        out = exec_output(interp, '''
            print(type(d).__name__, d.id, d['x'], pair[0] is d)
            d['from_sub'] = [1, 2]
        ''')
        assert out.split() == ['SharedDict', str(d.id), '1', 'True']
        assert d['from_sub'] == [1, 2]

    def test_queues(self, new_interp):
        d = SharedDict()
        q = interpreters.create_queue()
        q.put(d)
        assert q.get() is d
        interp = new_interp()
        q.put(d)
        interp.call(_defs.shd_queue_roundtrip, q)
        assert q.get() is d
        assert d['via_queue'] is True

    def test_pool(self):
        d = SharedDict(n=0)
        with interpreters.InterpreterPoolExecutor(2) as pool:
            futures = [pool.submit(_defs.shd_incr_loop, d, 'n', 10)
                       for _ in range(4)]
            for f in futures:
                f.result(JOIN)
            assert pool.submit(_defs.spam_returns_arg, d).result(JOIN) is d
            assert pool.submit(_defs.shd_describe, d).result(JOIN)[1] == d.id
        assert d['n'] == 40

    def test_same_object_within_a_subinterpreter(self, new_interp):
        d = SharedDict()
        interp = new_interp()
        interp.call(_defs.shd_hold, d)
        interp.prepare_main(d2=d)
        interp.exec('assert d2 is held_dict, (d2, held_dict)')

    @pytest.mark.parametrize('kind', SHAREABLE_KINDS)
    def test_shareable_keys_match_across_interpreters(self, new_interp,
                                                     kind):
        a, b = make_shareable(kind), make_shareable(kind)
        d = SharedDict({a: 'a', (b, 1): 'b'})
        interp = new_interp()
        assert interp.call(_defs.shd_lookup, d, [a, (b, 1), b]) == [
            'a', 'b', 'KeyError']
        interp.call(_defs.shd_set, d, b, 'set in sub')
        assert d[b] == 'set in sub'
        keys = list(d)
        assert keys[0] is a and keys[2] is b

    def test_is_shareable(self):
        assert interpreters.is_shareable(SharedDict())
        assert interpreters.is_shareable(SharedDict(a=[1]))

    def test_sync_objects_as_values(self, new_interp):
        # A primitive stored as a value comes back as the same object,
        # and its state is shared.
        lock = sync.Lock()
        d = SharedDict(lock=lock, ev=sync.Event(), lst=[lock])
        assert d['lock'] is lock and d['lst'][0] is lock
        interp = new_interp()
        assert interp.call(_defs.shd_acquire_value, d, 'lock') is True
        assert lock.locked() is True
        lock.release()
        ev = d['ev']
        interp.call(_defs.shd_set, d, 'flag', 1)
        assert ev.is_set() is False and d['ev'] is ev

    def test_shared_dict_inside_shared_dict(self, new_interp):
        inner = SharedDict(y=1)
        outer = SharedDict(inner=inner, many=[inner, (inner,)])
        assert outer['inner'] is inner
        many = outer['many']
        assert many[0] is inner and many[1][0] is inner
        interp = new_interp()
        assert interp.call(_defs.shd_write_through_inner, outer, 'inner',
                           'from_sub', 2) is True
        assert inner == {'y': 1, 'from_sub': 2}
        assert outer['inner']['from_sub'] == 2
        # The one inside is a handle, not a copy.
        outer['inner']['direct'] = 3
        assert inner['direct'] == 3

    def test_inner_dict_kept_alive_by_the_outer_one(self, new_interp):
        outer = SharedDict()
        outer['inner'] = SharedDict(a=1)   # no other reference
        gc.collect()
        assert outer['inner']['a'] == 1
        interp = new_interp()
        iid = interp.id
        interp.call(_defs.shd_store_new_dict, outer, 'from_sub')
        interp.close()
        gc.collect()
        assert outer['from_sub'] == {'made_in': iid}
        outer['from_sub']['x'] = 2
        assert outer['from_sub'] == {'made_in': iid, 'x': 2}

    def test_dict_made_in_a_closed_subinterpreter(self, new_interp):
        interp = new_interp()
        d = interp.call(_defs.shd_create, [('a', 1), ('b', [2])])
        nested = interp.call(_defs.shd_create_nested)
        interp.close()
        gc.collect()
        assert dict(d) == {'a': 1, 'b': [2]}
        d['c'] = 3
        assert list(d) == ['a', 'b', 'c']
        assert nested['x'] == 1
        assert nested['inner'] == {'y': 2}
        inner, deep = nested['list']
        assert inner is nested['inner']
        assert deep['deep'] == {'z': 3}
        deep['deep']['w'] = 4
        assert nested['list'][1]['deep'] == {'z': 3, 'w': 4}
        # Still shareable with another interpreter.
        other = new_interp()
        assert other.call(_defs.shd_describe, d)[1:] == (
            d.id, [('a', 1), ('b', [2]), ('c', 3)])

    def test_dict_held_only_by_a_subinterpreter(self, new_interp):
        interp = new_interp()
        d = SharedDict(a=[1])
        did = d.id
        interp.call(_defs.shd_hold, d)
        del d
        gc.collect()
        back = interp.call(_defs.shd_give_back)
        assert back.id == did and back == {'a': [1]}

    def test_subinterpreter_closed_while_main_holds(self, new_interp):
        d = SharedDict()
        interps = [new_interp() for _ in range(3)]
        for i, interp in enumerate(interps):
            interp.call(_defs.shd_hold, d)
            interp.call(_defs.shd_set, d, i, interp.id)
        for interp in interps:
            interp.close()
        gc.collect()
        assert dict(d) == {i: interp.id for i, interp in enumerate(interps)}

    def test_incr_and_errors_in_a_subinterpreter(self, new_interp):
        d = SharedDict(s='x')
        interp = new_interp()
        assert interp.call(_defs.shd_incr_loop, d, 'n', 3) == [1, 2, 3]
        with pytest.raises(ExecutionFailed) as info:
            interp.call(_defs.shd_incr_loop, d, 's', 1)
        assert info.value.excinfo.type.__name__ == 'TypeError'
        with pytest.raises(ExecutionFailed) as info:
            interp.call(_defs.shd_get, d, 'missing')
        assert info.value.excinfo.type.__name__ == 'KeyError'


# ===========================================================================
# 7. Stress
#
# An interpreter runs __main__ in one thread at a time (call() from a
# second thread raises InterpreterError): _defs.shd_in_threads starts the
# threads inside each interpreter, and the interpreters run at once from
# threads of main.


def in_interpreters(interps, d, what, args, nthreads, extra=()):
    """_defs.shd_in_threads(d, what, args, nthreads, barrier) in every
    interpreter at once, the threads all starting together (extra: more
    callables, run in threads of main, that take the barrier too); the
    results of all the interpreters' threads, in order."""
    start = sync.Barrier(len(interps) * nthreads + len(extra))
    results = Threads(*[
        (lambda interp=interp:
         interp.call(_defs.shd_in_threads, d, what, args, nthreads, start))
        for interp in interps], *[
        (lambda f=f: f(start)) for f in extra]).join()
    results = results[:len(interps)]
    return [r for per_interp in results for r in per_interp]


@pytest.mark.timeout(300)
def test_stress_incr_three_interpreters(new_interp):
    n_interps, n_threads, n = 3, 2, scaled(2000)
    d = SharedDict()
    interps = [new_interp() for _ in range(n_interps)]
    results = in_interpreters(interps, d, 'incr', ('n', n), n_threads)
    total = n_interps * n_threads * n
    assert d['n'] == total
    # Every value was returned exactly once: each incr() was atomic.
    seen = sorted(v for r in results for v in r)
    assert seen == list(range(1, total + 1))
    for r in results:
        assert len(r) == n and r == sorted(r)


@pytest.mark.timeout(300)
def test_stress_locked_read_modify_write(new_interp):
    n_interps, n_threads, n = 3, 2, scaled(2000)
    d = SharedDict(m=0)
    lock = sync.Lock()
    interps = [new_interp() for _ in range(n_interps)]
    races = in_interpreters(interps, d, 'locked_rmw', (lock, 'm', n),
                            n_threads)
    assert races == [0] * (n_interps * n_threads)
    assert d['m'] == n_interps * n_threads * n
    assert lock.locked() is False


@pytest.mark.timeout(300)
def test_stress_incr_main_threads_and_subinterpreters(new_interp):
    # Threads of main too, and float and complex counters.
    n = scaled(1000)
    d = SharedDict()
    interps = [new_interp() for _ in range(2)]

    def loop(key, delta):
        def run(start):
            start.wait(JOIN)
            return [d.incr(key, delta) for _ in range(n)]
        return run
    in_interpreters(interps, d, 'incr', ('n', n), 2, extra=[
        loop('n', 1), loop('n', 1), loop('f', 0.5), loop('c', 1j)])
    assert d['n'] == 6 * n
    assert d['f'] == n * 0.5
    assert d['c'] == complex(0, n)


@pytest.mark.timeout(300)
def test_stress_churn_with_concurrent_readers(new_interp):
    # Writers in three interpreters insert and delete their own keys
    # (growing and rebuilding the table under each other) while a reader
    # in main takes snapshots; every snapshot is self-consistent and the
    # end result is exact.
    n = scaled(3000)
    d = SharedDict()
    interps = [new_interp() for _ in range(3)]
    stop = threading.Event()
    snapshots = []

    def reader():
        while not stop.is_set():
            c = d.copy()
            items = list(d.items())
            for k, v in c.items():
                assert v == [k[0], k[1]], (k, v)
            for k, v in items:
                assert v == [k[0], k[1]], (k, v)
            snapshots.append(len(c))
            for k in d:             # a snapshot: no error while mutated
                pass
        return len(snapshots)

    r = Threads(reader)
    start = sync.Barrier(len(interps))
    try:
        remaining = Threads(*[
            (lambda interp=interp, tag=tag:
             interp.call(_defs.shd_churn, d, tag, n, start))
            for tag, interp in enumerate(interps)]).join()
    finally:
        stop.set()
    r.join()
    want = [k for keys in remaining for k in keys]
    assert sorted(d) == sorted(want)
    for k in want:
        assert d[k] == [k[0], k[1]]
    assert snapshots


@pytest.mark.timeout(300)
def test_stress_setdefault_and_popitem(new_interp):
    # setdefault() is one atomic step: of many threads racing for a key
    # exactly one value wins and everybody sees that one.
    d = SharedDict()
    interps = [new_interp() for _ in range(3)]
    n = scaled(1000)
    results = in_interpreters(interps, d, 'setdefault', ('t', n), 2)
    assert len(results) == 6
    assert len(d) == n
    for j in range(n):
        winners = {r[j] for r in results}
        assert len(winners) == 1, winners
        assert d[('key', j)] in winners
    # popitem() from threads of several interpreters: every item exactly
    # once.
    popped = in_interpreters(interps, d, 'popitem_all', (), 2)
    keys = [k for ps in popped for k, _ in ps]
    assert len(keys) == n
    assert sorted(keys) == [('key', j) for j in range(n)]
    assert len(d) == 0


# ===========================================================================
# 8. Leaks


def test_shared_count_back_to_start(new_interp):
    start = shared_count()
    interp = new_interp()
    q = interpreters.create_queue()
    for i in range(200):
        d = SharedDict({'i': i, 'l': [i]})
        inner = SharedDict(x=SharedDict(y=i))
        d['inner'] = inner
        d['list'] = [inner, {'deep': SharedDict()}]
        del inner
        assert interp.call(_defs.spam_returns_arg, d) is d
        interp.prepare_main(tmp=d)
        q.put(d)
        assert q.get() is d
        made = interp.call(_defs.shd_create_nested)
        d['made'] = made
        lock = sync.Lock()
        d[lock] = 'lock as key'
        d[(sync.Event(), 1)] = SharedDict(z=sync.Semaphore())
        if i % 3 == 0:
            d.clear()
        elif i % 3 == 1:
            while d:
                d.popitem()
        del d, made, lock
    interp.exec('del tmp')
    # Left in queues that are then dropped, never read.
    for i in range(20):
        q2 = interpreters.create_queue()
        q2.put(SharedDict(i=i, inner=SharedDict()))
        q2.put([SharedDict()])
        interp.call(_defs.shd_set, SharedDict(), 'q', q2)
        del q2
    with interpreters.InterpreterPoolExecutor(2) as pool:
        for i in range(20):
            d = SharedDict(i=i)
            assert pool.submit(_defs.spam_returns_arg, d).result(JOIN) is d
            pool.submit(_defs.shd_store_new_dict, d, 'x').result(JOIN)
            assert pool.submit(_defs.shd_create_nested).result(JOIN)['x'] == 1
    del d
    interp.close()
    assert shared_count() == start


def test_shared_count_after_closing_holders(new_interp):
    start = shared_count()
    interps = [new_interp() for _ in range(3)]
    for interp in interps:
        interp.call(_defs.shd_hold, SharedDict(a=SharedDict()))
        interp.call(_defs.shd_hold, interp.call(_defs.shd_create_nested))
    assert shared_count() > start
    for interp in interps:
        interp.close()
    assert shared_count() == start


def test_shared_count_after_errors():
    start = shared_count()
    for _ in range(100):
        d = SharedDict()
        with pytest.raises(NotShareableError):
            SharedDict(a=SharedDict(), b=object())
        with pytest.raises(NotShareableError):
            d.update([('a', SharedDict()), ('b', object())])
        with pytest.raises(NotShareableError):
            d[sync.Lock()] = object()
        with pytest.raises(TypeError):
            d[[]] = SharedDict()
        with pytest.raises(TypeError):
            d.incr('k', SharedDict())
        del d
    assert shared_count() == start


LEAK_SCRIPT = r'''
import gc, os, sys, tracemalloc
sys.path[:0] = {path!r}
import subinterpreters as interpreters
from subinterpreters import SharedDict, sync, _core
import _defs

def rss_kb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])

interp = interpreters.create()
interp.exec(f"__import__('sys').path[:] = {{sys.path!r}}")
d = SharedDict()
big = SharedDict()
q = interpreters.create_queue()

def op_set_get_del(i):
    d[i % 100, 'k'] = ['v', i, {{'x': b'y' * (i % 40)}}]
    assert d[i % 100, 'k'][1] == i
    del d[i % 100, 'k']

def op_many_keys(i):
    d[i] = i
    if i % 1000 == 999:
        for j in range(i - 999, i + 1):
            del d[j]

def op_incr(i):
    d.incr(('c', i % 10))
    d.incr('f', 0.5)

def op_views(i):
    d['a'] = [i]
    d.copy(); list(d.items()); list(d); d.get('a'); 'a' in d; len(d)
    d.update(a=i, b=(i,))
    d.pop('b'); d.setdefault('s', 1)
    d == {{}}

def op_popitem(i):
    d[i] = str(i)
    d[-i - 1] = (i,)
    d.popitem(); d.popitem()

def op_create_drop(i):
    x = SharedDict(a=i, inner=SharedDict(b=[i]))
    x['lock'] = sync.Lock()
    x[sync.Event()] = x['inner']

def op_nested(i):
    d['n'] = SharedDict(a=i)
    assert d['n']['a'] == i
    del d['n']

def op_errors(i):
    try:
        d['x'] = object()
    except interpreters.NotShareableError:
        pass
    try:
        d[[i]] = 1
    except TypeError:
        pass
    try:
        d['missing']
    except KeyError:
        pass

def op_cross(i):
    interp.call(_defs.shd_set, d, 'k', (i, 'x'))
    assert interp.call(_defs.shd_get, d, 'k') == (i, 'x')
    del d['k']

def op_queue(i):
    q.put(SharedDict(i=i))
    q.get()['j'] = i

OP = globals()['op_' + {op!r}]
N, ROUNDS = {n}, {rounds}

def run_round():
    for i in range(N):
        OP(i)
    gc.collect()

run_round()
run_round()
count_before = _core._shared_count()
tracemalloc.start()
traced, rss = [], []
for _ in range(ROUNDS):
    run_round()
    traced.append(tracemalloc.get_traced_memory()[0])
    rss.append(rss_kb())
count_after = _core._shared_count()
print('traced', [t // 1024 for t in traced], 'rss', rss,
      'shared', count_before, count_after, flush=True)
print('RESULT', traced[-1] - traced[0], rss[-1] - rss[0],
      count_after - count_before, flush=True)
os._exit(0)    # see test_leaks.py (tracemalloc + subinterpreters)
'''

LIMIT_TRACED = 96 * 1024      # bytes, first to last round
PER_OP_BYTES = 2
LIMIT_RSS = 2 * 1024          # KB, first to last round

LEAK_OPS = {
    'set_get_del': 5000,      # 5 rounds: 20,000 measured cycles
    'many_keys': 5000,
    'incr': 5000,
    'views': 3000,
    'popitem': 5000,
    'create_drop': 3000,
    'nested': 3000,
    'errors': 1000,
    'cross': 2000,
    'queue': 3000,
}


@pytest.mark.timeout(240)
@pytest.mark.parametrize('op', sorted(LEAK_OPS))
def test_repeated_operation_does_not_grow_memory(run_python, op):
    n = LEAK_OPS[op]
    rounds = 5
    code = LEAK_SCRIPT.format(path=[os.path.dirname(__file__)], op=op, n=n,
                              rounds=rounds)
    rc, out, err = run_python(code, timeout=220)
    assert rc == 0, f'rc={rc}\n{out}\n{err}'
    print(out)
    match = re.search(r'^RESULT (-?\d+) (-?\d+) (-?\d+)$', out, re.M)
    assert match, out
    traced, rss, shared = map(int, match.groups())
    nops = n * (rounds - 1)
    assert shared == 0, f'{op}: {shared} shared objects more\n{out}'
    assert traced <= LIMIT_TRACED + PER_OP_BYTES * nops, (
        f'{op}: traced memory grew by {traced} bytes over {nops} '
        f'operations\n{out}')
    if not SANITIZED:
        assert rss <= LIMIT_RSS, f'{op}: RSS grew by {rss} KB\n{out}'


def test_dicts_freed_at_exit_cleanly(run_python):
    # Dicts alive in several interpreters at exit, holding each other and
    # sync objects: a clean exit.
    rc, out, err = run_python(r'''
        import subinterpreters as interpreters
        from subinterpreters import SharedDict, sync
        d = SharedDict(lock=sync.Lock())
        d['inner'] = SharedDict(x=1)
        interp = interpreters.create()
        interp.prepare_main(d=d)
        interp.exec("import subinterpreters as i; "
                    "d['sub'] = keep = i.SharedDict(y=2)")
        print('ok', d['sub']['y'])
        ''')
    check_clean(rc, out, err)
    assert out.strip() == 'ok 2'


@pytest.mark.timeout(60)
def test_deep_shared_value_refused_quickly():
    # 250 levels of [x, x]: 2**250 nodes if copied (or printed) naively.
    x = []
    for _ in range(250):
        x = [x, x]
    d = SharedDict()
    with pytest.raises(NotShareableError, match='list'):
        d['k'] = x
    with pytest.raises(NotShareableError):
        d[tuple_chain(250)] = 1
    assert tuple_chain(250) not in d


def tuple_chain(n):
    t = ()
    for _ in range(n):
        t = (t, t)
    return t
