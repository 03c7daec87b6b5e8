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


# -- subinterpreters.sync (test_sync.py): Barrier actions.  They use this
#    module's globals, so they travel by reference and each interpreter
#    runs them in its own import of this module.

SYNC_ACTION_LOG = []


def sync_action():
    """Record the id of the interpreter the action runs in."""
    import subinterpreters
    SYNC_ACTION_LOG.append(subinterpreters.get_current().id)


def sync_action_log():
    """Return this interpreter's SYNC_ACTION_LOG, and empty it."""
    log = list(SYNC_ACTION_LOG)
    SYNC_ACTION_LOG.clear()
    return log


def sync_action_fails():
    raise SpamError('barrier action failed')


# -- SharedDict (test_shdict.py).  Stateless: they travel as code, so an
#    interpreter that never imported subinterpreters (or this module) can
#    run them; they import what they need.

def shd_set(d, key, value):
    d[key] = value


def shd_get(d, key):
    return d[key]


def shd_lookup(d, keys):
    """[d[k] for k in keys], with KeyError as the string 'KeyError'."""
    out = []
    for k in keys:
        try:
            out.append(d[k])
        except KeyError:
            out.append('KeyError')
    return out


def shd_same_object(a, b):
    return a is b


def shd_describe(d):
    """What the receiving interpreter sees: type name, id, items."""
    return (type(d).__name__, d.id, list(d.items()))


def shd_create(pairs):
    import subinterpreters
    return subinterpreters.SharedDict(pairs)


def shd_create_nested():
    import subinterpreters
    inner = subinterpreters.SharedDict(y=2)
    outer = subinterpreters.SharedDict(x=1, inner=inner)
    outer['list'] = [inner, {'deep': subinterpreters.SharedDict(z=3)}]
    return outer


def shd_store_new_dict(outer, key):
    """Store a SharedDict made here under outer[key]; keep no reference."""
    import subinterpreters
    outer[key] = subinterpreters.SharedDict(made_in=subinterpreters
                                            .get_current().id)


def shd_write_through_inner(outer, key, k, v):
    outer[key][k] = v
    return outer[key] is outer[key]


def shd_mutate_read_value(d, key):
    """Mutate what d[key] returned; return what d[key] holds then."""
    v = d[key]
    v.append('mutated')
    return d[key]


def shd_incr_loop(d, key, n):
    """incr(key) n times; return the values incr() returned."""
    return [d.incr(key) for _ in range(n)]


def shd_churn(d, tag, n, start):
    """After start.wait(): set n keys (tag, i), delete the even ones, pop
    the ones divisible by 3 that are left; return the keys that should
    remain."""
    start.wait(120)
    for i in range(n):
        d[(tag, i)] = [tag, i]
    for i in range(0, n, 2):
        del d[(tag, i)]
    for i in range(3, n, 6):
        assert d.pop((tag, i)) == [tag, i]
    return [(tag, i) for i in range(n) if i % 2 and i % 3]


def shd_hold(d):
    """Keep d in this interpreter's __main__ (as held_dict)."""
    import __main__
    __main__.held_dict = d
    return d.id


def shd_give_back():
    import __main__
    d = __main__.held_dict
    del __main__.held_dict
    return d


def shd_queue_roundtrip(q):
    """Get a SharedDict from q, write to it and put it back."""
    d = q.get()
    d['via_queue'] = True
    q.put(d)


def shd_in_threads(d, what, args, nthreads, start):
    """Run one of the loops defined here (what: 'incr', 'setdefault',
    'locked_rmw' or 'popitem_all') in nthreads threads of this
    interpreter; return their results in thread order (or raise the
    first exception one of them raised).  Every thread first waits on
    start (a barrier shared with the other interpreters' threads), so
    that they all run at once."""
    import threading
    loops = {
        'incr': lambda key, n: [d.incr(key) for _ in range(n)],
        'setdefault': lambda tag, n: [
            d.setdefault(('key', j), (tag, j)) for j in range(n)],
    }

    def locked_rmw(lock, key, n):
        races = 0
        for _ in range(n):
            with lock:
                v = d[key]
                d[key] = v + 1
                if d[key] != v + 1:
                    races += 1
        return races

    def popitem_all():
        popped = []
        while True:
            try:
                popped.append(d.popitem())
            except KeyError:
                return popped

    loops['locked_rmw'] = locked_rmw
    loops['popitem_all'] = popitem_all
    loop = loops[what]
    results = [None] * nthreads
    errors = []

    def run(i):
        try:
            start.wait(120)
            if what == 'setdefault':
                results[i] = loop((args[0], i), *args[1:])
            else:
                results[i] = loop(*args)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,))
               for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def shd_acquire_value(d, key):
    """Acquire the lock stored as d[key]; return whether d[key] (read
    again) says it is locked."""
    d[key].acquire()
    return d[key].locked()


ABORTED_IN_ACTION = []    # the Barrier that sync_action_aborts() aborts


def sync_action_aborts():
    """A Barrier action that aborts its own barrier while it runs."""
    ABORTED_IN_ACTION[0].abort()
