"""Each shield against a CPython bug is on exactly where it is needed.

For every shield (src/_subinterpreters/compat.h) a real snippet crashes
the process with the shields off (SUBINTERPRETERS_NO_SHIELDS=1) on the
releases the shield covers, and works with them on; on every other
release the shield is off and the snippet works without it.
"""

import os
import subprocess
import sys
import textwrap

import pytest

import subinterpreters as interpreters

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, '_realcode_child.py')
VERSION = sys.version_info[:3]

# bug -> (snippet of _realcode_defs that hits it, releases it affects)
SHIELDS = {
    # 3.13's _datetime static types; fixed in 3.14.0 (gh-136583).
    'gh-136421': ('datetime', (3, 13, 0), (3, 14, 0)),
    # 3.12's single-phase _datetime/_decimal initialised in a subinterpreter.
    'gh-119450': ('decimal', (3, 12, 0), (3, 13, 0)),
    # Argument Clinic keyword tuples; fixed in 3.12.4 (gh-119331).
    'gh-119213': ('gzip_zlib', (3, 12, 0), (3, 12, 4)),
}


def affected(first, end):
    return first <= VERSION < end


def run(mode, snippet, *, shields):
    env = dict(os.environ, PYTHONFAULTHANDLER='0')
    env.pop('SUBINTERPRETERS_NO_SHIELDS', None)
    if not shields:
        env['SUBINTERPRETERS_NO_SHIELDS'] = '1'
    return subprocess.run(
        [sys.executable, CHILD, mode, snippet], capture_output=True,
        text=True, timeout=180, env=env, stdin=subprocess.DEVNULL, cwd=HERE)


# Races, not reproducible on demand: on where the CPython fix is missing.
RACES = {
    # Type version tags given out without a lock; fixed in 3.14.
    'gh-116909': ((3, 12, 0), (3, 14, 0)),
    # tracemalloc started in two interpreters at once (hangs), or tracing
    # frames of an interpreter that ends (use-after-free); not fixed.
    'gh-134604': ((3, 12, 0), (99, 0, 0)),
}


# sys._current_frames() makes frame objects for other interpreters' frames
# from the caller's allocator; fixed in 3.13.18, 3.14.10 and 3.15.2 as
# measured (3.12 keeps it).
def current_frames_affected():
    return any(affected(first, end) for first, end in (
        ((3, 12, 0), (3, 13, 18)), ((3, 14, 0), (3, 14, 10)),
        ((3, 15, 0), (3, 15, 2))))


# Memory CPython keeps: arena.c releases it (test_leaks.py) from the first
# create() on; not on 3.12.0-3.12.3 (gh-119213).
MEMORY = {
    'gh-113055': ((3, 12, 4), (3, 14, 0)),
}


def test_shields_on_exactly_where_needed():
    interpreters.create().close()   # the memory shield starts here
    expected = [bug for bug, (_, first, end) in SHIELDS.items()
                if affected(first, end)]
    expected += [bug for bug, (first, end) in {**RACES, **MEMORY}.items()
                 if affected(first, end)]
    if current_frames_affected():
        expected.append('gh-158364')
    assert sorted(interpreters._core._shields()) == sorted(expected)


@pytest.mark.timeout(600)
@pytest.mark.parametrize('bug', sorted(SHIELDS))
def test_shield_is_needed_and_works(bug):
    snippet, first, end = SHIELDS[bug]
    proc = run('exec', snippet, shields=True)
    assert proc.returncode == 0, proc.stderr
    assert '"errors": []' in proc.stdout, proc.stdout
    if affected(first, end) and os.environ.get('PYTHONMALLOC') == 'malloc':
        # make asan: with the C allocator, memory one interpreter
        # allocated may be freed from another, so these bugs do not crash.
        pytest.skip('the crash needs pymalloc (PYTHONMALLOC=malloc here)')
    if affected(first, end):
        # The crash is a use-after-free: seen every time here, but give a
        # lucky heap three chances.
        outcomes = []
        for _ in range(3):
            off = run('exec', snippet, shields=False)
            outcomes.append(off.returncode)
            if off.returncode != 0:
                break
        else:
            pytest.fail(f'{bug}: {snippet} never crashed without its '
                        f'shield on {sys.version.split()[0]}: {outcomes}')
    elif not interpreters._core._shields():
        # Where no shield is on at all, nothing else hides a need for one.
        off = run('exec', snippet, shields=False)
        assert off.returncode == 0, off.stderr


def test_warning_once_where_a_crash_cannot_be_prevented(run_python):
    # gh-119213 can hit any extension module, not only those the shield
    # prepares: the first create() warns, once, on 3.12.0-3.12.3 only.
    rc, out, err = run_python("""
        import warnings
        import subinterpreters as interpreters
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            for _ in range(3):
                interpreters.create().close()
        for w in caught:
            print(w.category.__name__, w.message)
        """)
    assert rc == 0, err
    lines = out.splitlines()
    if affected((3, 12, 0), (3, 12, 4)):
        assert len(lines) == 1, out
        assert lines[0].startswith('RuntimeWarning'), out
        assert 'gh-119213' in lines[0] and '3.12.4' in lines[0], out
    else:
        assert lines == [], out


def test_warning_can_be_made_an_error(run_python):
    rc, out, err = run_python("""
        import warnings
        import subinterpreters as interpreters
        warnings.simplefilter('error', RuntimeWarning)
        try:
            interp = interpreters.create()
        except RuntimeWarning:
            print('raised')
        else:
            print('created')
        print(len(interpreters.list_all()))
        """)
    assert rc == 0, err
    if affected((3, 12, 0), (3, 12, 4)):
        assert out.split() == ['raised', '1']
    else:
        assert out.split() == ['created', '2']


@pytest.mark.skipif(VERSION >= (3, 13), reason='3.12 only')
def test_zoneinfo_falls_back_to_pure_python_on_312(new_interp):
    # 3.12's _zoneinfo needs _datetime's C API, which isolated
    # interpreters cannot load: zoneinfo must use its pure-Python module.
    interp = new_interp()
    assert interp.call(_zoneinfo_fallback) == (True, 'UTC')


def _zoneinfo_fallback():
    import sys
    import zoneinfo
    return 'zoneinfo._zoneinfo' in sys.modules, str(zoneinfo.ZoneInfo('UTC'))


def test_first_create_from_many_threads_is_safe(run_python):
    # The main interpreter is prepared once, before any subinterpreter
    # exists, however many threads create the first ones.
    rc, out, err = run_python(textwrap.dedent("""
        import threading
        import subinterpreters as interpreters
        barrier = threading.Barrier(4)
        def work():
            barrier.wait()
            interp = interpreters.create()
            interp.exec('import datetime, decimal, zlib; '
                        'zlib.compress(b"x", level=1)')
            interp.close()
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print('ok')
        """))
    assert rc == 0, err
    assert out == 'ok\n'


def test_finalizer_creating_an_interpreter_during_the_first_create(
        run_python):
    # The main interpreter is prepared under a lock while Python code
    # runs; a finalizer of that thread calling create() must not wait for
    # the lock it holds.
    rc, out, err = run_python("""
        import gc
        import subinterpreters as interpreters
        class C:
            def __del__(self):
                interpreters.create().close()
                print('finalizer created one', flush=True)
        c = C()
        c.self = c
        del c
        gc.set_threshold(1)
        interpreters.create().close()
        gc.collect()
        print('done')
        """, timeout=60)
    assert rc == 0, err
    assert out.splitlines()[-1] == 'done'
    assert 'finalizer created one' in out


def test_tracemalloc_is_refused_in_subinterpreters_only(run_python):
    # gh-134604: our interpreters cannot import tracemalloc (a clear
    # ImportError); the main interpreter traces every interpreter.
    rc, out, err = run_python(r'''
        import tracemalloc
        import subinterpreters as interpreters
        interp = interpreters.create()
        try:
            interp.exec('import tracemalloc')
        except interpreters.ExecutionFailed as exc:
            print(exc.excinfo.type.__name__, 'gh-134604' in str(exc))
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        interp.exec('data = [bytes(1000) for _ in range(1000)]')
        print('traced', tracemalloc.get_traced_memory()[0] - before > 900_000)
        interp.exec('del data')
        tracemalloc.stop()
        interp.close()
        ''')
    assert rc == 0, f'rc={rc}\n{out}\n{err}'
    assert out.split() == ['ImportError', 'True', 'traced', 'True'], out


# A profiler in the main interpreter (Dask's samples every 10 ms) while
# an interpreter of ours runs deep calls.
SAMPLER = """
import sys, threading, time
import subinterpreters as interpreters
stop = False
def sample():
    while not stop:
        sys._current_frames()
        time.sleep(0.001)
def work(n):
    def rec(k):
        return 0 if k == 0 else 1 + rec(k - 1)
    return sum(rec(50) for _ in range(n))
interp = interpreters.create()
sampler = threading.Thread(target=sample)
sampler.start()
try:
    for _ in range(40):
        interp.call(work, 1000)
finally:
    stop = True
    sampler.join()
inside = interp.call(eval, 'list(__import__("sys")._current_frames())')
interp.close()
print('survived', inside == [threading.get_ident()])
"""


@pytest.mark.timeout(300)
def test_current_frames_sees_this_interpreter_only(run_python):
    # gh-158364: with the shield (or the fix) a sampler in main is safe,
    # and an interpreter sees its own threads only.
    rc, out, err = run_python(SAMPLER, timeout=240)
    assert (rc, out) == (0, 'survived True\n'), err
    if not current_frames_affected():
        return
    if os.environ.get('PYTHONMALLOC') == 'malloc':
        pytest.skip('the crash needs pymalloc (PYTHONMALLOC=malloc here)')
    outcomes = []
    for _ in range(3):
        rc, out, err = run_python(
            SAMPLER, timeout=240, env={'SUBINTERPRETERS_NO_SHIELDS': '1'})
        outcomes.append(rc)
        if rc != 0:
            break
    else:
        pytest.fail(f'gh-158364: the sampler never crashed without its '
                    f'shield on {sys.version.split()[0]}: {outcomes}')
