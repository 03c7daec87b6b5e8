"""Reuse of closed interpreters ("parking") must be invisible.

close() keeps a few pristine interpreters (nothing imported, no module
changed, only __main__ touched) and create() hands them out again.  These
tests check that a reused interpreter cannot be told from a new one: a
fresh, higher id; a clean __main__; never listed while parked; finalizers
and queue unbinding at close(); and that anything not pristine is really
destroyed.  ``_core._parking(limit)`` sets the limit (-1 leaves it) and
returns ``(limit, number parked)``.
"""

import gc
import os
import sys

import pytest

import subinterpreters as interpreters
from subinterpreters import _core


@pytest.fixture(autouse=True)
def _parking_on():
    old = _core._parking(-1)[0]
    _core._parking(0)             # empty the list: tests start clean
    _core._parking(2)
    yield
    _core._parking(0)
    _core._parking(old)


def parked():
    return _core._parking(-1)[1]


def closed_and_parked():
    """create() + close() an interpreter, checking that it was parked."""
    interp = interpreters.create()
    interp.close()
    assert parked() == 1
    return interp.id


def test_close_parks_a_pristine_interpreter():
    interp = interpreters.create()
    interp.exec('x = 1')
    interp.close()
    assert parked() == 1
    again = interpreters.create()
    assert parked() == 0
    again.close()
    assert parked() == 1


def test_reused_interpreter_gets_a_fresh_higher_id():
    seen = []
    for _ in range(6):
        interp = interpreters.create()
        seen.append(interp.id)
        interp.close()
        assert parked() == 1
    assert seen == sorted(set(seen)), seen
    # The ids of other interpreters created meanwhile are fresh too.
    a = interpreters.create()
    b = interpreters.create()
    assert seen[-1] < a.id < b.id


def test_reused_interpreter_has_a_clean_main():
    interp = interpreters.create()
    interp.exec('x = 1\nclass C: pass\nobj = C()\n__doc__ = "changed"')
    interp.close()
    assert parked() == 1
    again = interpreters.create()
    assert parked() == 0
    names = again.call(eval, 'sorted(globals())')
    assert 'x' not in names and 'obj' not in names and 'C' not in names
    assert again.call(eval, '__name__') == '__main__'
    assert again.call(eval, '__doc__') is None


def test_old_handle_is_gone_and_parked_interpreter_is_not_listed():
    interp = interpreters.create()
    old_id = interp.id
    interp.close()
    assert parked() == 1
    assert old_id not in [i.id for i in interpreters.list_all()]
    with pytest.raises(interpreters.InterpreterNotFoundError):
        interpreters.Interpreter(old_id)
    again = interpreters.create()
    assert again.id != old_id
    # The closed handle does not reach the reused interpreter.
    with pytest.raises(interpreters.InterpreterNotFoundError):
        interp.exec('pass')
    with pytest.raises(interpreters.InterpreterNotFoundError):
        interp.is_running()
    with pytest.raises(interpreters.InterpreterNotFoundError):
        interpreters.Interpreter(old_id)
    assert [i.id for i in interpreters.list_all()].count(again.id) == 1


def test_get_current_in_a_reused_interpreter_gives_the_new_id():
    closed_and_parked()
    again = interpreters.create()
    assert parked() == 0
    again.exec(f'import sys; sys.path[:] = {sys.path!r}')
    assert again.call(eval, '__import__("subinterpreters").get_current().id'
                      ) == again.id
    ids = again.call(eval, '[i.id for i in __import__("subinterpreters")'
                           '.list_all()]')
    assert again.id in ids


def test_finalizers_run_at_close_even_when_parked(tmp_path):
    log = str(tmp_path / 'log')
    interp = interpreters.create()
    interp.exec('class Noisy:\n'
                '    def __del__(self):\n'
                f'        with open({log!r}, "a") as f:\n'
                '            f.write("finalized\\n")\n'
                'a = Noisy(); b = Noisy(); a.other = b; b.other = a\n'
                'c = Noisy()\n')
    interp.close()
    assert parked() == 1
    with open(log) as f:
        assert f.read().split() == ['finalized'] * 3


def test_queue_users_are_not_parked():
    # Using a queue imports our package in the interpreter: destroyed,
    # and its items unbound as usual.
    queue = interpreters.create_queue()
    interp = interpreters.create()
    interp.prepare_main(q=queue)
    interp.exec('q.put("bound to me")')
    interp.close()
    assert parked() == 0
    assert queue.get(timeout=5) is interpreters.UNBOUND


@pytest.mark.parametrize('change', [
    'import json',
    'import sys; sys.path.append("/nowhere")',
    'import os; os.sep_extra = 1',
    'import sys; sys.setrecursionlimit(500)',
    'import builtins; builtins.spam = 1',
    'import sys; sys.modules["fake"] = sys',
    'import sys; sys.modules["__main__"] = type(sys)("other")',
    'import sys; sys.set_int_max_str_digits(1000)',
    'import sys; sys.setswitchinterval(0.5)',
    'import sys; sys.monitoring.use_tool_id(3, "spy")',
    'import sys; sys.addaudithook(lambda *a: None)',
    'import _warnings; _warnings.filters.insert(0, ("ignore", None, '
    'Warning, None, 0))',
    'import os; os.getcwd.__self__.fspath.__doc__ and None; '
    'os.makedirs.__code__ = os.removedirs.__code__',
    'import sys; sys.modules["__main__"].__class__ = type("M", '
    '(type(sys),), {})',
    'import os; os.environ["SBI_TEST_REUSE_SET"] = "1"',
])
def test_not_pristine_is_destroyed(change):
    interp = interpreters.create()
    interp.exec(change)
    interp.close()
    assert parked() == 0
    again = interpreters.create()
    # A really new interpreter: none of the change is visible.
    assert again.call(eval, '"json" in __import__("sys").modules') is False
    assert again.call(eval, '__import__("sys").getrecursionlimit()') != 500
    assert again.call(eval, 'hasattr(__import__("builtins"), "spam")') \
        is False
    assert again.call(eval, '__import__("sys").monitoring.get_tool(3)') \
        is None
    assert again.call(eval, '__import__("os").makedirs.__code__.co_name') \
        == 'makedirs'
    os.environ.pop('SBI_TEST_REUSE_SET', None)


def test_classes_of_main_may_change():
    interp = interpreters.create()
    interp.exec('class C: pass\nC.x = 1\ndel C.x')
    interp.close()
    assert parked() == 1


def test_concurrent_create_and_close_lose_no_interpreter():
    # Closing threads park while others take parked interpreters: none
    # may be left alive without a handle, or counted twice.
    import threading
    errors = []

    def worker():
        try:
            for _ in range(150):
                interp = interpreters.create()
                interp.exec('y = 1')
                del interp
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gc.collect()
    assert not errors, errors
    assert _core._count_interpreters() == 0
    assert [i.id for i in interpreters.list_all()] == [0]
    assert parked() <= 2


def test_limit_bounds_the_parked_list():
    interps = [interpreters.create() for _ in range(5)]
    for interp in interps:
        interp.close()
    assert parked() == 2
    assert _core._parking(1) == (1, 1)
    assert _core._parking(0) == (0, 0)
    interp = interpreters.create()
    interp.close()
    assert parked() == 0
    with pytest.raises(ValueError):
        _core._parking(10**6)
    with pytest.raises(TypeError):
        _core._parking('x')


def test_environment_change_prevents_reuse(monkeypatch):
    interp = interpreters.create()
    interp.close()
    assert parked() == 1
    monkeypatch.setenv('SBI_TEST_REUSE_ENV', 'changed')
    again = interpreters.create()
    assert parked() == 0
    assert again.call(eval, '__import__("os").environ.get('
                            '"SBI_TEST_REUSE_ENV")') == 'changed'


def test_dropping_the_last_reference_parks_too():
    interp = interpreters.create()
    del interp
    gc.collect()
    assert parked() == 1


def test_reused_interpreter_runs_in_parallel_and_interrupts():
    closed_and_parked()
    again = interpreters.create()
    assert parked() == 0
    with pytest.raises(TimeoutError):
        again.exec('while True: pass', timeout=0.2)
    assert again.call(eval, '6 * 7') == 42
    assert not again.is_running()


def test_exit_with_parked_interpreters(run_python):
    rc, out, err = run_python('''
        import subinterpreters as interpreters
        from subinterpreters import _core
        a, b, c = (interpreters.create() for _ in range(3))
        a.close(); b.close()
        assert _core._parking(-1)[1] == 2, _core._parking(-1)
        c.exec('import threading, time; '
               'threading.Thread(target=time.sleep, args=(0.2,)).start()')
        print('ok', flush=True)
        ''', timeout=60)
    assert rc == 0, (rc, out, err)
    assert 'ok' in out
    assert 'Fatal Python error' not in err, err


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs os.fork')
def test_fork_with_parked_interpreters(run_python):
    rc, out, err = run_python('''
        import os
        import subinterpreters as interpreters
        from subinterpreters import _core
        interpreters.create().close()
        assert _core._parking(-1)[1] == 1
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        print('child', os.waitstatus_to_exitcode(status), flush=True)
        assert _core._parking(-1)[0] > 0   # the limit is back
        ''', timeout=60)
    assert rc == 0, (rc, out, err)
    assert 'child 7' in out, (out, err)
