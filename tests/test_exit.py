"""Process exit with live subinterpreters (each test runs a subprocess).

3.12 aborts with "remaining subinterpreters" and 3.13.0 hangs when a
subinterpreter with a running thread is left at exit (CPython gh-113433,
gh-128639, gh-119213, gh-109793).  The extension must destroy
its interpreters cleanly at exit on every version.
"""

import pytest
from _helpers import check_clean

EXIT_TIMEOUT = 30


@pytest.mark.timeout(60)
def test_idle_live_interpreter(run_python):
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interp = interpreters.create()
        interp.exec('x = 1')
        print('done', flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out == 'done\n'
    assert 'Traceback' not in err


@pytest.mark.timeout(60)
def test_never_used_live_interpreter(run_python):
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interp = interpreters.create()
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert 'Traceback' not in err


@pytest.mark.timeout(60)
def test_live_interpreter_with_running_thread(run_python):
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interp = interpreters.create()
        interp.exec('''if True:
            import threading, time
            def task():
                time.sleep(0.5)
                print('thread done', flush=True)
            t = threading.Thread(target=task)
            t.start()
            ''')
        print('main done', flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    # The non-daemon thread was allowed to finish.
    assert out.splitlines() == ['main done', 'thread done']


@pytest.mark.timeout(60)
def test_many_live_interpreters(run_python):
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interps = [interpreters.create() for _ in range(10)]
        for i, interp in enumerate(interps):
            interp.exec(f'x = {i}')
        print(len(interpreters.list_all()), flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out == '11\n'


@pytest.mark.timeout(60)
def test_live_nested_interpreters(run_python):
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        outer = interpreters.create()
        outer.exec('''if True:
            import subinterpreters as I
            inner = I.create()
            inner.exec('y = 2')
            ''')
        print(len(interpreters.list_all()), flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out == '3\n'


@pytest.mark.timeout(60)
def test_ssl_and_asyncio_imported_in_closed_interpreter(run_python):
    # 3.12.1 crashed at exit after this (gh-119213).
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interp = interpreters.create()
        interp.exec('import ssl')
        interp.exec('import asyncio')
        interp.close()
        print('closed', flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out == 'closed\n'
    assert 'free()' not in err and 'double free' not in err


@pytest.mark.timeout(60)
def test_ssl_and_asyncio_imported_in_live_interpreter(run_python):
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interp = interpreters.create()
        interp.exec('import ssl, asyncio')
        print('done', flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out == 'done\n'
    assert 'free()' not in err and 'double free' not in err


@pytest.mark.timeout(60)
def test_uncaught_exception_in_main_with_live_interpreter(run_python):
    # gh-109793: exit code 1 and a traceback.
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interp = interpreters.create()
        raise Exception('spam-and-eggs')
        """, timeout=EXIT_TIMEOUT, script=True)
    check_clean(rc, out, err, expected_rc=1)
    assert 'Traceback (most recent call last)' in err
    assert '\nException: spam-and-eggs\n' in err


@pytest.mark.timeout(60)
def test_sys_exit_in_main_with_live_interpreter(run_python):
    rc, out, err = run_python("""
        import sys
        import subinterpreters as interpreters
        interp = interpreters.create()
        interp.exec('x = 1')
        sys.exit(3)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err, expected_rc=3)


@pytest.mark.timeout(60)
def test_subinterpreter_atexit_runs_at_process_exit(run_python):
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interp = interpreters.create()
        interp.exec('''if True:
            import atexit
            atexit.register(print, 'sub atexit', flush=True)
            ''')
        print('main done', flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out.splitlines() == ['main done', 'sub atexit']


@pytest.mark.timeout(60)
def test_call_in_thread_still_running_at_exit(run_python):
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interp = interpreters.create()
        def work():
            import time
            time.sleep(0.5)
            print('call done', flush=True)
        t = interp.call_in_thread(work)
        print('main done', flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out.splitlines() == ['main done', 'call done']


@pytest.mark.timeout(60)
def test_close_refused_with_raw_thread_then_succeeds(run_python):
    # A thread started with _thread.start_new_thread is not joined by
    # threading._shutdown; closing while it runs must raise instead of
    # aborting the process ("Py_EndInterpreter: not the last thread").
    rc, out, err = run_python("""
        import time
        import subinterpreters as interpreters
        interp = interpreters.create()
        interp.exec('import _thread, time; _thread.start_new_thread(time.sleep, (1,))')
        print('running', interp.is_running(), flush=True)
        try:
            interp.close()
        except interpreters.InterpreterError as exc:
            print('refused', type(exc).__name__, flush=True)
        else:
            print('closed early', flush=True)
        # The interpreter survived and is still usable.
        interp.exec('x = 1')
        print('alive', interp in interpreters.list_all(), flush=True)
        time.sleep(1.5)   # the raw thread ends by itself
        interp.close()
        print('closed', interp in interpreters.list_all(), flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out.splitlines() == [
        'running False',
        'refused InterpreterError',
        'alive True',
        'closed False',
    ]


@pytest.mark.timeout(60)
def test_close_refused_with_raw_thread_then_exit(run_python):
    rc, out, err = run_python("""
        import subinterpreters as interpreters
        interp = interpreters.create()
        interp.exec('import _thread, time; _thread.start_new_thread(time.sleep, (1,))')
        try:
            interp.close()
        except interpreters.InterpreterError:
            print('refused', flush=True)
        # Exit right away, while the raw thread is still sleeping.
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out == 'refused\n'


@pytest.mark.timeout(60)
def test_close_after_threading_prints_nothing(run_python):
    # 3.12's threading._shutdown() asserted on the _MainThread of a
    # subinterpreter whose importing thread state was gone ("Exception
    # ignored ... assert tlock.locked()").
    rc, out, err = run_python("""
        import threading
        import subinterpreters as interpreters
        for how in ('exec', 'thread', 'exit'):
            interp = interpreters.create()
            interp.exec('import threading')
            if how == 'thread':
                t = threading.Thread(target=interp.exec,
                                     args=('import threading',))
                t.start(); t.join()
            if how != 'exit':
                interp.close()
        print('done', flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out == 'done\n'
    assert err == '', err


@pytest.mark.timeout(60)
def test_fork_with_live_interpreters_fails_cleanly(run_python):
    # CPython kills the child of fork() while subinterpreters exist; we
    # refuse in the parent instead, and fork works again once they are
    # closed.
    rc, out, err = run_python("""
        import os
        import subinterpreters as interpreters
        interp = interpreters.create()
        try:
            os.fork()
        except RuntimeError as exc:
            print('refused', 'subinterpreter' in str(exc), flush=True)
        interp.close()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        print('child', os.waitstatus_to_exitcode(status), flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out == 'refused True\nchild 7\n'


FORK_CHILD_WAIT = """
    def wait_child(pid, seconds=20):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return 'hang'
"""


@pytest.mark.timeout(90)
def test_ctrl_c_reaches_interpreters_in_a_forked_child(run_python):
    # The fork handler resets our process-wide state in the child: there
    # the Ctrl-C watcher thread must be started again, or a Ctrl-C while
    # the child's main thread runs an interpreter is never forwarded.
    rc, out, err = run_python(FORK_CHILD_WAIT + """
    import os, signal, threading, time
    import subinterpreters as interpreters
    interp = interpreters.create()
    interp.exec('pass')  # main thread: arms Ctrl-C forwarding
    interp.close()
    pid = os.fork()
    if pid == 0:
        child = interpreters.create()
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            child.exec('while True: pass')
        except KeyboardInterrupt:
            os._exit(0)
        os._exit(3)
    print('child', wait_child(pid), flush=True)
    """, timeout=EXIT_TIMEOUT + 30)
    check_clean(rc, out, err)
    assert out == 'child 0\n'


@pytest.mark.timeout(120)
def test_fork_while_another_thread_creates(run_python):
    # os.fork() from one thread while another creates and closes
    # interpreters: the guard refuses while one exists or is being made
    # or ended, and a fork that passes must not leave the child with a
    # creation half done (or a lock of ours held): the child can create
    # and use interpreters.
    rc, out, err = run_python(FORK_CHILD_WAIT + """
    import os, signal, threading, time
    import subinterpreters as interpreters
    stop = threading.Event()
    def churn():
        while not stop.is_set():
            interpreters.create().close()
            time.sleep(0.002)  # windows in which a fork may pass
    t = threading.Thread(target=churn)
    t.start()
    forked, refused, results = 0, 0, []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and forked < 10:
        try:
            pid = os.fork()
        except RuntimeError:
            refused += 1
            continue
        if pid == 0:
            try:
                ok = interpreters.create().call(pow, 2, 5) == 32
            except BaseException:
                ok = False
            os._exit(0 if ok else 4)
        forked += 1
        results.append(wait_child(pid))
    stop.set()
    t.join()
    print('forked', forked > 0, 'children', set(results) <= {0}, results,
          flush=True)
    """, timeout=100)
    check_clean(rc, out, err)
    assert out.startswith('forked True children True'), out


@pytest.mark.timeout(90)
def test_create_in_at_fork_hooks(run_python):
    # os.register_at_fork() hooks run inside the guarded os.fork(): in the
    # parent, before the fork, a create() is refused (the child would
    # inherit it); in the child, after the fork, it works (re-creating a
    # pool there is a natural pattern).  Neither may wait for itself.
    rc, out, err = run_python(FORK_CHILD_WAIT + """
    import os, signal, time
    import subinterpreters as interpreters
    def before():
        try:
            interpreters.create()
        except interpreters.InterpreterError as exc:
            print('before:', exc, flush=True)
    def in_child():
        ok = interpreters.create().call(pow, 2, 5) == 32
        os._exit(0 if ok else 5)
    os.register_at_fork(before=before, after_in_child=in_child)
    pid = os.fork()
    if pid == 0:
        os._exit(6)  # not reached: the hook exits
    print('child', wait_child(pid), flush=True)
    """, timeout=EXIT_TIMEOUT + 30)
    check_clean(rc, out, err)
    assert out == ('before: cannot create an interpreter while this thread '
                   'forks the process\nchild 0\n'), out


@pytest.mark.timeout(90)
def test_two_threads_forking_at_once(run_python):
    # Two guarded forks under way at once (at-fork hooks order them: the
    # first forks while the second is inside its guard): the first's child
    # inherits the second thread's guard as under way, and must not wait
    # for it (that thread does not exist there).
    rc, out, err = run_python(FORK_CHILD_WAIT + """
    import os, signal, threading, time
    import warnings
    warnings.simplefilter('ignore', DeprecationWarning)  # fork + threads
    import subinterpreters as interpreters
    second_begun = threading.Event()
    first_forked = threading.Event()
    first = None
    def before():
        if threading.current_thread() is first:
            second_begun.wait(10)
        else:
            second_begun.set()
            first_forked.wait(10)  # the first forks while we are under way
    def after_in_parent():
        if threading.current_thread() is first:
            first_forked.set()
    os.register_at_fork(before=before, after_in_parent=after_in_parent)
    results = []
    def forker():
        pid = os.fork()
        if pid == 0:
            ok = interpreters.create().call(pow, 2, 5) == 32
            os._exit(0 if ok else 4)
        results.append(wait_child(pid))
    first = threading.Thread(target=forker)
    first.start()
    time.sleep(0.2)
    second = threading.Thread(target=forker)
    second.start()
    first.join()
    second.join()
    print(sorted(results, key=str), flush=True)
    """, timeout=80)
    check_clean(rc, out, err)
    assert out == '[0, 0]\n', out


@pytest.mark.timeout(60)
def test_daemon_thread_running_interpreter_at_exit(run_python):
    # A daemon thread of main still inside exec() at exit: the exit hook
    # interrupts the code and destroys the interpreter (3.12 aborted with
    # "remaining subinterpreters", 3.13 with "not the last thread").
    rc, out, err = run_python("""
        import threading, time
        import subinterpreters as interpreters
        interp = interpreters.create()
        def spin():
            try:
                interp.exec('while True: pass')
            except interpreters.ExecutionFailed:
                pass
        threading.Thread(target=spin, daemon=True).start()
        while not interp.is_running():
            time.sleep(0.01)
        print('exiting', flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out == 'exiting\n'


@pytest.mark.timeout(60)
def test_atexit_joining_a_daemon_thread_that_calls_in(run_python):
    # A daemon thread that keeps calling into our interpreters while the
    # exit hook destroys them ends (silently), so an atexit callback that
    # runs after ours and joins it does not hang.
    rc, out, err = run_python("""
        import atexit, threading, time
        stop = threading.Event()
        interps = []
        def worker():
            while not stop.is_set():
                for interp in list(interps):
                    try:
                        interp.exec('pass')
                    except Exception as exc:
                        print('worker got', type(exc).__name__, flush=True)
                        return
        t = threading.Thread(target=worker, daemon=True)
        @atexit.register
        def join_worker():   # registered first: runs after ours
            stop.set()
            t.join()
            print('joined', flush=True)
        import subinterpreters as interpreters
        interps[:] = [interpreters.create() for _ in range(30)]
        for interp in interps:
            interp.exec('import json, re')
        t.start()
        time.sleep(0.3)
        print('exiting', flush=True)
        """, timeout=EXIT_TIMEOUT)
    check_clean(rc, out, err)
    assert out.splitlines()[0] == 'exiting'
    assert out.splitlines()[-1] == 'joined'
