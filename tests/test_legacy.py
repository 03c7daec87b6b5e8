"""Legacy interpreters: create(isolated=False) and the pool's isolated=False.

A legacy interpreter shares the main interpreter's GIL and object
allocator and loads single-phase extension modules, which isolated ones
refuse.  The whole API works on it.
"""

import importlib
import importlib.util
import os
import subprocess
import sys
import threading
import time

import pytest

import subinterpreters as interpreters
from subinterpreters import _core
from subinterpreters.executor import InterpreterPoolExecutor

from _helpers import check_clean

# Extension modules of the standard library (or its test modules) built
# with single-phase init on the Pythons we test: the first that the main
# interpreter can import is used.
SINGLE_PHASE = ('_testsinglephase', 'xxlimited_35', 'readline', '_curses')


def single_phase_module():
    for name in SINGLE_PHASE:
        spec = importlib.util.find_spec(name)
        origin = getattr(spec, 'origin', None)
        if (origin and origin.endswith('.so')
                and _core._extension_kind(origin) == 'single-phase'):
            return name
    pytest.skip('no single-phase extension module of the standard library '
                'is installed')


@pytest.fixture
def legacy():
    interp = interpreters.create(isolated=False)
    yield interp
    try:
        interp.close()
    except interpreters.InterpreterError:
        pass


def square(x):
    return x * x


def import_it(name):
    importlib.import_module(name)
    return name


def test_warning_on_312(run_python):
    rc, out, err = run_python("""
        import warnings
        import subinterpreters as interpreters
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            for _ in range(2):
                interpreters.create(isolated=False).close()
            interpreters.create().close()
        print(sum('gh-112175' in str(w.message) for w in caught))
    """, env={'PYTHONWARNINGS': ''})
    check_clean(rc, out, err)
    assert out.split() == ['1' if sys.version_info < (3, 13) else '0']


def test_create_keyword_only():
    with pytest.raises(TypeError):
        interpreters.create(False)
    with pytest.raises(TypeError):
        interpreters.create(isolate=False)
    with pytest.raises(TypeError, match='isolated must be True or False'):
        interpreters.create(isolated=None)
    with pytest.raises(TypeError, match='isolated must be True or False'):
        InterpreterPoolExecutor(isolated=0)


def test_whole_api(legacy):
    assert legacy in interpreters.list_all()
    assert legacy.whence == '_interpreters module'
    assert not legacy.is_running()
    legacy.prepare_main(x=20, name='legacy')
    legacy.exec('y = x + 1')
    assert legacy.call(square, 12) == 144
    t = legacy.call_in_thread(square, 3)
    t.join()
    q = interpreters.create_queue()
    legacy.prepare_main(q=q)
    legacy.exec('q.put((y, name))')
    assert q.get(timeout=10) == (21, 'legacy')
    with pytest.raises(interpreters.ExecutionFailed) as info:
        legacy.exec('raise ValueError("in legacy")')
    assert info.value.excinfo.type.__name__ == 'ValueError'
    legacy.close()
    assert legacy not in interpreters.list_all()


# 3.12 lets a thread running Python in a legacy interpreter keep the
# shared GIL from the other interpreters' threads (compat.h
# SBI_LEGACY_GIL_WARNING): interrupt() and timeouts wait for it.
needs_313 = pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason='3.12: a spinning legacy interpreter starves other threads '
           '(fixed in 3.13, gh-112175)')


@needs_313
def test_interrupt(legacy):
    errors = []

    def run():
        try:
            legacy.exec('while True: pass')
        except interpreters.ExecutionFailed as exc:
            errors.append(exc.excinfo.type.__name__)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 30
    while not legacy.is_running() and time.monotonic() < deadline:
        time.sleep(0.01)
    legacy.interrupt()
    t.join(30)
    assert not t.is_alive()
    assert errors == ['KeyboardInterrupt']


@needs_313
def test_exec_timeout(legacy):
    with pytest.raises(TimeoutError):
        legacy.exec('while True: pass', timeout=0.2)
    assert legacy.call(square, 5) == 25


def test_single_phase_module_loads_only_in_legacy(legacy):
    name = single_phase_module()
    legacy.exec(f'import {name}')
    isolated = interpreters.create()
    try:
        with pytest.raises(interpreters.ExecutionFailed) as info:
            isolated.exec(f'import {name}')
        assert info.value.excinfo.type.__name__ == 'ImportError'
        assert 'does not support loading in subinterpreters' in str(
            info.value)
    finally:
        isolated.close()


def test_reuse_keeps_kinds_apart():
    # A closed pristine isolated interpreter is parked for reuse; a legacy
    # request must never get it, and a legacy one is never parked.
    name = single_phase_module()
    interpreters.create().close()
    legacy = interpreters.create(isolated=False)
    legacy.exec(f'import {name}')
    legacy.close()
    interpreters.create(isolated=False).close()
    isolated = interpreters.create()
    try:
        with pytest.raises(interpreters.ExecutionFailed):
            isolated.exec(f'import {name}')
    finally:
        isolated.close()


def test_pool_isolated_false():
    name = single_phase_module()
    with InterpreterPoolExecutor(2, isolated=False) as pool:
        assert list(pool.map(square, range(10))) == [x * x for x in range(10)]
        fut = pool.submit(import_it, name)
        assert fut.result(timeout=60) == name
    with InterpreterPoolExecutor(1) as pool:
        fut = pool.submit(import_it, name)
        with pytest.raises(ImportError):
            fut.result(timeout=60)


def test_memory_is_main_interpreters(run_python):
    # A legacy interpreter allocates from the main interpreter's arenas:
    # releasing "its" arenas when it ends (3.12/3.13, arena.c) would free
    # the main interpreter's memory.  ARENA_CHECK makes a wrongly released
    # arena inaccessible, so the process would crash.
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        keep = []
        for i in range(20):
            interp = interpreters.create(isolated=False)
            interp.exec('import json, re, decimal; x = [str(i) for i in range(5000)]')
            interp.close()
            keep.append([str(i) * 3 for i in range(5000)])
            iso = interpreters.create()
            iso.exec('import json')
            iso.close()
        import gc; gc.collect()
        print(sum(len(k) for k in keep))
    """, env={'SUBINTERPRETERS_ARENA_CHECK': '1'})
    check_clean(rc, out, err)
    assert out.split() == ['100000']


@pytest.mark.skipif(sys.version_info >= (3, 13),
                    reason='3.13 refuses single-phase modules before their '
                           'init function runs')
def test_312_single_phase_refused_before_init(run_python):
    # gh-119450: 3.12 runs a single-phase module's init function in an
    # isolated interpreter before refusing it; its C statics then point
    # into that interpreter's freed memory.  Ours refuse it unloaded.
    rc, out, err = run_python("""
        import importlib.util, sys
        import subinterpreters as interpreters
        from subinterpreters import _core
        names = []
        for name in ('pyexpat', '_elementtree', 'readline', '_lsprof',
                     '_testsinglephase', 'xxlimited_35', '_testcapi'):
            spec = importlib.util.find_spec(name)
            origin = getattr(spec, 'origin', None) or ''
            if origin.endswith('.so') and \\
                    _core._extension_kind(origin) == 'single-phase':
                names.append(name)
        assert names, 'no single-phase module found'
        for name in names:
            legacy = interpreters.create(isolated=False)
            legacy.exec(f'import {name}')
            iso = interpreters.create()
            try:
                iso.exec(f'import {name}')
            except interpreters.ExecutionFailed as exc:
                assert exc.excinfo.type.__name__ == 'ImportError', exc
            else:
                raise AssertionError(f'{name} loaded in isolation')
            iso.close()
            legacy.close()
            __import__(name)
        print(len(names))
    """)
    check_clean(rc, out, err)
    assert int(out) >= 1


def test_extension_kind():
    import _json
    spec = importlib.util.find_spec('_json')
    if spec.origin and spec.origin.endswith('.so'):
        assert _core._extension_kind(spec.origin) == 'multi-phase'
    assert _core._extension_kind(sys.executable) == 'unknown'
    assert _core._extension_kind(__file__) == 'unknown'
    assert _core._extension_kind('/no/such/file.so') == 'unknown'
    with pytest.raises(TypeError):
        _core._extension_kind(42)
    with pytest.raises(ValueError):
        _core._extension_kind('a\0b')
    del _json


@pytest.mark.skipif(sys.version_info >= (3, 13),
                    reason='3.13 refuses single-phase modules before their '
                           'init function runs')
def test_312_refusal_shield_is_needed(tmp_path, run_python):
    # Real third-party single-phase packages: a legacy and an isolated
    # interpreter importing regex, then msgspec, abort 3.12.1 when the
    # isolated one runs their init functions (with CPython's own
    # _xxsubinterpreters too); our refusal before loading prevents it.
    target = tmp_path / 'site'
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '-q', '--target',
         str(target), 'regex', 'msgspec'],
        capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f'regex and msgspec not installable: {proc.stderr}')
    code = """
        import subinterpreters as interpreters
        for name in ('regex', 'msgspec'):
            legacy = interpreters.create(isolated=False)
            legacy.exec(f'import {name}')
            iso = interpreters.create()
            try:
                iso.exec(f'import {name}')
            except interpreters.ExecutionFailed as exc:
                assert 'does not support loading' in str(exc), exc
            legacy.close()
            iso.close()
        print('ok')
    """
    env = {'PYTHONPATH': str(target)}
    rc, out, err = run_python(code, env=env)
    check_clean(rc, out, err)
    assert out.strip() == 'ok'
    if os.environ.get('PYTHONMALLOC') == 'malloc':
        return  # the crash is the two object allocators' (pymalloc only)
    rc, out, err = run_python(
        code, env=dict(env, SUBINTERPRETERS_NO_SHIELDS='1'))
    assert rc != 0, (out, err)     # SIGABRT: "munmap_chunk(): invalid pointer"
