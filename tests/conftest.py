"""Shared fixtures and helpers for the core-API test suite.

The package under test is imported as ``import subinterpreters as
interpreters`` (drop-in for 3.14's ``concurrent.interpreters``).  It is
imported lazily here, inside the fixtures, so that a missing or broken
build shows up as a clean per-module collection error (each test module
imports it at top level) instead of a conftest crash.  The import is never
skipped: the tests must fail when the module is missing.

Fixtures provided:

* ``_cleanup_interpreters`` (autouse): closes every interpreter created
  during the test, like CPython's ``TestBase.tearDown``.
* ``new_interp``: factory; ``create()`` plus a copy of this process's
  ``sys.path`` into the new interpreter, so that it can import ``_defs``
  (functions sent with ``call()`` are pickled by reference).
* ``exec_output``: ``exec_output(interp, source) -> str``: run ``source``
  with ``interp.exec`` and return what it printed to ``sys.stdout``.
* ``running``: context manager factory; ``with running(interp):`` keeps
  ``interp`` running ``__main__`` in a helper thread for the duration.
* ``run_python``: ``run_python(code, timeout=60, script=False)`` runs
  ``sys.executable`` in a subprocess and returns ``(rc, stdout, stderr)``.
* ``pipe``: ``(r, w)`` from ``os.pipe()``, closed after the test.
"""

import contextlib
import gc
import os
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# A suite started in the background of a non-interactive shell (make test &)
# inherits SIGINT ignored, and so would every child process: Python then
# installs no KeyboardInterrupt handler and the Ctrl-C tests' signals do
# nothing.  A handler here makes children start with the default again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if TESTS_DIR not in sys.path:
    # Make ``_defs`` importable from every test module (and, after
    # ``new_interp`` copies sys.path, from subinterpreters too).
    sys.path.insert(0, TESTS_DIR)


def _interpreters():
    import subinterpreters
    return subinterpreters


# ---------------------------------------------------------------------------
# cleanup


@pytest.fixture(autouse=True)
def _cleanup_interpreters():
    interpreters = _interpreters()
    before = {interp.id for interp in interpreters.list_all()}
    yield
    gc.collect()
    for interp in interpreters.list_all():
        if interp.id in before:
            continue
        try:
            interp.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------
# interpreter helpers


def make_interp(*, sync_path=True):
    """create() an interpreter whose sys.path equals ours (no names left
    behind in its __main__)."""
    interpreters = _interpreters()
    interp = interpreters.create()
    if sync_path:
        interp.exec(f"__import__('sys').path[:] = {list(sys.path)!r}")
    return interp


@pytest.fixture
def new_interp():
    return make_interp


def run_exec_output(interp, source):
    """Run *source* in *interp* (unchanged, so its filename is still
    ``<script>`` and line numbers are preserved) while the interpreter's
    sys.stdout is redirected to a temporary file; return the text.

    The redirection is done by two extra exec() calls which bind no names
    in the target's __main__.
    """
    fd, path = tempfile.mkstemp(prefix='subinterp-out-', suffix='.txt')
    os.close(fd)
    try:
        interp.exec(
            "__import__('sys')._xtest_saved_stdout = __import__('sys').stdout\n"
            f"__import__('sys').stdout = open({path!r}, 'w', encoding='utf-8')\n"
        )
        try:
            interp.exec(textwrap.dedent(source))
        finally:
            interp.exec(
                "__import__('sys').stdout.close()\n"
                "__import__('sys').stdout = __import__('sys')._xtest_saved_stdout\n"
                "del __import__('sys')._xtest_saved_stdout\n"
            )
        with open(path, encoding='utf-8') as f:
            return f.read()
    finally:
        os.unlink(path)


@pytest.fixture
def exec_output():
    return run_exec_output


@contextlib.contextmanager
def keep_running(interp, timeout=30):
    """Keep *interp* running ``__main__`` in a helper thread until the
    ``with`` block ends.  On entry the interpreter is guaranteed to be
    inside its exec() (the script signalled through a pipe)."""
    r_start, w_start = os.pipe()
    r_stop, w_stop = os.pipe()
    errors = []
    script = (
        f"__import__('os').write({w_start}, b'R')\n"
        f"__import__('os').read({r_stop}, 1)\n"
    )

    def target():
        try:
            interp.exec(script)
        except BaseException as exc:  # reported after the with block
            errors.append(exc)
            try:
                os.write(w_start, b'E')
            except OSError:
                pass

    t = threading.Thread(target=target)
    t.start()
    try:
        ready, _, _ = select.select([r_start], [], [], timeout)
        assert ready, 'the interpreter never started running'
        flag = os.read(r_start, 1)
        assert flag == b'R', f'exec() in the helper thread failed: {errors!r}'
        yield
    finally:
        os.write(w_stop, b'x')
        t.join(timeout)
        for fd in (r_start, w_start, r_stop, w_stop):
            os.close(fd)
    assert not t.is_alive(), 'the helper exec() did not finish'
    if errors:
        raise errors[0]


@pytest.fixture
def running():
    return keep_running


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------------------------
# subprocesses


def run_python_code(code, timeout=60, *, script=False, args=(), env=None,
                    cwd=None):
    """Run *code* with ``sys.executable`` in a fresh process.

    With ``script=True`` the code is written to a temporary ``.py`` file
    (so that ``__main__.__file__`` exists); otherwise it is passed with
    ``-c``.  Returns ``(returncode, stdout, stderr)`` as text.  A timeout
    fails the test (the child is killed).
    """
    code = textwrap.dedent(code)
    full_env = dict(os.environ)
    full_env.pop('PYTHONSTARTUP', None)
    full_env['PYTHONFAULTHANDLER'] = '1'
    full_env['PYTHONIOENCODING'] = 'utf-8'
    # The package warns once on CPython releases with a subinterpreter
    # crash it cannot fully prevent (test_shields.py checks that warning).
    full_env['PYTHONWARNINGS'] = ','.join(
        filter(None, [os.environ.get('PYTHONWARNINGS'),
                      'ignore:CPython 3.:RuntimeWarning']))
    if env:
        full_env.update(env)
    with tempfile.TemporaryDirectory(prefix='subinterp-test-') as tmpdir:
        if script:
            path = os.path.join(tmpdir, 'script.py')
            with open(path, 'w', encoding='utf-8') as f:
                f.write(code)
            cmd = [sys.executable, path, *args]
        else:
            cmd = [sys.executable, '-c', code, *args]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, encoding='utf-8',
                errors='replace', timeout=timeout, env=full_env,
                cwd=cwd or tmpdir, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            def text(data):
                if isinstance(data, bytes):
                    return data.decode('utf-8', 'replace')
                return data or ''
            pytest.fail(
                f'subprocess timed out after {timeout} s\n'
                f'--- stdout ---\n{text(exc.stdout)}\n'
                f'--- stderr ---\n{text(exc.stderr)}'
            )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def run_python():
    return run_python_code
