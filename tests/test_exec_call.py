"""prepare_main(), exec(), ExecutionFailed, call() and call_in_thread().

Reference: CPython 3.14 concurrent.interpreters (exec, call, prepare_main).
"""

import os
import sys
import threading
import types

import pytest

import subinterpreters as interpreters
from subinterpreters import (
    ExecutionFailed, InterpreterError, InterpreterNotFoundError,
    NotShareableError,
)

import _defs
from _helpers import read_with_timeout


def assert_not_bound(interp, *names):
    """Each name is undefined in the interpreter's __main__."""
    for name in names:
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.exec(f'{name}')
        assert excinfo.value.excinfo.type.__name__ == 'NameError', name


# ---------------------------------------------------------------------------
# prepare_main()


class TestPrepareMain:

    def test_no_data(self):
        interp = interpreters.create()
        with pytest.raises(ValueError):
            interp.prepare_main()

    def test_empty_dict(self):
        interp = interpreters.create()
        with pytest.raises(ValueError):
            interp.prepare_main({})
        with pytest.raises(ValueError):
            interp.prepare_main(())

    def test_dict(self, exec_output):
        interp = interpreters.create()
        assert interp.prepare_main({'spam': 42, 'eggs': 'ham'}) is None
        assert exec_output(interp, 'print(spam, eggs)') == '42 ham\n'

    def test_tuple_of_pairs(self, exec_output):
        interp = interpreters.create()
        interp.prepare_main((('spam', 42), ('eggs', 'ham')))
        assert exec_output(interp, 'print(spam, eggs)') == '42 ham\n'

    def test_iterable_of_pairs(self, exec_output):
        interp = interpreters.create()
        interp.prepare_main(iter([('spam', 42), ('eggs', 'ham')]))
        assert exec_output(interp, 'print(spam, eggs)') == '42 ham\n'

    def test_kwargs(self, exec_output):
        interp = interpreters.create()
        interp.prepare_main(spam=42, eggs='ham')
        assert exec_output(interp, 'print(spam, eggs)') == '42 ham\n'

    def test_dict_and_kwargs(self, exec_output):
        interp = interpreters.create()
        interp.prepare_main({'spam': 42, 'eggs': 'ham'}, foo='bar')
        assert exec_output(interp, 'print(spam, eggs, foo)') == '42 ham bar\n'

    def test_kwargs_override_dict(self, exec_output):
        # dict(ns, **kwargs): the keyword wins.
        interp = interpreters.create()
        interp.prepare_main({'spam': 1}, spam=2)
        assert exec_output(interp, 'print(spam)') == '2\n'

    def test_ns_named_kwarg(self, exec_output):
        # `ns` is positional-only, so it can be used as a keyword name.
        interp = interpreters.create()
        interp.prepare_main(ns=5)
        assert exec_output(interp, 'print(ns)') == '5\n'

    def test_rebinding_overwrites(self, exec_output):
        interp = interpreters.create()
        interp.prepare_main(spam=1)
        interp.prepare_main(spam='two')
        assert exec_output(interp, 'print(repr(spam))') == "'two'\n"

    def test_values_visible_to_call(self):
        interp = interpreters.create()
        interp.prepare_main(spam=42)
        assert interp.call(eval, 'spam') == 42

    def test_does_not_run_code(self):
        interp = interpreters.create()
        interp.prepare_main(spam=1)
        assert interp.is_running() is False

    @pytest.mark.parametrize('value', [
        {'spam': 'eggs'}, [1, 2], {1, 2}, bytearray(b'x'), object(),
    ], ids=lambda v: type(v).__name__)
    def test_not_shareable_binds_nothing(self, value):
        interp = interpreters.create()
        with pytest.raises(NotShareableError):
            interp.prepare_main({'foo': 1, 'spam': value, 'zzz': 2})
        assert_not_bound(interp, 'foo', 'spam', 'zzz')

    def test_not_shareable_is_type_error(self):
        interp = interpreters.create()
        with pytest.raises(TypeError):
            interp.prepare_main(spam={'spam': 'eggs', 'foo': 'bar'})
        assert_not_bound(interp, 'spam')

    def test_not_shareable_message(self):
        interp = interpreters.create()
        with pytest.raises(NotShareableError,
                           match='cross-interpreter data'):
            interp.prepare_main(spam=[1, 2, 3])

    def test_no_pickle_fallback(self):
        # Picklable values are still refused: no pickle fallback here.
        interp = interpreters.create()
        with pytest.raises(NotShareableError):
            interp.prepare_main(spam=types.SimpleNamespace(x=1))
        with pytest.raises(NotShareableError):
            interp.prepare_main(spam=_defs.Spam(1))
        assert_not_bound(interp, 'spam')

    def test_interpreter_object_not_shareable(self):
        interp = interpreters.create()
        with pytest.raises(NotShareableError):
            interp.prepare_main(other=interpreters.get_main())
        assert_not_bound(interp, 'other')

    def test_tuple_containing_list_binds_nothing(self):
        # Our behaviour (also 3.14's): tuple items must be natively
        # shareable too.
        interp = interpreters.create()
        with pytest.raises(NotShareableError):
            interp.prepare_main(ok=1, spam=(1, [2, 3]))
        assert_not_bound(interp, 'ok', 'spam')

    def test_nested_tuple_containing_dict_binds_nothing(self):
        interp = interpreters.create()
        with pytest.raises(NotShareableError):
            interp.prepare_main(spam=(1, (2, (3, {}))))
        assert_not_bound(interp, 'spam')

    @pytest.mark.timeout(60)
    def test_while_running(self, running):
        interp = interpreters.create()
        interp.prepare_main({'spam': True})
        with running(interp):
            with pytest.raises(InterpreterError, match='running'):
                interp.prepare_main({'spam': False})
        interp.exec('assert spam is True')

    def test_key_with_nul(self):
        interp = interpreters.create()
        with pytest.raises(ValueError):
            interp.prepare_main({'spam\0eggs': 1})
        assert_not_bound(interp, 'spam')

    def test_non_str_key(self):
        interp = interpreters.create()
        with pytest.raises(TypeError):
            interp.prepare_main({1: 'spam'})

    def test_after_close(self):
        interp = interpreters.create()
        interp.close()
        with pytest.raises(InterpreterNotFoundError):
            interp.prepare_main(spam=1)

    def test_big_int(self, exec_output):
        # Our deliberate difference from 3.14: ints of any size are native.
        interp = interpreters.create()
        interp.prepare_main(big=2**1000, neg=-(2**1000))
        assert exec_output(interp, 'print(big == 2**1000, neg == -(2**1000))'
                           ) == 'True True\n'


# ---------------------------------------------------------------------------
# exec()

# Script functions for exec().  Their globals are looked up in the TARGET's
# __main__ (prepare_main provides `w_fd`), their own globals are ignored.

def _script_writes():
    import os
    os.write(w_fd, b'ran')  # noqa: F821  (from the target's __main__)


def _script_raises():
    raise RuntimeError('from a function')


def _script_sets_global():
    global from_func
    from_func = 'set'


def _script_with_args(a):
    pass


def _script_with_kwonly(*, a):
    pass


def _script_with_varargs(*args):
    pass


def _script_returns_value():
    return 42


def _make_closure_script():
    value = 1

    def closure():
        print(value)
    return closure


class TestExec:

    def test_stdout_goes_to_process_fd(self, capfd):
        interp = interpreters.create()
        interp.exec('import sys; print("it worked!", end=""); sys.stdout.flush()')
        out, err = capfd.readouterr()
        assert out == 'it worked!'
        assert err == ''

    def test_stderr_goes_to_process_fd(self, capfd):
        interp = interpreters.create()
        interp.exec('import sys; print("to stderr", file=sys.stderr); '
                    'sys.stderr.flush()')
        out, err = capfd.readouterr()
        assert err == 'to stderr\n'
        assert out == ''

    def test_stdout_flushed_at_close(self, capfd):
        interp = interpreters.create()
        interp.exec('print("buffered", end="")')
        interp.close()
        out, _ = capfd.readouterr()
        assert out == 'buffered'

    def test_returns_none(self):
        interp = interpreters.create()
        assert interp.exec('x = 1') is None

    def test_runs_in___main__(self, exec_output):
        interp = interpreters.create()
        out = exec_output(interp, """
            import __main__
            x = 5
            print(__name__, __main__.x, __main__.__dict__ is globals())
            """)
        assert out == '__main__ 5 True\n'

    def test_failure(self):
        interp = interpreters.create()
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.exec('raise Exception')
        assert excinfo.value.excinfo.type.__name__ == 'Exception'
        assert interp.is_running() is False

    def test_usable_after_failure(self):
        interp = interpreters.create()
        interp.exec('x = 1')
        with pytest.raises(ExecutionFailed):
            interp.exec('x = 2; raise Exception')
        # Statements before the exception took effect.
        assert interp.call(eval, 'x') == 2

    def test_system_exit_does_not_exit(self):
        interp = interpreters.create()
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.exec('raise SystemExit(3)')
        assert excinfo.value.excinfo.type.__name__ == 'SystemExit'
        interp.exec('pass')

    @pytest.mark.parametrize('bad', [10, None, 1.5, object(), ['x = 1']],
                             ids=repr)
    def test_bad_script_type(self, bad):
        interp = interpreters.create()
        with pytest.raises(TypeError) as excinfo:
            interp.exec(bad)
        assert not isinstance(excinfo.value, ExecutionFailed)

    def test_syntax_error_raised_directly(self):
        interp = interpreters.create()
        with pytest.raises(SyntaxError):
            interp.exec('1 +')
        assert interp.is_running() is False
        interp.exec('pass')

    def test_source_with_nul_is_syntax_error(self):
        interp = interpreters.create()
        with pytest.raises(SyntaxError):
            interp.exec('x = 1\0y = 2')
        # Nothing ran: the source was not silently cut at the NUL.
        assert_not_bound(interp, 'x', 'y')

    def test_function_script(self, pipe):
        r, w = pipe
        interp = interpreters.create()
        interp.prepare_main(w_fd=w)
        interp.exec(_script_writes)
        assert read_with_timeout(r, 3) == b'ran'

    def test_function_script_runs_in___main__(self):
        interp = interpreters.create()
        interp.exec(_script_sets_global)
        assert interp.call(eval, 'from_func') == 'set'
        # The function itself is not bound in __main__.
        assert_not_bound(interp, '_script_sets_global')

    def test_code_object_script(self):
        interp = interpreters.create()
        code = compile('spam = 6 * 7', '<my-code>', 'exec')
        interp.exec(code)
        assert interp.call(eval, 'spam') == 42

    def test_function_traceback_shows_file_and_line(self):
        interp = interpreters.create()
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.exec(_script_raises)
        info = excinfo.value.excinfo
        assert info.type.__name__ == 'RuntimeError'
        assert info.msg == 'from a function'
        code = _script_raises.__code__
        lineno = code.co_firstlineno + 1
        assert f'File "{code.co_filename}", line {lineno}, in _script_raises' \
            in info.errdisplay
        assert "raise RuntimeError('from a function')" in info.errdisplay

    @pytest.mark.parametrize('func', [
        _script_with_args, _script_with_kwonly, _script_with_varargs,
    ], ids=lambda f: f.__name__)
    def test_function_with_args(self, func):
        interp = interpreters.create()
        with pytest.raises(ValueError, match='args'):
            interp.exec(func)

    def test_function_returning_value(self):
        interp = interpreters.create()
        with pytest.raises(ValueError, match='not a script'):
            interp.exec(_script_returns_value)

    def test_closure(self):
        interp = interpreters.create()
        with pytest.raises(ValueError, match='closure'):
            interp.exec(_make_closure_script())

    def test_in_thread(self, pipe):
        r, w = pipe
        interp = interpreters.create()
        errors = []

        def task():
            try:
                interp.exec(f'import os; os.write({w}, b"it worked!")')
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=task)
        t.start()
        t.join()
        assert errors == []
        assert read_with_timeout(r, 100) == b'it worked!'

    @pytest.mark.skipif(not hasattr(os, 'fork'), reason='requires os.fork')
    def test_fork_refused(self, exec_output):
        interp = interpreters.create()
        out = exec_output(interp, """
            import os
            try:
                pid = os.fork()
            except RuntimeError:
                print('RuntimeError')
            else:
                if pid == 0:
                    os._exit(0)
                os.waitpid(pid, 0)
                print('forked')
            """)
        assert out == 'RuntimeError\n'

    def test_daemon_threads_refused(self, exec_output):
        interp = interpreters.create()
        out = exec_output(interp, """
            import threading
            try:
                t = threading.Thread(target=print, daemon=True)
                t.start()
            except RuntimeError:
                print('RuntimeError')
            else:
                t.join()
                print('started')
            """)
        assert out == 'RuntimeError\n'

    def test_non_daemon_threads_allowed(self, exec_output):
        interp = interpreters.create()
        out = exec_output(interp, """
            import threading
            res = []
            t = threading.Thread(target=res.append, args=(42,))
            t.start()
            t.join()
            print(res)
            """)
        assert out == '[42]\n'

    def test_background_thread_keeps_running(self, pipe):
        r, w = pipe
        r2, w2 = os.pipe()
        try:
            interp = interpreters.create()
            interp.exec(f"""if True:
                import os, threading
                def task():
                    os.read({r2}, 1)
                    os.write({w}, b'F')
                t = threading.Thread(target=task)
                t.start()
                os.write({w}, b'R')
                """)
            # A second exec() while the thread is still alive works.
            try:
                interp.exec(f'os.write({w}, b"R")')
            finally:
                os.write(w2, b'D')   # never leave the thread blocked
            interp.exec('t.join()')
            data = b''
            while len(data) < 3:
                data += read_with_timeout(r, 3 - len(data))
            assert data == b'RRF'
        finally:
            os.close(r2)
            os.close(w2)

    def test_list_comprehension(self, exec_output):
        interp = interpreters.create()
        out = exec_output(interp, """
            comp = [str(i) for i in range(10)]
            print(''.join(comp))
            print({k: v for k, v in zip('ab', 'cd')}, sum(x for x in [1, 2]))
            """)
        assert out == "0123456789\n{'a': 'c', 'b': 'd'} 3\n"

    def test_globals_persist(self):
        interp = interpreters.create()
        interp.exec('spam = 42')
        interp.exec('eggs = spam + 1')
        assert interp.call(eval, 'spam') == 42
        assert interp.call(eval, 'eggs') == 43

    def test_isolated_from_caller(self):
        interp = interpreters.create()
        interp.exec('import sys; sys._xtest_marker = 1; spam = 1')
        assert not hasattr(sys, '_xtest_marker')
        import __main__
        assert not hasattr(__main__, 'spam')

    @pytest.mark.timeout(60)
    def test_already_running(self, running):
        interp = interpreters.create()
        with running(interp):
            with pytest.raises(InterpreterError, match='already running'):
                interp.exec('print("spam")')
        interp.exec('pass')

    def test_reentrant_from_inside(self, exec_output):
        interp = interpreters.create()
        out = exec_output(interp, """
            import subinterpreters as I
            try:
                I.get_current().exec('pass')
            except I.InterpreterError as exc:
                print(type(exc).__name__, exc)
            """)
        assert out == 'InterpreterError interpreter already running\n'

    def test_uncaught_in_script_display(self, run_python):
        rc, out, err = run_python("""
            import subinterpreters as interpreters

            def script():
                raise RuntimeError('uh-oh!')

            interp = interpreters.create()
            interp.exec(script)
            """, script=True)
        assert rc == 1, err
        assert out == ''
        assert 'ExecutionFailed: RuntimeError: uh-oh!' in err
        assert '\n\nUncaught in the interpreter:\n\n' in err
        assert 'script.py", line 5, in script' in err
        assert err.rstrip().endswith('RuntimeError: uh-oh!')
        assert 'Fatal Python error' not in err


# ---------------------------------------------------------------------------
# ExecutionFailed


class TestExecutionFailed:

    def _fail(self, source):
        interp = interpreters.create()
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.exec(source)
        return excinfo.value

    def test_hierarchy(self):
        exc = self._fail('raise RuntimeError("uh-oh!")')
        assert isinstance(exc, ExecutionFailed)
        assert isinstance(exc, InterpreterError)
        assert isinstance(exc, Exception)
        assert not isinstance(exc, RuntimeError)

    def test_builtin_exception(self):
        exc = self._fail('raise RuntimeError("uh-oh!")')
        info = exc.excinfo
        assert info.type.__name__ == 'RuntimeError'
        assert info.type.__qualname__ == 'RuntimeError'
        assert info.type.__module__ == 'builtins'
        assert info.type == types.SimpleNamespace(
            __name__='RuntimeError', __qualname__='RuntimeError',
            __module__='builtins')
        assert info.msg == 'uh-oh!'
        assert info.formatted == 'RuntimeError: uh-oh!'
        assert exc.args == ('RuntimeError: uh-oh!',)

    def test_str(self):
        exc = self._fail('x = 1\nraise RuntimeError("uh-oh!")')
        info = exc.excinfo
        assert str(exc) == (info.formatted
                            + '\n\nUncaught in the interpreter:\n\n'
                            + info.errdisplay)

    def test_errdisplay(self):
        exc = self._fail('x = 1\nraise RuntimeError("uh-oh!")')
        display = exc.excinfo.errdisplay
        assert display.startswith('Traceback (most recent call last):\n')
        assert 'File "<script>", line 2' in display
        assert display.endswith('RuntimeError: uh-oh!')  # no trailing \n

    def test_no_remote_exception_object(self):
        exc = self._fail('raise RuntimeError("uh-oh!")')
        assert not isinstance(exc.excinfo.type, type)
        assert exc.__cause__ is None

    def test_module_prefix(self):
        exc = self._fail(
            'class MyErr(Exception): pass\n'
            'MyErr.__module__ = "spam"\n'
            'raise MyErr("x")\n')
        info = exc.excinfo
        assert info.type.__name__ == 'MyErr'
        assert info.type.__qualname__ == 'MyErr'
        assert info.type.__module__ == 'spam'
        assert info.msg == 'x'
        assert info.formatted == 'spam.MyErr: x'
        assert str(exc).startswith('spam.MyErr: x\n\nUncaught in the interpreter:')

    def test_no_prefix_for___main__(self):
        exc = self._fail(
            'class MyErr(Exception): pass\n'
            'raise MyErr("x")\n')
        assert exc.excinfo.type.__module__ == '__main__'
        assert exc.excinfo.formatted == 'MyErr: x'

    def test_qualname(self):
        exc = self._fail(
            'class Outer:\n'
            '    class Inner(Exception): pass\n'
            'raise Outer.Inner("boom")\n')
        info = exc.excinfo
        assert info.type.__name__ == 'Inner'
        assert info.type.__qualname__ == 'Outer.Inner'
        assert info.formatted == 'Outer.Inner: boom'

    def test_stdlib_module_exception(self):
        exc = self._fail('import json\njson.loads("{")')
        info = exc.excinfo
        assert info.type.__name__ == 'JSONDecodeError'
        assert info.type.__module__ == 'json.decoder'
        assert info.formatted.startswith('json.decoder.JSONDecodeError: ')
        assert info.formatted == f'json.decoder.JSONDecodeError: {info.msg}'

    def test_empty_message(self):
        exc = self._fail('raise ValueError')
        info = exc.excinfo
        assert info.type.__name__ == 'ValueError'
        assert info.msg == ''
        assert str(exc)  # does not fail
        assert 'ValueError' in str(exc)

    def test_name_error(self):
        exc = self._fail('undefined_name')
        assert exc.excinfo.type.__name__ == 'NameError'
        assert "undefined_name" in exc.excinfo.msg


# ---------------------------------------------------------------------------
# call()

# Local definitions used below are either stateless (transferred by
# marshal) or live in _defs (pickled by reference).


class TestCall:

    def test_noop(self, new_interp):
        interp = new_interp()
        assert interp.call(_defs.spam_minimal) is None

    def test_returns_shareable(self, new_interp):
        interp = new_interp()
        assert interp.call(_defs.spam_returns_shareable) == (1, None)

    def test_returns_list(self, new_interp):
        interp = new_interp()
        res = interp.call(_defs.spam_returns_list)
        assert res == [1, 2, 3]
        assert type(res) is list

    def test_returns_stateless_function(self, new_interp):
        interp = new_interp()
        func = interp.call(_defs.spam_returns_stateless_func)
        assert callable(func)
        assert func(5) == 15

    def test_returns_closure(self, new_interp):
        interp = new_interp()
        with pytest.raises(NotShareableError):
            interp.call(_defs.spam_returns_closure)

    def test_returns_unpicklable(self):
        def make_lock():
            import threading
            return threading.Lock()
        interp = interpreters.create()
        with pytest.raises(NotShareableError):
            interp.call(make_lock)

    def test_full_args(self, new_interp):
        interp = new_interp()
        res = interp.call(_defs.spam_full_args, 1, 2, 3, 4, '?',
                          e=5, f=6, g=7, h=8)
        assert res == (1, 2, 3, 4, 5, 6, ('?',), {'g': 7, 'h': 8})

    def test_full_args_errors_are_execution_failed(self, new_interp):
        # A bad call signature fails in the target.
        interp = new_interp()
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.call(_defs.spam_full_args, 1)
        assert excinfo.value.excinfo.type.__name__ == 'TypeError'

    def test_defaults(self, new_interp):
        # Functions with defaults are not stateless: pickled by reference.
        interp = new_interp()
        res = interp.call(_defs.spam_full_args_with_defaults, g=8, h=9)
        assert res == (-1, -2, -3, -4, -5, -6, (), {'g': 8, 'h': 9})

    def test_not_callable(self):
        interp = interpreters.create()
        with pytest.raises(TypeError, match='expected a callable'):
            interp.call(42)

    def test_builtin_function(self):
        interp = interpreters.create()
        assert interp.call(len, 'spam') == 4
        assert interp.call(divmod, 7, 2) == (3, 1)
        assert interp.call(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]

    def test_local_stateless_function(self):
        def double(x):
            return x * 2
        interp = interpreters.create()
        assert interp.call(double, 21) == 42
        assert interp.call(lambda: 'lambda') == 'lambda'

    def test_local_function_using_globals_not_shareable(self):
        def uses_global():
            return os.getpid()   # `os` is a module global here
        interp = interpreters.create()
        with pytest.raises(NotShareableError):
            interp.call(uses_global)

    def test_closure_not_shareable(self):
        value = 42

        def closure():
            return value
        interp = interpreters.create()
        with pytest.raises(NotShareableError):
            interp.call(closure)

    def test_closure_from_module_function_not_shareable(self, new_interp):
        interp = new_interp()
        with pytest.raises(NotShareableError):
            interp.call(_defs.make_closure(42))
        # A function that returns a closure fails on the way back.
        with pytest.raises(NotShareableError):
            interp.call(_defs.make_closure, 42)

    def test_pickled_function_runs_in_its_module(self, new_interp):
        interp = new_interp()
        assert interp.call(_defs.get_module_name) == '_defs'
        # The target has its own import of _defs.
        assert interp.call(_defs.bump_counter) == 1
        assert interp.call(_defs.bump_counter) == 2
        assert _defs.COUNTER == 0

    def test_runs_in_target(self, new_interp):
        interp = new_interp()
        assert interp.call(_defs.get_interp_id) == interp.id

    @pytest.mark.parametrize('callable_, args, kwargs, expected', [
        (_defs.Spam.noop, (), {}, None),
        (_defs.Spam.from_values, (), {}, _defs.Spam(())),
        (_defs.Spam.from_values, (1, 2, 3), {}, _defs.Spam((1, 2, 3))),
        (_defs.Spam, ('???',), {}, _defs.Spam('???')),
        (_defs.Spam(101), (), {}, (101, (), {})),
        (_defs.Spam(10101).run, (1,), {'x': 2}, (10101, (1,), {'x': 2})),
    ], ids=['staticmethod', 'classmethod', 'classmethod-args', 'class',
            'callable-instance', 'bound-method'])
    def test_other_callables(self, new_interp, callable_, args, kwargs,
                             expected):
        interp = new_interp()
        assert interp.call(callable_, *args, **kwargs) == expected

    def test_mutated_argument_not_reflected(self, new_interp):
        interp = new_interp()
        ns = {}
        res, resns = interp.call(_defs.exec_in_ns, 'a = 7\nb = 2\nc = a ** b',
                                 ns)
        assert res is None
        assert resns == {'a': 7, 'b': 2, 'c': 49}
        assert ns == {}
        lst = [1, 2, 3]
        res = interp.call(_defs.append_to, lst, 4)
        assert res == [1, 2, 3, 4]
        assert lst == [1, 2, 3]
        assert res is not lst

    def test_raises(self, new_interp):
        interp = new_interp()
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.call(_defs.spam_raises)
        info = excinfo.value.excinfo
        assert info.type.__name__ == 'Exception'
        assert info.msg == 'spam!'
        assert info.formatted == 'Exception: spam!'
        assert 'in spam_raises' in info.errdisplay
        assert interp.is_running() is False

    def test_raises_passed_exception(self, new_interp):
        interp = new_interp()
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.call(_defs.raise_exc, ValueError('spam'))
        assert excinfo.value.excinfo.type.__name__ == 'ValueError'
        assert excinfo.value.excinfo.msg == 'spam'
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.call(_defs.raise_exc, _defs.SpamError('eggs'))
        info = excinfo.value.excinfo
        assert info.type.__name__ == 'SpamError'
        assert info.type.__module__ == '_defs'
        assert info.formatted == '_defs.SpamError: eggs'

    def test_stateless_function_uses_target___main__(self):
        def get_global(name):
            return globals().get(name)

        def set_global(name, value):
            globals()[name] = value

        interp = interpreters.create()
        assert interp.call(get_global, '__name__') == '__main__'
        assert interp.call(get_global, 'spam') is None
        interp.exec('spam = True')
        assert interp.call(get_global, 'spam') is True
        interp.call(set_global, 'spam', 42)
        assert interp.call(get_global, 'spam') == 42
        interp.exec('assert spam == 42, repr(spam)')

    def test_stateless_module_function_uses_target___main__(self):
        interp = interpreters.create()
        # No sys.path sync needed: stateless functions are not imported.
        assert interp.call(_defs.get_global, '__name__') == '__main__'
        interp.call(_defs.set_global, 'eggs', 'ham')
        interp.exec('assert eggs == "ham"')

    def test_dir_of_fresh_interpreter(self):
        from _frozen_importlib import BuiltinImporter
        interp = interpreters.create()
        names = interp.call(dir)
        expected = ['__builtins__', '__doc__', '__loader__', '__name__',
                    '__package__', '__spec__']
        if sys.version_info < (3, 14) and '__annotations__' in names:
            # The host's fresh __main__ (3.12/3.13) also has an empty
            # __annotations__; 3.14's does not (PEP 649).
            expected = ['__annotations__'] + expected
            assert interp.call(eval, '__annotations__') == {}
        assert names == expected
        values = {name: interp.call(eval, name)
                  for name in names
                  if name not in ('__builtins__', '__annotations__')}
        assert values == {
            '__name__': '__main__',
            '__doc__': None,
            '__spec__': None,
            '__package__': None,
            '__loader__': BuiltinImporter,
        }
        interp.call(exec, f'assert dir() == {names!r}, dir()')
        interp.prepare_main(spam=42)
        assert interp.call(dir) == expected + ['spam']

    def test_eval_until_prepared(self):
        interp = interpreters.create()
        with pytest.raises(ExecutionFailed) as excinfo:
            interp.call(eval, 'spam')
        assert excinfo.value.excinfo.type.__name__ == 'NameError'
        interp.prepare_main(spam=42)
        assert interp.call(eval, 'spam') == 42

    def test_builtins_needing_a_frame(self):
        interp = interpreters.create()
        assert interp.call(eval, '[1, 2, 3]') == [1, 2, 3]
        assert interp.call(eval, 'sum([1, 2, 3])') == 6
        assert interp.call(exec, 'x = 5') is None
        assert interp.call(eval, 'x') == 5
        interp.exec('assert x == 5')

    @pytest.mark.parametrize('func', [globals, locals, vars],
                             ids=lambda f: f.__name__)
    def test_main_namespace_not_shareable(self, func):
        interp = interpreters.create()
        with pytest.raises(NotShareableError):
            interp.call(func)

    def test_call_does_not_leak_names(self):
        interp = interpreters.create()
        before = interp.call(dir)
        interp.call(len, 'abc')
        interp.call(divmod, 1, 2)
        interp.call(_defs.spam_returns_arg, [1])
        assert interp.call(dir) == before

    @pytest.mark.timeout(60)
    def test_already_running(self, running):
        interp = interpreters.create()
        with running(interp):
            with pytest.raises(InterpreterError, match='already running'):
                interp.call(len, 'x')
        assert interp.call(len, 'x') == 1

    def test_after_close(self):
        interp = interpreters.create()
        interp.close()
        with pytest.raises(InterpreterNotFoundError):
            interp.call(len, 'x')

    def test_unpickle_fails_in_target_args(self, new_interp):
        interp = new_interp()
        with pytest.raises(NotShareableError,
                           match='args not shareable') as excinfo:
            interp.call(_defs.spam_returns_arg, _defs.UnpicklableInTarget())
        assert excinfo.value.__cause__ is not None
        assert interp.is_running() is False

    def test_unpickle_fails_in_target_kwargs(self, new_interp):
        interp = new_interp()
        with pytest.raises(NotShareableError, match='kwargs not shareable'):
            interp.call(_defs.spam_full_args, 1, 2, 3, 4,
                        e=5, f=_defs.UnpicklableInTarget())

    def test_unpickle_fails_in_target_func(self, new_interp):
        interp = new_interp()
        with pytest.raises(NotShareableError, match='func not shareable'):
            interp.call(_defs.CallableUnpicklableInTarget())

    def test_nested_call_from_subinterpreter(self, exec_output):
        interp = interpreters.create()
        out = exec_output(interp, """
            import subinterpreters as I
            inner = I.create()
            def triple(x):
                return x * 3
            print(inner.call(triple, 14))
            print(inner.call(eval, '__name__'))
            inner.close()
            """)
        assert out == '42\n__main__\n'


# ---------------------------------------------------------------------------
# functions from the caller's __main__ script (need a real script file)


class TestCallMainScriptFunctions:

    @pytest.mark.timeout(90)
    def test_fake_main(self, run_python):
        rc, out, err = run_python("""
            import subinterpreters as interpreters

            def spam():
                # Uses a global, so it is pickled, not marshalled.
                return __name__

            if __name__ == '__main__':
                interp = interpreters.create()
                print(interp.call(spam))
                # The target's real __main__ did not gain `spam`.
                print(interp.call(eval, "'spam' in vars()"))
                print(interp.call(eval, "__name__"))
                interp.exec("import __main__ as _m\\n"
                            "assert not hasattr(_m, 'spam')\\n"
                            "assert _m.__dict__ is globals()")
            """, script=True)
        assert rc == 0, err
        assert out.splitlines() == ['<fake __main__>', 'False', '__main__']

    @pytest.mark.timeout(90)
    def test_globals_persist_in_target(self, run_python):
        rc, out, err = run_python("""
            count = 0

            def inc(x=1):
                global count
                count += x

            def get_count():
                return count

            if __name__ == '__main__':
                import subinterpreters as interpreters
                before = count
                interp = interpreters.create()
                counts = [interp.call(get_count)]
                interp.call(inc)
                counts.append(interp.call(get_count))
                interp.call(inc, 3)
                counts.append(interp.call(get_count))
                modified = {name: interp.call(eval, f'{name!r} in vars()')
                            for name in ('count', 'inc', 'get_count')}
                print([before, counts, count, modified])
            """, script=True)
        assert rc == 0, err
        before, counts, after, modified = eval(out)
        assert before == 0
        assert counts == [0, 1, 4]
        assert after == 0
        assert modified == {'count': False, 'inc': False,
                            'get_count': False}

    @pytest.mark.timeout(90)
    def test_main_block_not_rerun(self, run_python):
        rc, out, err = run_python("""
            import subinterpreters as interpreters
            print('top level', flush=True)

            def spam():
                return __name__

            if __name__ == '__main__':
                print('main block', flush=True)
                interp = interpreters.create()
                interp.call(spam)
                interp.call(spam)
                print('done', flush=True)
            """, script=True)
        assert rc == 0, err
        # The hidden re-run executes the top level once in the target
        # (under '<fake __main__>'), never the __main__ block.
        lines = out.splitlines()
        assert lines.count('main block') == 1
        assert lines[0] == 'top level'
        assert lines[-1] == 'done'
        assert lines.count('top level') == 2

    @pytest.mark.timeout(90)
    def test_dynamically_added_function(self, run_python):
        rc, out, err = run_python("""
            import subinterpreters as interpreters

            def spam():
                return __name__

            if __name__ == '__main__':
                exec("def dynamic():\\n    return __name__\\n", globals())
                interp = interpreters.create()
                print(interp.call(spam))
                try:
                    interp.call(dynamic)
                except interpreters.NotShareableError:
                    print('NotShareableError')
            """, script=True)
        assert rc == 0, err
        assert out.splitlines() == ['<fake __main__>', 'NotShareableError']

    @pytest.mark.timeout(90)
    def test_dash_c_only_stateless(self, run_python):
        rc, out, err = run_python("""
            import subinterpreters as interpreters
            G = 1
            def uses_global():
                return G
            def stateless(x):
                return x + 1
            interp = interpreters.create()
            print(interp.call(stateless, 41))
            try:
                interp.call(uses_global)
            except interpreters.NotShareableError:
                print('NotShareableError')
            """)
        assert rc == 0, err
        assert out.splitlines() == ['42', 'NotShareableError']


# ---------------------------------------------------------------------------
# call_in_thread()


class TestCallInThread:

    def test_returns_started_thread(self, new_interp, pipe):
        r, w = pipe
        interp = new_interp()
        t = interp.call_in_thread(_defs.write_to_fd, w, b'x')
        assert isinstance(t, threading.Thread)
        assert t.ident is not None          # started
        assert t.daemon is False
        t.join(30)
        assert not t.is_alive()
        assert read_with_timeout(r, 1) == b'x'

    def test_stateless_callable(self, pipe):
        r, w = pipe

        def write(fd, data):
            import os
            os.write(fd, data)
        interp = interpreters.create()
        t = interp.call_in_thread(write, w, b'stateless')
        t.join(30)
        assert read_with_timeout(r, 100) == b'stateless'

    def test_result_discarded(self, new_interp, monkeypatch):
        caught = []
        monkeypatch.setattr(threading, 'excepthook', caught.append)
        interp = new_interp()
        t = interp.call_in_thread(_defs.spam_returns_arg, 42)
        assert t.join(30) is None
        assert caught == []

    def test_failure_goes_to_excepthook(self, new_interp, monkeypatch):
        caught = []
        monkeypatch.setattr(threading, 'excepthook', caught.append)
        interp = new_interp()
        t = interp.call_in_thread(_defs.spam_raises)
        t.join(30)   # does not raise
        assert not t.is_alive()
        assert len(caught) == 1
        args = caught[0]
        assert args.exc_type is ExecutionFailed
        assert args.exc_value.excinfo.type.__name__ == 'Exception'
        assert args.exc_value.excinfo.msg == 'spam!'
        assert args.thread is t

    def test_not_shareable_goes_to_excepthook(self, new_interp,
                                              monkeypatch):
        caught = []
        monkeypatch.setattr(threading, 'excepthook', caught.append)
        interp = new_interp()
        t = interp.call_in_thread(_defs.make_closure(42))
        t.join(30)
        assert len(caught) == 1
        assert issubclass(caught[0].exc_type, NotShareableError)

    def test_runs_in_target(self, new_interp, pipe):
        r, w = pipe
        interp = new_interp()
        interp.prepare_main(w_fd=w)
        t = interp.call_in_thread(
            exec, 'import os, subinterpreters as I\n'
                  'os.write(w_fd, str(I.get_current().id).encode())')
        t.join(30)
        assert read_with_timeout(r, 100) == str(interp.id).encode()


# ---------------------------------------------------------------------------
# concurrency on one interpreter


class TestAlreadyRunning:

    @pytest.mark.timeout(60)
    def test_two_threads_exec_at_once(self, pipe):
        r, w = pipe
        r_stop, w_stop = os.pipe()
        interp = interpreters.create()
        errors = []

        def blocker():
            try:
                interp.exec(f'import os; os.write({w}, b"R"); os.read({r_stop}, 1)')
            except BaseException as exc:
                errors.append(exc)

        def second():
            try:
                interp.exec('pass')
            except BaseException as exc:
                errors.append(exc)

        t1 = threading.Thread(target=blocker)
        t1.start()
        try:
            assert read_with_timeout(r) == b'R'
            t2 = threading.Thread(target=second)
            t2.start()
            t2.join(30)
            assert not t2.is_alive()   # it failed immediately, no waiting
        finally:
            os.write(w_stop, b'x')
            t1.join(30)
            os.close(r_stop)
            os.close(w_stop)
        assert len(errors) == 1
        assert type(errors[0]) is InterpreterError
        assert str(errors[0]) == 'interpreter already running'
        assert interp.is_running() is False


MAIN_CLASSES_SCRIPT = """
from dataclasses import dataclass
import subinterpreters as interpreters
G = 2

@dataclass
class Point:
    x: int

class MainError(Exception):
    pass

def double(p):
    return Point(p.x * G)

def many(n):
    return [Point(i) for i in range(n)]

def fail(n):
    raise MainError(n)

if __name__ == '__main__':
    a = interpreters.create()
    b = interpreters.create()
    print(a.call(double, Point(1)))
    print(a.call(many, 3))
    print(b.call(double, a.call(double, Point(3))))
    q = interpreters.create_queue()
    a.call(q.put, Point(4))
    print(q.get(timeout=10))
    try:
        a.call(fail, 2)
    except interpreters.ExecutionFailed as exc:
        print(exc.excinfo.formatted, exc.excinfo.type.__module__)
    from subinterpreters import InterpreterPoolExecutor
    with InterpreterPoolExecutor(1) as pool:
        try:
            pool.submit(fail, 3).result(60)
        except MainError as exc:
            info = exc.__cause__.excinfo
            print(type(exc).__name__, info.formatted, info.type.__module__,
                  'in fail' in info.errdisplay)
"""


def test_main_classes_come_back_from_the_target(run_python):
    # Instances of classes defined in the script's __main__ are created in
    # the target by the re-run '<fake __main__>' module; they must come
    # back as instances of the caller's own classes.
    rc, out, err = run_python(MAIN_CLASSES_SCRIPT, script=True, timeout=60)
    assert rc == 0, err
    assert out.splitlines() == [
        'Point(x=2)',
        '[Point(x=0), Point(x=1), Point(x=2)]',
        'Point(x=12)',
        'Point(x=4)',
        # the class is the caller's: its module reads __main__
        'MainError: 2 __main__',
        'MainError MainError: 3 __main__ True',
    ]
