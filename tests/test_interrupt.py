"""Stopping runaway code: Interpreter.interrupt(),
exec(timeout=...), and Ctrl-C reaching code in a subinterpreter."""

import os
import threading
import time

import pytest

import subinterpreters as interpreters


SPIN = "while True: pass"


def interrupt_later(interp, delay, results):
    def fire():
        results.append(interp.interrupt())
    t = threading.Timer(delay, fire)
    t.start()
    return t


def test_idle_interpreter_returns_false():
    interp = interpreters.create()
    assert interp.interrupt() is False


def test_interrupt_exec():
    interp = interpreters.create()
    results = []
    t = interrupt_later(interp, 0.2, results)
    start = time.monotonic()
    with pytest.raises(interpreters.ExecutionFailed) as info:
        interp.exec(SPIN)
    elapsed = time.monotonic() - start
    t.join()
    assert results == [True]
    assert info.value.excinfo.type.__name__ == 'KeyboardInterrupt'
    assert elapsed < 5
    # still usable, and no interrupt left over for the next call
    interp.exec("x = 41 + 1")
    assert interp.call(eval, 'x') == 42


def test_interrupt_call():
    interp = interpreters.create()
    results = []
    t = interrupt_later(interp, 0.2, results)
    with pytest.raises(interpreters.ExecutionFailed) as info:
        interp.call(exec, SPIN)
    t.join()
    assert results == [True]
    assert info.value.excinfo.type.__name__ == 'KeyboardInterrupt'
    assert interp.call(len, 'abc') == 3


def test_interrupt_call_in_thread():
    interp = interpreters.create()
    failures = []
    old = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)
    try:
        t = interp.call_in_thread(exec, SPIN)
        deadline = time.monotonic() + 10
        while not interp.is_running():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert interp.interrupt() is True
        t.join(10)
        assert not t.is_alive()
    finally:
        threading.excepthook = old
    assert len(failures) == 1
    assert isinstance(failures[0], interpreters.ExecutionFailed)
    assert failures[0].excinfo.type.__name__ == 'KeyboardInterrupt'


def test_interrupt_from_other_interpreter():
    target = interpreters.create()
    other = interpreters.create()
    other.prepare_main(tid=target.id)
    failures = []
    old = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)
    try:
        t = target.call_in_thread(exec, SPIN)
        deadline = time.monotonic() + 10
        while not target.is_running():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        other.exec("import subinterpreters as I\n"
                   "assert I.Interpreter(tid).interrupt() is True")
        t.join(10)
        assert not t.is_alive()
    finally:
        threading.excepthook = old
    assert [f.excinfo.type.__name__ for f in failures] == ['KeyboardInterrupt']


def test_late_interrupt_does_not_leak_into_next_call():
    interp = interpreters.create()
    for _ in range(50):
        t = threading.Thread(target=interp.interrupt)
        t.start()
        try:
            interp.exec("x = 1")
        except interpreters.ExecutionFailed as exc:
            assert exc.excinfo.type.__name__ == 'KeyboardInterrupt'
        t.join()
    # whatever happened above, the next call runs clean
    for _ in range(20):
        interp.exec("y = sum(range(1000))")


def test_interrupt_closed_interpreter():
    interp = interpreters.create()
    interp.close()
    with pytest.raises(interpreters.InterpreterNotFoundError):
        interp.interrupt()


def test_interrupt_main_is_refused():
    with pytest.raises(interpreters.InterpreterError):
        interpreters.get_main().interrupt()


def test_exec_timeout():
    interp = interpreters.create()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        interp.exec(SPIN, timeout=0.3)
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 5
    interp.exec("z = 3")
    assert interp.call(eval, 'z') == 3


def test_exec_timeout_not_reached():
    interp = interpreters.create()
    interp.exec("a = 1", timeout=10)
    assert interp.call(eval, 'a') == 1
    with pytest.raises(interpreters.ExecutionFailed) as info:
        interp.exec("raise ValueError('boom')", timeout=10)
    assert info.value.excinfo.type.__name__ == 'ValueError'


def test_exec_timeout_zero():
    interp = interpreters.create()
    with pytest.raises(TimeoutError):
        interp.exec(SPIN, timeout=0)


@pytest.mark.parametrize('bad', [-1, float('nan'), 'x'])
def test_exec_timeout_bad_values(bad):
    interp = interpreters.create()
    with pytest.raises((ValueError, TypeError)):
        interp.exec("pass", timeout=bad)


def test_exec_timeout_repeated():
    interp = interpreters.create()
    for _ in range(5):
        with pytest.raises(TimeoutError):
            interp.exec(SPIN, timeout=0.05)
    interp.exec("pass", timeout=1)


CTRL_C = """if True:
    import os, signal, threading, time
    import subinterpreters as interpreters
    interp = interpreters.create()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    try:
        interp.{how}
    except KeyboardInterrupt:
        print('KeyboardInterrupt', round(time.monotonic() - start, 1))
    interp.exec('x = 5')
    print('usable', interp.call(eval, 'x'))
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize('how', ["exec('while True: pass')",
                                 "call(exec, 'while True: pass')",
                                 "exec('import time; time.sleep(30)')"])
def test_ctrl_c_reaches_subinterpreter(run_python, how):
    rc, out, err = run_python(CTRL_C.format(how=how), timeout=30)
    assert rc == 0, err
    lines = out.split('\n')
    assert lines[0].startswith('KeyboardInterrupt'), (out, err)
    assert float(lines[0].split()[1]) < 3
    assert 'usable 5' in out


@pytest.mark.timeout(60)
def test_ctrl_c_with_custom_handler(run_python):
    # A program's own SIGINT handler still runs.
    code = """if True:
        import os, signal, threading
        import subinterpreters as interpreters
        seen = []
        def handler(signum, frame):
            seen.append(signum)
            raise KeyboardInterrupt
        signal.signal(signal.SIGINT, handler)
        interp = interpreters.create()
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            interp.exec('while True: pass')
        except KeyboardInterrupt:
            print('interrupted', seen == [signal.SIGINT])
    """
    rc, out, err = run_python(code, timeout=30)
    assert rc == 0, err
    assert 'interrupted True' in out


# --- time.sleep() ------------------------------------------------------------
# CPython's sleep in a subinterpreter sees an interrupt only when it ends;
# ours (sleep.c) wakes at once.

SLEEP = "import time; time.sleep(30)"


def test_interrupt_wakes_sleep():
    interp = interpreters.create()
    results = []
    t = interrupt_later(interp, 0.2, results)
    start = time.monotonic()
    with pytest.raises(interpreters.ExecutionFailed) as info:
        interp.exec(SLEEP)
    t.join()
    assert results == [True]
    assert info.value.excinfo.type.__name__ == 'KeyboardInterrupt'
    assert time.monotonic() - start < 10   # not the 30 s of the sleep
    interp.exec("import time; time.sleep(0.01); time.sleep(0)")


def test_exec_timeout_wakes_sleep():
    interp = interpreters.create()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        interp.exec(SLEEP, timeout=0.3)
    assert time.monotonic() - start < 10


def test_sleep_keeps_time_sleep_behaviour():
    interp = interpreters.create()
    for arg in ('-1', "float('nan')", "'1'", '1e300'):
        with pytest.raises(interpreters.ExecutionFailed) as ours:
            interp.exec(f"import time; time.sleep({arg})")
        with pytest.raises(Exception) as cpython:
            time.sleep(eval(arg))
        assert ours.value.excinfo.type.__name__ == type(cpython.value).__name__
    start = time.monotonic()
    interp.exec("import time; time.sleep(0.2)")
    assert time.monotonic() - start >= 0.2     # sleeps its full length
    assert interp.call(eval, "__import__('time').sleep.__module__") == 'time'
    assert time.sleep.__module__ == 'time'     # main's is CPython's


# --- unwind: an interruption that cannot be swallowed -----------------------

STUBBORN = """if True:
    swallowed = 0
    while True:
        try:
            while True:
                pass
        except BaseException:
            swallowed += 1
"""


def run_in_thread(interp, source):
    """exec(source) in a thread; returns (thread, outcome list)."""
    outcome = []

    def run():
        try:
            interp.exec(source)
            outcome.append(None)
        except interpreters.ExecutionFailed as exc:
            outcome.append(exc.excinfo.type.__name__)
    t = threading.Thread(target=run)
    t.start()
    return t, outcome


def wait_running(interp):
    deadline = time.monotonic() + 10
    while not interp.is_running():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_timeout_stops_code_that_swallows_the_interrupt():
    interp = interpreters.create()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        interp.exec(STUBBORN, timeout=0.3)
    assert time.monotonic() - start < 10
    assert interp.call(eval, 'swallowed') >= 1
    interp.exec('x = 2')           # usable, nothing left pending
    assert interp.call(eval, 'x') == 2


def test_interrupt_unwind_cannot_be_swallowed():
    interp = interpreters.create()
    t, outcome = run_in_thread(interp, STUBBORN)
    wait_running(interp)
    assert interp.interrupt() is True
    time.sleep(0.2)
    assert interp.is_running()     # a plain interrupt was swallowed
    assert interp.interrupt(unwind=True) is True
    t.join(10)
    assert outcome == ['KeyboardInterrupt']   # not the private class
    assert interp.call(eval, 'swallowed') >= 2
    assert interp.interrupt(unwind=True) is False   # idle


def test_unwind_runs_finally_and_exit_and_stops_them_if_they_loop():
    interp = interpreters.create()
    q = interpreters.create_queue()
    interp.prepare_main(q=q)
    t, outcome = run_in_thread(interp, """if True:
        import contextlib
        @contextlib.contextmanager
        def resource():
            try:
                yield
            finally:
                q.put('exit ran')
        try:
            with resource():
                try:
                    q.put('looping')
                    while True:
                        pass
                except KeyboardInterrupt:
                    q.put('except body ran')
        finally:
            q.put('finally ran')
            while True:        # a cleanup that never ends
                pass
        """)
    assert q.get(timeout=10) == 'looping'
    interp.interrupt(unwind=True)
    t.join(10)
    assert not t.is_alive()
    assert outcome == ['KeyboardInterrupt']
    assert [q.get(timeout=1) for _ in range(3)] == [
        'except body ran', 'exit ran', 'finally ran']


def test_unwind_puts_back_the_trace_function():
    interp = interpreters.create()
    interp.exec("import sys\ndef tracer(*a): return None\n"
                "sys.settrace(tracer)")
    t, outcome = run_in_thread(interp, STUBBORN)
    wait_running(interp)
    interp.interrupt(unwind=True)
    t.join(10)
    assert outcome == ['KeyboardInterrupt']
    assert interp.call(eval, 'sys.gettrace() is tracer')


def test_interrupt_unwind_must_be_a_bool():
    interp = interpreters.create()
    with pytest.raises(TypeError, match='unwind must be True or False'):
        interp.interrupt(unwind=1)
    with pytest.raises(TypeError):
        interp.interrupt(True)


def test_unwind_reaches_code_swallowing_it_around_our_waits():
    # time.sleep() (ours) consumes the interrupt itself: the unwinding
    # must go on from there too.
    interp = interpreters.create()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        interp.exec("import time\n"
                    "n = 0\n"
                    "while True:\n"
                    "    try:\n"
                    "        time.sleep(0.1)\n"
                    "    except BaseException:\n"
                    "        n += 1\n", timeout=0.3)
    assert time.monotonic() - start < 10


def test_unwind_lets_a_cleanup_handle_its_own_errors():
    # A finally block that catches an ordinary exception of its own still
    # runs to its end.
    interp = interpreters.create()
    q = interpreters.create_queue()
    interp.prepare_main(q=q)
    t, outcome = run_in_thread(interp, """if True:
        try:
            q.put('looping')
            while True:
                pass
        finally:
            try:
                {}['missing']
            except KeyError:
                q.put('handled its KeyError')
            q.put('cleanup done')
        """)
    assert q.get(timeout=10) == 'looping'
    interp.interrupt(unwind=True)
    t.join(10)
    assert outcome == ['KeyboardInterrupt']
    assert [q.get(timeout=1), q.get(timeout=1)] == [
        'handled its KeyError', 'cleanup done']


def test_unwind_survives_the_settrace_save_and_restore_idiom():
    # sys.settrace(sys.gettrace()) (debuggers, doctest) sets our tracer
    # again from Python: unwinding goes on, and later calls are not
    # traced.
    interp = interpreters.create()
    t, outcome = run_in_thread(interp, """if True:
        import sys
        try:
            while True:
                pass
        except BaseException:
            old = sys.gettrace()
            sys.settrace(None)
            sys.settrace(old)
        while True:
            pass
        """)
    wait_running(interp)
    interp.interrupt(unwind=True)
    t.join(10)
    assert outcome == ['KeyboardInterrupt']
    assert interp.call(eval, "__import__('sys').gettrace()") is None
    interp.exec('x = 1')


def test_the_unwind_class_does_nothing_outside_an_interrupted_call():
    # The class is reachable (KeyboardInterrupt.__subclasses__()); made
    # by a thread that is not running an exec()/call() of ours, it sets
    # no trace.
    interp = interpreters.create()
    t, outcome = run_in_thread(interp, STUBBORN)
    wait_running(interp)
    interp.interrupt(unwind=True)   # makes the class in that interpreter
    t.join(10)
    interp.exec("""if True:
        import sys, threading
        cls = [c for c in KeyboardInterrupt.__subclasses__()
               if c.__name__ == '_Unwind'][0]
        seen = []
        def other_thread():
            exc = cls()
            seen.append((type(exc).__name__, sys.gettrace()))
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        """)
    assert interp.call(eval, 'seen') == [('KeyboardInterrupt', None)]


def test_unwind_runs_exit_of_with_blocks():
    # The LINE event at a handler's first instruction comes before the
    # exception counts as handled: __exit__ must still run.
    interp = interpreters.create()
    q = interpreters.create_queue()
    interp.prepare_main(q=q)
    t, outcome = run_in_thread(interp, """if True:
        import threading
        lock = threading.Lock()
        class Resource:
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                q.put('exit ran')
        with Resource(), lock:
            q.put('looping')
            while True:
                pass
        """)
    assert q.get(timeout=10) == 'looping'
    interp.interrupt(unwind=True)
    t.join(10)
    assert outcome == ['KeyboardInterrupt']
    assert q.get(timeout=1) == 'exit ran'
    assert interp.call(eval, 'lock.locked()') is False


def test_one_interrupt_is_raised_once():
    # A plain interrupt caught by the code is not raised again by a later
    # wait of ours in the same call.
    interp = interpreters.create()
    t, outcome = run_in_thread(interp, """if True:
        import time
        try:
            while True:
                pass
        except KeyboardInterrupt:
            pass
        time.sleep(0.3)
        """)
    wait_running(interp)
    time.sleep(0.1)
    assert interp.interrupt() is True
    t.join(10)
    assert outcome == [None]


def test_sleep_refuses_what_time_sleep_refuses():
    interp = interpreters.create()
    with pytest.raises(interpreters.ExecutionFailed) as info:
        interp.exec("import time, decimal; time.sleep(decimal.Decimal('0.01'))")
    assert info.value.excinfo.type.__name__ == 'TypeError'


STUBBORN_CTRL_C = """if True:
    import os, signal, threading, time
    import subinterpreters as interpreters
    interp = interpreters.create()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    try:
        interp.exec('while True:\\n'
                    '    try:\\n'
                    '        while True: pass\\n'
                    '    except BaseException:\\n'
                    '        pass\\n')
    except KeyboardInterrupt:
        print('KeyboardInterrupt', round(time.monotonic() - start, 1))
"""


@pytest.mark.timeout(60)
def test_ctrl_c_stops_code_that_swallows_it(run_python):
    rc, out, err = run_python(STUBBORN_CTRL_C, timeout=30)
    assert rc == 0, err
    assert out.startswith('KeyboardInterrupt'), (out, err)
    assert float(out.split()[1]) < 5


def stubborn_task():
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass


@pytest.mark.timeout(60)
def test_pool_cancel_stops_a_task_that_swallows_interrupts():
    import concurrent.futures
    from subinterpreters.executor import InterpreterPoolExecutor
    with InterpreterPoolExecutor(1) as pool:
        future = pool.submit(stubborn_task)
        deadline = time.monotonic() + 10
        while not future.running():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)
        assert future.cancel()
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(timeout=10)
        assert pool.submit(add, 1, 2).result(timeout=10) == 3
    with InterpreterPoolExecutor(1) as pool:
        future = pool.submit(stubborn_task)
        while not future.running():
            time.sleep(0.01)
        start = time.monotonic()
        pool.shutdown(wait=True, cancel_futures=True)
        assert time.monotonic() - start < 10


# --- the pool ---------------------------------------------------------------

def spin_forever():
    while True:
        pass


def add(a, b):
    return a + b


@pytest.mark.timeout(60)
def test_pool_cancel_running_task():
    with interpreters.InterpreterPoolExecutor(1) as pool:
        fut = pool.submit(spin_forever)
        deadline = time.monotonic() + 10
        while not fut.running():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)
        start = time.monotonic()
        assert fut.cancel() is True
        assert fut.cancelled()
        with pytest.raises(Exception) as info:
            fut.result(timeout=5)
        assert type(info.value).__name__ == 'CancelledError'
        assert time.monotonic() - start < 5
        # the worker goes on serving
        assert pool.submit(add, 2, 3).result(timeout=10) == 5
        assert fut.cancel() is True   # idempotent


@pytest.mark.timeout(60)
def test_pool_cancel_finished_task_returns_false():
    with interpreters.InterpreterPoolExecutor(1) as pool:
        fut = pool.submit(add, 1, 1)
        assert fut.result(timeout=10) == 2
        assert fut.cancel() is False


@pytest.mark.timeout(60)
def test_pool_cancel_callbacks_and_wait():
    import concurrent.futures as cf
    with interpreters.InterpreterPoolExecutor(2) as pool:
        fut = pool.submit(spin_forever)
        seen = []
        fut.add_done_callback(lambda f: seen.append(f.cancelled()))
        while not fut.running():
            time.sleep(0.01)
        waiter = threading.Thread(target=cf.wait, args=([fut],))
        waiter.start()
        assert fut.cancel()
        waiter.join(10)
        assert not waiter.is_alive()
        assert seen == [True]


@pytest.mark.timeout(60)
def test_pool_shutdown_cancel_futures_interrupts_running():
    pool = interpreters.InterpreterPoolExecutor(2)
    running = [pool.submit(spin_forever) for _ in range(2)]
    queued = [pool.submit(spin_forever) for _ in range(3)]
    deadline = time.monotonic() + 10
    while not all(f.running() for f in running):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    start = time.monotonic()
    pool.shutdown(wait=True, cancel_futures=True)
    assert time.monotonic() - start < 10
    assert all(f.cancelled() for f in running + queued)
