"""python -m subinterpreters check, check_import(), and the hint that
errors about extension modules refusing isolated interpreters carry."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import subinterpreters as interpreters
from subinterpreters import _check
from subinterpreters.executor import InterpreterPoolExecutor

from test_legacy import single_phase_module


def run_cli(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, '-m', 'subinterpreters', *args],
        capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL)


@pytest.fixture
def modules_dir(tmp_path, monkeypatch):
    """A directory on the children's PYTHONPATH for made-up modules."""
    path = os.pathsep.join(filter(None, [str(tmp_path),
                                         os.environ.get('PYTHONPATH')]))
    monkeypatch.setenv('PYTHONPATH', path)

    def add(name, source):
        (tmp_path / f'{name}.py').write_text(textwrap.dedent(source))
    return add


def test_pure_python_module_loads_everywhere():
    assert interpreters.check_import('json') == {
        'module': 'json', 'isolated': True, 'legacy': True, 'main': True,
        'reason': None}


def test_single_phase_extension():
    name = single_phase_module()
    r = interpreters.check_import(name)
    assert (r['isolated'], r['legacy'], r['main']) == (False, True, True), r
    assert 'single-phase extension module' in r['reason'], r
    assert name in r['reason']


def test_dependency_is_named(modules_dir):
    name = single_phase_module()
    modules_dir('needs_single_phase', f'import {name}\n')
    r = interpreters.check_import('needs_single_phase')
    assert (r['isolated'], r['legacy'], r['main']) == (False, True, True), r
    assert f'it needs {name}, a single-phase extension module' in r['reason']


def test_fallback_is_reported(modules_dir):
    name = single_phase_module()
    modules_dir('falls_back', f"""
        try:
            import {name}
        except ImportError:
            FALLBACK = True
    """)
    r = interpreters.check_import('falls_back')
    assert (r['isolated'], r['legacy'], r['main']) == (True, True, True), r
    assert f'without {name}' in r['reason'] and 'fallback' in r['reason']


@pytest.mark.skipif(sys.version_info >= (3, 13),
                    reason="3.13 isolated _decimal (gh-117399)")
def test_decimal_falls_back_on_312():
    r = interpreters.check_import('decimal')
    assert r['isolated'] and r['main'], r
    assert '_decimal' in r['reason'] and 'pure-Python' in r['reason'], r


def test_missing_module():
    r = interpreters.check_import('no_such_module_for_check')
    assert r == {'module': 'no_such_module_for_check', 'isolated': False,
                 'legacy': False, 'main': False, 'reason': r['reason']}
    assert 'does not import in the main interpreter' in r['reason']
    assert 'No module named' in r['reason']


def test_crash_in_a_subinterpreter_does_not_take_the_caller_down(
        modules_dir):
    modules_dir('crashes_in_sub', """
        import os, subinterpreters
        if subinterpreters.get_current().id != 0:
            os.abort()
    """)
    r = interpreters.check_import('crashes_in_sub')
    assert (r['isolated'], r['legacy'], r['main']) == (False, False, True), r
    assert 'isolated interpreter crashed the process (signal 6)' in \
        r['reason'], r


def test_hang_times_out(modules_dir):
    modules_dir('hangs_in_sub', """
        import time, subinterpreters
        if subinterpreters.get_current().id != 0:
            time.sleep(60)
    """)
    r = _check.check_import('hangs_in_sub', timeout=10)
    assert (r['isolated'], r['main']) == (False, True), r
    assert 'timed out after 10 s' in r['reason']


@pytest.mark.parametrize('bad', ['', '1x', 'a..b', 'a b', 'os;rm'])
def test_bad_names(bad):
    with pytest.raises(ValueError):
        interpreters.check_import(bad)
    assert run_cli('check', bad).returncode == 2


def test_bad_type():
    with pytest.raises(TypeError):
        interpreters.check_import(b'json')


def test_cli_json_and_exit_status():
    name = single_phase_module()
    proc = run_cli('check', 'json', name, '--json')
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert [d['module'] for d in data] == ['json', name]
    for d in data:
        assert set(d) == {'module', 'isolated', 'legacy', 'main', 'reason'}
    assert data[0]['reason'] is None and data[1]['isolated'] is False
    proc = run_cli('check', 'json')
    assert proc.returncode == 0, proc.stderr


def test_cli_table():
    name = single_phase_module()
    proc = run_cli('check', name, 'json')
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ['module', 'isolated', 'legacy', 'main',
                                'reason']
    assert lines[2].split()[:4] == [name, 'no', 'yes', 'yes']
    assert lines[-1].split() == ['json', 'yes', 'yes', 'yes', '-']


def test_cli_usage():
    assert run_cli('check').returncode == 2
    assert run_cli().returncode == 2
    assert run_cli('nonsense').returncode == 2
    proc = run_cli('check', '--help')
    assert proc.returncode == 0 and '--all-installed' in proc.stdout


def test_installed_top_level():
    names = _check.installed_top_level()
    assert 'pytest' in names and 'subinterpreters' in names
    assert all(_check._NAME.match(n) for n in names)


# ---------------------------------------------------------------------------
# The hint


def test_hint_in_execution_failed():
    name = single_phase_module()
    interp = interpreters.create()
    try:
        with pytest.raises(interpreters.ExecutionFailed) as info:
            interp.exec(f'import {name}')
    finally:
        interp.close()
    text = str(info.value)
    assert f'hint: extension module {name} is not built for isolated ' \
           f'interpreters' in text
    assert 'create(isolated=False)' in text
    assert 'python -m subinterpreters check ' in text
    assert text.count('hint:') == 1


def test_hint_names_the_top_level_package():
    from subinterpreters import _core
    hint = _core._refusal_hint(
        'ImportError: Original error was: module pkg._sub._ext does not '
        'support loading in subinterpreters')
    assert 'extension module pkg._sub._ext' in hint
    assert 'check pkg"' in hint
    hint = _core._refusal_hint(
        'ImportError: module _regex does not support loading in '
        'subinterpreters')
    assert 'check PACKAGE" (the package you imported)' in hint
    assert _core._refusal_hint('ImportError: No module named x') is None
    assert _core._refusal_hint(42) is None


def test_no_hint_for_other_errors():
    interp = interpreters.create()
    try:
        with pytest.raises(interpreters.ExecutionFailed) as info:
            interp.exec('import no_such_module_for_hint')
    finally:
        interp.close()
    assert 'hint:' not in str(info.value)


def test_hint_in_pool_error():
    # The pool raises the task's ImportError; its cause, the
    # ExecutionFailed, shows the hint once in the traceback.
    name = single_phase_module()
    with InterpreterPoolExecutor(1) as pool:
        fut = pool.submit(__import__, name)
        with pytest.raises(ImportError) as info:
            fut.result(timeout=60)
    cause = info.value.__cause__
    assert isinstance(cause, interpreters.ExecutionFailed)
    assert str(cause).count('hint:') == 1
    assert 'is not built for isolated interpreters' in str(cause)
