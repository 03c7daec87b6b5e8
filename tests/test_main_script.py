"""Functions and objects of a script's __main__ sent to other interpreters.

A function whose defaults are data ships as code, like a stateless one.
One that needs the script's globals is found by running the script in
the receiving interpreter as '<fake __main__>' -- only when the script
guards its top-level code with `if __name__ == "__main__":`; otherwise,
or when that run fails, ONE NotShareableError names the function, the
reason and the fix.
"""

import pytest

import subinterpreters as interpreters

from _helpers import check_clean

PRELUDE = """
import subinterpreters as interpreters
from subinterpreters.executor import InterpreterPoolExecutor
print('top level ran')
FACTOR = 3

def scaled(x):
    return x * FACTOR

def with_defaults(x, scale=2, *, extra=(1, [2, 3], {'k': {4}}), flag=None):
    return x * scale + len(extra) + (flag is None)

def default_is_object(x, sentinel=object()):
    return x
"""


def run_script(run_python, body, *, guarded):
    if guarded:
        body = 'if __name__ == "__main__":\n' + ''.join(
            '    ' + line + '\n' for line in body.strip().splitlines())
    rc, out, err = run_python(PRELUDE + body, script=True)
    check_clean(rc, out, err)
    return out


@pytest.mark.parametrize('guarded', [False, True])
def test_defaults_ship_as_code(run_python, guarded):
    out = run_script(run_python, """
interp = interpreters.create()
print(interp.call(with_defaults, 5))
print(interp.call(with_defaults, 5, 3, flag=1))
with InterpreterPoolExecutor(2) as pool:
    print(list(pool.map(with_defaults, [1, 2])))
""", guarded=guarded)
    # The script never ran again: its functions travelled as code.
    assert out.split('\n').count('top level ran') == 1, out
    assert out.split('\n')[1:4] == ['14', '18', '[6, 8]'], out


def test_unguarded_script_is_not_run_again(run_python):
    out = run_script(run_python, """
interp = interpreters.create()
try:
    interp.call(scaled, 2)
except interpreters.NotShareableError as exc:
    print('ERROR', exc)
    print('CAUSE', exc.__cause__, exc.__suppress_context__ or exc.__context__)
""", guarded=False)
    assert out.count('top level ran') == 1, out
    error = next(line for line in out.splitlines() if line.startswith('ERROR'))
    assert 'function scaled' in error
    assert "uses the global 'FACTOR'" in error
    assert 'has no `if __name__ == "__main__":` guard' in error
    assert 'move it into a module' in error
    assert 'CAUSE None' in out, out


def test_unguarded_script_pool_error(run_python):
    out = run_script(run_python, """
with InterpreterPoolExecutor(1) as pool:
    try:
        pool.submit(scaled, 2).result()
    except interpreters.NotShareableError as exc:
        print('ERROR', exc)
""", guarded=False)
    assert out.count('top level ran') == 1, out
    assert 'function scaled' in out and 'guard' in out, out


def test_default_that_is_not_data_falls_back_to_pickle(run_python):
    out = run_script(run_python, """
interp = interpreters.create()
try:
    interp.call(default_is_object, 2)
except interpreters.NotShareableError as exc:
    print('ERROR', exc)
""", guarded=False)
    assert 'function default_is_object (it has a default value of type ' \
        'object' in out
    assert 'neither data nor shareable' in out


def test_guarded_script_runs_again(run_python):
    out = run_script(run_python, """
interp = interpreters.create()
print(interp.call(scaled, 2))
""", guarded=True)
    # Once here, once in the receiver (whose stdout may flush later).
    lines = out.splitlines()
    assert sorted(lines) == ['6', 'top level ran', 'top level ran'], out


def test_failing_rerun_gives_one_clear_error(run_python):
    rc, out, err = run_python("""
import subinterpreters as interpreters
if interpreters.get_current().id != 0:
    import no_such_module_in_rerun
FACTOR = 3

def scaled(x):
    return x * FACTOR

if __name__ == '__main__':
    interp = interpreters.create()
    try:
        interp.call(scaled, 2)
    except interpreters.NotShareableError as exc:
        print('ERROR', exc)
        print('CAUSE', exc.__cause__)
""", script=True)
    check_clean(rc, out, err)
    assert 'function scaled' in out
    assert 'running the script' in out
    assert "ModuleNotFoundError: No module named 'no_such_module_in_rerun' " \
           "(line 4)" in out, out
    assert 'CAUSE None' in out


def test_objects_of_main_classes(run_python):
    rc, out, err = run_python("""
import subinterpreters as interpreters
class Point:
    def __init__(self, x):
        self.x = x
interp = interpreters.create()
try:
    interp.call(len, [Point(1)])
except interpreters.NotShareableError as exc:
    print('ERROR', exc)
""", script=True)
    check_clean(rc, out, err)
    assert 'ERROR args not shareable: a Point object belongs to' in out, out


def test_prepare_main_says_why_not():
    # prepare_main() keeps 3.14's rule (CPython's own tests check it); its
    # error says so and what to use instead.
    interp = interpreters.create()
    try:
        with pytest.raises(interpreters.NotShareableError) as info:
            interp.prepare_main(ok=1, config={'a': [1, 2]})
        text = str(info.value)
        assert text.startswith("prepare_main(config=...): {'a': [1, 2]} "
                               "does not support cross-interpreter data")
        assert 'as in Python 3.14' in text and 'call()' in text
        assert info.value.__cause__ is None
        q = interpreters.create_queue()
        interp.prepare_main(q=q, t=(1, 'a', None))
        interp.exec('q.put(t)')
        assert q.get(timeout=10) == (1, 'a', None)
    finally:
        interp.close()


def test_close_main_interpreter():
    with pytest.raises(interpreters.InterpreterError,
                       match='^cannot close the main interpreter$'):
        interpreters.get_main().close()


# ---------------------------------------------------------------------------
# Defaults that travel with the code (functions pickle cannot find by
# reference: made inside a test, like a script's own).


def test_equal_constant_defaults_are_one_object():
    # The compiler merges equal constants: both defaults are one tuple.
    def f(x, a=(1, 2), b=(1, 2)):
        return x + sum(a) + sum(b)
    assert f.__defaults__[0] is f.__defaults__[1]
    interp = interpreters.create()
    try:
        assert interp.call(f, 1) == 7
    finally:
        interp.close()


def test_shared_mutable_default_is_not_copied_twice():
    shared = [1]

    def f(x, a=shared, b=shared):
        return x
    interp = interpreters.create()
    try:
        with pytest.raises(interpreters.NotShareableError,
                           match='hold the same list twice'):
            interp.call(f, 1)
    finally:
        interp.close()


def test_deep_or_huge_defaults_are_refused_quickly():
    deep = ()
    for _ in range(300):
        deep = (deep,)
    huge = (0,)
    for _ in range(64):             # 2**64 paths: must not be walked
        huge = (huge, huge)

    def f(x, d=deep):
        return x

    def g(x, h=huge):
        return x
    interp = interpreters.create()
    try:
        for func in (f, g):
            with pytest.raises(interpreters.NotShareableError):
                interp.call(func, 1)
    finally:
        interp.close()


def test_default_of_unshareable_type_named_by_type():
    class Odd:
        def __repr__(self):
            raise RuntimeError('repr must not be called')

    def f(x, o=Odd()):
        return x
    interp = interpreters.create()
    try:
        with pytest.raises(interpreters.NotShareableError,
                           match='default value of type .*Odd'):
            interp.call(f, 1)
    finally:
        interp.close()
