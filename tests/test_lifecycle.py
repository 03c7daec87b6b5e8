"""Module functions, the Interpreter object, is_running() and close().

Reference: CPython 3.14 concurrent.interpreters (create, close, ids).
"""

import gc
import os
import pickle
import threading
import time

import pytest

import subinterpreters as interpreters
from subinterpreters import (
    Interpreter, InterpreterError, InterpreterNotFoundError,
)

from _helpers import read_with_timeout

WHENCE_RUNTIME = 'runtime init'
WHENCE_STDLIB = '_interpreters module'


def ids(interps):
    return [interp.id for interp in interps]


# ---------------------------------------------------------------------------
# get_main / get_current / create / list_all


class TestModuleFunctions:

    def test_get_main(self):
        main = interpreters.get_main()
        assert isinstance(main, Interpreter)
        assert main.id == 0
        assert main.whence == WHENCE_RUNTIME

    def test_get_main_idempotent(self):
        assert interpreters.get_main() is interpreters.get_main()

    def test_get_current_in_main(self):
        current = interpreters.get_current()
        assert current is interpreters.get_main()
        assert interpreters.get_current() is current

    def test_get_current_in_main_from_thread(self):
        results = []
        t = threading.Thread(
            target=lambda: results.append(interpreters.get_current()))
        t.start()
        t.join()
        assert results == [interpreters.get_main()]
        assert results[0] is interpreters.get_main()

    def test_create(self):
        interp = interpreters.create()
        assert isinstance(interp, Interpreter)
        assert type(interp) is Interpreter
        assert isinstance(interp.id, int)
        assert interp.id > 0
        assert interp.whence == WHENCE_STDLIB
        assert interp in interpreters.list_all()
        assert not interp.is_running()

    def test_create_takes_no_arguments(self):
        with pytest.raises(TypeError):
            interpreters.create('isolated')

    def test_create_ids_increase(self):
        first = interpreters.create()
        second = interpreters.create()
        third = interpreters.create()
        assert first.id < second.id < third.id

    def test_ids_never_reused(self):
        first = interpreters.create()
        old = first.id
        first.close()
        second = interpreters.create()
        assert second.id > old

    def test_list_all_main_first(self):
        interps = interpreters.list_all()
        assert isinstance(interps, list)
        assert interps[0] is interpreters.get_main()

    def test_list_all_initial_is_only_main(self):
        # The autouse fixture closes whatever earlier tests created.
        assert ids(interpreters.list_all()) == [0]

    def test_list_all_order_and_identity(self):
        before = interpreters.list_all()
        first = interpreters.create()
        second = interpreters.create()
        after = interpreters.list_all()
        assert ids(after) == ids(before) + [first.id, second.id]
        for got, expected in zip(after, before + [first, second]):
            assert got is expected
        assert ids(after) == sorted(ids(after))

    def test_list_all_returns_a_new_list(self):
        first = interpreters.list_all()
        first.append('spam')
        assert 'spam' not in interpreters.list_all()

    def test_list_all_after_close(self):
        main = interpreters.get_main()
        first = interpreters.create()
        second = interpreters.create()
        third = interpreters.create()
        second.close()
        assert interpreters.list_all() == [main, first, third]
        first.close()
        third.close()
        assert interpreters.list_all() == [main]

    def test_close_all_then_create(self):
        before = set(interpreters.list_all())
        created = [interpreters.create() for _ in range(3)]
        for interp in created:
            interp.close()
        assert set(interpreters.list_all()) == before
        interp = interpreters.create()
        assert set(interpreters.list_all()) == before | {interp}

    def test_create_in_thread(self):
        results = []
        errors = []

        def task():
            try:
                results.append(interpreters.create())
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=task)
        t.start()
        t.join()
        assert errors == []
        interp, = results
        assert interp.whence == WHENCE_STDLIB
        assert interp in interpreters.list_all()
        # Usable from the main thread too.
        interp.exec('x = 1')
        assert interp.call(eval, 'x') == 1

    def test_create_in_subinterpreter(self, exec_output):
        main = interpreters.get_main()
        interp = interpreters.create()
        out = exec_output(interp, """
            import subinterpreters as I
            nested = I.create()
            print(nested.id)
            print([i.id for i in I.list_all()])
            print(nested.whence)
            """)
        nested_id, listed, whence = out.splitlines()
        nested_id = int(nested_id)
        assert nested_id > interp.id
        assert whence == WHENCE_STDLIB
        # Seen from inside: main, itself, and the one it created.
        assert eval(listed) == [0, interp.id, nested_id]
        # Seen from main: the nested interpreter is listed too.
        nested = Interpreter(nested_id)
        assert interpreters.list_all() == [main, interp, nested]
        assert nested.whence == WHENCE_STDLIB

    def test_get_current_in_subinterpreter(self, exec_output):
        interp = interpreters.create()
        out = exec_output(interp, """
            import subinterpreters as I
            cur = I.get_current()
            print(cur.id)
            print(cur.whence)
            print(cur is I.get_current())
            print(I.get_main().id, I.get_main().whence)
            print(I.get_main() is I.get_current())
            print(I.Interpreter(cur.id) is cur)
            """)
        assert out.splitlines() == [
            str(interp.id),
            WHENCE_STDLIB,
            'True',
            f'0 {WHENCE_RUNTIME}',
            'False',
            'True',
        ]


# ---------------------------------------------------------------------------
# the Interpreter object


class TestInterpreterObject:

    def test_singleton_per_id(self):
        interp = interpreters.create()
        assert Interpreter(interp.id) is interp
        assert Interpreter(0) is interpreters.get_main()

    def test_singleton_from_list_all(self):
        interp = interpreters.create()
        listed, = [i for i in interpreters.list_all() if i.id == interp.id]
        assert listed is interp

    @pytest.mark.parametrize('bad', ['1', '', 1.0, None, object(), [1]],
                             ids=repr)
    def test_init_requires_int(self, bad):
        with pytest.raises(TypeError, match='must be an int'):
            Interpreter(bad)

    def test_init_negative(self):
        with pytest.raises(ValueError):
            Interpreter(-1)

    def test_init_not_found(self):
        with pytest.raises(InterpreterNotFoundError,
                           match='unrecognized interpreter ID 1000000'):
            Interpreter(1_000_000)

    def test_init_after_close_even_if_cached(self):
        interp = interpreters.create()
        interp.close()
        # `interp` (the cached singleton) is still alive.
        with pytest.raises(InterpreterNotFoundError):
            Interpreter(interp.id)

    def test_id(self):
        interp = interpreters.create()
        assert type(interp.id) is int
        assert type(interpreters.get_main().id) is int

    def test_id_readonly(self):
        interp = interpreters.create()
        old = interp.id
        with pytest.raises(AttributeError):
            interp.id = 1_000_000
        with pytest.raises(AttributeError):
            del interp.id
        assert interp.id == old

    @pytest.mark.parametrize('value', [
        None, 'unknown', WHENCE_RUNTIME, WHENCE_STDLIB, 'C-API'])
    def test_whence_readonly(self, value):
        interp = interpreters.create()
        main = interpreters.get_main()
        with pytest.raises(AttributeError):
            interp.whence = value
        with pytest.raises(AttributeError):
            main.whence = value
        assert interp.whence == WHENCE_STDLIB
        assert main.whence == WHENCE_RUNTIME

    def test_id_and_whence_readable_after_close(self):
        interp = interpreters.create()
        interpid = interp.id
        interp.close()
        assert interp.id == interpid
        assert interp.whence == WHENCE_STDLIB

    def test_hash(self):
        interp = interpreters.create()
        assert hash(interp) == hash(interp.id)
        assert hash(interpreters.get_main()) == hash(0)
        assert {interp: 1}[Interpreter(interp.id)] == 1

    def test_equality_is_identity(self):
        interp1 = interpreters.create()
        interp2 = interpreters.create()
        assert interp1 == interp1
        assert not (interp1 != interp1)
        assert interp1 != interp2
        assert not (interp1 == interp2)
        assert interp1 != interp1.id
        assert interp1 == Interpreter(interp1.id)

    @pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
    def test_pickle_roundtrip(self, protocol):
        interp = interpreters.create()
        data = pickle.dumps(interp, protocol)
        unpickled = pickle.loads(data)
        assert unpickled == interp
        assert unpickled is interp

    def test_pickle_main(self):
        main = interpreters.get_main()
        assert pickle.loads(pickle.dumps(main)) is main

    def test_reduce(self):
        interp = interpreters.create()
        assert interp.__reduce__() == (Interpreter, (interp.id,))

    def test_unpickle_after_close(self):
        interp = interpreters.create()
        data = pickle.dumps(interp)
        interp.close()
        with pytest.raises(InterpreterNotFoundError):
            pickle.loads(data)

    def test_repr(self):
        interp = interpreters.create()
        assert repr(interp) == f'Interpreter({interp.id})'
        assert repr(interpreters.get_main()) == 'Interpreter(0)'


# ---------------------------------------------------------------------------
# is_running()


class TestIsRunning:

    def test_main(self):
        assert interpreters.get_main().is_running() is True

    def test_main_from_other_thread(self):
        results = []
        t = threading.Thread(
            target=lambda: results.append(
                interpreters.get_main().is_running()))
        t.start()
        t.join()
        assert results == [True]

    def test_fresh(self):
        interp = interpreters.create()
        assert interp.is_running() is False

    def test_after_exec(self, pipe):
        r, w = pipe
        interp = interpreters.create()
        interp.exec(f'import os; os.write({w}, b"x")')
        assert interp.is_running() is False
        assert read_with_timeout(r, 1) == b'x'

    def test_after_call(self):
        interp = interpreters.create()
        assert interp.call(abs, -3) == 3
        assert interp.is_running() is False

    def test_after_failure(self):
        interp = interpreters.create()
        with pytest.raises(interpreters.ExecutionFailed):
            interp.exec('raise ValueError')
        assert interp.is_running() is False

    def test_inside_own_exec(self, exec_output):
        interp = interpreters.create()
        out = exec_output(interp, """
            import subinterpreters as I
            print(I.get_current().is_running())
            print(I.get_main().is_running())
            """)
        assert out.split() == ['True', 'True']

    def test_inside_own_call(self):
        interp = interpreters.create()
        interp.exec('import subinterpreters')
        res = interp.call(eval, 'subinterpreters.get_current().is_running()')
        assert res is True

    def test_while_running_in_other_thread(self, running):
        interp = interpreters.create()
        assert interp.is_running() is False
        with running(interp):
            assert interp.is_running() is True
        assert interp.is_running() is False

    def test_only_background_thread(self, pipe):
        r_interp, w_interp = pipe
        r_thread, w_thread = os.pipe()
        try:
            interp = interpreters.create()
            interp.exec(f"""if True:
                import os
                import threading

                def task():
                    assert os.read({r_thread}, 1) == b'D'
                    os.write({w_interp}, b'F')

                t = threading.Thread(target=task)
                t.start()
                """)
            # The thread is alive (blocked on the pipe) but nothing runs
            # __main__.
            try:
                assert interp.is_running() is False
            finally:
                os.write(w_thread, b'D')   # never leave the thread blocked
            assert read_with_timeout(r_interp) == b'F'
            interp.exec('t.join()')
            assert interp.is_running() is False
        finally:
            os.close(r_thread)
            os.close(w_thread)

    def test_after_close(self):
        interp = interpreters.create()
        interp.close()
        with pytest.raises(InterpreterNotFoundError):
            interp.is_running()


# ---------------------------------------------------------------------------
# close()


class TestClose:

    def test_basic(self):
        main = interpreters.get_main()
        interp1 = interpreters.create()
        interp2 = interpreters.create()
        interp3 = interpreters.create()
        assert set(interpreters.list_all()) == {main, interp1, interp2,
                                                interp3}
        assert interp2.close() is None
        assert set(interpreters.list_all()) == {main, interp1, interp3}

    def test_twice(self):
        interp = interpreters.create()
        interp.close()
        with pytest.raises(InterpreterNotFoundError):
            interp.close()

    def test_methods_after_close(self):
        interp = interpreters.create()
        interp.close()
        with pytest.raises(InterpreterNotFoundError):
            interp.exec('pass')
        with pytest.raises(InterpreterNotFoundError):
            interp.call(len, 'x')
        with pytest.raises(InterpreterNotFoundError):
            interp.prepare_main(spam=1)

    def test_main(self):
        main = interpreters.get_main()
        with pytest.raises(InterpreterError) as excinfo:
            main.close()
        assert not isinstance(excinfo.value, InterpreterNotFoundError)
        assert interpreters.list_all()[0] is main
        assert main.is_running()

    def test_main_from_other_thread(self):
        main = interpreters.get_main()
        errors = []

        def task():
            try:
                main.close()
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=task)
        t.start()
        t.join()
        assert len(errors) == 1
        assert isinstance(errors[0], InterpreterError)
        assert not isinstance(errors[0], InterpreterNotFoundError)
        assert interpreters.list_all()[0] is main

    def test_from_current(self, exec_output):
        main = interpreters.get_main()
        interp = interpreters.create()
        out = exec_output(interp, f"""
            import subinterpreters as I
            for obj in (I.Interpreter({interp.id}), I.get_current()):
                try:
                    obj.close()
                except I.InterpreterNotFoundError as exc:
                    print('NotFound', exc)
                except I.InterpreterError as exc:
                    print('InterpreterError', exc)
                else:
                    print('closed!')
            """)
        lines = out.splitlines()
        assert len(lines) == 2, out
        for line in lines:
            # 3.14's message; extra detail after it is tolerated.
            assert line.startswith(
                'InterpreterError cannot destroy the current interpreter'), line
        # It still exists and works.
        assert interpreters.list_all() == [main, interp]
        interp.exec('x = 1')
        assert interp.call(eval, 'x') == 1

    def test_from_sibling(self):
        main = interpreters.get_main()
        interp1 = interpreters.create()
        interp2 = interpreters.create()
        assert set(interpreters.list_all()) == {main, interp1, interp2}
        interp1.exec(f"""if True:
            import subinterpreters as I
            interp2 = I.Interpreter({interp2.id})
            interp2.close()
            interp3 = I.create()
            interp3.close()
            """)
        assert set(interpreters.list_all()) == {main, interp1}
        with pytest.raises(InterpreterNotFoundError):
            interp2.close()

    def test_parent_closes_nested(self, exec_output):
        interp = interpreters.create()
        nested_id = int(exec_output(interp, """
            import subinterpreters as I
            nested = I.create()
            print(nested.id)
            """))
        nested = Interpreter(nested_id)
        nested.close()
        assert nested_id not in ids(interpreters.list_all())
        # The subinterpreter's object now refers to a closed interpreter.
        out = exec_output(interp, """
            try:
                nested.close()
            except I.InterpreterNotFoundError:
                print('gone')
            """)
        assert out.strip() == 'gone'

    def test_from_other_thread(self):
        interp = interpreters.create()
        errors = []

        def task():
            try:
                interp.close()
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=task)
        t.start()
        t.join()
        assert errors == []
        assert interp not in interpreters.list_all()

    def test_created_in_other_thread_closed_here(self):
        holder = []
        t = threading.Thread(target=lambda: holder.append(
            interpreters.create()))
        t.start()
        t.join()
        interp, = holder
        interp.close()
        assert interp not in interpreters.list_all()

    @pytest.mark.timeout(60)
    def test_while_running_in_other_thread(self, running):
        interp = interpreters.create()
        with running(interp):
            with pytest.raises(InterpreterError, match='running'):
                interp.close()
            assert interp.is_running()
        # It survived.
        assert interp in interpreters.list_all()
        interp.exec('x = 1')
        assert interp.call(eval, 'x') == 1
        interp.close()
        assert interp not in interpreters.list_all()

    @pytest.mark.timeout(60)
    def test_waits_for_non_daemon_threads(self, pipe):
        r, w = pipe
        interp = interpreters.create()
        interp.exec(f"""if True:
            import os
            import threading
            import time

            def task():
                time.sleep(0.5)
                os.write({w}, b'F')

            t = threading.Thread(target=task)
            t.start()
            """)
        start = time.monotonic()
        interp.close()
        elapsed = time.monotonic() - start
        assert elapsed >= 0.4, elapsed
        # The thread had finished when close() returned.
        os.set_blocking(r, False)
        assert os.read(r, 1) == b'F'
        assert interp not in interpreters.list_all()

    @pytest.mark.timeout(60)
    def test_runs_threading_atexit_hooks(self, pipe):
        r, w = pipe
        interp = interpreters.create()
        interp.exec(f"""if True:
            import os
            import threading
            import time

            done = False

            def notify_fini():
                global done
                done = True
                t.join()
            threading._register_atexit(notify_fini)

            def task():
                # Bounded, so a missing hook call fails instead of hanging.
                deadline = time.monotonic() + 10
                while not done and time.monotonic() < deadline:
                    time.sleep(0.05)
                os.write({w}, b'F' if done else b'T')

            t = threading.Thread(target=task)
            t.start()
            """)
        interp.close()
        os.set_blocking(r, False)
        # 'T': the thread gave up waiting; the atexit hook never ran.
        assert os.read(r, 1) == b'F'

    def test_runs_atexit_callbacks(self, pipe):
        r, w = pipe
        interp = interpreters.create()
        interp.exec(f"""if True:
            import atexit, os
            atexit.register(os.write, {w}, b'A')
            """)
        interp.close()
        os.set_blocking(r, False)
        assert os.read(r, 1) == b'A'


# ---------------------------------------------------------------------------
# automatic destruction when the last Interpreter object goes away


class TestAutoDestroy:

    def test_del_last_reference_destroys(self):
        def make():
            interp = interpreters.create()
            interp.exec('x = 1')
            return interp.id
        interpid = make()
        gc.collect()
        assert interpid not in ids(interpreters.list_all())
        with pytest.raises(InterpreterNotFoundError):
            Interpreter(interpid)

    def test_del_explicit(self):
        interp = interpreters.create()
        interpid = interp.id
        assert interpid in ids(interpreters.list_all())
        del interp
        gc.collect()
        assert interpid not in ids(interpreters.list_all())

    def test_another_reference_keeps_alive(self):
        interp = interpreters.create()
        interpid = interp.id
        other = Interpreter(interpid)   # same singleton
        del interp
        gc.collect()
        assert interpid in ids(interpreters.list_all())
        del other
        gc.collect()
        assert interpid not in ids(interpreters.list_all())

    def test_reference_held_in_other_interpreter_keeps_alive(self):
        keeper = interpreters.create()
        target = interpreters.create()
        target_id = target.id
        keeper.exec(f'import subinterpreters as I; keep = I.Interpreter({target_id})')
        del target
        gc.collect()
        assert target_id in ids(interpreters.list_all())
        keeper.exec('del keep; import gc; gc.collect()')
        gc.collect()
        assert target_id not in ids(interpreters.list_all())

    def test_main_not_affected(self):
        main = interpreters.get_main()
        del main
        gc.collect()
        assert interpreters.get_main().id == 0
        assert ids(interpreters.list_all())[0] == 0


NESTED_SITECUSTOMIZE = """
import os, sys
if os.environ.pop('SBI_NESTED_CREATE', None):
    # In the start-up of an interpreter of ours: create another one.
    import subinterpreters
    try:
        subinterpreters.create().close()
        print('nested created', file=sys.stderr, flush=True)
    except Exception as exc:
        print('nested', type(exc).__name__, exc, file=sys.stderr, flush=True)
"""


@pytest.mark.timeout(120)
def test_create_from_an_interpreters_start_up(run_python, tmp_path):
    # Start-up code (sitecustomize, .pth files) runs while an interpreter
    # starts; one that creates an interpreter itself must not wait for
    # the start-up lock its own thread holds (3.12/3.13): a clear error
    # there, success where starts are not serialized.
    (tmp_path / 'sitecustomize.py').write_text(NESTED_SITECUSTOMIZE)
    rc, out, err = run_python("""
        import os
        import subinterpreters as interpreters
        os.environ['SBI_NESTED_CREATE'] = '1'
        interp = interpreters.create()
        print(interp.call(pow, 2, 5), flush=True)
        interp.close()
        """, env={'PYTHONPATH': str(tmp_path)}, timeout=100)
    assert rc == 0, err
    assert out == '32\n'
    nested = [line for line in err.splitlines() if line.startswith('nested')]
    assert nested in (
        ['nested created'],
        ['nested InterpreterError interpreter creation failed: the thread '
         'is starting another interpreter already']), err


def test_close_skips_threads_threading_did_not_start(run_python):
    # A thread of the main interpreter that ran code here after threading
    # was imported is a _DummyThread there, which cannot be joined (on
    # 3.12 it is not even a daemon): close() must not try, and print
    # nothing.
    rc, out, err = run_python("""
        import threading
        import subinterpreters as interpreters
        interp = interpreters.create()
        interp.exec('import threading')
        t = threading.Thread(target=interp.exec,
                             args=('threading.current_thread()',))
        t.start()
        t.join()
        interp.close()
        print('closed')
        """)
    assert (rc, out, err) == (0, 'closed\n', '')
