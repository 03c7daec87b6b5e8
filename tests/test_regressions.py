"""Regression tests for bugs found in review (each failed before its fix)."""

import gc
import os
import sys
import threading
import time

import pytest

import subinterpreters as interpreters


@pytest.mark.timeout(120)
def test_no_deadlock_between_registry_lock_and_gil(run_python):
    # A thread waiting for a GIL while holding the registry lock, and one
    # holding that GIL while waiting for the lock, deadlocked
    # (is_running()/list_all() against interrupt()).
    rc, out, err = run_python("""
        import threading, time
        import subinterpreters as s
        T = s.create()
        T.exec('''if True:
            import threading, time, subinterpreters as s
            me = s.get_current()
            end = time.monotonic() + 4
            def spin():
                while time.monotonic() < end:
                    me.is_running()
            for _ in range(3):
                threading.Thread(target=spin).start()
            ''')
        def session():
            while True:
                try:
                    T.exec('''if True:
                        while time.monotonic() < end:
                            try:
                                while time.monotonic() < end:
                                    me.is_running()
                            except KeyboardInterrupt:
                                pass
                        ''')
                    return
                except s.ExecutionFailed:
                    pass
        st = threading.Thread(target=session)
        st.start()
        def lister():
            while st.is_alive():
                s.list_all()
        def interrupter():
            while st.is_alive():
                T.interrupt()
        others = [threading.Thread(target=lister) for _ in range(2)]
        others.append(threading.Thread(target=interrupter))
        for t in others:
            t.start()
        st.join(60)
        print('deadlock' if st.is_alive() else 'ok', flush=True)
        if st.is_alive():
            import os; os._exit(1)
        """, timeout=90)
    assert rc == 0, err
    assert out.strip() == 'ok'


def test_shared_references_do_not_blow_up():
    # [x, x] nested 40 times is 2**40 copies natively; it must be pickled
    # (which also keeps the sharing).
    x = []
    for _ in range(40):
        x = [x, x]
    interp = interpreters.create()
    start = time.monotonic()
    res = interp.call(id, x)
    assert isinstance(res, int)
    assert time.monotonic() - start < 10

    shared = [1, 2]
    assert interp.call(_identity_check, [shared, shared]) is True


def _identity_check(pair):
    return pair[0] is pair[1]


def test_cycles_cross_by_pickle():
    interp = interpreters.create()
    cyc = [1]
    cyc.append(cyc)
    res = interp.call(_identity_check_cycle, cyc)
    assert res is True


def _identity_check_cycle(value):
    return value[1] is value


def test_is_shareable_deep_tuple_does_not_crash():
    t = ()
    for _ in range(100_000):
        t = (t,)
    assert interpreters.is_shareable(t) is False


def test_crafted_bytecode_does_not_crash():
    import dis

    def f():
        return x  # noqa: F821

    ea, lg = dis.opmap['EXTENDED_ARG'], dis.opmap['LOAD_GLOBAL']
    raw = bytearray(f.__code__.co_code)
    i = raw.index(bytes([lg]))
    new = raw[:i] + bytes([ea, 0xff] * 3) + bytes([lg, 0xff]) + raw[i + 2:]
    f.__code__ = f.__code__.replace(co_code=bytes(new))
    interp = interpreters.create()
    # Shipping it inspects the bytecode (running it would crash CPython
    # itself, in any interpreter).
    assert interp.call(len, [f]) == 1


def test_interpreter_cache_does_not_grow():
    from subinterpreters import _core
    for _ in range(300):
        interpreters.create().close()
    gc.collect()
    # the singleton cache drops entries of dead Interpreter objects
    assert _core._interp_cache_size() < 40


@pytest.mark.timeout(60)
def test_failed_orphan_does_not_block_other_orphans():
    B = interpreters.create()
    B.exec("""if True:
        import threading, time, subinterpreters as s
        def hold(me):
            time.sleep(0.3)
        threading.Thread(target=hold, args=(s.get_current(),)).start()
        """)
    bid = B.id
    del B                     # B is now referenced only by its own thread
    A = interpreters.create()
    A.exec("buf = bytearray(10)")
    mv = A.call(eval, "memoryview(buf)")   # A cannot die while mv lives
    aid = A.id
    del A
    time.sleep(0.8)           # B's own reference goes in B: B is orphaned
    for _ in range(3):
        interpreters.create().close()      # reaps orphans
    ids = [i.id for i in interpreters.list_all()]
    assert bid not in ids
    assert aid in ids
    del mv
    gc.collect()


@pytest.mark.timeout(60)
def test_exit_while_main_views_subinterpreter_buffer(run_python):
    rc, out, err = run_python("""
        import subinterpreters as s
        A = s.create()
        A.exec("buf = bytearray(b'abc')")
        mv = A.call(eval, "memoryview(buf)")
        print(bytes(mv), flush=True)
        """, timeout=30)
    assert rc == 0, err
    assert 'Fatal' not in err
    assert out == "b'abc'\n"


@pytest.mark.timeout(60)
def test_refused_close_leaves_interpreter_usable():
    A = interpreters.create()
    A.exec("buf = bytearray(10)")
    mv = A.call(eval, "memoryview(buf)")
    with pytest.raises(interpreters.InterpreterError, match='memoryview'):
        A.close()
    A.exec("""if True:
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            assert ex.submit(sum, [1, 2]).result() == 3
        """)
    del mv
    gc.collect()
    A.close()

